"""Gradient tables of an approximate multiplier, and the backward pass that uses them.

An approximate multiplier is a table ``L[a + 128, b + 128]`` over signed int8
operands.  The straight-through estimator (STE) back-propagates through it as if
it were the exact product (``dL/da = b``, ``dL/db = a``).  The alternative used
here differentiates the table itself, smoothed so that the staircases of a
truncated design give a usable slope (the secant over ``2h`` neighbours):

.. math::

    D_a[a, b] = \\frac{L[a^- + 2h, b] - L[a^-, b]}{2h}, \\quad
    a^- = \\mathrm{clip}(a - h, -128, 127 - 2h)

(a centred window of ``2h`` steps, shifted inwards at the table edges so its
width never changes) and ``D_b`` likewise along ``b``.  For the exact product these are exactly ``b``
and ``a``, so the gradient-table method reduces to the STE there.

For ``Y[m, n] = sum_k L[A[m, k], B[k, n]]`` (the LUT matmul) and an upstream
gradient ``G = dloss/dY``:

.. math::

    \\frac{\\partial loss}{\\partial A[m, k]} = \\sum_n G[m, n] \\, D_a[A[m, k], B[k, n]], \\qquad
    \\frac{\\partial loss}{\\partial B[k, n]} = \\sum_m G[m, n] \\, D_b[A[m, k], B[k, n]]

:func:`lut_backward_reference` computes exactly this by gathering, in chunks
so memory stays bounded.  Because ``D_a`` is a linear map of ``L`` along ``a``, a
table of the form ``a*b + sum_r u_r(a) v_r(b)`` has gradient tables of the same
form (``b + sum_r u'_r(a) v_r(b)``); :func:`gradient_tables` finds the smallest
such rank numerically, and :func:`lut_backward` then uses plain matrix products
(``G @ B^T + sum_r U_r[A] * (G @ V_r[B]^T)``), equal to the reference up to float
rounding.  Tables without a small exact rank take the gather path.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from typing import Final, Literal

import numpy as np
import torch

__all__ = [
    "GradTables",
    "DEFAULT_HALF_WIDTH",
    "gradient_tables",
    "lut_backward",
    "lut_backward_reference",
    "lut_backward_factored",
]

#: Default half-width ``h`` of the secant window, in operand steps.
DEFAULT_HALF_WIDTH: Final[int] = 4
_DEFAULT_CHUNK_ELEMS: Final[int] = 1 << 21


@dataclass(frozen=True, eq=False)
class GradTables:
    """Smoothed partial derivatives of a product table (immutable).

    Attributes:
        da: float32 (256, 256); ``da[a + 128, b + 128]`` = dL/da at ``(a, b)``.
        db: float32 (256, 256); ``db[a + 128, b + 128]`` = dL/db at ``(a, b)``.
        half_width: the secant half-width ``h`` the tables were built with.
        sha256: hex digest of the int32 product table they come from.
        factors_a: ``(u, v)`` float32 (r, 256) each (one contiguous row per term) with
            ``da[i, j] = (j - 128) + sum_r u[r, i] v[r, j]`` up to float rounding, or
            ``None`` when no rank <= ``max_rank`` reproduces ``da``.
        factors_b: ``(u, v)`` with ``db[i, j] = (i - 128) + sum_r u[r, i] v[r, j]``, or ``None``.
    """

    da: torch.Tensor
    db: torch.Tensor
    half_width: int
    sha256: str
    factors_a: tuple[torch.Tensor, torch.Tensor] | None
    factors_b: tuple[torch.Tensor, torch.Tensor] | None

    @property
    def factored(self) -> bool:
        """Whether both tables have an exact low-rank form (the fast backward applies)."""
        return self.factors_a is not None and self.factors_b is not None

    @property
    def rank(self) -> int | None:
        """Largest rank of the two residual factorizations, or ``None`` if not factored."""
        if not self.factored:
            return None
        return max(self.factors_a[0].shape[0], self.factors_b[0].shape[0])  # type: ignore[index]

    def __repr__(self) -> str:
        return f"GradTables(sha256={self.sha256[:12]}, half_width={self.half_width}, rank={self.rank})"


def _secant(lut: np.ndarray, half_width: int) -> np.ndarray:
    """Secant slope of ``lut`` along axis 0 over ``[i - h, i + h]``, shifted inside the table (float64)."""
    width = 2 * half_width
    lo = np.clip(np.arange(256) - half_width, 0, 255 - width)
    return (lut[lo + width, :] - lut[lo, :]) / float(width)


def _residual_factors(residual: np.ndarray, max_rank: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Smallest ``(u, v)`` with ``u @ v.T`` equal to ``residual`` within float32 rounding."""
    scale = max(1.0, float(np.abs(residual).max()))
    tol = 1e-5 * scale
    if np.abs(residual).max() <= tol:
        return np.zeros((256, 0)), np.zeros((256, 0))
    u, s, vt = np.linalg.svd(residual)
    for rank in range(1, max_rank + 1):
        uu = u[:, :rank] * s[:rank]
        vv = vt[:rank].T
        if np.abs(uu @ vv.T - residual).max() <= tol:
            return uu, vv
    return None


@functools.lru_cache(maxsize=64)
def _tables_cached(sha: str, lut_bytes: bytes, half_width: int, max_rank: int) -> GradTables:
    lut = np.frombuffer(lut_bytes, dtype=np.int32).reshape(256, 256).astype(np.float64)
    da = _secant(lut, half_width)
    db = _secant(lut.T, half_width).T
    ops = np.arange(-128, 128, dtype=np.float64)
    fa = _residual_factors(da - ops[None, :], max_rank)
    fb = _residual_factors(db - ops[:, None], max_rank)

    def tensor(x: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))

    return GradTables(
        da=tensor(da),
        db=tensor(db),
        half_width=half_width,
        sha256=sha,
        factors_a=None if fa is None else (tensor(fa[0].T), tensor(fa[1].T)),
        factors_b=None if fb is None else (tensor(fb[0].T), tensor(fb[1].T)),
    )


def gradient_tables(lut: np.ndarray, half_width: int = DEFAULT_HALF_WIDTH, max_rank: int = 16) -> GradTables:
    """Smoothed finite-difference tables of ``lut`` along each operand (cached by content).

    Args:
        lut: integer array (256, 256) indexed ``lut[a + 128, b + 128]`` (the
            :mod:`axhw.library` convention).
        half_width: ``h`` of the secant ``(L[a+h] - L[a-h]) / 2h`` (the window is
            shifted inwards at the table edges); 1 is the plain central difference,
            larger values smooth more.  At most 127.
        max_rank: largest residual rank searched for the factored (matmul) backward.

    Returns:
        :class:`GradTables`; the same object for the same table and settings.

    Raises:
        ValueError: a table of the wrong shape or with non-integer values, or ``half_width < 1``.
    """
    array = np.asarray(lut)
    if array.shape != (256, 256):
        raise ValueError(f"product table must have shape (256, 256), got {array.shape}")
    if not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"product table must hold integers, got dtype {array.dtype}")
    if not 1 <= int(half_width) <= 127:
        raise ValueError(f"half_width must be in [1, 127], got {half_width}")
    lut32 = np.ascontiguousarray(array, dtype=np.int32)
    data = lut32.tobytes()
    return _tables_cached(hashlib.sha256(data).hexdigest(), data, int(half_width), int(max_rank))


def _check_operands(grad_out: torch.Tensor, a_q: torch.Tensor, b_q: torch.Tensor) -> torch.Size:
    if a_q.dim() < 2 or b_q.dim() < 2 or grad_out.dim() < 2:
        raise ValueError("a_q, b_q and grad_out need at least 2 dimensions (..., M, K), (..., K, N), (..., M, N)")
    M, K = a_q.shape[-2:]
    K2, N = b_q.shape[-2:]
    if K != K2 or tuple(grad_out.shape[-2:]) != (M, N):
        raise ValueError(f"shape mismatch: a_q {tuple(a_q.shape)}, b_q {tuple(b_q.shape)}, grad_out {tuple(grad_out.shape)}")
    return torch.broadcast_shapes(a_q.shape[:-2], b_q.shape[:-2], grad_out.shape[:-2])


def lut_backward_reference(
    grad_out: torch.Tensor,
    a_q: torch.Tensor,
    b_q: torch.Tensor,
    tables: GradTables,
    max_chunk_elems: int = _DEFAULT_CHUNK_ELEMS,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradients of ``Y = lut_matmul(A, B)`` by gathering the tables (the specification).

    ``grad_a[..., m, k] = sum_n G[..., m, n] * da[A[m, k] + 128, B[k, n] + 128]`` and
    ``grad_b[..., k, n] = sum_m G[..., m, n] * db[A[m, k] + 128, B[k, n] + 128]``,
    computed over blocks of rows so that at most ``max_chunk_elems`` (m, k, n)
    triples are gathered at once.

    Args:
        grad_out: float (..., M, N), the gradient of the loss with respect to ``Y``.
        a_q: int8 (..., M, K), the quantized left operand.
        b_q: int8 (..., K, N), the quantized right operand.
        tables: from :func:`gradient_tables`.
        max_chunk_elems: bound on the gathered block size.

    Returns:
        ``(grad_a, grad_b)`` with the shapes of ``a_q`` and ``b_q`` (summed over
        broadcast batch dimensions), dtype of ``grad_out``, in integer-operand units.
    """
    batch = _check_operands(grad_out, a_q, b_q)
    M, K = a_q.shape[-2:]
    N = b_q.shape[-1]
    dtype, device = grad_out.dtype, grad_out.device
    # both tables side by side, so one gather per (m, k, n) triple serves grad_a and grad_b
    both = torch.stack([tables.da, tables.db], dim=-1).to(device=device, dtype=dtype).reshape(-1, 2)  # 65536, 2
    shared = all(d == 1 for d in b_q.shape[:-2])
    if shared:
        # b is shared by every batch element (a Linear weight): fold the batch into the rows
        ia = ((a_q.to(torch.int32) + 128) * 256).expand(*batch, M, K).reshape(1, -1, K)  # 1, Bt*M, K
        g = grad_out.expand(*batch, M, N).reshape(1, -1, N)  # 1, Bt*M, N
        ib = (b_q.to(torch.int32) + 128).reshape(1, K, N)  # 1, K, N
    else:
        ia = ((a_q.to(torch.int32) + 128) * 256).expand(*batch, M, K).reshape(-1, M, K)  # Bt, M, K (row offsets)
        ib = (b_q.to(torch.int32) + 128).expand(*batch, K, N).reshape(-1, K, N)  # Bt, K, N
        g = grad_out.expand(*batch, M, N).reshape(-1, M, N)  # Bt, M, N
    rows_total = ia.shape[1]
    grad_a = torch.empty(ia.shape, dtype=dtype, device=device)
    grad_b = torch.zeros(ib.shape, dtype=dtype, device=device)
    rows = max(1, int(max_chunk_elems) // max(1, K * N))
    for t in range(ia.shape[0]):
        for m0 in range(0, rows_total, rows):
            m1 = min(rows_total, m0 + rows)
            index = (ia[t, m0:m1, :, None] + ib[t, None, :, :]).reshape(-1).to(torch.int64)  # m*K*N
            values = both.index_select(0, index).reshape(m1 - m0, K, N, 2)  # m, K, N, (da, db)
            gm = g[t, m0:m1, None, :]  # m, 1, N
            grad_a[t, m0:m1] = (gm * values[..., 0]).sum(dim=-1)
            grad_b[t] += (gm * values[..., 1]).sum(dim=0)
    grad_a = grad_a.reshape(*batch, M, K).sum_to_size(a_q.shape)
    if shared:
        grad_b = grad_b.reshape(b_q.shape)
    else:
        grad_b = grad_b.reshape(*batch, K, N).sum_to_size(b_q.shape)
    return grad_a, grad_b


def lut_backward_factored(
    grad_out: torch.Tensor, a_q: torch.Tensor, b_q: torch.Tensor, tables: GradTables
) -> tuple[torch.Tensor, torch.Tensor]:
    """The same gradients as :func:`lut_backward_reference` through matrix products.

    With ``da = b + sum_r ua_r(a) va_r(b)`` and ``db = a + sum_r ub_r(a) vb_r(b)``:
    ``grad_a = G @ B^T + sum_r ua_r[A] * (G @ va_r[B]^T)`` and
    ``grad_b = A^T @ G + sum_r vb_r[B] * (ub_r[A]^T @ G)``.

    Raises:
        ValueError: ``tables`` has no exact low-rank form (``tables.factored`` is false).
    """
    if not tables.factored:
        raise ValueError(f"{tables!r} has no low-rank form; use lut_backward_reference")
    _check_operands(grad_out, a_q, b_q)
    dtype, device = grad_out.dtype, grad_out.device
    a = a_q.to(dtype)
    b = b_q.to(dtype)
    ia = a_q.to(torch.int64) + 128
    ib = b_q.to(torch.int64) + 128
    grad_a = grad_out @ b.transpose(-1, -2)  # ..., M, K
    grad_b = a.transpose(-1, -2) @ grad_out  # ..., K, N
    ua, va = (f.to(device=device, dtype=dtype) for f in tables.factors_a)  # type: ignore[union-attr]
    for r in range(ua.shape[0]):
        grad_a = grad_a + ua[r][ia] * (grad_out @ va[r][ib].transpose(-1, -2))
    ub, vb = (f.to(device=device, dtype=dtype) for f in tables.factors_b)  # type: ignore[union-attr]
    for r in range(ub.shape[0]):
        grad_b = grad_b + vb[r][ib] * (ub[r][ia].transpose(-1, -2) @ grad_out)
    return grad_a.sum_to_size(a_q.shape), grad_b.sum_to_size(b_q.shape)


def lut_backward(
    grad_out: torch.Tensor,
    a_q: torch.Tensor,
    b_q: torch.Tensor,
    tables: GradTables,
    method: Literal["auto", "reference", "factored"] = "auto",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradients of a LUT matmul with respect to its integer operands.

    Args:
        grad_out: float (..., M, N), dloss/dY for ``Y = lut_matmul(a_q, b_q)``.
        a_q: int8 (..., M, K).
        b_q: int8 (..., K, N); batch dimensions broadcast as in ``torch.matmul``.
        tables: from :func:`gradient_tables`.
        method: ``"reference"`` gathers (:func:`lut_backward_reference`),
            ``"factored"`` uses matrix products (:func:`lut_backward_factored`),
            ``"auto"`` the factored form when the tables have one.

    Returns:
        ``(grad_a, grad_b)`` shaped like ``a_q`` and ``b_q``, dtype of ``grad_out``,
        in integer-operand units (multiply by the quantization scales for float units).
    """
    if method == "reference" or (method == "auto" and not tables.factored):
        return lut_backward_reference(grad_out, a_q, b_q, tables)
    if method in ("auto", "factored"):
        return lut_backward_factored(grad_out, a_q, b_q, tables)
    raise ValueError(f"unknown method {method!r}; use 'auto', 'reference' or 'factored'")
