"""``axhw report RESULT.json -o DIR``."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

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
        "--retrained-accuracy", type=float, default=None, metavar="FRACTION",
        help="top-1 accuracy of the chosen configuration after retraining, in [0, 1]",
    )
    parser.add_argument(
        "--retrained", type=Path, default=None, metavar="JSON",
        help="JSON object describing the retraining ('accuracy' in [0, 1] plus settings such as grad, epochs)",
    )
    parser.set_defaults(func=_run)


def _retrained(args: argparse.Namespace) -> dict | None:
    info: dict | None = None
    if args.retrained is not None:
        try:
            info = json.loads(args.retrained.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(f"--retrained {args.retrained}: cannot read a JSON object ({exc})") from exc
        if not isinstance(info, dict):
            raise ConfigError(f"--retrained {args.retrained}: expected a JSON object with an 'accuracy' key")
    if args.retrained_accuracy is not None:
        info = {**(info or {}), "accuracy": args.retrained_accuracy}
    return info


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
    paths = write_report(load_result(args.result), args.out, retrained=_retrained(args), command=shlex.join(argv))
    for flag in paths.flags:
        print(f"warning: {flag}", file=sys.stderr)
    print(f"report written to {paths.html}")
    print(f"  markdown {paths.markdown}\n  config   {paths.config}\n  filelist {paths.filelist}")
    return 0
