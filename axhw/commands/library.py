"""``axhw add``, ``axhw list``, ``axhw show``, ``axhw export``, ``axhw rebuild``: the multiplier database."""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

from axhw import library
from axhw.errors import ConfigError
from axhw.subproc import DEFAULT_TIME_LIMIT_S


def register(subparsers: argparse._SubParsersAction) -> None:
    add = subparsers.add_parser(
        "add",
        help="characterize Verilog multipliers, C models or TransAxx LUTs exhaustively and store them",
        description="Find the multiplier in a Verilog file (module, operand and product ports), simulate all "
        "65,536 operand pairs with cocotb + Icarus, and store the product table with its error metrics in "
        "the database. A .c file is compiled and swept instead (--function names the C function; default: the "
        "one named like the file), a .h TransAxx LUT is read as it is. When neither the ports (`signed`) nor the "
        "C operand types (int8_t) declare signedness, both readings are simulated and the one consistent with "
        "multiplication is kept; axhw says which and why, and stops to ask for --signed/--unsigned when the "
        "tables do not tell. Several files or a folder are characterized in parallel (a .c and a .v of the "
        "same stem are one design, the Verilog its twin) and end with a summary table; a bad file does not "
        "stop the others (exit status 1 when any failed).",
    )
    add.add_argument("path", type=Path, nargs="+", help="Verilog (.v, .sv), C (.c) or TransAxx LUT (.h) files, or folders")
    add.add_argument("--name", help="database name (default: file stem plus parameters)")
    add.add_argument("--param", action="append", default=[], metavar="K=V",
                     help="Verilog parameter override (repeatable), e.g. --param K=4")
    add.add_argument("--top", help="module to characterize when the file has several top-level modules")
    add.add_argument("--a", help="first operand port (when it cannot be inferred)")
    add.add_argument("--b", help="second operand port")
    add.add_argument("--y", help="product output port")
    sign = add.add_mutually_exclusive_group()
    sign.add_argument("--signed", dest="signed", action="store_const", const=True, default=None,
                      help="operands are two's complement (default: declared `signed` ports or int8_t C operands, "
                      "else decided from simulating both readings)")
    sign.add_argument("--unsigned", dest="signed", action="store_const", const=False,
                      help="operands are unsigned (used in sign-magnitude form)")
    add.add_argument("--function", help="C function to sweep (C models only; default: the one named like the file, "
                     "else the only two-operand function)")
    add.add_argument("--twin", type=Path, metavar="FILE.v",
                     help="Verilog design computing the same table as the C model; the entry is made from it "
                     "(so `characterize --hw` can cost it) once both agree on all 65,536 pairs")
    add.add_argument("--family", help="family label stored in the record (default: user)")
    add.add_argument("--description", help="one-line description stored in the record")
    add.add_argument("--time-limit", type=float, default=DEFAULT_TIME_LIMIT_S, metavar="SECONDS",
                     help=f"limit of each external run (compiler, simulator, C model), killed with its process "
                     f"group when exceeded (default {DEFAULT_TIME_LIMIT_S:g} s)")
    add.add_argument("-j", "--jobs", type=int, default=None, metavar="N",
                     help="designs characterized in parallel when several are given (default: available cores)")
    add.add_argument("--force", action="store_true",
                     help="replace an existing entry of the same name, or shadow a bundled one (a note says so); "
                     "without it an existing name is refused before any simulation")
    add.set_defaults(func=_add)

    lst = subparsers.add_parser(
        "list",
        help="table of the characterized multipliers and their error metrics",
        description="One row per database entry: family, signedness, MAE, WCE, error rate, bias, MRE; "
        "area, delay, power and power saving against `exact` once hardware costs exist.",
    )
    lst.set_defaults(func=_list)

    show = subparsers.add_parser("show", help="full record of one multiplier and its error heat-map",
                                 description="Print every field of one entry, with the definition and base of every metric, and write a PNG heat-map of "
                                 "its error (approx - a*b) over all operand pairs.")
    show.add_argument("name", help="database name (see `axhw list`)")
    show.add_argument("--heatmap", type=Path, default=None, help="PNG path (default: NAME-error.png)")
    show.add_argument("--no-heatmap", action="store_true", help="only print the record")
    show.set_defaults(func=_show)

    export = subparsers.add_parser("export", help="write a multiplier's product table as a C header or .npy",
                                   description="Export the signed product table, indexed [a + 128][b + 128].")
    export.add_argument("name", help="database name")
    export.add_argument("--format", choices=library.EXPORT_FORMATS, default="c-header")
    export.add_argument("--out", type=Path, default=None, help="output file (default: NAME.h or NAME.npy)")
    export.set_defaults(func=_export)

    rebuild = subparsers.add_parser("rebuild", help="repair or re-characterize missing, stale or corrupt entries",
                                    description="Characterize every bundled design (rtl/library.json) and "
                                    "database entry that is missing, stale (its RTL changed) or corrupt. An entry "
                                    "whose record and table still match their digest (or, from an older axhw, "
                                    "each other) is re-written from its own files; hw.json files from an older "
                                    "axhw are moved to the keyed format when they still match the design. "
                                    "Entries that cannot be repaired are listed, one line each.")
    rebuild.add_argument("names", nargs="*", help="entries to consider (default: all)")
    rebuild.add_argument("--force", action="store_true", help="re-characterize even up-to-date entries")
    rebuild.set_defaults(func=_rebuild)

    remove = subparsers.add_parser("remove", help="remove one entry from the multiplier database",
                                   description="Delete a database entry (all its files, atomically). Bundled "
                                   "designs are refused unless --force (`axhw rebuild` would bring them back).")
    remove.add_argument("name", help="database name (see `axhw list`)")
    remove.add_argument("--force", action="store_true", help="also remove a bundled design's entry")
    remove.set_defaults(func=_remove)


def _parse_params(items: list[str]) -> dict[str, int]:
    params = {}
    for item in items:
        key, sep, value = item.partition("=")
        try:
            if not sep or not key.strip():
                raise ValueError
            params[key.strip()] = int(value, 0)
        except ValueError:
            raise ConfigError(f"--param {item!r}: expected NAME=INTEGER, e.g. --param K=4") from None
    return params


def _add(args: argparse.Namespace) -> int:
    if args.time_limit <= 0:
        raise ConfigError(f"--time-limit must be positive, got {args.time_limit:g}")
    if len(args.path) == 1 and not args.path[0].is_dir():
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            mult = library.add(args.path[0], name=args.name, parameters=_parse_params(args.param),
                               family=args.family, description=args.description, top=args.top, a=args.a, b=args.b,
                               y=args.y, signed=args.signed, function=args.function, force=args.force,
                               twin=args.twin, time_limit_s=args.time_limit)
        for warning in caught:
            print(f"axhw add: note: {warning.message}")
        m = mult.metrics
        print(f"added {mult.name}: MAE {m.mae:.3f}, WCE {m.wce:.0f}, error rate {m.error_rate:.4f}, "
              f"bias {m.bias:+.3f} ({'signed' if mult.signed else 'unsigned, sign-magnitude'})")
        print(f"  signedness: {library.signedness_reason(mult.name)}")
        return 0
    from axhw.batch import add_many, summary_table

    results = add_many(args.path, jobs=args.jobs, name=args.name, top=args.top, a=args.a, b=args.b, y=args.y,
                       function=args.function, twin=args.twin, signed=args.signed,
                       parameters=_parse_params(args.param), family=args.family, description=args.description,
                       force=args.force, time_limit_s=args.time_limit)
    print(summary_table(results))
    return 0 if all(r.ok for r in results) else 1


def _list(args: argparse.Namespace) -> int:
    print(library.list_table())
    return 0


def _show(args: argparse.Namespace) -> int:
    heatmap = None if args.no_heatmap else (args.heatmap or Path(f"{args.name}-error.png"))
    print(library.show(args.name, heatmap=heatmap))
    return 0


def _export(args: argparse.Namespace) -> int:
    print(library.export(args.name, format=args.format, out=args.out))
    return 0


def _rebuild(args: argparse.Namespace) -> int:
    from axhw.hw.cache import migrate

    done = library.rebuild(args.names or None, force=args.force)
    print(f"repaired or re-characterized {len(done)}: {', '.join(done)}" if done else "every entry is up to date")
    migrated = migrate(args.names or None)
    if migrated:
        print(f"hw.json of {len(migrated)} entries moved to the keyed format: {', '.join(migrated)}")
    return 0


def _remove(args: argparse.Namespace) -> int:
    from axhw.removal import remove

    print(f"removed {args.name} ({remove(args.name, force=args.force)})")
    return 0
