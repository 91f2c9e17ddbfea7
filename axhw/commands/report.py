"""``axhw report RESULT.json -o DIR [--retrained RETRAIN_DIR/summary.json]``."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from axhw.commands._chain import percent
from axhw.errors import ConfigError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "report",
        help="write the accelerator configuration report of a search result",
        description="Write report.md, a self-contained report.html, config.json (per-op assignment and "
        "hardware hand-off), filelist.f with the RTL sources, and the plots, from a search result written by "
        "`axhw search`. Multipliers that are missing from the database or stale are flagged in the report. "
        "With --retrained, the report rebuilds the retrained model of `axhw retrain --config RESULT.json` and "
        "measures it itself on the result's held-out (test) split.",
    )
    parser.add_argument("result", type=Path, help="search result JSON (SearchResult.save / axhw search -o)")
    parser.add_argument("-o", "--out", type=Path, required=True, help="output folder (created)")
    which = parser.add_mutually_exclusive_group()
    which.add_argument(
        "--retrained", type=Path, default=None, metavar="SUMMARY",
        help="the summary.json (or the --out folder) of `axhw retrain --config RESULT.json`: its retrained weights "
        "are rebuilt and measured here on the held-out split (top-1 with 95 %% interval, paired drop below int8); "
        "refused when they apply another assignment than the chosen one",
    )
    which.add_argument(
        "--retrained-accuracy", type=float, default=None, metavar="PERCENT",
        help="top-1 after retraining measured elsewhere, in percent, reported as typed in, not measured (no "
        "interval or drop; a value up to 1 is read as a fraction, the old unit)",
    )
    parser.add_argument("--retrained-grad", choices=("ste", "lut"), default=None,
                        help="which retrained weights of the summary (default: the method whose kept epoch "
                        "scored best on val)")
    parser.add_argument("--device", default=None, help="where the retrained model is measured: cpu (default) or cuda")
    parser.add_argument("--backend", default="auto", help="emulator kernel backend for that measurement (default auto)")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    if args.out.exists() and not args.out.is_dir():
        raise ConfigError(f"-o {args.out} is a file; the report is a folder (report.md, report.html, ...): "
                          "give a folder name")
    if not args.result.is_file():
        raise ConfigError(f"{args.result}: no such search result file")
    if args.retrained_grad is not None and args.retrained is None:
        raise ConfigError("--retrained-grad picks weights of a --retrained summary; give --retrained too")
    from axhw.report import load_result, write_report

    argv = ["axhw", "report", str(args.result), "-o", str(args.out)]
    retrained = None
    if args.retrained is not None:
        argv += ["--retrained", str(args.retrained)] + (["--retrained-grad", args.retrained_grad]
                                                         if args.retrained_grad else [])
        retrained = args.retrained
    if args.retrained_accuracy is not None:
        argv += ["--retrained-accuracy", repr(args.retrained_accuracy)]
        retrained = {"accuracy": percent(args.retrained_accuracy, "--retrained-accuracy")}
    if args.device is not None:
        from axhw.emulator import resolve_device

        resolve_device(args.device)  # before loading anything: a missing GPU is a one-line error
        argv += ["--device", args.device]
    if args.backend != "auto":
        argv += ["--backend", args.backend]
    result = load_result(args.result)
    paths = write_report(result, args.out, retrained=retrained, grad=args.retrained_grad, device=args.device,
                         backend=args.backend, command=shlex.join(argv))
    for flag in paths.flags:
        print(f"warning: {flag}", file=sys.stderr)
    print(f"report written to {paths.html}")
    print(f"  markdown {paths.markdown}\n  config   {paths.config}\n  filelist {paths.filelist}")
    return 0
