"""approximate() on the four timm models, config resolution, and bad input.

Done-when check: with the exact multiplier everywhere, the emulated model (int8 codes,
int32 LUT accumulation, dequantize) gives the same logits as the int8 fake-quant
reference (``backend="fakequant"``: quantize/dequantize in float, float matmul,
same scales).  Tolerances:

* **float64 end to end: relative 1e-12** (measured ~1e-15).  In float64 the
  reference's rounding (~1e-16 relative per product sum) can essentially never move a
  value across a rounding boundary of the next quantizer, so both models see the
  same int8 codes in every layer and differ only by float64 accumulation order.
* **float32 per op: relative 1e-5 of the output's max** (measured ~7e-7), each op fed
  the same inputs: float32 summation of K products in another order
  (~sqrt(K)·2^-24).  Float32 *end to end* is not a fair test: a ~1e-7 difference
  occasionally moves a value across a rounding boundary of the next quantizer
  (a 1-LSB code flip), and in randomly initialized deep models those flips multiply
  from layer to layer (measured: 0.3–3 % of max |logit| at 224 px).
"""

from __future__ import annotations

import copy
import re

import numpy as np
import pytest
import timm
import torch
from torch import nn

from axhw.emulator import (
    AxOp,
    OpInfo,
    approximate,
    calibrate,
    collect_operands,
    convert,
    evaluate,
    list_ops,
    prepare,
    quantize,
    resolve_config,
    set_backend,
    set_grad_mode,
    set_multipliers,
)
from axhw.emulator.scoring import correct_per_image
from axhw.errors import ArgumentTypeError, ConfigError, DatabaseError, DataError
from _emulator_doubles import APPROX, MUL4

#: (timm name, constructor overrides that shrink the model but keep every layer type, input side in
#: pixels): swin keeps a shifted-window block with its mask in the first two stages, gcvit keeps
#: local and global-query window attention and the MBConv/SE convolutions.
SMALL_MODELS = [
    ("vit_tiny_patch16_224", {"img_size": 32, "depth": 2}, 32),
    ("deit_tiny_patch16_224", {"img_size": 64, "depth": 2}, 64),
    ("swin_tiny_patch4_window7_224", {"img_size": 64, "window_size": 4, "depths": (2, 2, 1, 1)}, 64),
    ("gcvit_xxtiny", {"img_size": 96, "depths": (1, 1, 2, 1)}, 96),
]


def tiny_vit() -> nn.Module:
    torch.manual_seed(0)
    return timm.create_model("vit_tiny_patch16_224", pretrained=False, img_size=32, depth=2, num_classes=5).eval()


def _image(side: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(1, 3, side, side, generator=torch.Generator().manual_seed(seed))


def _create(name: str, overrides: dict) -> nn.Module:
    torch.manual_seed(0)
    if name == "gcvit_xxtiny" and "depths" in overrides:  # the registered builder fixes depths
        from timm.models.gcvit import GlobalContextVit

        return GlobalContextVit(num_heads=(2, 4, 8, 16), **overrides).eval()
    return timm.create_model(name, pretrained=False, **overrides).eval()


def _check_against_fake_quant(name: str, overrides: dict, side: int) -> None:
    model = _create(name, overrides)
    x = _image(side)
    ax = approximate(model, "exact", x, progress=False)
    ops = {op.name for op in list_ops(ax, input_size=(3, side, side))}
    assert {k for k, v in ax.axhw_config_.items() if v == "exact"} == {o for o in ops if not o.startswith("head")}
    kinds = {type(m).__name__ for m in ax.modules() if isinstance(m, AxOp)}
    assert {"AxLinear", "AxMatmul", "AxConv2d"} <= kinds

    # float32, op by op: every op fed the same input as its reference
    worst = []

    def compare(mod: AxOp, args: tuple, out: torch.Tensor) -> None:
        if mod.backend == "fakequant":
            return
        mod.backend = "fakequant"
        want = mod(*args)
        mod.backend = "auto"
        worst.append(float((out - want).abs().max() / want.abs().max().clamp_min(1e-30)))

    handles = [m.register_forward_hook(compare) for m in ax.modules() if isinstance(m, AxOp)]
    with torch.no_grad():
        ax(x)
    for handle in handles:
        handle.remove()
    assert len(worst) >= len([o for o in ops if not o.startswith("head")]) and max(worst) < 1e-5, max(worst)

    # float64, end to end
    reference = set_backend(copy.deepcopy(ax), "fakequant").double()
    ax = ax.double()
    with torch.no_grad():
        got, want = ax(x.double()), reference(x.double())
    assert float((got - want).abs().max() / want.abs().max()) < 1e-12


@pytest.mark.parametrize("name,overrides,side", SMALL_MODELS, ids=[m[0] for m in SMALL_MODELS])
def test_exact_multiplier_matches_int8_fake_quant_reference(name, overrides, side):
    _check_against_fake_quant(name, overrides, side)


@pytest.mark.slow
@pytest.mark.parametrize("name", [m[0] for m in SMALL_MODELS])
def test_exact_multiplier_matches_int8_fake_quant_reference_at_224(name):
    _check_against_fake_quant(name, {}, 224)


def test_layers_lists_every_op_with_macs_in_execution_order():
    model = timm.create_model("deit_tiny_patch16_224", pretrained=False)
    ops = list_ops(model)
    assert ops[:6] == [
        OpInfo("patch_embed.proj", "conv", 196 * 768 * 192),
        OpInfo("blocks.0.attn.qkv", "linear", 197 * 192 * 576),
        OpInfo("blocks.0.attn.qk", "qk", 3 * 197 * 197 * 64),
        OpInfo("blocks.0.attn.av", "av", 3 * 197 * 197 * 64),
        OpInfo("blocks.0.attn.proj", "linear", 197 * 192 * 192),
        OpInfo("blocks.0.mlp.fc1", "linear", 197 * 192 * 768),
    ]
    assert len(ops) == 1 + 12 * 6 + 1 and ops[-1] == OpInfo("head", "linear", 192 * 1000)
    assert sum(op.macs_per_image for op in ops) == pytest.approx(1.254e9, rel=1e-3)  # DeiT-Ti: 1.3 GMACs


def test_swin_window_products_count_all_windows():
    model = timm.create_model("swin_tiny_patch4_window7_224", pretrained=False)
    ops = {op.name: op for op in list_ops(model)}
    assert ops["layers.0.blocks.0.attn.qk"].macs_per_image == 64 * 49 * 49 * 96  # 64 windows of 49 tokens


def test_config_precedence_exclusion_and_stored_table(fake_library):
    model = tiny_vit()
    config = {"*": "exact", "blocks.1.*": APPROX, "blocks.1.attn.qk": "fp32"}
    ax = approximate(model, config, _image(32), progress=False)
    table = ax.axhw_config_
    assert table["blocks.0.mlp.fc1"] == "exact" and table["blocks.1.mlp.fc1"] == APPROX
    assert table["blocks.1.attn.qk"] == "fp32" and table["blocks.1.attn.av"] == APPROX
    assert table["head"] == "fp32" and type(ax.head) is nn.Linear
    assert type(ax.blocks[1].attn.qk).__name__ == "FloatMatmul"
    assert model.blocks[0].attn.qkv.__class__ is nn.Linear  # deep copy: the float model is untouched
    assert resolve_config(model, APPROX, exclude=())["head"] == APPROX


def test_ambiguous_config_is_an_error_naming_layer_and_patterns(fake_library):
    with pytest.raises(ConfigError, match=r"blocks.0.attn.qkv.*equally specific.*'blocks.0.\*'.*'\*.attn.qkv'|blocks.0.attn.qkv.*equally specific"):
        resolve_config(tiny_vit(), {"blocks.0.*": "exact", "*.attn.qkv": APPROX})
    # same multiplier from both: not ambiguous
    assert resolve_config(tiny_vit(), {"blocks.0.*": "exact", "*.attn.qkv": "exact"})["blocks.0.attn.qkv"] == "exact"


def test_pattern_matching_no_layer_suggests_close_names():
    with pytest.raises(ConfigError, match=r"'blocks.0.attn.qvk' matches no approximable layer; close names: .*blocks.0.attn.qkv"):
        resolve_config(tiny_vit(), {"blocks.0.attn.qvk": "exact"})
    with pytest.raises(ConfigError, match="only excluded layers.*exclude=()"):
        resolve_config(tiny_vit(), {"head": "exact"})
    assert resolve_config(tiny_vit(), {"head": "fp32", "*": "exact"})["head"] == "fp32"  # explicit and consistent


def test_unknown_multiplier_lists_available_names():
    with pytest.raises(DatabaseError, match="no_such_multiplier.*available"):
        approximate(tiny_vit(), {"*": "no_such_multiplier"}, _image(32), progress=False)


def test_non_8_bit_multiplier_is_rejected(fake_library):
    with pytest.raises(ConfigError, match=f"{MUL4}.*4x4-bit.*8x8-bit"):
        approximate(tiny_vit(), MUL4, _image(32), progress=False)


def test_model_without_approximable_layer_is_rejected():
    with pytest.raises(ConfigError, match="no approximable layer"):
        approximate(nn.Sequential(nn.ReLU(), nn.Flatten()), "exact", _image(8), progress=False)


def test_nan_during_calibration_names_the_layer():
    model = tiny_vit()
    with torch.no_grad():
        model.blocks[1].mlp.fc1.weight[0, 0] = float("nan")
    with pytest.raises(DataError, match=r"layer 'blocks.1.mlp.act|layer 'blocks.1.mlp.fc2'.*NaN.*calibration"):
        approximate(model, "exact", _image(32), progress=False)
    with pytest.raises(DataError, match=r"layer 'patch_embed.proj'.*Inf"):
        approximate(tiny_vit(), "exact", torch.full((1, 3, 32, 32), float("inf")), progress=False)


def test_empty_calibration_data_is_an_error():
    with pytest.raises(DataError, match="calibration data is empty"):
        approximate(tiny_vit(), "exact", [], progress=False)


def test_fakequant_backend_refuses_approximate_multipliers(fake_library):
    with pytest.raises(ConfigError, match="fakequant.*trunc4_test"):
        prepare(tiny_vit(), APPROX, backend="fakequant")


def test_state_dict_round_trips_a_calibrated_model(fake_library):
    model, x = tiny_vit(), _image(32)
    ax = approximate(model, {"*": "exact", "blocks.0.mlp.*": APPROX}, x, calibrator="entropy", progress=False)
    other = approximate(model, {"*": "exact", "blocks.0.mlp.*": APPROX}, _image(32, seed=5), calibrator="entropy", progress=False)
    with torch.no_grad():
        assert not torch.equal(other(x), ax(x))
        other.load_state_dict(ax.state_dict())
        torch.testing.assert_close(other(x), ax(x), rtol=0, atol=0)


def test_prepare_calibrate_convert_equals_approximate_and_set_multipliers(fake_library):
    model, x = tiny_vit(), _image(32)
    prepared = prepare(model, "exact", calibrator="max")
    assert all(op.calibrating for op in prepared.modules() if isinstance(op, AxOp))
    converted = convert(calibrate(prepared, [(x, torch.zeros(1))], progress=False))
    direct = approximate(model, {"*": APPROX}, x, calibrator="max", progress=False)
    set_multipliers(converted, {"*": APPROX})
    with torch.no_grad():
        torch.testing.assert_close(converted(x), direct(x), rtol=0, atol=0)
    assert converted.axhw_config_ == direct.axhw_config_
    with pytest.raises(ConfigError, match="already approximated"):
        prepare(converted, "exact")
    with pytest.raises(ConfigError, match="'head' is float"):
        set_multipliers(converted, "exact", exclude=())


def test_grad_modes_train_through_the_emulator():
    ax = approximate(tiny_vit(), "exact", _image(32), progress=False)
    for mode in ("ste", "lut"):
        set_grad_mode(ax, mode)
        ax.zero_grad()
        ax(_image(32)).sum().backward()
        grad = ax.blocks[0].attn.qkv.weight.grad
        assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0
    with pytest.raises(ConfigError, match="grad mode"):
        set_grad_mode(ax, "exact")


def test_collect_operands_samples_real_code_pairs():
    ax = approximate(tiny_vit(), "exact", _image(32), progress=False)
    loader = [(_image(32, seed=s), torch.zeros(1)) for s in range(2)]
    pairs = collect_operands(ax, loader, max_pairs_per_op=64, seed=3)
    assert set(pairs) == {k for k, v in ax.axhw_config_.items() if v != "fp32"}
    for name, p in pairs.items():
        assert p.dtype == np.int8 and p.shape == (64, 2) and np.abs(p.astype(int)).max() <= 127, name
    assert (pairs["blocks.0.attn.av"][:, 0] >= 0).all()  # softmax codes are unsigned
    again = collect_operands(ax, loader, max_pairs_per_op=64, seed=3)
    assert all(np.array_equal(pairs[k], again[k]) for k in pairs)


def test_collect_operands_keeps_the_weight_stationary_order():
    ax = approximate(tiny_vit(), "exact", _image(32), progress=False)
    images = _image(32, seed=5)
    seen = {}

    def record(op, a, b, a_scale, b_scale, a_range, b_range):
        seen[op.op_name] = (quantize(a, a_scale, *a_range), quantize(b, b_scale, *b_range))

    name = "blocks.0.mlp.fc1"
    op = dict(ax.named_modules())[name]
    op.operand_hook = record
    with torch.no_grad():
        ax(images)
    op.operand_hook = None
    a_q, b_q = seen[name]
    tokens = a_q.shape[-2]
    pairs = collect_operands(ax, [images], max_pairs_per_op=2 * tokens, seed=1, pes=2)[name].astype(np.int64)
    for pe in (pairs[:tokens], pairs[tokens:]):
        assert len(set(pe[:, 1].tolist())) == 1  # one weight held while the activations stream past it
        # the activations are one input column, token after token, as the datapath sees them
        columns = a_q.reshape(-1, a_q.shape[-1]).T.to(torch.int64).numpy()
        assert any(np.array_equal(pe[:, 0], col) for col in columns)


def test_evaluate_top1():
    model = tiny_vit()
    images = torch.randn(6, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        labels = model(images).argmax(-1)
    labels[:2] = (labels[:2] + 1) % 5
    assert evaluate(model, [(images[:4], labels[:4]), (images[4:], labels[4:])], progress=False) == pytest.approx(4 / 6)
    with pytest.raises(DataError, match="no image"):
        evaluate(model, [], progress=False)


def test_device_names_are_checked_before_any_work():
    model = tiny_vit()
    with pytest.raises(ConfigError, match="not a device name"):
        approximate(model, "exact", _image(32), device="gpu0", progress=False)
    with pytest.raises(ConfigError, match="runs on 'cpu' or 'cuda'"):
        approximate(model, "exact", _image(32), device="meta", progress=False)
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no usable CUDA GPU"):
            approximate(model, "exact", _image(32), device="cuda", progress=False)


def test_approximate_on_a_device_leaves_the_callers_model_alone():
    model = tiny_vit()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    device = "cuda" if torch.cuda.is_available() else "cpu"
    ax = approximate(model, "exact", _image(32), device=device, progress=False)
    assert all(p.device.type == "cpu" for p in model.parameters())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert not any(isinstance(m, AxOp) for m in model.modules())
    assert all(p.device.type == device for p in ax.parameters())
    with torch.no_grad():
        out = ax(_image(32).to(device))
    assert out.device.type == device and out.shape == (1, 5)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("multiplier", ["exact", APPROX])
def test_emulation_on_the_gpu_agrees_with_the_cpu(fake_library, multiplier):
    """Same calibration, same model: the GPU emulation (cuBLAS int8 / CUDA LUT kernel) matches the CPU one."""
    model = tiny_vit()
    images = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    cpu = approximate(model, multiplier, images, progress=False)
    gpu = copy.deepcopy(cpu).to("cuda")
    with torch.no_grad():
        want, got = cpu(images), gpu(images.cuda()).cpu()
    # float ops (LayerNorm, GELU, softmax) differ in the last bits between devices and can move a
    # value across a rounding boundary of the next quantizer: a few 1-LSB flips, not a wrong product
    assert float((got - want).abs().max()) <= 0.05 * float(want.abs().max()), (got, want)


@pytest.mark.parametrize("call, message", [
    (lambda m, x: approximate("deit_tiny_patch16_224", "exact", x), "approximate: model must be a torch nn.Module, got str; load"),
    (lambda m, x: list_ops(m.state_dict()), "list_ops: model must be a torch nn.Module, got OrderedDict"),
    (lambda m, x: approximate(m, "exact", None), "approximate: data must be an iterable of (images, labels) batches"),
    (lambda m, x: approximate(m, "exact", "data/calib"), "got str"),
    (lambda m, x: approximate(m, "exact", x, num_batches="4"), "num_batches must be an int or None, got str"),
    (lambda m, x: evaluate(m, 3), "evaluate: data must be an iterable"),
    (lambda m, x: correct_per_image(m, x), "correct_per_image: data must be an iterable"),
])
def test_python_api_type_mistakes_are_one_line_errors(call, message):
    # A wrong type fails before any work with the function's name and what it expected;
    # it is also a TypeError, so callers catching the built-in keep working.
    with pytest.raises(ArgumentTypeError, match=re.escape(message)) as info:
        call(tiny_vit(), _image(32))
    assert isinstance(info.value, TypeError) and "\n" not in str(info.value)


def test_num_batches_must_be_positive():
    with pytest.raises(ConfigError, match="num_batches must be at least 1"):
        approximate(tiny_vit(), "exact", _image(32), num_batches=0)
