"""`axhw search` and axhw.search.run on the real embedded default."""

from __future__ import annotations

import json

import pytest

from axhw.cli import main


def test_cli_search_bad_input_exits_2(capsys):
    assert main(["search", "--candidates", ",", "--quiet"]) == 2
    assert "candidate set is empty" in capsys.readouterr().err
    assert main(["search", "--candidates", "no_such_multiplier", "--quiet", "--budget", "30"]) == 2
    assert "no_such_multiplier" in capsys.readouterr().err


def test_cli_search_help_lists_methods(capsys):
    with pytest.raises(SystemExit):
        main(["search", "--help"])
    out = capsys.readouterr().out
    for method in ("mcts", "mcts_uniform", "random", "greedy", "knapsack", "nsga2", "uniform"):
        assert method in out


def _costed_candidate():
    from axhw import library

    names = [(m.metrics.mae, m.name) for m in library.load_all()
             if m.name != "exact" and m.hw is not None and m.metrics.mae > 0]
    assert names, "no approximate multiplier with a hardware-cost record: run `axhw characterize --hw --all`"
    return min(names)[1]


@pytest.mark.slow
def test_cli_search_real_default_and_resume(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("AXHW_CACHE", str(tmp_path / "cache"))
    name = _costed_candidate()
    out = tmp_path / "r.json"
    ckpt = tmp_path / "ckpt.json"
    argv = ["search", "--candidates", name, "--budget", "25", "--eval-size", "64", "--calib-size", "32",
            "--checkpoint", str(ckpt), "-o", str(out), "--quiet", "--no-cache", "--power", "uniform"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "result written to" in printed
    # every accuracy names its split; the held-out figures come with intervals
    assert "its accuracy (search)" in printed and "its drop vs int8 (test)" in printed and "[" in printed
    from axhw.search import SearchResult

    result = SearchResult.load(out)
    from axhw.hw import best_exact

    assert result.eval_split == "search" and result.holdout["split"] == "test"
    assert len(result.ops) == 25 and result.candidates == [best_exact().name, name]
    assert result.settings["power_reference"] == best_exact().name
    assert 1 <= len(result.history) - 1 <= 25
    assert set(result.sensitivity) == {op.name for op in result.ops}
    # resuming a finished search re-evaluates nothing
    assert main(argv) == 0
    again = SearchResult.load(out)
    assert again.settings["replayed_from_checkpoint"] == len(again.history) - 1
    assert json.loads(out.read_text())["history"] == result.to_json()["history"]
