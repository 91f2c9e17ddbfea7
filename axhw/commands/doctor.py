"""``axhw doctor``."""

from __future__ import annotations

import argparse

from axhw.doctor import format_table, run_checks


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "doctor",
        help="check that every tool and library axhw needs is installed",
        description="Check iverilog, yosys, OpenSTA, the Liberty cell libraries, the Python "
        "packages and GPU support; print a table with versions and how to fix what is missing, "
        "then the CPU kernel backends `auto` measured fastest on this machine. "
        "Exits 1 when a required component is missing.",
    )
    parser.add_argument("--recalibrate", action="store_true",
                        help="measure the kernel backends again (e.g. after a torch upgrade or on a quieter machine)")
    parser.set_defaults(func=_run)


def kernel_choices(recalibrate: bool = False) -> list[str]:
    """What ``backend="auto"`` runs on this CPU, measured (or read from the cache): one line per table kind."""
    import numpy as np

    from axhw.emulator.kernels import calibration, prepare_table, select_backend

    if recalibrate:
        calibration.recalibrate()
    values = np.arange(-128, 128)
    exact = np.outer(values, values)
    truncated = np.sign(exact) * ((np.abs(exact) >> 2) << 2)  # the exact product plus low-rank error terms
    for lut in (exact, truncated):
        select_backend(prepare_table(lut.astype(np.int32)), "cpu")
    lines = [c.describe() for c in calibration.calibration_report()]
    lines.append("tables without an exact low-rank form: numba_cpu (the LUT kernel)")
    return lines


def _run(args: argparse.Namespace) -> int:
    checks = run_checks()
    print(format_table(checks))
    from axhw.emulator.kernels.calibration import cache_file, machine_description

    print(f"\nkernel backend chosen by backend='auto' on this CPU (measured; cached in {cache_file()}):")
    print(f"  CPU: {machine_description()}")
    for line in kernel_choices(args.recalibrate):
        print(f"  {line}")
    missing = [c.name for c in checks if c.required and not c.ok]
    if missing:
        print(f"\nmissing required: {', '.join(missing)}")
        return 1
    print("\nall required components found")
    return 0
