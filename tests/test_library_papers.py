"""Library designs against independent numpy models of their papers' definitions.

Each model below is written from the paper's arithmetic definition, not from the
RTL: it never builds the Baugh-Wooley matrix the way the Verilog does, so a table
that matches it shows the design computes what its paper defines.  The tables are
the committed database entries (``library.load`` refuses a stale one, so they were
characterized from the current RTL).
"""

from __future__ import annotations

import numpy as np
import pytest

from axhw import library

A, B = np.meshgrid(np.arange(-128, 128), np.arange(-128, 128), indexing="ij")  # a rows, b columns
MAG_A, MAG_B = np.abs(A), np.abs(B)
SIGN = np.sign(A) * np.sign(B)


def bit(x: np.ndarray, i: int) -> np.ndarray:
    """Bit ``i`` of the 8-bit two's-complement code of ``x``."""
    return (x.astype(np.int64) >> i) & 1


def wrap16(x: np.ndarray) -> np.ndarray:
    """Two's-complement value of the low 16 bits."""
    return ((x.astype(np.int64) + (1 << 15)) % (1 << 16)) - (1 << 15)


def table(name: str) -> np.ndarray:
    return library.load(name).lut.astype(np.int64)


# --------------------------------------------------------------------------- perforation
def perforation_model(j: int, m: int) -> np.ndarray:
    """Zervakis et al. 2016: the perforated partial products are those of b_J..b_{J+M-1} = 0."""
    mask = sum(1 << k for k in range(j, j + m))
    return A * (B & ~mask)  # numpy's & on negative ints is two's complement


@pytest.mark.parametrize("name, j, m", [("perf_m1", 0, 1), ("perf_m2", 0, 2)])
def test_perforation_is_the_product_with_perforated_bits_zero(name, j, m):
    np.testing.assert_array_equal(table(name), perforation_model(j, m))


def test_perforation_keeps_products_by_zero_and_its_published_error():
    lut = table("perf_m1")
    assert not lut[:, 128].any() and not lut[128, :].any()  # a·0 = 0·b = 0
    assert library.load("perf_m1").metrics.mae == pytest.approx(32.0)  # E|a|·P(b_0 = 1) = 64 · 1/2


# --------------------------------------------------------------------------- BAM
def bam_model(hbl: int, vbl: int) -> np.ndarray:
    """Mahdiani et al. 2010: the exact product minus the omitted cells' signed partial products.

    Omitted: rows j < HBL and columns i + j < VBL; a cell's two's-complement weight is
    -2^(i+j) when exactly one of i, j is the sign bit 7, else +2^(i+j).
    """
    omitted = np.zeros_like(A, dtype=np.int64)
    for i in range(8):
        for j in range(8):
            if j < hbl or i + j < vbl:
                weight = -1 if (i == 7) != (j == 7) else 1
                omitted += weight * (bit(A, i) * bit(B, j) << (i + j))
    return A * B - omitted


@pytest.mark.parametrize("name, hbl, vbl", [("bam_h1_v6", 1, 6), ("bam_h2_v8", 2, 8)])
def test_bam_is_the_product_minus_the_omitted_cells(name, hbl, vbl):
    lut = table(name)
    np.testing.assert_array_equal(lut, bam_model(hbl, vbl))
    assert not lut[:, 128].any() and not lut[128, :].any()  # a·0 = 0


# --------------------------------------------------------------------------- ETM
def etm_unsigned(x: np.ndarray, y: np.ndarray, low: int) -> np.ndarray:
    """Kyaw et al. 2010 on unsigned 8-bit operands with an L-bit non-multiplication part."""
    hx, hy, lx, ly = x >> low, y >> low, x & ((1 << low) - 1), y & ((1 << low) - 1)
    seen = lx | ly
    # Bits L + i for i at or below the leading one of lx | ly, and all L bits below them.
    lead = np.where(seen > 0, np.floor(np.log2(np.maximum(seen, 1))).astype(np.int64), -1)
    upper = np.where(seen > 0, ((1 << (lead + 1)) - 1) << low, 0)
    fill = np.where(seen > 0, upper | ((1 << low) - 1), 0)
    approx = ((hx * hy) << (2 * low)) + fill
    return np.where((hx == 0) & (hy == 0), lx * ly, approx)


@pytest.mark.parametrize("name, low", [("etm_l4", 4), ("etm_l2", 2)])
def test_etm_is_the_papers_unsigned_etm_in_sign_magnitude(name, low):
    np.testing.assert_array_equal(table(name), SIGN * etm_unsigned(MAG_A, MAG_B, low))


def test_etm_model_on_the_papers_worked_cases():
    x, y = np.array([0b1011_0110]), np.array([0b0100_0011])
    # high parts 1011 * 0100 = 101100 -> bits 15..8; low 0110 | 0011 = 0111: ones from bit 4+2 down.
    assert int(etm_unsigned(x, y, 4)[0]) == (0b101100 << 8) | 0b0111_1111
    assert int(etm_unsigned(np.array([5]), np.array([7]), 4)[0]) == 35  # both high parts zero: exact


# --------------------------------------------------------------------------- DRUM and truncation
def drum_unsigned(x: np.ndarray, y: np.ndarray, k: int) -> np.ndarray:
    """Hashemi et al. 2015: K bits from the leading one, lowest kept bit forced to 1."""
    def segment(v):
        lead = np.floor(np.log2(np.maximum(v, 1))).astype(np.int64)
        shift = np.where(v >= (1 << k), lead - (k - 1), 0)
        return np.where(shift > 0, (v >> shift) | 1, v), shift
    (tx, sx), (ty, sy) = segment(x), segment(y)
    return (tx * ty) << (sx + sy)


@pytest.mark.parametrize("name, k", [("drum_k4", 4), ("drum_k6", 6)])
def test_drum_matches_its_paper(name, k):
    np.testing.assert_array_equal(table(name), SIGN * drum_unsigned(MAG_A, MAG_B, k))


@pytest.mark.parametrize("name, k, corrected", [("trunc_k6", 6, False), ("trunc_cc_k6", 6, True), ("trunc_k8", 8, False)])
def test_truncation_drops_the_low_columns_of_the_signed_matrix(name, k, corrected):
    # Signed partial-product matrix of a·b: cell (i, j) weighs -2^(i+j) when exactly one
    # index is the sign bit 7.  Removing columns < K removes those cells' values; the
    # Baugh-Wooley form of a removed negative cell -x is (1 - x) - 1, i.e. its bit is 1 - x.
    removed = np.zeros_like(A, dtype=np.int64)
    for i in range(8):
        for j in range(8):
            if i + j < k:
                cell = bit(A, i) * bit(B, j)
                removed += (1 - cell if (i == 7) != (j == 7) else cell) << (i + j)
    correction = 0
    if corrected:  # expected removed value over uniform operands, rounded to a multiple of 2^K
        correction = int(np.floor(removed.mean() / (1 << k) + 0.5)) << k
    np.testing.assert_array_equal(table(name), wrap16(A * B - removed + correction))


# --------------------------------------------------------------------------- exact baselines
@pytest.mark.parametrize("name", ["array_u_exact", "booth_wallace_exact", "bw_array_exact", "exact_u"])
def test_structural_exact_designs_are_exact(name):
    m = library.load(name)
    np.testing.assert_array_equal(m.lut, A * B)
    assert m.metrics.mae == 0 and m.metrics.error_rate == 0
