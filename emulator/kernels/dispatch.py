"""Torch-level ``lut_matmul``: batch dimensions, device and backend choice, one registry.

Every backend is a :class:`Kernel` in :data:`KERNELS`; a kernel's ``bmm`` takes int8
``a`` (G, M, K) and ``b`` (G, K, N) torch tensors plus a :class:`LutTable` and returns
int32 (G, M, N) on the operands' device, equal bit for bit to
:func:`.reference.lut_matmul` on every slice.  ``backend="auto"`` picks, for the
operands' device: on the CPU, the backend measured fastest on this machine for the
table's structure (:mod:`.calibration`; the LUT kernel when the table has no exact
low-rank form); on a GPU, the exact low-rank path when the table has one with at most
:data:`AUTO_MAX_TERMS` GEMM terms, else the CUDA LUT kernel (a table spanning 2**16
values or more falls back to the CPU kernel through host copies).  CPU kernels see CUDA operands through host
copies; CPU tensors reach numpy as zero-copy views.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from axhw.emulator.kernels import calibration as _calibration
from axhw.emulator.kernels import lowrank as _lowrank
from axhw.emulator.kernels import numba_cpu as _numba_cpu
from axhw.emulator.kernels import numba_cuda as _numba_cuda
from axhw.emulator.kernels.reference import lut_matmul as _reference_matmul
from axhw.emulator.kernels.table import LutTable

__all__ = ["Kernel", "KERNELS", "AUTO_MAX_TERMS", "lut_matmul", "select_backend"]

AUTO_MAX_TERMS = 6
"""On a GPU, ``auto`` uses the low-rank path up to this many GEMM terms (``r + c``).

Measured on the CPU (README): a low-rank term costs 0.2-2x a float32 GEMM (int8 GEMMs,
gathers), the LUT kernel 5-8x; on a GPU a GEMM term is cheaper still next to look-ups.
"""


@dataclass(frozen=True)
class Kernel:
    """One registered LUT-matmul backend.

    Attributes:
        name: registry key.
        bmm: ``(a int8 (G, M, K), b int8 (G, K, N), table) -> int32 (G, M, N)``,
            result on the operands' device.
        is_available: whether it can run in this process (e.g. a GPU is present).
        supports: whether it can compute this table (the low-rank path needs a form).
        description: one line for listings.
    """

    name: str
    bmm: Callable[[torch.Tensor, torch.Tensor, LutTable], torch.Tensor]
    is_available: Callable[[], bool]
    supports: Callable[[LutTable], bool]
    description: str


def _on_cpu(fn: Callable[[np.ndarray, np.ndarray, LutTable], np.ndarray]) -> Callable[[torch.Tensor, torch.Tensor, LutTable], torch.Tensor]:
    """Wrap a numpy (G, M, K) x (G, K, N) kernel: zero-copy views of CPU tensors."""

    def host(x: torch.Tensor) -> np.ndarray:
        x = x.detach()
        return (x.cpu() if x.is_cuda else x).contiguous().numpy()

    def bmm(a: torch.Tensor, b: torch.Tensor, table: LutTable) -> torch.Tensor:
        out = torch.from_numpy(fn(host(a), host(b), table))
        return out.to(a.device) if a.is_cuda else out

    return bmm


def _reference_bmm(a: np.ndarray, b: np.ndarray, table: LutTable) -> np.ndarray:
    return np.stack([_reference_matmul(a[g], b[g], table.lut) for g in range(a.shape[0])]).reshape(a.shape[0], a.shape[1], b.shape[2])


def _lowrank_bmm(a: torch.Tensor, b: torch.Tensor, table: LutTable, allow_int8: bool = True) -> torch.Tensor:
    form = table.lowrank
    if form is None:
        raise ValueError(f"{table!r} has no exact low-rank form; use a LUT backend")

    def factors(dtype: torch.dtype) -> Any:
        def make() -> Any:
            if dtype == torch.int8:
                return [(p, torch.from_numpy(left).to(a.device), torch.from_numpy(right).to(a.device)) for p, left, right in form.int8_digits()]
            return torch.tensor(form.u, dtype=dtype, device=a.device), torch.tensor(form.v, dtype=dtype, device=a.device)

        return table.cached(("lowrank", str(a.device), dtype), make)

    return _lowrank.lowrank_bmm(a, b, form, factors, allow_int8=allow_int8)


def _lowrank_float_bmm(a: torch.Tensor, b: torch.Tensor, table: LutTable) -> torch.Tensor:
    return _lowrank_bmm(a, b, table, allow_int8=False)


KERNELS: dict[str, Kernel] = {
    "reference": Kernel("reference", _on_cpu(_reference_bmm), lambda: True, lambda t: True, "numpy reference (the specification; slow)"),
    "numba_cpu": Kernel("numba_cpu", _on_cpu(_numba_cpu.lut_bmm), lambda: True, lambda t: True, "Numba parallel CPU LUT kernel"),
    "numba_cuda": Kernel("numba_cuda", _numba_cuda.lut_bmm, _numba_cuda.is_available, _numba_cuda.supports, "Numba CUDA LUT kernel, table in shared memory"),
    "lowrank": Kernel("lowrank", _lowrank_bmm, lambda: True, lambda t: t.lowrank is not None, "exact low-rank form on BLAS/cuBLAS"),
    "lowrank_float": Kernel("lowrank_float", _lowrank_float_bmm, lambda: True, lambda t: t.lowrank is not None,
                            "exact low-rank form, float GEMMs only (no int8 GEMMs)"),
}
"""Every backend by name; ``auto`` is resolved by :func:`select_backend`."""


def select_backend(table: LutTable, device: torch.device | str, backend: str = "auto") -> str:
    """Resolve ``backend`` (a :data:`KERNELS` name or ``"auto"``) for a table and device.

    Raises:
        ValueError: for an unknown name, or a backend that cannot compute this table.
        RuntimeError: for a backend that cannot run here (``numba_cuda`` without a GPU).
    """
    if backend != "auto":
        if backend not in KERNELS:
            raise ValueError(f"unknown kernel backend {backend!r}; choose one of {['auto', *sorted(KERNELS)]}")
        kernel = KERNELS[backend]
        if not kernel.is_available():
            raise RuntimeError(f"kernel backend {backend!r} is not available here (no usable GPU?)")
        if not kernel.supports(table):
            raise ValueError(f"kernel backend {backend!r} cannot compute {table!r}")
        return backend
    if torch.device(device).type != "cuda":
        return _calibrated_cpu_backend(table)
    if table.lowrank is not None and table.lowrank.terms <= AUTO_MAX_TERMS:
        return "lowrank"
    if _numba_cuda.is_available() and _numba_cuda.supports(table):
        return "numba_cuda"
    return "numba_cpu"


def _calibrated_cpu_backend(table: LutTable) -> str:
    """The CPU backend measured fastest here for this table's structure (:mod:`.calibration`)."""
    if table.lowrank is None:
        return "numba_cpu"
    candidates = [name for name in _calibration.CPU_CANDIDATES if KERNELS[name].supports(table)]
    if not _lowrank.int8_gemm_is_exact("cpu"):  # "lowrank" would run the float GEMMs too
        candidates.remove("lowrank")
    return _calibration.calibrated_backend(table, candidates, lambda name, a, b, t: KERNELS[name].bmm(a, b, t))


def lut_matmul(a: torch.Tensor, b: torch.Tensor, table: LutTable, backend: str = "auto") -> torch.Tensor:
    """Multiply int8 tensors through a product table: ``out[..., m, n] = sum_k lut[a[..., m, k] + 128, b[..., k, n] + 128]``.

    Args:
        a: int8 (..., M, K).
        b: int8 (..., K, N); leading dimensions broadcast against ``a``'s (attention
            uses (B, H, N, D) x (B, H, D, N); a Linear layer passes a 2-D weight).
        table: from :func:`prepare_table`.
        backend: ``"auto"`` or a :data:`KERNELS` name.

    Returns:
        int32 (..., M, N) on the operands' device.

    Raises:
        TypeError: when an operand is not int8.
        ValueError: on mismatched shapes or devices, or an unknown backend.
    """
    if a.dtype != torch.int8 or b.dtype != torch.int8:
        raise TypeError(f"lut_matmul operands are int8, got {a.dtype} and {b.dtype}")
    if a.ndim < 2 or b.ndim < 2 or a.shape[-1] != b.shape[-2]:
        raise ValueError(f"lut_matmul shapes do not chain: {tuple(a.shape)} @ {tuple(b.shape)}")
    if a.device != b.device:
        raise ValueError(f"lut_matmul operands are on different devices: {a.device} and {b.device}")
    name = select_backend(table, a.device, backend)
    m, k = a.shape[-2:]
    n = b.shape[-1]
    batch = torch.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    if b.ndim == 2:  # one matrix for the whole batch: fold the batch into M
        a3, b3 = a.reshape(1, -1, k), b.unsqueeze(0)
    else:
        a3 = a.expand(*batch, m, k).reshape(-1, m, k)
        b3 = b.expand(*batch, k, n).reshape(-1, k, n)
    out = KERNELS[name].bmm(a3.contiguous(), b3.contiguous(), table)
    return out.reshape(*batch, m, n)
