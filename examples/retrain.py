"""A short approximation-aware retraining of the embedded default model.

``trunc_k6`` on every op costs the default model a lot of accuracy; ``retrain``
fine-tunes the approximated copy through its multipliers, with the multiplier's own
slopes as gradients (``grad="lut"``; ``"ste"`` differentiates the products as exact).
Ten optimizer steps keep it short; ``axhw retrain`` and docs/retraining.md run full
epochs. Checkpoints go to a temporary folder.

Run:  .venv/bin/python examples/retrain.py
"""

import tempfile

from axhw.data import get_loader
from axhw.emulator import approximate, evaluate, retrain
from axhw.models import default_model
from axhw.threads import apply_threads


def main() -> None:
    apply_threads()
    calib = get_loader("digits", "calib", batch_size=32)
    train = get_loader("digits", "train", batch_size=64, shuffle=True)
    val = get_loader("digits", "val", limit=128)
    test = get_loader("digits", "test", limit=128)

    ax = approximate(default_model(), {"*": "trunc_k6"}, calib, num_batches=2, progress=False)
    before = evaluate(ax, test, progress=False)
    with tempfile.TemporaryDirectory(prefix="axhw-retrain-") as ckpt:
        result = retrain(ax, train, grad="lut", steps=10, lr=5e-4, val_loader=val, checkpoint_dir=ckpt, progress=False)
    after = evaluate(ax, test, progress=False)

    print(f"{result.steps} steps, training loss {result.loss_history[0]:.3f} -> {result.loss_history[-1]:.3f}")
    print(f"validation accuracy per epoch (epoch 0 = before): {[round(100 * a, 2) for a in result.val_accuracy]}")
    print(f"top-1 on 128 test images, trunc_k6 everywhere: {100 * before:.2f} % before, {100 * after:.2f} % after")


if __name__ == "__main__":
    main()
