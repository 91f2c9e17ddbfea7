"""axhw.emulator: int8 quantization and approximate-multiplier emulation of timm ViTs.

Typical use::

    from axhw.emulator import approximate, evaluate, list_ops

    ops = list_ops(model)                                 # [OpInfo(name, kind, macs_per_image)]
    ax = approximate(model, {"*": "exact", "blocks.3.*": "drum_k4"}, calib_loader, num_batches=4)
    top1 = evaluate(ax, test_loader)
"""

from axhw.emulator.conversion import (
    DEFAULT_EXCLUDE,
    OpInfo,
    approximate,
    calibrate,
    collect_operands,
    compare_accuracy,
    convert,
    evaluate,
    list_ops,
    load_config,
    model_input_size,
    prepare,
    resolve_config,
    resolve_device,
    set_backend,
    set_grad_mode,
    set_multipliers,
)
from axhw.emulator.functional import FAKE_QUANT, quantized_matmul
from axhw.emulator.layers import (
    ATTENTION_MAPPING,
    EXACT,
    FP32,
    AxAttention,
    AxConv2d,
    AxGcvitWindowAttention,
    AxLinear,
    AxMatmul,
    AxOp,
    AxSwinWindowAttention,
    AxVitAttention,
    exact_lut,
    load_lut,
)
from axhw.emulator.finetune import RetrainResult, model_fingerprint, retrain
from axhw.emulator.retraining import RetrainedModel, RetrainReport, load_retrained, retrain_config
from axhw.emulator.quantization import (
    CALIBRATORS,
    Calibrator,
    EntropyCalibrator,
    MaxCalibrator,
    MSECalibrator,
    PercentileCalibrator,
    dequantize,
    fake_quantize,
    quantize,
    weight_scale,
)

__all__ = [
    "ATTENTION_MAPPING",
    "AxAttention",
    "AxConv2d",
    "AxGcvitWindowAttention",
    "AxLinear",
    "AxMatmul",
    "AxOp",
    "AxSwinWindowAttention",
    "AxVitAttention",
    "CALIBRATORS",
    "Calibrator",
    "DEFAULT_EXCLUDE",
    "EXACT",
    "EntropyCalibrator",
    "FAKE_QUANT",
    "FP32",
    "MSECalibrator",
    "MaxCalibrator",
    "OpInfo",
    "PercentileCalibrator",
    "RetrainReport",
    "RetrainResult",
    "approximate",
    "calibrate",
    "collect_operands",
    "compare_accuracy",
    "convert",
    "dequantize",
    "evaluate",
    "exact_lut",
    "fake_quantize",
    "list_ops",
    "load_config",
    "load_lut",
    "load_retrained",
    "model_fingerprint",
    "model_input_size",
    "prepare",
    "quantize",
    "quantized_matmul",
    "resolve_config",
    "resolve_device",
    "retrain",
    "retrain_config",
    "RetrainedModel",
    "set_backend",
    "set_grad_mode",
    "set_multipliers",
    "weight_scale",
]
