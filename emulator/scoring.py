"""Per-image scoring: which images a model gets right, for paired intervals.

:func:`axhw.emulator.evaluate` returns one accuracy; a drop against the int8 model
needs to know *which* images each model got right, so that both are compared on
the same images (:func:`axhw.stats.paired_drop`).
"""

from __future__ import annotations

from typing import Any, Iterable

import numpy as np
import torch
from torch import nn

from tqdm.auto import tqdm

from axhw.emulator.conversion import check_batches, check_model, device_of
from axhw.errors import DataError

__all__ = ["correct_per_image"]


def correct_per_image(model: nn.Module, loader: Iterable[Any], device: str | torch.device | None = None,
                      progress: bool = False) -> np.ndarray:
    """Top-1 correctness (bool, one entry per image, in loader order) of ``model``.

    The model is put in eval mode for the pass and restored after; with ``device``
    it is moved there first (pass a model you own: the caller's model is moved).
    :func:`axhw.emulator.evaluate` is its mean.

    Args:
        progress: show a tqdm bar with the running top-1.

    Raises:
        DataError: the loader yields no image.
    """
    check_model(model, "correct_per_image")
    check_batches(loader, "correct_per_image")
    if device is not None:
        model.to(device)
    target = device_of(model)
    was_training = model.training
    model.eval()
    out: list[np.ndarray] = []
    correct = total = 0
    try:
        with torch.no_grad():
            bar = tqdm(loader, desc="evaluate", unit="batch", disable=not progress,
                       total=len(loader) if hasattr(loader, "__len__") else None)
            for images, labels in bar:
                logits = model(images.to(target))
                out.append((logits.argmax(dim=-1).cpu() == labels.cpu()).numpy())
                correct, total = correct + int(out[-1].sum()), total + out[-1].size
                if total:
                    bar.set_postfix(top1=f"{correct / total:.4f}")
    finally:
        model.train(was_training)
    if not total:
        raise DataError("the evaluation loader yielded no image")
    return np.concatenate(out).astype(bool)
