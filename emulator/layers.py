"""Approximate layers: int8 Linear, Conv2d and attention whose products go through a LUT.

Every layer reads ``observe → quantize → kernels.lut_matmul → dequantize (+ bias)``
and multiplies through one helper, :meth:`AxOp._matmul`
(:func:`~axhw.emulator.functional.quantized_matmul`), with the activation as the
first operand ``a`` and the weight (or second activation) as ``b``:

* :class:`AxLinear`: ``y = x @ Wᵀ + bias``; ``x`` per tensor, ``W`` per output channel.
* :class:`AxConv2d`: the same GEMM over unfolded patches (``F.unfold``), one GEMM per
  group; zero padding only (``padding_mode="zeros"``).
* :class:`AxMatmul`: a product of two activations, used twice by every attention:
  ``qk`` computes ``(q · scale) @ kᵀ`` (both per tensor) and ``av`` computes
  ``softmax @ v``, with the probabilities on the fixed unsigned grid
  ``round(p · 127)`` in 0..127, scale 1/127 (no calibration needed).
* :class:`AxAttention` subclasses, one per timm attention type, re-use the float
  module's parameters and helpers and differ only in how they form ``q, k, v`` and
  the score bias: :class:`AxVitAttention` (``timm.layers.Attention``, ViT/DeiT;
  masks kept), :class:`AxSwinWindowAttention` (Swin ``WindowAttention``; relative
  position bias and shift mask kept) and :class:`AxGcvitWindowAttention` (GCViT
  ``WindowAttentionGlobal``; relative position bias and global queries kept).
  They always take the unfused path, since fused SDPA hides both products.

Each layer starts *calibrating* (float forward, observers record the inputs) after
:func:`~axhw.emulator.conversion.prepare`; :meth:`AxOp.freeze` (called by ``convert``)
copies the observers' scales into buffers and switches to the integer path.
Observers and scales are buffers and the multiplier name is the module's extra
state, so ``state_dict()`` round-trips a calibrated model.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, ClassVar, Final

import numpy as np
import torch
import torch.nn.functional as F
from timm.layers import Attention
from timm.layers.attention import maybe_add_mask, resolve_self_attn_mask
from timm.models.gcvit import WindowAttentionGlobal
from timm.models.swin_transformer import WindowAttention
from torch import nn

from axhw import exact
from axhw.errors import ConfigError, DataError
from axhw.exact import EXACT

from axhw.emulator import kernels
from axhw.emulator.functional import FAKE_QUANT, GRAD_MODES, quantized_matmul
from axhw.emulator.quantization import (
    QUANT_MAX,
    QUANT_MIN,
    SOFTMAX_SCALE,
    Calibrator,
    make_calibrator,
    quantize,
    weight_scale,
)

__all__ = [
    "EXACT",
    "FP32",
    "exact_lut",
    "load_lut",
    "AxOp",
    "AxLinear",
    "AxConv2d",
    "AxMatmul",
    "FloatMatmul",
    "AxAttention",
    "AxVitAttention",
    "AxSwinWindowAttention",
    "AxGcvitWindowAttention",
    "ATTENTION_MAPPING",
]

#: Config value that leaves an op in float32.
FP32: Final[str] = "fp32"

CalibratorSpec = str | type[Calibrator] | Calibrator
_SIGNED: Final[tuple[int, int]] = (QUANT_MIN, QUANT_MAX)
_UNSIGNED: Final[tuple[int, int]] = (0, QUANT_MAX)


@functools.cache
def exact_lut() -> np.ndarray:
    """The exact signed table of :func:`axhw.exact.exact_lut` (``lut[a + 128, b + 128] = a · b``), read-only.

    Cached because every exact layer shares it; read-only so that no caller can
    change the table the others see.
    """
    lut = exact.exact_lut(signed=True)
    lut.setflags(write=False)
    return lut


def load_lut(name: str) -> np.ndarray:
    """The 256×256 signed-index product table of multiplier ``name``.

    ``"exact"`` is computed (no database needed); other names come from
    ``axhw.library.load(name).lut``.

    Raises:
        DatabaseError: unknown name (the message lists the available ones).
        ConfigError: ``"fp32"`` (not a multiplier), the database is not installed,
            or the multiplier is not an 8×8-bit design.
    """
    if name == EXACT:
        return exact_lut()
    if name == FP32:
        raise ConfigError("'fp32' leaves a layer in float; it has no product table")
    from axhw import library
    multiplier = library.load(name)
    ports = getattr(multiplier, "ports", None)
    widths = (getattr(ports, "a_width", 8), getattr(ports, "b_width", 8))
    lut = np.asarray(multiplier.lut)
    if widths != (8, 8) or lut.shape != (256, 256):
        raise ConfigError(
            f"multiplier {name!r} is {widths[0]}x{widths[1]}-bit (table {tuple(lut.shape)}); the emulator "
            "quantizes to int8 and needs an 8x8-bit multiplier with a 256x256 table"
        )
    return lut


@functools.lru_cache(maxsize=256)
def _cached_lut(name: str) -> np.ndarray:
    """:func:`load_lut`, once per name per process (the database is read-only while running)."""
    lut = np.ascontiguousarray(load_lut(name), dtype=np.int32)
    lut.setflags(write=False)
    return lut


@functools.lru_cache(maxsize=64)
def _prepared_table(name: str) -> Any:
    return kernels.prepare_table(_cached_lut(name))


@functools.lru_cache(maxsize=64)
def _grad_tables(name: str) -> Any:
    from axhw.emulator.gradients import gradient_tables

    return gradient_tables(_cached_lut(name))


class AxOp(nn.Module):
    """Behaviour shared by every approximate op: multiplier, backend, grad mode, calibration.

    Attributes:
        multiplier: name of the multiplier (``"exact"`` or a database name).
        backend: kernel backend passed to ``kernels.lut_matmul`` (``"auto"`` picks per
            device and multiplier), or ``"fakequant"`` for the float reference.
        grad_mode: ``"ste"`` or ``"lut"`` (see :mod:`axhw.emulator.functional`).
        calibrating: ``True`` between ``prepare`` and ``convert``: forward runs in
            float and the observers record the inputs.
        op_name: qualified op name in the model, used in error messages.
        operand_hook: ``None``, or ``f(op, a, b, a_scale, b_scale, a_range, b_range)``
            called before every integer product (used by ``collect_operands``).
    """

    kind: ClassVar[str] = ""

    def _init_ax(self, multiplier: str, backend: str, grad_mode: str) -> None:
        if grad_mode not in GRAD_MODES:
            raise ConfigError(f"grad_mode must be one of {', '.join(GRAD_MODES)}, got {grad_mode!r}")
        self.multiplier = multiplier
        self.backend = backend
        self.grad_mode = grad_mode
        self.calibrating = False
        self.op_name = ""
        self.operand_hook: Callable[..., None] | None = None
        _cached_lut(multiplier)  # resolve the name now: unknown / non-8-bit names fail here

    @property
    def table(self) -> Any:
        """The prepared ``LutTable`` of :attr:`multiplier` (shared by every op using it)."""
        return _prepared_table(self.multiplier)

    def _grad_tables(self) -> Any:
        return _grad_tables(self.multiplier)

    def _observe(self, observer: nn.Module, x: torch.Tensor, operand: str) -> None:
        if not bool(torch.isfinite(x).all()):
            bad = "NaN" if bool(torch.isnan(x).any()) else "Inf"
            raise DataError(
                f"layer {self.op_name or type(self).__name__!r}: {bad} in its {operand} during calibration; "
                "check the calibration images (normalization, corrupt files) and the model weights"
            )
        observer(x)

    def _matmul(
        self,
        a: torch.Tensor,
        b: torch.Tensor,
        a_scale: torch.Tensor,
        b_scale: torch.Tensor,
        a_range: tuple[int, int] = _SIGNED,
        b_range: tuple[int, int] = _SIGNED,
        b_codes: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``a @ b`` through the multiplier: the one product every approximate layer uses.

        ``b_codes``: int8 codes of ``b`` already quantized with ``b_scale`` (cached weight
        codes), used instead of quantizing ``b`` again; hooks still see the float ``b``.
        """
        if self.operand_hook is not None:
            self.operand_hook(self, a, b, a_scale, b_scale, a_range, b_range)
        table = None if self.backend == FAKE_QUANT else self.table
        return quantized_matmul(
            a,
            b if b_codes is None else b_codes,
            a_scale,
            b_scale,
            table,
            backend=self.backend,
            grad_mode=self.grad_mode,
            grad_tables=self._grad_tables,
            a_range=a_range,
            b_range=b_range,
        )

    @staticmethod
    def _frozen_scale(observer: Calibrator, missing: list[str], label: str) -> torch.Tensor:
        if not observer.has_data:
            missing.append(label)
            return torch.tensor(1.0)
        return observer.calculate_scale()

    def freeze(self) -> list[str]:  # pragma: no cover - abstract
        """Copy the observers' scales into buffers and switch to the integer path.

        Returns:
            Labels of operands whose observer saw no data (their scale is set to 1.0).
        """
        raise NotImplementedError

    def get_extra_state(self) -> dict[str, Any]:
        return {"multiplier": self.multiplier}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        name = state.get("multiplier", self.multiplier)
        if name != self.multiplier:
            _cached_lut(name)
            self.multiplier = name

    def _ax_repr(self) -> str:
        return f"multiplier={self.multiplier}, backend={self.backend}, grad_mode={self.grad_mode}" + (
            ", calibrating" if self.calibrating else ""
        )


class _WeightedAxOp(AxOp):
    """An approximate op with a float weight and one calibrated input (Linear, Conv2d)."""

    def _adopt(self, mod: nn.Module) -> "_WeightedAxOp":
        """Share ``mod``'s weight and bias and copy its train/eval mode; returns ``self``."""
        self.weight = mod.weight
        self.bias = mod.bias
        self.train(mod.training)
        return self

    def _init_weighted(self, multiplier: str, calibrator: CalibratorSpec, backend: str, per_channel: bool, grad_mode: str, device: Any) -> None:
        """Set up the approximate state: multiplier settings, the input observer and its frozen scale."""
        self._init_ax(multiplier, backend, grad_mode)
        self.per_channel = per_channel
        self.input_observer = make_calibrator(calibrator)
        self.register_buffer("input_scale", torch.tensor(1.0, device=device))
        self._weight_key: tuple[Any, ...] | None = None
        self._weight_cache: tuple[torch.Tensor, torch.Tensor] | None = None

    def _gemm_weight(self, weight: torch.Tensor, w_scale: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # pragma: no cover - abstract
        """The weight as the GEMM's ``b`` operand and its scale broadcast to the output."""
        raise NotImplementedError

    def _weight_operand(self, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """``(b, b_scale, b_codes)``: the float weight operand, its scale, and its int8 codes.

        The scale (``max|w| / 127``) and the codes depend only on the weight, so they are
        computed once and kept (on the weight's device) until the weight changes: the key
        is its version counter (bumped by every in-place update: optimizer steps,
        ``load_state_dict``), storage, device and dtype.  While the weight takes gradients
        ``b_codes`` is ``None`` and the product quantizes ``b`` itself (the STE needs it).
        Writes through ``weight.data`` bypass the version counter (as they bypass autograd);
        after such a write, reset ``_weight_key`` to ``None``.
        """
        weight = self.weight
        cacheable = not (torch.is_grad_enabled() and weight.requires_grad) and not weight.is_inference()
        key = (weight._version, weight.data_ptr(), weight.device, weight.dtype, dtype, self.per_channel) if cacheable else None
        if key is not None and key == self._weight_key and self._weight_cache is not None:
            scale, codes = self._weight_cache
            return self._gemm_weight(weight, scale)[0], scale, codes
        w_scale = weight_scale(weight, self.per_channel).to(dtype)
        b, b_scale = self._gemm_weight(weight, w_scale)
        if key is None:
            return b, b_scale, None
        with torch.inference_mode(False), torch.no_grad():  # plain tensors, usable by a later backward
            codes = quantize(b.detach(), b_scale).contiguous()
        self._weight_key, self._weight_cache = key, (b_scale, codes)
        return b, b_scale, codes

    def _add_bias(self, y: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        """``y + bias``, in place when no gradient is recorded (``y`` is a fresh product)."""
        if bias is None:
            return y
        return y + bias if y.requires_grad or bias.requires_grad and torch.is_grad_enabled() else y.add_(bias)

    def freeze(self) -> list[str]:
        missing: list[str] = []
        self.input_scale.copy_(self._frozen_scale(self.input_observer, missing, "input"))
        self.calibrating = False
        return missing

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, {self._ax_repr()}, per_channel={self.per_channel}"


class AxLinear(_WeightedAxOp, nn.Linear):
    """``nn.Linear`` whose products go through an int8 multiplier.

    Input quantized per tensor (scale from the calibrator), weight per output channel
    (``max|w| / 127``, recomputed from the current weight every forward, so it tracks
    retraining), int32 accumulation, float32 bias added after dequantization.

    Args:
        in_features, out_features, bias: as ``nn.Linear``.
        multiplier: multiplier name (``"exact"`` or a database name).
        calibrator: activation calibrator name, class or template instance.
        backend: kernel backend (``"auto"`` by default).
        per_channel: per-output-channel weight scales if ``True``, else one per tensor.
        grad_mode: ``"ste"`` or ``"lut"``.
    """

    kind: ClassVar[str] = "linear"

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        multiplier: str = EXACT,
        calibrator: CalibratorSpec = "percentile",
        backend: str = "auto",
        per_channel: bool = True,
        grad_mode: str = "ste",
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__(in_features, out_features, bias=bias, device=device, dtype=dtype)
        self._init_weighted(multiplier, calibrator, backend, per_channel, grad_mode, device)

    @classmethod
    def from_float(cls, mod: nn.Linear, multiplier: str, **kwargs: Any) -> "AxLinear":
        """An ``AxLinear`` sharing ``mod``'s weight and bias (keyword args as the constructor)."""
        new = cls(mod.in_features, mod.out_features, bias=mod.bias is not None, multiplier=multiplier, device=mod.weight.device, **kwargs)
        return new._adopt(mod)

    def _gemm_weight(self, weight: torch.Tensor, w_scale: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return weight.t(), w_scale  # (in, out); per-channel scales are per column

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.calibrating:
            self._observe(self.input_observer, x, "input")
            return F.linear(x, self.weight, self.bias)
        b, b_scale, b_codes = self._weight_operand(torch.float64 if x.dtype == torch.float64 else torch.float32)
        y = self._matmul(x.reshape(-1, self.in_features), b, self.input_scale, b_scale, b_codes=b_codes)
        y = y.reshape(*x.shape[:-1], self.out_features)
        return self._add_bias(y if y.dtype == x.dtype else y.to(x.dtype), self.bias)


def _conv_padding(conv: nn.Conv2d) -> tuple[int, int, int, int]:
    """Explicit ``(left, right, top, bottom)`` zero padding of a Conv2d (``"same"`` resolved)."""
    kh, kw = conv.kernel_size
    dh, dw = conv.dilation
    if conv.padding == "valid":
        return 0, 0, 0, 0
    if conv.padding == "same":
        th, tw = dh * (kh - 1), dw * (kw - 1)
        return tw // 2, tw - tw // 2, th // 2, th - th // 2
    ph, pw = conv.padding
    return pw, pw, ph, ph


class AxConv2d(_WeightedAxOp, nn.Conv2d):
    """``nn.Conv2d`` computed as a GEMM over unfolded patches through an int8 multiplier.

    For input ``x (B, C, H, W)`` with ``G`` groups, patches ``(B, C·kh·kw, L)`` from
    ``F.unfold`` are regrouped to ``a (G, B·L, C/G·kh·kw)`` and multiplied by the
    weight ``b (G, C/G·kh·kw, O/G)``; output ``(B, O, H', W')``.  Quantization as
    :class:`AxLinear`.  Only zero padding is supported.

    Args:
        in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias:
            as ``nn.Conv2d``.
        multiplier, calibrator, backend, per_channel, grad_mode: as :class:`AxLinear`.
    """

    kind: ClassVar[str] = "conv"

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] | str = 0,
        dilation: int | tuple[int, int] = 1,
        groups: int = 1,
        bias: bool = True,
        multiplier: str = EXACT,
        calibrator: CalibratorSpec = "percentile",
        backend: str = "auto",
        per_channel: bool = True,
        grad_mode: str = "ste",
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=padding, dilation=dilation, groups=groups, bias=bias, device=device, dtype=dtype)
        self._init_weighted(multiplier, calibrator, backend, per_channel, grad_mode, device)

    @classmethod
    def from_float(cls, mod: nn.Conv2d, multiplier: str, **kwargs: Any) -> "AxConv2d":
        """An ``AxConv2d`` sharing ``mod``'s weight and bias (keyword args as the constructor)."""
        if mod.padding_mode != "zeros":
            raise ConfigError(f"Conv2d with padding_mode={mod.padding_mode!r} cannot be approximated (zeros only)")
        new = cls(
            mod.in_channels, mod.out_channels, mod.kernel_size, stride=mod.stride, padding=mod.padding,
            dilation=mod.dilation, groups=mod.groups, bias=mod.bias is not None, multiplier=multiplier,
            device=mod.weight.device, **kwargs,
        )
        return new._adopt(mod)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.calibrating:
            self._observe(self.input_observer, x, "input")
            return self._conv_forward(x, self.weight, self.bias)
        B, C, H, W = x.shape
        G, O = self.groups, self.out_channels
        kh, kw = self.kernel_size
        left, right, top, bottom = _conv_padding(self)
        if left or right or top or bottom:
            x = F.pad(x, (left, right, top, bottom))
        out_h = (x.shape[2] - self.dilation[0] * (kh - 1) - 1) // self.stride[0] + 1
        out_w = (x.shape[3] - self.dilation[1] * (kw - 1) - 1) // self.stride[1] + 1
        cols = F.unfold(x, (kh, kw), dilation=self.dilation, stride=self.stride)  # B, C*kh*kw, L
        L = cols.shape[-1]
        a = cols.reshape(B, G, -1, L).permute(1, 0, 3, 2).reshape(G, B * L, -1)  # G, B*L, K/G
        if G == 1:
            a = a[0]
        b, b_scale, b_codes = self._weight_operand(torch.float64 if x.dtype == torch.float64 else torch.float32)
        y = self._matmul(a, b, self.input_scale, b_scale, b_codes=b_codes)  # (G,) B*L, O/G
        y = y.reshape(G, B, L, O // G).permute(1, 0, 3, 2).reshape(B, O, out_h, out_w)
        return self._add_bias(y if y.dtype == x.dtype else y.to(x.dtype), None if self.bias is None else self.bias.reshape(1, O, 1, 1))

    def _gemm_weight(self, weight: torch.Tensor, w_scale: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        G, O = self.groups, self.out_channels
        b = weight.reshape(G, O // G, -1).transpose(1, 2)  # G, K/G, O/G
        w_scale = w_scale.reshape(G, 1, O // G) if self.per_channel else w_scale
        if G == 1:
            b, w_scale = b[0], w_scale[0] if self.per_channel else w_scale
        return b, w_scale


class AxMatmul(AxOp):
    """``a @ b`` of two activations through an int8 multiplier (attention ``Q·Kᵀ`` or ``A·V``).

    Both operands are quantized per tensor.  With ``probabilities=True`` the first
    operand is a softmax output in ``[0, 1]`` on the fixed grid ``round(p · 127)``
    (codes 0..127, scale 1/127) and is not observed.

    Args:
        multiplier, calibrator, backend, grad_mode: as :class:`AxLinear`.
        probabilities: ``a`` is a softmax output (the ``A`` of ``A·V``).
        kind: op kind reported by ``layers()`` (``"qk"`` or ``"av"``).
    """

    def __init__(
        self,
        multiplier: str = EXACT,
        calibrator: CalibratorSpec = "percentile",
        backend: str = "auto",
        probabilities: bool = False,
        grad_mode: str = "ste",
        kind: str = "qk",
    ) -> None:
        super().__init__()
        self._init_ax(multiplier, backend, grad_mode)
        self.kind = kind
        self.probabilities = probabilities
        self.a_observer = nn.Identity() if probabilities else make_calibrator(calibrator)
        self.b_observer = make_calibrator(calibrator)
        self.register_buffer("a_scale", torch.tensor(SOFTMAX_SCALE if probabilities else 1.0))
        self.register_buffer("b_scale", torch.tensor(1.0))

    def freeze(self) -> list[str]:
        missing: list[str] = []
        if not self.probabilities:
            self.a_scale.copy_(self._frozen_scale(self.a_observer, missing, "a"))
        self.b_scale.copy_(self._frozen_scale(self.b_observer, missing, "b"))
        self.calibrating = False
        return missing

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        if self.calibrating:
            if not self.probabilities:
                self._observe(self.a_observer, a, "first operand")
            self._observe(self.b_observer, b, "second operand")
            return a @ b
        a_range = _UNSIGNED if self.probabilities else _SIGNED
        return self._matmul(a, b, self.a_scale, self.b_scale, a_range=a_range).to(a.dtype)

    def extra_repr(self) -> str:
        return f"kind={self.kind}, {self._ax_repr()}" + (", probabilities" if self.probabilities else "")


class FloatMatmul(nn.Module):
    """``a @ b`` in float: the attention product of an op configured as ``"fp32"``."""

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a @ b


class AxAttention(nn.Module):
    """Base of approximate timm attentions: ``q, k, v -> softmax(q·scale @ kᵀ + bias) @ v``.

    A subclass inherits from both this class and one timm attention class, and is
    built by :meth:`from_float`, which adopts the float module's parameters, buffers,
    sub-modules and attributes (so parameter names and every other method, e.g.
    Swin's ``set_window_size``, are unchanged) and adds the products ``qk`` and ``av``
    (:class:`AxMatmul`, or :class:`FloatMatmul` for ``"fp32"``).  Subclasses write
    only ``forward``: form ``q, k, v`` and the score bias, call :meth:`attend`.
    """

    float_type: ClassVar[type[nn.Module]]
    qk: nn.Module
    av: nn.Module

    @classmethod
    def from_float(
        cls,
        mod: nn.Module,
        qk: str,
        av: str,
        calibrator: CalibratorSpec = "percentile",
        backend: str = "auto",
        grad_mode: str = "ste",
    ) -> "AxAttention":
        """An approximate copy of timm attention ``mod`` sharing its parameters.

        Args:
            mod: a module of type :attr:`float_type`.
            qk, av: multiplier names of ``Q·Kᵀ`` and ``A·V`` (or ``"fp32"``).
            calibrator, backend, grad_mode: as :class:`AxLinear`.
        """
        if type(mod) is not cls.float_type:
            raise TypeError(f"{cls.__name__}.from_float expects {cls.float_type.__name__}, got {type(mod).__name__}")
        new = cls.__new__(cls)
        nn.Module.__init__(new)
        persistent = {k for k in mod.state_dict(keep_vars=True) if "." not in k}
        for name, value in vars(mod).items():
            if not name.startswith("_"):
                setattr(new, name, value)
        for name, param in mod.named_parameters(recurse=False):
            new.register_parameter(name, param)
        for name, buf in mod.named_buffers(recurse=False):
            new.register_buffer(name, buf, persistent=name in persistent)
        for name, child in mod.named_children():
            new.add_module(name, child)
        options = {"calibrator": calibrator, "backend": backend, "grad_mode": grad_mode}
        new.qk = FloatMatmul() if qk == FP32 else AxMatmul(qk, kind="qk", **options)
        new.av = FloatMatmul() if av == FP32 else AxMatmul(av, kind="av", probabilities=True, **options)
        device = next(iter(mod.parameters())).device
        return new.to(device)

    def attend(
        self,
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        add_bias: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """``softmax(q · scale @ kᵀ + bias) @ v`` with both products through the multipliers.

        Args:
            q, k, v: ``(B, H, N, D)`` (``k`` may have its own ``N``).
            add_bias: adds the variant's score bias / mask to ``(B, H, N, N)`` scores.

        Returns:
            ``(B, H, N, D)`` attention output.
        """
        attn = self.qk(q * self.scale, k.transpose(-2, -1))  # B, H, N, N
        if add_bias is not None:
            attn = add_bias(attn)
        attn = attn.softmax(dim=-1)
        attn = self.attn_drop(attn)
        return self.av(attn, v)  # B, H, N, D

    @staticmethod
    def merge_heads(x: torch.Tensor) -> torch.Tensor:
        """``(B, H, N, D) -> (B, N, H·D)``."""
        B, H, N, D = x.shape
        return x.transpose(1, 2).reshape(B, N, H * D)


class AxVitAttention(AxAttention, Attention):
    """Approximate ``timm.layers.Attention`` (ViT, DeiT): q/k norms, masks and gate (timm >= 1.0.28) kept."""

    float_type = Attention

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None = None, is_causal: bool = False) -> torch.Tensor:
        B, N, C = x.shape
        gate_layer = getattr(self, "gate", None)  # timm >= 1.0.28
        gate = gate_layer(x).sigmoid() if gate_layer is not None else None
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)  # B, H, N, D
        q, k = self.q_norm(q), self.k_norm(k)

        def add_mask(attn: torch.Tensor) -> torch.Tensor:
            return maybe_add_mask(attn, resolve_self_attn_mask(N, attn, attn_mask, is_causal))

        x = self.merge_heads(self.attend(q, k, v, add_mask))
        x = self.norm(x)
        if gate is not None:
            x = x * gate
        x = self.proj(x)
        return self.proj_drop(x)


class AxSwinWindowAttention(AxAttention, WindowAttention):
    """Approximate Swin ``WindowAttention``: relative position bias and shift mask kept."""

    float_type = WindowAttention

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        B_, N, C = x.shape
        qkv = self.qkv(x).reshape(B_, N, 3, self.num_heads, -1).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)  # num_windows*B, H, N, D

        def add_bias(attn: torch.Tensor) -> torch.Tensor:
            attn = attn + self._get_rel_pos_bias()
            if mask is not None:
                num_win = mask.shape[0]
                attn = attn.view(-1, num_win, self.num_heads, N, N) + mask.unsqueeze(1).unsqueeze(0)
                attn = attn.view(-1, self.num_heads, N, N)
            return attn

        x = self.merge_heads(self.attend(q, k, v, add_bias))
        x = self.proj(x)
        return self.proj_drop(x)


class AxGcvitWindowAttention(AxAttention, WindowAttentionGlobal):
    """Approximate GCViT ``WindowAttentionGlobal``: global queries and relative position bias kept.

    timm changed how the global queries of a batch meet its windows (image-major
    ``repeat_interleave`` in newer releases, ``repeat`` before); the port pairs them as
    the installed timm does (:func:`_timm_interleaves_global_queries`).
    """

    float_type = WindowAttentionGlobal

    def forward(self, x: torch.Tensor, q_global: torch.Tensor | None = None) -> torch.Tensor:
        return self._forward(x, q_global, _timm_interleaves_global_queries())

    def _forward(self, x: torch.Tensor, q_global: torch.Tensor | None, interleave: bool) -> torch.Tensor:
        B, N, C = x.shape
        if self.use_global and q_global is not None:
            if x.shape[-1] != q_global.shape[-1]:
                raise ValueError("x and q_global must have the same channel count")
            kv = self.qkv(x).reshape(B, N, 2, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
            k, v = kv.unbind(0)
            copies = B // q_global.shape[0]
            # newer timm: windows are image-major, each image's global query stays with its windows
            q = q_global.repeat_interleave(copies, dim=0) if interleave else q_global.repeat(copies, 1, 1, 1)
            q = q.reshape(B, N, self.num_heads, self.head_dim).permute(0, 2, 1, 3)
        else:
            qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
            q, k, v = qkv.unbind(0)  # B, H, N, D
        x = self.merge_heads(self.attend(q, k, v, self.rel_pos))
        x = self.proj(x)
        return self.proj_drop(x)


@functools.cache
def _timm_interleaves_global_queries() -> bool:
    """Whether the installed timm's ``WindowAttentionGlobal`` pairs global queries image-major.

    Probed once: a small float module (built under a forked RNG, so the caller's random
    state is untouched) runs on 2 images x 2 windows, and the port with float products
    is compared with it in both pairings.

    Raises:
        RuntimeError: neither pairing reproduces the installed timm (an unsupported version).
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        mod = WindowAttentionGlobal(8, num_heads=2, window_size=(2, 2)).eval()
        x, q_global = torch.randn(4, 4, 8), torch.randn(2, 4, 8)
    port = AxGcvitWindowAttention.from_float(mod, FP32, FP32).eval()
    with torch.no_grad():
        want = mod(x, q_global)
        for interleave in (True, False):
            if torch.allclose(port._forward(x, q_global, interleave), want, rtol=1e-5, atol=1e-6):
                return interleave
    raise RuntimeError(f"the installed timm's WindowAttentionGlobal pairs global queries with windows in neither known way; {__name__} needs updating")


#: timm attention type -> its approximate subclass (looked up by exact type).
ATTENTION_MAPPING: Final[dict[type[nn.Module], type[AxAttention]]] = {
    cls.float_type: cls for cls in (AxVitAttention, AxSwinWindowAttention, AxGcvitWindowAttention)
}

