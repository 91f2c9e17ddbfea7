"""One vocabulary across the CLI, the old names still working, and stages chaining by file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from axhw.cli import build_parser, main
from axhw.commands._chain import REPORT_CONFIG_KIND, calib_images, layer_config, percent, retrained_info
from axhw.errors import ConfigError
from axhw.records import OpInfo
from axhw.search.result import Evaluation, SearchResult


def _sub(name: str):
    parser = build_parser()
    return parser, next(a for a in parser._subparsers._group_actions if a.dest == "command").choices[name]


@pytest.mark.parametrize("command, shown, hidden", [
    ("emulate", ["--weights", "--eval-size", "--quiet", "--calib-size"],
     ["--checkpoint", "--limit", "--no-progress", "--calib-batches"]),
    ("retrain", ["--weights", "--eval-size", "--quiet", "--calib-size"], ["--no-progress", "--calib-batches"]),
    ("search", ["--weights", "--eval-size", "--quiet", "--calib-size"], ["--no-progress"]),
    ("report", ["--retrained JSON", "--retrained-accuracy PERCENT"], ["FRACTION"]),
])
def test_help_shows_only_the_new_names(command, shown, hidden):
    text = _sub(command)[1].format_help()
    for name in shown:
        assert name in text, name
    for name in hidden:
        assert name not in text, name


def test_old_emulate_flags_land_on_the_new_ones():
    parser, _ = _sub("emulate")
    old = parser.parse_args(["emulate", "--checkpoint", "w.pt", "--limit", "5", "--no-progress", "--calib-batches", "2"])
    new = parser.parse_args(["emulate", "--weights", "w.pt", "--eval-size", "5", "--quiet", "--calib-size", "64"])
    for args in (old, new):
        assert args.weights == Path("w.pt") and args.eval_size == 5 and args.quiet
        assert calib_images(args, batch_size=32) == 64  # two batches of 32 are 64 images
    assert calib_images(parser.parse_args(["emulate"]), batch_size=32) == 128
    with pytest.raises(ConfigError, match="not both"):
        calib_images(parser.parse_args(["emulate", "--calib-size", "64", "--calib-batches", "2"]), batch_size=32)
    with pytest.raises(ConfigError, match="at least 1"):
        calib_images(parser.parse_args(["emulate", "--calib-size", "0"]), batch_size=32)


def test_retrain_calibration_in_images_and_old_batches():
    parser, _ = _sub("retrain")
    args = parser.parse_args(["retrain", "--multiplier", "exact", "--calib-batches", "3", "--batch-size", "16"])
    assert calib_images(args, batch_size=args.batch_size) == 48
    args = parser.parse_args(["retrain", "--multiplier", "exact", "--no-progress"])
    assert args.quiet and calib_images(args, batch_size=args.batch_size) == 256


def test_accuracy_flag_is_percent_and_old_fraction_still_read():
    assert percent(94.9, "--x") == pytest.approx(0.949)
    with pytest.warns(FutureWarning, match="fraction"):
        assert percent(0.949, "--x") == pytest.approx(0.949)
    with pytest.raises(ConfigError, match="percent"):
        percent(101.0, "--x")


def _search_result(ops: list[str], chosen: dict[str, str]) -> SearchResult:
    infos = [OpInfo(name, "linear", 100) for name in ops]
    history = [Evaluation(0, "reference", {o: "exact" for o in ops}, 0.95, 1.0, 1.0, None),
               Evaluation(1, "mcts", chosen, 0.948, 0.7, 0.7, None)]
    return SearchResult(model_name="default", dataset="digits", ops=infos, candidates=["exact", "m"], method="mcts",
                        seed=0, max_accuracy_drop=1.0, fp32_accuracy=0.955, int8_accuracy=0.95, history=history,
                        sensitivity={o: {"exact": 0.0, "m": 0.1} for o in ops})


def test_config_files_of_every_stage(tmp_path):
    ops = ["blocks.0.attn.qkv", "blocks.0.mlp.fc1"]
    chosen = {ops[0]: "m", ops[1]: "exact"}
    result = _search_result(ops, chosen)
    assert result.best().config == chosen
    search_file = result.save(tmp_path / "search_result.json")
    assert layer_config(search_file) == chosen
    report_file = tmp_path / "config.json"
    report_file.write_text(json.dumps({"kind": REPORT_CONFIG_KIND, "assignment": chosen, "ops": []}))
    assert layer_config(report_file) == chosen
    plain = tmp_path / "plain.json"
    plain.write_text(json.dumps({"blocks.*": "exact"}))
    assert layer_config(plain) == {"blocks.*": "exact"}
    report_file.write_text(json.dumps({"kind": REPORT_CONFIG_KIND}))
    with pytest.raises(ConfigError, match="assignment"):
        layer_config(report_file)


def _summary(tmp_path: Path, config: dict[str, str]) -> Path:
    from axhw.emulator import RetrainReport, RetrainResult
    from axhw.stats import pack_outcomes

    n = 100
    right = lambda k: [i >= k for i in range(n)]  # noqa: E731 - the first k images wrong
    report = RetrainReport(model="default", data="digits", config=config, fp32_accuracy=0.97, int8_accuracy=0.96,
                           approx_accuracy=0.90, retrained_accuracy={"ste": 0.93, "lut": 0.95},
                           runs={"ste": RetrainResult("ste", 1e-4, epochs=2, val_accuracy=[0.9, 0.96], best_epoch=1),
                                 "lut": RetrainResult("lut", 1e-4, epochs=2, val_accuracy=[0.9, 0.92], best_epoch=1)},
                           n_images=n, outcomes={"int8": pack_outcomes(right(4)), "approx": pack_outcomes(right(10)),
                                                 "ste": pack_outcomes(right(7)), "lut": pack_outcomes(right(5))})
    path = tmp_path / "summary.json"
    path.write_text(json.dumps(report.to_json()))
    return path


def test_retrain_summary_becomes_the_report_entry(tmp_path):
    info = retrained_info(_summary(tmp_path, {"*": "exact"}))
    # ste kept the better val epoch (0.96 > 0.92): chosen on val although lut scored higher on test
    assert info["grad"] == "ste" and info["accuracy"] == pytest.approx(0.93) and info["epochs"] == 2
    assert info["split"] == "test" and info["n_images"] == 100
    assert info["drop"]["drop"] == pytest.approx(3.0)  # points below int8 on the same images
    lo, hi = info["interval"]
    assert lo < 0.93 < hi
    plain = tmp_path / "plain.json"
    plain.write_text(json.dumps({"accuracy": 0.9, "grad": "lut"}))
    assert retrained_info(plain) == {"accuracy": 0.9, "grad": "lut"}
    plain.write_text("[0.9]")
    with pytest.raises(ConfigError, match="summary.json"):
        retrained_info(plain)
    with pytest.raises(ConfigError, match="no such file"):
        retrained_info(tmp_path / "missing.json")


def test_retrain_reads_a_search_result(tmp_path, capsys):
    from axhw.emulator import list_ops
    from axhw.models import default_model

    ops = [op.name for op in list_ops(default_model()) if op.name != "head"]  # the search never assigns the head
    result = _search_result(ops, {op: "exact" for op in ops})
    path = result.save(tmp_path / "search_result.json")
    out = tmp_path / "run"
    assert main(["retrain", "--config", str(path), "--steps", "1", "--batch-size", "32", "--calib-size", "32",
                 "--eval-size", "32", "--grad", "ste", "--quiet", "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["config"] == result.best().config
    assert retrained_info(out / "summary.json")["grad"] == "ste"


def test_reading_a_summary_loads_no_deep_learning_stack(tmp_path):
    """`axhw report --retrained summary.json` stays as light as the report itself."""
    import subprocess
    import sys

    path = _summary(tmp_path, {"*": "exact"})
    code = ("import sys; from axhw.commands._chain import retrained_info; "
            f"assert retrained_info(__import__('pathlib').Path({str(path)!r}))['grad'] == 'ste'; "
            "print(sorted(m for m in ('torch', 'timm', 'numba') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]", proc.stdout
