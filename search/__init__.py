"""axhw.search: per-layer multiplier assignment search on the accuracy/power front."""

__all__: list[str] = []
