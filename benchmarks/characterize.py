"""Seconds per design for the exhaustive characterization (65,536 pairs, cocotb + Icarus).

For each bundled design (or the ones named), in a throw-away database and cache:

* ``cold``: ``axhw.library.add`` from scratch: discovery (pyverilog), iverilog
  build, the cocotb sweep, metrics and the atomic writes;
* ``sweep``: the simulation alone again with the build re-used (``axhw.simulate.sweep``);
* ``cpu``: CPU seconds (this process and its children: iverilog, vvp) of the cold
  run, which is what the wall time would be on an idle core.

Usage: ``python benchmarks/characterize.py [NAME ...]``.  The machine load is
printed too, since the sweep is CPU-bound and shares the cores.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time


def _cpu_seconds() -> float:
    """User + system CPU seconds of this process and its finished children."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="bundled design names (default: all of rtl/library.json)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="axhw-bench-") as tmp:
        os.environ["AXHW_DB"] = os.path.join(tmp, "db")
        os.environ["AXHW_CACHE"] = os.path.join(tmp, "cache")
        from axhw import library
        from axhw.discover import discover
        from axhw.paths import rtl_dir
        from axhw.simulate import sweep

        entries = [e for e in library.manifest() if not args.names or e.name in args.names]
        print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())} ({os.cpu_count()} CPUs)")
        print(f"{'design':<16} {'cold s':>8} {'sweep s':>8} {'cpu s':>8}")
        cold, warm, cpu = [], [], []
        for entry in entries:
            path = rtl_dir() / entry.file
            c0 = _cpu_seconds()
            t0 = time.perf_counter()
            library.add(path, name=entry.name, parameters=entry.parameters, family=entry.family,
                        description=entry.description, top=entry.top, signed=entry.signed)
            t1 = time.perf_counter()
            c1 = _cpu_seconds()
            sweep(path, discover(path, parameters=entry.parameters, top=entry.top, signed=entry.signed))
            t2 = time.perf_counter()
            cold.append(t1 - t0)
            warm.append(t2 - t1)
            cpu.append(c1 - c0)
            print(f"{entry.name:<16} {t1 - t0:8.2f} {t2 - t1:8.2f} {c1 - c0:8.2f}", flush=True)
        if entries:
            print(f"{'median':<16} {statistics.median(cold):8.2f} {statistics.median(warm):8.2f} {statistics.median(cpu):8.2f}")
            print(f"{'total':<16} {sum(cold):8.2f} {sum(warm):8.2f} {sum(cpu):8.2f}   ({len(entries)} designs)")
        print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
