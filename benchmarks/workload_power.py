"""Uniform vs workload energy per multiplication, per layer, on the embedded default ViT.

Collects each selected op's operand stream on the calibration images in
weight-stationary order (:func:`axhw.emulator.collect_operands`), costs each
selected design on it (:func:`axhw.hw.workload_cost`, cached by content hash), and
prints the uniform and workload energies side by side, with the saving against the
cheapest zero-error design (:func:`axhw.hw.best_exact`) on each.  The same streams,
shuffled, are costed too when ``--shuffled`` is given, to show what the order adds.

Usage::

    python benchmarks/workload_power.py [--ops blocks.0.attn.qkv,blocks.0.attn.av] \
        [--designs exact,drum_k4] [--pairs 2048] [--shuffled]
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ops", default="blocks.0.attn.qkv,blocks.0.attn.av,blocks.0.mlp.fc2")
    parser.add_argument("--designs", default="exact,drum_k4,trunc_k4,perf_m1")
    parser.add_argument("--pairs", type=int, default=2048, help="operand pairs per op (default 2048)")
    parser.add_argument("--shuffled", action="store_true", help="also cost each stream in a shuffled order")
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


if __name__ == "__main__":
    sys.exit(main())
