"""Exact low-rank path: a product table as a few GEMMs instead of table look-ups.

Many approximate multipliers are an exact product plus a low-rank error.  Operand
truncation and DRUM are separable (``lut = f(a) g(b)``, rank 1); dropping the
partial-product columns below bit ``t`` leaves an error of rank ``t``.  For such a
table we find integers ``c`` in {0, 1}, ``d >= 1`` and integer vectors ``u_s``,
``v_s`` (s = 1..r) with, for every pair of operands,

    lut[a + 128, b + 128] = c * a * b + (1 / d) * sum_s u_s(a) * v_s(b)        (exact)

and then

    sum_k lut[A[m, k] + 128, B[k, n] + 128]
        = c * (A @ B)[m, n] + (1 / d) * (U[A] @ V[B])[m, n]

where ``U[A]`` is the (M, K*r) matrix of the gathered ``u_s(A[m, k])`` and ``V[B]``
the (K*r, N) matrix of the ``v_s(B[k, n])``.  Both products run on BLAS/cuBLAS: the
path costs ``c + r`` GEMMs the size of ``A @ B``, plus two gathers.

**Finding the form.**  The rank ``r`` of ``R = lut - c*a*b`` is read off the SVD of a
random sketch, then confirmed exactly: a skeleton (CUR) decomposition ``R = C W^-1 R_I`` over ``r``
pivot rows ``I`` and columns ``J`` (chosen by QR with column pivoting) is computed in
rational arithmetic, scaled to integers (``U = d * C W^-1``, ``V = R_I^T``) and
verified entry by entry with Python integers: ``U @ V.T == d * R``.  If it fails,
the next rank is tried, up to ``max_rank``.  Both ``c = 1`` and ``c = 0`` are tried
and the form with fewer GEMM terms ``r + c`` wins (ties go to ``c = 1``, whose
int8 term is the cheapest GEMM).

**Why the float GEMMs are exact.**  Let ``X`` (M, L) and ``Y`` (L, N) hold integers
with ``|x_ml * y_ln| <= P`` for every pair.  Every product, and every partial sum
formed in *any* order (blocked, tree or FMA), is then an integer of magnitude at
most ``L * P``.  When ``L * P <= 2**p`` (``p = 24`` for float32, 53 for float64)
all these values are representable, so no rounding ever happens and the float
result is the exact integer.  :func:`exact_integer_bmm` therefore splits ``L`` into
chunks of at most ``floor(2**p / P)`` and adds the chunk results in int64.  For
``A @ B`` with int8 operands ``P = 2**14``: float32 chunks of 1024.  Reduced
precision modes (TF32, bf16) would break this, so float32 is used only when
``torch.get_float32_matmul_precision() == "highest"`` and, on CUDA, TF32 is off;
otherwise float64 is used.

**int8 GEMMs.**  ``A @ B`` and the error terms (split into balanced base-128 digits,
:meth:`LowRankForm.int8_digits`) run as int8 x int8 -> int32 GEMMs (``torch._int_mm``;
exact while ``L * P < 2**31``) wherever a one-time probe (:func:`int8_gemm_is_exact`)
shows them exact: on the CPU (oneDNN with VNNI) they measured ~9x faster than float32,
so an exact multiplier costs less than a float32 matmul.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from typing import Any

import numpy as np
import torch

__all__ = ["LowRankForm", "find_low_rank", "float_plan", "exact_integer_bmm", "int8_gemm_is_exact", "int8_applicable", "int8_bmm", "lowrank_bmm"]

_VALUES = np.arange(-128, 128, dtype=np.int64)
_EXACT_PRODUCT = np.outer(_VALUES, _VALUES)
_MAX_TERM_PRODUCT = 2**40  # keeps float64 chunks >= 8192 long
_MIN_FLOAT32_CHUNK = 64


@dataclass(frozen=True)
class LowRankForm:
    """``lut[a + 128, b + 128] = c*a*b + sum_s u[a + 128, s] * v[b + 128, s] / d`` (exact).

    Attributes:
        exact_term: ``c`` (whether the exact product ``a*b`` is one of the terms).
        u: int64 (256, r), read-only; ``u[a + 128, s] = u_s(a)``.
        v: int64 (256, r), read-only; ``v[b + 128, s] = v_s(b)``.
        denominator: ``d >= 1``; ``sum_s u_s v_s`` is always a multiple of it.
    """

    exact_term: bool
    u: np.ndarray
    v: np.ndarray
    denominator: int

    @property
    def rank(self) -> int:
        """``r``, the number of rank-1 error terms."""
        return int(self.u.shape[1])

    @property
    def terms(self) -> int:
        """GEMMs per product: ``r + c``."""
        return self.rank + int(self.exact_term)

    def int8_digits(self) -> list[tuple[int, np.ndarray, np.ndarray]]:
        """The error terms as int8 GEMMs: ``sum_s u_s v_s = sum_p 128**p * (L_p @ R_p^T)``.

        Every factor is written in balanced base-128 digits,
        ``u_s = sum_i 128**i du_si`` with ``du_si`` in [-64, 63] (likewise ``v_s``), so
        ``u_s v_s = sum_(i, j) 128**(i + j) du_si dv_sj``.  The pairs with ``i + j = p``
        form the columns of ``L_p`` and ``R_p`` (int8, (256, T_p)), one GEMM per ``p``.
        Factors that already fit [-64, 63] give a single ``p = 0`` GEMM of ``r`` terms.
        """
        du, dv = [_balanced_digits(self.u[:, s]) for s in range(self.rank)], [_balanced_digits(self.v[:, s]) for s in range(self.rank)]
        groups: dict[int, tuple[list[np.ndarray], list[np.ndarray]]] = {}
        for s in range(self.rank):
            for i, left in enumerate(du[s]):
                for j, right in enumerate(dv[s]):
                    lefts, rights = groups.setdefault(i + j, ([], []))
                    lefts.append(left)
                    rights.append(right)
        return [(p, np.stack(lefts, axis=1).astype(np.int8), np.stack(rights, axis=1).astype(np.int8)) for p, (lefts, rights) in sorted(groups.items())]

    @property
    def term_bound(self) -> int:
        """``P = max_s max|u_s| * max|v_s|``: bound of every product in the error GEMM."""
        return int(max((int(np.abs(self.u[:, s]).max()) * int(np.abs(self.v[:, s]).max()) for s in range(self.rank)), default=0))

    def reconstruct(self) -> np.ndarray:
        """The int64 (256, 256) table this form describes (exact integer arithmetic)."""
        total = self.u.astype(object) @ self.v.astype(object).T
        out = _EXACT_PRODUCT.copy() if self.exact_term else np.zeros((256, 256), np.int64)
        return out + (total // self.denominator).astype(np.int64)

    def describe(self) -> str:
        """Short text, e.g. ``a*b + rank 2 /4``."""
        parts = (["a*b"] if self.exact_term else []) + ([f"rank {self.rank}"] if self.rank else [])
        return " + ".join(parts) + (f" /{self.denominator}" if self.denominator != 1 else "")


def _numeric_rank(matrix: np.ndarray, max_rank: int) -> int:
    """Rank of ``matrix`` if at most ``max_rank``, else ``max_rank + 1``.

    Read off a Gaussian sketch ``matrix @ omega`` with ``max_rank + 1`` columns: with
    probability 1 it has the rank of ``matrix`` capped at ``max_rank + 1``, and its SVD
    is 256 x 9 instead of 256 x 256 (a full SVD measured over a second here).  A wrong
    guess is harmless: every form is verified exactly and the next rank is tried.
    """
    if not matrix.any():
        return 0
    omega = np.random.default_rng(0).standard_normal((matrix.shape[1], max_rank + 1))
    return int(np.linalg.matrix_rank(matrix.astype(np.float64) @ omega))


def _pivots(matrix: np.ndarray, rank: int) -> tuple[np.ndarray, np.ndarray]:
    """``rank`` rows and columns spanning ``matrix``: QR with column pivoting, twice.

    The columns come from a (rank + 4)-row Gaussian sketch ``omega^T @ matrix``, which
    has the same column dependencies with probability 1 and is far cheaper to factor.
    """
    from scipy.linalg import qr

    omega = np.random.default_rng(1).standard_normal((rank + 4, matrix.shape[0]))
    _, cols = qr(omega @ matrix.astype(np.float64), mode="r", pivoting=True)
    cols = np.sort(cols[:rank])
    _, rows = qr(matrix[:, cols].T.astype(np.float64), mode="r", pivoting=True)
    return np.sort(rows[:rank]), cols


def _inverse(square: list[list[int]]) -> list[list[Fraction]] | None:
    """Exact inverse of a small integer matrix (Gauss-Jordan over the rationals)."""
    n = len(square)
    work = [[Fraction(x) for x in row] + [Fraction(int(i == j)) for j in range(n)] for i, row in enumerate(square)]
    for col in range(n):
        pivot = next((r for r in range(col, n) if work[r][col] != 0), None)
        if pivot is None:
            return None
        work[col], work[pivot] = work[pivot], work[col]
        scale = work[col][col]
        work[col] = [x / scale for x in work[col]]
        for r in range(n):
            if r != col and work[r][col] != 0:
                factor = work[r][col]
                work[r] = [x - factor * y for x, y in zip(work[r], work[col])]
    return [row[n:] for row in work]


def _integer_factors(residual: np.ndarray, rank: int, exact_term: bool) -> LowRankForm | None:
    """Exact integer factors ``residual = U V^T / d`` of the given rank, or ``None``."""
    if rank == 0:
        empty = np.zeros((256, 0), np.int64)
        return _frozen_form(exact_term, empty, empty.copy(), 1) if not residual.any() else None
    rows, cols = _pivots(residual, rank)
    inverse = _inverse([[int(residual[i, j]) for j in cols] for i in rows])
    if inverse is None:
        return None
    denominator = math.lcm(*(x.denominator for row in inverse for x in row))
    scaled = np.array([[int(x * denominator) for x in row] for row in inverse], dtype=object)
    u = residual[:, cols].astype(object) @ scaled  # (256, r) = d * C W^-1
    v = residual[rows, :].T.astype(object)  # (256, r) = R_I^T
    if not np.array_equal(u @ v.T, residual.astype(object) * denominator):
        return None
    u, v, denominator = _balance(u, v, denominator)
    if max(int(np.abs(u).max()), int(np.abs(v).max())) >= 2**53:
        return None
    form = _frozen_form(exact_term, u.astype(np.int64), v.astype(np.int64), int(denominator))
    return form if form.term_bound <= _MAX_TERM_PRODUCT else None


def _balance(u: np.ndarray, v: np.ndarray, denominator: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Same ``U V^T / d`` with the smallest common ``d`` and primitive ``v_s``.

    Each term is rewritten ``u_s v_s^T / d = (g_u g_v / d) * u'_s v'_s^T`` with
    ``u'_s = u_s / gcd(u_s)`` and ``v'_s = v_s / gcd(v_s)``; the rational coefficients
    are brought to their least common denominator and folded into ``u``.
    """
    scales = []
    for s in range(u.shape[1]):
        g_u, g_v = math.gcd(*(int(x) for x in u[:, s])), math.gcd(*(int(x) for x in v[:, s]))
        u[:, s] //= g_u
        v[:, s] //= g_v
        scales.append(Fraction(g_u * g_v, denominator))
    common = math.lcm(*(c.denominator for c in scales))
    for s, c in enumerate(scales):
        u[:, s] *= int(c * common)
    return u, v, common


def _balanced_digits(values: np.ndarray) -> list[np.ndarray]:
    """Digits ``d_i`` in [-64, 63] with ``values = sum_i 128**i d_i`` (at least one digit)."""
    rest, digits = values.astype(np.int64), []
    while not digits or rest.any():
        digit = (rest + 64) % 128 - 64
        digits.append(digit)
        rest = (rest - digit) // 128
    return digits


def _frozen_form(exact_term: bool, u: np.ndarray, v: np.ndarray, denominator: int) -> LowRankForm:
    u, v = np.ascontiguousarray(u), np.ascontiguousarray(v)
    u.setflags(write=False)
    v.setflags(write=False)
    return LowRankForm(exact_term=exact_term, u=u, v=v, denominator=denominator)


def find_low_rank(lut: np.ndarray, max_rank: int = 8) -> LowRankForm | None:
    """The exact form ``lut = c*a*b + U V^T / d`` with the fewest GEMM terms ``r + c``.

    Args:
        lut: int32 (256, 256) product table, ``lut[a + 128, b + 128]``.
        max_rank: largest ``r`` searched.

    Returns:
        The form with the fewest terms (ties: ``c = 1``), or ``None`` when every exact
        form needs more than ``max_rank`` error terms (or has factors too large for
        exact float GEMMs, ``max|u_s| max|v_s| > 2**40``).
    """
    table = np.asarray(lut, dtype=np.int64)
    best: LowRankForm | None = None
    for exact_term in (True, False):
        residual = table - _EXACT_PRODUCT if exact_term else table
        for rank in range(_numeric_rank(residual, max_rank), max_rank + 1):
            if best is not None and rank + exact_term >= best.terms:
                break
            form = _integer_factors(residual, rank, exact_term)
            if form is not None:
                best = form
                break
    return best


def _float32_exact_allowed(device: torch.device) -> bool:
    if torch.get_float32_matmul_precision() != "highest":
        return False
    return device.type != "cuda" or not torch.backends.cuda.matmul.allow_tf32


def float_plan(bound: int, length: int, device: torch.device) -> tuple[torch.dtype, int]:
    """Float dtype and chunk length for an exact GEMM of ``length`` terms bounded by ``bound``.

    float32 with chunks of ``2**24 // bound`` when they are at least 64 long (or cover
    ``length``) and float32 runs at full precision, else float64 with ``2**53 // bound``.
    """
    chunk = (2**24) // max(bound, 1)
    if chunk >= min(_MIN_FLOAT32_CHUNK, length) and _float32_exact_allowed(torch.device(device)):
        return torch.float32, chunk
    chunk = (2**53) // max(bound, 1)
    if chunk < 1:
        raise ValueError(f"term bound {bound} is too large for an exact float64 GEMM")
    return torch.float64, chunk


def exact_integer_bmm(x: torch.Tensor, y: torch.Tensor, bound: int, out_dtype: torch.dtype = torch.int64) -> torch.Tensor:
    """Exact ``x @ y`` of integer-valued tensors through float GEMMs.

    Args:
        x: (G, M, L) tensor of integers (any dtype).
        y: (G, L, N) tensor of integers (any dtype).
        bound: ``P >= |x[g, m, l] * y[g, l, n]|`` for every pair that meets in the sum.
        out_dtype: integer dtype of the result (int32 only when ``L * P < 2**31``).

    Returns:
        (G, M, N) of ``out_dtype``, equal to the integer product: ``L`` is cut into chunks of at
        most ``2**p // P`` so that every partial sum is exactly representable
        (float32: ``p = 24`` when at least 64 long and full precision is on; else
        float64: ``p = 53``).  See the module docstring for the proof.
    """
    length = x.shape[-1]
    if length == 0 or bound == 0:
        return torch.zeros(x.shape[0], x.shape[1], y.shape[2], dtype=out_dtype, device=x.device)
    dtype, chunk = float_plan(bound, length, x.device)
    if chunk >= length:
        return torch.bmm(x.to(dtype), y.to(dtype)).to(out_dtype)
    out = torch.zeros(x.shape[0], x.shape[1], y.shape[2], dtype=torch.int64, device=x.device)
    for start in range(0, length, chunk):
        stop = min(start + chunk, length)
        part = torch.bmm(x[..., start:stop].to(dtype), y[:, start:stop, :].to(dtype))
        out += part.to(torch.int64)
    return out.to(out_dtype)


@lru_cache(maxsize=None)
def int8_gemm_is_exact(device_type: str) -> bool:
    """Probe once per device type whether ``torch._int_mm`` returns exact int32 products.

    int8 GEMMs accumulate in int32 and are exact by definition, but some x86 code paths
    (``vpmaddubsw`` without VNNI) saturate pairs of products at int16.  The probe
    multiplies matrices of the extreme values -128 and 127 (constant and mixed) at a few
    shapes and compares with int64 arithmetic; a mismatch, or no ``_int_mm`` at all,
    turns the int8 path off and the float path is used instead.
    """
    if not hasattr(torch, "_int_mm"):
        return False
    device = torch.device(device_type)
    gen = torch.Generator().manual_seed(0)
    try:
        for m, k, n in ((32, 64, 32), (64, 256, 48), (256, 1024, 64)):
            mixed_a = torch.where(torch.rand(m, k, generator=gen) < 0.5, -128, 127).to(torch.int8)
            mixed_b = torch.where(torch.rand(k, n, generator=gen) < 0.5, -128, 127).to(torch.int8)
            for a in (torch.full((m, k), -128, dtype=torch.int8), torch.full((m, k), 127, dtype=torch.int8), mixed_a):
                for b in (torch.full((k, n), -128, dtype=torch.int8), torch.full((k, n), 127, dtype=torch.int8), mixed_b):
                    got = torch._int_mm(a.to(device), b.to(device)).cpu()
                    if not torch.equal(got.long(), a.long() @ b.long()):
                        return False
    except (RuntimeError, NotImplementedError):
        return False
    return True


def int8_applicable(device: torch.device, groups: int, m: int, depths: list[int], n: int) -> bool:
    """Whether :func:`int8_bmm` runs here for GEMMs of these shapes.

    It needs ``torch._int_mm`` known exact on this device type (:func:`int8_gemm_is_exact`);
    on CUDA also a single matrix (one launch per matrix of a batch would be slow) of a
    shape cuBLASLt takes (M > 16, depth and N multiples of 8).
    """
    if device.type == "cuda" and (groups != 1 or m <= 16 or n % 8 or any(depth % 8 for depth in depths)):
        return False
    return int8_gemm_is_exact(device.type)


def int8_bmm(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Exact int32 ``x @ y`` of int8 (G, M, L) and (G, L, N) with ``torch._int_mm``.

    Only where :func:`int8_applicable`; the caller ensures ``L * max|x * y| < 2**31``.
    On the CPU (oneDNN, VNNI) this measured about 9x faster than a float32 GEMM of the
    same shape.
    """
    if x.shape[0] == 1:
        return torch._int_mm(x[0], y[0]).unsqueeze(0)
    return torch.stack([torch._int_mm(x[i], y[i]) for i in range(x.shape[0])])


def _gather_factor(table: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
    """``table[indices]`` for a (256, r) table and int32 indices, shape ``(*indices.shape, r)`` (index_select is the fast gather)."""
    return table.index_select(0, indices.reshape(-1)).reshape(*indices.shape, table.shape[1])


def lowrank_bmm(a: torch.Tensor, b: torch.Tensor, form: LowRankForm, factors: Callable[[torch.dtype], Any], allow_int8: bool = True) -> torch.Tensor:
    """``out = c * (A @ B) + (U[A] @ V[B]) / d`` for int8 ``a`` (G, M, K) and ``b`` (G, K, N), as int32.

    ``A @ B`` is one GEMM of depth K.  The ``r`` error terms are ONE GEMM of depth
    ``K*r``: ``U[A]`` (G, M, K*r) holds ``u_s(A[g, m, k])`` at column ``k*r + s`` and
    ``V[B]`` (G, K*r, N) holds ``v_s(B[g, k, n])`` at row ``k*r + s``.  So the path
    costs ``c + r`` GEMMs of ``A @ B``'s size plus two gathers.  Where int8 GEMMs are
    exact (:func:`int8_applicable`), ``A @ B`` runs in int8 and the error terms as the
    int8 digit GEMMs of :meth:`LowRankForm.int8_digits` (more terms when factors exceed
    [-64, 63], each far cheaper); elsewhere all are exact float GEMMs
    (:func:`exact_integer_bmm`).

    Args:
        a: int8 (G, M, K).
        b: int8 (G, K, N).
        form: the table's :class:`LowRankForm`.
        factors: on the operands' device, ``factors(float dtype)`` gives ``(u, v)`` as
            tensors of that dtype and ``factors(torch.int8)`` the list of
            ``(p, L_p, R_p)`` of :meth:`LowRankForm.int8_digits` as int8 tensors.
        allow_int8: ``False`` keeps to the float GEMMs even where int8 ones are exact
            (without VNNI they are exact but slower; ``auto`` measures which wins).
    """
    g, m, k = a.shape
    n = b.shape[2]
    digits = factors(torch.int8) if form.rank else []
    use_int8 = allow_int8 and int8_applicable(a.device, g, m, [k] + [k * left.shape[1] for _, left, _ in digits], n)
    out = None
    if form.exact_term:  # |a * b| <= 2**14: exact in int32 for K < 2**17
        out = int8_bmm(a, b) if use_int8 else exact_integer_bmm(a, b, 128 * 128, out_dtype=torch.int32)
    if not form.rank:
        return out if out is not None else torch.zeros(g, m, n, dtype=torch.int32, device=a.device)
    rows, cols = a.to(torch.int32) + 128, b.to(torch.int32) + 128  # factor-table rows (only the error terms gather)
    if use_int8:  # sum_p 128**p * (L_p[A] @ R_p[B]); each GEMM's |terms| <= 64 * 64
        parts = []
        for power, left, right in digits:
            x = _gather_factor(left, rows).reshape(g, m, -1)
            y = _gather_factor(right, cols).permute(0, 1, 3, 2).reshape(g, -1, n)
            parts.append((power, int8_bmm(x, y)))
        if len(parts) == 1 and parts[0][0] == 0:
            errors = parts[0][1]
        else:
            errors = sum(part.long() * 128**power for power, part in parts)
    else:
        r, bound = form.rank, form.term_bound
        u, v = factors(float_plan(bound, k * r, a.device)[0])
        x = _gather_factor(u, rows).reshape(g, m, k * r)
        y = _gather_factor(v, cols).permute(0, 1, 3, 2).reshape(g, k * r, n)
        errors = exact_integer_bmm(x, y, bound, out_dtype=torch.int32 if form.denominator == 1 and k * r * bound < 2**31 else torch.int64)
    errors = (errors // form.denominator).to(torch.int32) if form.denominator != 1 else errors.to(torch.int32)
    return errors if out is None else out.add_(errors)
