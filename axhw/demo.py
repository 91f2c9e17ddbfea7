"""``make demo``: the whole pipeline on the embedded default, stage by stage.

Each stage is a function taking the output folder; stages re-use cached results,
so a second run is fast.  Run with ``python -m axhw.demo [--out DIR]``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Callable

from .errors import AxhwError

__all__ = ["run_demo", "STAGES"]


def _stage_doctor(out: Path) -> None:
    from .doctor import format_table, run_checks

    checks = run_checks()
    missing = [c.name for c in checks if c.required and not c.ok]
    if missing:
        print(format_table(checks))
        raise AxhwError(f"required components missing: {', '.join(missing)}; see `axhw doctor`")
    print(f"environment: {len(checks)} components checked, all required found")


#: (name, function) in execution order; later issues append stages here.
STAGES: list[tuple[str, Callable[[Path], None]]] = [
    ("environment", _stage_doctor),
]


def run_demo(out: Path) -> None:
    """Run every demo stage, writing outputs under ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    for index, (name, stage) in enumerate(STAGES, 1):
        t0 = time.perf_counter()
        print(f"\n== [{index}/{len(STAGES)}] {name}")
        stage(out)
        print(f"   ({time.perf_counter() - t0:.1f} s)")
    print(f"\ndemo finished in {time.perf_counter() - t_start:.1f} s; outputs in {out.resolve()}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m axhw.demo", description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("out/demo"), help="output folder (default: out/demo)")
    args = parser.parse_args(argv)
    try:
        run_demo(args.out)
    except AxhwError as exc:
        print(f"demo: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
