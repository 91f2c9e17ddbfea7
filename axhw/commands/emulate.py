"""``axhw emulate``: top-1 of a model in fp32, int8 (exact products) and with approximate multipliers."""

from __future__ import annotations

import argparse
from pathlib import Path

from axhw.commands._chain import add_calib_args, calib_images, layer_config


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "emulate",
        help="emulate approximate multipliers in a timm model and print top-1 accuracy",
        description="Quantize a model to int8, route every configured multiplication (Linear, Conv2d, "
        "attention Q·Kᵀ and A·V) through the chosen multipliers' product tables, and print the top-1 "
        "accuracy of the fp32 model, the int8 model with exact products, and the approximate one.",
    )
    parser.add_argument("--model", default="default", help="'default' (the embedded digits ViT) or a timm model name (default: default)")
    parser.add_argument("--weights", type=Path, default=None, help="local weights file for the model (timm checkpoint_path)")
    parser.add_argument("--checkpoint", dest="weights", type=Path, default=None, help=argparse.SUPPRESS)  # old name
    parser.add_argument("--num-classes", type=int, default=None, metavar="N",
                        help="classifier outputs (default: the data's classes); a checkpoint with another head keeps "
                        "the rows of ImageNet class folders (WordNet ids) or gets an untrained head")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--config", type=Path, default=None,
                       help="JSON file mapping layer-name globs to multiplier names (or 'exact'/'fp32'), the report's "
                       "config.json, or a search result (its chosen configuration)")
    which.add_argument("--multiplier", default=None, help="one multiplier for every layer but the head (default: exact)")
    parser.add_argument("--data", default="digits", help="'digits' or 'imagefolder:PATH' (default: digits)")
    parser.add_argument("--device", default=None, help="where to run: cpu, cuda or cuda:N (default: cpu)")
    add_calib_args(parser, default=128)
    parser.add_argument("--calibrator", default="percentile", choices=["max", "percentile", "mse", "entropy"], help="activation calibrator (default: percentile)")
    parser.add_argument("--backend", default="auto", help="kernel backend: auto, reference, numba_cpu, numba_cuda, lowrank (default: auto)")
    parser.add_argument("--eval-size", type=int, default=None, metavar="N", help="first N test images (default: all)")
    parser.add_argument("--limit", dest="eval_size", type=int, default=None, help=argparse.SUPPRESS)  # old name
    parser.add_argument("--batch-size", type=int, default=64, help="evaluation batch size (default: 64)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--no-progress", dest="quiet", action="store_true", help=argparse.SUPPRESS)  # old name
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from axhw import data, models
    from axhw.emulator import compare_accuracy, model_input_size, resolve_device
    from axhw.stats import paired_drop, wilson_interval

    resolve_device(args.device)  # before loading anything: a missing GPU is a one-line error
    calib_size = calib_images(args, batch_size=32)
    config = layer_config(args.config) if args.config else {"*": args.multiplier or "exact"}
    model = models.load_model(args.model, checkpoint=args.weights, num_classes=args.num_classes or data.num_classes(args.data),
                              class_names=models.data_class_names(args.data))
    channels, _, side = model_input_size(model)
    loaders = {
        split: data.get_loader(args.data, split, batch_size=size, image_size=side, channels=channels, limit=limit)
        for split, size, limit in (("calib", 32, calib_size), ("test", args.batch_size, args.eval_size))
    }
    top1 = compare_accuracy(
        model,
        config,
        loaders["calib"],
        loaders["test"],
        calibrator=args.calibrator,
        backend=args.backend,
        num_batches=-(-calib_size // 32),
        device=args.device,
        progress=not args.quiet,
        per_image=True,
    )
    label = args.config.name if args.config else (args.multiplier or "exact")
    n = int(top1["int8"].size)
    print(f"\n{args.model} on {args.data}, test split ({n} images); 95 % intervals: Wilson for top-1, "
          "paired (same images) for the drop below int8")
    width = max(12, len(label))
    print(f"{'model':<{width}}  {'top-1 (test)':>22}  drop vs int8 (points)")
    for name, key in (("fp32", "fp32"), ("int8 exact", "int8"), (label, "approx")):
        correct = top1[key]
        lo, hi = wilson_interval(int(correct.sum()), n)
        cell = f"{100 * correct.mean():6.2f} % [{100 * lo:.1f}, {100 * hi:.1f}]"
        drop = "" if key == "int8" else paired_drop(top1["int8"], correct).format()
        print(f"{name:<{width}}  {cell:>22}  {drop}")
    return 0
