"""What the thread policy buys on a shared machine: the same job with all cores, one, and the default.

Runs ``python -m axhw.training --epochs E`` (the embedded model, CPU) in fresh processes
with ``--threads`` set to every core (what torch and Numba take by default), to 1, and
not set at all (axhw's default: the idle cores, see :mod:`axhw.threads`), each
``--repeats`` times in a rotating order, and prints the wall-clock times with the load
average seen before each run.  ``OMP_NUM_THREADS``, ``MKL_NUM_THREADS``,
``NUMBA_NUM_THREADS`` and ``AXHW_THREADS`` are removed from the children's environment.

Usage::

    python benchmarks/threads.py [--epochs 2] [--repeats 2] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from axhw.threads import available_cores, default_threads


def run_once(threads: int | None, epochs: int, out: Path) -> float:
    env = {k: v for k, v in os.environ.items()
           if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS", "AXHW_THREADS")}
    cmd = [sys.executable, "-m", "axhw.training", "--epochs", str(epochs), "--out", str(out)]
    if threads is not None:
        cmd += ["--threads", str(threads)]
    start = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, capture_output=True, text=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    cores = available_cores()
    settings: dict[str, int | None] = {f"all {cores} cores": cores, "1 thread": 1, "axhw default": None}
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in settings}
    names = list(settings)
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeats):
            for name in names[r % len(names):] + names[:r % len(names)]:
                load = os.getloadavg()[0]
                chosen = settings[name] if settings[name] is not None else default_threads()
                seconds = run_once(settings[name], args.epochs, Path(tmp))
                runs[name].append({"seconds": seconds, "load": load, "threads": chosen})
    print(f"python -m axhw.training --epochs {args.epochs}, {cores} cores available, wall clock")
    print("| threads | runs (s) | median (s) | load average before each | threads used |")
    print("|---|---|---|---|---|")
    for name, items in runs.items():
        seconds = ", ".join(f"{i['seconds']:.1f}" for i in items)
        loads = ", ".join(f"{i['load']:.1f}" for i in items)
        used = ", ".join(str(i["threads"]) for i in items)
        median = statistics.median(i["seconds"] for i in items)
        print(f"| {name} | {seconds} | {median:.1f} | {loads} | {used} |")
    if args.json:
        args.json.write_text(json.dumps(runs, indent=2) + "\n")


if __name__ == "__main__":
    main()
