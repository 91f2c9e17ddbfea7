"""What the report says, computed from a search result and the multiplier database.

:func:`gather` resolves every multiplier a result names against the current
database (flagging the ones that are missing or stale instead of using them
silently), builds the per-op table and collects the hashes and versions the
reproducibility section prints.  Nothing here invents a number: each value comes
from the :class:`~axhw.search.SearchResult`, a database record, or a file hash.
"""

from __future__ import annotations

import importlib.metadata
import platform
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from axhw.errors import AxhwError, DatabaseError
from axhw.io import sha256_file
from axhw.records import DEFAULT_LIBERTY

__all__ = ["KIND_LABELS", "MultiplierInfo", "OpRow", "ReportContent", "gather", "retrained_entry", "resolve_multiplier",
           "searched_hashes", "searched_energies", "package_versions"]

#: Display name of each op kind of :func:`axhw.emulator.layers`.
KIND_LABELS: dict[str, str] = {"linear": "Linear", "conv": "Conv", "qk": "Q·Kᵀ", "av": "A·V"}

#: Source suffixes that are RTL a hardware engineer can build from.
RTL_SUFFIXES = (".v", ".sv", ".vh", ".svh")

#: Config values that are not multipliers of the database.
FLOAT_NAMES = ("fp32",)

#: Python distributions whose versions the reproducibility section lists.
PACKAGES = ("axhw", "numpy", "torch", "timm", "scikit-learn", "scipy", "numba", "pymoo", "ray", "matplotlib", "cocotb")


@dataclass(frozen=True)
class MultiplierInfo:
    """One multiplier named by the result, as found in the database now.

    Attributes:
        name: the name the result uses.
        multiplier: the :class:`axhw.library.Multiplier`, or ``None`` when it is missing
            from the database (or is ``"fp32"``, i.e. no multiplier).
        status: ``"ok"``; ``"missing"`` (not in the database, or not characterized);
            ``"stale"`` (its source, product table or record changed since it was
            characterized or since the search); ``"corrupt"`` (its database files fail
            their checks); ``"no-source"`` (its source file is gone); or ``"float"``
            (``fp32``: the op was left in floating point).  Only ``ok`` multipliers are
            handed off.
        problems: human-readable reasons for a ``missing``/``stale`` status or other flags
            (e.g. no hardware-cost record); empty when nothing is wrong.
        rtl_file: absolute path of its Verilog source, when the record names one.
        rtl_sha256_now: SHA-256 of that file as it is on disk now (``None`` when absent).
        record_hashes: database file name -> SHA-256 (``record.json``, ``lut.npy``, ``hw.json``).
        hw: its uniform-operand :class:`~axhw.records.HardwareCost` on the search's Liberty
            library, or ``None`` when it has none.
    """

    name: str
    multiplier: Any | None
    status: str
    problems: tuple[str, ...] = ()
    rtl_file: Path | None = None
    rtl_sha256_now: str | None = None
    record_hashes: dict[str, str] = field(default_factory=dict)
    hw: Any | None = None

    @property
    def flagged(self) -> bool:
        """Whether the report must warn about this multiplier."""
        return bool(self.problems)

    @property
    def energy_pj(self) -> float | None:
        """Energy per multiplication (pJ) of :attr:`hw`, or ``None`` when unknown."""
        return self.hw.energy_pj if self.hw is not None else None


@dataclass(frozen=True)
class OpRow:
    """One approximable op of the model with the multiplier the chosen configuration gives it.

    Attributes:
        name, kind, macs_per_image: from :class:`axhw.records.OpInfo`.
        multiplier: chosen multiplier name (``"exact"`` when the configuration omits the op).
        info: the multiplier as resolved in the database.
        energy_pj: energy per multiplication used for this op (pJ); the search's per-op
            value when the result records one, else the database's uniform-operand value.
        energy_per_image_pj: ``macs_per_image × energy_pj``.
        share: ``energy_per_image_pj`` / sum over all ops (fraction), ``None`` when any
            op's energy is unknown.
        uniform_energy_pj: the same multiplier's energy on uniform operands (pJ, the
            database value), shown beside the workload figure.
        reference_energy_pj: the power reference's energy for this op (pJ), from the
            same source as ``energy_pj``.
        reference_uniform_pj: the power reference's energy on uniform operands (pJ).
    """

    name: str
    kind: str
    macs_per_image: int
    multiplier: str
    info: MultiplierInfo
    energy_pj: float | None
    energy_per_image_pj: float | None
    share: float | None
    uniform_energy_pj: float | None = None
    reference_energy_pj: float | None = None
    reference_uniform_pj: float | None = None


@dataclass(frozen=True)
class ReportContent:
    """Everything the report prints, resolved once.

    Attributes:
        result: the :class:`~axhw.search.SearchResult`.
        chosen: the recommended :class:`~axhw.search.Evaluation` (``result.best()``).
        rows: one :class:`OpRow` per op of ``result.ops``, in model order.
        multipliers: name -> :class:`MultiplierInfo` for every name the result uses
            (chosen configuration, candidates and ``exact``).
        used: distinct multiplier names of the chosen configuration, in first-use order.
        power_rel_db: total multiplier energy of the chosen configuration relative to
            all-``reference``, recomputed from the per-op energies (``None`` when unknown).
        flags: report-wide warnings (missing/stale multipliers, mismatches).
        notes: report-wide remarks that are not problems (e.g. unrecorded operand-aware energies).
        retrained: the "after retraining" entry (:func:`retrained_entry`): ``source``
            ``"measured"`` (by this report, on the held-out split) or ``"typed"``; or ``None``.
        command: the command that wrote the report, or ``None``.
        versions_now: distribution -> version at report time (plus ``python``, ``platform``).
        energy_source: where the per-op energies come from (``"search"``: the result's
            recorded power model; ``"database"``: uniform-operand costs in the database now).
        reference: the zero-error design savings are relative to (the search's
            ``power_reference``; ``"exact"`` for results that predate it).
        power_rel_exact: total multiplier energy of the chosen configuration relative to
            the behavioural ``exact`` on every op (``None`` when unknown).
        workload_power: whether ``energy_pj`` comes from each op's own operand stream.
        power_rel_exact_basis: ``"search"`` (the search's per-op energies, ``exact``
            included) or ``"uniform"`` (uniform-operand costs on both sides).
        liberties: the Liberty libraries of the chosen multipliers' costs: ``liberty`` name,
            ``path`` (known libraries), recorded ``sha256``, ``sha256_now`` of the file here
            (``None`` when not installed) and ``clock_ns``.
    """

    result: Any
    chosen: Any
    rows: list[OpRow]
    multipliers: dict[str, MultiplierInfo]
    used: list[str]
    power_rel_db: float | None
    flags: list[str]
    notes: list[str]
    retrained: dict[str, Any] | None
    command: str | None
    versions_now: dict[str, str]
    energy_source: str
    liberties: list[dict[str, Any]]
    reference: str = "exact"
    power_rel_exact: float | None = None
    workload_power: bool = False
    power_rel_exact_basis: str = ""

    @property
    def constraint_accuracy(self) -> float | None:
        """Lowest accuracy the constraint allows (fraction), relative to the int8 exact accuracy."""
        ref = self.result.int8_accuracy
        return None if ref is None else ref - self.result.max_accuracy_drop / 100.0


def _library_lookup(name: str) -> tuple[Any | None, str, str]:
    """``(multiplier or None, state, problem)`` for ``name`` in the current database.

    ``state`` is :func:`axhw.library.status`'s (``ok``, ``missing``, ``stale``,
    ``corrupt``, ``no-source``), or ``missing`` for an unknown name; ``problem`` says
    what is wrong and how to fix it (empty when ``ok``).  Only ``ok`` and
    ``no-source`` entries are loaded (the library refuses the others).
    """
    from axhw import library

    try:
        state = library.status(name)
    except AxhwError as exc:
        return None, "missing", f"`{name}` is not in the multiplier database ({exc})"
    if state == "missing":
        return None, "missing", f"`{name}` is a bundled design that is not characterized; run `axhw rebuild {name}`"
    if state in ("stale", "corrupt"):
        try:
            library.load(name)
        except AxhwError as exc:
            return None, state, f"`{name}` is {state} in the multiplier database: {exc}"
        return None, state, f"`{name}` is {state} in the multiplier database; run `axhw rebuild {name}`"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a missing source or outdated hw.json is flagged below
        mult = library.load(name)
    return mult, state, ""


def _db_file_hashes(name: str) -> dict[str, str]:
    from axhw import library

    try:
        folder = library.entry_dir(name)
    except AxhwError:
        return {}
    return {f: sha256_file(folder / f) for f in ("record.json", "lut.npy", "hw.json") if (folder / f).is_file()}


def resolve_multiplier(
    name: str, searched: Mapping[str, str] | None = None, liberty: str = DEFAULT_LIBERTY
) -> MultiplierInfo:
    """Look ``name`` up in the current database and check it is still what was characterized.

    Args:
        name: multiplier name from the result (``"fp32"`` means no multiplier).
        searched: hashes the search recorded for it (``rtl_sha256`` and/or ``lut_sha256``,
            the SHA-256 of the C-ordered int32 product table); a different value in the
            database now marks the multiplier stale.
        liberty: the cell library whose uniform-operand cost the report uses.

    Returns:
        A :class:`MultiplierInfo`; never raises for a missing or stale entry.
    """
    if name in FLOAT_NAMES:
        return MultiplierInfo(name, None, "float")
    from axhw.paths import rtl_dir

    mult, status, problem = _library_lookup(name)
    if mult is None:
        return MultiplierInfo(name, None, status, (problem,), record_hashes=_db_file_hashes(name))
    problems: list[str] = []
    rtl_file = (rtl_dir() / mult.rtl_path).resolve() if mult.rtl_path else None
    sha_now = sha256_file(rtl_file) if rtl_file is not None and rtl_file.is_file() else None
    if sha_now is None:
        status = "no-source"
        problems.append(f"`{name}`: its source `{mult.rtl_path}` no longer exists, so it cannot be handed off "
                        "and its staleness is unknown; restore the file")
    elif sha_now != mult.rtl_sha256:  # changed between the library's check and now
        status = "stale"
        problems.append(f"`{name}`: `{mult.rtl_path}` changed since it was characterized; run `axhw rebuild {name}`")
    elif rtl_file is not None and rtl_file.suffix not in RTL_SUFFIXES:
        problems.append(f"`{name}`: characterized from `{mult.rtl_path}`, not from Verilog, so there is no RTL "
                        "to hand off for it")
    searched = searched or {}
    if searched.get("rtl_sha256") and searched["rtl_sha256"] != mult.rtl_sha256:
        status = "stale"
        problems.append(
            f"`{name}`: the database entry (rtl sha256 {mult.rtl_sha256[:12]}…) is not the one the search used "
            f"({searched['rtl_sha256'][:12]}…); re-run the search"
        )
    if searched.get("lut_sha256"):
        from axhw.search.space import lut_digest

        lut_now = lut_digest(mult.lut)
        if lut_now != searched["lut_sha256"]:
            status = "stale"
            problems.append(f"`{name}`: its product table changed since the search (lut sha256 {lut_now[:12]}…, "
                            f"search {searched['lut_sha256'][:12]}…); re-run the search")
    hw = _uniform_cost(mult, liberty)
    if hw is None:
        problems.append(f"`{name}` has no hardware-cost record on {liberty} with uniform operands for its current "
                        "RTL; compute it with `axhw.hw.cost`")
    return MultiplierInfo(name, mult, status, tuple(problems), rtl_file, sha_now, _db_file_hashes(name), hw)


def _uniform_cost(mult: Any, liberty: str) -> Any | None:
    """The uniform-operand cost of ``mult`` on ``liberty`` (``None`` when it has none), as the search looks it up."""
    from axhw.search.space import hardware_cost

    try:
        return hardware_cost(mult, liberty)
    except DatabaseError:
        return None


def searched_hashes(result: Any) -> dict[str, dict[str, str]]:
    """Multiplier name -> ``{"rtl_sha256": ..., "lut_sha256": ...}`` the search recorded.

    Read from ``result.settings``: ``"multipliers"`` as ``{name: rtl_sha256}`` or
    ``{name: {"rtl_sha256": ..., "lut_sha256": ...}}``, and ``"lut_sha256"`` as
    ``{name: sha256}``; a hash that is not recorded is simply not checked.
    """
    settings = result.settings or {}
    out: dict[str, dict[str, str]] = {}
    recorded = settings.get("multipliers") or {}
    if isinstance(recorded, Mapping):
        for name, value in recorded.items():
            entry = value if isinstance(value, Mapping) else {"rtl_sha256": value}
            for key in ("rtl_sha256", "lut_sha256"):
                if isinstance(entry.get(key), str) and entry[key]:
                    out.setdefault(str(name), {})[key] = entry[key]
    luts = settings.get("lut_sha256") or {}
    if isinstance(luts, Mapping):
        for name, sha in luts.items():
            if isinstance(sha, str) and sha:
                out.setdefault(str(name), {})["lut_sha256"] = sha
    return out


def searched_energies(result: Any) -> dict[str, dict[str, float]]:
    """Op -> multiplier -> energy per multiplication (pJ) the search's power model used, if recorded.

    Read from ``result.settings["energy_pj"]``, either per op (``{op: {name: pJ}}``) or
    one value per multiplier (``{name: pJ}``, applied to every op); empty when the
    result does not carry them (the report then uses the database's uniform-operand
    energies).
    """
    recorded = (result.settings or {}).get("energy_pj") or {}
    if not isinstance(recorded, Mapping) or not recorded:
        return {}
    if all(isinstance(v, (int, float)) for v in recorded.values()):
        uniform = {str(m): float(e) for m, e in recorded.items()}
        return {op.name: dict(uniform) for op in result.ops}
    return {str(op): {str(m): float(e) for m, e in per.items()} for op, per in recorded.items() if isinstance(per, Mapping)}


def package_versions() -> dict[str, str]:
    """Versions of Python, the platform and the packages in :data:`PACKAGES` installed now."""
    out = {"python": platform.python_version(), "platform": platform.platform()}
    for dist in PACKAGES:
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out


def retrained_entry(retrained: Any) -> dict[str, Any]:
    """The report's "after retraining" entry: a measured score's JSON, or a typed-in accuracy labelled so.

    Args:
        retrained: a :class:`~axhw.search.RetrainedScore` (measured by
            :func:`~axhw.search.score_retrained`), or a mapping with ``accuracy`` as a
            fraction in [0, 1] plus settings to print: a number measured elsewhere, reported
            as typed in (``source: "typed"``), without interval or paired drop.

    Raises:
        ConfigError: a mapping without a valid ``accuracy``.
    """
    from axhw.errors import ConfigError

    if hasattr(retrained, "to_json") and hasattr(retrained, "weights_sha256"):
        return retrained.to_json()
    acc = retrained.get("accuracy") if isinstance(retrained, Mapping) else None
    if not isinstance(acc, (int, float)) or not 0.0 <= float(acc) <= 1.0:
        raise ConfigError(
            f"retrained={retrained!r}: expected the path of a retraining summary.json, or a mapping with 'accuracy' "
            "as a fraction in [0, 1] (e.g. {'accuracy': 0.973, 'grad': 'lut', 'epochs': 1})"
        )
    # a typed number has no images behind it here: any interval or drop given with it is not this report's
    settings = {k: v for k, v in retrained.items() if k not in ("accuracy", "interval", "drop", "source")}
    return {"source": "typed", "accuracy": float(acc), **settings}


def gather(result: Any, *, retrained: Any = None, command: str | None = None) -> ReportContent:
    """Resolve ``result`` against the database into the numbers and flags the report prints.

    Args:
        result: a :class:`~axhw.search.SearchResult`.
        retrained: the chosen configuration after retraining, see :func:`retrained_entry`
            (``None``: not retrained).
        command: the command line that wrote the report.

    Raises:
        ConfigError: ``retrained`` has no valid ``accuracy``.
        DataError: the result has no evaluation to report.
    """
    from axhw.errors import DataError

    if retrained is not None:
        retrained = retrained_entry(retrained)
    if not result.history:
        raise DataError("the search result has no evaluated configuration; nothing to report")
    chosen = result.best()
    config = dict(chosen.config)
    hashes = searched_hashes(result)
    liberty = str((result.settings or {}).get("liberty") or DEFAULT_LIBERTY)
    names: list[str] = []
    settings = result.settings or {}
    reference = str(settings.get("power_reference") or (result.candidates[0] if result.candidates else "exact"))
    for name in [*config.values(), *result.candidates, reference, "exact"]:
        if name not in names:
            names.append(name)
    infos = {name: resolve_multiplier(name, hashes.get(name), liberty) for name in names}
    energies = searched_energies(result)

    flags: list[str] = []
    if retrained is not None and retrained.get("disagreement"):
        flags.append(f"after retraining: {retrained['disagreement']}")
    unknown_ops = sorted(set(config) - {op.name for op in result.ops})
    if unknown_ops:
        flags.append(f"the chosen configuration names ops the result's model does not list: {', '.join(unknown_ops)}")

    rows_raw = []
    for op in result.ops:
        mult = config.get(op.name, reference)
        info = infos[mult]
        energy = energies.get(op.name, {}).get(mult, info.energy_pj)
        rows_raw.append((op, mult, info, energy))
    total = sum(op.macs_per_image * e for op, _, _, e in rows_raw if e is not None)
    complete = all(e is not None for *_, e in rows_raw) and total > 0
    ref_info = infos[reference]
    ref_e = [energies.get(op.name, {}).get(reference, ref_info.energy_pj) for op in result.ops]
    rows = [
        OpRow(op.name, op.kind, int(op.macs_per_image), mult, info, energy,
              None if energy is None else op.macs_per_image * energy,
              (op.macs_per_image * energy / total) if complete else None,
              info.energy_pj, r_e, ref_info.energy_pj)
        for (op, mult, info, energy), r_e in zip(rows_raw, ref_e)
    ]
    used = list(dict.fromkeys(r.multiplier for r in rows))

    power_rel_db = None
    if complete and all(e is not None for e in ref_e):
        ref_total = sum(op.macs_per_image * e for op, e in zip(result.ops, ref_e))
        power_rel_db = total / ref_total if ref_total > 0 else None
    # Behavioural exact beside it: on the same per-op energies when the search costed
    # `exact` for every op, else on uniform operands for both sides (labelled so).
    power_rel_exact, exact_basis = None, ""
    exact_ops = [energies.get(op.name, {}).get("exact") for op in result.ops]
    if complete and all(e is not None for e in exact_ops):
        power_rel_exact = total / sum(op.macs_per_image * e for op, e in zip(result.ops, exact_ops))
        exact_basis = "search"
    elif infos["exact"].energy_pj and all(r.uniform_energy_pj is not None for r in rows):
        uniform_total = sum(r.macs_per_image * r.uniform_energy_pj for r in rows)
        power_rel_exact = uniform_total / (sum(r.macs_per_image for r in rows) * infos["exact"].energy_pj)
        exact_basis = "uniform"

    for name in used:
        info = infos[name]
        if info.flagged:
            flags += [f"chosen configuration: {p}" for p in info.problems]
    for name in result.candidates:
        if name not in used and infos[name].status not in ("ok", "float"):
            flags += [f"candidate (not chosen): {p}" for p in infos[name].problems]
    notes: list[str] = []
    operand_aware = str(settings.get("power", "uniform")) == "operands"
    if operand_aware and not energies:
        notes.append("the search used operand-aware (per-op) energies that the result does not record; the per-layer "
                     "energies and shares below are the database's uniform-operand values, while the power relative "
                     f"to all-{reference} is the search's")
    elif power_rel_db is not None and abs(power_rel_db - chosen.power_rel) > 1e-6 * max(1.0, abs(chosen.power_rel)):
        flags.append(
            f"multiplier power recomputed from the current database ({power_rel_db * 100:.3f} % of all-{reference}) "
            f"differs from the search's value ({chosen.power_rel * 100:.3f} %): the database changed since the "
            "search; re-run the search to reconcile"
        )
    liberties = _liberties([infos[name].hw for name in used])
    for lib in liberties:
        if lib["sha256_now"] is not None and lib["sha256_now"] != lib["sha256"]:
            flags.append(f"Liberty `{lib['liberty']}` at `{lib['path']}` is not the file the hardware costs were "
                         "computed on (sha256 differs); re-run the hardware-cost step")
    workload = bool(energies) and any(isinstance(v, Mapping) for v in (settings.get("energy_pj") or {}).values())
    return ReportContent(result, chosen, rows, infos, used, power_rel_db, flags, notes, retrained, command,
                         package_versions(), "search" if energies else "database", liberties,
                         reference, power_rel_exact, workload, exact_basis)


def _liberties(costs: list[Any]) -> list[dict[str, Any]]:
    """Distinct Liberty libraries of ``costs`` (``None`` entries skipped), checked against the files here."""
    from axhw.hw.liberty import LIBERTY_FILES

    seen: dict[tuple[str, str], dict[str, Any]] = {}
    for hw in costs:
        if hw is None or (hw.liberty, hw.liberty_sha256) in seen:
            continue
        known = hw.liberty in LIBERTY_FILES
        path = Path(LIBERTY_FILES.get(hw.liberty, ""))
        seen[(hw.liberty, hw.liberty_sha256)] = {
            "liberty": hw.liberty, "path": str(path) if known else None, "sha256": hw.liberty_sha256,
            "sha256_now": sha256_file(path) if known and path.is_file() else None, "clock_ns": hw.clock_ns,
        }
    return list(seen.values())
