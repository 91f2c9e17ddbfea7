"""Numba CPU LUT kernel: parallel over output tiles, int32 accumulation, cached compilation.

``out[g, m, n] = sum_k lut[A[g, m, k] + 128, B[g, k, n] + 128]``

Layout.  Operands are turned into uint8 table indices once (``x + 128`` is ``x ^ 0x80``
on the int8 bit pattern, a zero-cost view plus one xor).  For every (m, k) the kernel
fetches the table row ``lut[A[m, k] + 128]`` (1 KiB int32, or 512 B as uint16 plus an
offset, see :class:`LutTable`: it stays in L1) and streams over a contiguous tile of ``B[k, :]``'s indices, adding
``row[B[k, n]]`` into an int32 accumulator row.  The index tile of ``B`` is shared by
``ROWS`` output rows, so each loaded index serves ``ROWS`` look-ups, and an (m-block,
n-tile) job keeps its accumulators (``ROWS * TILE_N`` int32, one 1-D array per row:
2-D indexing measured 20 % slower) in L1 and its ``B`` tile (``K * TILE_N`` bytes) in
L2.  Jobs are spread over threads with ``prange``.  Indices are unsigned, so Numba
emits no negative-index wrap-around checks.  The loop does about one look-up per
cycle per core: a scalar load from the table row plus a load/add/store of the
accumulator (LLVM does not vectorize the gather).
"""

from __future__ import annotations

import numba
import numpy as np

from .table import LutTable

__all__ = ["lut_bmm", "to_indices"]

ROWS = 4
"""Output rows that share each loaded index of ``B`` (4 accumulator rows + 4 table rows fit the registers' addressing)."""
TILE_N = 1024
"""Output columns per job (accumulators: ROWS * TILE_N int32 = 16 KiB, in L1)."""


def to_indices(x: np.ndarray) -> np.ndarray:
    """Table indices ``x + 128`` of an int8 array as uint8 (``int8 ^ 0x80`` reinterpreted)."""
    return np.ascontiguousarray(x).view(np.uint8) ^ np.uint8(0x80)


@numba.njit(parallel=True, cache=True, nogil=True)
def _lut_bmm(a_idx, b_idx, lut, out):  # pragma: no cover - compiled
    """``out[g, m, n] = sum_k lut[a_idx[g, m, k], b_idx[g, k, n]]`` in int32 (uint8 indices).

    One job = (g, block of ROWS rows, tile of TILE_N columns).  A block that runs past
    the last row reads that last row again and does not write the extra results, so
    every block runs the same unrolled loop.
    """
    groups, rows, depth = a_idx.shape
    cols = b_idx.shape[2]
    m_blocks = (rows + ROWS - 1) // ROWS
    n_tiles = (cols + TILE_N - 1) // TILE_N
    for job in numba.prange(groups * m_blocks * n_tiles):
        g = job // (m_blocks * n_tiles)
        m0 = (job // n_tiles) % m_blocks * ROWS
        n0 = job % n_tiles * TILE_N
        width = min(TILE_N, cols - n0)
        m1, m2, m3 = min(m0 + 1, rows - 1), min(m0 + 2, rows - 1), min(m0 + 3, rows - 1)
        acc0 = np.zeros(TILE_N, dtype=np.int32)
        acc1 = np.zeros(TILE_N, dtype=np.int32)
        acc2 = np.zeros(TILE_N, dtype=np.int32)
        acc3 = np.zeros(TILE_N, dtype=np.int32)
        for k in range(depth):
            idx = b_idx[g, k, n0 : n0 + width]
            row0 = lut[a_idx[g, m0, k]]
            row1 = lut[a_idx[g, m1, k]]
            row2 = lut[a_idx[g, m2, k]]
            row3 = lut[a_idx[g, m3, k]]
            for j in range(width):
                i = idx[j]
                acc0[j] += row0[i]
                acc1[j] += row1[i]
                acc2[j] += row2[i]
                acc3[j] += row3[i]
        height = min(ROWS, rows - m0)
        out[g, m0, n0 : n0 + width] = acc0[:width]
        if height > 1:
            out[g, m1, n0 : n0 + width] = acc1[:width]
        if height > 2:
            out[g, m2, n0 : n0 + width] = acc2[:width]
        if height > 3:
            out[g, m3, n0 : n0 + width] = acc3[:width]


def lut_bmm(a: np.ndarray, b: np.ndarray, table: LutTable) -> np.ndarray:
    """Batched LUT product of int8 ``a`` (G, M, K) and ``b`` (G, K, N) -> int32 (G, M, N)."""
    if a.dtype != np.int8 or b.dtype != np.int8 or a.ndim != 3 or b.ndim != 3 or a.shape[2] != b.shape[1] or a.shape[0] != b.shape[0]:
        raise ValueError(f"expected int8 (G, M, K) and (G, K, N), got {a.dtype}{a.shape} and {b.dtype}{b.shape}")
    out = np.empty((a.shape[0], a.shape[1], b.shape[2]), dtype=np.int32)
    if table.lut16 is None:
        _lut_bmm(to_indices(a), to_indices(b), table.lut, out)
        return out
    _lut_bmm(to_indices(a), to_indices(b), table.lut16, out)
    if table.offset16:  # lut = lut16 + offset: add K * offset to every sum (int32, wrapping)
        out += np.int32((a.shape[2] * table.offset16 + 2**31) % 2**32 - 2**31)
    return out
