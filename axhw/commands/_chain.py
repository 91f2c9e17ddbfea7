"""What lets one stage read the file the previous one wrote, and the CLI's shared units.

``search`` writes a SearchResult JSON, ``report`` writes ``config.json`` and ``retrain``
writes ``summary.json``; :func:`layer_config` turns the first two into the layer config
``retrain`` takes, and ``report --retrained`` reads the summary's weights and measures
them (:func:`axhw.search.score_retrained`), so no number or assignment is copied by hand.
"""

from __future__ import annotations

import argparse
import json
import math
import warnings
from pathlib import Path

from axhw.errors import ConfigError

REPORT_CONFIG_KIND = "axhw.report.AcceleratorConfig"
SEARCH_RESULT_KIND = "axhw.search.SearchResult"


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
