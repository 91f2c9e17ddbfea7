"""End-to-end throughput: a timm model emulated through multiplier tables vs the same model in fp32.

Every multiplication of the model except the classifier head (Linear, Conv2d, Q·Kᵀ, A·V)
goes through the multiplier; each row is timed side by side with the fp32 model in the
same process, alternating fp32 and emulated runs so that both see the same machine
load, and reports the median over ``--repeats`` of both wall-clock time and process
CPU time (the latter is the stable figure on a shared machine; use ``--threads 1``
to make it the time of one core).  The ``backend`` column is what
``backend="auto"`` picked for the multiplier (the exact low-rank GEMM path for
low-rank tables, else the LUT kernel of the device).

``--profile`` adds, per multiplier, the operator counts of one emulated forward pass
(torch.profiler): ``aten::to`` and ``aten::copy_`` calls (dtype and device round trips),
``aten::_local_scalar_dense`` (host synchronisations such as ``.item()``), and on a GPU
the number of kernel launches and the share of GPU time spent in the LUT kernel.

    python benchmarks/emulate.py                                   # DeiT-tiny, batch 8, CPU
    python benchmarks/emulate.py --multipliers exact,drum_k4 --device cuda --batch 64
    python benchmarks/emulate.py --threads 1 --emulate avx2        # as on a CPU without AVX-512/VNNI

``--emulate avx2`` restricts every library to AVX2 as ``benchmarks/auto_backend.py`` does
(see its docstring and docs/bench_auto_backend.md).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import time
from pathlib import Path

import timm
import torch

from axhw.emulator import approximate, load_lut
from axhw.emulator.kernels import prepare_table, select_backend


def _timed(model: torch.nn.Module, x: torch.Tensor) -> tuple[float, float]:
    """(wall-clock s, process CPU s) of one forward pass."""
    if x.is_cuda:
        torch.cuda.synchronize()
    wall, cpu = time.perf_counter(), time.process_time()
    with torch.no_grad():
        model(x)
    if x.is_cuda:
        torch.cuda.synchronize()
    return time.perf_counter() - wall, time.process_time() - cpu


def profile_counts(model: torch.nn.Module, x: torch.Tensor) -> dict[str, float]:
    """Operator counts of one forward pass: dtype/device copies, host syncs, GPU launches and LUT-kernel share."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if x.is_cuda else [])
    with torch.no_grad(), profile(activities=activities) as prof:
        model(x)
        if x.is_cuda:
            torch.cuda.synchronize()
    events = prof.key_averages()
    calls = {e.key: e.count for e in events}
    counts: dict[str, float] = {
        "aten::to": calls.get("aten::to", 0),
        "aten::copy_": calls.get("aten::copy_", 0),
        "host_syncs": calls.get("aten::_local_scalar_dense", 0),
    }
    if x.is_cuda:
        kernels = [e for e in prof.events() if e.device_type.name == "CUDA"]
        total = sum(e.device_time for e in kernels) or float("nan")
        counts["gpu_kernels"] = len(kernels)
        counts["lut_kernel_share"] = sum(e.device_time for e in kernels if "lut_bmm_kernel" in e.name) / total
        counts["cpu_ms"] = sum(e.self_cpu_time_total for e in events) / 1e3
        counts["gpu_ms"] = total / 1e3
    return counts


def run(model_name: str, multipliers: list[str], batch: int, repeats: int, device: str, profile: bool = False) -> list[dict[str, object]]:
    """One row per multiplier: images/s emulated and fp32, measured alternately."""
    torch.manual_seed(0)
    model = timm.create_model(model_name, pretrained=False).eval().to(device)
    x = torch.randn(batch, *model.pretrained_cfg["input_size"], device=device)
    calib = torch.randn(batch, *model.pretrained_cfg["input_size"], device=device)
    rows = []
    for name in multipliers:
        ax = approximate(model, name, calib, progress=False)
        backend = select_backend(prepare_table(load_lut(name)), x.device)
        _timed(ax, x), _timed(model, x)  # warm-up: JIT compilation, caches
        fp32, emulated = [], []
        for _ in range(repeats):
            fp32.append(_timed(model, x))
            emulated.append(_timed(ax, x))
        row: dict[str, object] = {"multiplier": name, "backend": backend}
        for index, clock in enumerate(("wall", "cpu")):
            t_fp32 = statistics.median(t[index] for t in fp32)
            t_emu = statistics.median(t[index] for t in emulated)
            row[f"{clock}_fp32_img_s"] = batch / t_fp32
            row[f"{clock}_emulated_img_s"] = batch / t_emu
            row[f"{clock}_slowdown"] = t_emu / t_fp32
        if profile:
            row["profile"] = profile_counts(ax, x)
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="deit_tiny_patch16_224")
    parser.add_argument("--multipliers", default="exact,drum_k4,trunc_k6", help="comma-separated multiplier names")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch and numba CPU threads (default: all)")
    parser.add_argument("--profile", action="store_true", help="also count copies, host syncs and GPU launches of one forward")
    parser.add_argument("--emulate", choices=["avx2"], default=None,
                        help="restrict every library to this instruction set (a CPU without AVX-512/VNNI)")
    args = parser.parse_args()
    if args.emulate:
        spec = importlib.util.spec_from_file_location("auto_backend", Path(__file__).with_name("auto_backend.py"))
        auto_backend = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(auto_backend)
        auto_backend.emulate(args.emulate)  # re-executes this script under the restriction
    if args.threads:
        import numba

        torch.set_num_threads(args.threads)
        numba.set_num_threads(args.threads)
    rows = run(args.model, args.multipliers.split(","), args.batch, args.repeats, args.device, args.profile)
    device = torch.cuda.get_device_name() if args.device.startswith("cuda") else f"cpu, {torch.get_num_threads()} threads"
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"{args.model}, batch {args.batch}, {device}, median of {args.repeats}, load average {load:.1f}")
    if not args.device.startswith("cuda"):
        from axhw.emulator.kernels.calibration import machine_description

        print(f"CPU{' (emulated: ' + args.emulate + ')' if args.emulate else ''}: {machine_description()}")
    print("| multiplier | backend | fp32 img/s (wall) | emulated img/s (wall) | slowdown (wall) | fp32 img/s (CPU time) | emulated img/s (CPU time) | slowdown (CPU time) |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['multiplier']} | {r['backend']} | {r['wall_fp32_img_s']:.1f} | {r['wall_emulated_img_s']:.1f} | {r['wall_slowdown']:.1f}x "
            f"| {r['cpu_fp32_img_s']:.1f} | {r['cpu_emulated_img_s']:.1f} | {r['cpu_slowdown']:.1f}x |"
        )
    for r in rows:
        if "profile" in r:
            print(f"profile of one {r['multiplier']} forward: " + ", ".join(f"{k} {v:.3g}" for k, v in r["profile"].items()))


if __name__ == "__main__":
    main()
