"""The quantized matmul and the approximate layers, against independent float/numpy references."""

from __future__ import annotations

import copy
import importlib

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from timm.layers import Attention
from timm.models.gcvit import WindowAttentionGlobal
from timm.models.swin_transformer import WindowAttention
from torch import nn

from axhw.emulator import (
    ATTENTION_MAPPING,
    AxConv2d,
    AxLinear,
    exact_lut,
    fake_quantize,
    quantize,
    quantized_matmul,
    weight_scale,
)
from axhw.emulator.kernels import prepare_table
from axhw.testing import truncated_product
from _emulator_doubles import APPROX

ax_layers = importlib.import_module("axhw.emulator.layers")


def numpy_lut_matmul(a_q: np.ndarray, b_q: np.ndarray, lut: np.ndarray) -> np.ndarray:
    """Independent spec: out[..., m, n] = sum_k lut[a + 128, b + 128] (int64)."""
    ia = a_q.astype(np.int64)[..., :, :, None] + 128
    ib = b_q.astype(np.int64)[..., None, :, :] + 128
    return lut.astype(np.int64)[ia, ib].sum(axis=-2)


@pytest.mark.parametrize("backend", ["reference", "auto"])
def test_quantized_matmul_matches_numpy_lut_sum(backend):
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(3, 5, 7, generator=gen)
    b = torch.randn(3, 7, 4, generator=gen)
    a_scale, b_scale = torch.tensor(0.02), torch.rand(4, generator=gen) * 0.02 + 0.005  # per-column scales
    lut = truncated_product(4)
    got = quantized_matmul(a, b, a_scale, b_scale, prepare_table(lut), backend=backend)
    acc = numpy_lut_matmul(quantize(a, a_scale).numpy(), quantize(b, b_scale).numpy(), lut)
    want = torch.from_numpy(acc).float() * (a_scale * b_scale)
    torch.testing.assert_close(got, want, rtol=0, atol=0)


def test_softmax_operand_uses_unsigned_grid():
    p = torch.softmax(torch.randn(2, 4, 6), dim=-1)
    v = torch.randn(2, 6, 3)
    got = quantized_matmul(p, v, torch.tensor(1 / 127), torch.tensor(0.03), prepare_table(exact_lut()), a_range=(0, 127))
    want = fake_quantize(p, 1 / 127, 0, 127) @ fake_quantize(v, 0.03)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    assert quantize(p, 1 / 127, 0, 127).min() >= 0


def test_ste_backward_is_fake_quant_gradient_with_clipping_mask():
    gen = torch.Generator().manual_seed(1)
    a = (torch.randn(6, 8, generator=gen) * 2).requires_grad_()
    b = torch.randn(8, 5, generator=gen).requires_grad_()
    a_scale, b_scale = torch.tensor(0.01), weight_scale(b.detach().t())  # a clips (|a| > 1.27)
    g = torch.randn(6, 5, generator=gen)
    quantized_matmul(a, b, a_scale, b_scale, prepare_table(exact_lut())).backward(g)
    b_fq = fake_quantize(b.detach(), b_scale)
    a_fq = fake_quantize(a.detach(), a_scale)
    mask_a = (torch.round(a.detach() / a_scale).abs() <= 127).float()
    torch.testing.assert_close(a.grad, (g @ b_fq.t()) * mask_a)
    torch.testing.assert_close(b.grad, a_fq.t() @ g)
    assert (mask_a == 0).any() and (a.grad[mask_a == 0] == 0).all()


def test_lut_grad_mode_of_exact_multiplier_equals_ste():
    from axhw.emulator.gradients import gradient_tables

    gen = torch.Generator().manual_seed(2)
    a0, b0 = torch.randn(4, 6, generator=gen), torch.randn(6, 3, generator=gen)
    scales = (torch.tensor(0.02), torch.tensor(0.02))
    grads = {}
    for mode in ("ste", "lut"):
        a, b = a0.clone().requires_grad_(), b0.clone().requires_grad_()
        out = quantized_matmul(a, b, *scales, prepare_table(exact_lut()), grad_mode=mode, grad_tables=lambda: gradient_tables(exact_lut()))
        out.sum().backward()
        grads[mode] = (a.grad, b.grad)
    torch.testing.assert_close(grads["lut"][0], grads["ste"][0], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(grads["lut"][1], grads["ste"][1], rtol=1e-5, atol=1e-6)


def _calibrated(module: nn.Module, *inputs: torch.Tensor) -> nn.Module:
    module.calibrating = True
    module(*inputs)
    module.freeze()
    return module


def test_ax_linear_equals_linear_of_fake_quantized_operands():
    torch.manual_seed(0)
    lin = nn.Linear(12, 7)
    x = torch.randn(2, 5, 12)
    ax = _calibrated(AxLinear.from_float(lin, "exact", calibrator="max"), x)
    want = F.linear(fake_quantize(x, ax.input_scale), fake_quantize(lin.weight, weight_scale(lin.weight)[:, None]), lin.bias)
    torch.testing.assert_close(ax(x), want, rtol=1e-5, atol=1e-6)
    assert ax.weight is lin.weight and "multiplier=exact" in repr(ax)


def test_ax_linear_approximate_multiplier_matches_numpy(fake_library):
    torch.manual_seed(0)
    lin = nn.Linear(9, 4, bias=False)
    x = torch.randn(3, 9)
    ax = _calibrated(AxLinear.from_float(lin, APPROX, calibrator="max", per_channel=False), x)
    w_scale = weight_scale(lin.weight, per_channel=False)
    acc = numpy_lut_matmul(quantize(x, ax.input_scale).numpy(), quantize(lin.weight.detach().t(), w_scale).numpy(), truncated_product(4))
    torch.testing.assert_close(ax(x), torch.from_numpy(acc).float() * (ax.input_scale * w_scale), rtol=0, atol=0)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(in_channels=3, out_channels=8, kernel_size=4, stride=4),  # patch embedding
        dict(in_channels=4, out_channels=6, kernel_size=3, stride=2, padding=1, groups=2),
        dict(in_channels=6, out_channels=6, kernel_size=3, padding=1, groups=6, bias=False),  # depthwise
        dict(in_channels=3, out_channels=5, kernel_size=(3, 2), padding="same", dilation=2),
    ],
)
def test_ax_conv2d_equals_conv_of_fake_quantized_operands(kwargs):
    torch.manual_seed(0)
    conv = nn.Conv2d(**kwargs)
    x = torch.randn(2, kwargs["in_channels"], 9, 8)
    ax = _calibrated(AxConv2d.from_float(conv, "exact", calibrator="max"), x)
    w_fq = fake_quantize(conv.weight, weight_scale(conv.weight)[:, None, None, None])
    want = conv._conv_forward(fake_quantize(x, ax.input_scale), w_fq, conv.bias)
    got = ax(x)
    assert got.shape == want.shape
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_ax_linear_state_dict_round_trips_scales_observers_and_multiplier():
    torch.manual_seed(0)
    lin = nn.Linear(6, 3)
    x = torch.randn(4, 6)
    ax = _calibrated(AxLinear.from_float(lin, "exact", calibrator="percentile"), x)
    state = ax.state_dict()
    assert {"input_scale", "input_observer.histogram", "_extra_state"} <= set(state)
    fresh = AxLinear(6, 3, multiplier="exact")
    fresh.load_state_dict(state)
    torch.testing.assert_close(fresh(x), ax(x), rtol=0, atol=0)
    assert float(fresh.input_observer.calculate_scale()) == float(ax.input_scale)


def _float_attention(kind: type[nn.Module]) -> tuple[nn.Module, tuple]:
    torch.manual_seed(0)
    if kind is Attention:
        return Attention(16, num_heads=2, qkv_bias=True), (torch.randn(2, 5, 16),)
    if kind is WindowAttention:
        mod = WindowAttention(16, num_heads=2, window_size=2)
        mask = torch.zeros(2, 4, 4)
        mask[1, :2, 2:] = mask[1, 2:, :2] = -100.0  # shifted-window style mask
        return mod, (torch.randn(4, 4, 16), mask)
    mod = WindowAttentionGlobal(16, num_heads=2, window_size=(2, 2))
    return mod, (torch.randn(4, 4, 16), torch.randn(2, 4, 16))  # 2 images x 2 windows, global queries


@pytest.mark.parametrize("kind", list(ATTENTION_MAPPING), ids=lambda k: k.__name__)
def test_attention_with_fp32_products_equals_timm_forward(kind):
    """Bias, masks, global queries and head layout are kept: float products reproduce timm exactly."""
    mod, inputs = _float_attention(kind)
    mod.eval()
    if hasattr(mod, "fused_attn"):
        mod.fused_attn = False
    want = mod(*inputs)
    ax = ATTENTION_MAPPING[kind].from_float(copy.deepcopy(mod), "fp32", "fp32")
    assert isinstance(ax, kind) and set(dict(ax.named_parameters())) == set(dict(mod.named_parameters()))
    torch.testing.assert_close(ax(*inputs), want, rtol=1e-6, atol=1e-6)


def _tiled_global_query_forward(self, x, q_global=None):
    """``WindowAttentionGlobal.forward`` of older timm releases: global queries tiled with ``repeat``."""
    B, N, C = x.shape
    if self.use_global and q_global is not None:
        kv = self.qkv(x).reshape(B, N, 2, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        k, v = kv.unbind(0)
        q = q_global.repeat(B // q_global.shape[0], 1, 1, 1)
        q = q.reshape(B, N, self.num_heads, self.head_dim).permute(0, 2, 1, 3)
    else:
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
    attn = self.rel_pos((q * self.scale) @ k.transpose(-2, -1)).softmax(dim=-1)
    x = (self.attn_drop(attn) @ v).transpose(1, 2).reshape(B, N, C)
    return self.proj_drop(self.proj(x))


@pytest.mark.parametrize("older_timm", [False, True], ids=["installed", "older"])
def test_gcvit_port_follows_the_installed_timm_pairing(monkeypatch, older_timm):
    """Older timm tiles the global queries over windows, newer interleaves them: the port matches either."""
    if older_timm:
        monkeypatch.setattr(WindowAttentionGlobal, "forward", _tiled_global_query_forward)
    ax_layers._timm_interleaves_global_queries.cache_clear()
    try:
        mod, inputs = _float_attention(WindowAttentionGlobal)
        mod.eval()
        ax = ATTENTION_MAPPING[WindowAttentionGlobal].from_float(copy.deepcopy(mod), "fp32", "fp32")
        state = torch.random.get_rng_state()
        got = ax(*inputs)  # the first forward probes the installed timm
        assert torch.equal(torch.random.get_rng_state(), state)  # the probe leaves the caller's RNG alone
        torch.testing.assert_close(got, mod(*inputs), rtol=1e-6, atol=1e-6)
        if older_timm:
            assert ax_layers._timm_interleaves_global_queries() is False
    finally:
        ax_layers._timm_interleaves_global_queries.cache_clear()


@pytest.mark.parametrize("kind", list(ATTENTION_MAPPING), ids=lambda k: k.__name__)
def test_attention_products_go_through_the_table(kind, fake_library):
    mod, inputs = _float_attention(kind)
    ax = ATTENTION_MAPPING[kind].from_float(mod.eval(), "exact", APPROX, calibrator="max")
    ax.qk.calibrating = ax.av.calibrating = True
    ax(*inputs)
    ax.qk.freeze(), ax.av.freeze()
    seen = []
    ax.av.operand_hook = lambda op, a, b, *rest: seen.append((op.kind, a.min().item() >= 0))
    exact_out = ATTENTION_MAPPING[kind].from_float(mod, "exact", "exact", calibrator="max")
    exact_out.load_state_dict({k: v for k, v in ax.state_dict().items() if "extra_state" not in k}, strict=False)
    out = ax(*inputs)
    assert seen == [("av", True)]
    assert ax.av.multiplier == APPROX and float(ax.av.a_scale) == pytest.approx(1 / 127)
    assert exact_out.av.multiplier == "exact"
    assert not torch.allclose(out, exact_out(*inputs))
    exact_out.load_state_dict(ax.state_dict())  # the multiplier travels in the extra state
    assert exact_out.av.multiplier == APPROX


def test_weight_codes_are_cached_until_the_weight_changes(fake_library):
    """Inference re-uses the weight's codes and scale; an in-place update (optimizer step, load) recomputes them."""
    torch.manual_seed(0)
    lin = nn.Linear(9, 5)
    x = torch.randn(4, 9)
    ax = _calibrated(AxLinear.from_float(lin, APPROX, calibrator="max"), x)

    def reference() -> torch.Tensor:
        w_scale = weight_scale(lin.weight)
        acc = numpy_lut_matmul(quantize(x, ax.input_scale).numpy(), quantize(lin.weight.detach().t(), w_scale).numpy(), truncated_product())
        return torch.from_numpy(acc).float() * (ax.input_scale * w_scale) + lin.bias.detach()

    with torch.no_grad():
        first = ax(x)
        codes = ax._weight_cache[1]
        torch.testing.assert_close(ax(x), first, rtol=0, atol=0)
        assert ax._weight_cache[1] is codes  # not recomputed
        torch.testing.assert_close(first, reference(), rtol=0, atol=0)
        lin.weight.mul_(-0.5)  # shared with ax: an in-place update bumps the version
        second = ax(x)
    assert ax._weight_cache[1] is not codes
    torch.testing.assert_close(second, reference(), rtol=0, atol=0)
    out = ax(x)  # grad enabled and the weight trains: quantized afresh, gradient reaches it
    out.sum().backward()
    assert lin.weight.grad is not None and lin.weight.grad.abs().sum() > 0
    torch.testing.assert_close(out.detach(), second, rtol=0, atol=0)


def test_conv_weight_codes_cached_per_group(fake_library):
    torch.manual_seed(1)
    conv = nn.Conv2d(4, 6, 3, padding=1, groups=2)
    x = torch.randn(2, 4, 5, 5)
    ax = _calibrated(AxConv2d.from_float(conv, "exact", calibrator="max"), x)
    with torch.no_grad():
        cached = ax(x)
        assert ax._weight_cache is not None
        ax._weight_key = None  # force the uncached path
        ax._weight_cache = None
        with torch.enable_grad():
            fresh = ax(x)
    torch.testing.assert_close(cached, fresh.detach(), rtol=0, atol=0)


def test_forward_makes_no_host_sync_and_few_copies():
    """One inference forward reads nothing back to the host and converts no scale or weight."""
    from torch.profiler import ProfilerActivity, profile

    torch.manual_seed(0)
    lin = nn.Linear(16, 8)
    x = torch.randn(3, 16)
    ax = _calibrated(AxLinear.from_float(lin, "exact", calibrator="max"), x)
    with torch.no_grad():
        ax(x)  # fills the weight cache
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            ax(x)
    calls = {e.key: e.count for e in prof.key_averages()}
    assert calls.get("aten::_local_scalar_dense", 0) == 0 and calls.get("aten::item", 0) == 0
    assert calls.get("aten::copy_", 0) <= 2, calls  # the activation's int8 cast; nothing for weights or scales
    assert "aten::abs" not in calls and "aten::amax" not in calls  # no weight scale recomputed
