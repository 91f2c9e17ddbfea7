"""Benchmark of the LUT matmul kernels against dense GEMMs of the same shapes, side by side.

CPU (default): DeiT-tiny shapes at batch 8 (qkv, proj, fc1, fc2 and the attention
matmuls Q.K^T and A.V over 8 x 3 heads).  For each shape: G look-ups/s of the Numba CPU
LUT kernel on a random (full-rank) table, and the time of it and of the low-rank path
(exact product; ``a*b`` + rank 2; a separable table) over a torch float32 matmul of
the same shape, measured in the same process, one right after the other.

GPU (``--gpu``): ViT-B shapes at batch 64 (M = 12608; K, N = 768, 2304 / 768, 3072 /
3072, 768).  T look-ups/s of the Numba CUDA LUT kernel, of the previous version of it
(``previous``: 512 threads, int32 indices, 8 row and 4 column index loads per 32
look-ups, bounds-checked inner loop; kept here only, for the side-by-side comparison)
and of a TransAxx-style kernel (one thread per output, the int32 table read from
global memory; implemented here only, as the baseline), the low-rank path, and T MAC/s
of torch float32, float16 and int8 (``torch._int_mm``) GEMMs.  Every kernel is checked against a reference before it
is timed: the full output against an independent torch gather reference on the GPU,
and sampled rows against the numpy reference.

Usage::

    python benchmarks/kernels.py [--gpu] [--repeats 5] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from numba import config, cuda, int32, types, uint16

from axhw.emulator.kernels import KERNELS, LutTable, prepare_table
from axhw.emulator.kernels import numba_cuda
from axhw.emulator.kernels.reference import lut_matmul as reference_matmul
from axhw.testing import DEIT_TINY_B8, operand_truncation, truncated_partial_products

VALUES = np.arange(-128, 128)

VIT_B_B64: dict[str, tuple[int, int, int, int]] = {
    "qkv": (1, 12608, 768, 2304),
    "fc1": (1, 12608, 768, 3072),
    "fc2": (1, 12608, 3072, 768),
}


def random_table(seed: int = 0) -> np.ndarray:
    """A full-rank table of random int16-range products (no structure to exploit)."""
    return np.random.default_rng(seed).integers(-(2**14), 2**14, (256, 256)).astype(np.int32)


def _time(fn: Callable[[], Any], repeats: int, sync: Callable[[], None] = lambda: None, clock: Callable[[], float] = time.perf_counter) -> float:
    """Fastest of ``repeats`` timed calls of ``fn`` (seconds of ``clock``) after one warm-up.

    The fastest run, not the median: on a machine shared with other jobs it is the one
    least disturbed by them, for the kernel and its GEMM reference alike.
    """
    fn()
    sync()
    times = []
    for _ in range(repeats):
        start = clock()
        fn()
        sync()
        times.append(clock() - start)
    return min(times)


def _operands(shape: tuple[int, int, int, int], device: str, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g, m, k, n = shape
    gen = torch.Generator().manual_seed(seed)
    a = torch.randint(-128, 128, (g, m, k), dtype=torch.int8, generator=gen)
    b = torch.randint(-128, 128, (g, k, n), dtype=torch.int8, generator=gen)
    return a.to(device), b.to(device)


def _check_sampled(out: torch.Tensor, a: torch.Tensor, b: torch.Tensor, table: LutTable, rows: int = 16) -> None:
    """Compare ``rows`` random rows of every group with the numpy reference."""
    a_np, b_np, out_np = a.cpu().numpy(), b.cpu().numpy(), out.cpu().numpy()
    rng = np.random.default_rng(1)
    for g in range(min(a.shape[0], 4)):
        pick = rng.choice(a.shape[1], size=min(rows, a.shape[1]), replace=False)
        np.testing.assert_array_equal(out_np[g, pick], reference_matmul(a_np[g, pick], b_np[g], table.lut))


def low_rank_tables() -> dict[str, LutTable]:
    """The low-rank cases timed: the exact product, ``a*b`` + rank 2, and a separable table."""
    tables = {
        "exact": prepare_table(np.outer(VALUES, VALUES).astype(np.int32)),
        "a*b+rank2": prepare_table(truncated_partial_products(2)),
        "separable": prepare_table(operand_truncation(2)),
    }
    assert all(t.lowrank is not None for t in tables.values())
    return tables


def cpu_benchmark(repeats: int, threads: int | None = None) -> list[dict[str, Any]]:
    """DeiT-tiny batch-8 shapes on this CPU: LUT kernel and low-rank path vs torch float32.

    Two measurements per shape, each kernel next to its float32 reference: wall-clock
    time with ``threads`` threads (default: torch's), and process CPU time with one
    thread (suffix ``_1core``), which other jobs on a shared machine barely disturb.
    """
    import numba

    random = prepare_table(random_table())
    lowrank = low_rank_tables()
    threads = threads or torch.get_num_threads()
    rows = []
    for name, shape in DEIT_TINY_B8.items():
        g, m, k, n = shape
        a, b = _operands(shape, "cpu")
        af, bf = a.float(), b.float()
        _check_sampled(KERNELS["numba_cpu"].bmm(a, b, random), a, b, random)
        for table in lowrank.values():
            _check_sampled(KERNELS["lowrank"].bmm(a, b, table), a, b, table)
        macs = g * m * k * n
        row: dict[str, Any] = {"shape": name, "G": g, "M": m, "K": k, "N": n}
        for label, n_threads, clock in (("", threads, time.perf_counter), ("_1core", 1, time.process_time)):
            torch.set_num_threads(n_threads)
            numba.set_num_threads(min(n_threads, numba.config.NUMBA_NUM_THREADS))
            t_fp32 = _time(lambda: torch.bmm(af, bf), repeats, clock=clock)
            t_lut = _time(lambda: KERNELS["numba_cpu"].bmm(a, b, random), repeats, clock=clock)
            t_low = {key: _time(lambda: KERNELS["lowrank"].bmm(a, b, table), repeats, clock=clock) for key, table in lowrank.items()}
            t_fp32 = min(t_fp32, _time(lambda: torch.bmm(af, bf), repeats, clock=clock))
            row[f"fp32_gmacs{label}"] = macs / t_fp32 / 1e9
            row[f"lut_glookups{label}"] = macs / t_lut / 1e9
            row[f"lut/fp32{label}"] = t_lut / t_fp32
            for key, seconds in t_low.items():
                row[f"{key}/fp32{label}"] = seconds / t_fp32
        torch.set_num_threads(threads)
        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
        rows.append(row)
    return rows


@cuda.jit
def transaxx_kernel(a, b, lut, out):  # pragma: no cover - runs on the device
    """TransAxx-style baseline: one thread per output, int32 table read from global memory."""
    n, m = cuda.grid(2)  # threadIdx.x runs along n: a warp shares a row of A
    if m < out.shape[0] and n < out.shape[1]:
        acc = int32(0)
        for k in range(a.shape[1]):
            acc += lut[(int32(a[m, k]) + 128) * 256 + int32(b[k, n]) + 128]
        out[m, n] = acc


# The previous numba_cuda kernel, as measured on an H200 (docs/gpu.md): 512 threads x 128
# registers, 128 x 128 tiles, int32 row offsets and column indices in shared memory.
P_TM, P_TN = 8, 4
P_ROW_THREADS, P_COL_THREADS = 16, 32
P_BM, P_BN, P_BK = P_TM * P_ROW_THREADS, P_TN * P_COL_THREADS, 32
P_THREADS = P_ROW_THREADS * P_COL_THREADS
P_ACC = P_TM * P_TN
P_ROW_STRIDE = P_BM + 1
P_A_LOADS, P_B_LOADS = P_BM * P_BK // P_THREADS, P_BK * P_BN // P_THREADS


@cuda.jit(**({} if config.ENABLE_CUDASIM else {"max_registers": 65536 // P_THREADS}))
def previous_kernel(a, b, lut, offset, out):  # pragma: no cover - runs on the device
    """``out[g, m, n] = K * offset + sum_k lut[(a[g, m, k] + 128) * 256 + b[g, k, n] + 128]``; ``lut`` is int16 (65536,)."""
    table = cuda.shared.array(0, dtype=uint16)
    rows_s = cuda.shared.array((P_BK, P_ROW_STRIDE), dtype=int32)
    cols_s = cuda.shared.array((P_BK, P_BN), dtype=int32)
    tid = cuda.threadIdx.x
    for i in range(tid, 65536, P_THREADS):
        table[i] = uint16(lut[i])
    groups, m_size, k_size = a.shape
    n_size = b.shape[2]
    m_tiles = (m_size + P_BM - 1) // P_BM
    n_tiles = (n_size + P_BN - 1) // P_BN
    ty = tid // P_COL_THREADS
    tx = tid % P_COL_THREADS
    base = int32(k_size * offset)
    acc = cuda.local.array(P_ACC, dtype=int32)
    a_next = cuda.local.array(P_A_LOADS, dtype=int32)
    b_next = cuda.local.array(P_B_LOADS, dtype=int32)
    for tile in range(cuda.blockIdx.x, groups * m_tiles * n_tiles, cuda.gridDim.x):
        g = tile // (m_tiles * n_tiles)
        m0 = (tile // n_tiles) % m_tiles * P_BM
        n0 = tile % n_tiles * P_BN
        for i in range(P_ACC):
            acc[i] = base
        for r in range(P_A_LOADS):
            e = tid + r * P_THREADS
            m = m0 + e // P_BK
            k = e % P_BK
            a_next[r] = (int32(a[g, m, k]) + 128) * 256 if m < m_size and k < k_size else 0
        for r in range(P_B_LOADS):
            e = tid + r * P_THREADS
            k = e // P_BN
            n = n0 + e % P_BN
            b_next[r] = int32(b[g, k, n]) + 128 if n < n_size and k < k_size else 0
        for k0 in range(0, k_size, P_BK):
            cuda.syncthreads()
            for r in range(P_A_LOADS):
                e = tid + r * P_THREADS
                rows_s[e % P_BK, e // P_BK] = a_next[r]
            for r in range(P_B_LOADS):
                e = tid + r * P_THREADS
                cols_s[e // P_BN, e % P_BN] = b_next[r]
            cuda.syncthreads()
            k1 = k0 + P_BK
            for r in range(P_A_LOADS):
                e = tid + r * P_THREADS
                m = m0 + e // P_BK
                k = k1 + e % P_BK
                a_next[r] = (int32(a[g, m, k]) + 128) * 256 if m < m_size and k < k_size else 0
            for r in range(P_B_LOADS):
                e = tid + r * P_THREADS
                k = k1 + e // P_BN
                n = n0 + e % P_BN
                b_next[r] = int32(b[g, k, n]) + 128 if n < n_size and k < k_size else 0
            depth = k_size - k0 if k_size - k0 < P_BK else P_BK  # not min(): its overload needs a device to compile
            for kk in range(depth):
                for i in range(P_TM):
                    row = rows_s[kk, ty + P_ROW_THREADS * i]
                    for j in range(P_TN):
                        acc[i * P_TN + j] += table[row + cols_s[kk, tx + P_COL_THREADS * j]]
        for i in range(P_TM):
            m = m0 + ty + P_ROW_THREADS * i
            if m < m_size:
                for j in range(P_TN):
                    n = n0 + tx + P_COL_THREADS * j
                    if n < n_size:
                        out[g, m, n] = acc[i * P_TN + j]


_I8, _I32 = types.int8, types.int32
BASELINE_LAUNCHES: dict[str, numba_cuda.LaunchSpec] = {
    "transaxx": numba_cuda.LaunchSpec(transaxx_kernel, (_I8[:, ::1], _I8[:, ::1], _I32[::1], _I32[:, ::1]), 256, 255, 0),
    "previous": numba_cuda.LaunchSpec(
        previous_kernel, (_I8[:, :, ::1], _I8[:, :, ::1], types.int16[::1], _I32, _I32[:, :, ::1]), P_THREADS, 65536 // P_THREADS, numba_cuda.LUT_BYTES
    ),
}
"""The benchmark's own CUDA kernels with their launch configurations (compiled by the tests too)."""


def run_previous(a: torch.Tensor, b: torch.Tensor, table: LutTable, out: torch.Tensor) -> None:
    """Launch :func:`previous_kernel` on CUDA tensors as the previous ``numba_cuda.lut_bmm`` did."""
    import math

    lut = table.cached(("bench_previous", a.device.index), lambda: torch.from_numpy(table.lut16.view(np.int16).reshape(-1).copy()).to(a.device))
    args = (cuda.as_cuda_array(a), cuda.as_cuda_array(b), cuda.as_cuda_array(lut), np.int32(table.offset16), cuda.as_cuda_array(out))
    if previous_kernel not in _RAISED_PREVIOUS:
        numba_cuda._raise_shared_limit(previous_kernel, args)
        _RAISED_PREVIOUS.add(previous_kernel)
    tiles = a.shape[0] * math.ceil(a.shape[1] / P_BM) * math.ceil(b.shape[2] / P_BN)
    blocks = min(tiles, cuda.get_current_device().MULTIPROCESSOR_COUNT)
    stream = cuda.external_stream(torch.cuda.current_stream(a.device).cuda_stream)
    previous_kernel[blocks, P_THREADS, stream, numba_cuda.LUT_BYTES](*args)


_RAISED_PREVIOUS: set[Any] = set()


def _gather_reference(a: torch.Tensor, b: torch.Tensor, lut: torch.Tensor) -> torch.Tensor:
    """Independent GPU reference: sum over k of the gathered table entries (int32)."""
    rows = (a[0].long() + 128) * 256
    cols = b[0].long() + 128
    out = torch.zeros(a.shape[1], b.shape[2], dtype=torch.int32, device=a.device)
    for k in range(a.shape[2]):
        out += lut[rows[:, k, None] + cols[None, k, :]]
    return out.unsqueeze(0)


def gpu_benchmark(repeats: int) -> list[dict[str, Any]]:
    """ViT-B batch-64 shapes on the GPU, every kernel verified before it is timed."""
    device = "cuda"
    sync = torch.cuda.synchronize
    random = prepare_table(random_table())
    lowrank = low_rank_tables()
    lut32 = torch.from_numpy(random.lut.reshape(-1).copy()).to(device)
    rows = []
    for name, shape in VIT_B_B64.items():
        g, m, k, n = shape
        a, b = _operands(shape, device)
        macs = g * m * k * n
        want = _gather_reference(a, b, lut32)
        got = KERNELS["numba_cuda"].bmm(a, b, random)
        assert torch.equal(got, want), f"numba_cuda differs on {name}"
        _check_sampled(got, a, b, random)
        out_prev = torch.empty(g, m, n, dtype=torch.int32, device=device)
        run_previous(a, b, random, out_prev)
        sync()
        assert torch.equal(out_prev, want), f"previous numba_cuda kernel differs on {name}"
        out_tx = torch.empty(m, n, dtype=torch.int32, device=device)
        a2, b2 = cuda.as_cuda_array(a[0]), cuda.as_cuda_array(b[0])
        lut_d, out_d = cuda.as_cuda_array(lut32), cuda.as_cuda_array(out_tx)
        grid = ((n + 31) // 32, (m + 7) // 8)

        def run_transaxx() -> None:
            transaxx_kernel[grid, (32, 8)](a2, b2, lut_d, out_d)

        run_transaxx()
        sync()
        assert torch.equal(out_tx, want[0]), f"transaxx differs on {name}"
        for key, table in lowrank.items():
            want_low = _gather_reference(a, b, torch.from_numpy(table.lut.reshape(-1).copy()).to(device))
            assert torch.equal(KERNELS["lowrank"].bmm(a, b, table), want_low), f"lowrank {key} differs on {name}"
        af, bf = a[0].float(), b[0].float()
        ah, bh = a[0].half(), b[0].half()
        row: dict[str, Any] = {"shape": name, "M": m, "K": k, "N": n}
        row["fp32_tmacs"] = macs / _time(lambda: torch.mm(af, bf), repeats, sync) / 1e12
        row["fp16_tmacs"] = macs / _time(lambda: torch.mm(ah, bh), repeats, sync) / 1e12
        row["int8_tmacs"] = macs / _time(lambda: torch._int_mm(a[0], b[0]), repeats, sync) / 1e12
        row["transaxx_tlookups"] = macs / _time(run_transaxx, repeats, sync) / 1e12
        row["previous_tlookups"] = macs / _time(lambda: run_previous(a, b, random, out_prev), repeats, sync) / 1e12
        row["numba_cuda_tlookups"] = macs / _time(lambda: KERNELS["numba_cuda"].bmm(a, b, random), repeats, sync) / 1e12
        for key, table in lowrank.items():
            row[f"lowrank_{key}_tlookups"] = macs / _time(lambda: KERNELS["lowrank"].bmm(a, b, table), repeats, sync) / 1e12
        row["numba_cuda_vs_transaxx"] = row["numba_cuda_tlookups"] / row["transaxx_tlookups"]
        row["numba_cuda_vs_previous"] = row["numba_cuda_tlookups"] / row["previous_tlookups"]
        rows.append(row)
        del want, got, out_tx, out_prev
    return rows


def _print_table(rows: list[dict[str, Any]]) -> None:
    keys = list(rows[0])
    print("| " + " | ".join(keys) + " |")
    print("|" + "---|" * len(keys))
    for row in rows:
        print("| " + " | ".join(f"{v:.3g}" if isinstance(v, float) else str(v) for v in row.values()) + " |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gpu", action="store_true", help="ViT-B shapes on the CUDA GPU instead of DeiT-tiny on the CPU")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per measurement (median)")
    parser.add_argument("--json", default=None, help="also write the rows to this JSON file")
    args = parser.parse_args(argv)
    if args.gpu:
        rows = gpu_benchmark(args.repeats)
        machine = torch.cuda.get_device_name()
    else:
        rows = cpu_benchmark(args.repeats)
        machine = f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads"
    print(f"machine: {machine}")
    _print_table(rows)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"machine": machine, "rows": rows}, fh, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
