"""Train the embedded default ViT on digits: ``python -m axhw.training``.

Seeded and deterministic on CPU: the same seed gives the same weights.  Training
uses AdamW with a linear warm-up and cosine decay, label smoothing, and small
random affine jitter (shift, rotation, scale) of the upsampled images; the epoch
with the best validation accuracy is kept.  The state dict and a JSON file with
its metrics are written atomically to ``./out/`` (``--out``); the bundled weights in
``axhw/weights/`` change only when that folder is given as ``--out``.
"""

from __future__ import annotations

import argparse
import io
import math
import platform
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from axhw.data import DIGITS_SPLIT_SEED, get_dataset
from axhw.errors import AxhwError
from axhw.io import atomic_write_bytes, atomic_write_json, sha256_bytes
from axhw.models import DEFAULT_CONFIG, build_default, default_metrics_path, default_weights_path
from axhw.threads import apply_threads

__all__ = ["TrainConfig", "TrainResult", "train_default", "accuracy", "save", "main"]


@dataclass(frozen=True)
class TrainConfig:
    """Settings of one training run of the default model.

    Args:
        epochs: passes over the training split.
        batch_size: images per step.
        lr: peak AdamW learning rate.
        weight_decay: AdamW decoupled weight decay.
        warmup_epochs: epochs of linear learning-rate warm-up before the cosine decay.
        label_smoothing: cross-entropy label smoothing.
        jitter: strength of the affine augmentation; 0 disables it.  Shifts are up
            to ``jitter`` original (8x8) pixels, rotations up to ``10 * jitter``
            degrees, scaling up to ``1 +/- 0.1 * jitter``.
        seed: seeds the initialization, the shuffling and the augmentation.
    """

    epochs: int = 150
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 0.05
    warmup_epochs: int = 5
    label_smoothing: float = 0.1
    jitter: float = 1.0
    seed: int = 0


@dataclass
class TrainResult:
    """What a training run produced: the model (best validation epoch) and its metrics."""

    model: nn.Module
    metrics: dict[str, Any] = field(default_factory=dict)


@torch.no_grad()
def accuracy(model: nn.Module, images: torch.Tensor, targets: torch.Tensor, batch_size: int = 256) -> float:
    """Top-1 accuracy in [0, 1] of ``model`` (put in eval mode) on in-memory tensors."""
    model.eval()
    correct = 0
    for start in range(0, len(targets), batch_size):
        logits = model(images[start:start + batch_size])
        correct += int((logits.argmax(dim=1) == targets[start:start + batch_size]).sum())
    return correct / max(1, len(targets))


def _jitter(x: torch.Tensor, strength: float, generator: torch.Generator) -> torch.Tensor:
    """Random affine warp per image (shift, rotation, scale), border-padded."""
    B, _, H, W = x.shape
    u = torch.rand(B, 4, generator=generator) * 2 - 1  # B, 4 uniform in [-1, 1]
    angle = u[:, 0] * math.radians(10.0 * strength)
    scale = 1.0 + 0.1 * strength * u[:, 1]
    shift = 2.0 * strength / 8.0  # one original pixel is 2/8 of the normalized [-1, 1] range
    theta = torch.zeros(B, 2, 3)
    theta[:, 0, 0] = torch.cos(angle) / scale
    theta[:, 0, 1] = -torch.sin(angle) / scale
    theta[:, 1, 0] = torch.sin(angle) / scale
    theta[:, 1, 1] = torch.cos(angle) / scale
    theta[:, 0, 2] = u[:, 2] * shift
    theta[:, 1, 2] = u[:, 3] * shift
    grid = F.affine_grid(theta, [B, 1, H, W], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def train_default(config: TrainConfig = TrainConfig(), progress: bool = True) -> TrainResult:
    """Train the default ViT on the digits train split and measure it on val and test.

    Args:
        config: training settings (seeded).
        progress: show a tqdm bar over epochs.

    Returns:
        The model of the best validation epoch (eval mode) and its metrics: train
        time, val/test accuracy in [0, 1], the config and the versions used.
    """
    from tqdm.auto import tqdm

    torch.manual_seed(config.seed)
    image_size = DEFAULT_CONFIG["img_size"]
    train = get_dataset("digits", "train", image_size=image_size)
    val = get_dataset("digits", "val", image_size=image_size)
    test = get_dataset("digits", "test", image_size=image_size)
    model = build_default()
    decay, no_decay = [], []
    for n, p in model.named_parameters():
        (decay if p.ndim >= 2 and "pos_embed" not in n and "cls_token" not in n else no_decay).append(p)
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=config.lr,
    )
    steps_per_epoch = math.ceil(len(train) / config.batch_size)
    total = config.epochs * steps_per_epoch
    warmup = config.warmup_epochs * steps_per_epoch

    def lr_factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1.0 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor)
    generator = torch.Generator().manual_seed(config.seed)
    best_val, best_state, best_epoch = -1.0, None, -1
    history: list[dict[str, float]] = []
    t0 = time.perf_counter()
    bar = tqdm(range(config.epochs), desc="train default ViT", unit="epoch", disable=not progress)
    for epoch in bar:
        model.train()
        order = torch.randperm(len(train), generator=generator)
        running = 0.0
        for start in range(0, len(order), config.batch_size):
            idx = order[start:start + config.batch_size]
            x, y = train.images[idx], train.targets[idx]
            if config.jitter > 0:
                x = _jitter(x, config.jitter, generator)
            loss = F.cross_entropy(model(x), y, label_smoothing=config.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            running += loss.item() * len(idx)
        val_acc = accuracy(model, val.images, val.targets)
        history.append({"epoch": epoch + 1, "loss": running / len(train), "val_accuracy": val_acc})
        if val_acc >= best_val:
            best_val, best_epoch = val_acc, epoch + 1
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        bar.set_postfix(loss=f"{running / len(train):.3f}", val=f"{val_acc:.3f}")
    train_seconds = time.perf_counter() - t0
    assert best_state is not None
    model.load_state_dict(best_state)
    model.eval()
    metrics: dict[str, Any] = {
        "schema": 1,
        "dataset": "digits",
        "split_seed": DIGITS_SPLIT_SEED,
        "n_train": len(train),
        "n_val": len(val),
        "n_search": len(get_dataset("digits", "search")),
        "n_test": len(test),
        "model_config": dict(DEFAULT_CONFIG),
        "n_parameters": sum(p.numel() for p in model.parameters()),
        "train_config": asdict(config),
        "best_epoch": best_epoch,
        "val_accuracy": best_val,
        "test_accuracy": accuracy(model, test.images, test.targets),
        "train_accuracy_clean": accuracy(model, train.images, train.targets),
        "train_seconds": round(train_seconds, 1),
        "torch_threads": torch.get_num_threads(),
        "history": history,
        "versions": {"python": platform.python_version(), "torch": torch.__version__, "timm": _timm_version()},
    }
    return TrainResult(model=model, metrics=metrics)


def _timm_version() -> str:
    import timm

    return timm.__version__


def save(result: TrainResult, weights: Path, metrics: Path) -> None:
    """Write the state dict and its metrics (with the weights' SHA-256), each atomically."""
    buffer = io.BytesIO()
    torch.save(result.model.state_dict(), buffer)
    data = buffer.getvalue()
    atomic_write_bytes(weights, data)
    atomic_write_json(metrics, {**result.metrics, "weights_file": weights.name, "weights_sha256": sha256_bytes(data)})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m axhw.training", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    defaults = TrainConfig()
    parser.add_argument("--epochs", type=int, default=defaults.epochs)
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--lr", type=float, default=defaults.lr)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads (default: $AXHW_THREADS, else the idle cores; see axhw.threads)")
    parser.add_argument("--out", type=Path, default=Path("out"),
                        help="folder for digits_vit.pt/.json (default: ./out; the bundled weights in "
                        "axhw/weights are replaced only when that folder is given explicitly)")
    args = parser.parse_args(argv)
    try:
        apply_threads(args.threads)
    except AxhwError as exc:
        parser.error(str(exc))
    config = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed)
    result = train_default(config)
    weights = args.out / default_weights_path().name
    metrics = args.out / default_metrics_path().name
    save(result, weights, metrics)
    m = result.metrics
    print(f"best epoch {m['best_epoch']}/{config.epochs}: val {100 * m['val_accuracy']:.2f} %, "
          f"test {100 * m['test_accuracy']:.2f} %, {m['train_seconds']} s; wrote {weights} and {metrics}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
