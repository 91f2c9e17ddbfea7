"""End-to-end throughput: a timm model emulated through multiplier tables vs the same model in fp32.

Every multiplication of the model except the classifier head (Linear, Conv2d, Q·Kᵀ, A·V)
goes through the multiplier; each row is timed side by side with the fp32 model in the
same process, alternating fp32 and emulated runs so that both see the same machine
load, and reports the median over ``--repeats``.  The ``backend`` column is what
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

from axhw.emulator import approximate
from axhw.emulator.kernels import select_backend

_LAYERS = __import__("importlib").import_module("axhw.emulator.layers")


def _timed(model: torch.nn.Module, x: torch.Tensor) -> float:
    if x.is_cuda:
        torch.cuda.synchronize()
    start = time.perf_counter()
    with torch.no_grad():
        model(x)
    if x.is_cuda:
        torch.cuda.synchronize()
    return time.perf_counter() - start


def run(model_name: str, multipliers: list[str], batch: int, repeats: int, device: str) -> list[dict[str, object]]:
    """One row per multiplier: images/s emulated and fp32, measured alternately."""
    torch.manual_seed(0)
    model = timm.create_model(model_name, pretrained=False).eval().to(device)
    x = torch.randn(batch, *model.pretrained_cfg["input_size"], device=device)
    calib = torch.randn(batch, *model.pretrained_cfg["input_size"], device=device)
    rows = []
    for name in multipliers:
        ax = approximate(model, name, calib, progress=False)
        backend = select_backend(_LAYERS._prepared_table(name), x.device)
        _timed(ax, x), _timed(model, x)  # warm-up: JIT compilation, caches
        fp32, emulated = [], []
        for _ in range(repeats):
            fp32.append(_timed(model, x))
            emulated.append(_timed(ax, x))
        t_fp32, t_emu = statistics.median(fp32), statistics.median(emulated)
        rows.append(
            {
                "multiplier": name,
                "backend": backend,
                "fp32_img_s": batch / t_fp32,
                "emulated_img_s": batch / t_emu,
                "slowdown": t_emu / t_fp32,
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="deit_tiny_patch16_224")
    parser.add_argument("--multipliers", default="exact,drum_k4,trunc_k6", help="comma-separated multiplier names")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    rows = run(args.model, args.multipliers.split(","), args.batch, args.repeats, args.device)
    device = torch.cuda.get_device_name() if args.device.startswith("cuda") else f"cpu, {torch.get_num_threads()} threads"
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"{args.model}, batch {args.batch}, {device}, median of {args.repeats}, load average {load:.1f}")
    print(f"| multiplier | backend | fp32 img/s | emulated img/s | emulated / fp32 time |")
    print("|---|---|---:|---:|---:|")
    for r in rows:
        print(f"| {r['multiplier']} | {r['backend']} | {r['fp32_img_s']:.1f} | {r['emulated_img_s']:.1f} | {r['slowdown']:.1f}x |")


if __name__ == "__main__":
    main()
