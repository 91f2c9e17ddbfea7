"""``axhw report RESULT.json -o DIR``."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from axhw.commands._chain import percent, retrained_config, retrained_info
from axhw.errors import ConfigError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "report",
        help="write the accelerator configuration report of a search result",
        description="Write report.md, a self-contained report.html, config.json (per-op assignment and "
        "hardware hand-off), filelist.f with the RTL sources, and the plots, from a search result written by "
        "`axhw search`. Multipliers that are missing from the database or stale are flagged in the report.",
    )
    parser.add_argument("result", type=Path, help="search result JSON (SearchResult.save / axhw search -o)")
    parser.add_argument("-o", "--out", type=Path, required=True, help="output folder (created)")
    parser.add_argument(
        "--retrained", type=Path, default=None, metavar="JSON",
        help="the summary.json of `axhw retrain` run on this result's chosen configuration (`axhw retrain --config "
        "RESULT.json`): its accuracy, split, interval and drop; or a JSON object with 'accuracy' as a fraction",
    )
    parser.add_argument(
        "--retrained-accuracy", type=float, default=None, metavar="PERCENT",
        help="top-1 after retraining typed in, in percent, instead of --retrained (a value up to 1 is read as "
        "a fraction, the old unit)",
    )
    parser.set_defaults(func=_run)


def _retrained(args: argparse.Namespace) -> dict | None:
    info: dict | None = None
    if args.retrained is not None:
        info = retrained_info(args.retrained)
    if args.retrained_accuracy is not None:
        typed = {"accuracy": percent(args.retrained_accuracy, "--retrained-accuracy")}
        # a typed number replaces the file's: its interval and drop belonged to the file's accuracy
        info = {**{k: v for k, v in (info or {}).items() if k not in ("interval", "drop")}, **typed}
    return info


def _check_same_config(args: argparse.Namespace, chosen: dict[str, str]) -> None:
    """Warn when the retraining summary applied another per-op assignment than the report's."""
    applied = retrained_config(args.retrained) if args.retrained is not None else None
    if applied is not None and set(applied) == set(chosen) and applied != chosen:
        differ = sorted(op for op in chosen if applied[op] != chosen[op])
        print(f"warning: --retrained {args.retrained} retrained another assignment than this result's chosen one "
              f"({len(differ)} ops differ, e.g. {differ[0]}); run `axhw retrain --config {args.result}`",
              file=sys.stderr)


def _run(args: argparse.Namespace) -> int:
    if args.out.exists() and not args.out.is_dir():
        raise ConfigError(f"-o {args.out} is a file; the report is a folder (report.md, report.html, ...): "
                          "give a folder name")
    if not args.result.is_file():
        raise ConfigError(f"{args.result}: no such search result file")
    from axhw.report import load_result, write_report

    argv = ["axhw", "report", str(args.result), "-o", str(args.out)]
    if args.retrained is not None:
        argv += ["--retrained", str(args.retrained)]
    if args.retrained_accuracy is not None:
        argv += ["--retrained-accuracy", repr(args.retrained_accuracy)]
    result = load_result(args.result)
    retrained = _retrained(args)
    if result.history:
        _check_same_config(args, dict(result.best().config))
    paths = write_report(result, args.out, retrained=retrained, command=shlex.join(argv))
    for flag in paths.flags:
        print(f"warning: {flag}", file=sys.stderr)
    print(f"report written to {paths.html}")
    print(f"  markdown {paths.markdown}\n  config   {paths.config}\n  filelist {paths.filelist}")
    return 0
