"""``axhw retrain``: approximation-aware retraining of an approximated model."""

from __future__ import annotations

import argparse
from pathlib import Path

from axhw.commands._chain import add_calib_args, calib_batches, calib_images, layer_config
from axhw.errors import ConfigError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "retrain",
        help="retrain an approximated model to recover the accuracy its multipliers cost",
        description="Quantize the model to int8, route its products through the configured multipliers, "
        "and fine-tune it through them (Adam) with the straight-through estimator and/or the multiplier's own "
        "gradient tables. Calibrates and retrains on the train split, keeps the best epoch on val, and prints the "
        "accuracy of fp32, int8 exact, approximate and retrained on the test split (which nothing that chooses "
        "reads) with 95 %% intervals and the paired drop below int8; writes checkpoints (resumable), retrained "
        "weights, summary.json/.md and a loss plot under --out.",
    )
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--multiplier", metavar="NAME", help="apply this multiplier to every layer")
    which.add_argument("--config", type=Path, metavar="CFG.json",
                       help="JSON object mapping layer-name globs to multiplier names (or 'exact'/'fp32'), the "
                       "config.json of `axhw report`, or a search result of `axhw search` (its chosen configuration)")
    parser.add_argument("--model", default="default", help="'default' (embedded digits ViT) or a timm name")
    parser.add_argument("--weights", type=Path, default=None, help="local checkpoint for --model")
    parser.add_argument("--num-classes", type=int, default=None, metavar="N",
                        help="classifier outputs (default: the data's classes), as in emulate and search")
    parser.add_argument("--data", default="digits", help="data spec: 'digits' or 'imagefolder:PATH'")
    parser.add_argument("--grad", choices=("ste", "lut", "both"), default="both",
                        help="backward: straight-through estimator, gradient LUT, or both (default both)")
    parser.add_argument("--epochs", type=int, default=1, help="passes over the train split (default 1)")
    parser.add_argument("--steps", type=int, default=None, help="optimizer steps instead of --epochs")
    parser.add_argument("--lr", type=float, default=5e-5, help="Adam learning rate (default 5e-5)")
    parser.add_argument("--batch-size", type=int, default=64)
    add_calib_args(parser, default=256, note=", rounded up to whole --batch-size batches")  # 4 batches of the default 64, as before
    parser.add_argument("--eval-size", type=int, default=None,
                        metavar="N", help="first N images of val and of the reported split (default all)")
    parser.add_argument("--report-split", choices=("test", "search"), default="test",
                        help="split the accuracies are reported on (default test)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default=None, help="where to retrain and evaluate: cpu (default) or cuda")
    parser.add_argument("--restart", action="store_true", help="ignore existing checkpoints in --out")
    parser.add_argument("-o", "--out", type=Path, default=Path("out/retrain"), help="output folder (default out/retrain)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--no-progress", dest="quiet", action="store_true", help=argparse.SUPPRESS)  # other commands' old name
    parser.set_defaults(func=_run)


def _check_args(args: argparse.Namespace, config: dict[str, str]) -> None:
    """Refuse bad numbers, paths and multiplier names before any model is built or evaluated."""
    from axhw import library
    from axhw.data import parse_spec
    from axhw.emulator.retraining import check_settings

    check_settings(epochs=args.epochs, steps=args.steps, lr=args.lr, batch_size=args.batch_size,
                   eval_size=args.eval_size, num_classes=args.num_classes, flags=True)  # the Python API's own checks, in the CLI's names
    if args.weights is not None and not args.weights.is_file():
        raise ConfigError(f"--weights {args.weights}: no such file")
    if args.out.exists() and not args.out.is_dir():
        raise ConfigError(f"-o {args.out} is a file; give a folder for the checkpoints and summaries")
    parse_spec(args.data)
    for name in sorted(set(config.values()) - {"exact", "fp32"}):
        library.load(name)  # an unknown, corrupt or stale multiplier fails here, listing the known ones


def _run(args: argparse.Namespace) -> int:
    from axhw.emulator.retraining import retrain_config

    config = {"*": args.multiplier} if args.multiplier else layer_config(args.config)
    _check_args(args, config)
    n_calib = calib_batches(calib_images(args, batch_size=args.batch_size), args.batch_size)
    grads = ("ste", "lut") if args.grad == "both" else (args.grad,)
    report = retrain_config(
        config, model=args.model, checkpoint=args.weights, num_classes=args.num_classes, data=args.data, grads=grads, epochs=args.epochs,
        steps=args.steps, lr=args.lr, batch_size=args.batch_size, out_dir=args.out,
        calib_batches=n_calib, eval_size=args.eval_size, report_split=args.report_split, seed=args.seed,
        resume=not args.restart, device=args.device, progress=not args.quiet,
    )
    print(report.table())
    for grad, run in report.runs.items():
        print(f"{grad}: {run.steps} steps in {run.seconds:.1f} s, kept epoch {run.best_epoch} (chosen on val)")
    print(f"wrote {args.out}/ (summary.json, summary.md, retrain_loss.png, <grad>/model.pt, checkpoints)")
    return 0
