"""Numba CPU LUT kernel: parallel over output tiles, two rows packed per 64-bit add, cached compilation.

``out[g, m, n] = sum_k lut[A[g, m, k] + 128, B[g, k, n] + 128]``   (int32, wrapping)

Layout.  Operands become uint8 table indices once (``x + 128`` is ``x ^ 0x80`` on the
int8 bit pattern).  The kernel sums a *16-bit unsigned* table ``t`` (the table minus
its smallest value, :attr:`LutTable.lut16`; see :func:`lut_bmm` for wider tables).
A job owns ROWS = 4 output rows and a tile of up to ``TILE_N`` columns.  For every k it
packs the table rows of rows (0, 1) and (2, 3) into 64-bit words,

    packed01[i] = t[A[m0, k], i] + 2**32 * t[A[m0 + 1, k], i]      (256 words, in L1)

and then, for each column n of the tile, ``acc01[n] += packed01[B[k, n]]``: one index
load, one table load and one 64-bit add serve two look-ups.  The two 32-bit lanes
never carry into each other, because each lane sums at most K values below 2**16
(``K < 2**16`` is checked).  The add loop is memory-op bound (LLVM does not vectorize
the gather); halving its loads and stores per look-up made it ~1.6x faster than one
int32 accumulator per row.  Packing costs 2 x 256 operations per k, so narrow outputs
(N < 128 < M) are computed transposed, ``out^T = B^T (x) A^T`` with the transposed
table, to stream over the wider side.  Jobs are spread over threads with ``prange``;
indices are unsigned, so Numba emits no negative-index wrap-around checks.
"""

from __future__ import annotations

import numba
import numpy as np

from axhw.emulator.kernels.table import LutTable

__all__ = ["lut_bmm", "to_indices", "sum_table16"]

ROWS = 4
"""Output rows per job (two packed pairs)."""
TILE_N = 1024
"""Output columns per job (accumulators: 2 * TILE_N uint64 = 16 KiB, in L1)."""
NARROW_N = 128
"""Outputs narrower than this (and taller than wide) are computed transposed."""
_LANE = np.uint64(0xFFFFFFFF)


def to_indices(x: np.ndarray) -> np.ndarray:
    """Table indices ``x + 128`` of an int8 array as uint8 (``int8 ^ 0x80`` reinterpreted)."""
    return np.ascontiguousarray(x).view(np.uint8) ^ np.uint8(0x80)


@numba.njit(parallel=True, cache=True, nogil=True)
def _sum_table16(a_idx, b_idx, t16, out):  # pragma: no cover - compiled
    """``out[g, m, n] = sum_k t16[a_idx[g, m, k], b_idx[g, k, n]] mod 2**32`` as int32.

    ``t16`` is uint16 (256, 256), indices uint8; K < 2**16 keeps each 32-bit lane exact.
    A block that runs past the last row reads that row again and does not write the
    extra results, so every job runs the same loop.
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
        acc01 = np.zeros(TILE_N, dtype=np.uint64)
        acc23 = np.zeros(TILE_N, dtype=np.uint64)
        packed01 = np.empty(256, dtype=np.uint64)
        packed23 = np.empty(256, dtype=np.uint64)
        for k in range(depth):
            row0, row1 = t16[a_idx[g, m0, k]], t16[a_idx[g, m1, k]]
            row2, row3 = t16[a_idx[g, m2, k]], t16[a_idx[g, m3, k]]
            for i in range(256):
                packed01[i] = np.uint64(row0[i]) | (np.uint64(row1[i]) << np.uint64(32))
                packed23[i] = np.uint64(row2[i]) | (np.uint64(row3[i]) << np.uint64(32))
            idx = b_idx[g, k, n0 : n0 + width]
            for j in range(width):
                i = idx[j]
                acc01[j] += packed01[i]
                acc23[j] += packed23[i]
        height = min(ROWS, rows - m0)
        for j in range(width):
            out[g, m0, n0 + j] = np.int32(acc01[j] & _LANE)
            if height > 1:
                out[g, m1, n0 + j] = np.int32(acc01[j] >> np.uint64(32))
            if height > 2:
                out[g, m2, n0 + j] = np.int32(acc23[j] & _LANE)
            if height > 3:
                out[g, m3, n0 + j] = np.int32(acc23[j] >> np.uint64(32))


def sum_table16(a: np.ndarray, b: np.ndarray, t16: np.ndarray) -> np.ndarray:
    """``sum_k t16[a + 128, b + 128] mod 2**32`` as int32 (G, M, N) for int8 (G, M, K), (G, K, N).

    Picks the orientation: narrow outputs run transposed (``t16.T``, operands swapped).
    """
    groups, rows, depth = a.shape
    cols = b.shape[2]
    if depth >= 2**16:
        raise ValueError(f"K = {depth} is too deep for 32-bit lanes of 16-bit values (K < 65536)")
    if cols < NARROW_N and rows > cols:
        out_t = np.empty((groups, cols, rows), dtype=np.int32)
        _sum_table16(to_indices(b.transpose(0, 2, 1)), to_indices(a.transpose(0, 2, 1)), np.ascontiguousarray(t16.T), out_t)
        return np.ascontiguousarray(out_t.transpose(0, 2, 1))
    out = np.empty((groups, rows, cols), dtype=np.int32)
    _sum_table16(to_indices(a), to_indices(b), np.ascontiguousarray(t16), out)
    return out


def _wrap32(value: int) -> np.int32:
    """``value mod 2**32`` as int32."""
    return np.int32((value + 2**31) % 2**32 - 2**31)


def _split16(lut: np.ndarray, low: int) -> tuple[np.ndarray, np.ndarray]:
    """``(lo, hi)`` uint16 tables with ``lut - low = 2**16 * hi + lo``."""
    shifted = lut.astype(np.int64) - low
    return (shifted & 0xFFFF).astype(np.uint16), (shifted >> 16).astype(np.uint16)


def lut_bmm(a: np.ndarray, b: np.ndarray, table: LutTable) -> np.ndarray:
    """Batched LUT product of int8 ``a`` (G, M, K) and ``b`` (G, K, N) -> int32 (G, M, N).

    With ``lut = lut16 + offset16``: ``out = sum_k lut16[...] + K * offset16``.  A table
    spanning 2**16 values or more is split ``lut - min = 2**16 * hi + lo`` into two
    16-bit tables: ``out = sum lo + 2**16 * sum hi + K * min``, all mod 2**32 like the
    int32 accumulator of the reference.
    """
    if a.dtype != np.int8 or b.dtype != np.int8 or a.ndim != 3 or b.ndim != 3 or a.shape[2] != b.shape[1] or a.shape[0] != b.shape[0]:
        raise ValueError(f"expected int8 (G, M, K) and (G, K, N), got {a.dtype}{a.shape} and {b.dtype}{b.shape}")
    depth = a.shape[2]
    if table.lut16 is not None:
        out = sum_table16(a, b, table.lut16)
        out += _wrap32(depth * table.offset16)  # int32 array + int32 scalar wraps
        return out
    low = int(table.lut.min())
    lo, hi = table.cached(("numba_cpu", "split16"), lambda: _split16(table.lut, low))
    out = sum_table16(a, b, lo).view(np.uint32)
    out += sum_table16(a, b, hi).view(np.uint32) << np.uint32(16)  # uint32 arithmetic wraps mod 2**32
    out += np.uint32(_wrap32(depth * low).view(np.uint32))
    return out.view(np.int32)
