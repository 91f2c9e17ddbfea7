"""LUT matrix-multiply kernels: one numpy reference, Numba CPU, Numba CUDA, exact low-rank.

``prepare_table(lut)`` once per multiplier, then ``lut_matmul(a, b, table)`` on int8
torch tensors of any leading batch shape::

    out[..., m, n] = sum_k lut[a[..., m, k] + 128, b[..., k, n] + 128]     (int32)

Backends (:data:`KERNELS`): ``reference`` (numpy, the specification), ``numba_cpu``,
``numba_cuda``, ``lowrank``; ``auto`` picks by device and table.
"""

from axhw.emulator.kernels.dispatch import AUTO_MAX_TERMS, KERNELS, Kernel, lut_matmul, select_backend
from axhw.emulator.kernels.lowrank import LowRankForm, find_low_rank
from axhw.emulator.kernels.table import LutTable, prepare_table

__all__ = [
    "AUTO_MAX_TERMS",
    "KERNELS",
    "Kernel",
    "LowRankForm",
    "LutTable",
    "find_low_rank",
    "lut_matmul",
    "prepare_table",
    "select_backend",
]
