"""Test doubles for the search tests (tests only: never imported by axhw).

:class:`SyntheticTask` stands in for "approximate the model, then measure accuracy"
with a closed form whose structure resembles the real one: each (op, multiplier)
pair has a drop ``d[i, j] = s_i · e_j`` (op sensitivity × multiplier error, cheaper
designs err more), drops compound super-additively, and accuracy is quantized to a
fixed number of test images.  It counts its calls so tests can check that cached,
replayed or checkpointed evaluations are not repeated.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np

from axhw.search import Evaluator, SearchSpace

#: energy per multiplication (pJ) of the synthetic candidates, exact first
ENERGY = {"exact": 1.0, "m1": 0.85, "m2": 0.7, "m3": 0.5, "m4": 0.35, "m5": 0.2}
#: error scale of each candidate (exact: none)
ERROR = {"exact": 0.0, "m1": 0.05, "m2": 0.15, "m3": 0.35, "m4": 1.0, "m5": 3.0}
KINDS = ("linear", "qk", "av", "linear", "linear", "linear")


@dataclass(frozen=True)
class FakeOp:
    """Same fields as ``axhw.emulator.OpInfo``."""

    name: str
    kind: str
    macs_per_image: int


def make_ops(n_ops: int = 12, seed: int = 0) -> list[FakeOp]:
    rng = np.random.default_rng(seed)
    return [FakeOp(f"blocks.{i // 6}.op{i % 6}", KINDS[i % 6], int(rng.integers(1_000, 20_000)))
            for i in range(n_ops)]


def make_space(n_ops: int = 12, candidates: tuple[str, ...] = ("m1", "m2", "m3", "m4", "m5"), seed: int = 0) -> SearchSpace:
    ops = make_ops(n_ops, seed)
    return SearchSpace(ops, list(candidates), {k: v for k, v in ENERGY.items()},
                       area_um2={k: 100 * v for k, v in ENERGY.items()},
                       error_metrics={k: {"mae_percent": v, "wce_percent": 3 * v} for k, v in ERROR.items()})


class SyntheticTask:
    """Closed-form accuracy of a configuration (see the module docstring).

    Args:
        op_names: op names in order.
        seed: seed of the per-op sensitivities.
        base: accuracy of the all-exact configuration.
        n_images: accuracy is a multiple of ``1 / n_images``.
        gamma: compounding: ``drop = D + gamma · D²`` with ``D = Σ d[i, x_i]`` (points).
        fail_after: raise ``KeyboardInterrupt`` on this call number (simulates Ctrl-C).
    """

    def __init__(self, op_names: list[str], seed: int = 0, base: float = 0.95, n_images: int = 1000,
                 gamma: float = 0.15, fail_after: int | None = None) -> None:
        rng = np.random.default_rng(seed + 100)
        self.op_names = list(op_names)
        self.sens = rng.gamma(0.8, 1.0, size=len(op_names))
        self.base = base
        self.n_images = n_images
        self.gamma = gamma
        self.fail_after = fail_after
        self.calls = 0
        self.fingerprint = f"synthetic:{seed}:{base}:{n_images}:{gamma}:{','.join(op_names)}"

    def true_drop(self, config: Mapping[str, str]) -> float:
        D = float(sum(self.sens[i] * ERROR[config.get(op, "exact")] for i, op in enumerate(self.op_names)))
        return D + self.gamma * D * D

    def __call__(self, config: Mapping[str, str]) -> float:
        self.calls += 1
        if self.fail_after is not None and self.calls >= self.fail_after:
            raise KeyboardInterrupt("simulated interruption")
        acc = self.base - self.true_drop(config) / 100.0
        return float(np.clip(np.round(acc * self.n_images) / self.n_images, 0.0, 1.0))

    def float_accuracy(self) -> float:
        return self.base + 0.01


def make_problem(n_ops: int = 12, seed: int = 0, **task_kw):
    """``(space, task, evaluator)`` with a serial, memory-only evaluator."""
    space = make_space(n_ops)
    task = SyntheticTask(space.op_names, seed=seed, **task_kw)
    return space, task, Evaluator(task, "serial", cache_dir=False)
