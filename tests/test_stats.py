"""Interval functions of axhw.stats against known values and an independent large-sample formula."""

from __future__ import annotations

import math

import numpy as np
import pytest

from axhw.stats import (
    pack_outcomes,
    paired_difference_interval,
    paired_drop,
    resolution_points,
    unpack_outcomes,
    wilson_interval,
)


@pytest.mark.parametrize("k,n,lo,hi", [
    (81, 263, 0.2553, 0.3662),  # Newcombe (1998), Stat Med 17:857, example of the score interval
    (0, 10, 0.0, 0.2775),       # zero successes: the interval does not collapse to a point
    (10, 10, 0.7225, 1.0),      # mirror image of the above
])
def test_wilson_known_values(k, n, lo, hi):
    got = wilson_interval(k, n)
    assert got == pytest.approx((lo, hi), abs=5e-5)


def test_wilson_matches_its_formula_and_rejects_bad_counts():
    k, n, z = 37, 50, 1.959963984540054
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    assert wilson_interval(k, n) == pytest.approx((centre - half, centre + half), abs=1e-12)
    assert wilson_interval(37, 50, 0.99)[0] < wilson_interval(37, 50)[0]  # wider at higher confidence
    with pytest.raises(ValueError):
        wilson_interval(5, 0)
    with pytest.raises(ValueError):
        wilson_interval(6, 5)


def test_paired_interval_agrees_with_wald_at_large_n():
    # Wald interval of a paired difference: (b - c)/n ± z·sqrt(b + c - (b - c)²/n)/n; at large n the
    # score-based interval must converge to it
    a, b, c, d = 80_000, 6_000, 4_000, 10_000
    n = a + b + c + d
    diff, lo, hi = paired_difference_interval(a, b, c, d)
    half = 1.959963984540054 * math.sqrt(b + c - (b - c) ** 2 / n) / n
    assert diff == pytest.approx((b - c) / n)
    assert (lo, hi) == pytest.approx((diff - half, diff + half), abs=2e-4)


def test_paired_interval_properties():
    diff, lo, hi = paired_difference_interval(40, 0, 0, 10)  # identical outcomes
    assert diff == 0 and lo <= 0 <= hi and hi - lo < 0.1
    d1 = paired_difference_interval(30, 7, 2, 11)
    d2 = paired_difference_interval(30, 2, 7, 11)  # conditions swapped: the interval mirrors
    assert d1 == pytest.approx(tuple(-v for v in (d2[0], d2[2], d2[1])))
    assert d1[1] < d1[0] < d1[2]
    # pairing makes a difference narrower than two independent Wilson intervals would
    n = 50
    l1, u1 = wilson_interval(37, n)
    l2, u2 = wilson_interval(32, n)
    assert d1[2] - d1[1] < (u1 - l1) + (u2 - l2)
    with pytest.raises(ValueError):
        paired_difference_interval(0, 0, 0, 0)


def test_paired_drop_counts_and_bounds():
    ref = np.array([1, 1, 1, 1, 0, 0, 1, 1, 1, 1] * 10, dtype=bool)
    other = ref.copy()
    other[:6] = False  # the four images of these six the reference got right are lost
    other[4] = True  # one the reference missed is won
    est = paired_drop(ref, other)
    assert (est.worse, est.better, est.n_images) == (4, 1, 100)
    assert est.drop == pytest.approx(3.0)
    assert est.lower < est.drop < est.upper
    assert est.bound("point") == est.drop and est.bound("upper") == est.upper and est.bound("lower") == est.lower
    assert est.distinguishable_from(0.0) is (est.lower > 0)
    assert not est.distinguishable_from(est.drop)
    with pytest.raises(ValueError):
        paired_drop(ref, other[:10])


def test_outcomes_pack_roundtrip_and_resolution():
    rng = np.random.default_rng(0)
    for n in (1, 7, 8, 270):
        bits = rng.random(n) < 0.7
        assert np.array_equal(unpack_outcomes(pack_outcomes(bits), n), bits)
    assert resolution_points(270) == pytest.approx(100 / 270)
