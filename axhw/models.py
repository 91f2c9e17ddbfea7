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


def load_model(name: str = DEFAULT_MODEL_NAME, checkpoint: str | Path | None = None, num_classes: int | None = None) -> nn.Module:
    """A model by name, optionally with weights from a local checkpoint, in eval mode.

    Args:
        name: ``"default"`` for the embedded digits ViT, or any timm model name
            (created with ``pretrained=False``: nothing is downloaded).
        checkpoint: a local weights file; for timm names it is loaded through
            timm's ``checkpoint_path`` (state dicts, ``{"state_dict": ...}`` and
            ``{"model": ...}`` checkpoints all work).  ``None``: the committed
            default weights for ``"default"``, random initialization otherwise.
        num_classes: classifier outputs; ``None`` keeps the model's own.

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
        model = build_default(num_classes=num_classes)
        if checkpoint is not None:
            _load_checkpoint(model, checkpoint)
        return model.eval()

    import timm

    if not timm.is_model(name):
        close = timm.list_models(f"*{name.split('_')[0]}*")[:8]
        hint = f"; similar names: {', '.join(close)}" if close else ""
        raise DataError(f"unknown model {name!r}: not 'default' and not a timm model name{hint}")
    kwargs: dict[str, Any] = {"pretrained": False}
    if num_classes is not None:
        kwargs["num_classes"] = int(num_classes)
    if checkpoint is not None:
        kwargs["checkpoint_path"] = str(checkpoint)
    try:
        model = timm.create_model(name, **kwargs)
    except RuntimeError as exc:  # state dict does not match the architecture
        raise DataError(f"checkpoint {str(checkpoint)!r} does not fit model {name!r}: {exc}") from exc
    return model.eval()


def _load_checkpoint(model: nn.Module, path: Path) -> None:
    """Load a local checkpoint into ``model`` with timm's loader (accepts wrapped state dicts)."""
    from timm.models import load_checkpoint

    try:
        load_checkpoint(model, str(path), strict=True)
    except (RuntimeError, KeyError) as exc:
        raise DataError(f"checkpoint {str(path)!r} does not fit the default model: {exc}") from exc
