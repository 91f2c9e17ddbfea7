"""Approximation-aware retraining: fine-tune an approximated model through its multipliers.

The forward pass is the emulated one (int8 quantization, every product through the
multiplier's table), so the loss sees exactly the errors the hardware makes.  The
backward pass is selected per run (``grad``) and applied to every approximate op
with :func:`~axhw.emulator.set_grad_mode`:

* ``"ste"``: the straight-through estimator; products are differentiated as if
  they were exact (``d(ab)/da = b``), as TransAxx does.
* ``"lut"``: the multiplier's own slopes, from smoothed finite differences of its
  table (:mod:`axhw.emulator.gradients`).

The optimizer is Adam (default learning rate 5e-5, a fine-tuning rate).  Training
state (weights, optimizer, step, histories, best validation epoch) is saved
atomically to ``checkpoint_dir`` at the end of every epoch (and every
``checkpoint_every`` steps, and on Ctrl-C), and a later call with the same model
and settings resumes from it; a finished run is returned from the checkpoint
without training again.  Shuffled loaders are re-seeded with ``seed + epoch`` at
the start of each epoch, so an interrupted and resumed run sees the same batches
as an uninterrupted one.
"""

from __future__ import annotations

import hashlib
import io
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Final, Iterable, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from axhw.errors import ConfigError
from axhw.io import atomic_write_bytes

from .convert import device_of as _device_of

__all__ = ["RetrainResult", "RetrainReport", "retrain", "retrain_config", "model_fingerprint", "CHECKPOINT_NAME", "BEST_NAME"]

#: File name of the training-state checkpoint inside ``checkpoint_dir``.
CHECKPOINT_NAME: Final[str] = "retrain.pt"
#: File name of the best-validation weights inside ``checkpoint_dir``.
BEST_NAME: Final[str] = "best.pt"
_SCHEMA: Final[int] = 1

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class RetrainResult:
    """What a retraining run did, step by step and epoch by epoch.

    Attributes:
        grad: the backward method, ``"ste"`` or ``"lut"``.
        lr: Adam learning rate.
        steps: optimizer steps completed.
        total_steps: steps the run was asked for.
        epochs: epochs started (the last may be partial when ``steps`` is set).
        loss_history: training loss of every step, in order.
        epoch_loss: mean training loss of every epoch.
        train_accuracy: top-1 accuracy in [0, 1] on the training batches of every
            epoch (measured on the fly, in train mode, over the batches this process
            ran; empty for non-class targets).
        val_accuracy: top-1 accuracy in [0, 1] on ``val_loader`` before training
            (index 0) and after every epoch; empty without a validation loader.
        best_epoch: epoch whose weights the model holds at the end (0 = before
            training) when the best validation epoch was kept, else ``None``.
        seconds: wall time spent training and validating, over all resumed parts.
        resumed_from_step: step the run resumed from (0 for a fresh run).
        checkpoint: path of the checkpoint file, or ``None`` without ``checkpoint_dir``.
    """

    grad: str
    lr: float
    steps: int = 0
    total_steps: int = 0
    epochs: int = 0
    loss_history: list[float] = field(default_factory=list)
    epoch_loss: list[float] = field(default_factory=list)
    train_accuracy: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)
    best_epoch: int | None = None
    seconds: float = 0.0
    resumed_from_step: int = 0
    checkpoint: str | None = None

    @property
    def initial_val_accuracy(self) -> float | None:
        """Validation accuracy before training, or ``None`` without validation."""
        return self.val_accuracy[0] if self.val_accuracy else None

    @property
    def final_val_accuracy(self) -> float | None:
        """Validation accuracy of the weights the model ends with (the kept epoch)."""
        if not self.val_accuracy:
            return None
        return self.val_accuracy[self.best_epoch] if self.best_epoch is not None else self.val_accuracy[-1]

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict of every field."""
        return {"schema": _SCHEMA, **asdict(self)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "RetrainResult":
        """Inverse of :meth:`to_json`."""
        return cls(**{k: v for k, v in data.items() if k != "schema"})


def model_fingerprint(model: nn.Module) -> str:
    """SHA-256 over ``model.state_dict()`` (names, shapes, bytes) and its multipliers' tables.

    An approximated model (one with ``axhw_config_``) also hashes the product table
    of every multiplier it uses, so re-characterizing a multiplier changes the
    fingerprint even though the multiplier's name did not change.
    """
    digest = hashlib.sha256()
    from .layers import FP32, load_lut

    for name in sorted(set(getattr(model, "axhw_config_", {}).values()) - {FP32}):
        digest.update(f"lut:{name}:".encode())
        digest.update(np.ascontiguousarray(load_lut(name), dtype=np.int32).tobytes())
    for name, value in model.state_dict().items():
        if not torch.is_tensor(value):
            digest.update(f"{name}={value!r}".encode())
            continue
        tensor = value.detach().to("cpu").contiguous()
        digest.update(f"{name}:{tuple(tensor.shape)}:{tensor.dtype}".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


def _save(path: Path, obj: Any) -> Path:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return atomic_write_bytes(path, buffer.getvalue())


def _state_copy(model: nn.Module) -> dict[str, Any]:
    return {k: (v.detach().clone() if torch.is_tensor(v) else v) for k, v in model.state_dict().items()}


def _batches(loader: Iterable, epoch: int, seed: int, skip: int) -> Iterable:
    """Iterate ``loader`` for one epoch, re-seeding a shuffled loader and skipping ``skip`` batches."""
    generator = getattr(loader, "generator", None)
    if isinstance(generator, torch.Generator):
        generator.manual_seed(seed + epoch)
    for index, batch in enumerate(loader):
        if index >= skip:
            yield batch


def _split_batch(batch: Any) -> tuple[torch.Tensor, torch.Tensor]:
    if isinstance(batch, (tuple, list)) and len(batch) >= 2:
        return batch[0], batch[1]
    raise ConfigError("retraining needs a loader of (inputs, targets) batches, e.g. axhw.data.get_loader(...)")


def retrain(
    model: nn.Module,
    loader: Iterable,
    *,
    grad: Literal["ste", "lut"] = "ste",
    epochs: int = 1,
    steps: int | None = None,
    lr: float = 5e-5,
    checkpoint_dir: str | Path | None = None,
    resume: bool = True,
    val_loader: Iterable | None = None,
    keep_best: bool = True,
    loss_fn: LossFn | None = None,
    weight_decay: float = 0.0,
    checkpoint_every: int | None = None,
    seed: int = 0,
    device: str | torch.device | None = None,
    progress: bool = True,
) -> RetrainResult:
    """Fine-tune ``model`` in place through its approximate multipliers.

    Args:
        model: a model converted by :func:`axhw.emulator.approximate` (any module
            works; only its approximate ops use the gradient method).
        loader: batches of ``(inputs, targets)``; re-seeded per epoch when shuffled.
        grad: ``"ste"`` (exact-product gradients) or ``"lut"`` (the multiplier's
            smoothed slopes), set on every approximate op for the run.
        epochs: passes over ``loader`` (ignored when ``steps`` is given).
        steps: total optimizer steps, cycling through ``loader`` as often as needed.
        lr: Adam learning rate.
        checkpoint_dir: folder for ``retrain.pt`` (training state) and ``best.pt``;
            ``None`` keeps nothing on disk.
        resume: continue from the checkpoint in ``checkpoint_dir`` when it was made
            from the same starting model and settings (a finished run returns at once).
        val_loader: measure top-1 accuracy before training and after every epoch.
        keep_best: with ``val_loader``, end with the weights of the best validation
            epoch (the starting weights count as epoch 0; ties keep the later one).
        loss_fn: ``loss_fn(outputs, targets)``; default cross-entropy.
        weight_decay: Adam L2 weight decay.
        checkpoint_every: also checkpoint every this many steps (``None``: per epoch only).
        seed: seeds torch's generator and the per-epoch shuffling.
        device: where to train; default the device of the model's parameters.
        progress: show a tqdm bar over steps.

    Returns:
        :class:`RetrainResult` with the loss and accuracy histories.

    Raises:
        ConfigError: an unknown ``grad``, non-positive ``epochs``/``steps``/``lr``, a
            loader without length when ``steps`` is not given, or a checkpoint made
            from another model or with other settings (use ``resume=False`` or
            another ``checkpoint_dir``).
    """
    from tqdm.auto import tqdm

    from . import evaluate, set_grad_mode

    if grad not in ("ste", "lut"):
        raise ConfigError(f"grad must be 'ste' or 'lut', got {grad!r}")
    if not lr > 0:
        raise ConfigError(f"lr must be > 0, got {lr}")
    if steps is None:
        if epochs < 1:
            raise ConfigError(f"epochs must be >= 1, got {epochs}")
        try:
            steps_per_epoch = len(loader)  # type: ignore[arg-type]
        except TypeError as exc:
            raise ConfigError("the loader has no length; pass steps= to bound the run") from exc
        total_steps = epochs * steps_per_epoch
    else:
        if steps < 1:
            raise ConfigError(f"steps must be >= 1, got {steps}")
        total_steps = int(steps)
        try:
            steps_per_epoch = len(loader)  # type: ignore[arg-type]
        except TypeError:
            steps_per_epoch = total_steps
    if steps_per_epoch < 1:
        raise ConfigError("the training loader yields no batches")
    device = torch.device(device) if device is not None else _device_of(model)
    model.to(device)
    loss_fn = loss_fn or F.cross_entropy
    set_grad_mode(model, grad)
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ConfigError("the model has no trainable parameters (requires_grad is False everywhere)")
    optimizer = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    settings = {
        "grad": grad,
        "lr": lr,
        "total_steps": total_steps,
        "steps_per_epoch": steps_per_epoch,
        "seed": seed,
        "weight_decay": weight_decay,
        "keep_best": bool(keep_best and val_loader is not None),
        "loss_fn": getattr(loss_fn, "__name__", type(loss_fn).__name__),
        "start": model_fingerprint(model),
    }
    result = RetrainResult(grad=grad, lr=lr, total_steps=total_steps)
    ckpt_path = best_path = None
    if checkpoint_dir is not None:
        ckpt_path = Path(checkpoint_dir) / CHECKPOINT_NAME
        best_path = Path(checkpoint_dir) / BEST_NAME
        result.checkpoint = str(ckpt_path)
    best_state: dict[str, Any] | None = None
    best_acc = -math.inf
    step_in_epoch = 0
    torch.manual_seed(seed)

    if resume and ckpt_path is not None and ckpt_path.is_file():
        from axhw.data import load_checkpoint

        state = load_checkpoint(ckpt_path, map_location=device, weights_only=False)
        if not isinstance(state, dict):
            raise ConfigError(f"checkpoint {str(ckpt_path)!r} is not a retraining checkpoint; delete it to start over")
        if state.get("schema") != _SCHEMA or state.get("settings") != settings:
            diff = sorted(k for k in settings if state.get("settings", {}).get(k) != settings[k])
            raise ConfigError(
                f"checkpoint {str(ckpt_path)!r} was made from another model or with other settings "
                f"(differs in: {', '.join(diff) or 'format'}); pass resume=False to start over, "
                "or use another checkpoint_dir"
            )
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["rng"])
        result = RetrainResult.from_json(state["result"])
        result.resumed_from_step = result.steps
        result.checkpoint = str(ckpt_path)
        step_in_epoch = state["step_in_epoch"]
        best_acc = state["best_accuracy"]
        if settings["keep_best"] and best_path is not None and best_path.is_file():
            best_state = load_checkpoint(best_path, map_location=device, weights_only=True)

    def save_checkpoint() -> None:
        if ckpt_path is None:
            return
        _save(ckpt_path, {
            "schema": _SCHEMA,
            "settings": settings,
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "rng": torch.get_rng_state(),
            "result": result.to_json(),
            "step_in_epoch": step_in_epoch,
            "best_accuracy": best_acc,
        })

    def validate(epoch: int) -> None:
        nonlocal best_state, best_acc
        if val_loader is None:
            return
        accuracy = float(evaluate(model, val_loader, device=device, progress=False))
        result.val_accuracy.append(accuracy)
        if settings["keep_best"] and accuracy >= best_acc:
            best_acc, result.best_epoch = accuracy, epoch
            best_state = _state_copy(model)
            if best_path is not None:
                _save(best_path, best_state)

    t_start = time.perf_counter()
    seconds_before = result.seconds
    if result.steps == 0 and not result.val_accuracy:
        validate(0)
    bar = tqdm(total=total_steps, initial=result.steps, desc=f"retrain ({grad})", unit="step", disable=not progress)
    try:
        while result.steps < total_steps:
            epoch = result.epochs if step_in_epoch else result.epochs + 1
            if step_in_epoch == 0:
                result.epochs = epoch
                result.epoch_loss.append(0.0)
            seen = correct = 0
            loss_sum = result.epoch_loss[-1] * step_in_epoch
            model.train()
            for batch in _batches(loader, epoch, seed, step_in_epoch):
                inputs, targets = _split_batch(batch)
                inputs, targets = inputs.to(device), targets.to(device)
                outputs = model(inputs)
                loss = loss_fn(outputs, targets)
                if not torch.isfinite(loss):
                    raise FloatingPointError(f"retraining loss became {loss.item()} at step {result.steps + 1}; lower lr")
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                value = loss.item()
                result.loss_history.append(value)
                result.steps += 1
                step_in_epoch += 1
                loss_sum += value
                result.epoch_loss[-1] = loss_sum / step_in_epoch
                if targets.dtype in (torch.int64, torch.int32) and outputs.dim() == 2:
                    seen += len(targets)
                    correct += int((outputs.detach().argmax(1) == targets).sum())
                bar.update(1)
                bar.set_postfix(loss=f"{value:.4f}")
                if checkpoint_every and result.steps % checkpoint_every == 0 and result.steps < total_steps:
                    result.seconds = seconds_before + time.perf_counter() - t_start
                    save_checkpoint()
                if result.steps >= total_steps:
                    break
            if seen:
                result.train_accuracy.append(correct / seen)
            step_in_epoch = 0
            model.eval()
            validate(epoch)
            if result.val_accuracy:
                bar.set_postfix(loss=f"{result.epoch_loss[-1]:.4f}", val=f"{result.val_accuracy[-1]:.4f}")
            result.seconds = seconds_before + time.perf_counter() - t_start
            save_checkpoint()
    except KeyboardInterrupt:
        if step_in_epoch > 0:  # mid-epoch: keep the steps done; otherwise the epoch-end checkpoint stands
            result.seconds = seconds_before + time.perf_counter() - t_start
            save_checkpoint()
        raise
    finally:
        bar.close()
    if settings["keep_best"] and best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return result


# --------------------------------------------------------------------------- the pipeline


@dataclass
class RetrainReport:
    """Accuracy of a model before and after approximation-aware retraining.

    Attributes:
        model: model name (``"default"`` or a timm name).
        data: data spec the model was calibrated, retrained and tested on.
        config: the layer config (glob -> multiplier) that was applied.
        fp32_accuracy: test top-1 accuracy in [0, 1] of the float model.
        int8_accuracy: test accuracy with the exact int8 product everywhere.
        approx_accuracy: test accuracy with ``config`` applied, before retraining.
        retrained_accuracy: test accuracy after retraining, per gradient method.
        runs: the :class:`RetrainResult` of each gradient method.
        files: what was written (name -> path).
        seconds: wall time per part (``evaluate``, ``retrain_ste``, ``retrain_lut``).
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

    def recovered(self, grad: str) -> float:
        """Fraction of the accuracy lost to approximation that retraining won back.

        ``(retrained - approx) / (fp32 - approx)``; ``nan`` when nothing was lost.
        """
        lost = self.fp32_accuracy - self.approx_accuracy
        return (self.retrained_accuracy[grad] - self.approx_accuracy) / lost if lost > 0 else math.nan

    def table(self) -> str:
        """A Markdown table of the accuracies (in percent) and the recovered fraction."""
        rows = [
            ("fp32", self.fp32_accuracy, ""),
            ("int8 (exact multiplier)", self.int8_accuracy, ""),
            ("approximate", self.approx_accuracy, ""),
        ]
        names = {"ste": "retrained (STE)", "lut": "retrained (gradient LUT)"}
        for grad, accuracy in self.retrained_accuracy.items():
            recovered = self.recovered(grad)
            rows.append((names.get(grad, grad), accuracy, "" if math.isnan(recovered) else f"{100 * recovered:.0f} %"))
        lines = ["| model | top-1 (%) | lost accuracy recovered |", "|---|---:|---:|"]
        lines += [f"| {name} | {100 * acc:.2f} | {rec} |" for name, acc, rec in rows]
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict of every field."""
        data = asdict(self)
        data["runs"] = {k: v.to_json() for k, v in self.runs.items()}
        return {"schema": _SCHEMA, **data}


def _evaluations(path: Path) -> dict[str, float]:
    import json

    if path.is_file():
        try:
            return {str(k): float(v) for k, v in json.loads(path.read_text()).items()}
        except (ValueError, AttributeError):
            return {}
    return {}


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
    ax_acc.set(xlabel="epoch (0 = before)", ylabel="validation top-1 (%)", title="validation accuracy")
    ax_acc.xaxis.set_major_locator(MaxNLocator(integer=True))
    for axis in (ax_loss, ax_acc):
        axis.grid(alpha=0.3)
        axis.legend()
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    return atomic_write_bytes(path, buffer.getvalue())


def retrain_config(
    config: dict[str, str] | str,
    *,
    model: str = "default",
    checkpoint: str | Path | None = None,
    data: str = "digits",
    grads: Iterable[str] = ("ste", "lut"),
    epochs: int = 1,
    steps: int | None = None,
    lr: float = 5e-5,
    batch_size: int = 64,
    out_dir: str | Path = "out/retrain",
    calib_batches: int | None = 4,
    eval_size: int | None = None,
    seed: int = 0,
    resume: bool = True,
    device: str | torch.device | None = None,
    progress: bool = True,
) -> RetrainReport:
    """Approximate a model, measure it, retrain it with each gradient method and measure again.

    Calibrates on the ``calib`` split, retrains on ``train`` (shuffled, seeded)
    keeping the best epoch on ``val``, and reports top-1 accuracy on ``test``.
    Every result is cached under ``out_dir`` (accuracies by model fingerprint,
    retraining by checkpoint), so a second call with the same arguments is fast,
    and an interrupted call resumes.

    Args:
        config: layer config (glob -> multiplier name), or one multiplier name for every layer.
        model: ``"default"`` or a timm model name (see :func:`axhw.models.load_model`).
        checkpoint: local weights for ``model``.
        data: ``"digits"`` or ``"imagefolder:PATH"``.
        grads: gradient methods to retrain with, each from the same approximated model.
        epochs, steps, lr: as :func:`retrain`.
        batch_size: images per batch for every loader.
        out_dir: where checkpoints, retrained weights, ``summary.json``,
            ``summary.md`` and ``retrain_loss.png`` are written.
        calib_batches: calibration batches (``None``: the whole ``calib`` split).
        eval_size: use only the first this many images of ``val`` and ``test``
            (``None``: all).
        seed: seeds the shuffling and retraining.
        resume: re-use finished or interrupted retraining runs in ``out_dir``.
        device: where to run (default CPU).
        progress: show progress bars.

    Returns:
        :class:`RetrainReport`.

    Raises:
        ConfigError, DataError, DatabaseError: bad config, data, model or multiplier name.
    """
    import copy
    import json

    from axhw.data import get_loader, num_classes
    from axhw.io import atomic_write_json, atomic_write_text
    from axhw.models import load_model

    from . import approximate, evaluate, model_input_size

    grads = tuple(grads)
    for grad in grads:
        if grad not in ("ste", "lut"):
            raise ConfigError(f"grad must be 'ste' or 'lut', got {grad!r}")
    if isinstance(config, str):
        config = {"*": config}
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    device = torch.device(device) if device is not None else torch.device("cpu")
    base = load_model(model, checkpoint=checkpoint, num_classes=num_classes(data)).to(device)
    channels, height, _ = model_input_size(base)

    def loader(split: str, shuffle: bool = False, limit: int | None = None):
        return get_loader(data, split, batch_size=batch_size, shuffle=shuffle, image_size=height, channels=channels,
                          limit=limit, seed=seed)

    test, calib = loader("test", limit=eval_size), loader("calib")
    cache_path = out / "evaluations.json"
    cache = _evaluations(cache_path)
    t0 = time.perf_counter()

    def test_accuracy(net: nn.Module) -> float:
        key = f"{model_fingerprint(net)}:{data}:test:{eval_size or 'all'}"
        if key not in cache:
            cache[key] = float(evaluate(net, test, device=device, progress=progress))
            atomic_write_json(cache_path, cache)
        return cache[key]

    fp32 = test_accuracy(base)
    int8 = test_accuracy(approximate(base, {"*": "exact"}, calib, num_batches=calib_batches, progress=progress))
    ax = approximate(base, config, calib, num_batches=calib_batches, progress=progress)
    report = RetrainReport(model=model, data=data, config=dict(config), fp32_accuracy=fp32, int8_accuracy=int8,
                           approx_accuracy=test_accuracy(ax))
    report.seconds["evaluate"] = round(time.perf_counter() - t0, 1)
    train, val = loader("train", shuffle=True), loader("val", limit=eval_size)
    for grad in grads:
        t0 = time.perf_counter()
        net = copy.deepcopy(ax)
        run = retrain(net, train, grad=grad, epochs=epochs, steps=steps, lr=lr, checkpoint_dir=out / grad,
                      resume=resume, val_loader=val, seed=seed, device=device, progress=progress)
        report.runs[grad] = run
        report.retrained_accuracy[grad] = test_accuracy(net)
        report.files[f"weights_{grad}"] = str(_save(out / grad / "model.pt", net.state_dict()))
        report.seconds[f"retrain_{grad}"] = round(time.perf_counter() - t0, 1)
    if report.runs:
        report.files["plot"] = str(_plot_runs(report.runs, out / "retrain_loss.png"))
    report.files["summary_json"] = str(out / "summary.json")
    report.files["summary_md"] = str(out / "summary.md")
    atomic_write_json(out / "summary.json", report.to_json())
    header = f"model `{model}` on `{data}`, config `{json.dumps(dict(config))}`\n\n"
    atomic_write_text(out / "summary.md", header + report.table() + "\n")
    return report
