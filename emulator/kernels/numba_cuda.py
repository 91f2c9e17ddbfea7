"""Numba CUDA LUT kernel: one kernel for every multiplier, the table staged in shared memory.

``out[g, m, n] = sum_k lut[A[g, m, k] + 128, B[g, k, n] + 128]``   (int32 accumulation)

Design (the table is data, not code, so no multiplier ever triggers a compilation):

* **Table in shared memory.**  The 16-bit table ``lut16 = lut - offset16`` (256 x 256 x
  2 B = 128 KiB, see :class:`LutTable`) is copied into dynamic shared memory once per
  block; the kernel's maximum-dynamic-shared-memory attribute is raised above the
  default 48 KiB before the first launch.  Each output gets ``K * offset16`` added at
  the end.  Tables spanning 2**16 values or more are not supported (:func:`supports`).
* **Persistent blocks.**  One 512-thread block per multiprocessor (the table fills
  most of its shared memory) loops over (g, m-tile, n-tile) output tiles of
  ``BM x BN = 128 x 128``, so the table is loaded once per block, not once per tile.
* **Tiled operands.**  Per ``BK = 32`` slice of K, the block stages ``A`` as row
  offsets ``(A + 128) * 256`` and ``B`` as column indices ``B + 128`` (int32) in shared
  memory; the next slice is prefetched into registers while this one is used.
* **Register tile.**  Thread ``(ty, tx)`` owns rows ``ty + 16 i`` (i < 8) and columns
  ``tx + 32 j`` (j < 4): per k it reads 8 row offsets (warp-broadcast) and 4 column
  indices (consecutive, conflict-free), then does 32 look-ups ``lut[row_i + col_j]``
  into 32 int32 register accumulators.  The look-ups themselves hit random banks;
  that bank-conflict rate is what bounds the kernel.

Operands on a GPU are used in place through ``__cuda_array_interface__`` (no copies)
and the kernel runs on torch's current stream.  CPU operands (and the CUDA simulator,
``NUMBA_ENABLE_CUDASIM=1``, used by the tests) go through host copies.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from numba import cuda, int32, uint16

from .table import LutTable

__all__ = ["lut_bmm", "is_available", "supports", "BM", "BN", "BK", "TM", "TN", "THREADS"]

TM, TN = 8, 4
"""Outputs per thread: rows x columns (32 int32 accumulators in registers)."""
ROW_THREADS, COL_THREADS = 16, 32
"""Threads per block along m and n (a warp spans the 32 column threads of one row)."""
BM, BN, BK = TM * ROW_THREADS, TN * COL_THREADS, 32
"""Block tile: 128 x 128 outputs, K staged 32 at a time."""
THREADS = ROW_THREADS * COL_THREADS
LUT_BYTES = 256 * 256 * 2
A_LOADS, B_LOADS = BM * BK // THREADS, BK * BN // THREADS


def is_available() -> bool:
    """Whether Numba sees a CUDA device (or the simulator, ``NUMBA_ENABLE_CUDASIM=1``)."""
    try:
        return bool(cuda.is_available())
    except Exception:  # noqa: BLE001 - no driver or toolkit: simply unavailable
        return False


def supports(table: LutTable) -> bool:
    """The kernel stages the table in 16 bits: its values must span fewer than 2**16 integers."""
    return table.lut16 is not None


@cuda.jit(cache=True)
def lut_bmm_kernel(a, b, lut, offset, out):  # pragma: no cover - runs on the device
    """``out[g, m, n] = K * offset + sum_k lut[(a[g, m, k] + 128) * 256 + b[g, k, n] + 128]``; ``lut`` is uint16 (65536,)."""
    table = cuda.shared.array(0, dtype=uint16)
    rows_s = cuda.shared.array((BK, BM + 1), dtype=int32)  # +1: the transposing store is conflict-free
    cols_s = cuda.shared.array((BK, BN), dtype=int32)
    tid = cuda.threadIdx.x
    for i in range(tid, 65536, THREADS):
        table[i] = uint16(lut[i])  # the device copy is int16 (torch has no CUDA uint16 interface): same bits
    groups, m_size, k_size = a.shape
    n_size = b.shape[2]
    m_tiles = (m_size + BM - 1) // BM
    n_tiles = (n_size + BN - 1) // BN
    ty = tid // COL_THREADS
    tx = tid % COL_THREADS
    base = int32(k_size * offset)  # wraps like the int32 sum it completes
    acc = cuda.local.array(TM * TN, dtype=int32)
    a_next = cuda.local.array(A_LOADS, dtype=int32)
    b_next = cuda.local.array(B_LOADS, dtype=int32)
    for tile in range(cuda.blockIdx.x, groups * m_tiles * n_tiles, cuda.gridDim.x):
        g = tile // (m_tiles * n_tiles)
        m0 = (tile // n_tiles) % m_tiles * BM
        n0 = tile % n_tiles * BN
        for i in range(TM * TN):
            acc[i] = base
        # prefetch slice k0 = 0 into registers
        for r in range(A_LOADS):
            e = tid + r * THREADS
            m = m0 + e // BK
            k = e % BK
            a_next[r] = (int32(a[g, m, k]) + 128) * 256 if m < m_size and k < k_size else 0
        for r in range(B_LOADS):
            e = tid + r * THREADS
            k = e // BN
            n = n0 + e % BN
            b_next[r] = int32(b[g, k, n]) + 128 if n < n_size and k < k_size else 0
        for k0 in range(0, k_size, BK):
            cuda.syncthreads()  # everyone is done with the previous slice
            for r in range(A_LOADS):
                e = tid + r * THREADS
                rows_s[e % BK, e // BK] = a_next[r]
            for r in range(B_LOADS):
                e = tid + r * THREADS
                cols_s[e // BN, e % BN] = b_next[r]
            cuda.syncthreads()
            k1 = k0 + BK  # prefetch the next slice while this one is used
            for r in range(A_LOADS):
                e = tid + r * THREADS
                m = m0 + e // BK
                k = k1 + e % BK
                a_next[r] = (int32(a[g, m, k]) + 128) * 256 if m < m_size and k < k_size else 0
            for r in range(B_LOADS):
                e = tid + r * THREADS
                k = k1 + e // BN
                n = n0 + e % BN
                b_next[r] = int32(b[g, k, n]) + 128 if n < n_size and k < k_size else 0
            for kk in range(min(BK, k_size - k0)):
                for i in range(TM):
                    row = rows_s[kk, ty + ROW_THREADS * i]
                    for j in range(TN):
                        acc[i * TN + j] += table[row + cols_s[kk, tx + COL_THREADS * j]]
        for i in range(TM):
            m = m0 + ty + ROW_THREADS * i
            if m < m_size:
                for j in range(TN):
                    n = n0 + tx + COL_THREADS * j
                    if n < n_size:
                        out[g, m, n] = acc[i * TN + j]


def _raise_shared_limit(kernel: Any, args: tuple[Any, ...]) -> None:
    """Allow ``LUT_BYTES`` (> 48 KiB) of dynamic shared memory for the overload ``args`` will launch."""
    from cuda.bindings import driver as binding
    from numba.cuda.cudadrv.driver import driver

    overload = kernel.compile(tuple(kernel.typeof_pyval(x) for x in args))  # the overload the launch will use
    cufunc = overload._codelibrary.get_cufunc()
    attribute = binding.CUfunction_attribute.CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES
    try:  # numba-cuda >= 0.2x loads kernels as CUkernel (library) handles
        driver.cuKernelSetAttribute(attribute, LUT_BYTES, cufunc.handle, cufunc.device.id)
    except Exception:  # noqa: BLE001 - older numba-cuda: a CUfunction handle
        driver.cuFuncSetAttribute(cufunc.handle, attribute, LUT_BYTES)


_RAISED: set[tuple[int, tuple[Any, ...]]] = set()
"""(device, argument types) whose overload already has the raised shared-memory limit."""


def _launch(a: Any, b: Any, lut: Any, offset: np.int32, out: Any, stream: Any, device_id: int) -> None:
    """Launch the kernel on ``stream``: one persistent block per multiprocessor (at most one per tile)."""
    from numba import config

    kernel = lut_bmm_kernel
    groups, m_size, _ = a.shape
    tiles = groups * math.ceil(m_size / BM) * math.ceil(out.shape[2] / BN)
    if config.ENABLE_CUDASIM:
        blocks = 1  # one block loops over every tile: the persistent loop is exercised
    else:
        key = (device_id, tuple(kernel.typeof_pyval(x) for x in (a, b, lut, offset, out)))
        if key not in _RAISED:
            _raise_shared_limit(kernel, (a, b, lut, offset, out))
            _RAISED.add(key)
        blocks = min(tiles, cuda.get_current_device().MULTIPROCESSOR_COUNT)
    if tiles:
        kernel[blocks, THREADS, stream, LUT_BYTES](a, b, lut, offset, out)


def _offset(table: LutTable) -> np.int32:
    """``offset16`` as the int32 the kernel adds (K * offset wraps like the sum)."""
    return np.int32(table.offset16)


def lut_bmm(a: torch.Tensor, b: torch.Tensor, table: LutTable) -> torch.Tensor:
    """Batched LUT product of int8 ``a`` (G, M, K) and ``b`` (G, K, N) -> int32 (G, M, N).

    CUDA tensors are used in place (zero copy) on torch's current stream; CPU tensors
    are copied to the default GPU (or the simulator) and the result copied back.
    """
    if table.lut16 is None:
        raise ValueError(f"{table!r} spans 2**16 values or more; the CUDA LUT kernel cannot stage it")
    groups, m_size, _ = a.shape
    n_size = b.shape[2]
    if a.is_cuda:
        device_id = a.device.index if a.device.index is not None else torch.cuda.current_device()
        out = torch.empty(groups, m_size, n_size, dtype=torch.int32, device=a.device)
        lut = table.cached(("cuda16", device_id), lambda: torch.from_numpy(table.lut16.view(np.int16).reshape(-1).copy()).to(a.device))
        with cuda.gpus[device_id]:
            stream = cuda.external_stream(torch.cuda.current_stream(a.device).cuda_stream)
            _launch(cuda.as_cuda_array(a), cuda.as_cuda_array(b), cuda.as_cuda_array(lut), _offset(table), cuda.as_cuda_array(out), stream, device_id)
        return out
    lut = cuda.to_device(table.lut16.view(np.int16).reshape(-1))  # same int16 bits as the CUDA-tensor path
    out_d = cuda.device_array((groups, m_size, n_size), dtype=np.int32)
    _launch(cuda.to_device(a.numpy()), cuda.to_device(b.numpy()), lut, _offset(table), out_d, 0, 0)
    return torch.from_numpy(out_d.copy_to_host())
