"""Error metrics of a product table against the exact product (one numpy module).

With ``e = approx - exact`` over all 65,536 signed operand pairs (see
:class:`~axhw.records.ErrorMetrics` for every formula), metrics are in product
units (the integer product ``a·b``), rates and relative errors are fractions,
and the ``*_percent`` fields are percentages of :data:`PERCENT_BASE` = 2^16, the
output range of an 8x8 multiplier, as EvoApproxLib reports them.  Unsigned
designs are also measured over their own domain, a, b in [0, 255].
"""

from __future__ import annotations

import numpy as np

from axhw.exact import exact_lut
from axhw.records import ErrorMetrics

__all__ = ["HISTOGRAM_BINS", "PERCENT_BASE", "error_metrics", "error_table", "METRIC_DEFINITIONS"]

#: Number of bins of the error histogram (odd, so that error 0 has its own central bin).
HISTOGRAM_BINS = 33
#: Base of MAE% and WCE%: the 2^16 output range of an 8x8 multiplier (EvoApproxLib's base).
PERCENT_BASE = float(1 << 16)

#: One line per metric: name, definition (printed by ``axhw show`` and docs/metrics.md).
METRIC_DEFINITIONS: tuple[tuple[str, str], ...] = (
    ("e", "approx - a·b, over all 65,536 pairs a, b in [-128, 127] (unsigned domain: [0, 255])"),
    ("MAE", "mean |e| (product units)"),
    ("MAE%", "100 · MAE / 2^16 (percent of the 8x8 output range, as EvoApproxLib)"),
    ("WCE", "max |e| (product units);  WCE% = 100 · WCE / 2^16"),
    ("MSE", "mean e²"),
    ("MRE", "mean |e| / |a·b| over pairs with a·b != 0 (fraction)"),
    ("WRE", "max |e| / |a·b| over a·b != 0 (EvoApproxLib's WCRE)"),
    ("ER", "fraction of pairs with e != 0 (EvoApproxLib's EP)"),
    ("bias", "mean e;  std: standard deviation of e"),
    ("rel.bias", "mean e / (a·b) over a·b != 0: negative when magnitudes come out too small; "
                 "exposes a scaling bias that bias averages away in sign-magnitude designs"),
    ("reachable", "MAE and WCE over a, b in [-127, 127], the operands int8 quantization produces"),
    ("zero-preserving", "a·0 = 0·b = 0 for every a, b"),
)

_VALUES = np.arange(-128, 128)


def error_table(lut: np.ndarray) -> np.ndarray:
    """``e = lut - exact`` as int64, for a signed-index table ``lut[a + 128, b + 128]``."""
    lut = np.asarray(lut)
    if lut.shape != (256, 256):
        raise ValueError(f"a product table must have shape (256, 256), got {lut.shape}")
    return lut.astype(np.int64) - exact_lut(signed=True).astype(np.int64)


def _metrics(table: np.ndarray, exact: np.ndarray, zero: int, reachable: np.ndarray | None,
             unsigned: ErrorMetrics | None) -> ErrorMetrics:
    err = table.astype(np.int64) - exact
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
        mae_percent=100.0 * mae / PERCENT_BASE,
        wce_percent=100.0 * wce / PERCENT_BASE,
        histogram={"edges": [float(x) for x in edges], "counts": [int(c) for c in counts]},
        percent_base=PERCENT_BASE,
        relative_bias=float((err[nonzero] / exact[nonzero]).mean()),
        mae_reachable=None if reachable is None else float(abs_err[reachable].mean()),
        wce_reachable=None if reachable is None else float(abs_err[reachable].max()),
        zero_preserving=bool(not table[zero, :].any() and not table[:, zero].any()),
        unsigned=unsigned,
    )


def error_metrics(lut: np.ndarray, unsigned_table: np.ndarray | None = None) -> ErrorMetrics:
    """Error metrics of a signed-index product table against ``a·b``.

    Args:
        lut: int table of shape (256, 256), ``lut[a + 128, b + 128]`` ≈ ``a·b``.
        unsigned_table: for an unsigned design, its own table ``M[a, b]``, a, b in
            [0, 255]; its metrics over that domain go to ``.unsigned``.

    Returns:
        :class:`~axhw.records.ErrorMetrics`; ``mae``, ``wce``, ``bias``, ``std``
        in product units, ``mse`` in squared product units, ``mre``/``wre``/
        ``error_rate``/``relative_bias`` as fractions, ``*_percent`` relative to 2^16.
    """
    error_table(lut)  # shape check
    reachable = (_VALUES != -128)[:, None] & (_VALUES != -128)[None, :]
    unsigned = None
    if unsigned_table is not None:
        unsigned_table = np.asarray(unsigned_table)
        if unsigned_table.shape != (256, 256):
            raise ValueError(f"a product table must have shape (256, 256), got {unsigned_table.shape}")
        unsigned = _metrics(unsigned_table, exact_lut(signed=False).astype(np.int64), 0, None, None)
    return _metrics(np.asarray(lut), exact_lut(signed=True).astype(np.int64), 128, reachable, unsigned)
