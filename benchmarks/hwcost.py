"""Seconds per design for each step of the hardware-cost flow, from scratch.

For every selected database design (default: all), the flow runs in a fresh build
folder under a temporary cache: synthesis (yosys + abc onto the Liberty library),
equivalence (exhaustive Icarus simulation of netlist vs RTL), timing (OpenSTA),
activity (Icarus simulation of the uniform operand stream with cell delays, VCD
counting) and power (OpenSTA with per-pin activities).  ``hw.json`` is neither read
nor written.  The goal is <= 60 s per design, all steps, on 2 cores.

Usage::

    python benchmarks/hwcost.py [NAMES ...] [--liberty osu018] [--pairs 4096] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time

from axhw import hw, library
from axhw.errors import AxhwError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", help="database entries (default: all)")
    parser.add_argument("--liberty", default="osu018", help="library name or .lib path (default osu018)")
    parser.add_argument("--pairs", type=int, default=hw.DEFAULT_PAIRS, help="uniform operand pairs for activity")
    parser.add_argument("--clock-ns", type=float, default=10.0, help="clock period (ns)")
    parser.add_argument("--json", help="also write the timings as JSON to this file")
    args = parser.parse_args(argv)

    try:
        names = args.names or library.names()
        lib = hw.resolve_liberty(args.liberty)
        designs = [hw.as_design(name) for name in names]
    except AxhwError as exc:
        print(f"hwcost benchmark: error: {exc}", file=sys.stderr)
        return 2
    operands = hw.uniform_operands(args.pairs)
    print(f"{lib.name} ({lib.path}), {args.pairs} uniform pairs, clock {args.clock_ns:g} ns; "
          f"{os.cpu_count()} CPUs, {platform.processor() or platform.machine()}; load {os.getloadavg()[0]:.1f}")
    header = ["design", "cells", *hw.STEPS, "total s"]
    print("  ".join(f"{h:>11}" for h in header))
    rows = []
    with tempfile.TemporaryDirectory(prefix="axhw-hwbench-") as tmp:
        os.environ["AXHW_CACHE"] = tmp
        for design in designs:
            t0 = time.perf_counter()
            result = hw.run_flow(design, lib, operands, args.clock_ns, fresh=True)
            total = time.perf_counter() - t0
            rows.append({"design": design.name, "cells": result.cost.cell_count, "seconds": result.seconds,
                         "total_s": total})
            cells = [design.name, str(result.cost.cell_count), *(f"{result.seconds[s]:.2f}" for s in hw.STEPS),
                     f"{total:.2f}"]
            print("  ".join(f"{c:>11}" for c in cells), flush=True)
    worst = max(row["total_s"] for row in rows)
    print(f"slowest design: {worst:.1f} s (goal <= 60 s per design, all steps)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"liberty": lib.name, "pairs": args.pairs, "rows": rows}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
