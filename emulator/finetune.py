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

from axhw.emulator.conversion import device_of as _device_of

__all__ = ["RetrainResult", "retrain", "model_fingerprint", "CHECKPOINT_NAME", "BEST_NAME"]

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
    from axhw.emulator.layers import FP32, load_lut

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


# Long only by its docstring (one Args entry per option); the body is 35 lines.
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
    from axhw.emulator import set_grad_mode

    if grad not in ("ste", "lut"):
        raise ConfigError(f"grad must be 'ste' or 'lut', got {grad!r}")
    if not lr > 0:
        raise ConfigError(f"lr must be > 0, got {lr}")
    total_steps, steps_per_epoch = _step_counts(loader, epochs, steps)
    device = torch.device(device) if device is not None else _device_of(model)
    model.to(device)
    loss_fn = loss_fn or F.cross_entropy
    set_grad_mode(model, grad)
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ConfigError("the model has no trainable parameters (requires_grad is False everywhere)")
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
    run = _Training(model, torch.optim.Adam(params, lr=lr, weight_decay=weight_decay), settings,
                    RetrainResult(grad=grad, lr=lr, total_steps=total_steps), checkpoint_dir, val_loader, device)
    torch.manual_seed(seed)
    if resume:
        run.restore()
    run.train(loader, loss_fn, checkpoint_every, progress)
    if settings["keep_best"] and run.best_state is not None:
        model.load_state_dict(run.best_state)
    model.eval()
    return run.result


def _step_counts(loader: Iterable, epochs: int, steps: int | None) -> tuple[int, int]:
    """``(total steps, steps per epoch)`` of a run over ``loader``.

    Raises:
        ConfigError: non-positive ``epochs``/``steps``, a loader without length when
            ``steps`` is not given, or an empty loader.
    """
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
    return total_steps, steps_per_epoch


class _Training:
    """The state of one :func:`retrain` run: model, optimizer, result, best epoch and its checkpoint files."""

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, settings: dict[str, Any],
                 result: RetrainResult, checkpoint_dir: str | Path | None, val_loader: Iterable | None,
                 device: torch.device) -> None:
        self.model, self.optimizer, self.settings, self.result = model, optimizer, settings, result
        self.val_loader, self.device = val_loader, device
        self.ckpt_path = self.best_path = None
        if checkpoint_dir is not None:
            self.ckpt_path = Path(checkpoint_dir) / CHECKPOINT_NAME
            self.best_path = Path(checkpoint_dir) / BEST_NAME
            result.checkpoint = str(self.ckpt_path)
        self.best_state: dict[str, Any] | None = None
        self.best_acc = -math.inf
        self.step_in_epoch = 0

    def restore(self) -> None:
        """Continue from the checkpoint of the same model and settings, if there is one."""
        if self.ckpt_path is None or not self.ckpt_path.is_file():
            return
        from axhw.data import load_checkpoint

        state = load_checkpoint(self.ckpt_path, map_location=self.device, weights_only=False)
        if not isinstance(state, dict):
            raise ConfigError(f"checkpoint {str(self.ckpt_path)!r} is not a retraining checkpoint; delete it to start over")
        if state.get("schema") != _SCHEMA or state.get("settings") != self.settings:
            diff = sorted(k for k in self.settings if state.get("settings", {}).get(k) != self.settings[k])
            raise ConfigError(
                f"checkpoint {str(self.ckpt_path)!r} was made from another model or with other settings "
                f"(differs in: {', '.join(diff) or 'format'}); pass resume=False to start over, "
                "or use another checkpoint_dir"
            )
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["rng"])
        self.result = RetrainResult.from_json(state["result"])
        self.result.resumed_from_step = self.result.steps
        self.result.checkpoint = str(self.ckpt_path)
        self.step_in_epoch = state["step_in_epoch"]
        self.best_acc = state["best_accuracy"]
        if self.settings["keep_best"] and self.best_path is not None and self.best_path.is_file():
            self.best_state = load_checkpoint(self.best_path, map_location=self.device, weights_only=True)

    def save_checkpoint(self) -> None:
        if self.ckpt_path is None:
            return
        _save(self.ckpt_path, {
            "schema": _SCHEMA,
            "settings": self.settings,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "rng": torch.get_rng_state(),
            "result": self.result.to_json(),
            "step_in_epoch": self.step_in_epoch,
            "best_accuracy": self.best_acc,
        })

    def validate(self, epoch: int) -> None:
        """Accuracy on the validation loader; keeps the weights of the best epoch (ties: the later)."""
        from axhw.emulator import evaluate

        if self.val_loader is None:
            return
        accuracy = float(evaluate(self.model, self.val_loader, device=self.device, progress=False))
        self.result.val_accuracy.append(accuracy)
        if self.settings["keep_best"] and accuracy >= self.best_acc:
            self.best_acc, self.result.best_epoch = accuracy, epoch
            self.best_state = _state_copy(self.model)
            if self.best_path is not None:
                _save(self.best_path, self.best_state)

    def train(self, loader: Iterable, loss_fn: LossFn, checkpoint_every: int | None, progress: bool) -> None:
        """Run epochs until the step budget is spent; checkpoint per epoch, every ``checkpoint_every`` and on Ctrl-C."""
        from tqdm.auto import tqdm

        result = self.result
        t_start, seconds_before = time.perf_counter(), result.seconds
        if result.steps == 0 and not result.val_accuracy:
            self.validate(0)
        bar = tqdm(total=result.total_steps, initial=result.steps, desc=f"retrain ({result.grad})", unit="step",
                   disable=not progress)
        try:
            while result.steps < result.total_steps:
                epoch = result.epochs if self.step_in_epoch else result.epochs + 1
                if self.step_in_epoch == 0:
                    result.epochs = epoch
                    result.epoch_loss.append(0.0)
                self._epoch(loader, epoch, loss_fn, bar, checkpoint_every, lambda: seconds_before + time.perf_counter() - t_start)
                self.step_in_epoch = 0
                self.model.eval()
                self.validate(epoch)
                if result.val_accuracy:
                    bar.set_postfix(loss=f"{result.epoch_loss[-1]:.4f}", val=f"{result.val_accuracy[-1]:.4f}")
                result.seconds = seconds_before + time.perf_counter() - t_start
                self.save_checkpoint()
        except KeyboardInterrupt:
            if self.step_in_epoch > 0:  # mid-epoch: keep the steps done; otherwise the epoch-end checkpoint stands
                result.seconds = seconds_before + time.perf_counter() - t_start
                self.save_checkpoint()
            raise
        finally:
            bar.close()

    def _epoch(self, loader: Iterable, epoch: int, loss_fn: LossFn, bar: Any, checkpoint_every: int | None,
               elapsed: Callable[[], float]) -> None:
        """One (possibly resumed, possibly partial) pass over ``loader``."""
        result = self.result
        seen = correct = 0
        loss_sum = result.epoch_loss[-1] * self.step_in_epoch
        self.model.train()
        for batch in _batches(loader, epoch, self.settings["seed"], self.step_in_epoch):
            inputs, targets = _split_batch(batch)
            inputs, targets = inputs.to(self.device), targets.to(self.device)
            outputs = self.model(inputs)
            loss = loss_fn(outputs, targets)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"retraining loss became {loss.item()} at step {result.steps + 1}; lower lr")
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            value = loss.item()
            result.loss_history.append(value)
            result.steps += 1
            self.step_in_epoch += 1
            loss_sum += value
            result.epoch_loss[-1] = loss_sum / self.step_in_epoch
            if targets.dtype in (torch.int64, torch.int32) and outputs.dim() == 2:
                seen += len(targets)
                correct += int((outputs.detach().argmax(1) == targets).sum())
            bar.update(1)
            bar.set_postfix(loss=f"{value:.4f}")
            if checkpoint_every and result.steps % checkpoint_every == 0 and result.steps < result.total_steps:
                result.seconds = elapsed()
                self.save_checkpoint()
            if result.steps >= result.total_steps:
                break
        if seen:
            result.train_accuracy.append(correct / seen)
