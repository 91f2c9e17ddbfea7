"""The retraining run: approximate a model, measure it, retrain it, measure it again.

:func:`retrain_config` composes the primitives (:func:`axhw.emulator.approximate`,
:func:`axhw.emulator.finetune.retrain`) with the data splits kept apart:

* calibration reads ``calib`` (a piece of ``train``), retraining reads ``train``
  and keeps the best epoch on ``val``;
* every reported accuracy is measured once, at the end of each step, on
  ``report_split`` (``test`` by default), which nothing that chooses reads; each is
  reported with its Wilson 95 % interval and, against the int8 model, the paired
  95 % interval of its drop on the same images (:mod:`axhw.stats`).

The caller's model is never moved or changed: the run loads its own copy.

:func:`load_retrained` reads a run back: from ``summary.json`` (or its folder) it
rebuilds the approximated model and loads the retrained weights of one gradient
method, so a later stage (``axhw report --retrained``) measures them itself instead
of trusting the number the summary records.
"""

from __future__ import annotations

import copy
import io
import json
import math
import numbers
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final, Iterable, Mapping

import numpy as np
import torch
from torch import nn

from axhw.errors import ConfigError
from axhw.io import atomic_write_bytes, atomic_write_json, atomic_write_text
from axhw.stats import DropEstimate, pack_outcomes, paired_drop, unpack_outcomes, wilson_interval

from axhw.emulator.finetune import RetrainResult, model_fingerprint, retrain

__all__ = ["RetrainReport", "RetrainedModel", "retrain_config", "load_retrained", "check_settings", "chosen_grad",
           "REPORT_SPLITS"]

# 3: num_classes recorded (schema 2 summaries are still read: their classes come from the data)
_SCHEMA: Final[int] = 3
#: Splits a retraining run may report on (never the ones it fits or chooses on).
REPORT_SPLITS: Final[tuple[str, ...]] = ("test", "search")
_NAMES: Final[dict[str, str]] = {"fp32": "fp32", "int8": "int8 (exact multiplier)", "approx": "approximate",
                                 "ste": "retrained (STE)", "lut": "retrained (gradient LUT)"}


@dataclass
class RetrainReport:
    """Accuracy of a model before and after approximation-aware retraining, on one reported split.

    Attributes:
        model: model name (``"default"`` or a timm name).
        data: data spec the model was calibrated, retrained and measured on.
        config: the layer config (glob -> multiplier) that was applied.
        fp32_accuracy: top-1 accuracy in [0, 1] of the float model on :attr:`split`.
        int8_accuracy: the same with the exact int8 product everywhere.
        approx_accuracy: the same with ``config`` applied, before retraining.
        retrained_accuracy: the same after retraining, per gradient method.
        runs: the :class:`RetrainResult` of each gradient method.
        files: what was written (name -> path).
        seconds: wall time per part (``evaluate``, ``retrain_ste``, ``retrain_lut``).
        split: the split every accuracy above was measured on (``test`` by default).
        n_images: images of that split.
        outcomes: ``fp32``/``int8``/``approx``/grad -> per-image correctness packed by
            :func:`axhw.stats.pack_outcomes` (what the intervals are computed from).
        num_classes: classifier outputs of the model (what :func:`load_retrained` rebuilds).
    """

    model: str
    data: str
    config: dict[str, str]
    fp32_accuracy: float
    int8_accuracy: float
    approx_accuracy: float
    retrained_accuracy: dict[str, float] = field(default_factory=dict)
    runs: dict[str, RetrainResult] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    split: str = "test"
    n_images: int = 0
    outcomes: dict[str, str] = field(default_factory=dict)
    num_classes: int | None = None

    def recovered(self, grad: str) -> float:
        """Fraction of the accuracy lost to approximation that retraining won back.

        ``(retrained - approx) / (fp32 - approx)``; ``nan`` when nothing was lost.
        """
        lost = self.fp32_accuracy - self.approx_accuracy
        return (self.retrained_accuracy[grad] - self.approx_accuracy) / lost if lost > 0 else math.nan

    def accuracy(self, name: str) -> float:
        """Accuracy of ``fp32``, ``int8``, ``approx`` or a gradient method's retrained model."""
        fixed = {"fp32": self.fp32_accuracy, "int8": self.int8_accuracy, "approx": self.approx_accuracy}
        return fixed[name] if name in fixed else self.retrained_accuracy[name]

    def interval(self, name: str) -> tuple[float, float] | None:
        """Wilson 95 % interval (fractions) of :meth:`accuracy` (``None`` without an image count)."""
        if not self.n_images:
            return None
        return wilson_interval(int(round(self.accuracy(name) * self.n_images)), self.n_images)

    def drop(self, name: str) -> DropEstimate | None:
        """Paired drop of ``name`` below the int8 model on the same images (``None`` without outcomes)."""
        if "int8" not in self.outcomes or name not in self.outcomes:
            return None
        return paired_drop(unpack_outcomes(self.outcomes["int8"], self.n_images),
                           unpack_outcomes(self.outcomes[name], self.n_images))

    def table(self) -> str:
        """A Markdown table: accuracy with its interval, paired drop below int8, recovered fraction."""
        lines = [f"| model | top-1 on {self.split} (%) [95 % CI] | drop vs int8 (points) [paired 95 % CI] | "
                 "lost accuracy recovered |", "|---|---:|---:|---:|"]
        for name in ("fp32", "int8", "approx", *self.retrained_accuracy):
            ci = self.interval(name)
            acc = f"{100 * self.accuracy(name):.2f}" + ("" if ci is None else f" [{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]")
            drop = self.drop(name) if name not in ("fp32", "int8") else None
            rec = ""
            if name in self.retrained_accuracy:
                r = self.recovered(name)
                rec = "" if math.isnan(r) else f"{100 * r:.0f} %"
            lines.append(f"| {_NAMES.get(name, name)} | {acc} | {'' if drop is None else drop.format()} | {rec} |")
        lines.append(f"\n{self.n_images} {self.split} images; no choice (calibration, epochs) read them.")
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict of every field."""
        data = asdict(self)
        data["runs"] = {k: v.to_json() for k, v in self.runs.items()}
        return {"schema": _SCHEMA, **data}


def _save(path: Path, obj: Any) -> Path:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return atomic_write_bytes(path, buffer.getvalue())


class _Scorer:
    """Per-image scores on the reported split, cached on disk by model fingerprint."""

    def __init__(self, loader: Iterable, key: str, path: Path, device: torch.device, progress: bool) -> None:
        self.loader, self.key, self.path, self.device, self.progress = loader, key, path, device, progress
        self.cache: dict[str, Any] = {}
        if path.is_file():
            try:
                loaded = json.loads(path.read_text())
                self.cache = {k: v for k, v in loaded.items() if isinstance(v, dict) and "correct" in v}
            except (ValueError, AttributeError):
                self.cache = {}  # a damaged cache is measured again

    def __call__(self, net: nn.Module) -> tuple[float, np.ndarray]:
        from axhw.emulator.scoring import correct_per_image

        key = f"{model_fingerprint(net)}:{self.key}"
        if key not in self.cache:
            correct = correct_per_image(net, self.loader, device=self.device)
            self.cache[key] = {"accuracy": float(correct.mean()), "n_images": int(correct.size),
                               "correct": pack_outcomes(correct)}
            atomic_write_json(self.path, self.cache)
        entry = self.cache[key]
        return float(entry["accuracy"]), unpack_outcomes(entry["correct"], int(entry["n_images"]))


def _plot_runs(runs: dict[str, RetrainResult], path: Path) -> Path:
    """Training loss (moving average) and validation accuracy per gradient method, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 3.8))
    for grad, run in runs.items():
        losses = torch.tensor(run.loss_history, dtype=torch.float64)
        window = max(1, min(10, len(losses) // 5))
        smooth = losses.unfold(0, window, 1).mean(1) if len(losses) >= window else losses
        ax_loss.plot(range(window, window + len(smooth)), smooth.numpy(), label=grad)
        if run.val_accuracy:
            ax_acc.plot(range(len(run.val_accuracy)), [100 * a for a in run.val_accuracy], marker="o", label=grad)
    ax_loss.set(xlabel="step", ylabel="training loss (moving average)", title="retraining loss")
    ax_acc.set(xlabel="epoch (0 = before)", ylabel="validation top-1 (%)", title="validation accuracy (val split)")
    ax_acc.xaxis.set_major_locator(MaxNLocator(integer=True))
    for axis in (ax_loss, ax_acc):
        axis.grid(alpha=0.3)
        axis.legend()
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    return atomic_write_bytes(path, buffer.getvalue())


def check_settings(*, epochs: int = 1, steps: int | None = None, lr: float = 5e-5, batch_size: int = 64,
                   eval_size: int | None = None, calib_batches: int | None = None, num_classes: int | None = None,
                   flags: bool = False) -> None:
    """Refuse retraining numbers that cannot run, before any model is built.

    Args:
        epochs, steps, lr, batch_size, eval_size, calib_batches, num_classes: as :func:`retrain_config`.
        flags: name them as the CLI does (``--epochs``) instead of as keywords (``epochs``).

    Raises:
        ConfigError: one line naming the setting, what it got and what it takes.
    """
    def name(keyword: str) -> str:
        return "--" + keyword.replace("_", "-") if flags else keyword

    if steps is None and (not isinstance(epochs, numbers.Integral) or epochs < 1):
        raise ConfigError(f"{name('epochs')} must be at least 1, got {epochs} (or give {name('steps')})")
    if steps is not None and (not isinstance(steps, numbers.Integral) or steps < 1):
        raise ConfigError(f"{name('steps')} must be at least 1, got {steps}")
    if not (isinstance(lr, numbers.Real) and math.isfinite(lr) and lr > 0):
        raise ConfigError(f"{name('lr')} must be a positive learning rate, got {lr}")
    for keyword, value in (("batch_size", batch_size), ("eval_size", eval_size), ("calib_batches", calib_batches),
                           ("num_classes", num_classes)):
        if value is not None and (not isinstance(value, numbers.Integral) or value < 1):
            raise ConfigError(f"{name(keyword)} must be at least 1, got {value}")


def _check(grads: tuple[str, ...], report_split: str) -> None:
    for grad in grads:
        if grad not in ("ste", "lut"):
            raise ConfigError(f"grad must be 'ste' or 'lut', got {grad!r}")
    if report_split not in REPORT_SPLITS:
        raise ConfigError(f"report_split must be one of {', '.join(REPORT_SPLITS)}, got {report_split!r}: "
                          "train and calib fit the model and val chooses its epoch, so none can report it")


def _write_summary(report: RetrainReport, out: Path, model: str, data: str, config: dict[str, str]) -> None:
    if report.runs:
        report.files["plot"] = str(_plot_runs(report.runs, out / "retrain_loss.png"))
    report.files["summary_json"] = str(out / "summary.json")
    report.files["summary_md"] = str(out / "summary.md")
    atomic_write_json(out / "summary.json", report.to_json())
    header = f"model `{model}` on `{data}`, config `{json.dumps(dict(config))}`\n\n"
    atomic_write_text(out / "summary.md", header + report.table() + "\n")


# Long only by its docstring (one Args entry per option); the body is 45 lines.
def retrain_config(
    config: dict[str, str] | str,
    *,
    model: str = "default",
    checkpoint: str | Path | None = None,
    num_classes: int | None = None,
    data: str = "digits",
    grads: Iterable[str] = ("ste", "lut"),
    epochs: int = 1,
    steps: int | None = None,
    lr: float = 5e-5,
    batch_size: int = 64,
    out_dir: str | Path = "out/retrain",
    calib_batches: int | None = 4,
    eval_size: int | None = None,
    report_split: str = "test",
    seed: int = 0,
    resume: bool = True,
    device: str | torch.device | None = None,
    progress: bool = True,
) -> RetrainReport:
    """Approximate a model, measure it, retrain it with each gradient method and measure again.

    Calibrates on the ``calib`` split, retrains on ``train`` (shuffled, seeded)
    keeping the best epoch on ``val``, and reports top-1 accuracy on
    ``report_split`` with intervals.  Every result is cached under ``out_dir``
    (per-image scores by model fingerprint, retraining by checkpoint), so a second
    call with the same arguments is fast, and an interrupted call resumes.

    Args:
        config: layer config (glob -> multiplier name), or one multiplier name for every layer.
        model: ``"default"`` or a timm model name (see :func:`axhw.models.load_model`).
        checkpoint: local weights for ``model``.
        num_classes: classifier outputs (``None``: the data's classes), as
            :func:`axhw.models.load_model`; recorded in the summary for :func:`load_retrained`.
        data: ``"digits"`` or ``"imagefolder:PATH"``.
        grads: gradient methods to retrain with, each from the same approximated model.
        epochs, steps, lr: as :func:`axhw.emulator.finetune.retrain`.
        batch_size: images per batch for every loader.
        out_dir: where checkpoints, retrained weights, ``summary.json``,
            ``summary.md`` and ``retrain_loss.png`` are written.
        calib_batches: calibration batches (``None``: the whole ``calib`` split).
        eval_size: use only the first this many images of ``val`` and of the reported split (``None``: all).
        report_split: the split the accuracies are reported on: ``"test"`` (default)
            or ``"search"``; never one that fits or chooses.
        seed: seeds the shuffling and retraining.
        resume: re-use finished or interrupted retraining runs in ``out_dir``.
        device: where to run (``None``: CPU; ``"cuda"`` when asked).
        progress: show progress bars.

    Returns:
        :class:`RetrainReport`.

    Raises:
        ConfigError, DataError, DatabaseError: bad config, split, data, model or multiplier name;
            a setting that cannot run (see :func:`check_settings`).
    """
    from axhw.data import get_loader
    from axhw.data import num_classes as data_classes
    from axhw.models import load_model

    from axhw.emulator.conversion import approximate, model_input_size

    grads = tuple(grads)
    _check(grads, report_split)
    check_settings(epochs=epochs, steps=steps, lr=lr, batch_size=batch_size, eval_size=eval_size,
                   calib_batches=calib_batches, num_classes=num_classes)
    if isinstance(config, str):
        config = {"*": config}
    if not isinstance(config, Mapping) or not all(isinstance(k, str) and isinstance(v, str) for k, v in config.items()):
        raise ConfigError(f"config must map layer-name globs to multiplier names, got {config!r}")
    config = dict(config)
    from axhw import library

    for name in sorted(set(config.values()) - {"exact", "fp32"}):
        library.load(name)  # an unknown or stale multiplier fails before any model is built or measured
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    device = torch.device(device) if device is not None else torch.device("cpu")
    classes = num_classes or data_classes(data)
    base = load_model(model, checkpoint=checkpoint, num_classes=classes).to(device)
    channels, height, _ = model_input_size(base)

    def loader(split: str, shuffle: bool = False, limit: int | None = None):
        return get_loader(data, split, batch_size=batch_size, shuffle=shuffle, image_size=height, channels=channels,
                          limit=limit, seed=seed)

    calib = loader("calib")
    t0 = time.perf_counter()
    # the reported split is read only through the scorer, only for the figures below
    score = _Scorer(loader(report_split, limit=eval_size), f"{data}:{report_split}:{eval_size or 'all'}",
                    out / "evaluations.json", device, progress)
    measured = {"fp32": score(base),
                "int8": score(approximate(base, {"*": "exact"}, calib, num_batches=calib_batches, progress=progress))}
    ax = approximate(base, config, calib, num_batches=calib_batches, progress=progress)
    measured["approx"] = score(ax)
    report = RetrainReport(model=model, data=data, config=dict(config), fp32_accuracy=measured["fp32"][0],
                           int8_accuracy=measured["int8"][0], approx_accuracy=measured["approx"][0],
                           split=report_split, n_images=int(measured["int8"][1].size), num_classes=classes)
    report.seconds["evaluate"] = round(time.perf_counter() - t0, 1)
    train, val = loader("train", shuffle=True), loader("val", limit=eval_size)
    for grad in grads:
        t0 = time.perf_counter()
        net = copy.deepcopy(ax)
        report.runs[grad] = retrain(net, train, grad=grad, epochs=epochs, steps=steps, lr=lr, checkpoint_dir=out / grad,
                                    resume=resume, val_loader=val, seed=seed, device=device, progress=progress)
        measured[grad] = score(net)
        report.retrained_accuracy[grad] = measured[grad][0]
        report.files[f"weights_{grad}"] = str(_save(out / grad / "model.pt", net.state_dict()))
        report.seconds[f"retrain_{grad}"] = round(time.perf_counter() - t0, 1)
    report.outcomes = {name: pack_outcomes(correct) for name, (_, correct) in measured.items()}
    _write_summary(report, out, model, data, config)
    return report


@dataclass(frozen=True)
class RetrainedModel:
    """A retrained model read back from a retraining run's ``summary.json``.

    Attributes:
        model: the approximated model holding the retrained weights, converted (integer
            path) and in eval mode.
        grad: the gradient method whose weights these are (``"ste"`` or ``"lut"``).
        summary_path: the ``summary.json`` read.
        weights_path: the weights file loaded.
        weights_sha256: its SHA-256.
        model_name: model name recorded in the summary.
        data: data spec recorded in the summary.
        config: the per-op table the loaded model applies (op -> multiplier or ``"fp32"``),
            read from the model itself after loading, not from the summary.
        summary: the summary's JSON object (what ``retrain_config`` recorded).
    """

    model: nn.Module
    grad: str
    summary_path: Path
    weights_path: Path
    weights_sha256: str
    model_name: str
    data: str
    config: dict[str, str]
    summary: dict[str, Any]

    @property
    def run(self) -> dict[str, Any]:
        """The recorded :class:`RetrainResult` of :attr:`grad`, as JSON (empty when not recorded)."""
        runs = self.summary.get("runs")
        run = runs.get(self.grad) if isinstance(runs, dict) else None
        return run if isinstance(run, dict) else {}


def _read_summary(path: Path) -> tuple[Path, dict[str, Any]]:
    """``(summary.json path, its object)`` from the file or the folder ``retrain_config`` wrote."""
    file = path / "summary.json" if path.is_dir() else path
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: no such retraining summary (give the summary.json or the --out folder of "
                          "`axhw retrain`)") from exc
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{file}: cannot read it as JSON ({exc})") from exc
    needed = ("model", "data", "config", "retrained_accuracy", "files")
    if not isinstance(data, dict) or any(key not in data for key in needed):
        raise ConfigError(f"{file}: not the summary.json of `axhw retrain` (expected the keys {', '.join(needed)})")
    if not isinstance(data["retrained_accuracy"], dict) or not data["retrained_accuracy"]:
        raise ConfigError(f"{file}: the retraining summary has no retrained model (did the run finish?)")
    return file, data


def chosen_grad(summary: dict[str, Any]) -> str:
    """The gradient method of a summary whose kept epoch scored best on val (never on the reported split)."""
    runs = summary.get("runs") if isinstance(summary.get("runs"), dict) else {}

    def val(grad: str) -> float:
        run = runs.get(grad) if isinstance(runs.get(grad), dict) else {}
        history, best = run.get("val_accuracy") or [], run.get("best_epoch")
        if not history:
            return -math.inf
        return float(history[best] if isinstance(best, int) and 0 <= best < len(history) else history[-1])

    return max(summary["retrained_accuracy"], key=val)


def _architecture(name: str, classes: int) -> nn.Module:
    """The float model ``name`` with ``classes`` outputs, untrained (its weights come from the retrained file)."""
    from axhw.models import DEFAULT_MODEL_NAME, build_default

    if name == DEFAULT_MODEL_NAME:
        return build_default(num_classes=classes).eval()
    import timm

    if not timm.is_model(name):
        raise ConfigError(f"the retraining summary names model {name!r}, which is neither 'default' nor a timm model")
    return timm.create_model(name, pretrained=False, num_classes=classes).eval()


def load_retrained(
    summary: str | Path,
    grad: str | None = None,
    *,
    device: str | torch.device | None = None,
    backend: str = "auto",
) -> RetrainedModel:
    """Rebuild the retrained model a :func:`retrain_config` run saved.

    The model named in the summary is built with the summary's number of classes (or
    the data's, for summaries before it was recorded), prepared with the summary's layer
    config and given the saved weights, calibration scales and multipliers; nothing is
    calibrated or trained again.  The weights are looked for beside the summary
    (``<grad>/model.pt``), then at the path the summary records.

    Args:
        summary: ``summary.json`` or the folder holding it (``axhw retrain --out``).
        grad: the gradient method to load (``None``: the one whose kept epoch scored
            best on val, see :func:`chosen_grad`).
        device: where the model lives (``None``: CPU).
        backend: kernel backend of the approximate ops.

    Returns:
        :class:`RetrainedModel`.

    Raises:
        ConfigError: not a retraining summary, an unknown ``grad``, a missing weights
            file, or weights that do not fit the model the summary describes.
        DataError, DatabaseError: the data or a multiplier of the config cannot be found.
    """
    from axhw.data import num_classes
    from axhw.io import sha256_file

    from axhw.emulator.conversion import _ax_ops, prepare, resolve_device
    from axhw.emulator.layers import FP32

    file, data = _read_summary(Path(summary))
    grad = chosen_grad(data) if grad is None else grad
    if grad not in data["retrained_accuracy"]:
        raise ConfigError(f"{file}: no retrained model for grad {grad!r}; it has {', '.join(data['retrained_accuracy'])}")
    recorded = (data.get("files") or {}).get(f"weights_{grad}")
    weights = next((p for p in (file.parent / grad / "model.pt", Path(recorded) if recorded else None)
                    if p is not None and p.is_file()), None)
    if weights is None:
        raise ConfigError(f"{file}: the {grad} weights are neither at {file.parent / grad / 'model.pt'} nor at "
                          f"{recorded}; keep the retraining folder whole")
    target = resolve_device(device) or torch.device("cpu")
    classes = int(data.get("num_classes") or num_classes(str(data["data"])))
    base = _architecture(str(data["model"]), classes)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "every layer fp32": the weights say what the run applied
        net = prepare(base, dict(data["config"]), backend=backend, inplace=True, device=target)
    try:
        state = torch.load(weights, map_location=target, weights_only=True)
        net.load_state_dict(state)
    except (RuntimeError, KeyError, ValueError, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"{weights}: these weights do not fit model {data['model']!r} with the summary's config "
                          f"({first})") from exc
    ops = dict(_ax_ops(net))  # AxMatmul products sit at "<attn>.qk" / "<attn>.av", their op names
    for op in ops.values():
        op.calibrating = False  # the loaded buffers hold the frozen scales of the run
    # the multipliers the weights carry (their extra state), not the summary's word for them
    applied = {op: str(ops[op].multiplier) if op in ops else FP32 for op in net.axhw_config_}
    net.axhw_config_ = applied
    return RetrainedModel(net.eval(), grad, file, weights, sha256_file(weights), str(data["model"]), str(data["data"]),
                          applied, data)
