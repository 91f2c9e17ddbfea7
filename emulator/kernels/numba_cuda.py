"""Numba CUDA LUT kernel: one kernel for every multiplier, the table staged in shared memory.

``out[g, m, n] = sum_k lut[A[g, m, k] + 128, B[g, k, n] + 128]``   (int32 accumulation)

The table is data, not code, so no multiplier ever triggers a compilation.  What bounds
the kernel is the rate of random 16-bit gathers from shared memory, so the design
counts shared-memory wavefronts, registers and occupancy, not arithmetic:

* **Table in shared memory.**  The 16-bit table ``lut16 = lut - offset16`` (256 x 256 x
  2 B = 128 KiB, see :class:`LutTable`) is copied into dynamic shared memory once per
  block (32-bit global loads); the kernel's maximum-dynamic-shared-memory attribute is
  raised above the default 48 KiB before the first launch.  Each output gets
  ``K * offset16`` added at the end.  Tables spanning 2**16 values or more are not
  supported (:func:`supports`).
* **One table row per warp instruction.**  A warp is the 32 column threads of one
  row group, so every look-up of one instruction reads the same table row
  ``A[m, k]``: 512 bytes = 128 words, 4 words per bank.  A bank then serves at most
  4 distinct words and lanes reading the same word share it; with random operands
  one gather costs 2.8 wavefronts on average (a warp spread over two rows: 3.2; over
  32 rows: 3.5; Monte Carlo over random operands).  Rows and columns are never
  swizzled: any swizzle would spread one instruction over more rows' words.
* **Packed operand indices.**  Per ``BK = 32`` slice of K the block stages ``A`` and
  ``B`` as table indices ``x + 128``, four per 32-bit word: a thread's 8 rows are two
  broadcast words and its 4 columns one conflict-free word, so 3 index loads serve
  32 look-ups (the previous kernel spent 12 loads of int32 indices on 32).  Rows are
  unpacked to ``index * 256``, columns to ``index``, and each look-up is one add, one
  16-bit shared load and one add into a register accumulator.
* **No bounds checks inside.**  Out-of-range ``k`` is staged as the indices
  ``(pad_a, pad_b)`` of a zero entry of ``lut16`` (its minimum, 0 by construction), so
  a ragged last slice adds 0 and every slice runs the same fixed 32-step loop;
  out-of-range rows and columns are computed and not stored.
* **Register tile, persistent blocks.**  256 threads (8 warps) per block, one block
  per multiprocessor (the table fills most of its shared memory), ``8 x 4`` int32
  accumulators per thread in registers (the tests check the PTX has no local memory),
  register cap 255 (256 x 255 <= 65,536).  Blocks loop over ``64 x 128`` output tiles: small
  enough that ViT-B shapes split into tile counts that leave under 1 % of the
  multiprocessors idle in the last round (ViT-B qkv: 3,546 tiles on 132 SMs).  The
  next slice's operands are prefetched into registers while this one is used.

Operands on a GPU are used in place through ``__cuda_array_interface__`` (no copies)
and the kernel runs on torch's current stream.  CPU operands (and the CUDA simulator,
``NUMBA_ENABLE_CUDASIM=1``, used by the tests) go through host copies.
:data:`LAUNCHES` lists every kernel with the signature, block size, register cap and
dynamic shared memory it is launched with, so a test compiles each to PTX for the
target architectures without a GPU and checks its launch budget.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from numba import config, cuda, int32, types, uint16, uint32

from axhw.emulator.kernels.table import LutTable

__all__ = ["lut_bmm", "is_available", "supports", "LaunchSpec", "LAUNCHES", "BM", "BN", "BK", "TM", "TN", "THREADS", "MAX_REGISTERS"]

TM, TN = 8, 4
"""Outputs per thread: rows x columns (32 int32 accumulators in registers)."""
ROW_THREADS, COL_THREADS = 8, 32
"""Threads per block along m and n: a warp is the 32 column threads of one row group."""
BM, BN, BK = TM * ROW_THREADS, TN * COL_THREADS, 32
"""Block tile: 64 x 128 outputs, K staged 32 at a time."""
THREADS = ROW_THREADS * COL_THREADS
ACCUMULATORS = TM * TN
"""Accumulators per thread (a module constant: array shapes must be compile-time constants)."""
MAX_REGISTERS = min(255, 65536 // THREADS)
"""Register cap per thread: a block of THREADS threads must fit the 65,536 registers of a multiprocessor."""
LUT_WORDS = 256 * 256 // 2
LUT_BYTES = 4 * LUT_WORDS
ROW_WORDS = BM // 4
"""Packed row words per k (four 8-bit row indices each)."""
ROW_STRIDE = ROW_WORDS + 1
"""Row-word stride in shared memory: +1 makes the staging store (consecutive k per warp) conflict-free."""
COL_WORDS = BN // 4
A_LOADS, B_LOADS = BK * ROW_WORDS // THREADS, BK * COL_WORDS // THREADS
assert A_LOADS * THREADS == BK * ROW_WORDS and B_LOADS * THREADS == BK * COL_WORDS and COL_WORDS == COL_THREADS
assert TM == 8 and TN == 4  # the unpacking below reads two row words and one column word per k


def is_available() -> bool:
    """Whether Numba sees a CUDA device (or the simulator, ``NUMBA_ENABLE_CUDASIM=1``)."""
    try:
        return bool(cuda.is_available())
    except Exception:  # noqa: BLE001 - no driver or toolkit: simply unavailable
        return False


def supports(table: LutTable) -> bool:
    """The kernel stages the table in 16 bits: its values must span fewer than 2**16 integers."""
    return table.lut16 is not None


# The simulator's jit takes no register cap; on a device the cap is what makes 256
# threads x registers fit a multiprocessor (CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES otherwise).
_JIT_OPTIONS: dict[str, Any] = {} if config.ENABLE_CUDASIM else {"max_registers": MAX_REGISTERS}


@cuda.jit(cache=True, **_JIT_OPTIONS)
def lut_bmm_kernel(a, b, lut, offset, pad_a, pad_b, out):  # pragma: no cover - runs on the device
    """``out[g, m, n] = K * offset + sum_k lut16[a[g, m, k] + 128, b[g, k, n] + 128]``.

    ``lut`` holds the uint16 table as 32768 int32 words (little-endian pairs);
    ``lut16[pad_a, pad_b] == 0`` pads the ragged end of K.  Only module-level
    constants size the shared and local arrays (compile-time shapes).
    """
    table = cuda.shared.array(0, dtype=uint16)
    rows_s = cuda.shared.array((BK, ROW_STRIDE), dtype=uint32)  # [k, w]: rows 4w..4w+3 of the tile, 8 bits each
    cols_s = cuda.shared.array((BK, COL_WORDS), dtype=uint32)  # [k, t]: columns t + 32 q (q < 4), 8 bits each
    tid = cuda.threadIdx.x
    for i in range(tid, LUT_WORDS, THREADS):
        word = uint32(lut[i])
        table[2 * i] = uint16(word & 0xFFFF)
        table[2 * i + 1] = uint16(word >> 16)
    groups, m_size, k_size = a.shape
    n_size = b.shape[2]
    m_tiles = (m_size + BM - 1) // BM
    n_tiles = (n_size + BN - 1) // BN
    ty = tid // COL_THREADS
    tx = tid % COL_THREADS
    base = int32(k_size * offset)  # wraps like the int32 sum it completes
    pad_row = uint32(pad_a) * uint32(0x01010101)  # four padding indices in one word
    pad_col = uint32(pad_b) * uint32(0x01010101)
    acc = cuda.local.array(ACCUMULATORS, dtype=int32)
    a_next = cuda.local.array(A_LOADS, dtype=uint32)
    b_next = cuda.local.array(B_LOADS, dtype=uint32)
    rows = cuda.local.array(TM, dtype=int32)
    cols = cuda.local.array(TN, dtype=int32)
    for tile in range(cuda.blockIdx.x, groups * m_tiles * n_tiles, cuda.gridDim.x):
        g = tile // (m_tiles * n_tiles)
        m0 = (tile // n_tiles) % m_tiles * BM
        n0 = tile % n_tiles * BN
        for i in range(ACCUMULATORS):
            acc[i] = 0
        for k0 in range(0, k_size + BK, BK):  # one extra pass: the last one only stores the final slice
            # load slice k0 into registers (global -> registers), four indices per word
            if k0 < k_size:
                for r in range(A_LOADS):
                    e = tid + r * THREADS
                    k = k0 + e % BK
                    m = m0 + 4 * (e // BK)
                    word = pad_row
                    if k < k_size:
                        word = uint32(0)
                        for q in range(4):
                            index = uint32(pad_a)
                            if m + q < m_size:
                                index = uint32(int32(a[g, m + q, k]) + 128)
                            word |= index << uint32(8 * q)
                    a_next[r] = word
                for r in range(B_LOADS):
                    e = tid + r * THREADS
                    k = k0 + e // COL_WORDS
                    n = n0 + e % COL_WORDS
                    word = pad_col
                    if k < k_size:
                        word = uint32(0)
                        for q in range(4):
                            index = uint32(pad_b)
                            if n + COL_THREADS * q < n_size:
                                index = uint32(int32(b[g, k, n + COL_THREADS * q]) + 128)
                            word |= index << uint32(8 * q)
                    b_next[r] = word
            if k0 > 0:  # multiply slice k0 - BK (staged in shared memory) while slice k0 is in flight
                for kk in range(BK):
                    row_lo = rows_s[kk, 2 * ty]
                    row_hi = rows_s[kk, 2 * ty + 1]
                    col_word = cols_s[kk, tx]
                    for q in range(4):
                        rows[q] = int32((row_lo >> uint32(8 * q)) & uint32(0xFF)) << 8
                        rows[4 + q] = int32((row_hi >> uint32(8 * q)) & uint32(0xFF)) << 8
                        cols[q] = int32((col_word >> uint32(8 * q)) & uint32(0xFF))
                    for i in range(TM):
                        for j in range(TN):
                            acc[i * TN + j] = int32(acc[i * TN + j] + int32(table[rows[i] + cols[j]]))
            if k0 < k_size:
                cuda.syncthreads()  # everyone is done with the previous slice
                for r in range(A_LOADS):
                    e = tid + r * THREADS
                    rows_s[e % BK, e // BK] = a_next[r]
                for r in range(B_LOADS):
                    e = tid + r * THREADS
                    cols_s[e // COL_WORDS, e % COL_WORDS] = b_next[r]
                cuda.syncthreads()
        for i in range(TM):
            m = m0 + ty * TM + i
            if m < m_size:
                for j in range(TN):
                    n = n0 + tx + COL_THREADS * j
                    if n < n_size:
                        out[g, m, n] = int32(acc[i * TN + j] + base)


@dataclass(frozen=True)
class LaunchSpec:
    """How a CUDA kernel is compiled and launched: what its launch budget is checked on.

    Attributes:
        kernel: the ``cuda.jit`` dispatcher (``kernel.py_func`` is the Python source).
        signature: Numba argument types of the launches made.
        threads: threads per block.
        max_registers: register cap per thread it is compiled with (255: none).
        dynamic_shared_bytes: dynamic shared memory per block, bytes.
    """

    kernel: Any
    signature: tuple[Any, ...]
    threads: int
    max_registers: int
    dynamic_shared_bytes: int


LAUNCHES: dict[str, LaunchSpec] = {
    "lut_bmm": LaunchSpec(
        lut_bmm_kernel,
        (types.int8[:, :, ::1], types.int8[:, :, ::1], types.int32[::1], types.int32, types.int32, types.int32, types.int32[:, :, ::1]),
        THREADS,
        MAX_REGISTERS,
        LUT_BYTES,
    ),
}
"""Every CUDA kernel of the emulator with its launch configuration."""


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


_SM_COUNT: dict[int, int] = {}


def _multiprocessors(device_id: int) -> int:
    """Multiprocessor count of a device (asked once per device)."""
    if device_id not in _SM_COUNT:
        _SM_COUNT[device_id] = cuda.get_current_device().MULTIPROCESSOR_COUNT
    return _SM_COUNT[device_id]


def _launch(args: tuple[Any, ...], stream: Any, device_id: int) -> None:
    """Launch the kernel on ``stream``: one persistent block per multiprocessor (at most one per tile)."""
    kernel = lut_bmm_kernel
    a, out = args[0], args[-1]
    groups, m_size, _ = a.shape
    tiles = groups * math.ceil(m_size / BM) * math.ceil(out.shape[2] / BN)
    if config.ENABLE_CUDASIM:
        blocks = min(tiles, 2)  # two blocks share the tiles: the persistent loop is exercised
    else:
        key = (device_id, tuple(kernel.typeof_pyval(x) for x in args))
        if key not in _RAISED:
            _raise_shared_limit(kernel, args)
            _RAISED.add(key)
        blocks = min(tiles, _multiprocessors(device_id))
    if tiles:
        kernel[blocks, THREADS, stream, LUT_BYTES](*args)


def _scalars(table: LutTable) -> tuple[np.int32, np.int32, np.int32]:
    """``(offset16, pad_a, pad_b)``: the int32 offset the kernel adds (K * offset wraps like the sum), and the indices of a zero of ``lut16``."""
    pad_a, pad_b = np.unravel_index(int(np.argmin(table.lut16)), table.lut16.shape)
    assert table.lut16[pad_a, pad_b] == 0
    return np.int32(table.offset16), np.int32(pad_a), np.int32(pad_b)


def _words(table: LutTable) -> np.ndarray:
    """The uint16 table as 32768 int32 words, the layout the kernel reads (pairs, little-endian)."""
    return np.ascontiguousarray(table.lut16).reshape(-1).view(np.int32)


def lut_bmm(a: torch.Tensor, b: torch.Tensor, table: LutTable) -> torch.Tensor:
    """Batched LUT product of int8 ``a`` (G, M, K) and ``b`` (G, K, N) -> int32 (G, M, N).

    CUDA tensors are used in place (zero copy) on torch's current stream; CPU tensors
    are copied to the default GPU (or the simulator) and the result copied back.
    """
    if table.lut16 is None:
        raise ValueError(f"{table!r} spans 2**16 values or more; the CUDA LUT kernel cannot stage it")
    groups, m_size, _ = a.shape
    n_size = b.shape[2]
    scalars = table.cached("numba_cuda_scalars", lambda: _scalars(table))
    if a.is_cuda:
        device_id = a.device.index if a.device.index is not None else torch.cuda.current_device()
        out = torch.empty(groups, m_size, n_size, dtype=torch.int32, device=a.device)
        lut = table.cached(("cuda_words", device_id), lambda: torch.from_numpy(_words(table).copy()).to(a.device))
        with cuda.gpus[device_id]:
            stream = cuda.external_stream(torch.cuda.current_stream(a.device).cuda_stream)
            # sync=False: the kernel runs on the stream that produced the operands, so no host wait is needed
            arrays = [cuda.as_cuda_array(x, sync=False) for x in (a, b, lut, out)]
            args = (arrays[0], arrays[1], arrays[2], *scalars, arrays[3])
            _launch(args, stream, device_id)
        return out
    out_d = cuda.device_array((groups, m_size, n_size), dtype=np.int32)
    args = (cuda.to_device(a.numpy()), cuda.to_device(b.numpy()), cuda.to_device(_words(table)), *scalars, out_d)
    _launch(args, 0, 0)
    return torch.from_numpy(out_d.copy_to_host())
