"""What lets one stage read the file the previous one wrote, and the CLI's shared units.

``search`` writes a SearchResult JSON, ``report`` writes ``config.json`` and ``retrain``
writes ``summary.json``; :func:`layer_config` and :func:`retrained_info` turn those into
what the next stage takes, so no number or assignment has to be copied by hand.
"""

from __future__ import annotations

import argparse
import json
import math
import warnings
from pathlib import Path
from typing import Any

from axhw.errors import ConfigError

REPORT_CONFIG_KIND = "axhw.report.AcceleratorConfig"
SEARCH_RESULT_KIND = "axhw.search.SearchResult"


def _read_json(path: Path, flag: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"{flag} {path}: no such file") from exc
    except OSError as exc:
        raise ConfigError(f"{flag} {path}: cannot read it ({exc.strerror or exc})") from exc
    except ValueError as exc:
        raise ConfigError(f"{flag} {path}: not valid JSON ({exc})") from exc


def layer_config(path: Path, flag: str = "--config") -> dict[str, str]:
    """The ``{layer glob: multiplier}`` a ``--config`` file gives.

    Accepts a plain glob -> multiplier JSON object, the ``config.json`` of
    ``axhw report`` (its per-op ``assignment``) or a search result of ``axhw search``
    (the configuration it chose, ``result.best().config``).

    Raises:
        ConfigError: the file is missing, not JSON, or none of the three forms.
        DataError: a search result that is malformed or of another schema.
    """
    from axhw.emulator import load_config

    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return load_config(path)  # raises the one reader's message (missing file, bad JSON)
    kind = data.get("kind") if isinstance(data, dict) else None
    if kind == REPORT_CONFIG_KIND:
        assignment = data.get("assignment")
        if not isinstance(assignment, dict) or not all(isinstance(v, str) for v in assignment.values()):
            raise ConfigError(f"{flag} {path}: report config.json without an 'assignment' object of op -> multiplier")
        return {str(k): v for k, v in assignment.items()}
    if kind == SEARCH_RESULT_KIND:
        from axhw.search.result import SearchResult

        result = SearchResult.load(path)
        if not result.history:
            raise ConfigError(f"{flag} {path}: the search result has no evaluated configuration")
        return dict(result.best().config)
    return load_config(path)


def retrained_info(path: Path, flag: str = "--retrained") -> dict[str, Any]:
    """The report's "after retraining" entry from a file.

    Accepts the ``summary.json`` of ``axhw retrain`` (the gradient method whose kept epoch
    scored best on val is reported, with its split, image count, Wilson interval and
    paired drop below int8) or a JSON object with ``accuracy`` as a fraction in [0, 1].

    Raises:
        ConfigError: the file is missing, not JSON, not an object, or a summary without
            any retrained accuracy.
    """
    data = _read_json(path, flag)
    if not isinstance(data, dict):
        raise ConfigError(f"{flag} {path}: expected the summary.json of `axhw retrain` or a JSON object "
                          "with an 'accuracy' key")
    if "retrained_accuracy" not in data:
        return data
    from axhw.stats import paired_drop, unpack_outcomes, wilson_interval  # numpy only: report stays torch-free

    accuracies = data.get("retrained_accuracy")
    runs = data.get("runs") if isinstance(data.get("runs"), dict) else {}
    if not isinstance(accuracies, dict) or not accuracies:
        raise ConfigError(f"{flag} {path}: the retraining summary has no retrained accuracy (did the run finish?)")

    def val(grad: str) -> float:  # chosen on val, never on the reported split
        run = runs.get(grad) if isinstance(runs.get(grad), dict) else {}
        history, best = run.get("val_accuracy") or [], run.get("best_epoch")
        if not history:
            return -math.inf
        return float(history[best] if isinstance(best, int) and 0 <= best < len(history) else history[-1])

    try:
        grad = max(accuracies, key=val)
        accuracy, n = float(accuracies[grad]), int(data.get("n_images") or 0)
        info: dict[str, Any] = {"accuracy": accuracy, "grad": grad, "split": data.get("split", "test"),
                                "n_images": n}
        if isinstance(runs.get(grad), dict) and "epochs" in runs[grad]:
            info["epochs"] = int(runs[grad]["epochs"])
        if n:
            lo, hi = wilson_interval(int(round(accuracy * n)), n)
            info["interval"] = [lo, hi]
        outcomes = data.get("outcomes") or {}
        if n and "int8" in outcomes and grad in outcomes:
            drop = paired_drop(unpack_outcomes(outcomes["int8"], n), unpack_outcomes(outcomes[grad], n))
            info["drop"] = {"drop": drop.drop, "lower": drop.lower, "upper": drop.upper}
    except (TypeError, ValueError, AttributeError) as exc:
        raise ConfigError(f"{flag} {path}: not a retraining summary this axhw can read ({exc})") from exc
    return info


def retrained_config(path: Path) -> dict[str, str] | None:
    """The layer config a retraining ``summary.json`` applied (``None`` for any other file)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    config = data.get("config") if isinstance(data, dict) and "retrained_accuracy" in data else None
    return dict(config) if isinstance(config, dict) else None


def percent(value: float, flag: str) -> float:
    """A top-1 accuracy given in percent, as a fraction; a value up to 1 is taken as a fraction (the old unit)."""
    if not math.isfinite(value) or not 0.0 <= value <= 100.0:
        raise ConfigError(f"{flag} takes a top-1 accuracy in percent (0 to 100), got {value}")
    if value <= 1.0:
        warnings.warn(f"{flag} {value:g} read as a fraction ({100 * value:g} %); give the accuracy in percent",
                      FutureWarning, stacklevel=2)
        return value
    return value / 100.0


def calib_batches(calib_size: int, batch_size: int, flag: str = "--calib-size") -> int:
    """Whole calibration batches that hold ``calib_size`` images (rounded up)."""
    if calib_size < 1:
        raise ConfigError(f"{flag} must be at least 1 image, got {calib_size}")
    return math.ceil(calib_size / batch_size)


def add_calib_args(parser: argparse.ArgumentParser, default: int, note: str = "") -> None:
    """``--calib-size N`` images, and the hidden ``--calib-batches`` it replaces (kept working)."""
    parser.add_argument("--calib-size", type=int, default=None, metavar="N",
                        help=f"calibration images{note} (default {default})")
    parser.add_argument("--calib-batches", type=int, default=None, help=argparse.SUPPRESS)
    parser.set_defaults(calib_default=default)


def calib_images(args: argparse.Namespace, batch_size: int) -> int:
    """Calibration images from ``--calib-size``, or from the deprecated ``--calib-batches`` × ``batch_size``."""
    if args.calib_size is not None and args.calib_batches is not None:
        raise ConfigError("give --calib-size (images) or the old --calib-batches, not both")
    if args.calib_batches is not None:
        if args.calib_batches < 1:
            raise ConfigError(f"--calib-batches must be at least 1, got {args.calib_batches}")
        return args.calib_batches * batch_size
    size = args.calib_default if args.calib_size is None else args.calib_size
    if size < 1:
        raise ConfigError(f"--calib-size must be at least 1 image, got {size}")
    return size
