"""Uncertainty of accuracies measured on a finite set of images.

Two intervals, both at 95 % by default:

* :func:`wilson_interval`: the Wilson score interval of one accuracy ``k / n``
  (Wilson 1927); unlike the normal approximation it stays inside ``[0, 1]`` and is
  not degenerate at 0 % or 100 %.
* :func:`paired_difference_interval`: the interval of a difference of two accuracies
  measured on the *same* images (Newcombe 1998, "Improved confidence intervals for
  the difference between binomial proportions based on paired data", method 10:
  the two Wilson intervals combined with the correlation of the paired outcomes).
  Pairing matters: a configuration that misclassifies the same hard images as the
  int8 model differs from it by far less than two independent samples would.

Per-image outcomes travel as :func:`pack_outcomes` hex strings (one bit per image),
so a result file can carry them and any later reader can pair two of them.
Accuracies are fractions in ``[0, 1]``; drops are returned in percentage points.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final, Sequence

import numpy as np

__all__ = [
    "Z95",
    "wilson_interval",
    "paired_difference_interval",
    "DropEstimate",
    "paired_drop",
    "pack_outcomes",
    "unpack_outcomes",
    "resolution_points",
    "BOUNDS",
]

#: Two-sided 95 % standard-normal quantile.
Z95: Final[float] = 1.959963984540054
#: How a constraint on a drop is checked: the point estimate, or an end of its paired 95 % interval.
BOUNDS: Final[tuple[str, ...]] = ("point", "upper", "lower")


def _z(confidence: float) -> float:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if abs(confidence - 0.95) < 1e-12:
        return Z95
    from scipy.stats import norm

    return float(norm.ppf(0.5 + confidence / 2.0))


def wilson_interval(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a proportion ``k / n`` (fractions in [0, 1]).

    ``centre = (p + z²/2n) / (1 + z²/n)``, ``half = z·sqrt(p(1-p)/n + z²/4n²) / (1 + z²/n)``.

    Raises:
        ValueError: ``n < 1`` or ``k`` outside ``[0, n]``.
    """
    if n < 1 or not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n and n >= 1, got k={k}, n={n}")
    z = _z(confidence)
    p = k / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def paired_difference_interval(a: int, b: int, c: int, d: int, confidence: float = 0.95) -> tuple[float, float, float]:
    """Difference ``p1 - p2`` of two paired proportions with Newcombe's method-10 interval.

    The 2×2 table counts images by outcome under the two conditions: ``a`` both
    right, ``b`` only the first right, ``c`` only the second right, ``d`` both wrong;
    ``p1 = (a + b) / n`` and ``p2 = (a + c) / n``.

    Returns:
        ``(p1 - p2, lower, upper)`` as fractions.

    Raises:
        ValueError: a negative count or an empty table.
    """
    if min(a, b, c, d) < 0 or a + b + c + d == 0:
        raise ValueError(f"counts must be >= 0 with a positive total, got {(a, b, c, d)}")
    n = a + b + c + d
    p1, p2 = (a + b) / n, (a + c) / n
    l1, u1 = wilson_interval(a + b, n, confidence)
    l2, u2 = wilson_interval(a + c, n, confidence)
    margins = (a + b) * (c + d) * (a + c) * (b + d)
    phi = 0.0 if margins == 0 else (a * d - b * c) / math.sqrt(margins)
    delta = math.sqrt(max(0.0, (p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2))
    epsilon = math.sqrt(max(0.0, (u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2))
    diff = p1 - p2
    return diff, max(-1.0, diff - delta), min(1.0, diff + epsilon)


@dataclass(frozen=True)
class DropEstimate:
    """An accuracy drop against a reference on the same images, in points.

    Attributes:
        drop: ``100 × (reference accuracy - accuracy)``.
        lower, upper: its paired 95 % interval.
        n_images: images both were measured on.
        worse, better: images only the reference got right / only the other got right.
    """

    drop: float
    lower: float
    upper: float
    n_images: int
    worse: int
    better: int

    def bound(self, which: str = "point") -> float:
        """The value a constraint is checked against: ``point``, ``upper`` or ``lower`` (see :data:`BOUNDS`)."""
        if which not in BOUNDS:
            raise ValueError(f"bound must be one of {', '.join(BOUNDS)}, got {which!r}")
        return {"point": self.drop, "upper": self.upper, "lower": self.lower}[which]

    def distinguishable_from(self, value: float) -> bool:
        """Whether ``value`` (points) lies outside the 95 % interval."""
        return value < self.lower - 1e-12 or value > self.upper + 1e-12

    def format(self) -> str:
        """``"1.23 [0.40, 2.10]"`` (points)."""
        return f"{self.drop:.2f} [{self.lower:.2f}, {self.upper:.2f}]"


def paired_drop(reference: Sequence[bool] | np.ndarray, other: Sequence[bool] | np.ndarray,
                confidence: float = 0.95) -> DropEstimate:
    """Drop of ``other`` below ``reference`` (per-image correctness on the same images), in points.

    Raises:
        ValueError: the two outcome vectors differ in length or are empty.
    """
    ref = np.asarray(reference, dtype=bool)
    oth = np.asarray(other, dtype=bool)
    if ref.shape != oth.shape or ref.size == 0:
        raise ValueError(f"paired outcomes need two non-empty vectors of one length, got {ref.shape} and {oth.shape}")
    a = int(np.sum(ref & oth))
    b = int(np.sum(ref & ~oth))
    c = int(np.sum(~ref & oth))
    d = int(np.sum(~ref & ~oth))
    diff, lo, hi = paired_difference_interval(a, b, c, d, confidence)
    return DropEstimate(100.0 * diff, 100.0 * lo, 100.0 * hi, int(ref.size), b, c)


def pack_outcomes(correct: Sequence[bool] | np.ndarray) -> str:
    """Per-image correctness as a hex string (``np.packbits``, big-endian bit order)."""
    return np.packbits(np.asarray(correct, dtype=bool)).tobytes().hex()


def unpack_outcomes(hex_string: str, n_images: int) -> np.ndarray:
    """Inverse of :func:`pack_outcomes` for ``n_images`` images."""
    bits = np.unpackbits(np.frombuffer(bytes.fromhex(hex_string), dtype=np.uint8))
    if bits.size < n_images:
        raise ValueError(f"outcome string holds {bits.size} bits, fewer than {n_images} images")
    return bits[:n_images].astype(bool)


def resolution_points(n_images: int) -> float:
    """One image, in accuracy points: ``100 / n_images``."""
    return 100.0 / max(1, int(n_images))
