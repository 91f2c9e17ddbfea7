"""The ``axhw`` command line: a thin layer over the Python API.

Each subcommand lives in a module under ``axhw/commands/`` exposing
``register(subparsers)``, which adds a parser whose ``func(args) -> int`` calls one
public API function.  User mistakes (:class:`~axhw.errors.AxhwError`) are printed as
one message and exit with status 2; bugs raise with a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings
from typing import Sequence

from axhw._version import __version__
from axhw.errors import AxhwError
from axhw.threads import apply_threads

__all__ = ["main", "build_parser"]

#: Subcommand modules, in the order ``--help`` lists them.
COMMAND_MODULES: tuple[str, ...] = (
    "axhw.commands.doctor",
    "axhw.commands.library",
    "axhw.commands.characterize",
    "axhw.commands.emulate",
    "axhw.commands.retrain",
    "axhw.commands.search",
    "axhw.commands.report",
)


def build_parser() -> argparse.ArgumentParser:
    """The full ``axhw`` argument parser with every registered subcommand."""
    parser = argparse.ArgumentParser(
        prog="axhw",
        description="Approximate multipliers for Vision Transformers: characterize Verilog designs, "
        "emulate them in timm models, retrain, and search per-layer assignments.",
    )
    parser.add_argument("--version", action="version", version=f"axhw {__version__}")
    parser.add_argument("--threads", type=int, default=None, metavar="N",
                        help="CPU threads for torch, Numba and worker processes together "
                        "(default: $AXHW_THREADS, else the cores other jobs leave idle)")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    for sub in subparsers.choices.values():  # also after the subcommand; SUPPRESS keeps a top-level value
        if "--threads" not in sub._option_string_actions:
            sub.add_argument("--threads", type=int, default=argparse.SUPPRESS, metavar="N", help="CPU threads (see axhw --help)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``axhw`` console script; returns the process exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    warnings.showwarning = lambda message, category, *rest, **kw: print(  # one line, no source excerpt
        f"axhw {args.command}: warning: {message}", file=sys.stderr)
    try:
        apply_threads(args.threads)
        return int(args.func(args) or 0)
    except AxhwError as exc:
        print(f"axhw {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"axhw {args.command}: interrupted; finished results were kept", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
