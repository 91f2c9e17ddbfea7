"""The report's figures, drawn with matplotlib's Agg canvas and returned as PNG bytes.

Every function takes plain numbers (no search objects), builds its own
:class:`matplotlib.figure.Figure` (no pyplot, so the caller's backend and global
state are untouched) and returns deterministic PNG bytes (no timestamp or
software metadata), so a report regenerated from the same result is byte-identical.
Accuracies are fractions in [0, 1] and are drawn in percent.
"""

from __future__ import annotations

import io
from typing import Mapping, Sequence

import numpy as np

__all__ = ["pareto_mask", "accuracy_vs_power", "sensitivity_heatmap", "reward_convergence", "surrogate_scatter"]

_DPI = 110


def pareto_mask(power: Sequence[float], accuracy: Sequence[float]) -> np.ndarray:
    """Boolean mask of the points not dominated in (lower power, higher accuracy).

    A point is dominated when another has ``power <= p`` and ``accuracy >= a`` with at
    least one strict inequality.  Duplicated points are all kept.
    """
    p = np.asarray(power, dtype=float)
    a = np.asarray(accuracy, dtype=float)
    mask = np.ones(p.shape, dtype=bool)
    for i in range(p.size):
        dominated = (p <= p[i]) & (a >= a[i]) & ((p < p[i]) | (a > a[i]))
        mask[i] = not dominated.any()
    return mask


def _new_figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=_DPI)
    FigureCanvasAgg(fig)
    return fig


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=_DPI, bbox_inches="tight", metadata={"Software": None})
    return buf.getvalue()


def accuracy_vs_power(
    points: Sequence[tuple[str, float, float]],
    *,
    chosen: tuple[float, float] | None = None,
    references: Mapping[str, float] | None = None,
    constraint_accuracy: float | None = None,
    power_reference: str = "exact",
) -> bytes:
    """Scatter of every evaluated configuration with each method's Pareto front.

    Args:
        points: ``(method, power_rel, accuracy)`` per true evaluation; ``power_rel`` is
            total multiplier energy relative to the all-``power_reference`` design.
        chosen: ``(power_rel, accuracy)`` of the configuration the report recommends,
            drawn as a star; ``None`` draws none.
        references: label -> accuracy drawn as horizontal dotted lines (fp32, int8 exact).
        constraint_accuracy: lowest accuracy allowed by the constraint, drawn as a red
            dashed line; ``None`` draws none.
        power_reference: the design ``power_rel`` is relative to (axis label).

    Returns:
        PNG bytes.
    """
    import matplotlib

    fig = _new_figure(7.5, 4.8)
    ax = fig.add_subplot()
    methods = sorted({m for m, _, _ in points})
    colors = matplotlib.colormaps["tab10"]
    for k, method in enumerate(methods):
        p = np.array([pw for m, pw, _ in points if m == method], dtype=float)
        a = np.array([ac for m, _, ac in points if m == method], dtype=float)
        color = colors(k % 10)
        ax.scatter(p * 100, a * 100, s=14, alpha=0.45, color=color, linewidths=0, label=f"{method} ({p.size})")
        front = pareto_mask(p, a)
        order = np.argsort(p[front])
        ax.plot(p[front][order] * 100, a[front][order] * 100, "-o", ms=3.5, lw=1.4, color=color, drawstyle="steps-post")
    for k, (label, acc) in enumerate((references or {}).items()):
        ax.axhline(acc * 100, color="0.35", lw=0.9, ls=":" if k == 0 else "-.")
        ax.annotate(label, (0.005, acc * 100), xycoords=("axes fraction", "data"), fontsize=8, color="0.3",
                    va="bottom")
    if constraint_accuracy is not None:
        ax.axhline(constraint_accuracy * 100, color="#c53030", lw=1.0, ls="--")
        ax.annotate("constraint", (0.995, constraint_accuracy * 100), xycoords=("axes fraction", "data"), fontsize=8,
                    color="#c53030", ha="right", va="top")
    if chosen is not None:
        ax.scatter([chosen[0] * 100], [chosen[1] * 100], marker="*", s=220, color="gold", edgecolors="black",
                   linewidths=0.8, zorder=5, label="chosen")
    ax.set_xlabel(f"multiplier power, % of all-{power_reference} int8")
    ax.set_ylabel("top-1 accuracy, %")
    ax.set_title("Accuracy vs power of every evaluated configuration (lines: Pareto front per method)", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="lower right", framealpha=0.85)
    return _png(fig)


def sensitivity_heatmap(ops: Sequence[str], candidates: Sequence[str], drops: np.ndarray) -> bytes:
    """Heat-map of the accuracy drop (points) when one op alone uses one candidate.

    Args:
        ops: row labels (op names, in model order).
        candidates: column labels (multiplier names).
        drops: ``float[len(ops), len(candidates)]`` accuracy drop in percentage points;
            NaN marks pairs that were not profiled (drawn grey).

    Returns:
        PNG bytes.
    """
    drops = np.asarray(drops, dtype=float)
    height = max(2.8, 0.24 * len(ops) + 1.6)
    width = max(5.0, 0.65 * len(candidates) + 3.8)
    fig = _new_figure(width, height)
    ax = fig.add_subplot()
    finite = drops[np.isfinite(drops)]
    vmax = float(np.max(np.abs(finite))) if finite.size else 1.0
    vmax = vmax if vmax > 0 else 1.0
    import matplotlib

    cmap = matplotlib.colormaps["RdYlGn_r"].with_extremes(bad="0.85")
    im = ax.imshow(np.ma.masked_invalid(drops), cmap=cmap, vmin=-vmax, vmax=vmax, aspect="auto",
                   interpolation="nearest")
    ax.set_xticks(range(len(candidates)), labels=list(candidates), rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(ops)), labels=list(ops), fontsize=7)
    if len(ops) * len(candidates) <= 400:
        for i in range(len(ops)):
            for j in range(len(candidates)):
                if np.isfinite(drops[i, j]):
                    ax.text(j, i, f"{drops[i, j]:.1f}", ha="center", va="center", fontsize=6, color="black")
    fig.colorbar(im, ax=ax, label="accuracy drop, points", shrink=0.8)
    ax.set_title("Sensitivity: accuracy drop when one op alone uses the multiplier", fontsize=10)
    return _png(fig)


def reward_convergence(rewards: Sequence[float]) -> bytes:
    """Per-iteration MCTS reward with its running mean and running best.

    Args:
        rewards: reward of each MCTS iteration, in order.

    Returns:
        PNG bytes.
    """
    r = np.asarray(rewards, dtype=float)
    it = np.arange(1, r.size + 1)
    fig = _new_figure(7.0, 3.6)
    ax = fig.add_subplot()
    ax.plot(it, r, lw=0.6, alpha=0.45, color="tab:blue", label="reward per iteration")
    if r.size:
        ax.plot(it, np.cumsum(r) / it, lw=1.5, color="tab:blue", label="running mean")
        ax.plot(it, np.maximum.accumulate(r), lw=1.5, color="tab:orange", label="running best")
    ax.set_xlabel("MCTS iteration")
    ax.set_ylabel("reward")
    ax.set_title("MCTS reward convergence", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return _png(fig)


def surrogate_scatter(
    predicted: Sequence[float], true: Sequence[float], *, rmse: float | None = None, kendall_tau: float | None = None
) -> bytes:
    """Predicted vs true accuracy drop of the surrogate on held-out configurations.

    Args:
        predicted: surrogate predictions of the accuracy drop (percentage points).
        true: measured accuracy drops of the same configurations (points).
        rmse: the search's held-out RMSE in points, printed in the title when given.
        kendall_tau: the search's held-out Kendall rank correlation, printed when given.

    Returns:
        PNG bytes.
    """
    p = np.asarray(predicted, dtype=float)
    t = np.asarray(true, dtype=float)
    fig = _new_figure(4.8, 4.6)
    ax = fig.add_subplot()
    ax.scatter(t, p, s=18, alpha=0.7, color="tab:purple", linewidths=0)
    if p.size:
        lo = float(min(p.min(), t.min()))
        hi = float(max(p.max(), t.max()))
        pad = max(0.1, 0.05 * (hi - lo))
        ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color="0.4", lw=0.9, ls="--", label="ideal")
        ax.set_xlim(lo - pad, hi + pad)
        ax.set_ylim(lo - pad, hi + pad)
        ax.legend(fontsize=8, loc="upper left")
    ax.set_aspect("equal", adjustable="box")
    ax.set_xlabel("true accuracy drop, points")
    ax.set_ylabel("predicted accuracy drop, points")
    parts = [f"n = {p.size}"]
    if rmse is not None:
        parts.append(f"RMSE = {rmse:.2f} points")
    if kendall_tau is not None:
        parts.append(f"Kendall τ = {kendall_tau:.3f}")
    ax.set_title("Surrogate on held-out configurations\n" + ", ".join(parts), fontsize=10)
    ax.grid(True, alpha=0.3)
    return _png(fig)
