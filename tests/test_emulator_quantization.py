"""Quantizers and calibrators of axhw.emulator (symmetric narrow-range int8)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from axhw.emulator import (
    CALIBRATORS,
    EntropyCalibrator,
    MaxCalibrator,
    MSECalibrator,
    PercentileCalibrator,
    dequantize,
    fake_quantize,
    quantize,
    weight_scale,
)
from axhw.emulator.quantization import make_calibrator
from axhw.errors import ConfigError


@pytest.fixture
def gaussian() -> torch.Tensor:
    return torch.randn(20000, generator=torch.Generator().manual_seed(0))


def test_quantize_rounds_half_to_even_and_clips_to_narrow_range():
    x = torch.tensor([0.5, 1.5, -0.5, 126.6, 1000.0, -1000.0])
    assert quantize(x, 1.0).tolist() == [0, 2, 0, 127, 127, -127]
    assert quantize(x, 1.0).dtype == torch.int8
    assert quantize(torch.tensor([-3.0, 0.3, 2.0]), 0.5, 0, 127).tolist() == [0, 1, 4]
    assert torch.equal(fake_quantize(x, 0.25), dequantize(quantize(x, 0.25), 0.25))


def test_weight_scale_per_channel_and_per_tensor():
    w = torch.tensor([[1.0, -2.54], [0.0, 0.0], [0.5, 0.25]])
    per_channel = weight_scale(w)
    assert per_channel.shape == (3,)
    assert torch.allclose(per_channel, torch.tensor([2.54 / 127, torch.finfo(torch.float32).eps, 0.5 / 127]))
    assert torch.allclose(weight_scale(w, per_channel=False), torch.tensor(2.54 / 127))
    assert quantize(w, per_channel[:, None]).abs().amax(dim=1).tolist() == [127, 0, 127]


def test_max_calibrator_is_torch_ao_minmax(gaussian):
    cal = MaxCalibrator()
    assert isinstance(cal, torch.ao.quantization.MinMaxObserver)
    assert not cal.has_data and cal.calculate_scale() == cal.eps
    out = cal(gaussian[:100])
    assert out is gaussian[:100] or torch.equal(out, gaussian[:100])
    cal(gaussian[100:])
    assert torch.isclose(cal.calculate_scale(), gaussian.abs().max() / 127)
    cal.reset()
    assert not cal.has_data


@pytest.mark.parametrize("name", sorted(CALIBRATORS))
def test_calibrator_scale_is_sane_and_state_dict_round_trips(name, gaussian):
    cal = make_calibrator(name)
    for chunk in gaussian.split(4096):  # growing range: histograms re-bin
        cal(chunk * 1.0)
    scale = float(cal.calculate_scale())
    amax = float(gaussian.abs().max())
    assert 1.5 / 127 < scale <= amax / 127 * 1.001, (name, scale)
    clone = make_calibrator(name)
    clone.load_state_dict(cal.state_dict())
    assert float(clone.calculate_scale()) == pytest.approx(scale)
    assert name != "max" and "count" in repr(cal) or "amax" in repr(cal)
    cal.reset()
    assert not cal.has_data


def test_histogram_rebin_keeps_count_and_percentile_is_accurate(gaussian):
    cal = PercentileCalibrator(percentile=99.0)
    for chunk in gaussian.sort().values.abs().split(1000):  # increasing magnitudes: many re-bins
        cal(chunk)
    assert float(cal.histogram.sum()) == pytest.approx(gaussian.numel())
    expected = float(np.percentile(gaussian.abs().numpy(), 99.0))
    assert float(cal.calculate_scale()) * 127 == pytest.approx(expected, rel=0.02)


def test_entropy_and_percentile_clip_a_long_tail_and_mse_minimizes_error():
    rng = np.random.default_rng(1)
    body = rng.laplace(size=50000).astype(np.float32)
    x = torch.from_numpy(np.concatenate([body, [200.0]]))  # one far outlier
    scales = {}
    for cal in (MaxCalibrator(), MSECalibrator(), EntropyCalibrator(), PercentileCalibrator()):
        cal(x)
        scales[type(cal).__name__] = cal.calculate_scale()
    assert 2.0 / 127 < float(scales["EntropyCalibrator"]) < 100.0 / 127
    assert 2.0 / 127 < float(scales["PercentileCalibrator"]) < 100.0 / 127

    def mse(scale: torch.Tensor) -> float:
        return float(((fake_quantize(x, scale) - x) ** 2).mean())

    assert mse(scales["MSECalibrator"]) <= 1.01 * min(mse(s) for s in scales.values())


def test_all_zero_input_gives_eps_scale():
    for name in CALIBRATORS:
        cal = make_calibrator(name)
        cal(torch.zeros(10))
        assert float(cal.calculate_scale()) == pytest.approx(torch.finfo(torch.float32).eps)


def test_make_calibrator_rejects_unknown_and_copies_templates():
    with pytest.raises(ConfigError, match="unknown calibrator 'p99'.*percentile"):
        make_calibrator("p99")
    template = PercentileCalibrator(percentile=99.9)
    template(torch.ones(3))
    fresh = make_calibrator(template)
    assert fresh is not template and fresh.percentile == 99.9 and not fresh.has_data
    with pytest.raises(ValueError, match="percentile"):
        PercentileCalibrator(percentile=0)
