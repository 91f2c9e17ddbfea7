"""End-to-end throughput: a timm model emulated through multiplier tables vs the same model in fp32.

Every multiplication of the model except the classifier head (Linear, Conv2d, Q·Kᵀ, A·V)
goes through the multiplier; each row is timed side by side with the fp32 model in the
same process, alternating fp32 and emulated runs so that both see the same machine
load, and reports the median over ``--repeats`` of both wall-clock time and process
CPU time (the latter is the stable figure on a shared machine; use ``--threads 1``
to make it the time of one core).  The ``backend`` column is what
``backend="auto"`` picked for the multiplier (the exact low-rank GEMM path for
low-rank tables, else the LUT kernel of the device).

    python benchmarks/emulate.py                                   # DeiT-tiny, batch 8, CPU
    python benchmarks/emulate.py --multipliers exact,drum_k4 --device cuda --batch 64
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

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


def run(model_name: str, multipliers: list[str], batch: int, repeats: int, device: str) -> list[dict[str, object]]:
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
    args = parser.parse_args()
    if args.threads:
        import numba

        torch.set_num_threads(args.threads)
        numba.set_num_threads(args.threads)
    rows = run(args.model, args.multipliers.split(","), args.batch, args.repeats, args.device)
    device = torch.cuda.get_device_name() if args.device.startswith("cuda") else f"cpu, {torch.get_num_threads()} threads"
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"{args.model}, batch {args.batch}, {device}, median of {args.repeats}, load average {load:.1f}")
    print("| multiplier | backend | fp32 img/s (wall) | emulated img/s (wall) | slowdown (wall) | fp32 img/s (CPU time) | emulated img/s (CPU time) | slowdown (CPU time) |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['multiplier']} | {r['backend']} | {r['wall_fp32_img_s']:.1f} | {r['wall_emulated_img_s']:.1f} | {r['wall_slowdown']:.1f}x "
            f"| {r['cpu_fp32_img_s']:.1f} | {r['cpu_emulated_img_s']:.1f} | {r['cpu_slowdown']:.1f}x |"
        )


if __name__ == "__main__":
    main()
