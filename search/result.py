"""Search records: one true evaluation (:class:`Evaluation`) and a whole search (:class:`SearchResult`).

Units:

* ``accuracy`` is top-1 accuracy in ``[0, 1]`` on the images the search selected on
  (``settings["eval_split"]``, the ``search`` split by default); the final figures
  of the reported configurations are in :attr:`SearchResult.holdout`, measured on
  the ``test`` split after every choice was made.
* Every accuracy carries its image count, and (when the evaluator kept them) which
  images it got right, so :meth:`SearchResult.accuracy_interval` gives its Wilson
  95 % interval and :meth:`SearchResult.drop_estimate` the paired interval of its
  drop below the int8 model on the same images (:mod:`axhw.stats`).
* ``power_rel`` is the total multiplier energy of a configuration divided by the
  total of the all-reference design, ``Σ_ops MACs_op × energy_pj(m_op) / Σ_ops MACs_op ×
  energy_pj(reference)`` (so ``1 - power_rel`` is the power saving); the reference is
  ``candidates[0]`` (``settings["power_reference"]``), the cheapest zero-error design
  of the database for results written by :func:`axhw.search.run`.
* An *accuracy drop* is in percentage points below the reference accuracy:
  ``drop = 100 × (reference_accuracy - accuracy)``, where the reference is the int8
  all-exact model (default) or the float model (``settings["reference"] == "fp32"``);
  ``max_accuracy_drop`` uses the same unit.

Both records serialize to plain JSON (``to_json``/``from_json``) carrying a
``schema`` number; :meth:`SearchResult.save` writes atomically and
:meth:`SearchResult.load` raises :class:`~axhw.errors.DataError` for a truncated file
or an unknown schema.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from axhw.errors import ConfigError, DataError
from axhw.io import atomic_write_json
from axhw.records import OpInfo
from axhw.stats import BOUNDS, DropEstimate, paired_drop, unpack_outcomes, wilson_interval

__all__ = ["Evaluation", "SearchResult", "RESULT_SCHEMA", "pareto_indices"]

#: Version of the JSON written by :meth:`SearchResult.to_json` (2: per-image outcomes,
#: constraint bound and held-out test scores; schema 1 files are still read).
RESULT_SCHEMA = 2


@dataclass(frozen=True)
class Evaluation:
    """One configuration whose accuracy was measured (a *true* evaluation).

    Attributes:
        index: position in the search history (0, 1, ...), i.e. the number of true
            evaluations made before this one.
        method: the search method that proposed it (``"mcts"``, ``"random"``, ...,
            or ``"reference"`` for the all-exact int8 configuration).
        config: explicit per-op table, op name -> multiplier name, one entry per op
            of :attr:`SearchResult.ops`.
        accuracy: measured top-1 accuracy in ``[0, 1]``.
        power_rel: total multiplier energy relative to the all-exact design.
        area_rel: MAC-weighted multiplier area relative to the all-exact design, or
            ``None`` when some candidate has no area.
        predicted_accuracy: the surrogate's prediction made *before* this true
            evaluation (``None`` for methods that do not use a surrogate).
        n_images: images the accuracy was measured on (``None``: not recorded).
        correct: which of them it got right, packed by :func:`axhw.stats.pack_outcomes`
            (``None``: not kept).
    """

    SCHEMA = 2
    index: int
    method: str
    config: dict[str, str]
    accuracy: float
    power_rel: float
    area_rel: float | None = None
    predicted_accuracy: float | None = None
    n_images: int | None = None
    correct: str | None = None

    def outcomes(self) -> Any:
        """Per-image correctness as a bool array, or ``None`` when not kept."""
        if self.correct is None or self.n_images is None:
            return None
        return unpack_outcomes(self.correct, self.n_images)

    @property
    def power_saving(self) -> float:
        """``1 - power_rel``: fraction of the all-exact multiplier energy saved."""
        return 1.0 - self.power_rel

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["schema"] = self.SCHEMA
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Evaluation":
        if data.get("schema") not in (1, cls.SCHEMA):
            raise DataError(f"evaluation record has schema {data.get('schema')!r}; this axhw reads schemas 1 and {cls.SCHEMA}")
        names = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in names}
        kwargs["config"] = dict(kwargs["config"])
        return cls(**kwargs)


def _op_to_json(op: Any) -> dict[str, Any]:
    return {"name": str(op.name), "kind": str(op.kind), "macs_per_image": int(op.macs_per_image)}


def _op_from_json(data: dict[str, Any]) -> OpInfo:
    return OpInfo(name=data["name"], kind=data["kind"], macs_per_image=int(data["macs_per_image"]))


def pareto_indices(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the points not dominated when minimizing both coordinates.

    Among equal points the first one is kept.  Sorted by the first coordinate.
    """
    order = sorted(range(len(points)), key=lambda i: (points[i][0], points[i][1], i))
    front: list[int] = []
    best_second = float("inf")
    for i in order:
        if points[i][1] < best_second:
            front.append(i)
            best_second = points[i][1]
    return front


@dataclass
class SearchResult:
    """Everything a search produced: settings, every true evaluation, and what it learned.

    Attributes:
        model_name: name of the searched model (e.g. ``"default"``).
        dataset: data-set spec the accuracies were measured on (e.g. ``"digits"``).
        ops: the approximable ops, in model order (:class:`axhw.records.OpInfo`).
        candidates: candidate multiplier names, ``"exact"`` first.
        method: the search method (``"mcts"``, ``"mcts_uniform"``, ``"random"``,
            ``"greedy"``, ``"knapsack"``, ``"nsga2"``, ``"uniform"``).
        seed: the seed the search ran with.
        max_accuracy_drop: the constraint, in accuracy points below
            :attr:`reference_accuracy`.
        fp32_accuracy: accuracy of the float model on the same subset.
        int8_accuracy: accuracy of the all-exact int8 model (the default reference).
        history: every true evaluation, in the order they were made.
        sensitivity: op name -> multiplier name -> accuracy drop (points below
            ``int8_accuracy``) when that op alone uses that multiplier.
        surrogate_metrics: ``{"rmse": points, "kendall_tau": float, "predicted": [...],
            "true": [...], "protocol": str}`` on true evaluations the surrogate had not
            been trained on (empty when no surrogate was used or too few points).
        mcts_rewards: reward of every MCTS rollout, in order (empty for other methods).
        settings: the options the search ran with (budget, executor, subset sizes,
            policy parameters, power model, ``eval_split``, ``bound``, ...).
        versions: package name -> version string.
        holdout: final scores on a split no choice has seen (empty when not measured):
            ``{"split": "test", "n_images": N, "reference": {"accuracy", "correct"},
            "fp32_accuracy": float, "evaluations": {str(index): {"accuracy", "correct"}}}``
            for the reported configurations (the best at the limit and the Pareto front).
    """

    model_name: str
    dataset: str
    ops: list[Any]
    candidates: list[str]
    method: str
    seed: int
    max_accuracy_drop: float
    fp32_accuracy: float
    int8_accuracy: float
    history: list[Evaluation] = field(default_factory=list)
    sensitivity: dict[str, dict[str, float]] = field(default_factory=dict)
    surrogate_metrics: dict[str, Any] = field(default_factory=dict)
    mcts_rewards: list[float] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    holdout: dict[str, Any] = field(default_factory=dict)

    # ------------------------------------------------------------------ queries
    @property
    def reference_accuracy(self) -> float:
        """Accuracy that drops are measured from: ``fp32_accuracy`` when
        ``settings["reference"] == "fp32"``, else ``int8_accuracy``."""
        return self.fp32_accuracy if self.settings.get("reference") == "fp32" else self.int8_accuracy

    def accuracy_drop(self, evaluation: Evaluation) -> float:
        """Accuracy drop of ``evaluation`` in points: ``100 × (reference_accuracy - accuracy)``."""
        return 100.0 * (self.reference_accuracy - evaluation.accuracy)

    @property
    def eval_split(self) -> str:
        """The split the history's accuracies were measured on."""
        return str(self.settings.get("eval_split", "unrecorded"))

    @property
    def bound(self) -> str:
        """How the constraint is checked: ``point`` (default), ``upper`` or ``lower`` end of the paired interval."""
        return str(self.settings.get("bound", "point"))

    def accuracy_interval(self, evaluation: Evaluation) -> tuple[float, float] | None:
        """Wilson 95 % interval of ``evaluation.accuracy`` (fractions), or ``None`` without an image count."""
        n = evaluation.n_images or self.settings.get("eval_images")
        if not n:
            return None
        return wilson_interval(int(round(evaluation.accuracy * int(n))), int(n))

    def drop_estimate(self, evaluation: Evaluation) -> DropEstimate | None:
        """Paired drop of ``evaluation`` below the int8 all-exact model (history[0]) on the same images.

        ``None`` when per-image outcomes were not kept, or when drops are measured
        from the fp32 model (that reference has no per-image record here).
        """
        if not self.history or self.settings.get("reference") == "fp32":
            return None
        ref, other = self.history[0].outcomes(), evaluation.outcomes()
        if ref is None or other is None or len(ref) != len(other):
            return None
        return paired_drop(ref, other)

    def constrained_drop(self, evaluation: Evaluation, bound: str | None = None) -> float:
        """The drop the constraint is checked against (points): point estimate or an interval end."""
        which = self.bound if bound is None else bound
        if which not in BOUNDS:
            raise ConfigError(f"bound must be one of {', '.join(BOUNDS)}, got {which!r}")
        if which == "point":
            return self.accuracy_drop(evaluation)
        estimate = self.drop_estimate(evaluation)
        if estimate is None:
            raise ConfigError(f"bound {which!r} needs per-image outcomes of the int8 reference and of each "
                              "configuration, which this result does not carry; use bound='point'")
        return estimate.bound(which)

    def feasible(self, max_accuracy_drop: float | None = None, bound: str | None = None) -> list[Evaluation]:
        """True evaluations whose drop (checked at ``bound``, default the search's) is at most the limit."""
        limit = self.max_accuracy_drop if max_accuracy_drop is None else max_accuracy_drop
        return [e for e in self.history if self.constrained_drop(e, bound) <= limit + 1e-9]

    def holdout_evaluation(self, evaluation: Evaluation) -> dict[str, Any] | None:
        """Held-out (test split) score of a reported configuration, with its intervals.

        Returns:
            ``{"split", "accuracy", "n_images", "interval": (lo, hi), "drop": DropEstimate
            or None}`` or ``None`` when the configuration was not scored on held-out images.
        """
        entry = (self.holdout.get("evaluations") or {}).get(str(evaluation.index))
        if entry is None:
            return None
        n = int(self.holdout["n_images"])
        correct = unpack_outcomes(entry["correct"], n)
        ref = self.holdout.get("reference") or {}
        drop = paired_drop(unpack_outcomes(ref["correct"], n), correct) if ref.get("correct") else None
        k = int(correct.sum())
        return {"split": str(self.holdout.get("split", "test")), "accuracy": k / n, "n_images": n,
                "interval": wilson_interval(k, n), "drop": drop}

    def pareto(self, method: str | None = None) -> list[Evaluation]:
        """The true-evaluated Pareto front: highest accuracy for the least power.

        Args:
            method: keep only evaluations proposed by this method (``None``: all).

        Returns:
            Non-dominated evaluations (maximize ``accuracy``, minimize ``power_rel``),
            sorted by increasing ``power_rel``.  Of identical points the earliest is kept.
        """
        pool = [e for e in self.history if method is None or e.method == method]
        front = pareto_indices([(e.power_rel, -e.accuracy) for e in pool])
        return [pool[i] for i in front]

    def best(self, max_accuracy_drop: float | None = None, bound: str | None = None) -> Evaluation:
        """The lowest-power evaluation meeting the constraint, else the closest one.

        Args:
            max_accuracy_drop: constraint in points (default: the search's).

        Returns:
            Among evaluations with drop ``<= max_accuracy_drop`` the one with the lowest
            ``power_rel`` (ties: higher accuracy).  When none meets it, the evaluation
            with the highest accuracy (ties: lower power) — check :meth:`constraint_met`.

        Raises:
            DataError: the history is empty.
        """
        if not self.history:
            raise DataError("this search result has no evaluations; run a search with a budget of at least 1")
        feasible = self.feasible(max_accuracy_drop, bound)
        if feasible:
            return min(feasible, key=lambda e: (e.power_rel, -e.accuracy, e.index))
        return max(self.history, key=lambda e: (e.accuracy, -e.power_rel, -e.index))

    def constraint_met(self, max_accuracy_drop: float | None = None, bound: str | None = None) -> bool:
        """Whether some true evaluation meets the accuracy constraint."""
        return bool(self.feasible(max_accuracy_drop, bound))

    # ------------------------------------------------------------ serialization
    def to_json(self) -> dict[str, Any]:
        """Plain-JSON form (``schema`` :data:`RESULT_SCHEMA`)."""
        return {
            "schema": RESULT_SCHEMA,
            "kind": "axhw.search.SearchResult",
            "model_name": self.model_name,
            "dataset": self.dataset,
            "ops": [_op_to_json(op) for op in self.ops],
            "candidates": list(self.candidates),
            "method": self.method,
            "seed": int(self.seed),
            "max_accuracy_drop": float(self.max_accuracy_drop),
            "fp32_accuracy": float(self.fp32_accuracy),
            "int8_accuracy": float(self.int8_accuracy),
            "history": [e.to_json() for e in self.history],
            "sensitivity": {op: dict(row) for op, row in self.sensitivity.items()},
            "surrogate_metrics": dict(self.surrogate_metrics),
            "mcts_rewards": [float(r) for r in self.mcts_rewards],
            "settings": dict(self.settings),
            "versions": dict(self.versions),
            "holdout": dict(self.holdout),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "SearchResult":
        """Inverse of :meth:`to_json`.

        Raises:
            DataError: not a search result, or a schema this axhw cannot read.
        """
        if not isinstance(data, dict) or data.get("kind") != "axhw.search.SearchResult":
            raise DataError("not an axhw search result (missing kind 'axhw.search.SearchResult'); "
                            "pass the JSON written by `axhw search` or SearchResult.save()")
        if data.get("schema") not in (1, RESULT_SCHEMA):
            raise DataError(f"search result has schema {data.get('schema')!r}; this axhw reads schemas 1 and "
                            f"{RESULT_SCHEMA}; re-run the search with this version")
        try:
            return cls(
                model_name=data["model_name"],
                dataset=data["dataset"],
                ops=[_op_from_json(op) for op in data["ops"]],
                candidates=list(data["candidates"]),
                method=data["method"],
                seed=int(data["seed"]),
                max_accuracy_drop=float(data["max_accuracy_drop"]),
                fp32_accuracy=float(data["fp32_accuracy"]),
                int8_accuracy=float(data["int8_accuracy"]),
                history=[Evaluation.from_json(e) for e in data["history"]],
                sensitivity={op: {m: float(v) for m, v in row.items()} for op, row in data["sensitivity"].items()},
                surrogate_metrics=dict(data.get("surrogate_metrics", {})),
                mcts_rewards=[float(r) for r in data.get("mcts_rewards", [])],
                settings=dict(data.get("settings", {})),
                versions=dict(data.get("versions", {})),
                holdout=dict(data.get("holdout", {})),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"search result is incomplete or malformed ({type(exc).__name__}: {exc}); "
                            "re-run the search") from exc

    def save(self, path: str | os.PathLike) -> Path:
        """Write the result as JSON, atomically; returns the path."""
        return atomic_write_json(path, self.to_json())

    @classmethod
    def load(cls, path: str | os.PathLike) -> "SearchResult":
        """Read a result written by :meth:`save`.

        Raises:
            DataError: the file is missing, truncated, not JSON, or of another schema.
        """
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise DataError(f"cannot read search result {path}: {exc.strerror or exc}") from exc
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataError(f"search result {path} is not valid JSON (truncated? line {exc.lineno}, "
                            f"column {exc.colno}); re-run the search") from exc
        try:
            return cls.from_json(data)
        except DataError as exc:
            raise DataError(f"{path}: {exc}") from exc
