"""Every LUT-matmul kernel is bit-exact against the numpy reference.

One parametrized test covers the whole ``KERNELS`` registry on random int8 data plus
corner cases (-128, 127, 0, all-equal and all-zero rows and columns), several tables
(exact, truncated, random, low-rank with int8 factors, separable with wider factors,
unsigned 0..65025, one spanning more than 2**16 values) and batched shapes.  The
low-rank path is also checked with its int8 GEMMs switched off (float GEMMs only).
Without a GPU, the CUDA kernel runs under Numba's CUDA simulator on tiny shapes, in a
subprocess so that ``NUMBA_ENABLE_CUDASIM`` does not leak into this process; this file
is also that subprocess's entry point (``python tests/test_kernels.py --simulate``).
"""

from __future__ import annotations

import copy
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from axhw.emulator.kernels import KERNELS, find_low_rank, lut_matmul, prepare_table, select_backend
from axhw.emulator.kernels import lowrank as lowrank_module
from axhw.emulator.kernels.lowrank import exact_integer_bmm
from axhw.emulator.kernels.reference import lut_matmul as reference

VALUES = np.arange(-128, 128, dtype=np.int64)


def truncated_columns(columns: int) -> np.ndarray:
    """Sign-magnitude product without the partial-product bits of weight < 2**columns (error rank = columns)."""
    mag = np.abs(VALUES)
    out = np.zeros((256, 256), np.int64)
    for i in range(8):
        for j in range(8):
            if i + j >= columns:
                out += np.outer((mag >> i) & 1, (mag >> j) & 1) << (i + j)
    return (np.outer(np.sign(VALUES), np.sign(VALUES)) * out).astype(np.int32)


def operand_truncation(bits: int) -> np.ndarray:
    """Both operands' low ``bits`` magnitude bits dropped: separable, rank 1."""
    f = np.sign(VALUES) * ((np.abs(VALUES) >> bits) << bits)
    return np.outer(f, f).astype(np.int32)


def make_tables() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    low_u, low_v = rng.integers(-9, 10, (256, 3)), rng.integers(-9, 10, (256, 3))
    return {
        "exact": np.outer(VALUES, VALUES).astype(np.int32),
        "truncated": truncated_columns(3),
        "random": rng.integers(-(2**14), 2**14, (256, 256)).astype(np.int32),
        "lowrank": (np.outer(VALUES, VALUES) + low_u @ low_v.T).astype(np.int32),
        "separable": operand_truncation(2),  # low-rank factors up to 128: not int8
        "unsigned": np.outer(VALUES + 128, VALUES + 128).astype(np.int32),  # 0..65025: 16-bit copy above int16
        "wide": rng.integers(-(2**20), 2**20, (256, 256)).astype(np.int32),
    }


def make_operands(g: int, m: int, k: int, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Random int8 (g, m, k) and (g, k, n) with corner rows/columns written in."""
    rng = np.random.default_rng(seed)
    a = rng.integers(-128, 128, (g, m, k)).astype(np.int8)
    b = rng.integers(-128, 128, (g, k, n)).astype(np.int8)
    for row, value in enumerate((-128, 127, 0, 5)):  # all -128, all 127, all-zero, all-equal rows
        if row < m:
            a[:, row, :] = value
    for col, value in enumerate((127, -128, 0, -3)):
        if col < n:
            b[:, :, col] = value
    a[:, -1, ::2] = -128  # alternating extremes
    b[:, ::3, -1] = 127
    return a, b


def check_kernel(name: str, shapes: list[tuple[int, int, int, int]], tables: dict[str, np.ndarray]) -> int:
    """Assert ``KERNELS[name]`` equals the reference on every (table, shape); return the number of cases run."""
    kernel = KERNELS[name]
    cases = 0
    for table_name, lut in tables.items():
        table = prepare_table(lut)
        if not kernel.supports(table):
            continue
        for seed, shape in enumerate(shapes):
            a, b = make_operands(*shape, seed=seed)
            got = kernel.bmm(torch.from_numpy(a), torch.from_numpy(b), table)
            assert got.dtype == torch.int32 and tuple(got.shape) == (shape[0], shape[1], shape[3])
            for g in range(shape[0]):
                np.testing.assert_array_equal(got[g].numpy(), reference(a[g], b[g], lut), err_msg=f"{name} on {table_name} {shape}")
            cases += 1
    return cases


SHAPES = [(1, 1, 1, 1), (1, 7, 33, 5), (3, 19, 70, 37), (1, 130, 40, 131)]
SIM_SHAPES = [(2, 5, 35, 9)]  # the simulator runs every thread in Python: keep it tiny


def _simulate(name: str) -> None:
    """Run ``check_kernel`` under the CUDA simulator in a fresh process."""
    env = {**os.environ, "NUMBA_ENABLE_CUDASIM": "1"}
    proc = subprocess.run([sys.executable, __file__, "--simulate", name], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("name", sorted(KERNELS))
def test_kernel_matches_reference(name: str) -> None:
    if name == "numba_cuda" and not KERNELS[name].is_available():
        _simulate(name)
        return
    assert check_kernel(name, SHAPES, make_tables()) > 0


def test_reference_is_the_definition() -> None:
    """The reference equals the triple loop it documents, including -128 (widened before +128)."""
    lut = make_tables()["random"]
    a, b = make_operands(1, 4, 6, 5)
    want = np.zeros((4, 5), np.int64)
    for m in range(4):
        for n in range(5):
            want[m, n] = sum(int(lut[int(a[0, m, k]) + 128, int(b[0, k, n]) + 128]) for k in range(6))
    np.testing.assert_array_equal(reference(a[0], b[0], lut), want)
    with pytest.raises(TypeError):
        reference(a[0].astype(np.int16), b[0], lut)
    with pytest.raises(ValueError):
        reference(a[0], b[0], lut[:128])


@pytest.mark.parametrize("backend", ["reference", "numba_cpu", "lowrank", "auto"])
def test_dispatch_batches_and_broadcasts(backend: str) -> None:
    """(B, H, N, D) attention batches and a 2-D weight shared by a batch give the reference per slice."""
    lut = make_tables()["lowrank"]
    table = prepare_table(lut)
    rng = np.random.default_rng(3)
    q = rng.integers(-128, 128, (2, 3, 9, 8)).astype(np.int8)
    kt = rng.integers(-128, 128, (2, 3, 8, 6)).astype(np.int8)
    out = lut_matmul(torch.from_numpy(q), torch.from_numpy(kt), table, backend=backend)
    assert out.shape == (2, 3, 9, 6) and out.dtype == torch.int32
    for i in range(2):
        for h in range(3):
            np.testing.assert_array_equal(out[i, h].numpy(), reference(q[i, h], kt[i, h], lut))
    weight = rng.integers(-128, 128, (8, 4)).astype(np.int8)
    out = lut_matmul(torch.from_numpy(q), torch.from_numpy(weight), table, backend=backend)
    assert out.shape == (2, 3, 9, 4)
    np.testing.assert_array_equal(out[1, 2].numpy(), reference(q[1, 2], weight, lut))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("backend", ["numba_cuda", "lowrank", "auto"])
def test_cuda_tensors_in_place(backend: str) -> None:
    """On a GPU the kernels take CUDA tensors directly and return CUDA int32 tensors."""
    tables = make_tables()
    for name in ("exact", "truncated", "random", "lowrank"):
        table = prepare_table(tables[name])
        if not KERNELS.get(backend, KERNELS["numba_cuda"]).supports(table):
            continue
        for seed, shape in enumerate([(2, 3, 33, 40), (1, 300, 200, 260)]):
            a, b = make_operands(*shape, seed=seed)
            out = lut_matmul(torch.from_numpy(a).cuda(), torch.from_numpy(b).cuda(), table, backend=backend)
            assert out.is_cuda and out.dtype == torch.int32
            for g in range(shape[0]):
                np.testing.assert_array_equal(out[g].cpu().numpy(), reference(a[g], b[g], tables[name]), err_msg=f"{backend} {name} {shape}")


def test_dispatch_rejects_bad_input() -> None:
    table = prepare_table(make_tables()["random"])
    a = torch.zeros(3, 4, dtype=torch.int8)
    with pytest.raises(TypeError):
        lut_matmul(a.float(), torch.zeros(4, 2, dtype=torch.int8), table)
    with pytest.raises(ValueError, match="do not chain"):
        lut_matmul(a, torch.zeros(5, 2, dtype=torch.int8), table)
    with pytest.raises(ValueError, match="unknown kernel backend"):
        lut_matmul(a, torch.zeros(4, 2, dtype=torch.int8), table, backend="nope")
    with pytest.raises(ValueError, match="cannot compute"):
        lut_matmul(a, torch.zeros(4, 2, dtype=torch.int8), table, backend="lowrank")
    with pytest.raises(ValueError, match="256, 256"):
        prepare_table(np.zeros((16, 16), np.int32))


def test_auto_takes_the_measured_fastest_then_lut(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """On the CPU ``auto`` follows the calibration (tests/test_kernel_calibration.py); no form: the LUT kernel."""
    from axhw.emulator.kernels import calibration

    monkeypatch.setenv("AXHW_CACHE", str(tmp_path))
    monkeypatch.setattr(calibration, "_MEMORY", {})
    monkeypatch.setattr(calibration, "measure", lambda table, candidates, bmm: {c: (0.5 if c == "lowrank_float" else 1.0) for c in candidates})
    tables = make_tables()
    assert select_backend(prepare_table(tables["exact"]), "cpu") == "lowrank_float"
    assert select_backend(prepare_table(tables["truncated"]), "cpu") == "lowrank_float"
    assert select_backend(prepare_table(tables["random"]), "cpu") == "numba_cpu"


def test_prepare_table_is_cached_and_read_only() -> None:
    lut = make_tables()["truncated"]
    table = prepare_table(lut)
    assert prepare_table(lut.copy()) is table
    assert not table.lut.flags.writeable and table.lut16 is not None
    assert prepare_table(make_tables()["wide"]).lut16 is None
    assert copy.deepcopy(table) is table and pickle.loads(pickle.dumps(table)) is table  # models holding tables copy


@pytest.mark.parametrize("columns", [1, 2, 3, 4])
def test_lowrank_finds_truncation_rank(columns: int) -> None:
    lut = truncated_columns(columns)
    form = find_low_rank(lut)
    assert form is not None and form.exact_term and form.rank == columns and form.terms == columns + 1
    np.testing.assert_array_equal(form.reconstruct(), lut)


def test_lowrank_forms() -> None:
    tables = make_tables()
    exact = find_low_rank(tables["exact"])
    assert exact is not None and exact.exact_term and exact.rank == 0 and exact.terms == 1
    separable = find_low_rank(operand_truncation(2))  # f(a) g(b): one term, no exact product
    assert separable is not None and not separable.exact_term and separable.terms == 1
    np.testing.assert_array_equal(separable.reconstruct(), operand_truncation(2))
    digits = separable.int8_digits()  # a factor reaches 128: two base-128 digits
    assert len(digits) >= 2 and all(np.abs(x).max() <= 64 for _, l, r in digits for x in (l, r))
    total = sum(128**p * (l.astype(np.int64) @ r.astype(np.int64).T) for p, l, r in digits)
    np.testing.assert_array_equal(total, separable.u @ separable.v.T)
    planted = find_low_rank(tables["lowrank"])
    assert planted is not None and planted.exact_term and planted.rank == 3
    np.testing.assert_array_equal(planted.reconstruct(), tables["lowrank"])
    assert find_low_rank(tables["random"]) is None
    assert find_low_rank(truncated_columns(5), max_rank=4) is None
    lowrank = KERNELS["lowrank"]
    assert lowrank.supports(prepare_table(tables["exact"])) and not lowrank.supports(prepare_table(tables["random"]))


def test_lowrank_float_path_without_int8(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where the int8 GEMM is not exact (or missing), the float GEMMs give the same bits."""
    monkeypatch.setattr(lowrank_module, "int8_gemm_is_exact", lambda device_type: False)
    assert not lowrank_module.int8_applicable(torch.device("cpu"), 1, 32, [64], 32)
    assert check_kernel("lowrank", SHAPES[1:3], make_tables()) >= 4


def test_int8_probe_on_this_machine() -> None:
    """The probe answers, and when it says exact the int8 GEMM really is exact on extremes."""
    if lowrank_module.int8_applicable(torch.device("cpu"), 2, 40, [300], 40):
        a = torch.full((2, 40, 300), -128, dtype=torch.int8)
        got = lowrank_module.int8_bmm(a, a.transpose(1, 2).contiguous())
        assert int(got[1, 0, 0]) == 300 * 128 * 128


def test_exact_integer_bmm_chunks_beyond_float32() -> None:
    """Sums far beyond 2**24 stay exact: the depth is cut so that every partial sum is representable."""
    rng = np.random.default_rng(5)
    x = rng.integers(-(2**12), 2**12, (1, 6, 5000))
    y = rng.integers(-(2**12), 2**12, (1, 5000, 7))
    got = exact_integer_bmm(torch.from_numpy(x).float(), torch.from_numpy(y).float(), bound=2**24)
    np.testing.assert_array_equal(got[0].numpy(), x[0] @ y[0])
    assert np.abs(x[0] @ y[0]).max() > 2**24


if __name__ == "__main__":  # simulator entry point, see _simulate
    if sys.argv[1:2] == ["--simulate"]:
        assert os.environ.get("NUMBA_ENABLE_CUDASIM") == "1"
        tables = {k: v for k, v in make_tables().items() if k in ("random", "unsigned", "wide")}
        print(check_kernel(sys.argv[2], SIM_SHAPES, tables), "cases passed")
    sys.exit(0)
