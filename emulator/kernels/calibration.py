"""``backend="auto"`` on the CPU: the fastest backend as measured on this machine.

Which exact path wins depends on the CPU, not on the table alone: with AVX-512 VNNI
an int8 GEMM (``torch._int_mm``) is several times faster than a float32 one, without
VNNI torch runs it as a plain loop ~25x slower, and the Numba LUT kernel sits in
between.  No such rule is coded here: the ranking is measured.  So the first time
``auto`` meets a table with an exact low-rank form it times every candidate backend
that can compute it (:data:`CPU_CANDIDATES`) on DeiT-tiny shapes (:data:`SHAPES`)
with that table, and keeps the fastest.  The LUT kernel is always a candidate, so an
exact path is chosen only when it measured faster than the LUT kernel.

Results are cached in ``<cache_dir>/kernel_calibration.json`` under a key of the CPU
(model and flags), the instruction sets the libraries are allowed to use here
(:func:`isa_in_effect`: ATen's capability, torch's oneDNN switch, oneDNN's and MKL's ISA
limits, Numba's target CPU and features), the torch and numba builds and the thread count, and per table
*structure* (the low-rank form's shape: exact term, rank, int8 digits, term bound),
so each structure is timed once per machine; a later process reads the file.
:func:`calibration_report` lists what was chosen (``axhw doctor`` prints it).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch

from axhw.io import atomic_write_json
from axhw.paths import cache_dir

from axhw.emulator.kernels.table import LutTable

__all__ = ["CPU_CANDIDATES", "SHAPES", "Calibration", "isa_in_effect", "machine_key", "machine_description", "structure_key", "calibrated_backend", "calibration_report", "recalibrate", "cache_file"]

CPU_CANDIDATES: tuple[str, ...] = ("lowrank", "lowrank_float", "numba_cpu")
"""Backends ``auto`` chooses among on the CPU for a table with a low-rank form."""

SHAPES: dict[str, tuple[int, int, int, int]] = {  # name: (G, M, K, N), DeiT-tiny at batch 2
    "fc1": (1, 2 * 197, 192, 768),
    "q@k^T": (2 * 3, 197, 64, 197),
}
"""Representative shapes timed: the largest Linear and an attention product of DeiT-tiny."""

REPEATS = 6
"""Timed runs per candidate and shape at least (the fastest counts), after one warm-up."""

HOPELESS = 3.0
"""A candidate this many times slower than the leader (fastest of two runs each) is no longer timed on that shape."""

SETTLED = 0.98
MAX_REPEATS_FACTOR = 4
"""Rounds go on past :data:`REPEATS` (up to 4x as many) until two rounds in a row improved no fastest run by over 2 %."""

_SCHEMA = 1
_LOCK = threading.Lock()
_MEMORY: dict[tuple[str, str], "Calibration"] = {}


@dataclass(frozen=True)
class Calibration:
    """One measured choice.

    Attributes:
        structure: :func:`structure_key` of the tables it applies to.
        times_s: seconds per candidate, summed over :data:`SHAPES` (each the fastest run, see :func:`measure`).
        choice: the fastest candidate.
    """

    structure: str
    times_s: dict[str, float]
    choice: str

    def to_json(self) -> dict[str, Any]:
        return {"structure": self.structure, "times_s": dict(self.times_s), "choice": self.choice}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Calibration":
        return cls(str(data["structure"]), {str(k): float(v) for k, v in data["times_s"].items()}, str(data["choice"]))

    def describe(self) -> str:
        """One line, e.g. ``a*b: lowrank (lowrank 1.00x, numba_cpu 3.10x)``."""
        best = self.times_s[self.choice]
        ratios = ", ".join(f"{name} {t / best:.2f}x" for name, t in sorted(self.times_s.items(), key=lambda kv: kv[1]))
        return f"{self.structure}: {self.choice} ({ratios} of the fastest)"


@lru_cache(maxsize=1)
def _cpu_info() -> tuple[str, str, tuple[str, ...]]:
    """Architecture, CPU model name and sorted feature flags (Linux ``/proc/cpuinfo``; else ``platform``)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.machine(), platform.processor(), ()
    model, flags = "", ()
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name.strip() == "model name" and not model:
            model = value.strip()
        elif name.strip() in ("flags", "Features") and not flags:
            flags = tuple(sorted(value.split()))
    return platform.machine(), model, flags


def _cpu_identity() -> str:
    """CPU architecture, model name and feature flags in one string."""
    machine, model, flags = _cpu_info()
    return f"{machine} {model} {' '.join(flags)}"


_ISA_VARIABLES = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS",
                  "OMP_WAIT_POLICY", "GOMP_SPINCOUNT")
# The last two are not instruction sets, but with several threads on a loaded machine OpenMP's
# spin-waiting decides the measured ranking (docs/bench_auto_backend.md), so they key it too.


def isa_in_effect() -> dict[str, str]:
    """The instruction sets each library may use in this process, as far as they can be read.

    The CPU's flags say what the hardware has; these say what the libraries were told to use
    (environment variables such as ``ONEDNN_MAX_CPU_ISA=AVX2``, a Numba target CPU, or
    ``torch.backends.mkldnn.enabled = False``, which sends ``torch._int_mm`` to a plain loop),
    and each changes the ranking of the backends as much as another CPU would.
    """
    found = dict(_fixed_isa())
    found["onednn"] = "on" if torch.backends.mkldnn.enabled else "off"  # the one switch that changes at run time
    return found


@lru_cache(maxsize=1)
def _fixed_isa() -> tuple[tuple[str, str], ...]:
    """What the libraries fixed when they started: read once per process, as they read it (``auto`` asks on every call)."""
    from numba.core.registry import cpu_target

    triple, cpu, features = cpu_target.target_context.codegen().magic_tuple()
    found = [(name, os.environ[name]) for name in _ISA_VARIABLES if name in os.environ]
    return (*found, ("aten", str(torch.backends.cpu.get_cpu_capability())), ("numba", f"{triple} {cpu} {features}"))


@lru_cache(maxsize=None)
def _machine_key(threads: int, isa: tuple[tuple[str, str], ...], onednn: bool) -> str:
    import numba

    parts = [_cpu_identity(), repr(isa), f"oneDNN {onednn}", torch.__version__, torch.__config__.show(), numba.__version__, str(threads)]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def machine_key() -> str:
    """Hex digest naming this CPU, the instruction sets in effect, the torch and numba builds, and torch's thread count.

    A calibration is valid only for the same key: another CPU (flags decide VNNI), another
    instruction-set limit (:func:`isa_in_effect`), another torch build (its GEMM libraries)
    or another thread count can change the ranking.
    """
    return _machine_key(torch.get_num_threads(), _fixed_isa(), bool(torch.backends.mkldnn.enabled))


def machine_description() -> str:
    """One line for people: the CPU model, its AVX-512/VNNI/AMX flags, what torch and Numba use, threads."""
    machine, model, all_flags = _cpu_info()
    flags = [f for f in all_flags if f.startswith(("avx", "amx")) or "vnni" in f]
    isa = isa_in_effect()
    numba_cpu = isa["numba"].split()[1]
    numba_avx512 = "+avx512f" in isa["numba"].split()[-1].split(",")
    limits = ", ".join(f"{name}={isa[name]}" for name in _ISA_VARIABLES if name in isa)
    return (f"{model or machine}; {' '.join(flags) or 'no AVX'}; ATen {isa['aten']}, torch oneDNN {isa['onednn']}, "
            f"Numba {numba_cpu} ({'with' if numba_avx512 else 'without'} AVX-512){'; ' + limits if limits else ''}; "
            f"{torch.get_num_threads()} thread(s)")


def structure_key(table: LutTable) -> str:
    """What decides the low-rank path's cost: exact term, rank, int8 digits, term bound."""
    form = table.lowrank
    if form is None:
        return "lut"

    def make() -> str:
        digits = len(form.int8_digits()) if form.rank else 0
        return f"{form.describe()}, {digits} int8 digit GEMMs, bound 2^{max(form.term_bound, 1).bit_length()}"

    return table.cached(("calibration-structure",), make)


def cache_file() -> Path:
    """The calibration cache: ``<cache_dir>/kernel_calibration.json``."""
    return cache_dir() / "kernel_calibration.json"


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) and data.get("schema") == _SCHEMA else {}


def _operands(shape: tuple[int, int, int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    g, m, k, n = shape
    gen = torch.Generator().manual_seed(0)
    a = torch.randint(-128, 128, (g, m, k), dtype=torch.int8, generator=gen)
    b = torch.randint(-128, 128, (g, k, n), dtype=torch.int8, generator=gen)
    return a, b


def measure(table: LutTable, candidates: Sequence[str], bmm: Callable[[str, torch.Tensor, torch.Tensor, LutTable], Any],
            shapes: dict[str, tuple[int, int, int, int]] = SHAPES, repeats: int = REPEATS,
            clock: Callable[[], float] | None = None) -> dict[str, float]:
    """Seconds per candidate, summed over ``shapes``: the fastest of ``repeats`` or more runs after a warm-up.

    The machine may be shared, so: candidates are timed round-robin, in a new (seeded)
    random order every round (a kernel runs in the caches and clock state the previous one
    left: a fixed cyclic order would always put the same one after the LUT kernel), so a
    change of load hits all alike; the fastest run counts; and with one thread the clock
    is the process's CPU time, which other jobs barely disturb.  A candidate whose fastest
    of two or more runs is over :data:`HOPELESS` times the leader's stops being timed on that
    shape (it keeps that time): without VNNI, ``torch._int_mm`` is a plain loop ~25x slower
    than a float GEMM, and timing it ``repeats`` times would make the calibration long.
    Under load (wall clock, several threads) the fastest runs keep falling for a while, so
    rounds go on past ``repeats`` until the fastest runs have settled (:data:`SETTLED`).

    Args:
        clock: seconds, any origin (default: process CPU time with one torch thread, else wall clock).
    """
    if clock is None:
        clock = time.process_time if torch.get_num_threads() == 1 else time.perf_counter
    names = list(candidates)
    totals = dict.fromkeys(names, 0.0)
    for shape in shapes.values():
        a, b = _operands(shape)
        best = dict.fromkeys(names, float("inf"))
        for name in names:
            bmm(name, a, b, table)  # warm-up: compilation, factor tables
        timed = list(names)
        order = random.Random(0)
        calm = 0
        for round_ in range(MAX_REPEATS_FACTOR * repeats):
            before = dict(best)
            for name in order.sample(timed, len(timed)):
                start = clock()
                bmm(name, a, b, table)
                best[name] = min(best[name], clock() - start)
            if round_ >= 1:
                leader = min(best[name] for name in timed)
                timed = [name for name in timed if best[name] <= HOPELESS * leader]
            calm = calm + 1 if all(best[name] >= SETTLED * before[name] for name in timed) else 0
            if round_ + 1 >= repeats and calm >= 2:
                break
        for name in names:
            totals[name] += best[name]
    return totals


def calibrated_backend(table: LutTable, candidates: Sequence[str], bmm: Callable[[str, torch.Tensor, torch.Tensor, LutTable], Any],
                       path: Path | None = None) -> str:
    """The fastest of ``candidates`` for tables of ``table``'s structure on this machine.

    Measured on first use (about a second) and cached in memory and in ``path``
    (default :func:`cache_file`) under :func:`machine_key`.

    Args:
        table: the table about to be multiplied (a representative of its structure).
        candidates: backend names that can compute it here.
        bmm: ``bmm(name, a, b, table)`` runs one candidate on (G, M, K) x (G, K, N) int8.
        path: the cache file.
    """
    if len(candidates) == 1:
        return candidates[0]
    machine, structure = machine_key(), structure_key(table)
    slot = f"{structure} | {' '.join(sorted(candidates))}"
    with _LOCK:
        found = _MEMORY.get((machine, slot))
        if found is not None:
            return found.choice
        path = path or cache_file()
        entry = _read(path).get("machines", {}).get(machine, {}).get(slot)
        if entry is not None:
            try:
                found = Calibration.from_json(entry)
            except (KeyError, TypeError, ValueError):
                found = None
        if found is None or found.choice not in candidates:
            times = measure(table, candidates, bmm)
            found = Calibration(structure, times, min(times, key=times.__getitem__))
            data = _read(path) or {"schema": _SCHEMA}
            data.setdefault("machines", {}).setdefault(machine, {})[slot] = found.to_json()
            try:
                atomic_write_json(path, data)
            except OSError:
                pass  # a read-only cache only costs a re-measurement in the next process
        _MEMORY[(machine, slot)] = found
        return found.choice


def calibration_report(path: Path | None = None) -> list[Calibration]:
    """Every choice cached for this machine (after :func:`calibrated_backend` ran)."""
    entries = _read(path or cache_file()).get("machines", {}).get(machine_key(), {})
    out = []
    for entry in entries.values():
        try:
            out.append(Calibration.from_json(entry))
        except (KeyError, TypeError, ValueError):
            continue
    return out


def recalibrate(path: Path | None = None) -> int:
    """Forget this machine's choices (in memory and on disk) so that the next use measures again.

    Returns:
        The number of choices forgotten from the file.
    """
    path = path or cache_file()
    with _LOCK:
        _MEMORY.clear()
        data = _read(path)
        gone = data.get("machines", {}).pop(machine_key(), {})
        if gone:
            atomic_write_json(path, data)
    return len(gone)
