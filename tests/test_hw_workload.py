"""Many workload streams of one design in one simulation: the same numbers as one stream at a time."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from axhw import hw
from axhw.errors import DataError
from axhw.hw import flow, power
from axhw.records import PortSpec

PORTS8 = PortSpec("mid", "a", "b", "y", 8, 8, 16, True)
# Top five bits of each operand: a 5x5 signed multiplier, enough cells to glitch.
MID = "  assign y = $signed({a[7:3], 3'b0}) * $signed({b[7:3], 3'b0});"

needs_tools = pytest.mark.skipif(not all(__import__("shutil").which(t) for t in ("yosys", "iverilog", "sta")),
                                 reason="yosys/Icarus/OpenSTA not installed")


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("AXHW_CACHE", str(tmp_path / "cache"))


def _design(tmp_path: Path) -> hw.Design:
    path = tmp_path / "mid.v"
    path.write_text("module mid(input signed [7:0] a, input signed [7:0] b, output signed [15:0] y);\n"
                    f"{MID}\nendmodule\n")
    return hw.Design.from_verilog(path, PORTS8, name="mid")


def _streams() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(5)
    held = np.stack([rng.integers(-30, 30, 240), np.repeat([37, -91, 120], 80)], axis=1)
    # ends on all ones, so the next stream's first pair flips nearly every net if a boundary leaked
    held[-1] = (-1, -1)
    return {"held": held.astype(np.int8), "uniform": hw.uniform_operands(199, seed=2),
            "small": np.stack([rng.integers(0, 16, 150), rng.integers(-8, 8, 150)], axis=1).astype(np.int8)}


# --------------------------------------------------------------------------- VCD windows
def _random_vcd(path: Path, rng: np.random.Generator) -> int:
    """A VCD with the awkward cases: repeated changes in a step, x/z, short vector values, a time
    step written twice, an alias (one code declared twice), codes of two characters."""
    variables = [("!", 1, "n0", ""), ("#", 1, "n1", ""), ("$", 4, "v", "[3:0]"), ("%", 3, "w", "[0:2]"),
                 ("!", 1, "alias", ""), ("&)", 1, "n2", ""), ("'", 1, "n3", "")]
    lines = ["$timescale 1ps $end", "$scope module dut $end"]
    lines += [f"$var wire {w} {code} {ref} {index} $end".replace("  ", " ") for code, w, ref, index in variables]
    lines += ["$upscope $end", "$enddefinitions $end", "#0", "$dumpvars"]
    codes = [(code, w) for code, w, ref, _index in variables if ref != "alias"]
    for code, w in codes:
        lines.append(f"b{'x' * w} {code}" if w > 1 else f"x{code}")
    lines.append("$end")
    t = 0
    for _ in range(400):
        t += int(rng.choice([0, 0, 1, 3, 50, 100]))  # 0: the same time step written again
        lines.append(f"#{t}")
        for _ in range(int(rng.integers(1, 6))):
            code, w = codes[int(rng.integers(len(codes)))]
            chars = rng.choice(list("0101010xz"), size=int(rng.integers(1, w + 1)) if w > 1 else 1)
            value = "".join(chars)
            lines.append(f"b{value} {code}" if w > 1 else f"{value}{code}")
    path.write_text("\n".join(lines) + "\n")
    return t


@pytest.mark.parametrize("seed", range(6))
def test_windowed_counter_matches_the_line_by_line_reference(tmp_path, seed):
    rng = np.random.default_rng(seed)
    vcd = tmp_path / "x.vcd"
    end = _random_vcd(vcd, rng)
    cuts = [0] + np.sort(rng.choice(np.arange(1, end), size=7, replace=False)).tolist()
    windows = [(cuts[i], cuts[i + 1]) for i in range(0, 8, 2)] + [(cuts[-1] + 1, end + 10)]
    fast = power._count_vcd_windows(vcd, windows)
    for window, got in zip(windows, fast):
        want = power._count_vcd(vcd, *window)
        assert got == want, window
        assert list(got[0]) == list(want[0])  # same nets, same order
    assert sum(sum(toggles.values()) for toggles, _ in fast) > 50  # the windows saw switching


# --------------------------------------------------------------------------- batch = one at a time
@needs_tools
def test_streams_back_to_back_give_each_stream_its_own_activity(tmp_path):
    design, lib = _design(tmp_path), hw.resolve_liberty("osu018")
    work = tmp_path / "build"
    synth = hw.synthesize(design, lib, work)
    models, timed = hw.cell_models(lib, set(synth.cell_mix), work)
    streams = _streams()
    # a constant stream after one ending elsewhere: any leak from the boundary would show as toggles
    streams["constant"] = np.tile(np.array([[0, 0]], dtype=np.int8), (20, 1))
    batch = hw.simulate_activities(design, synth, models, timed, list(streams.values()), work / "batch")
    assert hw.simulate_activities(design, synth, models, timed, list(streams.values()), work / "split", jobs=3) == batch
    for (label, ops), together in zip(streams.items(), batch):
        alone = hw.simulate_activity(design, synth, models, timed, ops, work / label)
        assert together == alone, label
    assert sum(batch[-1].toggles.values()) == 0
    assert sum(batch[0].toggles.values()) > 0 and batch[0].timed
    powers = hw.estimate_powers(synth, lib, batch, 10.0, work / "batch")
    for activity, got in zip(batch, powers):
        assert got == hw.estimate_power(synth, lib, activity, 10.0, work / "single")  # one session = one each


@needs_tools
def test_workload_costs_equal_single_stream_costs_and_cache_per_stream(tmp_path, monkeypatch):
    design = _design(tmp_path)
    streams = _streams()
    monkeypatch.setenv("AXHW_CACHE", str(tmp_path / "alone"))
    alone = {label: hw.workload_cost(design, ops, stream=label) for label, ops in streams.items()}

    monkeypatch.setenv("AXHW_CACHE", str(tmp_path / "together"))
    simulated: list[list[str]] = []
    real = flow.run_flows

    def recording(design, liberty, todo, *args, **kwargs):
        simulated.append(list(todo))
        return real(design, liberty, todo, *args, **kwargs)

    monkeypatch.setattr(flow, "run_flows", recording)
    first = hw.workload_costs(design, {k: streams[k] for k in ("held", "uniform")})
    assert first == {k: alone[k] for k in ("held", "uniform")}  # every field, labels included
    # partly cached, one stream twice under two labels: only the new stream is simulated, once
    again = hw.workload_costs(design, {**streams, "small again": streams["small"]})
    assert simulated == [["held", "uniform"], ["small"]]
    assert {k: again[k] for k in streams} == alone and again["small again"] == alone["small"]
    assert hw.workload_costs(design, streams) == alone and len(simulated) == 2  # all cached: nothing runs
    assert hw.workload_costs(design, {}) == {}


def test_workload_costs_name_the_bad_stream(tmp_path):
    with pytest.raises(DataError, match=r"stream 'fc1': operand stream must have shape \(N, 2\)"):
        hw.workload_costs(_design(tmp_path), {"qkv": hw.uniform_operands(8), "fc1": np.zeros((4, 3), np.int8)})


# --------------------------------------------------------------------------- the search's call site
def test_search_space_costs_each_design_in_one_batch(monkeypatch):
    from axhw import library
    from axhw.emulator import OpInfo
    from axhw.search import SearchSpace

    calls: list[tuple[str, list[str]]] = []

    def fake(multiplier, streams, liberty, clock_ns=10.0, **kwargs):
        calls.append((multiplier.name, list(streams)))
        base = library.load(multiplier.name).hw
        return {label: dataclasses.replace(base, operand_stream=label, energy_pj=float(len(label) + len(multiplier.name)))
                for label in streams}

    monkeypatch.setattr(hw, "workload_costs", fake)
    ops = [OpInfo("fc1", "linear", 100), OpInfo("fc2", "linear", 300), OpInfo("head", "linear", 10)]
    operands = {"fc1": hw.uniform_operands(16), "fc2": hw.uniform_operands(16, seed=1)}  # no stream for head
    space = SearchSpace.from_library(ops, ["trunc_k4"], operands=operands)
    assert calls == [(name, ["workload:fc1", "workload:fc2"]) for name in space.candidates]
    table = space.energy_table()
    for name in space.candidates:
        assert table["fc1"][name] == len("workload:fc1") + len(name)
        assert table["head"][name] == pytest.approx(space.uniform_energy_pj[name])  # uniform where no stream
