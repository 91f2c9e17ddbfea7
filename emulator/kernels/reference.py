"""The numpy reference of the LUT matrix product: the specification every kernel matches.

For signed int8 operands ``A`` (M, K) and ``B`` (K, N) and a product table ``lut``
(256, 256) indexed ``lut[a + 128, b + 128]``::

    out[m, n] = sum_k lut[A[m, k] + 128, B[k, n] + 128]        (int32 accumulation)

The sum wraps modulo 2**32 like every int32 accumulator (it cannot overflow for
ViT shapes: |lut| <= 2**15 and K <= 2**16).  Operands are widened to a platform
integer *before* the +128 offset: under NumPy 2, ``int8 + 128`` raises
``OverflowError``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["lut_matmul", "check_operands", "check_lut"]


def check_lut(lut: np.ndarray) -> np.ndarray:
    """Return ``lut`` as a C-contiguous int32 (256, 256) array, or raise ``ValueError``."""
    lut = np.asarray(lut)
    if lut.shape != (256, 256):
        raise ValueError(f"a product table has shape (256, 256), got {lut.shape}")
    if not np.issubdtype(lut.dtype, np.integer):
        raise ValueError(f"a product table holds integers, got dtype {lut.dtype}")
    if lut.dtype != np.int32:
        wide = lut.astype(np.int64)
        if wide.min() < np.iinfo(np.int32).min or wide.max() > np.iinfo(np.int32).max:
            raise ValueError("product table values do not fit in int32")
    return np.ascontiguousarray(lut, dtype=np.int32)


def check_operands(a: np.ndarray, b: np.ndarray) -> tuple[int, int, int]:
    """Check two int8 matrices ``a`` (M, K) and ``b`` (K, N) and return ``(M, K, N)``."""
    if a.dtype != np.int8 or b.dtype != np.int8:
        raise TypeError(f"LUT matmul operands are int8, got {a.dtype} and {b.dtype}")
    if a.ndim != 2 or b.ndim != 2:
        raise ValueError(f"LUT matmul operands are matrices, got {a.ndim}-D and {b.ndim}-D")
    if a.shape[1] != b.shape[0]:
        raise ValueError(f"inner dimensions differ: a is {a.shape}, b is {b.shape}")
    return a.shape[0], a.shape[1], b.shape[1]


def lut_matmul(a: np.ndarray, b: np.ndarray, lut: np.ndarray) -> np.ndarray:
    """Multiply two int8 matrices through a product table, accumulating in int32.

    ``out[m, n] = sum_k lut[a[m, k] + 128, b[k, n] + 128]``.

    Args:
        a: int8 array of shape (M, K).
        b: int8 array of shape (K, N).
        lut: integer array of shape (256, 256); ``lut[i + 128, j + 128]`` is the
            product of ``i`` and ``j``.

    Returns:
        int32 array of shape (M, N).
    """
    m, k, n = check_operands(a, b)
    lut = check_lut(lut)
    rows = a.astype(np.intp) + 128  # widen before the offset (int8 + 128 overflows)
    cols = b.astype(np.intp) + 128
    out = np.zeros((m, n), dtype=np.int32)
    for kk in range(k):
        out += lut[rows[:, kk, None], cols[None, kk, :]]  # int32 add wraps like hardware
    return out
