"""Data sets (digits, image folders), the embedded default model and its training script."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from axhw.data import DIGITS_CALIB_SIZE, SPLITS, get_dataset, get_loader, num_classes
from axhw.errors import DataError
from axhw.models import DEFAULT_CONFIG, default_metrics, default_model, default_weights_path, load_model


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _digits_key(images: torch.Tensor) -> set[bytes]:
    return {row.numpy().tobytes() for row in images.reshape(len(images), -1)}


# ------------------------------------------------------------------------------ digits


def test_digits_splits_are_disjoint_cover_everything_and_are_fixed():
    sets = {split: get_dataset("digits", split, image_size=8) for split in SPLITS}
    sizes = {split: len(ds) for split, ds in sets.items()}
    assert sizes["train"] + sizes["val"] + sizes["search"] + sizes["test"] == 1797
    assert sizes["calib"] == DIGITS_CALIB_SIZE
    assert sizes["test"] >= 350  # one image is < 0.3 accuracy points
    assert sizes["search"] >= 250 and sizes["val"] >= 250  # the search and the epoch choice each get their own
    # the calib split is a subset of train; train, val, search and test do not overlap (by index)
    from axhw.data import _digits_arrays

    index = _digits_arrays()[2]
    pieces = [set(index[s].tolist()) for s in ("train", "val", "search", "test")]
    assert sum(len(p) for p in pieces) == len(set().union(*pieces)) == 1797
    torch.testing.assert_close(sets["calib"].images, sets["train"].images[:DIGITS_CALIB_SIZE])
    again = get_dataset("digits", "test", image_size=8)
    torch.testing.assert_close(again.images, sets["test"].images, rtol=0, atol=0)
    assert torch.equal(again.targets, sets["test"].targets)
    assert set(sets["test"].targets.tolist()) == set(range(10))
    # the digits data set has a few duplicate images; the splits share almost none
    overlap = _digits_key(sets["train"].images) & _digits_key(sets["test"].images)
    assert len(overlap) <= 5


@pytest.mark.parametrize("size,channels", [(None, 1), (16, 1), (32, 3)])
def test_digits_shapes_and_normalization(size, channels):
    ds = get_dataset("digits", "train", image_size=size, channels=channels)
    side = 16 if size is None else size
    image, label = ds[0]
    assert image.shape == (channels, side, side) and image.dtype == torch.float32
    assert isinstance(label, int) and 0 <= label < 10
    if size in (None, 16) and channels == 1:
        # normalized with the training statistics (bilinear upsampling keeps the mean)
        assert abs(float(ds.images.mean())) < 0.05
        assert 0.8 < float(ds.images.std()) < 1.2
    if channels == 3:
        assert torch.equal(ds.images[:, 0], ds.images[:, 2])


def test_loader_limit_batches_and_seeded_shuffle():
    loader = get_loader("digits", "test", batch_size=32, limit=70)
    batches = list(loader)
    assert [len(y) for _, y in batches] == [32, 32, 6]
    first = [y.tolist() for _, y in get_loader("digits", "train", batch_size=16, shuffle=True, seed=3)][:3]
    second = [y.tolist() for _, y in get_loader("digits", "train", batch_size=16, shuffle=True, seed=3)][:3]
    other = [y.tolist() for _, y in get_loader("digits", "train", batch_size=16, shuffle=True, seed=4)][:3]
    assert first == second and first != other


def test_bad_specs_and_arguments_raise_data_error(tmp_path):
    with pytest.raises(DataError, match="unknown data spec"):
        get_dataset("mnist")
    with pytest.raises(DataError, match="unknown split"):
        get_dataset("digits", "holdout")
    with pytest.raises(DataError, match="does not exist"):
        get_dataset(f"imagefolder:{tmp_path / 'nope'}")
    with pytest.raises(DataError, match="has no path"):
        num_classes("imagefolder:")
    with pytest.raises(DataError, match="image_size"):
        get_dataset("digits", image_size=4)
    with pytest.raises(DataError, match="batch_size"):
        get_loader("digits", batch_size=0)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="no class sub-folders"):
        num_classes(f"imagefolder:{empty}")


# ------------------------------------------------------------------------ image folder


def _write_images(root, classes=("cat", "dog"), per_class=3):
    from PIL import Image

    rng = np.random.default_rng(0)
    for name in classes:
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 255, size=(20, 24, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / name / f"{i}.png")


def _paths(ds) -> set[str]:
    """Image files a (possibly Subset-wrapped) ImageFolder split reads."""
    if hasattr(ds, "indices"):
        return {ds.dataset.samples[i][0] for i in ds.indices}
    return {path for path, _ in ds.samples}


def test_imagefolder_flat_tree_is_split_with_a_printed_seed_never_reused(tmp_path, capsys):
    _write_images(tmp_path, per_class=20)
    spec = f"imagefolder:{tmp_path}"
    assert num_classes(spec) == 2
    sets = {split: get_dataset(spec, split, image_size=32) for split in ("train", "val", "search", "test")}
    assert "seeded split" in capsys.readouterr().err  # said once, out loud
    files = {split: _paths(ds) for split, ds in sets.items()}
    assert sum(len(f) for f in files.values()) == len(set().union(*files.values())) == 40  # disjoint, complete
    assert {split: len(f) for split, f in files.items()} == {"train": 24, "val": 4, "search": 6, "test": 6}
    assert _paths(get_dataset(spec, "calib", image_size=32)) == files["train"]
    assert _paths(get_dataset(spec, "test", image_size=32)) == files["test"]  # the same seed every time
    image, label = sets["train"][0]
    assert image.shape == (3, 32, 32) and label in (0, 1)
    x, _ = next(iter(get_loader(spec, "search", batch_size=4, image_size=16, channels=1)))
    assert x.shape == (4, 1, 16, 16)


def test_imagefolder_train_and_val_only_carves_search_and_test_out_of_val(tmp_path, capsys):
    _write_images(tmp_path / "train", per_class=2)
    _write_images(tmp_path / "val", classes=("cat", "dog", "eel"), per_class=5)
    spec = f"imagefolder:{tmp_path}"
    assert len(get_dataset(spec, "train", image_size=8)) == 4
    assert len(get_dataset(spec, "calib", image_size=8)) == 4  # falls back to train/
    files = {split: _paths(get_dataset(spec, split, image_size=8)) for split in ("val", "search", "test")}
    assert sum(len(f) for f in files.values()) == len(set().union(*files.values())) == 15
    assert {split: len(f) for split, f in files.items()} == {"val": 3, "search": 6, "test": 6}
    assert "seeded split" in capsys.readouterr().err


def test_imagefolder_without_a_split_a_step_needs_is_an_error(tmp_path):
    _write_images(tmp_path / "test", per_class=2)
    spec = f"imagefolder:{tmp_path}"
    assert len(get_dataset(spec, "test", image_size=8)) == 4
    with pytest.raises(DataError, match="split 'train'"):
        get_dataset(spec, "train")
    with pytest.raises(DataError, match="split 'search'"):
        get_dataset(spec, "search")


# ----------------------------------------------------------------------- default model


def test_default_model_reaches_recorded_accuracy():
    model = default_model()
    metrics = default_metrics()
    test = get_dataset("digits", "test")
    with torch.no_grad():
        accuracy = float((model(test.images).argmax(1) == test.targets).float().mean())
    assert accuracy == pytest.approx(metrics["test_accuracy"], abs=1e-6)
    assert accuracy >= 0.97
    assert metrics["n_train"] == len(get_dataset("digits", "train"))  # trained on today's train split only
    assert metrics["weights_sha256"] == __import__("hashlib").sha256(default_weights_path().read_bytes()).hexdigest()
    from timm.layers import Attention, Mlp, PatchEmbed

    kinds = {type(m) for m in model.modules()}
    assert {Attention, Mlp, PatchEmbed} <= kinds and not model.training


def test_load_model_names_checkpoints_and_errors(tmp_path):
    path = tmp_path / "ckpt.pt"
    torch.save({"state_dict": default_model().state_dict()}, path)
    loaded = load_model("default", checkpoint=path)
    for (name, a), (_, b) in zip(default_model().state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), name
    assert load_model("default", num_classes=3).head.out_features == 3
    tiny = load_model("vit_tiny_patch16_224", num_classes=5)
    assert tiny.head.out_features == 5 and not tiny.training
    with pytest.raises(DataError, match="unknown model"):
        load_model("vit_nonexistent_model")
    with pytest.raises(DataError, match="does not exist"):
        load_model("default", checkpoint=tmp_path / "missing.pt")
    torch.save({"bogus": torch.zeros(1)}, tmp_path / "bad.pt")
    with pytest.raises(DataError, match="does not fit"):
        load_model("default", checkpoint=tmp_path / "bad.pt")


def test_training_is_seeded_and_writes_atomically(tmp_path):
    from axhw.training import TrainConfig, main, train_default

    config = TrainConfig(epochs=1, seed=5)
    first = train_default(config, progress=False)
    second = train_default(config, progress=False)
    for (name, a), (_, b) in zip(first.model.state_dict().items(), second.model.state_dict().items()):
        assert torch.equal(a, b), name
    threads = torch.get_num_threads()
    try:
        assert main(["--epochs", "1", "--seed", "5", "--threads", str(threads), "--out", str(tmp_path)]) == 0
    finally:
        torch.set_num_threads(threads)
    metrics = json.loads((tmp_path / "digits_vit.json").read_text())
    assert metrics["model_config"] == DEFAULT_CONFIG and metrics["train_config"]["seed"] == 5
    assert 0.0 <= metrics["test_accuracy"] <= 1.0 and len(metrics["history"]) == 1
    state = torch.load(tmp_path / "digits_vit.pt", weights_only=True)
    # Same seed, same weights: bit for bit within one process state (above); main() applies the thread
    # budget, which starts Numba's OpenMP pool when Numba is loaded, and that can move torch's float
    # results by an ulp, so across that step the weights are compared to 1e-4 (measured: up to 1e-5 after one epoch).
    for name, value in first.model.state_dict().items():
        torch.testing.assert_close(state[name], value, rtol=0, atol=1e-4, msg=lambda m: f"{name}: {m}")
    assert not list(tmp_path.glob(".*.tmp"))
