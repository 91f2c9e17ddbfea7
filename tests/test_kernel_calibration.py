"""``backend="auto"`` on the CPU: measured once per machine and table structure, cached on disk."""

from __future__ import annotations

import json
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
