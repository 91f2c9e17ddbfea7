"""Tests of the accelerator configuration report (axhw.report, `axhw report`)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from axhw.errors import AxhwError, ConfigError, DataError
from axhw.io import sha256_bytes, sha256_file
from axhw.records import HardwareCost, OpInfo
from axhw.report import load_result, write_report
from axhw.report.content import gather
from axhw.search.result import Evaluation, SearchResult

SECTIONS = ("Summary", "Per-layer assignment", "Search", "Hardware hand-off", "Reproducibility")


# --------------------------------------------------------------------------- a small real database

#: Test designs: name -> (energy_pj, area_um2, delay_ns, low product bits forced to zero).  The
#: designs are characterized for real; their hardware costs are test values, not synthesis results.
_DESIGNS = {
    "exact": (1.00, 5000.0, 3.1, 0),
    "trunc2": (0.70, 3900.0, 2.8, 2),
    "trunc4": (0.45, 2600.0, 2.4, 4),
}


def _liberty_sha() -> str:
    from axhw.hw.liberty import find_liberty

    path = find_liberty("osu018")
    return sha256_file(path) if path is not None else "0" * 64


def _write_costs(db: Path, name: str, rtl_sha256: str, liberty_sha256: str) -> None:
    """``hw.json`` in the format :mod:`axhw.hw` writes, with the test costs of ``_DESIGNS``."""
    energy, area, delay, _ = _DESIGNS[name]
    cost = HardwareCost(area_um2=area, cell_count=100, delay_ns=delay, power_mw=energy / 10.0, energy_pj=energy,
                        clock_ns=10.0, liberty="osu018", liberty_sha256=liberty_sha256, tools={"yosys": "test"})
    from axhw import library
    from axhw.records import HW_FLOW_VERSION

    def hw_json(old, key):
        assert key["rtl_sha256"] == rtl_sha256
        return json.dumps({"schema": 2, "key": key, "costs": [{**cost.to_json(), "flow": HW_FLOW_VERSION}]}).encode()

    library.update_hw_file(name, hw_json)


def _use(monkeypatch, root: Path) -> None:
    monkeypatch.setenv("AXHW_DB", str(root / "db"))
    monkeypatch.setenv("AXHW_CACHE", str(root / "cache"))
    monkeypatch.setattr("axhw.paths.rtl_dir", lambda: root / "rtl")
    monkeypatch.setattr("axhw.library.rtl_dir", lambda: root / "rtl")


@pytest.fixture(scope="module")
def built_database(tmp_path_factory) -> tuple[Path, list[str]]:
    """Three designs characterized by :func:`axhw.library.add` (cocotb + Icarus) into a fresh database."""
    from axhw import library

    root = tmp_path_factory.mktemp("axhw")
    rtl = root / "rtl"
    rtl.mkdir()
    with pytest.MonkeyPatch.context() as mp:
        _use(mp, root)
        for name, (_, _, _, bits) in _DESIGNS.items():
            product = "{p[15:%d], %d'b0}" % (bits, bits) if bits else "p"
            (rtl / f"{name}.v").write_text(
                f"module {name}_mul(input signed [7:0] a, input signed [7:0] b, output signed [15:0] y);\n"
                f"  wire signed [15:0] p = a * b;\n  assign y = {product};\nendmodule\n")
            mult = library.add(rtl / f"{name}.v", name=name, family="exact" if name == "exact" else "truncation")
            _write_costs(root / "db", name, mult.rtl_sha256, _liberty_sha())
    return root, list(_DESIGNS)


@pytest.fixture()
def database(built_database, tmp_path, monkeypatch) -> Path:
    """A private copy of the built database (tests may break it); returns its root (rtl/, db/)."""
    root = tmp_path / "axhw"
    shutil.copytree(built_database[0], root)
    _use(monkeypatch, root)
    return root


@pytest.fixture()
def designs(built_database) -> list[str]:
    """Names of the test designs, ``exact`` first."""
    return list(built_database[1])


def _power(ops, config, energies) -> float:
    num = sum(op.macs_per_image * energies[config[op.name]] for op in ops)
    return num / sum(op.macs_per_image * energies["exact"] for op in ops)


@pytest.fixture()
def result(database, designs) -> SearchResult:
    """A hand-built search result over four ops (every op kind) and the three designs."""
    op = OpInfo
    ops = [op("patch_embed.proj", "conv", 12_288), op("blocks.0.attn.qkv", "linear", 36_864),
           op("blocks.0.attn.qk", "qk", 4_096), op("blocks.0.attn.av", "av", 4_096)]
    from axhw import library

    energies = {n: library.load(n).hw.energy_pj for n in designs}
    rng = np.random.default_rng(0)
    history = [Evaluation(0, "reference", {o.name: "exact" for o in ops}, 0.95, 1.0, 1.0, None)]
    for k in range(1, 24):
        method = ("mcts", "random", "greedy")[k % 3]
        config = {o.name: str(rng.choice(designs)) for o in ops}
        p = _power(ops, config, energies)
        acc = round(0.95 - 0.08 * (1 - p) ** 2 - 0.01 * rng.random(), 4)
        history.append(Evaluation(k, method, config, acc, p, p, acc + 0.003 if method == "mcts" else None))
    return SearchResult(
        model_name="default", dataset="digits", ops=ops, candidates=list(designs), method="mcts", seed=3,
        max_accuracy_drop=1.0, fp32_accuracy=0.955, int8_accuracy=0.95, history=history,
        sensitivity={o.name: {m: 0.2 * i * j for j, m in enumerate(designs)} for i, o in enumerate(ops)},
        surrogate_metrics={"rmse": 0.4, "kendall_tau": 0.71, "predicted": [0.6, 1.7, 3.9], "true": [0.5, 2.5, 4.0],
                           "protocol": "hand-built"},
        mcts_rewards=[float(x) for x in rng.random(40)],
        settings={"budget": 24, "liberty": "osu018", "command": "axhw search --budget 24 --seed 3"},
        versions={"axhw": "0.1.0", "torch": "2.x"},
    )


# --------------------------------------------------------------------------- helpers

def _section(md: str, title: str) -> str:
    start = md.index(f"## {title}\n")
    nxt = md.find("\n## ", start + 1)
    return md[start: nxt if nxt >= 0 else None]


def _first_table_rows(text: str) -> list[str]:
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append(line)
    return rows


def assert_self_contained(html: str) -> None:
    """No external URL, every src= an embedded data URI, no linked stylesheet or script."""
    assert "http://" not in html and "https://" not in html
    assert "<link" not in html.lower() and "<script" not in html.lower()
    srcs = re.findall(r'src\s*=\s*"([^"]*)"', html)
    assert srcs, "the report embeds its figures"
    assert all(s.startswith("data:image/png;base64,") for s in srcs)
    assert "url(" not in html


def check_report(out_dir: Path, result) -> None:
    """Everything the issue asks of a report in ``out_dir``, for any result."""
    md = (out_dir / "report.md").read_text(encoding="utf-8")
    html = (out_dir / "report.html").read_text(encoding="utf-8")
    filelist = (out_dir / "filelist.f").read_text(encoding="utf-8")
    for title in SECTIONS:
        assert f"## {title}" in md and f">{title}</h2>" in html
    summary = _section(md, "Summary")
    for text in ("fp32", "int8, every multiplier exact", "before retraining", "after retraining",
                 "relative to all-exact", "multiplier area", "constraint", result.model_name, result.dataset):
        assert text in summary, text
    layers = _section(md, "Per-layer assignment")
    rows = _first_table_rows(layers)
    assert len(rows) == len(result.ops)
    chosen = result.best()
    for op, row in zip(result.ops, rows):
        assert f"`{op.name}`" in row and f" {chosen.config[op.name]} " in row
    assert_self_contained(html)
    config = json.loads((out_dir / "config.json").read_text())
    assert config["assignment"] == {op.name: chosen.config[op.name] for op in result.ops}
    assert config["power_rel"] == chosen.power_rel and config["accuracy"]["chosen"] == chosen.accuracy
    assert len(config["ops"]) == len(result.ops)
    assert (out_dir / "plots" / "accuracy_vs_power.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "](plots/accuracy_vs_power.png)" in md
    handoff = _section(md, "Hardware hand-off")
    for module in config["modules"]:
        if module["status"] == "ok":
            assert module["rtl_file"] in filelist
            assert sha256_file(out_dir / module["rtl_file"]) == module["rtl_sha256"]
            assert module["rtl_sha256"] in handoff
    repro = _section(md, "Reproducibility")
    for text in (str(result.seed), "numpy", "sha256", "Liberty"):
        assert text in repro


# --------------------------------------------------------------------------- tests

def test_report_from_hand_built_result(result, tmp_path):
    paths = write_report(result, tmp_path / "rep", retrained={"accuracy": 0.948, "grad": "lut", "epochs": 1},
                         command="axhw report r.json -o rep")
    check_report(paths.out_dir, result)
    assert paths.flags == ()
    assert set(paths.plots) == {"accuracy_vs_power", "sensitivity", "mcts_rewards", "surrogate"}
    md = paths.markdown.read_text()
    assert "94.80 %" in md and "grad=lut" in md
    assert "Q·Kᵀ" in md and "A·V" in md and "Conv" in md and "Linear" in md
    assert "axhw search --budget 24 --seed 3" in md and "axhw report r.json -o rep" in md
    # the chosen configuration is the lowest-power one meeting the constraint
    chosen = result.best()
    assert f"evaluation #{chosen.index}" in md
    # hand-off: every distinct design of the chosen configuration
    used = sorted(set(chosen.config.values()))
    config = json.loads(paths.config.read_text())
    assert sorted(m["name"] for m in config["modules"]) == used
    from axhw import library

    filelist = paths.filelist.read_text().splitlines()
    sources = [f"rtl/{library.load(n).rtl_path}" for n in dict.fromkeys(chosen.config[op.name] for op in result.ops)]
    assert [line for line in filelist if not line.startswith("//")] == [*dict.fromkeys(sources), "rtl/axhw_handoff_top.v"]
    # the file list builds as it is
    build = subprocess.run(["iverilog", "-o", os.devnull, "-c", "filelist.f"], cwd=paths.out_dir,
                           capture_output=True, text=True)
    assert build.returncode == 0, build.stderr
    # shares of power add up to one and follow MACs x energy
    shares = [op["power_share"] for op in config["ops"]]
    assert sum(shares) == pytest.approx(1.0)
    assert config["power_rel_recomputed"] == pytest.approx(chosen.power_rel)


def test_report_is_deterministic(result, tmp_path):
    a = write_report(result, tmp_path / "a")
    b = write_report(result, tmp_path / "b")
    for name in ("report.md", "report.html", "config.json", "filelist.f", "plots/accuracy_vs_power.png"):
        assert (a.out_dir / name).read_bytes() == (b.out_dir / name).read_bytes(), name
    assert "not retrained" in a.markdown.read_text()


def test_missing_multiplier_is_flagged(result, database, designs, tmp_path):
    gone = designs[-1]
    shutil.rmtree(database / "db" / gone)
    result.history.append(Evaluation(len(result.history), "random", {op.name: gone for op in result.ops},
                                     0.95, 0.45, 0.5))
    paths = write_report(result, tmp_path / "rep")
    assert any(gone in f and "is not in the multiplier database" in f for f in paths.flags)
    md = paths.markdown.read_text()
    assert "**Warning:**" in md and "MISSING" in md
    assert f"// {gone}: MISSING, left out" in paths.filelist.read_text()
    assert not [line for line in paths.filelist.read_text().splitlines() if line.startswith("rtl/")]
    config = json.loads(paths.config.read_text())
    assert config["flags"] and config["modules"][0]["status"] == "missing"


def test_stale_rtl_is_flagged(result, database, tmp_path):
    name = sorted(set(result.best().config.values()))[0]
    (database / "rtl" / f"{name}.v").write_text("// edited after characterization\n")
    paths = write_report(result, tmp_path / "rep")
    assert any(name in f and "changed since it was characterized" in f for f in paths.flags)
    assert f"rtl/{name}.v" not in paths.filelist.read_text()
    assert "STALE" in paths.markdown.read_text()


def test_product_table_changed_since_search_is_flagged(result, database, tmp_path):
    name = sorted(set(result.best().config.values()))[0]
    result.settings["lut_sha256"] = {name: sha256_bytes(b"another table")}
    content = gather(result)
    assert any("product table changed since the search" in f for f in content.flags)
    assert content.multipliers[name].status == "stale"


def test_malformed_retrained_is_a_config_error(result, tmp_path):
    with pytest.raises(ConfigError, match="accuracy"):
        gather(result, retrained={"acc": 97.0})


def test_result_round_trip_and_cli(result, tmp_path, capsys):
    from axhw.cli import main

    path = result.save(tmp_path / "result.json")
    assert load_result(path).history == result.history
    assert main(["report", str(path), "-o", str(tmp_path / "rep"), "--retrained-accuracy", "0.949"]) == 0
    out = capsys.readouterr().out
    assert "report.html" in out
    check_report(tmp_path / "rep", result)
    assert "94.90 %" in (tmp_path / "rep" / "report.md").read_text()


def test_retrained_summary_without_its_weights_and_typed_percent(result, tmp_path, capsys):
    """`--retrained` measures the summary's weights (tests/test_report_retrained.py); a typed accuracy is labelled so."""
    from axhw.cli import main
    from axhw.emulator import RetrainReport, RetrainResult

    path = result.save(tmp_path / "result.json")
    retrained = RetrainReport(
        model="default", data="digits", config=dict(result.best().config), fp32_accuracy=0.96, int8_accuracy=0.955,
        approx_accuracy=0.9, retrained_accuracy={"lut": 0.945}, n_images=200,
        runs={"lut": RetrainResult("lut", 1e-4, epochs=3, val_accuracy=[0.9, 0.94], best_epoch=1)})
    summary = tmp_path / "summary.json"
    summary.write_text(json.dumps(retrained.to_json()))
    # a summary's number alone is not reported: without the weights beside it there is nothing to measure
    assert main(["report", str(path), "-o", str(tmp_path / "rep"), "--retrained", str(summary)]) == 2
    assert "lut weights are neither at" in capsys.readouterr().err
    # a typed accuracy is in percent, like every accuracy the CLI prints, and is said to be typed in
    assert main(["report", str(path), "-o", str(tmp_path / "rep3"), "--retrained-accuracy", "94.9"]) == 0
    md = (tmp_path / "rep3" / "report.md").read_text()
    assert "94.90 %" in md and "typed in, not measured" in md
    config = json.loads((tmp_path / "rep3" / "config.json").read_text())
    assert config["retraining"] == {"source": "typed", "accuracy": pytest.approx(0.949)}
    assert main(["report", str(path), "-o", str(tmp_path / "rep4"), "--retrained-accuracy", "140"]) == 2
    assert "percent" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # one or the other: a typed number never replaces a measured one
        main(["report", str(path), "-o", str(tmp_path / "rep5"), "--retrained", str(summary),
              "--retrained-accuracy", "94.9"])
    assert "not allowed with argument" in capsys.readouterr().err


@pytest.mark.parametrize("case", ["truncated", "schema", "not_a_result", "missing"])
def test_bad_result_file_is_a_clear_error(result, tmp_path, capsys, case):
    from axhw.cli import main

    path = tmp_path / "result.json"
    text = json.dumps(result.to_json())
    if case == "truncated":
        path.write_text(text[: len(text) // 2])
    elif case == "schema":
        path.write_text(json.dumps({**result.to_json(), "schema": 99}))
    elif case == "not_a_result":
        path.write_text('{"hello": 1}')
    with pytest.raises(DataError):
        load_result(path)
    assert main(["report", str(path), "-o", str(tmp_path / "rep")]) == 2
    err = capsys.readouterr().err
    assert "error:" in err and "Traceback" not in err and str(path) in err
    assert not (tmp_path / "rep" / "report.html").exists()


def test_errors_are_axhw_errors():
    assert issubclass(DataError, AxhwError) and issubclass(ConfigError, AxhwError)


def test_liberty_changed_since_synthesis_is_flagged(result, database, designs, tmp_path):
    from axhw import library

    def relabel(old, key):
        data = json.loads(old)
        for cost in data["costs"]:
            cost["liberty_sha256"] = "1" * 64
        return json.dumps(data).encode()

    for name in designs:
        library.update_hw_file(name, relabel)
    from axhw.hw.liberty import find_liberty

    if find_liberty("osu018") is None:
        pytest.skip("osu018 Liberty file not installed")
    assert any("Liberty `osu018`" in f for f in gather(result).flags)


@pytest.mark.parametrize("depth", [pytest.param(1, id="first-block"), pytest.param(None, id="full", marks=pytest.mark.slow)])
def test_report_from_real_search(database, designs, tmp_path, depth):
    """A small real search (embedded default ViT, digits) on the test database, then its report.

    ``first-block`` keeps the patch embedding and the first transformer block of the
    trained model (7 approximable ops) so the search stays within a few seconds.
    """
    import warnings

    from axhw.emulator import list_ops
    from axhw.models import default_model
    from axhw.search import run

    model = default_model()
    if depth is not None:
        model.blocks = model.blocks[:depth]
    approximable = [op for op in list_ops(model) if op.name.split(".")[0] != "head"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = run(model, "digits", candidates=designs[1:2] if depth else designs[1:], max_accuracy_drop=2.0, budget=len(approximable),
                     method="mcts",
                     seed=0, executor="serial", eval_size=32, calib_size=16, cache_dir=False, progress=False,
                     model_name="default", power="uniform")  # the test database's costs are test values
    path = result.save(tmp_path / "result.json")
    paths = write_report(load_result(path), tmp_path / "rep", command="pytest")
    check_report(paths.out_dir, result)
    assert [op.name for op in result.ops] == [op.name for op in approximable]
    assert paths.flags == ()
    assert {"accuracy_vs_power", "sensitivity", "mcts_rewards", "surrogate"} <= set(paths.plots)


def test_result_without_evaluations_is_a_data_error(result, tmp_path):
    result.history = []
    with pytest.raises(DataError, match="no evaluated configuration"):
        write_report(result, tmp_path / "rep")
    assert not (tmp_path / "rep").exists()


def test_unrecorded_operand_aware_energies_are_noted(result, tmp_path):
    result.settings["power"] = "operands"
    content = gather(result)
    assert content.flags == []
    assert any("operand-aware (per-op) energies that the result does not record" in n for n in content.notes)


def test_workload_energies_are_shown_beside_the_uniform_ones(result, tmp_path):
    from axhw import library

    uniform = {n: library.load(n).hw.energy_pj for n in result.candidates}
    # per-op workload energies: a different fraction of the uniform figure per op
    scale = {op.name: 0.3 + 0.1 * i for i, op in enumerate(result.ops)}
    result.settings.update(power="operands", power_reference="exact",
                           energy_pj={op.name: {n: e * scale[op.name] for n, e in uniform.items()} for op in result.ops})
    content = gather(result)
    assert content.workload_power and content.reference == "exact"
    for row in content.rows:
        assert row.uniform_energy_pj == pytest.approx(uniform[row.multiplier])
        assert row.energy_pj == pytest.approx(uniform[row.multiplier] * scale[row.name])
        assert row.reference_energy_pj == pytest.approx(uniform["exact"] * scale[row.name])
    out = write_report(result, tmp_path / "rep")
    md = out.markdown.read_text(encoding="utf-8")
    layers = _section(md, "Per-layer assignment")
    assert "pJ / mult. (uniform)" in layers and "pJ / mult. (workload)" in layers and "saving vs exact" in layers
    assert "weight-stationary" in layers and "weight-stationary" in _section(md, "Summary")
    row = _first_table_rows(layers)[0]
    name = result.ops[0].name
    mult = result.best().config[name]
    assert f"{uniform[mult]:.4g}" in row and f"{uniform[mult] * scale[name]:.4g}" in row


@pytest.mark.parametrize("lost", [pytest.param(8, id="clear-drop"), pytest.param(2, id="within-noise")])
def test_report_shows_held_out_accuracy_and_paired_drop_with_intervals(result, tmp_path, lost):
    from axhw.report.writer import drop_flag
    from axhw.stats import pack_outcomes, paired_drop

    n = 200
    chosen = result.best()
    ref = np.ones(n, dtype=bool)
    ref[:10] = False  # int8: 95 % on the held-out images
    other = ref.copy()
    other[10:10 + lost] = False
    result.holdout = {"split": "test", "n_images": n, "fp32_accuracy": 0.955,
                      "reference": {"accuracy": float(ref.mean()), "correct": pack_outcomes(ref)},
                      "evaluations": {str(chosen.index): {"accuracy": float(other.mean()), "correct": pack_outcomes(other)}}}
    paths = write_report(result, tmp_path / "rep", command="pytest")
    summary = _section(paths.markdown.read_text(), "Summary")
    estimate = paired_drop(ref, other)
    row = next(line for line in summary.splitlines() if "test (200), untouched" in line and "chosen" in line)
    assert f"{100 * other.mean():.2f} % [" in row and estimate.format() in row
    assert drop_flag(estimate, result.max_accuracy_drop) in row
    noisy = not estimate.distinguishable_from(0.0) or not estimate.distinguishable_from(result.max_accuracy_drop)
    assert ("cannot tell whether it meets the limit" in summary) is noisy
    assert noisy is (lost == 2)
    held = json.loads(paths.config.read_text())["held_out"]
    assert held["split"] == "test" and held["n_images"] == n
    assert held["drop_interval_points"] == pytest.approx([estimate.lower, estimate.upper])
