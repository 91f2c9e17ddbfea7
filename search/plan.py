"""Before and around a search: prune dominated candidates, cap multiplier types, state the cost.

**Dominance.**  Candidate ``B`` dominates candidate ``A`` when ``B`` makes no more error
on *every* operand pair, ``|lut_B(a, b) - a·b| <= |lut_A(a, b) - a·b|`` for all 65,536
pairs (identical tables qualify), and costs no more energy per multiplication,
``E_B <= E_A``, with ``E_B < E_A`` or, at equal energy, a smaller area or (all equal)
an earlier name.  No configuration can then prefer ``A``: swapping it for ``B``
keeps every product at least as close and the power no higher.  :func:`dominated`
finds them; the search leaves them out before it profiles anything (a dominated
candidate would cost ``n_ops`` profiling evaluations for nothing) and says so.
Energies are the database's uniform-operand figures on the search's Liberty library.

**Type cap.**  A configuration using more distinct multiplier types than
``max_types`` (the reference counts as one) is made to fit by :func:`cap_types`:
the types carrying the most MACs are kept, and each op on another type moves to the
kept type its sensitivity profile says hurts that op least.

**Cost.**  :func:`estimate_cost` runs the int8 reference and the profile's first
configuration (which pay the one-time set-up: calibration, kernel compilation, the first
candidate's table) and then times the next op on that candidate; the search needs all three
and reads them from the evaluation cache.  It states the
profiling and search evaluations and the estimated time before the search starts.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from axhw.errors import ConfigError

__all__ = ["dominated", "prune_candidates", "prune_for_search", "announce_cost", "cap_types", "check_max_types", "SearchCost", "estimate_cost"]

_EXACT = np.outer(np.arange(-128, 128, dtype=np.int64), np.arange(-128, 128, dtype=np.int64))


def dominated(luts: Mapping[str, np.ndarray], energy_pj: Mapping[str, float],
              area_um2: Mapping[str, float | None] | None = None) -> dict[str, str]:
    """Candidates another one dominates (see the module docstring).

    Args:
        luts: name -> signed-index product table (256, 256).
        energy_pj: name -> energy per multiplication (pJ).
        area_um2: name -> area (µm²), breaking ties of equal energy (``None``: no area).

    Returns:
        ``{dominated name: the name that dominates it}``; the dominating one is itself
        undominated, so keeping every name not in the result loses no choice.
    """
    area = dict(area_um2 or {})
    names = sorted(luts, key=lambda n: (float(energy_pj[n]), float(area.get(n) or 0.0), n))  # cheapest first
    errors = {n: np.abs(np.asarray(luts[n], dtype=np.int64) - _EXACT) for n in names}
    out: dict[str, str] = {}
    kept: list[str] = []
    for name in names:  # anything that dominates `name` sorts before it
        by = next((k for k in kept if np.all(errors[k] <= errors[name])), None)
        if by is None:
            kept.append(name)
        else:
            out[name] = by
    return out


def prune_candidates(names: Sequence[str], liberty: str = "osu018", keep: Sequence[str] = ()) -> tuple[list[str], dict[str, str]]:
    """Drop dominated database candidates (never those in ``keep``, e.g. the power reference).

    Returns:
        ``(kept names in the given order, {dropped: dominating name})``.

    Raises:
        DatabaseError: a name is unknown or has no hardware cost on ``liberty``.
    """
    from axhw import library
    from axhw.search.space import hardware_cost

    pool = list(dict.fromkeys([*names, *keep]))
    mults = {n: library.load(n) for n in pool}
    costs = {n: hardware_cost(m, liberty) for n, m in mults.items()}
    found = dominated({n: m.lut for n, m in mults.items()}, {n: c.energy_pj for n, c in costs.items()},
                      {n: c.area_um2 for n, c in costs.items()})
    dropped = {n: by for n, by in found.items() if n not in keep and n in names}
    return [n for n in names if n not in dropped], dropped


def prune_for_search(names: Sequence[str], liberty: str = "osu018") -> tuple[list[str], dict[str, str]]:
    """:func:`prune_candidates` keeping the search's power reference (the cheapest exact design)."""
    from axhw.hw.baseline import best_exact

    return prune_candidates(names, liberty, keep=[best_exact(liberty).name])


def announce_cost(space: Any, evaluator: Any, budget: Any, pruned: Mapping[str, str], progress: bool) -> dict[str, Any]:
    """:func:`estimate_cost`, printed (to stderr) when ``progress``; the settings to record.

    Nothing is measured for a budget the search will refuse (below the number of ops).
    """
    if not isinstance(budget, (int, np.integer)) or budget < space.n_ops:
        return {}
    cost = estimate_cost(space, evaluator, int(budget), pruned)
    if progress:
        import sys

        print(cost.describe(), file=sys.stderr, flush=True)
    return {"cost_estimate": cost.to_json()}


def check_max_types(max_types: int | None) -> int | None:
    """Validate a type cap (``None``: no cap).

    Raises:
        ConfigError: not a positive whole number.
    """
    if max_types is None:
        return None
    if isinstance(max_types, bool) or not isinstance(max_types, (int, np.integer)) or max_types < 1:
        raise ConfigError(f"max_types must be a positive whole number of multiplier types, got {max_types!r}")
    return int(max_types)


def cap_types(x: Sequence[int] | np.ndarray, max_types: int, macs: np.ndarray, sensitivity: np.ndarray,
              energy_pj: np.ndarray) -> np.ndarray:
    """A configuration using at most ``max_types`` distinct candidates (``x`` itself when it does).

    Args:
        x: candidate index per op.
        max_types: the cap (>= 1).
        macs: MACs per image of each op.
        sensitivity: (n_ops, n_candidates) accuracy drop in points of each op alone on each candidate.
        energy_pj: (n_ops, n_candidates) energy per multiplication, breaking ties of sensitivity.

    Returns:
        The kept types are the ``max_types`` carrying the most MACs in ``x`` (ties: the
        lower index); every other op takes the kept type with the smallest sensitivity
        there (ties: less energy, then the lower index).
    """
    x = np.asarray(x, dtype=np.int64).copy()
    used = np.unique(x)
    if len(used) <= max_types:
        return x
    load = {int(j): float(macs[x == j].sum()) for j in used}
    kept = sorted(load, key=lambda j: (-load[j], j))[:max_types]
    for i in np.flatnonzero(~np.isin(x, kept)):
        x[i] = min(kept, key=lambda j: (float(sensitivity[i, j]), float(energy_pj[i, j]), j))
    return x


@dataclass(frozen=True)
class SearchCost:
    """What a search will spend, stated before it starts.

    Attributes:
        n_ops, n_candidates: the space (``n_candidates`` includes the reference).
        profiling: true evaluations of the sensitivity profile (each op alone on each non-reference candidate).
        search: the budget of true evaluations of full configurations.
        seconds_per_evaluation: measured on one evaluation here (s).
        workers: evaluations run in parallel.
        pruned: dominated candidates left out, ``{name: dominated by}``.
    """

    n_ops: int
    n_candidates: int
    profiling: int
    search: int
    seconds_per_evaluation: float
    workers: int
    pruned: Mapping[str, str]

    @property
    def evaluations(self) -> int:
        """Profiling plus search plus the int8 reference."""
        return self.profiling + self.search + 1

    @property
    def seconds(self) -> float:
        """Estimated wall-clock time (s): evaluations × measured time / workers (cached ones are free)."""
        return self.evaluations * self.seconds_per_evaluation / max(1, self.workers)

    def describe(self) -> str:
        """A few lines for the user."""
        lines = []
        if self.pruned:
            lines.append(f"left out {len(self.pruned)} dominated candidate(s) (another has no more error on any operand "
                         "pair for no more energy): " + ", ".join(f"{a} (by {b})" for a, b in sorted(self.pruned.items())))
        lines.append(f"search plan: {self.n_ops} ops x {self.n_candidates - 1} candidates besides the reference = {self.profiling} profiling "
                     f"evaluations + {self.search} search evaluations + 1 reference = {self.evaluations} true "
                     f"evaluations, ~{_duration(self.seconds)} at {self.seconds_per_evaluation:.2g} s each on "
                     f"{self.workers} worker(s) (evaluations already cached are free)")
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {"profiling_evaluations": self.profiling, "search_evaluations": self.search,
                "seconds_per_evaluation": self.seconds_per_evaluation, "workers": self.workers,
                "estimated_seconds": self.seconds, "pruned": dict(self.pruned)}


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def estimate_cost(space: Any, evaluator: Any, budget: int, pruned: Mapping[str, str] | None = None) -> SearchCost:
    """Time one true evaluation (after the set-up; both cached for the search) and state the cost.

    Args:
        space: the :class:`~axhw.search.SearchSpace`.
        evaluator: the :class:`~axhw.search.Evaluator` the search will use.
        budget: true evaluations of full configurations.
        pruned: dominated candidates already left out (reported).
    """
    from axhw.search.sensitivity import sensitivity_configs

    profile = sensitivity_configs(space)
    # The reference and the profile's first configuration pay the one-time set-up (calibration,
    # compilation, the first candidate's table); the next op on that candidate is timed.  All three
    # are cached, so the profile does not repeat them.
    warm = [space.exact_config()] + [x for _, _, x in profile[:1]]
    evaluator.evaluate([space.decode(x) for x in warm])
    timed = profile[space.n_candidates - 1] if len(profile) >= space.n_candidates else (profile or [(0, 0, warm[0])])[0]
    config = space.decode(timed[2])
    computed = getattr(evaluator, "n_computed", None)
    start = time.perf_counter()
    evaluator.evaluate([config])
    seconds = time.perf_counter() - start
    if computed is not None and evaluator.n_computed == computed:  # read from the cache: time the task itself
        start = time.perf_counter()
        evaluator.task(dict(config))
        seconds = time.perf_counter() - start
    return SearchCost(space.n_ops, space.n_candidates, len(profile), int(budget), seconds,
                      int(getattr(evaluator, "n_workers", 1) or 1), dict(pruned or {}))
