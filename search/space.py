"""The design space: one multiplier per approximable op, and its power model.

A *configuration* assigns each op of :func:`axhw.emulator.layers` one candidate
multiplier.  Inside the search it is an integer vector ``x`` of length ``n_ops``
(``x[i]`` indexes :attr:`SearchSpace.candidates`, where index 0 is always the
*reference*, a zero-error design); outside, an explicit ``{op name: multiplier
name}`` table.

Power model (energy per image, one multiplication per MAC)::

    P(x)      = Σ_i MACs_i × E[i, x_i]            (pJ per image)
    power_rel = P(x) / Σ_i MACs_i × E[i, reference]

``E[i, m]`` is the energy per multiplication of multiplier ``m`` (``HardwareCost.energy_pj``):
per op when workload costs are given (each op's own operand stream, in the order a
weight-stationary datapath sees it: one weight held while the activations stream
past it; see :func:`axhw.emulator.collect_operands`), else the same for every op
(uniform operands, labelled so).  The reference built by :meth:`SearchSpace.from_library`
is the cheapest zero-error design of the library (:func:`axhw.hw.baseline.best_exact`),
not the behavioural ``exact``, so ``1 - power_rel`` is the saving a hardware engineer
would get over the best exact multiplier on hand.  Area is reported the same way,
MAC-weighted: ``area_rel = Σ_i MACs_i × A[x_i] / Σ_i MACs_i × A[reference]``.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from axhw.errors import ConfigError, DatabaseError
from axhw.exact import EXACT
from axhw.io import sha256_bytes
from axhw.records import DEFAULT_LIBERTY

__all__ = ["SearchSpace", "EXACT", "hardware_cost", "lut_digest", "ERROR_FEATURES", "efficient_candidates"]

#: Error statistics of each candidate the surrogate can use, from ``ErrorMetrics``.
ERROR_FEATURES: tuple[str, ...] = ("mae_percent", "wce_percent", "bias", "std", "error_rate")


def _missing_cost(name: str, liberty: str, stream: str = "uniform") -> DatabaseError:
    return DatabaseError(
        f"multiplier {name!r} has no hardware-cost record for liberty {liberty!r} ({stream} operands), so the "
        f"search cannot compute its power; characterize it with `axhw characterize --hw {name}` "
        f"(or drop it from the candidates) and retry"
    )


def hardware_cost(multiplier: Any, liberty: str = DEFAULT_LIBERTY) -> Any:
    """The uniform-operand :class:`~axhw.records.HardwareCost` of ``multiplier`` on ``liberty``.

    Raises:
        DatabaseError: no such record (the message says how to characterize it).
    """
    if liberty == DEFAULT_LIBERTY and getattr(multiplier, "hw", None) is not None:
        return multiplier.hw
    for cost in getattr(multiplier, "costs", ()) or ():
        if cost.liberty == liberty and cost.operand_stream == "uniform":
            return cost
    raise _missing_cost(multiplier.name, liberty)


def lut_digest(lut: np.ndarray) -> str:
    """SHA-256 of a product table's C-ordered bytes: keys the evaluation cache, and the report checks it."""
    return sha256_bytes(np.ascontiguousarray(lut).tobytes())


class SearchSpace:
    """Ops, candidate multipliers, and the energy of every (op, candidate) pair.

    Args:
        ops: the approximable ops in model order (:class:`axhw.records.OpInfo`:
            ``name``, ``kind``, ``macs_per_image``).
        candidates: candidate multiplier names.  ``reference`` is added first when
            absent (it is the power reference and keeps every constraint reachable);
            duplicates are dropped.
        energy_pj: energy per multiplication, either one value per multiplier
            (``{name: pJ}``, uniform operands) or per op (``{op: {name: pJ}}``).
        area_um2: area per multiplier (``{name: µm²}``); ``None``: no area figures.
        error_metrics: per multiplier, a mapping with the :data:`ERROR_FEATURES`
            statistics (e.g. ``ErrorMetrics`` fields) used as surrogate features;
            ``None``: zeros.
        lut_sha256: per multiplier, a hash of its product table; it keys the
            evaluation cache so that a re-characterized design is re-evaluated.
        rtl_sha256: per multiplier, the hash of its RTL (recorded for the report).
        liberty: name of the cell library the energies come from.
        reference: the zero-error design every saving is relative to (candidate 0);
            its all-reference configuration is the int8 accuracy reference too.

    Raises:
        ConfigError: no ops, or an empty candidate set.
        DatabaseError: a candidate (or ``"exact"``) has no energy figure.
    """

    def __init__(
        self,
        ops: Sequence[Any],
        candidates: Sequence[str],
        energy_pj: Mapping[str, float] | Mapping[str, Mapping[str, float]],
        *,
        area_um2: Mapping[str, float] | None = None,
        error_metrics: Mapping[str, Any] | None = None,
        lut_sha256: Mapping[str, str] | None = None,
        rtl_sha256: Mapping[str, str] | None = None,
        liberty: str = DEFAULT_LIBERTY,
        reference: str = EXACT,
    ) -> None:
        if not ops:
            raise ConfigError("the model has no approximable ops (no Linear, Conv or attention matmul found)")
        if candidates is None or len(list(candidates)) == 0:
            raise ConfigError("the candidate set is empty; pass at least one multiplier name "
                              "(see `axhw.library.names()` for what the database holds)")
        names: list[str] = [reference]
        for name in candidates:
            if not isinstance(name, str) or not name:
                raise ConfigError(f"candidate multiplier names must be non-empty strings, got {name!r}")
            if name not in names:
                names.append(name)
        self.ops = list(ops)
        #: the zero-error design every saving is relative to (candidate 0)
        self.reference = reference
        self.candidates = names
        self.op_names = [op.name for op in self.ops]
        if len(set(self.op_names)) != len(self.op_names):
            raise ConfigError("op names must be unique")
        self.liberty = liberty
        self.macs = np.array([float(op.macs_per_image) for op in self.ops])
        self.mac_share = self.macs / self.macs.sum()

        per_op = bool(energy_pj) and isinstance(next(iter(energy_pj.values())), Mapping)
        energy = np.zeros((len(self.ops), len(names)))
        for j, name in enumerate(names):
            for i, op in enumerate(self.ops):
                table = energy_pj.get(op.name, {}) if per_op else energy_pj
                value = table.get(name) if isinstance(table, Mapping) else None
                if value is None:
                    raise _missing_cost(name, liberty, f"op {op.name}" if per_op else "uniform")
                energy[i, j] = float(value)
        if np.any(energy[:, 0] <= 0):
            raise DatabaseError(f"the reference multiplier {reference!r} has a non-positive energy per multiplication "
                                f"on {liberty!r}; re-characterize it with `axhw characterize --hw {reference}`")
        #: energy per multiplication (pJ), shape (n_ops, n_candidates)
        self.energy_pj = energy
        self.per_op_energy = per_op
        #: uniform-operand energy per candidate (pJ), beside per-op workload energies (set by from_library)
        self.uniform_energy_pj: dict[str, float] | None = (
            None if per_op else {name: float(energy[0, j]) for j, name in enumerate(names)})
        self._exact_total = float(self.macs @ energy[:, 0])
        #: fraction of the all-reference total saved by op i using candidate j
        self.saving = self.macs[:, None] * (energy[:, :1] - energy) / self._exact_total
        #: relative energy saving of candidate j at op i: 1 - E[i, j] / E[i, reference]
        self.relative_saving = 1.0 - energy / energy[:, :1]

        if area_um2 is not None and all(area_um2.get(n) is not None for n in names):
            self.area_um2: np.ndarray | None = np.array([float(area_um2[n]) for n in names])
        else:
            self.area_um2 = None
        feats = np.zeros((len(names), len(ERROR_FEATURES)))
        if error_metrics is not None:
            for j, name in enumerate(names):
                metrics = error_metrics.get(name)
                if metrics is None:
                    continue
                for k, field_name in enumerate(ERROR_FEATURES):
                    value = metrics.get(field_name) if isinstance(metrics, Mapping) else getattr(metrics, field_name, 0.0)
                    feats[j, k] = float(value or 0.0)
        #: per-candidate error statistics (n_candidates, len(ERROR_FEATURES))
        self.error_features = feats
        self.lut_sha256 = {n: (lut_sha256 or {}).get(n, "") for n in names}
        self.rtl_sha256 = {n: (rtl_sha256 or {}).get(n, "") for n in names}

    # ------------------------------------------------------------------ sizes
    @property
    def n_ops(self) -> int:
        return len(self.ops)

    @property
    def n_candidates(self) -> int:
        return len(self.candidates)

    @property
    def size(self) -> float:
        """Number of configurations, ``n_candidates ** n_ops`` (as a float: it overflows quickly)."""
        return float(self.n_candidates) ** self.n_ops

    def __repr__(self) -> str:
        return (f"SearchSpace(n_ops={self.n_ops}, candidates={self.candidates}, "
                f"power={'per-op' if self.per_op_energy else 'uniform'}, liberty={self.liberty!r}, "
                f"reference={self.reference!r})")

    # --------------------------------------------------------------- encoding
    def exact_config(self) -> np.ndarray:
        """The all-reference configuration (all zeros): every op on the zero-error reference."""
        return np.zeros(self.n_ops, dtype=np.int64)

    def uniform_config(self, candidate: str | int) -> np.ndarray:
        """Every op uses the same candidate."""
        j = candidate if isinstance(candidate, int) else self.candidates.index(candidate)
        return np.full(self.n_ops, j, dtype=np.int64)

    def encode(self, config: Mapping[str, str]) -> np.ndarray:
        """``{op name: multiplier}`` -> index vector; ops left out use the reference.

        Raises:
            ConfigError: an unknown op name or a multiplier outside the candidates.
        """
        x = self.exact_config()
        index = {name: i for i, name in enumerate(self.op_names)}
        for op, mult in config.items():
            if op not in index:
                raise ConfigError(f"op {op!r} is not an approximable op of this model; ops are: "
                                  f"{', '.join(self.op_names[:6])}{', ...' if self.n_ops > 6 else ''}")
            if mult not in self.candidates:
                raise ConfigError(f"multiplier {mult!r} for op {op!r} is not a candidate ({', '.join(self.candidates)})")
            x[index[op]] = self.candidates.index(mult)
        return x

    def decode(self, x: Sequence[int] | np.ndarray) -> dict[str, str]:
        """Index vector -> explicit ``{op name: multiplier}`` table (every op listed)."""
        x = self._check(x)
        return {name: self.candidates[int(j)] for name, j in zip(self.op_names, x)}

    def _check(self, x: Sequence[int] | np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.int64)
        if x.shape[-1] != self.n_ops:
            raise ValueError(f"configuration has {x.shape[-1]} entries, the space has {self.n_ops} ops")
        if x.size and (x.min() < 0 or x.max() >= self.n_candidates):
            raise ValueError(f"candidate index out of range [0, {self.n_candidates})")
        return x

    # ------------------------------------------------------------ power model
    def power_rel(self, x: Sequence[int] | np.ndarray) -> np.ndarray | float:
        """``Σ_i MACs_i E[i, x_i] / Σ_i MACs_i E[i, reference]`` for one (n_ops,) or many (n, n_ops) configs."""
        x = self._check(x)
        rows = np.arange(self.n_ops)
        total = (self.macs * self.energy_pj[rows, x]).sum(axis=-1) / self._exact_total
        return float(total) if np.ndim(total) == 0 else total

    def area_rel(self, x: Sequence[int] | np.ndarray) -> float | None:
        """MAC-weighted area relative to all-reference, or ``None`` without area figures."""
        if self.area_um2 is None:
            return None
        x = self._check(x)
        return float((self.macs * self.area_um2[x]).sum() / (self.macs.sum() * self.area_um2[0]))

    def energy_table(self) -> dict[str, Any]:
        """Energies as recorded in results: ``{name: pJ}`` (uniform) or ``{op: {name: pJ}}`` (per op)."""
        if self.per_op_energy:
            return {op: {m: float(self.energy_pj[i, j]) for j, m in enumerate(self.candidates)}
                    for i, op in enumerate(self.op_names)}
        return {m: float(self.energy_pj[0, j]) for j, m in enumerate(self.candidates)}

    def fingerprint(self) -> str:
        """Hash of ops, candidates, product-table hashes and energies (keys checkpoints)."""
        parts = [repr([(op.name, op.kind, int(op.macs_per_image)) for op in self.ops]), repr(self.candidates),
                 repr(sorted(self.lut_sha256.items())), np.round(self.energy_pj, 9).tobytes().hex()]
        return sha256_bytes("\n".join(parts).encode())

    # ---------------------------------------------------------------- builder
    @classmethod
    def from_library(
        cls,
        ops: Sequence[Any],
        candidates: Sequence[str],
        *,
        liberty: str = DEFAULT_LIBERTY,
        operands: Mapping[str, np.ndarray] | None = None,
        reference: str | None = None,
        progress: bool = False,
    ) -> "SearchSpace":
        """Build the space from the multiplier database.

        Args:
            ops: the model's approximable ops (:func:`axhw.emulator.layers`).
            candidates: multiplier names in the database (``reference`` is added first).
            liberty: cell library whose costs are used.
            operands: op name -> int8 ``(N, 2)`` operand stream in datapath order
                (:func:`axhw.emulator.collect_operands`); when given, each (op,
                candidate) energy is :func:`axhw.hw.cost` on that op's stream
                (synthesized once per design, each stream cached by content hash);
                ``None``: uniform-operand costs for every op.
            reference: the zero-error design savings are relative to; ``None``: the
                cheapest one in the database (:func:`axhw.hw.baseline.best_exact`).
            progress: show a bar over the workload cost computations.

        Raises:
            ConfigError: an empty candidate set, or a ``reference`` that is not exact.
            DatabaseError: an unknown multiplier, or one without a hardware-cost record.
        """
        if candidates is None or len(list(candidates)) == 0:
            raise ConfigError("the candidate set is empty; pass at least one multiplier name "
                              "(see `axhw.library.names()` for what the database holds)")
        from axhw import library
        from axhw.hw.baseline import best_exact

        if reference is None:
            reference = best_exact(liberty).name
        names = [reference] + [c for c in dict.fromkeys(candidates) if c != reference]
        mults = {name: library.load(name) for name in names}
        if mults[reference].metrics.error_rate != 0:
            raise ConfigError(f"the reference {reference!r} is not a zero-error design "
                              f"(error rate {mults[reference].metrics.error_rate:.4g}); pick an exact multiplier")
        uniform = {name: hardware_cost(m, liberty) for name, m in mults.items()}
        energy: Mapping[str, Any]
        if operands is None:
            energy = {name: c.energy_pj for name, c in uniform.items()}
        else:
            from axhw import hw

            pairs = [(op, name) for op in ops for name in names]
            iterator: Any = pairs
            if progress:
                from tqdm.auto import tqdm

                iterator = tqdm(pairs, desc="workload power", unit="cost")
            per_op: dict[str, dict[str, float]] = {}
            for op, name in iterator:
                samples = operands.get(op.name)
                cost = uniform[name] if samples is None else hw.workload_cost(mults[name], samples, liberty,
                                                                              stream=f"workload:{op.name}")
                per_op.setdefault(op.name, {})[name] = cost.energy_pj
            energy = per_op
        space = cls(
            ops,
            names,
            energy,
            area_um2={name: c.area_um2 for name, c in uniform.items()},
            error_metrics={name: m.metrics for name, m in mults.items()},
            lut_sha256={name: lut_digest(m.lut) for name, m in mults.items()},
            rtl_sha256={name: m.rtl_sha256 for name, m in mults.items()},
            liberty=liberty,
            reference=reference,
        )
        #: uniform-operand energy per multiplication (pJ) of each candidate, for side-by-side reports
        space.uniform_energy_pj = {name: c.energy_pj for name, c in uniform.items()}
        return space


def efficient_candidates(max_n: int | None = None, liberty: str = DEFAULT_LIBERTY) -> list[str]:
    """Database designs worth searching: cheaper than the best exact design, not dominated in (energy, MAE).

    A design is kept when no other design has both lower-or-equal energy per
    multiplication and lower mean absolute error (uniform operands, ``liberty``).
    Entries that fail to load (stale, damaged) or lack a cost are skipped.

    Args:
        max_n: keep at most this many, evenly spaced along the front (``None``: all).
        liberty: cell library of the costs.

    Returns:
        Names sorted by increasing energy.
    """
    from axhw import library
    from axhw.hw.baseline import best_exact

    exact = best_exact(liberty).energy_pj
    designs = []
    for name in library.names():
        try:
            m = library.load(name)
            cost = hardware_cost(m, liberty)
        except DatabaseError:
            continue
        if m.metrics.error_rate > 0 and cost.energy_pj < exact:
            designs.append((cost.energy_pj, m.metrics.mae, name))
    designs.sort()
    front: list[str] = []
    for energy, mae, name in designs:
        dominated = any(e2 <= energy and m2 < mae for e2, m2, n2 in designs if n2 != name)
        if not dominated:
            front.append(name)
    if max_n is not None and len(front) > max_n:
        front = [front[i] for i in np.linspace(0, len(front) - 1, max_n).round().astype(int)]
    return front
