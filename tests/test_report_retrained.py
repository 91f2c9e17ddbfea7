"""search -> retrain -> report by file: the report measures the retrained model itself, on the held-out split."""

from __future__ import annotations

import json
import shutil

import pytest

import axhw.data
from axhw.errors import ConfigError, DataError
from axhw.records import OpInfo
from axhw.report import write_report
from axhw.search.result import Evaluation, SearchResult

pytestmark = pytest.mark.usefixtures("one_torch_thread")

APPROX = "trunc_k6"


def _result(config: dict[str, str]) -> SearchResult:
    """A hand-made search result choosing ``config``, with held-out scores of its int8 reference on test."""
    from axhw.emulator import list_ops
    from axhw.models import default_model
    from axhw.search import ModelTask, load_split, score_holdout

    ops = [op for op in list_ops(default_model()) if op.name != "head"]  # the search never assigns the head
    exact = {op.name: "exact" for op in ops}
    history = [Evaluation(0, "reference", exact, 0.97, 1.0, 1.0, None, 48),
               Evaluation(1, "mcts", dict(config), 0.96, 0.8, 0.8, None, 48)]
    result = SearchResult(model_name="default", dataset="digits", ops=[OpInfo(o.name, o.kind, o.macs_per_image) for o in ops],
                          candidates=["exact", APPROX], method="mcts", seed=0, max_accuracy_drop=2.0,
                          fp32_accuracy=0.97, int8_accuracy=0.97, history=history,
                          settings={"eval_split": "search", "holdout_split": "test"})
    test = load_split("digits", "test")
    calib = load_split("digits", "calib", 64)[0]
    score_holdout(result, ModelTask(default_model(), *test, calib), "test", indices=[1])
    return result


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    """``(result, retrain folder)``: the result's chosen configuration retrained 2 steps (STE), scored on all of test."""
    from axhw.emulator.retraining import retrain_config

    from axhw.emulator import list_ops
    from axhw.models import default_model

    chosen = {op.name: (APPROX if op.name.startswith("blocks.1.") else "exact")
              for op in list_ops(default_model()) if op.name != "head"}
    result = _result(chosen)
    out = tmp_path_factory.mktemp("retrain")
    retrain_config(chosen, grads=("ste",), steps=2, batch_size=32, calib_batches=1, out_dir=out, progress=False)
    return result, out


def test_report_measures_the_retrained_weights_on_the_held_out_images(chain, tmp_path):
    from axhw.emulator import load_retrained
    from axhw.emulator.scoring import correct_per_image
    from axhw.stats import pack_outcomes, paired_drop, unpack_outcomes

    result, out = chain
    paths = write_report(result, tmp_path / "rep", retrained=out)  # the folder works as well as summary.json
    assert not [f for f in paths.flags if "retrain" in f]  # (the made-up power_rel is flagged, rightly)
    entry = json.loads(paths.config.read_text())["retraining"]
    assert entry["source"] == "measured" and entry["split"] == "test" and entry["grad"] == "ste"
    n = result.holdout["n_images"]
    assert entry["n_images"] == n == len(axhw.data.get_dataset("digits", "test"))
    # the figure is the weights' own score, image for image, and the drop is paired with the result's int8 reference
    model = load_retrained(out / "summary.json").model
    correct = correct_per_image(model, axhw.data.get_loader("digits", "test", batch_size=128))
    assert entry["correct"] == pack_outcomes(correct) and entry["accuracy"] == pytest.approx(correct.mean())
    drop = paired_drop(unpack_outcomes(result.holdout["reference"]["correct"], n), correct)
    assert entry["drop"]["drop"] == pytest.approx(drop.drop) and entry["drop"]["lower"] == pytest.approx(drop.lower)
    lo, hi = entry["interval"]
    assert lo <= entry["accuracy"] <= hi
    md = paths.markdown.read_text()
    assert "measured by this report" in md and f"{100 * entry['accuracy']:.2f} %" in md and drop.format() in md


def test_tampered_summary_number_is_not_reported_and_is_flagged(chain, tmp_path, capsys):
    from axhw.cli import main

    result, out = chain
    copy = shutil.copytree(out, tmp_path / "rt")
    summary = json.loads((copy / "summary.json").read_text())
    measured = summary["retrained_accuracy"]["ste"]
    summary["retrained_accuracy"]["ste"] = 0.5  # the number a user might type; the weights did not change
    (copy / "summary.json").write_text(json.dumps(summary))
    path = result.save(tmp_path / "result.json")
    assert main(["report", str(path), "-o", str(tmp_path / "rep"), "--retrained", str(copy / "summary.json")]) == 0
    err = capsys.readouterr().err
    assert "warning:" in err and "records 50.00 %" in err and f"{100 * measured:.2f} % here" in err
    config = json.loads((tmp_path / "rep" / "config.json").read_text())
    assert config["accuracy"]["retrained"] == pytest.approx(measured)
    assert config["retraining"]["recorded"]["accuracy"] == 0.5
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "records 50.00 %" in md and "it disagrees" in md


def test_another_assignment_is_refused(chain, tmp_path, capsys):
    from axhw.cli import main

    result, out = chain
    exact = {op: "exact" for op in result.best().config}
    other = SearchResult.from_json({**result.to_json()})
    other.history[1] = Evaluation(1, "mcts", exact, 0.96, 0.8, 0.8, None, 48)
    with pytest.raises(ConfigError, match=r"another assignment .* blocks\.1\.\S+: trunc_k6 retrained, exact chosen"):
        write_report(other, tmp_path / "rep", retrained=out)
    # the CLI says it in one line, exit 2, no report written
    path = other.save(tmp_path / "other.json")
    assert main(["report", str(path), "-o", str(tmp_path / "rep2"), "--retrained", str(out)]) == 2
    err = capsys.readouterr().err
    assert "another assignment" in err and "axhw retrain --config" in err and "Traceback" not in err
    assert not (tmp_path / "rep2" / "report.md").exists()
    # a summary whose config does not build the saved weights' model: one line, not a state-dict dump
    copy = shutil.copytree(out, tmp_path / "rt")
    summary = json.loads((copy / "summary.json").read_text())
    (copy / "summary.json").write_text(json.dumps({**summary, "config": {"*": "exact", "blocks.1.*": "fp32"}}))
    with pytest.raises(ConfigError, match="do not fit"):
        write_report(result, tmp_path / "rep3", retrained=copy)


def test_only_the_held_out_split_is_read(chain, monkeypatch):
    from axhw.search import score_retrained

    result, out = chain
    reads = []
    real = axhw.data.get_dataset

    def get_dataset(spec="digits", split="test", *args, **kwargs):
        reads.append(split)
        return real(spec, split, *args, **kwargs)

    monkeypatch.setattr(axhw.data, "get_dataset", get_dataset)
    score = score_retrained(result, out / "summary.json")
    assert reads == ["test"] and score.split == "test"
    # a held-out split that no longer matches the one the result scored: no paired drop can exist
    result = SearchResult.from_json(result.to_json())
    result.holdout["n_images"] = 300
    with pytest.raises(DataError, match="data changed"):
        score_retrained(result, out / "summary.json")


def test_bad_retrained_inputs_are_one_line_errors(chain, tmp_path):
    from axhw.search import score_retrained

    result, out = chain
    with pytest.raises(ConfigError, match="no such retraining summary"):
        score_retrained(result, tmp_path / "missing")
    (tmp_path / "plain.json").write_text(json.dumps({"accuracy": 0.9}))
    with pytest.raises(ConfigError, match="not the summary.json of `axhw retrain`"):
        score_retrained(result, tmp_path / "plain.json")
    with pytest.raises(ConfigError, match="no retrained model for grad 'lut'"):
        score_retrained(result, out, grad="lut")
    copy = shutil.copytree(out, tmp_path / "rt")
    (copy / "ste" / "model.pt").unlink()
    summary = json.loads((copy / "summary.json").read_text())
    summary["files"]["weights_ste"] = str(tmp_path / "gone.pt")
    (copy / "summary.json").write_text(json.dumps(summary))
    with pytest.raises(ConfigError, match="keep the retraining folder whole"):
        score_retrained(result, copy)


def test_cli_passes_grad_device_and_backend_to_the_measurement(chain, tmp_path, monkeypatch, capsys):
    import torch

    import axhw.search.retrained
    from axhw.cli import main

    result, out = chain
    path = result.save(tmp_path / "result.json")
    seen = {}
    real = axhw.search.retrained.score_retrained

    def capture(*args, **kwargs):
        seen.update(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(axhw.search.retrained, "score_retrained", capture)
    assert main(["--threads", "1", "report", str(path), "-o", str(tmp_path / "rep"), "--retrained", str(out),
                 "--retrained-grad", "ste", "--device", "cpu", "--backend", "numba_cpu"]) == 0
    assert seen == {"grad": "ste", "device": "cpu", "backend": "numba_cpu"}
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "--retrained-grad ste --device cpu --backend numba_cpu" in md  # the command, for reproduction
    capsys.readouterr()
    if not torch.cuda.is_available():
        assert main(["report", str(path), "-o", str(tmp_path / "rep2"), "--retrained", str(out), "--device", "cuda"]) == 2
        err = capsys.readouterr().err
        assert "cuda" in err.lower() and "Traceback" not in err and len(err.strip().splitlines()) == 1
    with pytest.raises(SystemExit):
        main(["report", str(path), "-o", str(tmp_path / "rep3"), "--retrained-grad", "sgd"])
    assert main(["report", str(path), "-o", str(tmp_path / "rep3"), "--retrained-grad", "ste"]) == 2
    assert "give --retrained too" in capsys.readouterr().err
