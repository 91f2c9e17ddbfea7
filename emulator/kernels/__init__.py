"""LUT matrix-multiply kernels: one numpy reference, Numba CPU, Numba CUDA, low-rank."""

__all__: list[str] = []
