"""Pareto front and hypervolume of (power, accuracy drop) points, both minimized.

The hypervolume of a set ``P`` against the reference point ``(r_p, r_d)`` is the area
of ``{(p, d) : p <= r_p, d <= r_d, some (p', d') in P has p' <= p and d' <= d}``
restricted to ``d >= 0`` (drops below zero, i.e. accuracy above the int8 reference,
count as zero), divided by ``r_p × r_d`` so that it lies in ``[0, 1]``.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

from axhw.search.result import Evaluation, SearchResult, pareto_indices

__all__ = ["pareto_front", "hypervolume", "hypervolume_curve"]


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the non-dominated points (both coordinates minimized), sorted by the first."""
    return pareto_indices([(float(p), float(d)) for p, d in points])


def hypervolume(points: Iterable[tuple[float, float]], reference: tuple[float, float] = (1.0, 2.0)) -> float:
    """Normalized hypervolume of ``(power_rel, drop)`` points (both minimized).

    Args:
        points: ``(power_rel, accuracy drop in points)`` pairs.
        reference: ``(r_p, r_d)``: the worst power and drop that still count.

    Returns:
        The dominated area inside ``[0, r_p] × [0, r_d]`` divided by ``r_p × r_d``.
    """
    r_p, r_d = float(reference[0]), float(reference[1])
    if r_p <= 0 or r_d <= 0:
        raise ValueError(f"reference point must be positive, got {reference}")
    pts = [(max(0.0, float(p)), max(0.0, float(d))) for p, d in points]
    pts = [(p, d) for p, d in pts if p < r_p and d < r_d]
    if not pts:
        return 0.0
    front = [pts[i] for i in pareto_indices(pts)]  # increasing p, decreasing d
    area = 0.0
    for k, (p, d) in enumerate(front):
        p_next = front[k + 1][0] if k + 1 < len(front) else r_p
        area += (p_next - p) * (r_d - d)
    return area / (r_p * r_d)


def hypervolume_curve(result: SearchResult, reference_drop: float | None = None,
                      history: Sequence[Evaluation] | None = None) -> np.ndarray:
    """Hypervolume after each true evaluation of a search.

    Args:
        result: the search (its ``int8_accuracy`` defines drops).
        reference_drop: ``r_d`` in points (default: ``2 × max_accuracy_drop``); ``r_p = 1``.
        history: evaluations to use (default: ``result.history``).

    Returns:
        Array of length ``len(history)``: element ``k`` is the hypervolume of the first
        ``k + 1`` evaluations.
    """
    history = result.history if history is None else history
    r_d = 2.0 * result.max_accuracy_drop if reference_drop is None else reference_drop
    points: list[tuple[float, float]] = []
    curve = np.zeros(len(history))
    for k, e in enumerate(history):
        points.append((e.power_rel, result.accuracy_drop(e)))
        curve[k] = hypervolume(points, (1.0, r_d))
    return curve
