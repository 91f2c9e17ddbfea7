"""Turn a float timm model into an approximate one, torch.ao style: prepare, calibrate, convert.

``approximate(model, config, calibration_data)`` chains the three public steps:

1. :func:`prepare` resolves ``config`` (layer-name glob -> multiplier name) into an
   explicit per-op table, deep-copies the model (unless ``inplace``) and swaps every
   configured ``nn.Linear``, ``nn.Conv2d`` and timm attention for its approximate
   counterpart (:mod:`axhw.emulator.layers`) in calibrating mode;
2. :func:`calibrate` runs batches through the model in float while the observers
   record every quantized operand;
3. :func:`convert` freezes the scales and switches every op to the integer path.

The resolved table is stored on the model as ``model.axhw_config_``
(``{op_name: multiplier or "fp32"}`` over every approximable op), which reports
and search results keep.

Config rules
------------
* Keys are op names or ``fnmatch`` globs over op names (``*`` also matches dots),
  as :func:`layers` lists them: ``blocks.0.attn.qkv`` (linear), ``patch_embed.proj``
  (conv), ``blocks.0.attn.qk`` and ``blocks.0.attn.av`` (the two attention products).
  Values are multiplier names, ``"exact"`` or ``"fp32"``.  A bare string means
  ``{"*": name}``.
* Ops no pattern matches stay ``"fp32"``; ops under an ``exclude`` glob (default the
  classifier ``head``, matched against the op name and each parent path) always do
  (a pattern naming only excluded ops is an error unless its value is ``"fp32"``).
* **Precedence**: when several patterns match one op, an exact name beats any glob,
  and among globs the one with more literal (non-wildcard) characters wins, e.g.
  ``blocks.0.*`` beats ``*``.  Equally specific patterns assigning *different*
  multipliers are an error (:class:`~axhw.errors.ConfigError`).
"""

from __future__ import annotations

import copy
import difflib
import fnmatch
import json
import numbers
import os
import re
import warnings
from itertools import islice
from pathlib import Path
from typing import Any, Final, Iterable, Mapping

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from axhw.errors import ArgumentTypeError, ConfigError, DataError
from axhw.records import OpInfo

from axhw.emulator import kernels
from axhw.emulator.functional import FAKE_QUANT, GRAD_MODES
from axhw.emulator.layers import (
    ATTENTION_MAPPING,
    EXACT,
    FP32,
    AxAttention,
    AxConv2d,
    AxLinear,
    AxOp,
    FloatMatmul,
    _cached_lut,
)
from axhw.emulator.quantization import quantize

__all__ = [
    "OpInfo",
    "DEFAULT_EXCLUDE",
    "list_ops",
    "model_input_size",
    "load_config",
    "resolve_config",
    "resolve_device",
    "prepare",
    "calibrate",
    "convert",
    "approximate",
    "set_multipliers",
    "set_grad_mode",
    "set_backend",
    "evaluate",
    "collect_operands",
    "compare_accuracy",
    "device_of",
]

#: Op-name globs left in float unless the caller says otherwise.
DEFAULT_EXCLUDE: Final[tuple[str, ...]] = ("head",)
_WILDCARDS = re.compile(r"\[[^\]]*\]|[*?]")
Config = Mapping[str, str] | str


# ---------------------------------------------------------------------------- discovery


def _is_float_conv(mod: nn.Module) -> bool:
    return type(mod) is nn.Conv2d and mod.padding_mode == "zeros"


def _ops_of(name: str, mod: nn.Module) -> list[tuple[str, str]]:
    """``[(op_name, kind)]`` of one module (two for an attention, none for others)."""
    if type(mod) in (nn.Linear, AxLinear):
        return [(name, "linear")]
    if _is_float_conv(mod) or type(mod) is AxConv2d:
        return [(name, "conv")]
    if type(mod) in ATTENTION_MAPPING or isinstance(mod, AxAttention):
        return [(f"{name}.qk", "qk"), (f"{name}.av", "av")]
    return []


def _find_ops(model: nn.Module, prefix: str = "") -> list[tuple[str, str, nn.Module]]:
    """``[(op_name, kind, owning module)]`` in execution order.

    Modules are listed depth first; an attention's two products come just before its
    output projection ``proj`` (so ``qkv, qk, av, proj``).
    """
    found: list[tuple[str, str, nn.Module]] = []
    own = [(op, kind, model) for op, kind in _ops_of(prefix.rstrip("."), model)] if prefix else []
    if own and own[0][1] in ("qk", "av"):
        for name, child in model.named_children():
            if name == "proj":
                found += own
                own = []
            found += _find_ops(child, f"{prefix}{name}.")
        return found + own
    found += own
    for name, child in model.named_children():
        found += _find_ops(child, f"{prefix}{name}.")
    return found


def model_input_size(model: nn.Module) -> tuple[int, int, int]:
    """``(C, H, W)`` of one input image of a timm model.

    Read from ``model.patch_embed`` (``img_size`` and the projection's input channels)
    when present, as it follows ``img_size=`` overrides; else from
    ``model.pretrained_cfg["input_size"]`` (which does not), else 3×224×224.
    """
    patch_embed = getattr(model, "patch_embed", None)
    img_size = getattr(patch_embed, "img_size", None)
    proj = getattr(patch_embed, "proj", None)
    if img_size is not None and isinstance(proj, nn.Conv2d):
        return (proj.in_channels, *img_size)
    cfg = getattr(model, "pretrained_cfg", None) or {}
    return tuple(cfg.get("input_size", (3, 224, 224)))  # type: ignore[return-value]


def _example_input(model: nn.Module, input_size: tuple[int, int, int] | None) -> torch.Tensor:
    return torch.zeros(1, *(input_size or model_input_size(model)), device=device_of(model))


def list_ops(model: nn.Module, input_size: tuple[int, int, int] | None = None) -> list[OpInfo]:
    """Every approximable op of ``model`` with its multiply-accumulates per image.

    Approximable: ``nn.Linear``, ``nn.Conv2d`` (zero padding), and the two products of
    timm ``Attention`` (ViT/DeiT), Swin ``WindowAttention`` and GCViT
    ``WindowAttentionGlobal``; works on float and approximated models alike.  MACs
    are counted with forward hooks during one forward pass of a zero image.

    Args:
        model: a timm model (float or approximated).
        input_size: ``(C, H, W)`` of one image; ``None``: :func:`model_input_size`
            (pass it for models without ``patch_embed`` built with another ``img_size``).

    Returns:
        One :class:`OpInfo` per op, in module order.
    """
    check_model(model, "list_ops")
    found = _find_ops(model)
    macs: dict[str, int] = {}
    handles = []

    def count(name: str, mod: nn.Module) -> Any:
        def hook(module: nn.Module, args: tuple, output: torch.Tensor) -> None:
            x = args[0]
            if isinstance(module, nn.Linear):
                macs[name] = macs.get(name, 0) + x.numel() * module.out_features  # M*K*N
            elif isinstance(module, nn.Conv2d):
                kh, kw = module.kernel_size
                macs[name] = macs.get(name, 0) + output.numel() * (module.in_channels // module.groups) * kh * kw
            else:  # attention over x (B_, N, C): both products are B_ * N * N * (heads * head_dim)
                B_, N = x.shape[0], x.shape[1]
                n = B_ * N * N * module.proj.in_features
                macs[f"{name}.qk"] = macs.get(f"{name}.qk", 0) + n
                macs[f"{name}.av"] = macs.get(f"{name}.av", 0) + n

        return hook

    for name, mod in model.named_modules():
        if _ops_of(name, mod):
            handles.append(mod.register_forward_hook(count(name, mod)))
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(_example_input(model, input_size))
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    return [OpInfo(op, kind, int(macs.get(op, 0))) for op, kind, _ in found]  # type: ignore[arg-type]


# ---------------------------------------------------------------------------- config


def _specificity(pattern: str) -> tuple[int, int]:
    """Precedence key: (exact name?, number of literal characters)."""
    literal = _WILDCARDS.sub("", pattern)
    return (int(literal == pattern), len(literal))


def _excluded(name: str, exclude: Iterable[str]) -> bool:
    parts = name.split(".")
    paths = [".".join(parts[: i + 1]) for i in range(len(parts))]
    return any(fnmatch.fnmatchcase(path, pattern) for pattern in exclude for path in paths)


def _check_multiplier(name: str) -> None:
    if name != FP32:
        _cached_lut(name)  # DatabaseError lists the known names; ConfigError for non-8-bit


def load_config(path: str | os.PathLike) -> dict[str, str]:
    """Read a layer config file: a JSON object mapping layer-name globs to multiplier names.

    The file ``axhw emulate --config`` and ``axhw retrain --config`` take; the result
    goes to :func:`resolve_config` / :func:`approximate` as it is.

    Raises:
        ConfigError: the file is missing or unreadable, is not JSON, or is not an object
            of strings (glob -> ``"exact"``, ``"fp32"`` or a multiplier name).
    """
    path = Path(path)
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"config file {str(path)!r} does not exist") from exc
    except OSError as exc:
        raise ConfigError(f"cannot read config file {str(path)!r}: {exc.strerror or exc}") from exc
    except ValueError as exc:  # JSONDecodeError (says line and column) or UnicodeDecodeError
        raise ConfigError(f"config file {str(path)!r} is not valid JSON: {exc}") from exc
    if not isinstance(config, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in config.items()):
        raise ConfigError(f"config file {str(path)!r} must hold a JSON object of layer glob -> multiplier name")
    return config


def resolve_config(model: nn.Module, config: Config, exclude: Iterable[str] = DEFAULT_EXCLUDE) -> dict[str, str]:
    """The explicit per-op table a config assigns, over every approximable op of ``model``.

    Args:
        model: a timm model.
        config: ``{glob: multiplier}`` (see the module docstring for the rules), or one
            multiplier name for every op.
        exclude: op-name globs always left ``"fp32"`` (matched against every parent path).

    Returns:
        ``{op_name: multiplier name or "fp32"}`` in module order.

    Raises:
        ConfigError: the model has no approximable op; a pattern matches no op (close
            names are suggested); two equally specific patterns disagree on an op;
            a value is not a string; a multiplier is not 8×8-bit.
        DatabaseError: an unknown multiplier name (the message lists the known ones).
    """
    check_model(model, "resolve_config")
    ops = [op for op, _, _ in _find_ops(model)]
    if not ops:
        raise ConfigError(
            f"{type(model).__name__} has no approximable layer (nn.Linear, nn.Conv2d, timm Attention, "
            "Swin WindowAttention or GCViT WindowAttentionGlobal); nothing to emulate"
        )
    if isinstance(config, str):
        config = {"*": config}
    if not isinstance(config, Mapping):
        raise ConfigError(f"config must map layer globs to multiplier names, got {type(config).__name__}")
    exclude = tuple(exclude)
    for pattern, value in config.items():
        if not isinstance(pattern, str) or not isinstance(value, str):
            raise ConfigError(f"config entry {pattern!r}: {value!r} must map a string glob to a multiplier name")
    for value in dict.fromkeys(config.values()):
        _check_multiplier(value)
    allowed = [op for op in ops if not _excluded(op, exclude)]
    for pattern in config:
        if any(fnmatch.fnmatchcase(op, pattern) for op in allowed):
            continue
        hidden = [op for op in ops if fnmatch.fnmatchcase(op, pattern)]
        if hidden and config[pattern] == FP32:
            continue  # an excluded layer explicitly left in float: consistent, not a mistake
        if hidden:
            raise ConfigError(
                f"config pattern {pattern!r} matches only excluded layers ({', '.join(hidden[:4])}); "
                f"they are excluded by {exclude}; pass exclude=() to approximate them"
            )
        close = difflib.get_close_matches(pattern, ops, n=5, cutoff=0.5)
        hint = f"; close names: {', '.join(close)}" if close else f"; layers look like {', '.join(ops[:3])}, ..."
        raise ConfigError(f"config pattern {pattern!r} matches no approximable layer{hint} (list them with axhw.emulator.list_ops(model))")
    table: dict[str, str] = {}
    for op in ops:
        if op not in allowed:
            table[op] = FP32
            continue
        matches = [p for p in config if fnmatch.fnmatchcase(op, p)]
        if not matches:
            table[op] = FP32
            continue
        best = max(_specificity(p) for p in matches)
        winners = [p for p in matches if _specificity(p) == best]
        values = {config[p] for p in winners}
        if len(values) > 1:
            detail = ", ".join(f"{p!r} -> {config[p]!r}" for p in winners)
            raise ConfigError(
                f"layer {op!r} is matched by equally specific patterns with different multipliers ({detail}); "
                "an exact name beats a glob and a glob with more literal characters beats a shorter one: "
                "make one pattern more specific"
            )
        table[op] = values.pop()
    return table


def _check_backend(backend: str, multipliers: Iterable[str]) -> None:
    if backend not in {*kernels.KERNELS, "auto", FAKE_QUANT}:
        raise ConfigError(f"unknown backend {backend!r}; choose one of auto, {FAKE_QUANT}, {', '.join(sorted(kernels.KERNELS))}")
    if backend == FAKE_QUANT:
        inexact = sorted({m for m in multipliers if m not in (EXACT, FP32)})
        if inexact:
            raise ConfigError(f"backend {FAKE_QUANT!r} is the float reference of the exact product; it cannot emulate {', '.join(inexact)}")


# ---------------------------------------------------------------------------- prepare / calibrate / convert


def _ax_ops(model: nn.Module) -> list[tuple[str, AxOp]]:
    return [(name, mod) for name, mod in model.named_modules() if isinstance(mod, AxOp)]


def _swap(module: nn.Module, prefix: str, table: Mapping[str, str], options: dict[str, Any]) -> None:
    """Replace configured children of ``module`` (post-order: an attention adopts swapped Linears)."""
    for name, child in list(module.named_children()):
        path = f"{prefix}{name}"
        _swap(child, f"{path}.", table, options)
        kind = type(child)
        new: nn.Module | None = None
        if kind is nn.Linear and table.get(path, FP32) != FP32:
            new = AxLinear.from_float(child, table[path], **options)
        elif _is_float_conv(child) and table.get(path, FP32) != FP32:
            new = AxConv2d.from_float(child, table[path], **options)
        elif kind in ATTENTION_MAPPING:
            qk, av = table.get(f"{path}.qk", FP32), table.get(f"{path}.av", FP32)
            if (qk, av) != (FP32, FP32):
                attention_options = {k: v for k, v in options.items() if k != "per_channel"}
                new = ATTENTION_MAPPING[kind].from_float(child, qk, av, **attention_options)
        if new is not None:
            setattr(module, name, new)


def resolve_device(device: str | torch.device | None) -> torch.device | None:
    """``device`` as a ``torch.device`` (``None`` stays ``None``: wherever the model is).

    Raises:
        ConfigError: not a device name, or a CUDA device this machine does not have.
    """
    if device is None:
        return None
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ConfigError(f"device {device!r} is not a device name; use 'cpu', 'cuda' or 'cuda:N'") from exc
    if resolved.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ConfigError(f"device {str(device)!r}: no usable CUDA GPU here; use device='cpu'")
        if resolved.index is not None and resolved.index >= count:
            raise ConfigError(f"device {str(device)!r}: this machine has {count} CUDA GPU(s) (cuda:0..cuda:{count - 1})")
    elif resolved.type != "cpu":
        raise ConfigError(f"device {str(device)!r}: the emulator runs on 'cpu' or 'cuda'")
    return resolved


def prepare(
    model: nn.Module,
    config: Config,
    *,
    calibrator: Any = "percentile",
    backend: str = "auto",
    inplace: bool = False,
    exclude: Iterable[str] = DEFAULT_EXCLUDE,
    per_channel: bool = True,
    device: str | torch.device | None = None,
) -> nn.Module:
    """Swap configured ops for approximate ones, in calibrating mode.

    Args:
        model: a float timm model.
        config: ``{glob: multiplier}`` or one multiplier name (see the module docstring).
        calibrator: activation calibrator: ``"max"``, ``"percentile"`` (99.99),
            ``"mse"``, ``"entropy"``, a :class:`~axhw.emulator.quantization.Calibrator`
            class, or a template instance (copied per operand).
        backend: kernel backend of every op (``"auto"``: per device and multiplier).
        inplace: modify ``model`` instead of a deep copy.
        exclude: op-name globs left in float (default: the classifier head).
        per_channel: per-output-channel weight scales (else per tensor).
        device: where the approximate model lives and runs (``"cpu"``, ``"cuda"``,
            ``"cuda:N"``; ``None``: where ``model`` is).  The copy is moved, never the
            caller's model (with ``inplace=True`` the model itself is moved).

    Returns:
        The prepared model, with ``axhw_config_`` set.

    Raises:
        ConfigError, DatabaseError: see :func:`resolve_config`; an unknown backend or device.
    """
    check_model(model, "prepare")
    if _ax_ops(model):
        raise ConfigError("the model is already approximated; start from the float model, or use set_multipliers()")
    target = resolve_device(device)
    table = resolve_config(model, config, exclude)
    _check_backend(backend, table.values())
    if all(m == FP32 for m in table.values()):
        warnings.warn("the config leaves every approximable layer in fp32; nothing will be emulated", stacklevel=2)
    if not inplace:
        model = copy.deepcopy(model)
    if target is not None:
        model.to(target)
    options = {"calibrator": calibrator, "backend": backend, "per_channel": per_channel}
    _swap(model, "", table, options)
    for name, op in _ax_ops(model):
        op.op_name = name
        op.calibrating = True
    model.axhw_config_ = table
    return model


def _batches(data: Any) -> Iterable[Any]:
    return [data] if isinstance(data, torch.Tensor) else data


def _images(batch: Any) -> torch.Tensor:
    return batch[0] if isinstance(batch, (tuple, list)) else batch


def check_model(model: Any, where: str) -> None:
    """Raise a one-line :class:`ArgumentTypeError` unless ``model`` is an ``nn.Module``."""
    if not isinstance(model, nn.Module):
        hint = "; load a name or file first with axhw.models.load_model()" if isinstance(model, (str, os.PathLike)) else ""
        raise ArgumentTypeError(f"{where}: model must be a torch nn.Module, got {type(model).__name__}{hint}")


def check_batches(data: Any, where: str, *, tensor_ok: bool = False) -> None:
    """Raise a one-line :class:`ArgumentTypeError` unless ``data`` iterates over batches.

    Strings and paths are refused although iterable: iterating one yields characters.
    """
    if tensor_ok and isinstance(data, torch.Tensor):
        return
    if isinstance(data, (str, bytes, os.PathLike, torch.Tensor)) or not hasattr(data, "__iter__"):
        expected = "an iterable of (images, labels) batches, e.g. axhw.data.get_loader(...)"
        if tensor_ok:
            expected += " or one (B, C, H, W) image tensor"
        raise ArgumentTypeError(f"{where}: data must be {expected}, got {type(data).__name__}")


def _check_num_batches(num_batches: Any, where: str) -> None:
    if num_batches is None:
        return
    if isinstance(num_batches, bool) or not isinstance(num_batches, numbers.Integral):
        raise ArgumentTypeError(f"{where}: num_batches must be an int or None, got {type(num_batches).__name__}")
    if num_batches < 1:
        raise ConfigError(f"{where}: num_batches must be at least 1 (None: every batch), got {num_batches}")


def device_of(model: nn.Module) -> torch.device:
    """The device of the model's first parameter (CPU for a model without parameters)."""
    param = next(iter(model.parameters()), None)
    return param.device if param is not None else torch.device("cpu")


def calibrate(model: nn.Module, data: Any, *, num_batches: int | None = None, progress: bool = True) -> nn.Module:
    """Run calibration batches through a prepared model (float forward, observers record).

    Args:
        model: output of :func:`prepare`.
        data: an iterable of batches (``images`` or ``(images, labels)``, e.g. a
            DataLoader), or one image tensor ``(B, C, H, W)``.
        num_batches: use at most this many batches (``None``: all).
        progress: show a tqdm bar.

    Returns:
        ``model`` (calibrated in place).

    Raises:
        DataError: no batch was given, or a layer met NaN/Inf (the message names it).
    """
    check_model(model, "calibrate")
    check_batches(data, "calibrate", tensor_ok=True)
    _check_num_batches(num_batches, "calibrate")
    device = device_of(model)
    batches = _batches(data)
    total = num_batches if num_batches is not None else (len(batches) if hasattr(batches, "__len__") else None)
    was_training = model.training
    seen = 0
    model.eval()
    try:
        with torch.no_grad():
            for batch in tqdm(islice(batches, num_batches), total=total, desc="calibrate", unit="batch", disable=not progress):
                model(_images(batch).to(device))
                seen += 1
    finally:
        model.train(was_training)
    if not seen:
        raise DataError("calibration data is empty: pass a DataLoader or an image tensor with at least one batch")
    return model


def convert(model: nn.Module, inplace: bool = False) -> nn.Module:
    """Freeze the observed scales and switch every approximate op to the integer path.

    Args:
        model: a prepared and calibrated model.
        inplace: modify ``model`` instead of a deep copy.

    Returns:
        The converted model.  Operands whose observer saw no data (ops the
        calibration never ran) get scale 1.0 with a warning.
    """
    check_model(model, "convert")
    if not inplace:
        model = copy.deepcopy(model)
    missing: list[str] = []
    for name, op in _ax_ops(model):
        missing += [f"{name}:{label}" for label in op.freeze()]
    if missing:
        warnings.warn(
            f"{len(missing)} operand(s) saw no calibration data and use scale 1.0: {', '.join(missing[:6])}"
            + (" ..." if len(missing) > 6 else ""),
            stacklevel=2,
        )
    return model


def approximate(
    model: nn.Module,
    config: Config,
    calibration_data: Any,
    *,
    calibrator: Any = "percentile",
    backend: str = "auto",
    inplace: bool = False,
    exclude: Iterable[str] = DEFAULT_EXCLUDE,
    per_channel: bool = True,
    num_batches: int | None = None,
    progress: bool = True,
    device: str | torch.device | None = None,
) -> nn.Module:
    """Quantize ``model`` to int8 and route its products through the configured multipliers.

    ``prepare`` + ``calibrate`` + ``convert``; see those for the arguments.  With
    ``device="cuda"`` the approximate copy is built, calibrated and run on the GPU
    (calibration batches are moved there); ``model`` itself is not moved or changed.

    Example::

        ax = approximate(model, {"*": "exact", "blocks.1*": "drum_k4"}, calib_loader, num_batches=4)
        ax.axhw_config_["blocks.1.attn.qk"]   # 'drum_k4'
    """
    check_model(model, "approximate")
    check_batches(calibration_data, "approximate", tensor_ok=True)
    _check_num_batches(num_batches, "approximate")
    model = prepare(model, config, calibrator=calibrator, backend=backend, inplace=inplace, exclude=exclude, per_channel=per_channel, device=device)
    calibrate(model, calibration_data, num_batches=num_batches, progress=progress)
    return convert(model, inplace=True)


# ---------------------------------------------------------------------------- after conversion


def set_multipliers(model: nn.Module, config: Config, exclude: Iterable[str] = DEFAULT_EXCLUDE) -> nn.Module:
    """Re-assign multipliers of an approximated model in place, keeping its calibration.

    Calibration runs the float model, so the scales do not depend on the multipliers:
    the result equals ``approximate`` with the new config, without re-calibrating.
    Ops must keep their float/approximate status.

    Raises:
        ConfigError: the new config would approximate an op left in float, or leave
            an approximated op in float; see also :func:`resolve_config`.
    """
    check_model(model, "set_multipliers")
    table = resolve_config(model, config, exclude)
    ops = {}
    for name, mod in model.named_modules():
        if isinstance(mod, AxAttention):
            ops[f"{name}.qk"], ops[f"{name}.av"] = mod.qk, mod.av
        elif isinstance(mod, (AxLinear, AxConv2d)):
            ops[name] = mod
    for op, multiplier in table.items():
        mod = ops.get(op)
        is_float = mod is None or isinstance(mod, FloatMatmul)
        if is_float != (multiplier == FP32):
            state = "float" if is_float else "approximated"
            raise ConfigError(f"layer {op!r} is {state} in this model and cannot become {multiplier!r}; run approximate() again")
        if not is_float:
            mod.multiplier = multiplier
    model.axhw_config_ = table
    return model


def set_grad_mode(model: nn.Module, mode: str) -> nn.Module:
    """Set ``grad_mode`` (``"ste"`` or ``"lut"``) of every approximate op; returns ``model``."""
    check_model(model, "set_grad_mode")
    if mode not in GRAD_MODES:
        raise ConfigError(f"grad mode must be one of {', '.join(GRAD_MODES)}, got {mode!r}")
    for _, op in _ax_ops(model):
        op.grad_mode = mode
    return model


def set_backend(model: nn.Module, backend: str) -> nn.Module:
    """Set the kernel backend of every approximate op (``"fakequant"``: float reference); returns ``model``."""
    check_model(model, "set_backend")
    ops = _ax_ops(model)
    _check_backend(backend, [op.multiplier for _, op in ops])
    for _, op in ops:
        op.backend = backend
    return model


def evaluate(model: nn.Module, loader: Iterable[Any], device: str | torch.device | None = None, progress: bool = True) -> float:
    """Top-1 accuracy of ``model`` over ``(images, labels)`` batches, in [0, 1].

    Args:
        model: any classifier returning ``(B, classes)`` logits.
        loader: iterable of ``(images, labels)``.
        device: move the model there first (``None``: keep it where it is).
        progress: show a tqdm bar.

    Raises:
        DataError: the loader yields no image.
    """
    check_model(model, "evaluate")  # the caller's name in the message; correct_per_image checks again, cheaply
    check_batches(loader, "evaluate")
    from axhw.emulator.scoring import correct_per_image

    correct = correct_per_image(model, loader, device=device, progress=progress)
    return int(correct.sum()) / correct.size


#: Weight positions (processing elements) sampled per op by :func:`collect_operands`.
STREAM_PES = 8


def collect_operands(model: nn.Module, loader: Iterable[Any], max_pairs_per_op: int = 2048, seed: int = 0,
                     pes: int = STREAM_PES) -> dict[str, np.ndarray]:
    """Sample, per approximated op, the int8 operand stream one multiplier sees, in datapath order.

    Dataflow: weight-stationary.  Each product ``A @ B`` (``A``: activations,
    (batch, M, K); ``B``: weights or the second attention operand, (K, N) or
    (batch, K, N)) runs on multipliers that each hold one ``B[k, n]`` while the
    activations ``A[i, 0..M-1, k]`` stream past it, batch after batch (for Q·Kᵀ and
    A·V the held operand is reloaded per batch-head).  ``pes`` such (k, n)
    positions are drawn per op (seeded); each contributes the first
    ``max_pairs_per_op / pes`` pairs of its stream, consecutive as the hardware
    sees them, and the streams follow one another.  Order matters: switching
    activity, hence power, comes from consecutive pairs (:func:`axhw.hw.workload_cost`).

    Args:
        model: an approximated model (ops in ``"fp32"`` are skipped).
        loader: iterable of batches (``images`` or ``(images, labels)``); iteration
            stops once every op has its pairs.
        max_pairs_per_op: pairs returned per op (a few thousand keep costing cheap).
        seed: seed of the (k, n) positions; the same seed and data give the same pairs.
        pes: multiplier positions sampled per op.

    Returns:
        ``{op_name: int8 array (N, 2)}`` of ``(a, b)`` = (activation, held operand)
        codes in stream order, ``N <= max_pairs_per_op``.
    """
    check_model(model, "collect_operands")
    check_batches(loader, "collect_operands")
    if max_pairs_per_op < 2 or pes < 1:
        raise ConfigError(f"collect_operands needs max_pairs_per_op >= 2 and pes >= 1, got {max_pairs_per_op}, {pes}")
    generator = torch.Generator().manual_seed(seed)
    per_pe = max(1, -(-max_pairs_per_op // pes))
    positions: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    streams: dict[str, list[list[torch.Tensor]]] = {}

    def hook(op: AxOp, a: torch.Tensor, b: torch.Tensor, a_scale: torch.Tensor, b_scale: torch.Tensor, a_range: tuple[int, int], b_range: tuple[int, int]) -> None:
        a_q = quantize(a.detach(), a_scale.to(a.device), *a_range)
        b_q = quantize(b.detach(), b_scale.to(b.device), *b_range)
        M, K = a_q.shape[-2:]
        N = b_q.shape[-1]
        a_q, b_q = a_q.reshape(-1, M, K).cpu(), b_q.reshape(-1, K, N).cpu()
        if op.op_name not in positions:
            positions[op.op_name] = (torch.randint(K, (pes,), generator=generator),
                                     torch.randint(N, (pes,), generator=generator))
            streams[op.op_name] = [[] for _ in range(pes)]
        ks, ns = positions[op.op_name]
        for p, (k, n) in enumerate(zip(ks.tolist(), ns.tolist())):
            have = sum(len(c) for c in streams[op.op_name][p])
            if have >= per_pe:
                continue
            acts = a_q[:, :, k]                                          # (batch, M), time order i then m
            held = b_q[:, k, n].reshape(-1, 1).expand_as(acts)          # one held operand per batch row
            pairs = torch.stack([acts.reshape(-1), held.reshape(-1)], dim=1)
            streams[op.op_name][p].append(pairs[: per_pe - have])

    def complete() -> bool:
        return bool(streams) and all(sum(len(c) for c in pe) >= per_pe for pes_ in streams.values() for pe in pes_)

    ops = _ax_ops(model)
    if not ops:
        raise ConfigError("collect_operands needs an approximated model (see approximate())")
    device = device_of(model)
    was_training = model.training
    model.eval()
    for _, op in ops:
        op.operand_hook = hook
    try:
        with torch.no_grad():
            for batch in _batches(loader):
                model(_images(batch).to(device))
                if complete():
                    break
    finally:
        for _, op in ops:
            op.operand_hook = None
        model.train(was_training)
    result: dict[str, np.ndarray] = {}
    for name, pe_chunks in streams.items():
        pairs = torch.cat([torch.cat(chunks) for chunks in pe_chunks if chunks])
        result[name] = pairs[:max_pairs_per_op].numpy().astype(np.int8)
    return result


def compare_accuracy(
    model: nn.Module,
    config: Config,
    calibration_data: Any,
    loader: Iterable[Any],
    *,
    calibrator: Any = "percentile",
    backend: str = "auto",
    exclude: Iterable[str] = DEFAULT_EXCLUDE,
    num_batches: int | None = None,
    device: str | torch.device | None = None,
    progress: bool = True,
    per_image: bool = False,
) -> dict[str, Any]:
    """Top-1 of ``model`` in fp32, in int8 with the exact product, and with ``config``.

    The int8 model approximates the same ops as ``config`` with the exact multiplier;
    it is calibrated once and then re-assigned ``config`` with :func:`set_multipliers`
    (calibration does not depend on the multipliers), so both share their scales.

    Args:
        model: a float timm model (not modified).
        config, calibrator, backend, exclude, num_batches: as :func:`approximate`.
        calibration_data: as :func:`calibrate`.
        loader: ``(images, labels)`` batches to evaluate on.
        device: where to run (``None``: where ``model`` is).
        progress: show tqdm bars.
        per_image: return each model's per-image correctness (bool arrays in loader
            order, for intervals and paired drops, see :mod:`axhw.stats`) instead of top-1.

    Returns:
        ``{"fp32": top1, "int8": top1, "approx": top1}``, each in [0, 1]; with
        ``per_image`` the same keys hold bool arrays.
    """
    check_model(model, "compare_accuracy")
    check_batches(calibration_data, "compare_accuracy", tensor_ok=True)
    check_batches(loader, "compare_accuracy")
    _check_num_batches(num_batches, "compare_accuracy")
    target = resolve_device(device)
    table = resolve_config(model, config, exclude)
    approximated = {op: m for op, m in table.items() if m != FP32}
    model = copy.deepcopy(model)
    if target is not None:
        model.to(target)
    if per_image:
        from axhw.emulator.scoring import correct_per_image

        def score(net: nn.Module) -> Any:
            return correct_per_image(net, loader)
    else:
        def score(net: nn.Module) -> Any:
            return evaluate(net, loader, progress=progress)

    result = {"fp32": score(model)}
    exact = {op: EXACT for op in approximated}
    ax = approximate(model, exact or {}, calibration_data, calibrator=calibrator, backend=backend, inplace=True, exclude=exclude, num_batches=num_batches, progress=progress)
    result["int8"] = score(ax)
    if set(approximated.values()) <= {EXACT}:
        result["approx"] = result["int8"]
    else:
        set_multipliers(ax, approximated, exclude=exclude)
        result["approx"] = score(ax)
    return result
