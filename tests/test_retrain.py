"""Gradient tables, the LUT backward, approximation-aware retraining and its CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from axhw.emulator import RetrainResult, approximate, retrain
from axhw.emulator.gradients import (
    gradient_tables,
    lut_backward,
    lut_backward_factored,
    lut_backward_reference,
)
from axhw.errors import ConfigError
from axhw.emulator import layers as ax_layers


pytestmark = pytest.mark.usefixtures("one_torch_thread")

OPS = np.arange(-128, 128)
EXACT = np.outer(OPS, OPS).astype(np.int32)
#: operands rounded down to a multiple of 8 before an exact product (a low-rank design)
TRUNC8 = np.outer(OPS & ~7, OPS & ~7).astype(np.int32)
#: the exact product plus a fixed random error pattern (no low-rank form)
NOISY = EXACT + np.random.default_rng(0).integers(-60, 60, size=(256, 256)).astype(np.int32)
TOY_NAME = "test_trunc8"


@pytest.fixture
def toy_multiplier(monkeypatch):
    """Serve ``TRUNC8`` under :data:`TOY_NAME` through the emulator's table lookup."""
    original = ax_layers.load_lut

    def load_lut(name: str) -> np.ndarray:
        return TRUNC8 if name == TOY_NAME else original(name)

    caches = [getattr(ax_layers, n) for n in ("_cached_lut", "_prepared_table", "_grad_tables") if hasattr(ax_layers, n)]
    for cache in caches:
        cache.cache_clear()
    monkeypatch.setattr(ax_layers, "load_lut", load_lut)
    yield TOY_NAME
    for cache in caches:
        cache.cache_clear()


# --------------------------------------------------------------------- gradient tables


def test_exact_tables_are_the_exact_partial_derivatives():
    tables = gradient_tables(EXACT)
    assert torch.equal(tables.da, torch.from_numpy(np.broadcast_to(OPS[None, :], (256, 256)).astype(np.float32)))
    assert torch.equal(tables.db, torch.from_numpy(np.broadcast_to(OPS[:, None], (256, 256)).astype(np.float32)))
    assert tables.factored and tables.rank == 0
    assert gradient_tables(EXACT.astype(np.int64)) is tables  # cached by content


def test_tables_are_smoothed_secants_with_constant_width():
    tables = gradient_tables(TRUNC8, half_width=4)
    # a staircase of step 8 has secant slope exactly 1 over any 8-wide window, edges included
    expected = np.broadcast_to((OPS & ~7)[None, :], (256, 256)).astype(np.float32)
    np.testing.assert_array_equal(tables.da.numpy(), expected)
    assert tables.factored and tables.rank == 1
    plain = gradient_tables(TRUNC8, half_width=1)
    assert float(plain.da.abs().max()) > float(tables.da.abs().max())  # unsmoothed: spikes at the steps
    assert not gradient_tables(NOISY).factored
    with pytest.raises(ValueError, match="shape"):
        gradient_tables(EXACT[:10])
    with pytest.raises(ValueError, match="half_width"):
        gradient_tables(EXACT, half_width=0)


def _brute_force(grad_out, a_q, b_q, tables):
    """The contract's formula, one (m, k, n) triple at a time."""
    batch = torch.broadcast_shapes(a_q.shape[:-2], b_q.shape[:-2])
    M, K = a_q.shape[-2:]
    N = b_q.shape[-1]
    a = a_q.expand(*batch, M, K).reshape(-1, M, K)
    b = b_q.expand(*batch, K, N).reshape(-1, K, N)
    g = grad_out.reshape(-1, M, N)
    ga = torch.zeros(a.shape, dtype=torch.float64)
    gb = torch.zeros(b.shape, dtype=torch.float64)
    da, db = tables.da.double(), tables.db.double()
    for t in range(a.shape[0]):
        for m in range(M):
            for k in range(K):
                for n in range(N):
                    i, j = int(a[t, m, k]) + 128, int(b[t, k, n]) + 128
                    ga[t, m, k] += g[t, m, n] * da[i, j]
                    gb[t, k, n] += g[t, m, n] * db[i, j]
    return ga.reshape(*batch, M, K).sum_to_size(a_q.shape), gb.reshape(*batch, K, N).sum_to_size(b_q.shape)


@pytest.mark.parametrize("lut", [TRUNC8, NOISY], ids=["lowrank", "noisy"])
@pytest.mark.parametrize("a_shape,b_shape", [((2, 3, 5, 4), (2, 3, 4, 6)), ((3, 5, 4), (4, 6)), ((2, 1, 5, 4), (1, 3, 4, 6))])
def test_reference_backward_matches_brute_force(lut, a_shape, b_shape):
    gen = torch.Generator().manual_seed(1)
    a = torch.randint(-128, 128, a_shape, generator=gen).to(torch.int8)
    b = torch.randint(-128, 128, b_shape, generator=gen).to(torch.int8)
    a.view(-1)[0], b.view(-1)[-1] = -128, 127  # both table edges
    out_shape = (*torch.broadcast_shapes(a_shape[:-2], b_shape[:-2]), a_shape[-2], b_shape[-1])
    g = torch.randn(out_shape, generator=gen, dtype=torch.float64)
    tables = gradient_tables(lut)
    want = _brute_force(g, a, b, tables)
    got = lut_backward_reference(g, a, b, tables, max_chunk_elems=37)  # many small chunks
    for x, y in zip(got, want):
        assert x.shape == y.shape
        torch.testing.assert_close(x, y, rtol=1e-12, atol=1e-9)
    if tables.factored:
        for x, y in zip(lut_backward_factored(g, a, b, tables), want):
            torch.testing.assert_close(x, y, rtol=1e-6, atol=1e-4)  # float32 factors
    with pytest.raises(ValueError, match="shape mismatch"):
        lut_backward(g, a, b.transpose(-1, -2), tables)


def test_auto_backward_picks_factored_form_and_agrees_on_model_shapes():
    gen = torch.Generator().manual_seed(2)
    a = torch.randint(-127, 128, (64, 17, 64), generator=gen).to(torch.int8)
    b = torch.randint(-127, 128, (64, 96), generator=gen).to(torch.int8)
    g = torch.randn(64, 17, 96, generator=gen)
    tables = gradient_tables(TRUNC8)
    ref = lut_backward(g, a, b, tables, method="reference")
    for x, y in zip(lut_backward(g, a, b, tables), ref):
        torch.testing.assert_close(x, y, rtol=1e-4, atol=1e-2)
    with pytest.raises(ValueError, match="no low-rank form"):
        lut_backward(g, a, b, gradient_tables(NOISY), method="factored")


def test_lut_gradient_of_exact_multiplier_equals_ste():
    """Through the emulator's autograd function: on the exact table both backward modes agree."""
    from axhw.emulator import quantized_matmul
    from axhw.emulator.kernels import prepare_table

    gen = torch.Generator().manual_seed(3)
    grads = {}
    for mode in ("ste", "lut"):
        gen.manual_seed(3)
        a = torch.randn(2, 7, 5, generator=gen).requires_grad_()
        b = torch.randn(5, 3, generator=gen).requires_grad_()
        y = quantized_matmul(a, b, torch.tensor(0.02), torch.full((3,), 0.03), prepare_table(EXACT),
                             grad_mode=mode, grad_tables=lambda: gradient_tables(EXACT))
        (y * torch.arange(3.0)).sum().backward()
        grads[mode] = (a.grad, b.grad)
    for x, y in zip(grads["ste"], grads["lut"]):
        torch.testing.assert_close(x, y, rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------------ the toy check


@pytest.mark.parametrize("grad", ["ste", "lut"])
def test_toy_attention_learns_fp32_target_steadily(toy_multiplier, grad):
    """One approximate attention layer trained to match an fp32 attention: the MSE falls steadily."""
    from timm.layers import Attention

    torch.manual_seed(0)
    target = Attention(32, num_heads=4).eval()
    torch.manual_seed(1)
    student = nn.Sequential(Attention(32, num_heads=4))
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(256, 8, 32, generator=gen)
    with torch.no_grad():
        y = target(x)
    model = approximate(student, {"*": toy_multiplier}, x[:64], progress=False)
    loader = [(x[i:i + 32], y[i:i + 32]) for i in range(0, 256, 32)]
    result = retrain(model, loader, grad=grad, steps=48, lr=3e-3, loss_fn=F.mse_loss, seed=0, progress=False)
    losses = np.array(result.loss_history)
    windows = losses.reshape(6, 8).mean(axis=1)  # one window per epoch of 8 batches
    assert result.steps == 48 and result.epochs == 6
    assert np.all(np.diff(windows) < 0), windows  # decreases every epoch
    assert windows[-1] < 0.35 * windows[0], windows
    assert result.train_accuracy == []  # regression targets: no accuracy


# -------------------------------------------------------------------- retraining runs


def _tiny_setup(multiplier="exact"):
    from axhw.data import get_loader
    from axhw.models import default_model

    train = get_loader("digits", "train", batch_size=16, shuffle=True, limit=48, seed=0)
    val = get_loader("digits", "val", batch_size=64, limit=64)
    model = approximate(default_model(), {"*": multiplier}, get_loader("digits", "calib", batch_size=64, limit=64),
                        progress=False)
    return model, train, val


class _InterruptAt:
    """Cross-entropy that raises KeyboardInterrupt on its ``at``-th call (once)."""

    __name__ = "interrupting_cross_entropy"

    def __init__(self, at: int) -> None:
        self.at, self.calls = at, 0

    def __call__(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if self.calls == self.at:
            raise KeyboardInterrupt
        return F.cross_entropy(outputs, targets)


def test_interrupted_run_resumes_to_the_same_weights(tmp_path):
    settings = dict(grad="ste", steps=5, lr=1e-4, keep_best=False, seed=0, progress=False)
    reference, train, _ = _tiny_setup()
    ref = retrain(reference, train, loss_fn=_InterruptAt(0), **settings)

    model, train, _ = _tiny_setup()
    with pytest.raises(KeyboardInterrupt):
        retrain(model, train, loss_fn=_InterruptAt(5), checkpoint_dir=tmp_path, checkpoint_every=2, **settings)
    model, train, _ = _tiny_setup()
    resumed = retrain(model, train, loss_fn=_InterruptAt(0), checkpoint_dir=tmp_path, **settings)
    assert resumed.resumed_from_step == 4 and resumed.steps == 5 and resumed.epochs == 2
    assert resumed.loss_history == pytest.approx(ref.loss_history, rel=1e-6)
    for (name, a), (_, b) in zip(reference.state_dict().items(), model.state_dict().items()):
        if torch.is_tensor(a):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7, msg=name)

    # a finished run comes back from its checkpoint without training
    again, train, _ = _tiny_setup()
    done = retrain(again, train, loss_fn=_InterruptAt(1), checkpoint_dir=tmp_path, **settings)
    assert done.resumed_from_step == 5 and done.loss_history == resumed.loss_history
    # other settings with the same folder: a clear error
    with pytest.raises(ConfigError, match="differs in: lr"):
        retrain(again, train, loss_fn=_InterruptAt(0), checkpoint_dir=tmp_path, **{**settings, "lr": 1e-3})


def test_validation_history_and_best_epoch_are_kept(tmp_path):
    model, train, val = _tiny_setup()
    result = retrain(model, train, grad="lut", epochs=2, lr=1e-3, val_loader=val, checkpoint_dir=tmp_path, progress=False)
    assert isinstance(result, RetrainResult)
    assert len(result.val_accuracy) == 3 and len(result.epoch_loss) == 2 and len(result.train_accuracy) == 2
    best = max(range(3), key=lambda e: (result.val_accuracy[e], e))
    assert result.best_epoch == best and result.final_val_accuracy == result.val_accuracy[best]
    assert (tmp_path / "retrain.pt").is_file() and (tmp_path / "best.pt").is_file()
    assert RetrainResult.from_json(json.loads(json.dumps(result.to_json()))) == result


def test_bad_arguments_raise_config_error():
    model, train, _ = _tiny_setup()
    with pytest.raises(ConfigError, match="grad"):
        retrain(model, train, grad="sgd")
    with pytest.raises(ConfigError, match="steps"):
        retrain(model, train, steps=0)
    with pytest.raises(ConfigError, match="lr"):
        retrain(model, train, lr=0.0)
    with pytest.raises(ConfigError, match=r"\(inputs, targets\)"):
        retrain(model, [torch.zeros(2, 1, 16, 16)], steps=1, progress=False)


def test_cli_retrain_writes_summary_and_resumes(tmp_path, capsys):
    from axhw.cli import main

    out = tmp_path / "run"
    args = ["retrain", "--multiplier", "exact", "--steps", "2", "--batch-size", "32", "--calib-batches", "1",
            "--eval-size", "64", "--grad", "both", "--quiet", "--out", str(out)]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "retrained (STE)" in printed and "retrained (gradient LUT)" in printed
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["retrained_accuracy"]) == {"ste", "lut"}
    assert summary["fp32_accuracy"] >= 0.95
    assert (out / "retrain_loss.png").stat().st_size > 0 and (out / "ste" / "model.pt").is_file()
    assert main(args) == 0  # second run: from the checkpoints
    assert json.loads((out / "summary.json").read_text())["runs"]["ste"]["resumed_from_step"] == 2
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    assert main(["retrain", "--config", str(bad), "--out", str(out)]) == 2
    assert "must hold a JSON object" in capsys.readouterr().err


@pytest.mark.parametrize("settings, keyword", [
    ({"epochs": 0}, "epochs"), ({"steps": 0}, "steps"), ({"lr": 0.0}, "lr"), ({"lr": float("nan")}, "lr"),
    ({"batch_size": 0}, "batch_size"), ({"eval_size": -1}, "eval_size"), ({"calib_batches": 0}, "calib_batches"),
    ({"num_classes": 0}, "num_classes"),
])
def test_retrain_config_refuses_bad_settings_like_the_cli(settings, keyword, tmp_path, capsys):
    """The Python API checks what `axhw retrain` checks, in one line, before any model is built or anything written."""
    from axhw.cli import main
    from axhw.emulator import retrain_config

    out = tmp_path / "never"
    with pytest.raises(ConfigError, match=rf"^{keyword} must be") as caught:
        retrain_config("exact", out_dir=out, progress=False, **settings)
    assert "\n" not in str(caught.value) and not out.exists()
    flag = "--" + keyword.replace("_", "-")
    if keyword != "calib_batches":  # the CLI counts calibration in images (--calib-size, checked on its own)
        assert main(["retrain", "--multiplier", "exact", flag, str(next(iter(settings.values()))), "--out", str(out)]) == 2
        assert f"{flag} must be" in capsys.readouterr().err


def test_retrain_config_refuses_an_unknown_multiplier_before_measuring(tmp_path, monkeypatch):
    from axhw.emulator import retrain_config
    from axhw.errors import DatabaseError
    import axhw.models

    monkeypatch.setattr(axhw.models, "load_model", lambda *a, **k: pytest.fail("a model was built"))
    with pytest.raises(DatabaseError, match="no_such_design"):
        retrain_config({"*": "exact", "blocks.1.*": "no_such_design"}, out_dir=tmp_path / "never", progress=False)
    with pytest.raises(ConfigError, match="config must map"):
        retrain_config({"*": 3}, out_dir=tmp_path / "never", progress=False)
