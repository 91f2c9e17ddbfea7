"""Uniform vs workload energy per multiplication, per layer, on the embedded default ViT.

Collects each selected op's operand stream on the calibration images in
weight-stationary order (:func:`axhw.emulator.collect_operands`), costs each
selected design on it (:func:`axhw.hw.workload_cost`, cached by content hash), and
prints the uniform and workload energies side by side, with the saving against the
cheapest zero-error design (:func:`axhw.hw.best_exact`) on each.  The same streams,
shuffled, are costed too when ``--shuffled`` is given, to show what the order adds.

``--timing DESIGN`` times instead the costing of every op's stream (25 on the
embedded default) on one design, in a private cache (synthesis done first, untimed),
three ways side by side in this process: one ``workload_cost`` call per stream with
the line-by-line VCD counter (the flow before batching), one call per stream, and
one ``workload_costs`` batch (and the batch split over ``min(CPUs, 4)`` simulations
at once); it checks that every way gives identical costs.

Usage::

    python benchmarks/workload_power.py [--ops blocks.0.attn.qkv,blocks.0.attn.av] \
        [--designs exact,drum_k4] [--pairs 2048] [--shuffled]
    python benchmarks/workload_power.py --timing exact_u
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ops", default="blocks.0.attn.qkv,blocks.0.attn.av,blocks.0.mlp.fc2")
    parser.add_argument("--designs", default="exact,drum_k4,trunc_k4,perf_m1")
    parser.add_argument("--pairs", type=int, default=2048, help="operand pairs per op (default 2048)")
    parser.add_argument("--shuffled", action="store_true", help="also cost each stream in a shuffled order")
    parser.add_argument("--timing", metavar="DESIGN", help="time per-stream vs batch costing of every op on DESIGN")
    args = parser.parse_args(argv)

    from axhw import hw, library
    from axhw.data import get_loader
    from axhw.emulator import approximate, collect_operands
    from axhw.errors import AxhwError
    from axhw.models import default_model

    try:
        base = hw.best_exact()
        ops = args.ops.split(",")
        designs = [base.name] + [d for d in args.designs.split(",") if d != base.name]
        calib = get_loader("digits", "calib", batch_size=64)
        ax = approximate(default_model(), {"*": "exact"}, calib, num_batches=4, progress=False)
        t0 = time.perf_counter()
        streams = collect_operands(ax, calib, max_pairs_per_op=args.pairs, seed=0)
        print(f"collected {len(streams)} op streams of {args.pairs} pairs in {time.perf_counter() - t0:.1f} s; "
              f"reference {base.name}")
        if args.timing:
            return _timing(args.timing, streams)
        rows = []
        for op in ops:
            if op not in streams:
                raise AxhwError(f"op {op!r} is not an approximated op of the default model")
            order = {"workload": streams[op]}
            if args.shuffled:
                order["shuffled"] = streams[op][np.random.default_rng(0).permutation(len(streams[op]))]
            energies: dict[tuple[str, str], float] = {}
            for name in designs:
                energies[(name, "uniform")] = library.load(name).hw.energy_pj
                for label, ops_ in order.items():
                    t0 = time.perf_counter()
                    energies[(name, label)] = hw.workload_cost(name, ops_, stream=f"{label}:{op}").energy_pj
                    print(f"  {op} {name} {label}: {energies[(name, label)]:.3f} pJ ({time.perf_counter() - t0:.1f} s)",
                          file=sys.stderr)
            for name in designs:
                row = [op, name]
                for label in ("uniform", *order):
                    e, ref = energies[(name, label)], energies[(base.name, label)]
                    row += [f"{e:.3f}", f"{100 * (1 - e / ref):.1f}"]
                rows.append(row)
    except AxhwError as exc:
        print(f"workload_power: error: {exc}", file=sys.stderr)
        return 2
    labels = ["uniform", "workload"] + (["shuffled"] if args.shuffled else [])
    header = ["op", "design"] + [x for label in labels for x in (f"{label} pJ", f"saving vs {base.name} %")]
    print("| " + " | ".join(header) + " |")
    print("|---|---|" + "---:|" * (len(header) - 2))
    for row in rows:
        print("| " + " | ".join(row) + " |")
    return 0


def _timing(name: str, streams: dict) -> int:
    """Seconds to cost every stream on ``name``: per stream (old counter, new counter) and in one batch."""
    from axhw import hw
    from axhw.hw import flow, power

    labels = {f"workload:{op}": ops for op, ops in streams.items()}
    design = hw.as_design(name)
    lib = hw.resolve_liberty("osu018")

    def line_by_line(path, windows):  # the counter every stream went through before batching
        return [power._count_vcd(path, *window) for window in windows]

    old_env = os.environ.get("AXHW_CACHE")
    root = Path(tempfile.mkdtemp(prefix="axhw-timing-"))
    try:
        os.environ["AXHW_CACHE"] = str(root)
        flow.run_flows(design, lib, {"warm-up": hw.uniform_operands(2)})  # synthesis, equivalence: untimed
        seconds, results = {}, {}
        jobs = min(os.cpu_count() or 1, 4)
        ways = ["per stream, line-by-line counter", "per stream", "batch"] + ([f"batch, jobs={jobs}"] if jobs > 1 else [])
        for way in ways:
            shutil.rmtree(root / "hw" / "workload", ignore_errors=True)  # no stream cached, synthesis kept
            counter = power._count_vcd_windows
            if way.endswith("line-by-line counter"):
                power._count_vcd_windows = line_by_line
            t0 = time.perf_counter()
            try:
                if way.startswith("batch"):
                    results[way] = hw.workload_costs(design, labels, jobs=jobs if "jobs" in way else 1)
                else:
                    results[way] = {label: hw.workload_cost(design, ops, stream=label) for label, ops in labels.items()}
            finally:
                power._count_vcd_windows = counter
            seconds[way] = time.perf_counter() - t0
            print(f"  {way}: {seconds[way]:.1f} s (load {os.getloadavg()[0]:.1f})", file=sys.stderr)
    finally:
        if old_env is None:
            os.environ.pop("AXHW_CACHE", None)
        else:
            os.environ["AXHW_CACHE"] = old_env
        shutil.rmtree(root, ignore_errors=True)
    first = next(iter(results.values()))
    same = all(r == first for r in results.values())
    n, pairs = len(labels), sum(len(ops) for ops in labels.values())
    print(f"| {name}: {n} streams, {pairs} pairs | seconds | per stream | vs batch |")
    print("|---|---:|---:|---:|")
    for way, sec in seconds.items():
        print(f"| {way} | {sec:.1f} | {sec / n:.2f} | {sec / seconds['batch']:.1f}x |")
    print(f"identical costs every way: {same}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
