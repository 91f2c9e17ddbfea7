"""Error metrics of a product table against the exact product (one numpy module).

With ``e = approx - exact`` over all 65,536 signed operand pairs (see
:class:`~axhw.records.ErrorMetrics` for every formula), metrics are in product
units (the integer product ``a·b``), rates and relative errors are fractions in
[0, 1] and the ``*_percent`` fields are percentages of the largest exact
magnitude, ``2^14``.
"""

from __future__ import annotations

import numpy as np

from .exact import exact_lut
from .records import ErrorMetrics

__all__ = ["HISTOGRAM_BINS", "error_metrics", "error_table"]

#: Number of bins of the error histogram (odd, so that error 0 has its own central bin).
HISTOGRAM_BINS = 33

_FULL_SCALE = float(1 << 14)  # largest |a·b| for signed 8-bit operands


def error_table(lut: np.ndarray) -> np.ndarray:
    """``e = lut - exact`` as int64, for a signed-index table ``lut[a + 128, b + 128]``."""
    lut = np.asarray(lut)
    if lut.shape != (256, 256):
        raise ValueError(f"a product table must have shape (256, 256), got {lut.shape}")
    return lut.astype(np.int64) - exact_lut(signed=True).astype(np.int64)


def error_metrics(lut: np.ndarray) -> ErrorMetrics:
    """Error metrics of a signed-index product table against ``a·b``.

    Args:
        lut: int table of shape (256, 256), ``lut[a + 128, b + 128]`` ≈ ``a·b``.

    Returns:
        :class:`~axhw.records.ErrorMetrics`; ``mae``, ``wce``, ``bias``, ``std``
        in product units, ``mse`` in squared product units, ``mre``/``wre``/
        ``error_rate`` as fractions, ``*_percent`` relative to ``2^14``.
    """
    err = error_table(lut)
    exact = exact_lut(signed=True).astype(np.int64)
    abs_err = np.abs(err)
    nonzero = exact != 0
    rel = abs_err[nonzero] / np.abs(exact[nonzero])
    wce = int(abs_err.max())
    span = max(wce, 1) + 0.5
    counts, edges = np.histogram(err, bins=HISTOGRAM_BINS, range=(-span, span))
    mae = float(abs_err.mean())
    return ErrorMetrics(
        mae=mae,
        mse=float((err.astype(np.float64) ** 2).mean()),
        wce=float(wce),
        mre=float(rel.mean()),
        error_rate=float(np.count_nonzero(err) / err.size),
        bias=float(err.mean()),
        std=float(err.std()),
        wre=float(rel.max()),
        mae_percent=100.0 * mae / _FULL_SCALE,
        wce_percent=100.0 * wce / _FULL_SCALE,
        histogram={"edges": [float(x) for x in edges], "counts": [int(c) for c in counts]},
    )
