"""axhw.emulator: int8 quantization and approximate-multiplier emulation of timm ViTs."""

__all__: list[str] = []
