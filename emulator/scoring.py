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

from axhw.emulator.conversion import check_batches, check_model
from axhw.errors import DataError

__all__ = ["correct_per_image"]


def correct_per_image(model: nn.Module, loader: Iterable[Any], device: str | torch.device | None = None) -> np.ndarray:
    """Top-1 correctness (bool, one entry per image, in loader order) of ``model``.

    The model is put in eval mode for the pass and restored after; with ``device``
    it is moved there first (pass a model you own: the caller's model is moved).

    Raises:
        DataError: the loader yields no image.
    """
    check_model(model, "correct_per_image")
    check_batches(loader, "correct_per_image")
    if device is not None:
        model.to(device)
    target = next((p.device for p in model.parameters()), torch.device("cpu"))
    was_training = model.training
    model.eval()
    out: list[np.ndarray] = []
    try:
        with torch.no_grad():
            for images, labels in loader:
                logits = model(images.to(target))
                out.append((logits.argmax(dim=-1).cpu() == labels.cpu()).numpy())
    finally:
        model.train(was_training)
    if not out or sum(len(o) for o in out) == 0:
        raise DataError("the evaluation loader yielded no image")
    return np.concatenate(out).astype(bool)
