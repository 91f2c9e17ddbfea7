"""``axhw emulate`` on the embedded default model and the digits data."""

from __future__ import annotations

import json
import re

import pytest

from axhw.cli import main


def test_emulate_prints_fp32_int8_and_config_top1(capsys, tmp_path):
    config = tmp_path / "cfg.json"
    config.write_text(json.dumps({"*": "exact", "blocks.0.*": "fp32"}))
    assert main(["emulate", "--config", str(config), "--limit", "64", "--calib-batches", "1", "--no-progress"]) == 0
    out = capsys.readouterr().out
    rows = {name: (float(acc), float(lo), float(hi)) for name, acc, lo, hi in re.findall(
        r"^(fp32|int8 exact|cfg\.json)\s+([\d.]+) % \[([\d.]+), ([\d.]+)\]", out, flags=re.M)}
    assert set(rows) == {"fp32", "int8 exact", "cfg.json"}, out
    assert all(0.0 <= lo <= acc <= hi <= 100.0 for acc, lo, hi in rows.values())  # each top-1 inside its interval
    assert rows["fp32"][0] > 80.0  # the committed digits model is trained
    assert "test split (64 images)" in out
    drop = re.search(r"^cfg\.json\s+.*\]\s+(-?[\d.]+) \[(-?[\d.]+), (-?[\d.]+)\]$", out, flags=re.M)
    assert drop, out  # the paired drop below int8 with its interval
    assert float(drop[2]) <= float(drop[1]) <= float(drop[3])


def test_emulate_reports_bad_config_without_traceback(capsys, tmp_path):
    config = tmp_path / "cfg.json"
    config.write_text(json.dumps({"blocks.0.attn.qvk": "exact"}))
    assert main(["emulate", "--config", str(config), "--limit", "8", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "matches no approximable layer" in err and "blocks.0.attn.qkv" in err and "Traceback" not in err
    config.write_text("{not json")
    assert main(["emulate", "--config", str(config), "--no-progress"]) == 2
    assert "not valid JSON" in capsys.readouterr().err


def test_emulate_device_errors_are_one_line(capsys):
    assert main(["emulate", "--device", "tpu", "--limit", "8", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "'tpu' is not a device name" in err and "Traceback" not in err
    import torch

    if not torch.cuda.is_available():
        assert main(["emulate", "--device", "cuda", "--limit", "8", "--no-progress"]) == 2
        assert "no usable CUDA GPU" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (None, "does not exist"),
        ("{not json", "is not valid JSON"),
        ("[1, 2]", "must hold a JSON object"),
        ('{"blocks.*": 3}', "must hold a JSON object"),
    ],
)
def test_emulate_and_retrain_read_configs_alike(tmp_path, capsys, text, message):
    """One reader (axhw.emulator.load_config) serves both commands: same file, same message."""
    config = tmp_path / "cfg.json"
    if text is not None:
        config.write_text(text)
    for argv in (["emulate", "--config", str(config), "--no-progress"],
                 ["retrain", "--config", str(config), "--out", str(tmp_path / "out"), "--quiet"]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert message in err and str(config) in err and "Traceback" not in err
