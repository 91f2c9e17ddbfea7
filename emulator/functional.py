"""The one quantized matmul every approximate layer goes through.

``quantized_matmul(a, b, a_scale, b_scale, table)`` computes, for float operands
``a (..., M, K)`` and ``b (..., K, N)``::

    a_q = quantize(a, a_scale)                 # int8 codes (activations: a)
    b_q = quantize(b, b_scale)                 # int8 codes (weights / second operand: b)
    acc = kernels.lut_matmul(a_q, b_q, table)  # int32: acc[m, n] = sum_k LUT[a_q[m, k], b_q[k, n]]
    y   = acc * (a_scale * b_scale)            # float32 (float64 for float64 a), real units

The first operand is always the activation (for ``Q·Kᵀ`` the queries, for ``A·V``
the attention probabilities), so an asymmetric multiplier sees ``LUT[activation,
weight]`` everywhere.

Backward (``grad_mode``):

* ``"ste"`` (default): the straight-through estimator of quantization-aware
  training: ``round`` is treated as identity inside the code range and as a
  constant where the value was clipped, and the product as exact, so
  ``grad_a = (g @ b_deqᵀ) · [a not clipped]`` and ``grad_b = (a_deqᵀ @ g) · [b not clipped]``.
* ``"lut"``: the product's own slope, from
  :func:`axhw.emulator.gradients.lut_backward`, which returns gradients with
  respect to the integer codes for ``grad_out`` given per unit of the int32
  accumulator; they are divided by the operand scales (the STE of ``round``) and
  masked like ``"ste"``.

``b`` may also be given as its int8 codes (already quantized with ``b_scale``, e.g. a
layer's cached weight codes): it is then not quantized again and gets no gradient.

On the glue around the product: each operand is quantized once (the training path
takes the STE mask from the same rounded codes), scales are converted only when their
dtype or device differs, and the int32 accumulator is scaled in one multiply (int32 x
float promotes exactly as ``acc.to(float)`` would); nothing reads a value back to the
host.

Scales receive no gradient.  ``backend="fakequant"`` is the float reference the
emulator is tested against: ``fake_quantize(a) @ fake_quantize(b)`` as a float
matmul, meaningful only for the exact multiplier.  Float64 operands are emulated in
float64 throughout (scales promoted), which is how the end-to-end test compares.
"""

from __future__ import annotations

from typing import Any, Callable, Final

import torch

from axhw.emulator import kernels
from axhw.emulator.quantization import QUANT_MAX, QUANT_MIN, dequantize, quantize

__all__ = ["FAKE_QUANT", "GRAD_MODES", "quantized_matmul", "LutMatmulFunction"]

#: Pseudo-backend: float fake-quantization of the exact product (the test reference).
FAKE_QUANT: Final[str] = "fakequant"
#: Values of an approximate module's ``grad_mode``.
GRAD_MODES: Final[tuple[str, ...]] = ("ste", "lut")

QuantRange = tuple[int, int]
_SIGNED: Final[QuantRange] = (QUANT_MIN, QUANT_MAX)


def _sum_to(grad: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """Reduce a broadcast gradient back to ``shape`` (sums the broadcast dims)."""
    if grad.shape == shape:
        return grad
    lead = grad.dim() - len(shape)
    grad = grad.sum(dim=tuple(range(lead))) if lead > 0 else grad
    dims = tuple(i for i, (g, s) in enumerate(zip(grad.shape, shape)) if s == 1 and g != 1)
    return grad.sum(dim=dims, keepdim=True) if dims else grad


def _quantize_masked(x: torch.Tensor, scale: torch.Tensor, qrange: QuantRange) -> tuple[torch.Tensor, torch.Tensor]:
    """``(quantize(x, scale), mask)`` from one rounding: the codes and where quantization does not clip (the STE passes)."""
    codes = (x / scale).round_()
    mask = (codes >= qrange[0]) & (codes <= qrange[1])
    return codes.clamp_(*qrange).to(torch.int8), mask


def _codes(x: torch.Tensor, scale: torch.Tensor, qrange: QuantRange) -> torch.Tensor:
    """int8 codes of ``x``: quantized, or ``x`` itself when it already holds codes."""
    return x if x.dtype == torch.int8 else quantize(x, scale, *qrange)


def _lut_forward(a_q: torch.Tensor, b_q: torch.Tensor, scale: torch.Tensor, table: Any, backend: str) -> torch.Tensor:
    """The quantized product in real units: ``lut_matmul(a_q, b_q) * (a_scale * b_scale)``."""
    acc = kernels.lut_matmul(a_q, b_q, table, backend=backend)  # int32
    return torch.mul(acc, scale)  # int32 x float promotes like acc.to(float): same bits, one kernel


class LutMatmulFunction(torch.autograd.Function):
    """Autograd function of :func:`quantized_matmul` (see the module docstring)."""

    @staticmethod
    def forward(
        ctx: Any,
        a: torch.Tensor,
        b: torch.Tensor,
        a_scale: torch.Tensor,
        b_scale: torch.Tensor,
        table: Any,
        backend: str,
        grad_mode: str,
        grad_tables: Callable[[], Any] | None,
        a_range: QuantRange,
        b_range: QuantRange,
    ) -> torch.Tensor:
        a_q, a_mask = _quantize_masked(a, a_scale, a_range)
        b_q, b_mask = (b, None) if b.dtype == torch.int8 else _quantize_masked(b, b_scale, b_range)
        out = _lut_forward(a_q, b_q, a_scale * b_scale, table, backend)
        ctx.save_for_backward(a_q, b_q, a_scale, b_scale, a_mask, b_mask)
        ctx.grad_mode = grad_mode
        ctx.grad_tables = grad_tables
        ctx.shapes = (a.shape, b.shape)
        return out

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        a_q, b_q, a_scale, b_scale, a_mask, b_mask = ctx.saved_tensors
        a_shape, b_shape = ctx.shapes
        g = grad_out.to(a_scale.dtype)
        if ctx.grad_mode == "lut":
            from axhw.emulator.gradients import lut_backward

            grad_a_q, grad_b_q = lut_backward(g * (a_scale * b_scale), a_q, b_q, ctx.grad_tables())
            grad_a = _sum_to(grad_a_q / a_scale, a_shape) if ctx.needs_input_grad[0] else None
            grad_b = _sum_to(grad_b_q / b_scale, b_shape) if ctx.needs_input_grad[1] else None
        else:
            grad_a = _sum_to(g @ dequantize(b_q, b_scale).transpose(-2, -1), a_shape) if ctx.needs_input_grad[0] else None
            grad_b = _sum_to(dequantize(a_q, a_scale).transpose(-2, -1) @ g, b_shape) if ctx.needs_input_grad[1] else None
        grad_a = grad_a * a_mask if grad_a is not None else None
        grad_b = grad_b * b_mask if grad_b is not None and b_mask is not None else None
        return grad_a, grad_b, None, None, None, None, None, None, None, None


def quantized_matmul(
    a: torch.Tensor,
    b: torch.Tensor,
    a_scale: torch.Tensor,
    b_scale: torch.Tensor,
    table: Any,
    *,
    backend: str = "auto",
    grad_mode: str = "ste",
    grad_tables: Callable[[], Any] | None = None,
    a_range: QuantRange = _SIGNED,
    b_range: QuantRange = _SIGNED,
) -> torch.Tensor:
    """Multiply two float tensors through an int8 product table.

    Args:
        a: ``(..., M, K)`` float activations.
        b: ``(..., K, N)`` float second operand; leading dims equal to ``a``'s (or absent).
            An int8 ``b`` is taken as codes already quantized with ``b_scale`` and
            ``b_range`` (no gradient flows to it).
        a_scale: 0-d float32 scale of ``a`` (real units per code).
        b_scale: scale of ``b``: 0-d, or broadcastable to the output, e.g. ``(N,)`` per column.
        table: a :class:`~axhw.emulator.kernels.LutTable` from ``kernels.prepare_table``;
            ignored by ``backend="fakequant"``.
        backend: kernel name for ``kernels.lut_matmul`` (``"auto"``, ``"reference"``,
            ``"numba_cpu"``, ``"numba_cuda"``, ``"lowrank"``), or ``"fakequant"``.
        grad_mode: ``"ste"`` or ``"lut"`` (see the module docstring).
        grad_tables: zero-argument callable returning the ``GradTables`` of the
            multiplier; called only by a ``"lut"`` backward.
        a_range, b_range: code ranges of the operands; ``(0, 127)`` for softmax outputs.

    Returns:
        ``(..., M, N)`` product in real units: float64 when ``a`` is float64 (the
        scales are promoted too, so a float64 model is emulated in float64), else float32.
    """
    if grad_mode not in GRAD_MODES:
        raise ValueError(f"grad_mode must be one of {GRAD_MODES}, got {grad_mode!r}")
    dtype = torch.float64 if a.dtype == torch.float64 else torch.float32
    if a_scale.dtype != dtype or a_scale.device != a.device:
        a_scale = a_scale.to(device=a.device, dtype=dtype)
    if b_scale.dtype != dtype or b_scale.device != a.device:
        b_scale = b_scale.to(device=a.device, dtype=dtype)
    if backend == FAKE_QUANT:
        a_fq = dequantize(quantize(a, a_scale, *a_range), a_scale)
        b_fq = dequantize(_codes(b, b_scale, b_range), b_scale)
        return a_fq.to(dtype) @ b_fq.to(dtype)
    if torch.is_grad_enabled() and (a.requires_grad or b.requires_grad):
        return LutMatmulFunction.apply(a, b, a_scale, b_scale, table, backend, grad_mode, grad_tables, a_range, b_range)
    return _lut_forward(quantize(a, a_scale, *a_range), _codes(b, b_scale, b_range), a_scale * b_scale, table, backend)
