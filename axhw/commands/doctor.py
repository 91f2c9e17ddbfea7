"""``axhw doctor``."""

from __future__ import annotations

import argparse

from axhw.doctor import format_table, run_checks


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "doctor",
        help="check that every tool and library axhw needs is installed",
        description="Check iverilog, yosys, OpenSTA, the Liberty cell libraries, the Python "
        "packages and GPU support; print a table with versions and how to fix what is missing. "
        "Exits 1 when a required component is missing.",
    )
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    checks = run_checks()
    print(format_table(checks))
    missing = [c.name for c in checks if c.required and not c.ok]
    if missing:
        print(f"\nmissing required: {', '.join(missing)}")
        return 1
    print("\nall required components found")
    return 0
