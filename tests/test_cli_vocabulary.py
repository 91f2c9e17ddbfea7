"""One vocabulary across the CLI, the old names still working, and stages chaining by file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from axhw.cli import build_parser, main
from axhw.commands._chain import REPORT_CONFIG_KIND, calib_images, layer_config, percent
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
    ("report", ["--retrained SUMMARY", "--retrained-accuracy PERCENT", "--device"], ["FRACTION"]),
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
    # and the report's reader rebuilds exactly that assignment from the saved weights
    from axhw.emulator import load_retrained

    assert load_retrained(out).config == {**result.best().config, "head": "fp32"}
