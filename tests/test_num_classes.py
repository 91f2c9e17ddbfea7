"""An ImageNet-1k checkpoint on a subset of its classes, or on other classes (``--num-classes``)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import timm
import torch
from PIL import Image
from timm.data import ImageNetInfo

from axhw.cli import main
from axhw.models import HeadWarning, data_class_names, load_model


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    model = timm.create_model("test_vit", pretrained=False)  # 1000-class head
    path = tmp_path_factory.mktemp("ckpt") / "test_vit_in1k.pth"
    torch.save({"state_dict": model.state_dict()}, path)
    return path


def test_imagenet_subset_keeps_the_trained_rows(checkpoint: Path) -> None:
    wnids = ImageNetInfo().label_names()
    names = [wnids[5], wnids[1], wnids[907]]
    full = load_model("test_vit", checkpoint=checkpoint)
    with pytest.warns(HeadWarning, match="kept the 3 rows"):
        subset = load_model("test_vit", checkpoint=checkpoint, num_classes=3, class_names=names)
    x = torch.randn(2, 3, *full.pretrained_cfg["input_size"][1:])
    with torch.no_grad():
        torch.testing.assert_close(subset(x), full(x)[:, [5, 1, 907]])


def test_other_classes_get_an_untrained_head(checkpoint: Path) -> None:
    with pytest.warns(HeadWarning, match="replaced by an untrained one"):
        model = load_model("test_vit", checkpoint=checkpoint, num_classes=4, class_names=["cat", "dog", "x", "y"])
    assert model.get_classifier().out_features == 4


def test_emulate_runs_an_imagenet_checkpoint_on_a_wnid_folder(checkpoint: Path, tmp_path: Path, capsys) -> None:
    wnids = ImageNetInfo().label_names()
    rng = np.random.default_rng(0)
    for wnid in (wnids[3], wnids[10]):
        folder = tmp_path / "data" / wnid
        folder.mkdir(parents=True)
        for k in range(2):
            Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(folder / f"{k}.png")
    spec = f"imagefolder:{tmp_path / 'data'}"
    assert data_class_names(spec) == [wnids[3], wnids[10]]
    code = main(["emulate", "--model", "test_vit", "--checkpoint", str(checkpoint), "--data", spec,
                 "--multiplier", "exact", "--no-progress", "--threads", "1"])
    assert code == 0, capsys.readouterr().err
    assert "int8 exact" in capsys.readouterr().out


def test_retrain_takes_num_classes_and_its_summary_rebuilds_the_same_head(checkpoint: Path, tmp_path: Path, capsys) -> None:
    from axhw.emulator import load_retrained

    rng = np.random.default_rng(1)
    wnids = ImageNetInfo().label_names()
    for wnid in (wnids[3], wnids[10]):
        folder = tmp_path / "data" / wnid
        folder.mkdir(parents=True)
        for k in range(10):
            Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(folder / f"{k}.png")
    out = tmp_path / "rt"
    code = main(["retrain", "--model", "test_vit", "--weights", str(checkpoint), "--num-classes", "1000",
                 "--data", f"imagefolder:{tmp_path / 'data'}", "--multiplier", "exact", "--grad", "ste",
                 "--steps", "1", "--batch-size", "4", "--quiet", "--threads", "1", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    assert json.loads((out / "summary.json").read_text())["num_classes"] == 1000
    assert load_retrained(out).model.get_classifier().out_features == 1000
