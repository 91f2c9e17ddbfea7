"""Smoke test of ``python -m axhw.demo``: every stage runs, in order, on a tiny budget.

The stages are the real ones on the real database and default model; only their
sizes shrink (test images, calibration batches, retraining steps; the search
budget is already the least MCTS accepts: one true evaluation per op), so a broken stage or
a broken hand-over between stages fails here rather than in ``make demo``.
"""

from __future__ import annotations

import functools
import json
import sys

import pytest

# about 25 s of CPU; over a minute of wall time on a busy 2-core machine
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_torch_thread")]

#: Test images any evaluation of the demo uses at most, and optimizer steps per retraining.
TINY_IMAGES = 48
TINY_STEPS = 2


def _with_defaults(function, **defaults):
    """``function`` with ``defaults`` for the keywords its caller leaves out."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        return function(*args, **{**defaults, **kwargs})

    return wrapper


def test_demo_runs_every_stage_on_a_tiny_budget(tmp_path, monkeypatch, capsys):
    import axhw.data
    import axhw.emulator
    from axhw import demo

    # the module the demo imports retrain_config from, wherever the workflow lives
    retraining = sys.modules[axhw.emulator.retrain_config.__module__]

    monkeypatch.setenv("AXHW_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(demo, "_DEMO_SEARCH_EVAL", TINY_IMAGES, raising=False)  # where the demo names it
    monkeypatch.setattr(demo, "_DEMO_CALIB_BATCHES", 1)
    get_loader = axhw.data.get_loader

    def small_loader(spec, split, *args, **kwargs):
        if split not in ("train", "calib"):  # every split that is only evaluated
            kwargs["limit"] = min(kwargs.get("limit") or TINY_IMAGES, TINY_IMAGES)
        return get_loader(spec, split, *args, **kwargs)

    monkeypatch.setattr(axhw.data, "get_loader", small_loader)
    monkeypatch.setattr(retraining, "retrain_config",
                        _with_defaults(retraining.retrain_config, steps=TINY_STEPS, eval_size=TINY_IMAGES))
    out = tmp_path / "demo"

    assert demo.main(["--out", str(out)]) == 0

    printed = capsys.readouterr().out
    for index, (name, _) in enumerate(demo.STAGES, 1):
        assert f"== [{index}/{len(demo.STAGES)}] {name}" in printed
    assert "demo finished" in printed
    for path in ("multipliers.txt", "hardware_costs.txt", "accuracy/uniform.json", "search_result.json",
                 "report/report.html", "report/report.md", "report/config.json"):
        assert (out / path).is_file(), path
    uniform = json.loads((out / "accuracy" / "uniform.json").read_text())
    assert 0.0 <= uniform["int8_accuracy"] <= 1.0 and uniform["rows"]
    result = json.loads((out / "search_result.json").read_text())
    assert 1 < len(result["history"]) <= 1 + 25  # the reference plus the demo's budget
