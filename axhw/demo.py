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


def _stage_library(out: Path) -> None:
    """Characterize the bundled RTL library (only stale or missing entries) and print its error metrics."""
    from . import library
    from .io import atomic_write_text

    rebuilt = library.rebuild()
    table = library.list_table()
    atomic_write_text(out / "multipliers.txt", table + "\n")
    count = len(library.names())
    print(f"{count} multipliers in the database; re-characterized now: {', '.join(rebuilt) if rebuilt else 'none'}")
    print(table)


def _stage_hardware(out: Path) -> None:
    """Hardware cost of every library design (osu018, uniform operands); cached in hw.json."""
    from . import library
    from .hw import characterize_many, format_table
    from .io import atomic_write_text

    costs = characterize_many(None, "osu018", jobs=2)
    mae = {m.name: m.metrics.mae for m in library.load_all()}
    table = format_table(costs, mae)
    atomic_write_text(out / "hardware_costs.txt", table + "\n")
    print("osu018, 10 ns clock, uniform int8 operands; energy per multiplication, saving vs exact:")
    print(table)


#: (name, function) in execution order; later issues append stages here.
STAGES: list[tuple[str, Callable[[Path], None]]] = [
    ("environment", _stage_doctor),
    ("multiplier library", _stage_library),
    ("hardware cost", _stage_hardware),
]


def _stage_search(out: Path) -> None:
    """A short MCTS search on the embedded default; writes ``search_result.json``.

    Candidates: up to three database designs on the energy/MAE front
    (:func:`axhw.search.space.efficient_candidates`, osu018), plus exact.  True evaluations use the first 200 test images and are
    cached on disk; the checkpoint makes a second run replay instead of re-evaluate.
    """
    import warnings

    from .search import ConstraintWarning, run
    from .search.space import efficient_candidates

    candidates = efficient_candidates(3)
    if not candidates:
        raise AxhwError("no multiplier cheaper than exact has a hardware cost; run the hardware cost stage first")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConstraintWarning)
        result = run("default", "digits", candidates, max_accuracy_drop=1.0, budget=25, method="mcts", seed=0,
                     eval_size=200, calib_size=128, checkpoint=out / "search_checkpoint.json", progress=False,
                     settings={"command": "python -m axhw.demo  # stage: search (axhw.demo._stage_search)"})
    result.save(out / "search_result.json")
    best = result.best()
    rows = [
        ("candidates", ", ".join(result.candidates)),
        ("true evaluations", f"{len(result.history) - 1} search + {result.settings['sensitivity_evaluations']} "
                             f"sensitivity ({result.settings['replayed_from_checkpoint']} replayed from checkpoint)"),
        ("accuracy fp32 / int8", f"{100 * result.fp32_accuracy:.2f} % / {100 * result.int8_accuracy:.2f} %"),
        ("best within 1.0 point", f"power {100 * best.power_rel:.1f} % of all-exact, "
                                  f"drop {result.accuracy_drop(best):.2f} points"),
        ("Pareto front", f"{len(result.pareto())} configurations"),
        ("result", str(out / "search_result.json")),
    ]
    for key, value in rows:
        print(f"{key:<28} {value}")


STAGES.append(("search", _stage_search))


def _stage_report(out: Path) -> None:
    """Write the accelerator configuration report of the search stage's result."""
    from .report import load_result, write_report

    result_path = out / "search_result.json"
    if not result_path.is_file():
        raise AxhwError(f"{result_path} not found: the search stage writes it; run the whole demo (`make demo`)")
    result = load_result(result_path)
    paths = write_report(result, out / "report", command="python -m axhw.demo  # stage: report")
    chosen = result.best()
    print(f"{'chosen configuration':<28} evaluation #{chosen.index} ({chosen.method}) of {len(result.history)}")
    print(f"{'accuracy int8 / chosen':<28} {result.int8_accuracy * 100:.2f} % / {chosen.accuracy * 100:.2f} %")
    print(f"{'multiplier power':<28} {chosen.power_rel * 100:.2f} % of all-exact")
    print(f"{'flags':<28} {len(paths.flags)}")
    for flag in paths.flags:
        print(f"  warning: {flag}")
    print(f"report: {paths.html.resolve()}")


# The report reads what the other stages wrote: keep it the last stage.
STAGES.append(("report", _stage_report))


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
