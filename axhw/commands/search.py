"""``axhw search``: per-op multiplier assignment search, written to a result JSON."""

from __future__ import annotations

import argparse
import shlex
import sys
import warnings
from pathlib import Path
from typing import Any

from axhw.records import DEFAULT_LIBERTY


def _csv(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def register(subparsers: argparse._SubParsersAction) -> None:
    from axhw.search import METHODS

    parser = subparsers.add_parser(
        "search",
        help="search a per-layer multiplier assignment on the accuracy/power front",
        description="Profile each op's sensitivity to each candidate multiplier, then search the per-op "
        "assignment with the lowest multiplier power whose true accuracy drop stays within --max-drop, using "
        "MCTS with a hardware-driven rollout policy and an accuracy surrogate (or a baseline). Every choice is made "
        "on the search split; the reported configurations are then measured on the test split, which nothing "
        "before read, with 95 %% intervals and the paired drop below int8. Every true evaluation is cached on "
        "disk; with --checkpoint an interrupted search resumes without repeating any. Writes a SearchResult JSON "
        "(`axhw report` turns it into the hardware report).",
    )
    parser.add_argument("--model", default="default", help="'default' (embedded digits ViT) or a timm name")
    parser.add_argument("--weights", type=Path, default=None, help="local checkpoint for --model")
    parser.add_argument("--num-classes", type=int, default=None, metavar="N",
                        help="classifier outputs with --weights (default: the data's classes; see `axhw emulate --help`)")
    parser.add_argument("--data", default="digits", help="data spec: 'digits' or 'imagefolder:PATH'")
    parser.add_argument("--candidates", type=_csv, default=None, metavar="A,B,...",
                        help="candidate multipliers (default: every database entry with a hardware cost)")
    parser.add_argument("--max-drop", type=float, default=1.0, metavar="POINTS",
                        help="accuracy constraint, points below --reference (default 1.0)")
    parser.add_argument("--reference", choices=("int8", "fp32"), default="int8",
                        help="accuracy the drop is measured from (default int8 all-exact)")
    parser.add_argument("--budget", type=int, default=40, help="true evaluations of full configurations (default 40)")
    parser.add_argument("--method", choices=sorted(METHODS), default="mcts", help="search method (default mcts)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--executor", choices=("process", "ray", "serial"), default="process")
    parser.add_argument("--workers", type=int, default=None, help="parallel evaluations (default 1 local process)")
    parser.add_argument("--address", default=None, help="Ray cluster address (default: a local instance)")
    parser.add_argument("--checkpoint", type=Path, default=None,
                        help="search checkpoint JSON to save to / resume from (model weights are --weights)")
    parser.add_argument("--eval-split", choices=("search", "val"), default="search",
                        help="split every search evaluation reads (default search; never train or test)")
    parser.add_argument("--eval-size", type=int, default=None, help="first N images of that split (default all)")
    parser.add_argument("--holdout-split", choices=("test", "none"), default="test",
                        help="split the reported configurations are finally measured on (default test)")
    parser.add_argument("--bound", choices=("point", "upper", "lower"), default="point",
                        help="check the limit against the measured drop (default; warns when the limit is under the "
                        "split's resolution) or the upper/lower end of its paired 95%% interval")
    parser.add_argument("--device", default=None, help="where evaluations run: cpu (default) or cuda")
    parser.add_argument("--calib-size", type=int, default=128, help="calibration images (default 128)")
    parser.add_argument("--liberty", default=DEFAULT_LIBERTY, help="cell library of the hardware costs")
    parser.add_argument("--power", choices=("uniform", "operands"), default="operands",
                        help="energy per op: each op's own operand stream in weight-stationary order (default; "
                             "costed per op and multiplier, cached), or uniform operands")
    parser.add_argument("--backend", default="auto", help="emulator kernel backend (default auto)")
    parser.add_argument("--no-cache", action="store_true", help="do not use the on-disk evaluation cache")
    parser.add_argument("-o", "--out", type=Path, default=Path("search_result.json"), help="result JSON path")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--no-progress", dest="quiet", action="store_true", help=argparse.SUPPRESS)  # emulate's old name
    parser.add_argument("--max-types", type=int, default=None, metavar="N",
                        help="at most N distinct multiplier types per configuration, the reference included")
    parser.add_argument("--keep-dominated", action="store_true",
                        help="keep candidates another one dominates (no more error on any operand pair for no "
                        "more energy); by default they are left out before profiling")
    parser.set_defaults(func=_run)


def _command(args: argparse.Namespace) -> str:
    """The ``axhw search`` command line that reproduces this run, every option explicit."""
    argv = ["axhw", "search", "--model", args.model, "--data", args.data, "--max-drop", repr(args.max_drop),
            "--reference", args.reference, "--budget", str(args.budget), "--method", args.method,
            "--seed", str(args.seed), "--executor", args.executor, "--eval-split", args.eval_split,
            "--holdout-split", args.holdout_split, "--bound", args.bound,
            "--calib-size", str(args.calib_size), "--liberty", args.liberty, "--power", args.power,
            "--backend", args.backend, "-o", str(args.out)]
    if args.weights is not None:
        argv += ["--weights", str(args.weights)]
    if args.num_classes is not None:
        argv += ["--num-classes", str(args.num_classes)]
    if args.candidates is not None:
        argv += ["--candidates", ",".join(args.candidates)]
    if args.eval_size is not None:
        argv += ["--eval-size", str(args.eval_size)]
    if args.workers is not None:
        argv += ["--workers", str(args.workers)]
    if args.address is not None:
        argv += ["--address", args.address]
    if args.checkpoint is not None:
        argv += ["--checkpoint", str(args.checkpoint)]
    if args.device is not None:
        argv += ["--device", args.device]
    if args.no_cache:
        argv.append("--no-cache")
    if args.max_types is not None:
        argv += ["--max-types", str(args.max_types)]
    if args.keep_dominated:
        argv.append("--keep-dominated")
    return shlex.join(argv)


def _pct_ci(accuracy: float, interval: tuple[float, float] | None) -> str:
    ci = "" if interval is None else f" [{100 * interval[0]:.1f}, {100 * interval[1]:.1f}]"
    return f"{100 * accuracy:.2f}%{ci}"


def summary_rows(result: Any) -> list[tuple[str, str]]:
    """The ``axhw search`` summary: every accuracy names its split and carries its 95 % interval."""
    best = result.best()
    split, n = result.eval_split, result.history[0].n_images or result.settings.get("eval_images")
    rows = [
        ("model / data", f"{result.model_name} / {result.dataset}"),
        ("method, seed", f"{result.method}, {result.seed}"),
        ("true evaluations", f"{len(result.history) - 1} (+{result.settings['sensitivity_evaluations']} sensitivity), "
                             f"on the {split} split ({n} images)"),
        (f"int8 accuracy ({split})", _pct_ci(result.int8_accuracy, result.accuracy_interval(result.history[0]))),
        ("best power", f"{100 * best.power_rel:.1f}% of all-{result.candidates[0]}, the cheapest exact design "
                       f"(saving {100 * best.power_saving:.1f}%; {result.settings.get('power_model', 'uniform operands')})"),
        (f"its accuracy ({split})", _pct_ci(best.accuracy, result.accuracy_interval(best))),
    ]
    drop = result.drop_estimate(best)
    rows.append((f"its drop vs int8 ({split})", (drop.format() if drop is not None else
                                                  f"{result.accuracy_drop(best):.2f}") +
                 f" points (limit {result.max_accuracy_drop:g}, checked at bound {result.bound!r})"))
    held = result.holdout_evaluation(best)
    if held is not None:
        ref = result.holdout["reference"]["accuracy"]
        rows += [
            (f"int8 accuracy ({held['split']})", f"{100 * ref:.2f}% ({held['n_images']} images never read by the search)"),
            (f"its accuracy ({held['split']})", _pct_ci(held["accuracy"], held["interval"])),
            (f"its drop vs int8 ({held['split']})", f"{held['drop'].format()} points (paired 95% interval)"),
        ]
    rows.append(("Pareto front", f"{len(result.pareto())} configurations"))
    metrics = result.surrogate_metrics
    if metrics.get("rmse") is not None:
        tau = metrics.get("kendall_tau")
        rows.append(("surrogate", f"RMSE {metrics['rmse']:.3f} points, Kendall tau "
                                  f"{'n/a' if tau is None else f'{tau:.3f}'} ({metrics['protocol'].split(':')[0]})"))
    return rows


def _run(args: argparse.Namespace) -> int:
    from axhw.search import ConstraintWarning, ResolutionWarning, run

    model = args.model
    if args.weights is not None:
        from axhw.models import load_model

        from axhw.data import num_classes
        from axhw.models import data_class_names

        model = load_model(args.model, checkpoint=args.weights, num_classes=args.num_classes or num_classes(args.data),
                           class_names=data_class_names(args.data))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConstraintWarning)
        warnings.simplefilter("always", ResolutionWarning)
        result = run(
            model, args.data, args.candidates, max_accuracy_drop=args.max_drop, budget=args.budget,
            method=args.method, seed=args.seed, executor=args.executor, n_workers=args.workers,
            address=args.address, checkpoint=args.checkpoint, eval_split=args.eval_split, eval_size=args.eval_size,
            holdout_split=None if args.holdout_split == "none" else args.holdout_split, bound=args.bound,
            device=args.device, calib_size=args.calib_size, liberty=args.liberty, power=args.power,
            backend=args.backend, reference=args.reference, cache_dir=False if args.no_cache else None,
            progress=not args.quiet, model_name=args.model, settings={"command": _command(args)},
            prune=not args.keep_dominated, max_types=args.max_types,
        )
    result.save(args.out)
    rows = summary_rows(result)
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    for w in caught:
        if issubclass(w.category, (ConstraintWarning, ResolutionWarning)):
            print(f"warning: {w.message}", file=sys.stderr)
    print(f"result written to {args.out}")
    return 0
