"""Is ``backend="auto"`` as fast as the best CPU backend on this machine?

For DeiT-tiny shapes at batch 8 (qkv, proj, fc1, fc2, Q.K^T, A.V) and four tables (the
exact product; ``a*b`` + rank 2; a separable table; a random full-rank table), this
times ``lut_matmul(a, b, table, backend)`` with ``backend="auto"`` and with every CPU backend that can compute the table (``lowrank`` with int8
GEMMs where they are exact, ``lowrank_float``, ``numba_cpu``) in one process, round
robin in a new random order every round, fastest of at least ``--repeats`` runs (rounds go on
for ``--budget`` seconds per table and shape; a backend over 3x the fastest after two rounds is
not run again), in process CPU time with one thread, which other jobs on a shared machine barely
disturb, wall-clock time otherwise, and prints each one's time over the best one's.
The calibration ``auto`` relies on runs first (into a fresh cache folder, so it is
measured, not read) and its time is printed too.  The CPU's vector features are
printed with the results, since they decide the ranking (VNNI: int8 GEMMs).

``--emulate avx2`` runs the same benchmark as on a CPU with AVX2 but no AVX-512 or VNNI, by
restricting every library's instruction set (:data:`EMULATE`) in a re-executed process:
ATen's kernels (``ATEN_CPU_CAPABILITY``), oneDNN (``ONEDNN_MAX_CPU_ISA``), MKL
(``MKL_ENABLE_INSTRUCTIONS``; on AMD CPUs MKL runs its AVX2 kernel anyway), Numba
(``NUMBA_CPU_NAME``/``NUMBA_CPU_FEATURES``: Haswell code).  ``torch._int_mm`` takes oneDNN
only when cpuinfo reports AVX-512 VNNI, which no variable changes, so the emulation turns
torch's oneDNN use off (``torch.backends.mkldnn.enabled = False``): ``_int_mm`` then runs
the plain loop an AVX2 machine runs.  Cache sizes, clock and memory bandwidth stay this CPU's.

Usage::

    python benchmarks/auto_backend.py [--repeats 3] [--budget 4] [--threads 1] [--emulate avx2] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from axhw.testing import DEIT_TINY_B8

VALUES = np.arange(-128, 128)
HOPELESS = 3.0
"""A backend this many times slower than the fastest (after two rounds) is not run again on that shape."""

EMULATE: dict[str, dict[str, str]] = {
    "avx2": {
        "ATEN_CPU_CAPABILITY": "avx2",
        "ONEDNN_MAX_CPU_ISA": "AVX2",
        "DNNL_MAX_CPU_ISA": "AVX2",
        "MKL_ENABLE_INSTRUCTIONS": "AVX2",
        "NUMBA_CPU_NAME": "haswell",
        "NUMBA_CPU_FEATURES": "",  # empty: the named CPU's own features, not the host's
    },
}
"""Environment that restricts each library to an instruction set, by name (see the module docstring)."""
_EMULATING = "AXHW_BENCH_EMULATING"


def emulate(name: str) -> None:
    """Re-execute this script under :data:`EMULATE` ``[name]``; in the re-executed process, turn oneDNN off for torch.

    The variables must be set before torch and Numba start, hence the new process.
    """
    if os.environ.get(_EMULATING) != name:
        env = {**os.environ, **EMULATE[name], _EMULATING: name}
        os.execve(sys.executable, [sys.executable, *sys.argv], env)
    torch.backends.mkldnn.enabled = False  # _int_mm: the plain loop, as without VNNI


def _tables() -> dict[str, np.ndarray]:
    mag = np.abs(VALUES)
    truncated = np.zeros((256, 256), np.int64)
    for i in range(8):
        for j in range(8):
            if i + j >= 2:
                truncated += np.outer((mag >> i) & 1, (mag >> j) & 1) << (i + j)
    f = np.sign(VALUES) * ((mag >> 2) << 2)
    return {
        "exact": np.outer(VALUES, VALUES).astype(np.int32),
        "a*b+rank2": (np.outer(np.sign(VALUES), np.sign(VALUES)) * truncated).astype(np.int32),
        "separable": np.outer(f, f).astype(np.int32),
        "random": np.random.default_rng(0).integers(-(2**14), 2**14, (256, 256)).astype(np.int32),
    }


def cpu_features() -> str:
    """The CPU model and its AVX/VNNI/AMX flags."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor()
    model = re.search(r"model name\s*:\s*(.*)", text)
    flags = sorted(set(re.findall(r"\b(avx\w*|amx\w*|vnni\w*)\b", text)))
    return f"{model.group(1) if model else platform.machine()}; {' '.join(flags) or 'no AVX'}"


def run(repeats: int, clock: Any = time.perf_counter, budget_s: float = 4.0) -> dict[str, Any]:
    from axhw.emulator.kernels import KERNELS, lut_matmul, prepare_table, select_backend
    from axhw.emulator.kernels.calibration import machine_description
    from axhw.emulator.kernels.reference import lut_matmul as reference

    rows = []
    calibration_s = {}
    for table_name, lut in _tables().items():
        table = prepare_table(lut)
        start = time.perf_counter()
        chosen = select_backend(table, "cpu")
        calibration_s[table_name] = time.perf_counter() - start
        backends = [name for name in ("lowrank", "lowrank_float", "numba_cpu") if KERNELS[name].supports(table)]
        for shape_name, (g, m, k, n) in DEIT_TINY_B8.items():
            gen = torch.Generator().manual_seed(0)
            a = torch.randint(-128, 128, (g, m, k), dtype=torch.int8, generator=gen)
            b = torch.randint(-128, 128, (g, k, n), dtype=torch.int8, generator=gen)
            # Every backend through the same public call a user makes (lut_matmul(..., backend=name)),
            # so the comparison is `backend="auto"` against naming the best backend yourself.
            runs = {name: (lambda name=name: lut_matmul(a, b, table, name)) for name in ["auto", *backends]}
            want = reference(a[0, :8].numpy(), b[0].numpy(), table.lut)
            best = dict.fromkeys(runs, float("inf"))
            for name, fn in runs.items():
                np.testing.assert_array_equal(fn()[0, :8].numpy(), want)  # warm-up and check
            # Rounds until `budget_s` of wall time (at least `repeats`, at most 200), so that the
            # fastest run of each is a clean one; a backend over HOPELESS x the fastest after two
            # rounds keeps its time and is not run again (the ~25x slower int8 GEMMs without VNNI
            # would otherwise take the time the close ones need).
            timed = list(runs)
            order = random.Random(0)
            begin = time.perf_counter()
            rounds = 0
            while rounds < repeats or (time.perf_counter() - begin < budget_s and rounds < 200):
                # A new random order each round: a kernel run right after another finds the caches
                # (and, with AVX-512, the clock) in that one's state; a rotated fixed order would
                # always put the same kernel right after the slow LUT kernel.
                for name in order.sample(timed, len(timed)):
                    fn = runs[name]
                    start = clock()
                    fn()
                    best[name] = min(best[name], clock() - start)
                rounds += 1
                if rounds >= 2:
                    leader = min(best[name] for name in timed)
                    timed = [name for name in timed if name == "auto" or best[name] <= HOPELESS * leader]
            rows.append({"table": table_name, "shape": shape_name, "auto_chose": chosen, "seconds": best, "rounds": rounds})
    return {"cpu": cpu_features(), "isa": machine_description(), "emulated": os.environ.get(_EMULATING, ""), "torch": torch.__version__, "threads": torch.get_num_threads(), "clock": clock.__name__,
            "calibration_s": calibration_s, "rows": rows}


def format_table(result: dict[str, Any]) -> str:
    """Markdown: per table and shape, each backend's time over the best backend's (auto included)."""
    names = ["auto", "lowrank", "lowrank_float", "numba_cpu"]
    chose_best = sum(row["auto_chose"] == min((k for k in row["seconds"] if k != "auto"), key=row["seconds"].__getitem__)
                     for row in result["rows"])
    emulated = f" emulated by ISA restriction: {result['emulated']}" if result.get("emulated") else ""
    lines = [f"CPU: {result['cpu']}; torch {result['torch']}, {result['threads']} thread(s), clock {result['clock']}", "",
             f"In effect{emulated}: {result.get('isa', '?')}", "",
             f"auto chose the fastest backend for {chose_best} of {len(result['rows'])} (table, shape) pairs.", "",
             "| table | shape | auto chose | " + " | ".join(names) + " | auto / best |", "|" + "---|" * (len(names) + 4)]
    totals: dict[str, dict[str, float]] = {}
    for row in result["rows"]:
        secs = row["seconds"]
        best = min(v for k, v in secs.items() if k != "auto")
        cells = [f"{secs[n] / best:.2f}" if n in secs else "-" for n in names]
        lines.append(f"| {row['table']} | {row['shape']} | {row['auto_chose']} | " + " | ".join(cells) + f" | {secs['auto'] / best:.2f} |")
        total = totals.setdefault(row["table"], {})
        for name, value in secs.items():
            total[name] = total.get(name, 0.0) + value
    lines += ["", "| table (all six shapes) | " + " | ".join(names) + " | auto / best | calibration s |", "|" + "---|" * (len(names) + 3)]
    for table_name, total in totals.items():
        best = min(v for k, v in total.items() if k != "auto")
        cells = [f"{total[n] / best:.2f}" if n in total else "-" for n in names]
        lines.append(f"| {table_name} | " + " | ".join(cells) + f" | {total['auto'] / best:.2f} | {result['calibration_s'][table_name]:.1f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--budget", type=float, default=4.0, help="seconds of timing rounds per table and shape (default 4)")
    parser.add_argument("--threads", type=int, default=1, help="torch and numba threads (default 1: stable on a shared machine)")
    parser.add_argument("--emulate", choices=sorted(EMULATE), default=None,
                        help="restrict every library to this instruction set (a CPU without AVX-512/VNNI)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    if args.emulate:
        emulate(args.emulate)
    from axhw.threads import apply_threads

    apply_threads(args.threads)
    with tempfile.TemporaryDirectory() as cache:
        os.environ["AXHW_CACHE"] = cache  # measure the calibration, do not read an old one
        # One thread: process CPU time, which other jobs on a shared machine barely disturb.
        result = run(args.repeats, time.process_time if args.threads == 1 else time.perf_counter, args.budget)
    print(format_table(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
