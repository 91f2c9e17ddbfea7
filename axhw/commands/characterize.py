"""``axhw characterize [NAMES | --all] [--hw] [--liberty NAME|PATH] [--jobs N] [--force]``."""

from __future__ import annotations

import argparse
import warnings

from axhw.errors import ConfigError
from axhw.records import DEFAULT_LIBERTY


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "characterize",
        help="re-characterize stale product tables, or (--hw) fill area/delay/power from synthesis",
        description="Without --hw: re-simulate the database entries whose product table is missing or stale "
        "(axhw.library.rebuild). With --hw: synthesize each design with yosys onto a Liberty cell library, "
        "check the netlist against the RTL on every operand pair, time it with OpenSTA and measure its power "
        "for uniform int8 operands (gate-level switching activity annotated into OpenSTA); results are cached "
        "in multipliers_db/<name>/hw.json, so a second run is instant.",
    )
    parser.add_argument("names", nargs="*", metavar="NAME", help="database entries (default: all)")
    parser.add_argument("--all", action="store_true", help="every database entry (the default when no NAME is given)")
    parser.add_argument("--hw", action="store_true", help="hardware cost: area (µm²), delay (ns), power (mW), energy (pJ)")
    parser.add_argument("--liberty", default=DEFAULT_LIBERTY, metavar="NAME|PATH",
                        help=f"cell library for --hw: {DEFAULT_LIBERTY} (default), osu035, osu050 or a .lib file")
    parser.add_argument("--clock-ns", type=float, default=10.0, metavar="NS",
                        help="clock period for --hw timing constraints and power, one product per cycle (default 10)")
    parser.add_argument("-j", "--jobs", type=int, default=1, metavar="N",
                        help="designs run in parallel with --hw (default 1)")
    parser.add_argument("--force", action="store_true", help="recompute even up-to-date entries")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    if args.all and args.names:
        raise ConfigError("give NAMEs or --all, not both")
    names = args.names or None
    if not args.hw:
        from axhw import library

        done = library.rebuild(names=names, force=args.force, progress=True)
        print(f"re-characterized {len(done)}: {', '.join(done)}" if done else "every product table is up to date")
        return 0
    from axhw import library
    from axhw.hw import characterize_many, format_table

    for name in names or library.names():
        library.check_writable(name)  # a read-only database fails now, not after synthesis

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        costs = characterize_many(names, args.liberty, clock_ns=args.clock_ns, jobs=args.jobs, force=args.force)
    for warning in caught:
        print(f"axhw characterize: warning: {warning.message}")
    mae = {m.name: m.metrics.mae for m in map(library.load, costs)}
    first = next(iter(costs.values()), None)
    if first is not None:
        print(f"{first.liberty}, clock {first.clock_ns:g} ns, uniform int8 operands "
              f"(energy = power x clock; savings against the cheapest zero-error design, named in the header):")
    print(format_table(costs, mae))
    return 0
