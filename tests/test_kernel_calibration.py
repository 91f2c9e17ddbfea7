"""``backend="auto"`` on the CPU: measured once per machine and table structure, cached on disk."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from axhw.emulator.kernels import KERNELS, lut_matmul, prepare_table, select_backend
from axhw.emulator.kernels import calibration
from axhw.emulator.kernels.reference import lut_matmul as reference

VALUES = np.arange(-128, 128, dtype=np.int64)
EXACT = np.outer(VALUES, VALUES).astype(np.int32)
RANK1 = (np.outer(VALUES, VALUES) + np.outer(VALUES % 3, VALUES % 5)).astype(np.int32)


@pytest.fixture
def fresh(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """An empty cache folder and no in-memory choices."""
    monkeypatch.setenv("AXHW_CACHE", str(tmp_path))
    monkeypatch.setattr(calibration, "_MEMORY", {})
    return tmp_path


def _fake_measure(times: dict[str, float], calls: list[str]):
    def measure(table, candidates, bmm):
        calls.append(calibration.structure_key(table))
        return {c: times[c] for c in candidates}

    return measure


def test_fastest_candidate_is_chosen_and_cached(fresh: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    monkeypatch.setattr(calibration, "measure", _fake_measure({"lowrank": 3.0, "lowrank_float": 2.0, "numba_cpu": 1.0}, calls))
    table = prepare_table(EXACT)
    assert select_backend(table, "cpu") == "numba_cpu"  # the LUT kernel won: the exact path is not used
    assert select_backend(table, "cpu") == "numba_cpu" and len(calls) == 1  # memory
    monkeypatch.setattr(calibration, "_MEMORY", {})  # a new process: read from the file, no new measurement
    assert select_backend(table, "cpu") == "numba_cpu" and len(calls) == 1
    saved = json.loads((fresh / "kernel_calibration.json").read_text())
    (entry,) = saved["machines"][calibration.machine_key()].values()
    assert entry["choice"] == "numba_cpu" and entry["times_s"]["numba_cpu"] == 1.0
    assert select_backend(prepare_table(RANK1), "cpu") == "numba_cpu" and len(calls) == 2  # another structure
    lines = [c.describe() for c in calibration.calibration_report()]
    assert len(lines) == 2 and all("numba_cpu 1.00x" in line for line in lines)


def test_other_machine_or_thread_count_measures_again(fresh: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    monkeypatch.setattr(calibration, "measure", _fake_measure({"lowrank": 1.0, "lowrank_float": 2.0, "numba_cpu": 3.0}, calls))
    table = prepare_table(EXACT)
    select_backend(table, "cpu")
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(threads + 1)
        monkeypatch.setattr(calibration, "_MEMORY", {})
        select_backend(table, "cpu")
    finally:
        torch.set_num_threads(threads)
    assert len(calls) == 2
    assert len(json.loads((fresh / "kernel_calibration.json").read_text())["machines"]) == 2


def test_corrupt_cache_is_measured_again(fresh: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (fresh / "kernel_calibration.json").write_text("{not json")
    calls: list[str] = []
    monkeypatch.setattr(calibration, "measure", _fake_measure({"lowrank": 2.0, "lowrank_float": 1.0, "numba_cpu": 3.0}, calls))
    assert select_backend(prepare_table(EXACT), "cpu") == "lowrank_float" and len(calls) == 1
    assert json.loads((fresh / "kernel_calibration.json").read_text())["schema"] == 1


def test_lut_only_tables_and_explicit_backends_are_not_measured(fresh: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args, **kwargs):
        raise AssertionError("measured")

    monkeypatch.setattr(calibration, "measure", fail)
    random = prepare_table(np.random.default_rng(0).integers(-(2**14), 2**14, (256, 256)).astype(np.int32))
    assert select_backend(random, "cpu") == "numba_cpu"
    assert select_backend(prepare_table(EXACT), "cpu", "lowrank") == "lowrank"


def test_real_measurement_picks_a_bit_exact_backend(fresh: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A real (tiny) calibration run: every candidate timed, the choice the fastest, results exact."""
    monkeypatch.setattr(calibration, "SHAPES", {"tiny": (2, 24, 40, 16)})
    measure = calibration.measure
    seen: dict[str, float] = {}

    def spy(table, candidates, bmm):
        seen.update(measure(table, candidates, bmm, shapes=calibration.SHAPES, repeats=1))
        return dict(seen)

    monkeypatch.setattr(calibration, "measure", spy)
    table = prepare_table(RANK1)
    choice = select_backend(table, "cpu")
    assert set(seen) >= {"lowrank_float", "numba_cpu"} and all(t > 0 for t in seen.values())
    assert choice == min(seen, key=seen.__getitem__)
    rng = np.random.default_rng(3)
    a = rng.integers(-128, 128, (3, 9, 33)).astype(np.int8)
    b = rng.integers(-128, 128, (3, 33, 7)).astype(np.int8)
    got = lut_matmul(torch.from_numpy(a), torch.from_numpy(b), table).numpy()
    np.testing.assert_array_equal(got, np.stack([reference(a[g], b[g], table.lut) for g in range(3)]))


def test_lowrank_float_is_registered_and_exact() -> None:
    kernel = KERNELS["lowrank_float"]
    table = prepare_table(RANK1)
    random = np.random.default_rng(1).integers(-(2**14), 2**14, (256, 256)).astype(np.int32)
    assert kernel.supports(table) and not kernel.supports(prepare_table(random))
    a = torch.randint(-128, 128, (2, 5, 70), dtype=torch.int8)
    b = torch.randint(-128, 128, (2, 70, 6), dtype=torch.int8)
    np.testing.assert_array_equal(kernel.bmm(a, b, table).numpy(), np.stack([reference(a[g].numpy(), b[g].numpy(), table.lut) for g in range(2)]))


def test_doctor_shows_the_choice_and_recalibrates(fresh: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from axhw.commands.doctor import kernel_choices

    calls: list[str] = []
    monkeypatch.setattr(calibration, "measure", _fake_measure({"lowrank": 3.0, "lowrank_float": 1.0, "numba_cpu": 2.0}, calls))
    lines = kernel_choices()
    assert len(calls) == 2 and sum("lowrank_float (lowrank_float 1.00x, numba_cpu 2.00x" in x for x in lines) == 2
    assert kernel_choices() == lines and len(calls) == 2  # cached
    kernel_choices(recalibrate=True)
    assert len(calls) == 4


def test_measure_keeps_the_fastest_run_and_drops_hopeless_candidates() -> None:
    """An injected clock: load spikes on some runs do not change the ranking; a 25x slower candidate is timed only twice."""
    now = [0.0]
    spikes = iter([6.0, 1.0, 1.0, 4.0] * 100)  # the fastest candidate's runs, some hit by other jobs
    base = {"lowrank": 25.0, "lowrank_float": 1.0, "numba_cpu": 1.3}
    calls = dict.fromkeys(base, 0)

    def bmm(name, a, b, table):
        calls[name] += 1
        now[0] += base[name] * (next(spikes) if name == "lowrank_float" else 1.0)

    times = calibration.measure(prepare_table(EXACT), list(base), bmm, shapes={"s": (1, 4, 8, 4)}, repeats=6, clock=lambda: now[0])
    assert times == pytest.approx(base) and min(times, key=times.__getitem__) == "lowrank_float"
    assert calls["lowrank"] == 1 + 2 and calls["lowrank_float"] == calls["numba_cpu"] == 1 + 6  # warm-up + timed runs


def test_measure_goes_on_while_the_fastest_runs_still_fall() -> None:
    """Load fading during the calibration: rounds go on past ``repeats`` until the fastest runs settle."""
    now = [0.0]
    fading = iter([9.0, 3.0, 2.5, 2.0, 1.5] + [1.0] * 100)  # lowrank_float: warm-up, then slower runs first
    calls = {"lowrank_float": 0, "numba_cpu": 0}

    def bmm(name, a, b, table):
        calls[name] += 1
        now[0] += next(fading) if name == "lowrank_float" else 1.3

    times = calibration.measure(prepare_table(EXACT), list(calls), bmm, shapes={"s": (1, 4, 8, 4)}, repeats=3, clock=lambda: now[0])
    assert times == pytest.approx({"lowrank_float": 1.0, "numba_cpu": 1.3})  # 3 rounds alone would have kept 2.0 (LUT kernel "faster")
    assert calls["lowrank_float"] == 1 + 7  # settled at round 5, then two calm rounds


def test_isa_limits_are_part_of_the_machine_key(fresh: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A choice measured with every instruction set is not reused under an ISA limit (and vice versa)."""
    calls: list[str] = []
    monkeypatch.setattr(calibration, "measure", _fake_measure({"lowrank": 1.0, "lowrank_float": 2.0, "numba_cpu": 3.0}, calls))
    table = prepare_table(EXACT)
    full = calibration.machine_key()
    select_backend(table, "cpu")
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    calibration._fixed_isa.cache_clear()  # read once per process, as oneDNN does: a new process
    limited = calibration.machine_key()
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA")
    calibration._fixed_isa.cache_clear()
    monkeypatch.setattr(torch.backends.mkldnn, "enabled", False)  # torch._int_mm's plain loop, as without VNNI
    no_onednn = calibration.machine_key()
    assert "oneDNN off" in calibration.machine_description()
    monkeypatch.setattr(calibration, "_MEMORY", {})
    select_backend(table, "cpu")
    monkeypatch.setattr(torch.backends.mkldnn, "enabled", True)
    assert calibration.machine_key() == full
    assert len({full, limited, no_onednn}) == 3 and len(calls) == 2
    assert set(json.loads((fresh / "kernel_calibration.json").read_text())["machines"]) == {full, no_onednn}


_AVX2_PROBE = """
import json, os, sys, numpy as np, torch
torch.backends.mkldnn.enabled = False
from numba.core.registry import cpu_target
from axhw.emulator.kernels import calibration, prepare_table, select_backend
v = np.arange(-128, 128)
choice = select_backend(prepare_table(np.outer(v, v).astype(np.int32)), "cpu")
(entry,) = calibration.calibration_report()
print(json.dumps({"aten": torch.backends.cpu.get_cpu_capability(), "numba": cpu_target.target_context.codegen().magic_tuple()[1:],
                  "choice": choice, "times": entry.times_s}))
"""


@pytest.mark.slow
def test_calibration_measures_the_avx2_emulation(tmp_path: Path) -> None:
    """Under benchmarks/auto_backend.py's AVX2 emulation, ATen and Numba drop AVX-512 and ``auto`` measures int8 GEMMs as slow."""
    import importlib.util
    import platform
    import subprocess
    import sys

    if platform.machine() not in ("x86_64", "AMD64") or "avx2" not in Path("/proc/cpuinfo").read_text():
        pytest.skip("the AVX2 emulation needs an x86-64 CPU with AVX2")
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "auto_backend.py"
    spec = importlib.util.spec_from_file_location("axhw_bench_auto_backend", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    env = {**os.environ, **bench.EMULATE["avx2"], "AXHW_CACHE": str(tmp_path), "OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", _AVX2_PROBE], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    seen = json.loads(done.stdout.splitlines()[-1])
    assert seen["aten"] == "AVX2" and seen["numba"][0] == "haswell" and "+avx512f" not in seen["numba"][1]
    times = seen["times"]
    assert seen["choice"] == min(times, key=times.__getitem__) != "lowrank"
    assert times["lowrank"] > 3 * times["lowrank_float"]  # _int_mm without oneDNN: a plain loop
