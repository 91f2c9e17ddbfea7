"""The hardware-cost flow end to end, with caching, and its parallel driver.

``cost()`` = synthesis (yosys) -> equivalence (Icarus, exhaustive) -> timing
(OpenSTA) -> activity (Icarus, operand stream) -> power (OpenSTA), each step's
products kept in a build folder and the final :class:`~axhw.records.HardwareCost`
in ``hw.json``.  ``characterize_many()`` runs it over database entries in a process
pool with a progress bar.

An unsigned database entry runs through the flow as its signed sign-magnitude wrapper
(:func:`~axhw.hw.design.signed_wrapper`): synthesis and timing of core + conversions,
equivalence against the entry's stored sign-magnitude table, and activity from the
same signed operand stream as any signed design.  The wrapper is part of the design
hash (``design_sha256``, with ``WRAPPER_VERSION``), so costs cached for a bare
unsigned core are stale and recomputed.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import time
import warnings
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np
from tqdm.auto import tqdm

from axhw.errors import AxhwError, ConfigError, SynthesisError
from axhw.paths import cache_dir
from axhw.records import DEFAULT_LIBERTY, HardwareCost
from axhw.text import text_table
from axhw.hw import cache
from axhw.hw._tools import tool_versions
from axhw.hw.design import Design, as_design
from axhw.hw.equivalence import check_equivalence
from axhw.hw.liberty import Liberty, cell_models, resolve_liberty
from axhw.hw.power import DEFAULT_PAIRS, check_operands, estimate_power, operands_sha256, simulate_activity, uniform_operands
from axhw.hw.synthesis import synthesize
from axhw.hw.timing import critical_path

__all__ = ["FlowResult", "run_flow", "cost", "workload_cost", "characterize_many", "format_table", "STEPS"]

#: Steps of the flow, in order, as named in :attr:`FlowResult.seconds`.
STEPS = ("synthesis", "equivalence", "timing", "activity", "power")


@dataclass(frozen=True)
class FlowResult:
    """One run of the flow.

    Attributes:
        cost: the hardware cost.
        seconds: step name (:data:`STEPS`) -> wall time (s); 0 for a step re-used
            from the build folder.
        equivalence_vectors: operand pairs checked RTL vs netlist.
        timed_activity: the activity simulation had cell delays (glitches counted).
        mean_activity: mean transitions per cycle over all net bits.
        work: the build folder (netlist, logs).
    """

    cost: HardwareCost
    seconds: dict[str, float] = field(default_factory=dict)
    equivalence_vectors: int = 0
    timed_activity: bool = False
    mean_activity: float = 0.0
    work: Path = Path()


def _check_clock(clock_ns: float) -> float:
    if not clock_ns > 0:
        raise ConfigError(f"clock period must be positive (ns), got {clock_ns}")
    return float(clock_ns)


def _stream(operands: np.ndarray | None, stream: str | None, seed: int, n_pairs: int) -> tuple[np.ndarray, str]:
    if operands is None:
        if n_pairs < 2:
            raise ConfigError(f"n_pairs must be at least 2, got {n_pairs}")
        default = seed == 0 and n_pairs == DEFAULT_PAIRS
        return uniform_operands(n_pairs, seed), stream or ("uniform" if default else f"uniform-n{n_pairs}-seed{seed}")
    ops = check_operands(operands)
    return ops, stream or f"custom-{operands_sha256(ops)[:12]}"


def run_flow(design: Design, liberty: Liberty, operands: np.ndarray, clock_ns: float = 10.0, *,
             stream: str = "uniform", fresh: bool = False) -> FlowResult:
    """Synthesize, check, time and power ``design`` for one operand stream (no ``hw.json`` look-up).

    Args:
        design: the multiplier.
        liberty: the cell library.
        operands: int8 (N, 2) stream for the activity simulation.
        clock_ns: clock period for timing constraints and power (ns).
        stream: label stored as ``operand_stream``.
        fresh: use a new private build folder, so every step runs (benchmarks, ``--force``) and two
            forced runs of one design never delete each other's files.
    """
    clock_ns = _check_clock(clock_ns)
    work = cache.build_dir(design.design_sha256, liberty.sha256, fresh=fresh)
    work.mkdir(parents=True, exist_ok=True)
    seconds: dict[str, float] = {}

    t0 = time.perf_counter()
    synth = synthesize(design, liberty, work)
    seconds["synthesis"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    models, timed = cell_models(liberty, set(synth.cell_mix), work)
    vectors = check_equivalence(design, synth, models, work)
    seconds["equivalence"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    timing = critical_path(synth, liberty, clock_ns, work)
    seconds["timing"] = time.perf_counter() - t0

    ops_sha = operands_sha256(operands)
    run_dir = work / f"power-{ops_sha[:16]}-{clock_ns:g}ns"
    t0 = time.perf_counter()
    activity = simulate_activity(design, synth, models, timed, operands, run_dir)
    seconds["activity"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    power = estimate_power(synth, liberty, activity, clock_ns, run_dir)
    seconds["power"] = time.perf_counter() - t0

    hw = HardwareCost(
        area_um2=round(synth.area_um2, 3), cell_count=synth.cell_count, delay_ns=round(timing.delay_ns, 4),
        power_mw=round(power.power_mw, 6), energy_pj=round(power.energy_pj, 6), clock_ns=float(clock_ns),
        liberty=liberty.name, liberty_sha256=liberty.sha256, operand_stream=stream, operands_sha256=ops_sha,
        internal_mw=round(power.internal_mw, 6), switching_mw=round(power.switching_mw, 6),
        leakage_mw=round(power.leakage_mw, 9), cell_mix=dict(synth.cell_mix), tools=dict(tool_versions()))
    return FlowResult(hw, seconds, vectors, timed, activity.mean_rate, work)


def cost(multiplier: Any, liberty: str | Path | Liberty = DEFAULT_LIBERTY, operands: np.ndarray | None = None,
         clock_ns: float = 10.0, *, stream: str | None = None, seed: int = 0, n_pairs: int = DEFAULT_PAIRS,
         force: bool = False) -> HardwareCost:
    """Area (µm²), delay (ns), power (mW) and energy per multiplication (pJ) of a multiplier.

    Results are cached in the design's ``hw.json`` by (RTL hash, Liberty hash,
    operand-stream hash, clock); a second call with the same inputs reads the file.

    Args:
        multiplier: a database name, a :class:`~axhw.library.Multiplier` or a :class:`Design`.
        liberty: ``osu018`` / ``osu035`` / ``osu050`` or the path of a Liberty file.
        operands: int8 array of shape (N, 2) of (a, b) pairs the multiplier sees,
            e.g. from :func:`axhw.emulator.collect_operands`; ``None`` for
            ``n_pairs`` uniform pairs drawn with ``seed`` (comparable to published numbers).
        clock_ns: clock period (ns); one multiplication per cycle, so
            ``energy_pj = power_mw * clock_ns``.
        stream: label stored as ``operand_stream`` (default ``uniform`` or ``custom-<hash>``).
        seed, n_pairs: the uniform stream's seed and length.
        force: recompute even when cached (and redo synthesis).

    Raises:
        ConfigError / ToolMissingError: a missing Liberty file or tool.
        DataError: an operand stream that is not int8 pairs.
        SynthesisError: yosys or OpenSTA failed, or the netlist is not equivalent to the RTL.
    """
    clock_ns = _check_clock(clock_ns)
    design = as_design(multiplier)
    lib = resolve_liberty(liberty)
    ops, label = _stream(operands, stream, seed, n_pairs)
    ops_sha = operands_sha256(ops)
    if not force:
        hit = cache.lookup(design, lib.sha256, ops_sha, clock_ns)
        if hit is not None:
            return hit
    result = run_flow(design, lib, ops, clock_ns, stream=label, fresh=force)
    cache.store(design, result.cost, {
        "supply_v": lib.supply_v, "n_pairs": int(len(ops)), "equivalence_vectors": result.equivalence_vectors,
        "activity": "timed (cell delays, glitches counted)" if result.timed_activity else "zero-delay",
        "mean_activity": round(result.mean_activity, 6),
        "seconds": {k: round(v, 3) for k, v in result.seconds.items()},
    })
    return result.cost


def workload_cost(multiplier: Any, operands: np.ndarray, liberty: str | Path | Liberty = DEFAULT_LIBERTY,
                  clock_ns: float = 10.0, *, stream: str | None = None) -> HardwareCost:
    """:func:`cost` of a multiplier on one workload operand stream, cached outside the database.

    The stream is costed in the order given (one pair per cycle), so it must be in
    the order the datapath sees it (see :func:`axhw.emulator.collect_operands`).
    Workload costs depend on the model and data, not only on the design, so they
    are kept in ``cache_dir()/hw/workload/<name>-<design hash>.json`` rather than in
    the database's ``hw.json``; synthesis is shared with the uniform cost, and each
    stream is found again by its content hash (a repeated run costs nothing).

    Args:
        multiplier: a database name, a :class:`~axhw.library.Multiplier` or a :class:`Design`.
        operands: int8 (N, 2) stream in datapath order.
        liberty, clock_ns: as :func:`cost`.
        stream: label stored as ``operand_stream`` (default ``custom-<hash>``).
    """
    design = as_design(multiplier)
    path = cache_dir() / "hw" / "workload" / f"{design.name}-{design.design_sha256[:16]}.json"
    return cost(dataclasses.replace(design, hw_json=path), liberty, operands, clock_ns, stream=stream)


_Caught = list[tuple[type[Warning], str]]


def _worker(name: str, liberty: str, clock_ns: float, force: bool) -> tuple[str, dict | None, _Caught, str | None]:
    """Cost of one design in a worker: (name, cost JSON or None, warnings, error message or None)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result, error = cost(name, liberty, clock_ns=clock_ns, force=force).to_json(), None
        except AxhwError as exc:
            result, error = None, str(exc)
    return name, result, [(w.category, str(w.message)) for w in caught], error


def characterize_many(names: Iterable[str] | None = None, liberty: str | Path = DEFAULT_LIBERTY, *, clock_ns: float = 10.0,
                      jobs: int = 1, force: bool = False, progress: bool = True) -> dict[str, HardwareCost]:
    """Uniform-stream hardware cost of many database entries, ``jobs`` designs at a time.

    Args:
        names: database names; ``None`` for every entry of :func:`axhw.library.names`.
        liberty: library name or Liberty path (see :func:`cost`).
        clock_ns: clock period (ns).
        jobs: worker processes (designs run in parallel; each tool is single-threaded).
        force: recompute cached costs.
        progress: show a tqdm bar.

    Returns:
        name -> cost, in the order of ``names``.

    Raises:
        SynthesisError: after every design was tried, listing the ones that failed
            (the others are cached).  Warnings of the workers are re-issued here.
    """
    from axhw import library

    names = list(library.names() if names is None else names)
    for name in names:
        library.load(name)  # unknown names fail now, with the list of known ones
    lib = resolve_liberty(liberty)  # a missing library fails before any work
    clock_ns = _check_clock(clock_ns)
    if jobs < 1:
        raise ConfigError(f"--jobs must be at least 1, got {jobs}")
    spec = str(liberty if not isinstance(liberty, Liberty) else liberty.path)
    outcomes: dict[str, tuple[dict | None, _Caught, str | None]] = {}
    if not force:  # cache hits are answered here, without starting workers
        ops_sha = operands_sha256(uniform_operands())
        for name in names:
            design = as_design(name)
            hit = cache.lookup(design, lib.sha256, ops_sha, clock_ns)
            if hit is not None:
                outcomes[name] = (hit.to_json(), [], None)
    todo = [name for name in names if name not in outcomes]
    bar = tqdm(total=len(todo), desc=f"hardware cost ({lib.name})", unit="design", disable=not progress or not todo)
    try:
        if jobs == 1 or len(todo) <= 1:
            for name in todo:
                bar.set_postfix_str(name)
                outcomes[name] = _worker(name, spec, clock_ns, force)[1:]
                bar.update()
        else:
            context = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(max_workers=min(jobs, len(todo)), mp_context=context) as pool:
                futures = [pool.submit(_worker, name, spec, clock_ns, force) for name in todo]
                for future in as_completed(futures):
                    name, *outcome = future.result()
                    outcomes[name] = tuple(outcome)
                    bar.set_postfix_str(name)
                    bar.update()
    finally:
        bar.close()
    for name in names:
        for category, message in outcomes[name][1]:
            warnings.warn(message, category, stacklevel=2)
    failed = {name: outcomes[name][2] for name in names if outcomes[name][2]}
    if failed:
        lines = "\n".join(f"  {name}: {message}" for name, message in failed.items())
        raise SynthesisError(f"{len(failed)} of {len(names)} designs failed (the others are cached):\n{lines}")
    return {name: HardwareCost.from_json(outcomes[name][0]) for name in names}


def format_table(costs: Mapping[str, HardwareCost], mae: Mapping[str, float] | None = None,
                 reference: str | None = None) -> str:
    """Text table of costs side by side, with the energy saving (%) against a named reference.

    Args:
        costs: name -> cost (one Liberty library and operand stream).
        mae: name -> mean absolute error, shown in a last column when given.
        reference: the design savings are measured against; ``None``: the cheapest
            zero-error design among ``costs`` (:func:`~axhw.hw.baseline.best_exact`).
            A second column gives the saving against the behavioural ``exact`` when
            it is in ``costs``.  The last line names the reference.
    """
    from axhw.hw.baseline import BEHAVIOURAL_EXACT, best_exact

    if reference is None and costs:
        first = next(iter(costs.values()))
        try:
            reference = best_exact(first.liberty, first.operand_stream, names=list(costs)).name
        except AxhwError:
            reference = None
    ref = costs.get(reference) if reference else None
    exact = costs.get(BEHAVIOURAL_EXACT)
    header = ["design", "area µm²", "cells", "delay ns", "power mW", "energy pJ", f"saving % vs {reference or '-'}",
              "vs exact %"]
    if mae is not None:
        header.append("MAE")
    rows = [header]
    for name, hw in costs.items():
        saving = f"{100 * (1 - hw.energy_pj / ref.energy_pj):.1f}" if ref and ref.energy_pj > 0 else "-"
        vs_exact = f"{100 * (1 - hw.energy_pj / exact.energy_pj):.1f}" if exact and exact.energy_pj > 0 else "-"
        row = [name, f"{hw.area_um2:.0f}", str(hw.cell_count), f"{hw.delay_ns:.3f}", f"{hw.power_mw:.4f}",
               f"{hw.energy_pj:.3f}", saving, vs_exact]
        if mae is not None:
            row.append(f"{mae[name]:.2f}" if name in mae else "-")
        rows.append(row)
    table = text_table(rows, left=1)
    if reference:
        table += (f"\nsavings: energy per multiplication against {reference}"
                  f"{' (the cheapest zero-error design listed)' if ref is not None else ''}; "
                  f"vs exact: against the behavioural `exact`")
    return table
