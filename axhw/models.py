"""Models: the embedded default (a small timm ViT trained on digits) and timm models by name.

The default is a timm :class:`~timm.models.vision_transformer.VisionTransformer`
built from the same layer types as DeiT (a Conv2d patch embedding, ``Attention``
with one ``qkv`` Linear and a ``proj`` Linear, a two-layer ``Mlp``), sized so that
emulating every multiplication through a lookup table stays fast on two CPU
cores.  Its weights, trained by ``python -m axhw.training``, live in
``axhw/weights/digits_vit.pt`` with their metrics in ``digits_vit.json``.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import torch
from torch import nn

from axhw.errors import DataError

__all__ = [
    "DEFAULT_MODEL_NAME",
    "DEFAULT_CONFIG",
    "weights_dir",
    "default_weights_path",
    "default_metrics_path",
    "default_metrics",
    "build_default",
    "default_model",
    "load_model",
    "fit_head",
    "data_class_names",
    "HeadWarning",
]

#: Name under which :func:`load_model` returns the embedded default.
DEFAULT_MODEL_NAME: Final[str] = "default"
#: Constructor arguments of the default ``VisionTransformer`` (digits, 16x16 grey images).
DEFAULT_CONFIG: Final[dict[str, Any]] = {
    "img_size": 16,
    "patch_size": 4,
    "in_chans": 1,
    "num_classes": 10,
    "embed_dim": 64,
    "depth": 4,
    "num_heads": 4,
    "mlp_ratio": 2.0,
    "qkv_bias": True,
    "class_token": True,
    "global_pool": "token",
}


def weights_dir() -> Path:
    """Folder of the committed default weights (``axhw/weights``)."""
    return Path(__file__).resolve().parent / "weights"


def default_weights_path() -> Path:
    """Path of the default model's state dict."""
    return weights_dir() / "digits_vit.pt"


def default_metrics_path() -> Path:
    """Path of the JSON metrics written with the default weights."""
    return weights_dir() / "digits_vit.json"


def default_metrics() -> dict[str, Any]:
    """The metrics recorded when the default weights were trained.

    Raises:
        DataError: the metrics file is missing (train with ``python -m axhw.training``).
    """
    path = default_metrics_path()
    if not path.is_file():
        raise DataError(f"default model metrics {str(path)!r} are missing; run `python -m axhw.training`")
    return json.loads(path.read_text())


def build_default(num_classes: int | None = None, **overrides: Any) -> nn.Module:
    """A freshly initialized default ``VisionTransformer`` (no weights loaded).

    Args:
        num_classes: classifier outputs; ``None`` means 10 (digits).
        **overrides: other ``VisionTransformer`` arguments replacing :data:`DEFAULT_CONFIG`.
    """
    from timm.models.vision_transformer import VisionTransformer

    kwargs = {**DEFAULT_CONFIG, **overrides}
    if num_classes is not None:
        kwargs["num_classes"] = int(num_classes)
    return VisionTransformer(**kwargs)


def default_model(pretrained: bool = True) -> nn.Module:
    """The embedded default ViT, in eval mode.

    Args:
        pretrained: load the committed digits weights; ``False`` gives a random init.

    Raises:
        DataError: ``pretrained`` and the weights file is missing (train it with
            ``python -m axhw.training``, which ``make demo`` does when needed).
    """
    model = build_default()
    if pretrained:
        path = default_weights_path()
        if not path.is_file():
            raise DataError(
                f"default model weights {str(path)!r} are missing; train them with `python -m axhw.training` "
                "(about a minute on two cores)"
            )
        state = torch.load(path, map_location="cpu", weights_only=True)
        model.load_state_dict(state)
    return model.eval()


def load_model(name: str = DEFAULT_MODEL_NAME, checkpoint: str | Path | None = None, num_classes: int | None = None,
               class_names: Sequence[str] | None = None) -> nn.Module:
    """A model by name, optionally with weights from a local checkpoint, in eval mode.

    Args:
        name: ``"default"`` for the embedded digits ViT, or any timm model name
            (created with ``pretrained=False``: nothing is downloaded).
        checkpoint: a local weights file; for timm names it is loaded through
            timm's ``checkpoint_path`` (state dicts, ``{"state_dict": ...}`` and
            ``{"model": ...}`` checkpoints all work).  ``None``: the committed
            default weights for ``"default"``, random initialization otherwise.
        num_classes: classifier outputs; ``None`` keeps the model's own.  When a
            checkpoint's head has another number of outputs, the checkpoint is loaded
            whole and its head then fitted by :func:`fit_head` (a warning says how).
        class_names: the data's class names in label order, for :func:`fit_head`.

    Raises:
        DataError: unknown model name, or a checkpoint that is missing or does not fit.
    """
    if checkpoint is not None:
        checkpoint = Path(checkpoint).expanduser()
        if not checkpoint.is_file():
            raise DataError(f"checkpoint {str(checkpoint)!r} does not exist")
    if name == DEFAULT_MODEL_NAME:
        if checkpoint is None and num_classes in (None, DEFAULT_CONFIG["num_classes"]):
            return default_model(pretrained=True)
        rows = _checkpoint_classes(build_default(), checkpoint) if checkpoint is not None else None
        model = build_default(num_classes=rows or num_classes)
        if checkpoint is not None:
            _load_checkpoint(model, checkpoint)
        return _fitted(model, rows, num_classes, class_names).eval()

    import timm

    if not timm.is_model(name):
        close = timm.list_models(f"*{name.split('_')[0]}*")[:8]
        hint = f"; similar names: {', '.join(close)}" if close else ""
        raise DataError(f"unknown model {name!r}: not 'default' and not a timm model name{hint}")
    kwargs: dict[str, Any] = {"pretrained": False}
    rows = _checkpoint_classes(timm.create_model(name, pretrained=False), checkpoint) if checkpoint is not None else None
    if rows or num_classes is not None:
        kwargs["num_classes"] = int(rows or num_classes)
    if checkpoint is not None:
        kwargs["checkpoint_path"] = str(checkpoint)
    try:
        model = timm.create_model(name, **kwargs)
    except RuntimeError as exc:  # state dict does not match the architecture
        raise DataError(f"checkpoint {str(checkpoint)!r} does not fit model {name!r}: {exc}") from exc
    if checkpoint is None:
        # Nothing is downloaded here, so a timm name alone means random weights: say so before any accuracy.
        warnings.warn(f"timm model {name!r} has random weights (no checkpoint given; nothing is downloaded): its "
                      "accuracies will be near chance; pass a local weights file (--checkpoint/--weights)",
                      UserWarning, stacklevel=2)
    return _fitted(model, rows, num_classes, class_names).eval()


class HeadWarning(UserWarning):
    """A checkpoint's classifier head was cut to the data's classes or replaced by an untrained one."""


def _checkpoint_classes(model: nn.Module, path: Path) -> int | None:
    """Outputs of the classifier stored in checkpoint ``path`` (``None``: no head found there)."""
    from timm.models import load_state_dict

    key = (getattr(model, "pretrained_cfg", None) or getattr(model, "default_cfg", None) or {}).get("classifier") or "head"
    try:
        state = load_state_dict(str(path))
    except (RuntimeError, KeyError, OSError, ValueError) as exc:
        raise DataError(f"checkpoint {str(path)!r} cannot be read: {exc}") from exc
    weight = state.get(f"{key}.weight")
    return int(weight.shape[0]) if weight is not None and weight.ndim == 2 else None


def _fitted(model: nn.Module, rows: int | None, num_classes: int | None, class_names: Sequence[str] | None) -> nn.Module:
    if rows is None or num_classes is None or int(num_classes) == rows:
        return model
    note = fit_head(model, int(num_classes), class_names)
    warnings.warn(note, HeadWarning, stacklevel=3)
    return model


def fit_head(model: nn.Module, num_classes: int, class_names: Sequence[str] | None = None) -> str:
    """Give ``model`` a ``num_classes``-way head, keeping the trained rows when they can be found.

    An ImageNet-1k head (1000 outputs) on data whose class names are ImageNet WordNet
    ids (``n01440764``...) keeps exactly the rows of those classes, in the data's label
    order: the model runs on the subset as trained.  Any other change replaces the head
    with an untrained one (timm's ``reset_classifier``), to be fine-tuned (``axhw retrain``).

    Returns:
        One line saying what was done.
    """
    head = model.get_classifier()
    rows = int(head.weight.shape[0]) if isinstance(head, nn.Linear) else None
    names = list(class_names or [])
    if rows == 1000 and len(names) == num_classes:
        from timm.data import ImageNetInfo

        wnids = {wnid: i for i, wnid in enumerate(ImageNetInfo().label_names())}
        if names and all(n in wnids for n in names):
            keep = torch.tensor([wnids[n] for n in names])
            weight, bias = head.weight.detach()[keep].clone(), None if head.bias is None else head.bias.detach()[keep].clone()
            model.reset_classifier(num_classes)
            new = model.get_classifier()
            with torch.no_grad():
                new.weight.copy_(weight)
                if bias is not None:
                    new.bias.copy_(bias)
            return (f"kept the {num_classes} rows of the checkpoint's ImageNet-1k head that match the data's class "
                    "folders (WordNet ids); the model runs on the subset as trained")
    model.reset_classifier(num_classes)
    return (f"the checkpoint's head has {rows} outputs and the data {num_classes} classes: the head was replaced by an "
            "untrained one; fine-tune it (`axhw retrain`) before trusting accuracy")


def _load_checkpoint(model: nn.Module, path: Path) -> None:
    """Load a local checkpoint into ``model`` with timm's loader (accepts wrapped state dicts)."""
    from timm.models import load_checkpoint

    try:
        load_checkpoint(model, str(path), strict=True)
    except (RuntimeError, KeyError) as exc:
        raise DataError(f"checkpoint {str(path)!r} does not fit the default model: {exc}") from exc


def data_class_names(spec: str) -> list[str] | None:
    """Class names of data ``spec`` in label order (image folders), ``None`` when it has none (digits)."""
    from axhw.data import get_dataset

    dataset = get_dataset(spec, "test")
    while not hasattr(dataset, "classes") and hasattr(dataset, "dataset"):  # a Subset of the folder
        dataset = dataset.dataset
    names = getattr(dataset, "classes", None)
    return [str(n) for n in names] if names is not None else None
