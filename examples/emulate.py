"""Emulate the embedded default model with an approximate multiplier.

``approximate`` copies the model, quantizes it to int8 (weights per output channel,
activations calibrated on the ``calib`` split) and routes every Linear, Conv2d and
attention product (Q·Kᵀ, A·V) through the multiplier's 256x256 product table; the
classifier head stays float. The first 128 test images keep the run short; the full
test split has 359 (docs/emulation.md).

Run:  .venv/bin/python examples/emulate.py [MULTIPLIER]     (default drum_k4)
"""

import sys

from axhw.data import get_loader
from axhw.emulator import approximate, evaluate, list_ops
from axhw.models import default_model
from axhw.threads import apply_threads


def main(multiplier: str = "drum_k4") -> None:
    apply_threads()
    model = default_model()
    ops = list_ops(model)
    print(f"{len(ops)} approximable ops, {sum(op.macs_per_image for op in ops):,} multiplications per image; first: {ops[0]}")

    calib = get_loader("digits", "calib", batch_size=32)
    test = get_loader("digits", "test", limit=128)
    exact = approximate(model, "exact", calib, num_batches=2, progress=False)
    approx = approximate(model, {"*": multiplier, "blocks.0.*": "exact"}, calib, num_batches=2, progress=False)
    print("resolved config (first 3 ops):", dict(list(approx.axhw_config_.items())[:3]))

    for label, m in (("fp32", model), ("int8 exact", exact), (f"{multiplier} (block 0 exact)", approx)):
        print(f"top-1 on 128 test images, {label}: {100 * evaluate(m, test, progress=False):.2f} %")


if __name__ == "__main__":
    main(*sys.argv[1:2])
