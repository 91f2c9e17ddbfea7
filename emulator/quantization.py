"""Symmetric int8 quantization: quantizer functions and activation calibrators.

Conventions (used by every approximate layer):

* **Symmetric, narrow range.** A real value ``x`` maps to
  ``q = clamp(round(x / scale), -127, 127)`` and back to ``q * scale``; the zero
  point is always 0.  The narrow range keeps ``|q| <= 127`` so that operands are
  symmetric around zero and never hit ``-128``, whose magnitude sign-magnitude
  multiplier designs cannot represent.  ``round`` is round-half-to-even.
* **Weights per output channel, activations per tensor.**  Weight scales are
  ``max|w| / 127`` per output channel (:func:`weight_scale`; per tensor on request).
  Activation scales come from a calibrator (below) observing real inputs.
* **Softmax outputs** (the ``A`` of ``A·V``) lie in ``[0, 1]`` and use the fixed
  unsigned grid ``q = round(p · 127)`` in ``0..127`` with ``scale = 1/127``
  (:data:`SOFTMAX_SCALE`); they need no calibration.

Calibrators follow the ``torch.ao.quantization`` observer pattern: ``forward(x)``
records statistics into buffers and returns ``x`` unchanged,
:meth:`Calibrator.calculate_scale` turns them into a scale (floored at ``eps``),
:meth:`Calibrator.reset` forgets them, and the buffers travel with ``.to(device)``
and ``state_dict()``.

* :class:`MaxCalibrator` *is* ``torch.ao``'s :class:`~torch.ao.quantization.MinMaxObserver`
  configured for symmetric narrow-range int8 (re-used, not re-written).
* :class:`PercentileCalibrator`, :class:`MSECalibrator` and :class:`EntropyCalibrator`
  share one fixed-size histogram of ``|x|`` (:class:`HistogramCalibrator`).
  ``torch.ao``'s ``HistogramObserver`` is not re-used for them: it histograms the
  signed values and searches an *affine* ``[min, max]`` range for a fixed L2 proxy,
  with no percentile or KL criterion; symmetric int8 needs the distribution of
  ``|x|`` and a threshold search over it.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import torch
from torch import nn
from torch.ao.quantization import MinMaxObserver

__all__ = [
    "QUANT_MIN",
    "QUANT_MAX",
    "SOFTMAX_SCALE",
    "quantize",
    "dequantize",
    "fake_quantize",
    "weight_scale",
    "Calibrator",
    "MaxCalibrator",
    "HistogramCalibrator",
    "PercentileCalibrator",
    "MSECalibrator",
    "EntropyCalibrator",
    "CALIBRATORS",
    "make_calibrator",
]

#: Smallest and largest int8 code used for signed operands (narrow range).
QUANT_MIN: Final[int] = -127
QUANT_MAX: Final[int] = 127
#: Fixed scale of softmax probabilities: ``p`` in [0, 1] -> ``round(p * 127)`` in 0..127.
SOFTMAX_SCALE: Final[float] = 1.0 / 127.0
_EPS: Final[float] = float(torch.finfo(torch.float32).eps)


def quantize(x: torch.Tensor, scale: torch.Tensor | float, quant_min: int = QUANT_MIN, quant_max: int = QUANT_MAX) -> torch.Tensor:
    """Quantize a float tensor to int8 codes: ``clamp(round(x / scale), quant_min, quant_max)``.

    Args:
        x: real values (any float dtype, any shape).
        scale: real value of one code step; a scalar, or a tensor broadcastable to ``x``
            (e.g. shape ``(N,)`` for per-column weight scales).
        quant_min, quant_max: code range (default the signed narrow range -127..127;
            softmax probabilities use 0..127).

    Returns:
        ``torch.int8`` tensor of the same shape as ``x``.
    """
    codes = x / scale  # a new tensor: rounded and clipped in place
    return codes.round_().clamp_(quant_min, quant_max).to(torch.int8)


def dequantize(q: torch.Tensor, scale: torch.Tensor | float) -> torch.Tensor:
    """Real value of int8 codes: ``q * scale``, in the scale's dtype (float32 for a Python float)."""
    dtype = scale.dtype if isinstance(scale, torch.Tensor) and scale.is_floating_point() else torch.float32
    return q.to(dtype) * scale


def fake_quantize(x: torch.Tensor, scale: torch.Tensor | float, quant_min: int = QUANT_MIN, quant_max: int = QUANT_MAX) -> torch.Tensor:
    """``dequantize(quantize(x, scale))``: the float value int8 quantization leaves of ``x``."""
    return dequantize(quantize(x, scale, quant_min, quant_max), scale)


def weight_scale(weight: torch.Tensor, per_channel: bool = True, eps: float = _EPS) -> torch.Tensor:
    """Symmetric weight scale ``max|w| / 127``, per output channel (dim 0) or per tensor.

    Weights are known in full, so the scale is computed directly rather than by an
    observer.  An all-zero channel gets the floor ``eps`` (its codes are all 0).

    Args:
        weight: ``(out_features, ...)`` float weight of a Linear or Conv layer.
        per_channel: one scale per output channel if ``True``, else one for the tensor.
        eps: smallest scale returned.

    Returns:
        Tensor of shape ``(out_channels,)``, or 0-d when per tensor; float64 for a
        float64 weight, else float32.
    """
    w = weight.detach()
    w = w if w.dtype == torch.float64 else w.to(torch.float32)
    amax = w.abs().flatten(1).amax(dim=1) if per_channel else w.abs().amax()
    return torch.clamp(amax / QUANT_MAX, min=eps)


class Calibrator(nn.Module):
    """Base of activation calibrators: observe tensors, then give one per-tensor scale.

    Subclasses implement :meth:`forward` (record statistics, return the input),
    :meth:`calculate_scale` and :meth:`reset`.  :attr:`has_data` tells whether
    anything was observed.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def calculate_scale(self) -> torch.Tensor:  # pragma: no cover - abstract
        """Scale (real value per int8 step) as a 0-d float32 tensor, at least ``eps``."""
        raise NotImplementedError

    def reset(self) -> None:  # pragma: no cover - abstract
        """Forget every observation."""
        raise NotImplementedError

    @property
    def has_data(self) -> bool:  # pragma: no cover - abstract
        raise NotImplementedError


class MaxCalibrator(MinMaxObserver, Calibrator):
    """Scale ``max|x| / 127`` over everything observed.

    This is ``torch.ao``'s :class:`~torch.ao.quantization.MinMaxObserver` with
    ``qscheme=torch.per_tensor_symmetric``, ``quant_min=-127``, ``quant_max=127``,
    whose scale is ``max(-min, max) / ((127 - (-127)) / 2)``.  Before any
    observation, and when everything observed is 0, the scale is ``eps``.
    """

    def __init__(self, eps: float = _EPS) -> None:
        super().__init__(
            dtype=torch.qint8,
            qscheme=torch.per_tensor_symmetric,
            quant_min=QUANT_MIN,
            quant_max=QUANT_MAX,
            eps=eps,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.numel():
            super().forward(x.detach().to(torch.float32))
        return x

    def calculate_scale(self) -> torch.Tensor:
        if not self.has_data:
            return self.eps.reshape(()).clone()
        scale, _ = self.calculate_qparams()
        return scale.reshape(()).to(torch.float32)

    def reset(self) -> None:
        self.reset_min_max_vals()

    @property
    def has_data(self) -> bool:
        return bool(torch.isfinite(self.min_val)) and bool(torch.isfinite(self.max_val))

    def extra_repr(self) -> str:
        return f"amax={max(-float(self.min_val), float(self.max_val)) if self.has_data else None}"


class HistogramCalibrator(Calibrator):
    """Fixed-size histogram of ``|x|`` over ``[0, range_max]``, grown as needed.

    When a batch exceeds ``range_max``, the range becomes that batch's ``max|x|``
    and the old counts are re-binned by linear interpolation of their cumulative
    distribution (counts inside a bin are taken as uniformly spread), so the
    histogram keeps ``bins`` entries and its total count.

    Buffers: ``histogram`` (``bins`` float64 counts) and ``range_max`` (upper edge).
    Before any observation, and when everything observed is 0, the scale is ``eps``.

    Args:
        bins: number of histogram bins.
        eps: smallest scale returned.
    """

    def __init__(self, bins: int = 2048, eps: float = _EPS) -> None:
        super().__init__()
        self.bins = bins
        self.eps = eps
        self.register_buffer("histogram", torch.zeros(bins, dtype=torch.float64))
        self.register_buffer("range_max", torch.tensor(0.0, dtype=torch.float64))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not x.numel():
            return x
        values = x.detach().abs().to(torch.float32).flatten()
        batch_max = float(values.max())
        if batch_max > float(self.range_max):
            self._rebin(batch_max)
        hist = torch.histc(values, bins=self.bins, min=0.0, max=float(self.range_max)) if float(self.range_max) > 0 else None
        if hist is None:  # everything observed so far is exactly 0
            self.histogram[0] += values.numel()
        else:
            self.histogram += hist.to(self.histogram)
        return x

    def _rebin(self, new_max: float) -> None:
        old = self.histogram.cpu().numpy()
        old_max = float(self.range_max)
        if old.sum() > 0 and old_max > 0:
            old_edges = np.linspace(0.0, old_max, self.bins + 1)
            new_edges = np.linspace(0.0, new_max, self.bins + 1)
            cdf = np.concatenate([[0.0], np.cumsum(old)])
            new = np.diff(np.interp(new_edges, old_edges, cdf))
        else:
            new = np.zeros(self.bins)
            new[0] = old.sum()
        self.histogram.copy_(torch.from_numpy(new))
        self.range_max.fill_(new_max)

    @property
    def has_data(self) -> bool:
        return bool(self.histogram.sum() > 0)

    def reset(self) -> None:
        self.histogram.zero_()
        self.range_max.zero_()

    def calculate_scale(self) -> torch.Tensor:
        if not self.has_data or float(self.range_max) <= 0:
            return torch.tensor(self.eps, dtype=torch.float32)
        amax = self._threshold(self.histogram.cpu().numpy(), float(self.range_max))
        return torch.tensor(max(amax / QUANT_MAX, self.eps), dtype=torch.float32)

    def _threshold(self, hist: np.ndarray, range_max: float) -> float:  # pragma: no cover - abstract
        """Clipping threshold ``amax`` (real units) chosen from the ``|x|`` histogram."""
        raise NotImplementedError

    def extra_repr(self) -> str:
        return f"bins={self.bins}, range_max={float(self.range_max):.4g}, count={float(self.histogram.sum()):.0f}"


class PercentileCalibrator(HistogramCalibrator):
    """Clip at the ``percentile``-th percentile of ``|x|``: ``scale = P_p(|x|) / 127``.

    The percentile is read from the histogram's cumulative distribution with linear
    interpolation inside a bin (resolution ``range_max / bins``).

    Args:
        percentile: in (0, 100]; 100 gives ``max|x|`` up to bin resolution.
        bins, eps: see :class:`HistogramCalibrator`.
    """

    def __init__(self, percentile: float = 99.99, bins: int = 2048, eps: float = _EPS) -> None:
        super().__init__(bins=bins, eps=eps)
        if not 0.0 < percentile <= 100.0:
            raise ValueError(f"percentile must be in (0, 100], got {percentile}")
        self.percentile = percentile

    def _threshold(self, hist: np.ndarray, range_max: float) -> float:
        edges = np.linspace(0.0, range_max, self.bins + 1)
        cdf = np.concatenate([[0.0], np.cumsum(hist)]) / hist.sum()
        target = self.percentile / 100.0
        index = int(np.searchsorted(cdf, target, side="left"))
        if index <= 0:
            return float(edges[0])
        if index > self.bins:
            return range_max
        lo, hi = cdf[index - 1], cdf[index]
        frac = 1.0 if hi <= lo else (target - lo) / (hi - lo)
        return float(edges[index - 1] + frac * (edges[index] - edges[index - 1]))

    def extra_repr(self) -> str:
        return f"percentile={self.percentile}, " + super().extra_repr()


class MSECalibrator(HistogramCalibrator):
    """Threshold minimizing the mean squared quantization error of ``|x|``.

    For candidate thresholds ``t`` (``num_candidates`` evenly spaced in
    ``(0, range_max]``), with ``s = t / 127`` and bin centres ``c_i`` holding counts
    ``n_i``, the error is ``sum_i n_i (c_i - s · clamp(round(c_i / s), 0, 127))²``
    (rounding error inside the range, clipping error beyond it); the smallest wins.

    Args:
        num_candidates: number of thresholds tried.
        bins, eps: see :class:`HistogramCalibrator`.
    """

    def __init__(self, num_candidates: int = 512, bins: int = 2048, eps: float = _EPS) -> None:
        super().__init__(bins=bins, eps=eps)
        self.num_candidates = num_candidates

    def _threshold(self, hist: np.ndarray, range_max: float) -> float:
        width = range_max / self.bins
        centres = (np.arange(self.bins) + 0.5) * width
        thresholds = np.linspace(range_max / self.num_candidates, range_max, self.num_candidates)
        scales = thresholds[:, None] / QUANT_MAX
        codes = np.clip(np.round(centres[None, :] / scales), 0, QUANT_MAX)
        error = ((centres[None, :] - codes * scales) ** 2 * hist[None, :]).sum(axis=1)
        return float(thresholds[int(np.argmin(error))])

    def extra_repr(self) -> str:
        return f"num_candidates={self.num_candidates}, " + super().extra_repr()


class EntropyCalibrator(HistogramCalibrator):
    """Threshold minimizing the KL divergence between the clipped and the quantized histogram.

    The TensorRT entropy calibration: for each candidate ``i`` (bins ``128..bins`` in
    steps of ``stride``), ``P`` is the first ``i`` bins with the outlier mass added to
    bin ``i - 1``; ``Q`` merges those ``i`` bins into 128 levels (codes 0..127) and
    spreads each level's mass back over the bins where ``P`` is non-zero; both are
    smoothed (zeros raised to 1e-4, as MXNet's calibration does) and the threshold is
    the upper edge of bin ``i`` minimizing ``KL(P || Q) = sum P log(P / Q)``.

    Args:
        stride: step between candidate bin counts.
        bins, eps: see :class:`HistogramCalibrator`.
    """

    def __init__(self, stride: int = 16, bins: int = 2048, eps: float = _EPS) -> None:
        super().__init__(bins=bins, eps=eps)
        self.stride = stride

    def _threshold(self, hist: np.ndarray, range_max: float) -> float:
        levels = QUANT_MAX + 1
        width = range_max / self.bins
        if self.bins <= levels:
            return range_max
        best_kl, best_i = np.inf, self.bins
        for i in range(levels, self.bins + 1, self.stride):
            p = hist[:i].copy()
            p[i - 1] += hist[i:].sum()  # outliers clip to the last level
            level_of_bin = np.minimum((np.arange(i) * levels) // i, levels - 1)
            nonzero = p > 0
            mass = np.bincount(level_of_bin, weights=hist[:i], minlength=levels)
            count = np.bincount(level_of_bin, weights=nonzero.astype(np.float64), minlength=levels)
            q = np.where(nonzero, mass[level_of_bin] / np.maximum(count[level_of_bin], 1.0), 0.0)
            if p.sum() <= 0 or q.sum() <= 0:
                continue
            p, q = _smooth(p / p.sum()), _smooth(q / q.sum())
            support = p > 0
            kl = float(np.sum(p[support] * np.log(p[support] / q[support])))
            if kl < best_kl:
                best_kl, best_i = kl, i
        return best_i * width

    def extra_repr(self) -> str:
        return f"stride={self.stride}, " + super().extra_repr()


def _smooth(dist: np.ndarray, eps: float = 1e-4) -> np.ndarray:
    """Move ``eps`` of mass onto every zero entry of a distribution (taken evenly from the others)."""
    zero = dist == 0
    n_zero, n_nonzero = int(zero.sum()), int((~zero).sum())
    if not n_zero or not n_nonzero:
        return dist
    return np.maximum(dist + eps * zero - (eps * n_zero / n_nonzero) * (~zero), 1e-12)


#: Calibrator classes by the names ``approximate(..., calibrator=NAME)`` accepts.
CALIBRATORS: Final[dict[str, type[Calibrator]]] = {
    "max": MaxCalibrator,
    "percentile": PercentileCalibrator,
    "mse": MSECalibrator,
    "entropy": EntropyCalibrator,
}


def make_calibrator(calibrator: str | type[Calibrator] | Calibrator) -> Calibrator:
    """A fresh calibrator from a name in :data:`CALIBRATORS`, a class, or a template instance.

    A template instance is deep-copied (and reset), so every layer gets its own.

    Raises:
        ConfigError: unknown name.
    """
    import copy

    from axhw.errors import ConfigError

    if isinstance(calibrator, Calibrator):
        fresh = copy.deepcopy(calibrator)
        fresh.reset()
        return fresh
    if isinstance(calibrator, type) and issubclass(calibrator, Calibrator):
        return calibrator()
    if isinstance(calibrator, str) and calibrator in CALIBRATORS:
        return CALIBRATORS[calibrator]()
    raise ConfigError(f"unknown calibrator {calibrator!r}; choose one of {', '.join(sorted(CALIBRATORS))}")
