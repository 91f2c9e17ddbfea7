"""The search problem every method works on: space, true evaluations, budget, checkpoint.

:class:`SearchProblem` is the only way a method gets a true evaluation.  It

* keeps the history (the all-exact reference first, as evaluation 0, free),
* answers a configuration already in the history without spending budget,
* stops at the budget (a method asking for more gets fewer evaluations back),
* replays the evaluations of an interrupted run from its checkpoint, and saves the
  checkpoint atomically after every batch.

Checkpoint/resume works by deterministic replay: a search is a pure function of its
settings, seed and the accuracies it measures, so a resumed search re-runs its (cheap)
decisions, finds each configuration it had already evaluated in the checkpoint
instead of re-evaluating it, and continues where the interrupted run stopped.  The
tree, the surrogate's training data and its fits are rebuilt exactly on the way.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from axhw.errors import ConfigError, DataError
from axhw.io import atomic_write_json
from axhw.search.evaluate import Evaluator
from axhw.search.plan import cap_types, check_max_types
from axhw.search.result import Evaluation
from axhw.search.space import SearchSpace

__all__ = ["SearchProblem", "CHECKPOINT_SCHEMA"]

#: Version of the checkpoint JSON.
CHECKPOINT_SCHEMA = 1


class SearchProblem:
    """Space + evaluator + budget + history, shared by every search method.

    Args:
        space: the design space.
        evaluator: the true evaluator (cached, parallel).
        reference_accuracy: accuracy that drops are measured from (int8 or fp32).
        int8_accuracy: accuracy of the all-exact configuration.
        max_accuracy_drop: the constraint, in points.
        sensitivity: ``(n_ops, n_candidates)`` single-op drops in points (below int8).
        budget: number of true evaluations allowed (the reference is free).
        checkpoint: JSON file to save progress to and resume from (``None``: none).
        fingerprint: identifies the search settings; a checkpoint of other settings
            is refused.
        progress: show a tqdm bar over the budget.
        max_types: at most this many distinct multiplier types per configuration
            (``None``: no cap); a configuration over it is evaluated as
            :func:`~axhw.search.plan.cap_types` makes it fit, and answers for both.

    Raises:
        ConfigError: the checkpoint belongs to a different search.
    """

    def __init__(self, space: SearchSpace, evaluator: Evaluator, *, reference_accuracy: float, int8_accuracy: float,
                 max_accuracy_drop: float, sensitivity: np.ndarray, budget: int,
                 checkpoint: str | os.PathLike | None = None, fingerprint: str = "", progress: bool = False,
                 checkpoint_extra: dict[str, Any] | None = None, max_types: int | None = None) -> None:
        self.max_types = check_max_types(max_types)
        self._alias: dict[tuple[int, ...], tuple[int, ...]] = {}  # over the cap -> the configuration evaluated
        self.space = space
        self.evaluator = evaluator
        self.reference_accuracy = float(reference_accuracy)
        self.int8_accuracy = float(int8_accuracy)
        self.max_accuracy_drop = float(max_accuracy_drop)
        self.sensitivity = np.asarray(sensitivity, dtype=float)
        self.budget = int(budget)
        self.checkpoint = None if checkpoint is None else Path(checkpoint)
        self.fingerprint = fingerprint
        self.checkpoint_extra = dict(checkpoint_extra or {})
        self.history: list[Evaluation] = []
        self._keys: dict[tuple[int, ...], Evaluation] = {}
        self._replay: dict[tuple[int, ...], float] = {}
        self._replay_outcomes: dict[tuple[int, ...], tuple[int, str]] = {}
        self.n_replayed = 0
        if self.checkpoint is not None and self.checkpoint.is_file():
            self._replay = self._read_checkpoint(self.checkpoint)
        self._bar: Any = None
        if progress:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=self.budget, desc="true evaluations", unit="eval")
        x0 = space.exact_config()
        self._record([x0], [self.int8_accuracy], "reference", [None])

    # ------------------------------------------------------------------ helpers
    def drop(self, accuracy: float | np.ndarray) -> float | np.ndarray:
        """Accuracy drop in points below the reference."""
        return 100.0 * (self.reference_accuracy - np.asarray(accuracy, dtype=float)) if np.ndim(accuracy) \
            else 100.0 * (self.reference_accuracy - float(accuracy))

    @property
    def n_spent(self) -> int:
        """True evaluations spent (the reference excluded)."""
        return len(self.history) - 1

    @property
    def remaining(self) -> int:
        return max(0, self.budget - self.n_spent)

    def is_evaluated(self, x: Sequence[int] | np.ndarray) -> bool:
        key = tuple(int(v) for v in x)
        return self._alias.get(key, key) in self._keys

    def lookup(self, x: Sequence[int] | np.ndarray) -> Evaluation | None:
        key = tuple(int(v) for v in x)
        return self._keys.get(self._alias.get(key, key))

    def _capped(self, X: np.ndarray) -> np.ndarray:
        """``X`` with every row over :attr:`max_types` made to fit (remembered as aliases)."""
        if self.max_types is None:
            return X
        out = X.copy()
        for r, x in enumerate(X):
            fit = cap_types(x, self.max_types, self.space.macs, self.sensitivity, self.space.energy_pj)
            if not np.array_equal(fit, x):
                self._alias[tuple(int(v) for v in x)] = tuple(int(v) for v in fit)
                out[r] = fit
        return out

    def training_data(self) -> tuple[np.ndarray, np.ndarray]:
        """``(X, drops)`` of every true evaluation so far (reference included)."""
        X = np.array(list(self._keys), dtype=np.int64)  # one key per evaluation, in history order
        return X, np.array([self.drop(e.accuracy) for e in self.history], dtype=float)

    def best_feasible(self) -> Evaluation | None:
        feasible = [e for e in self.history if self.drop(e.accuracy) <= self.max_accuracy_drop + 1e-9]
        return min(feasible, key=lambda e: (e.power_rel, -e.accuracy, e.index)) if feasible else None

    # --------------------------------------------------------------- evaluation
    def evaluate(self, X: Sequence[Sequence[int]] | np.ndarray, method: str,
                 predicted_drop: Sequence[float | None] | None = None) -> list[Evaluation]:
        """True-evaluate configurations (rows of ``X``), within the budget.

        Configurations already in the history come back as they are, free; new ones
        are evaluated in one batch, in order, until the budget runs out (so the list
        returned can be shorter than ``X``).

        Args:
            X: candidate-index rows.
            method: name recorded in each new :class:`Evaluation`.
            predicted_drop: the surrogate's predicted drop (points) of each row, if any.
        """
        X = self._capped(np.atleast_2d(np.asarray(X, dtype=np.int64)))
        predicted_drop = list(predicted_drop) if predicted_drop is not None else [None] * len(X)
        out: list[Evaluation | int] = []
        new_rows: list[np.ndarray] = []
        new_pred: list[float | None] = []
        pending: dict[tuple[int, ...], int] = {}
        for x, pred in zip(X, predicted_drop):
            key = tuple(int(v) for v in x)
            if key in self._keys:
                out.append(self._keys[key])
            elif key in pending:
                out.append(pending[key])
            elif len(new_rows) < self.remaining:
                pending[key] = len(new_rows)
                out.append(len(new_rows))
                new_rows.append(x)
                new_pred.append(pred)
        if new_rows:
            accuracies: list[float | None] = [self._replay.get(key) for key in pending]  # same order as new_rows
            missing = [i for i, a in enumerate(accuracies) if a is None]
            self.n_replayed += len(new_rows) - len(missing)
            if missing:
                measured = self.evaluator.evaluate([self.space.decode(new_rows[i]) for i in missing])
                for i, a in zip(missing, measured):
                    accuracies[i] = a
            created = self._record(new_rows, [float(a) for a in accuracies], method, new_pred)
            out = [created[o] if isinstance(o, int) else o for o in out]
            self.save_checkpoint()
        return [o for o in out if isinstance(o, Evaluation)]

    def _record(self, rows: Sequence[np.ndarray], accuracies: Sequence[float], method: str,
                predicted_drop: Sequence[float | None]) -> list[Evaluation]:
        from axhw.stats import pack_outcomes

        created = []
        for x, acc, pred in zip(rows, accuracies, predicted_drop):
            outcomes = self._outcomes(x)
            e = Evaluation(
                index=len(self.history),
                method=method,
                config=self.space.decode(x),
                accuracy=float(acc),
                power_rel=float(self.space.power_rel(x)),
                area_rel=self.space.area_rel(x),
                predicted_accuracy=None if pred is None else float(self.reference_accuracy - pred / 100.0),
                n_images=None if outcomes is None else int(outcomes.size),
                correct=None if outcomes is None else pack_outcomes(outcomes),
            )
            self.history.append(e)
            self._keys[tuple(int(v) for v in x)] = e
            created.append(e)
        if self._bar is not None and method != "reference":
            self._bar.update(len(created))
            best = self.best_feasible()
            if best is not None:
                self._bar.set_postfix_str(f"best saving {100 * (1 - best.power_rel):.1f}% at "
                                          f"drop {self.drop(best.accuracy):.2f}", refresh=False)
        return created

    def _outcomes(self, x: np.ndarray) -> np.ndarray | None:
        """Per-image outcomes of row ``x``: from the evaluator, else from the checkpoint (``None``: not kept)."""
        from axhw.stats import unpack_outcomes

        get = getattr(self.evaluator, "outcomes", None)
        kept = get(self.space.decode(x)) if callable(get) else None
        saved = self._replay_outcomes.get(tuple(int(v) for v in x))
        if kept is None and saved is not None:
            kept = unpack_outcomes(saved[1], saved[0])
        return kept

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    # --------------------------------------------------------------- checkpoint
    def save_checkpoint(self) -> None:
        """Write every true evaluation so far to the checkpoint file (atomically)."""
        if self.checkpoint is None:
            return
        evaluations = {k: e.accuracy for k, e in self._keys.items() if e.index > 0}  # the reference is not saved
        evaluations.update(self._replay)  # keep replayed-but-not-yet-reached entries
        outcomes = dict(self._replay_outcomes)
        outcomes.update({k: (e.n_images, e.correct) for k, e in self._keys.items()
                         if e.index > 0 and e.correct is not None and e.n_images is not None})
        atomic_write_json(self.checkpoint, {
            "schema": CHECKPOINT_SCHEMA,
            "kind": "axhw.search.checkpoint",
            "fingerprint": self.fingerprint,
            "candidates": self.space.candidates,
            "ops": self.space.op_names,
            # [config, accuracy] or [config, accuracy, n_images, packed per-image outcomes]
            "evaluations": [[list(k), float(v), *outcomes.get(k, ())] for k, v in evaluations.items()],
            "reference_outcomes": ([self.history[0].n_images, self.history[0].correct]
                                   if self.history and self.history[0].correct is not None else None),
            **self.checkpoint_extra,
        })

    def _read_checkpoint(self, path: Path) -> dict[tuple[int, ...], float]:
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise DataError(f"checkpoint {path} cannot be read ({exc}); delete it to start over") from exc
        if data.get("kind") != "axhw.search.checkpoint" or data.get("schema") != CHECKPOINT_SCHEMA:
            raise DataError(f"{path} is not an axhw search checkpoint of schema {CHECKPOINT_SCHEMA}; "
                            "delete it or pass another --checkpoint path")
        if data.get("fingerprint") != self.fingerprint:
            raise ConfigError(f"checkpoint {path} belongs to a search with other settings (model, data, candidates, "
                              "method, seed, constraint or method parameters differ); pass another checkpoint path, "
                              "or delete it to start over")
        replay = {}
        ref = data.get("reference_outcomes")
        if isinstance(ref, list) and len(ref) == 2:
            self._replay_outcomes[tuple(int(v) for v in self.space.exact_config())] = (int(ref[0]), str(ref[1]))
        for entry in data.get("evaluations", []):
            key = tuple(int(v) for v in entry[0])
            replay[key] = float(entry[1])
            if len(entry) == 4:
                self._replay_outcomes[key] = (int(entry[2]), str(entry[3]))
        return replay
