"""Every LUT-matmul kernel is bit-exact against the numpy reference.

One parametrized test covers the whole ``KERNELS`` registry on random int8 data plus
corner cases (-128, 127, 0, all-equal and all-zero rows and columns), several tables
(exact, truncated, random, low-rank with int8 factors, separable with wider factors,
unsigned 0..65025, one spanning more than 2**16 values) and batched shapes.  The
low-rank path is also checked with its int8 GEMMs switched off (float GEMMs only).
Without a GPU, the CUDA kernel runs under Numba's CUDA simulator on small shapes (one
tile, and one spanning several tiles with ragged edges in M, N and K), in a subprocess
so that ``NUMBA_ENABLE_CUDASIM`` does not leak into this process; this file is also
that subprocess's entry point (``python tests/test_kernels.py --simulate``).  Every
CUDA kernel (the emulator's and the GPU benchmark's) is also compiled to PTX for sm_80
and sm_90 without a GPU, and its launch budget checked: registers x threads, shared
memory, no local memory (the register tile stays in registers), and, where ``ptxas``
is installed, no spills.
"""

from __future__ import annotations

import copy
import importlib.util
import os
import pickle
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from axhw.emulator.kernels import KERNELS, find_low_rank, lut_matmul, prepare_table, select_backend
from axhw.emulator.kernels import lowrank as lowrank_module
from axhw.emulator.kernels.lowrank import exact_integer_bmm
from axhw.emulator.kernels.reference import lut_matmul as reference
from axhw.testing import operand_truncation, truncated_partial_products

VALUES = np.arange(-128, 128, dtype=np.int64)


def make_tables() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    low_u, low_v = rng.integers(-9, 10, (256, 3)), rng.integers(-9, 10, (256, 3))
    return {
        "exact": np.outer(VALUES, VALUES).astype(np.int32),
        "truncated": truncated_partial_products(3),
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
SIM_SHAPES = [(2, 5, 35, 9)]  # the simulator runs every thread in Python: keep it small
# Two 64-row tiles, two 128-column tiles and three 32-deep slices, each one ragged.
SIM_MULTI_TILE_SHAPES = [(1, 70, 70, 133)]


def _simulate(name: str, which: str = "single") -> None:
    """Run ``check_kernel`` under the CUDA simulator in a fresh process."""
    env = {**os.environ, "NUMBA_ENABLE_CUDASIM": "1"}
    proc = subprocess.run([sys.executable, __file__, "--simulate", name, which], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "cases passed" in proc.stdout and not proc.stdout.startswith("0 "), proc.stdout


@pytest.mark.parametrize("name", sorted(KERNELS))
def test_kernel_matches_reference(name: str) -> None:
    if name == "numba_cuda" and not KERNELS[name].is_available():
        _simulate(name)
        return
    assert check_kernel(name, SHAPES, make_tables()) > 0


@pytest.mark.slow
def test_cuda_kernel_over_several_ragged_tiles() -> None:
    """Tiles, slices and the persistent block loop: M, N and K each past a tile edge."""
    if KERNELS["numba_cuda"].is_available():
        assert check_kernel("numba_cuda", SIM_MULTI_TILE_SHAPES + [(2, 300, 200, 260)], make_tables()) > 0
    else:
        _simulate("numba_cuda", "multi")


# ---------------------------------------------------------------------------- CUDA launch budget, no GPU needed

CUDA_ARCHS = [(8, 0), (9, 0)]
REGISTERS_PER_SM = 65536
STATIC_SHARED_LIMIT = 48 * 1024  # a kernel's static shared memory (above it: dynamic, opted in)
SHARED_PER_BLOCK = {(8, 0): 163 * 1024, (9, 0): 227 * 1024}  # A100, H100/H200 opt-in maximum


def _cuda_launches() -> dict[str, Any]:
    """Every CUDA kernel that is launched: the emulator's and the GPU benchmark's baselines."""
    from axhw.emulator.kernels.numba_cuda import LAUNCHES

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "kernels.py"
    spec = importlib.util.spec_from_file_location("axhw_bench_kernels", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return {**{f"numba_cuda.{k}": v for k, v in LAUNCHES.items()}, **{f"benchmark.{k}": v for k, v in module.BASELINE_LAUNCHES.items()}}


def _ptxas() -> str | None:
    """A ``ptxas`` binary: on PATH, in the CUDA toolkit, or the one Triton (a torch dependency) ships."""
    found = shutil.which("ptxas") or next((str(p) for p in Path("/usr/local").glob("cuda*/bin/ptxas")), None)
    if found is None:
        triton = importlib.util.find_spec("triton")
        if triton is not None and triton.origin:
            candidate = Path(triton.origin).parent / "backends" / "nvidia" / "bin" / "ptxas"
            found = str(candidate) if candidate.exists() else None
    return found


_PTX: dict[tuple[Any, ...], str] = {}


def _compile_ptx(py_func: Any, signature: tuple[Any, ...], cc: tuple[int, int]) -> str:
    from numba import cuda

    from numba.cuda.cudadrv.error import NvvmSupportError

    key = (py_func, signature, cc)
    if key not in _PTX:
        try:
            _PTX[key] = cuda.compile_ptx(py_func, signature, cc=cc)[0]
        except NvvmSupportError as exc:  # a set-up problem, not a kernel problem: say which
            pytest.fail(f"compiling CUDA kernels to PTX needs the CUDA toolkit's NVVM (libnvvm; e.g. /usr/local/cuda or pip cuda-toolkit[nvvm]): {exc}")
    return _PTX[key]


def launch_budget_problems(spec: Any, cc: tuple[int, int], ptxas: str | None = None, strict: bool = True) -> list[str]:
    """Why a kernel could not be launched as ``spec`` says on a device of compute capability ``cc`` (empty: it can).

    Compiles ``spec.kernel.py_func`` to PTX with ``numba.cuda.compile_ptx`` (no GPU needed;
    compile errors, e.g. a non-constant array shape, raise), then checks the block's
    registers, the static and total shared memory, local memory in the PTX, and, with
    ``ptxas``, the registers and spills of the real machine code.  ``strict=False`` (the
    benchmark's baselines, kept as they were measured) skips the local-memory and spill
    checks, which are about speed, not about launching.
    """
    ptx = _compile_ptx(spec.kernel.py_func, spec.signature, cc)
    problems = []
    declared = spec.kernel.targetoptions.get("max_registers") or 255
    if declared != spec.max_registers:
        problems.append(f"compiled with max_registers={declared}, launch spec says {spec.max_registers}")
    if spec.threads * declared > REGISTERS_PER_SM:
        problems.append(f"{spec.threads} threads x {declared} registers > {REGISTERS_PER_SM}: CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES")
    static = sum(int(size) for size in re.findall(r"\.shared\s+\.align\s+\d+\s+\.b8\s+\w+\[(\d+)\]", ptx))
    if static > STATIC_SHARED_LIMIT:
        problems.append(f"{static} B of static shared memory > {STATIC_SHARED_LIMIT}")
    if static + spec.dynamic_shared_bytes > SHARED_PER_BLOCK[cc]:
        problems.append(f"{static} + {spec.dynamic_shared_bytes} B of shared memory > {SHARED_PER_BLOCK[cc]} on sm_{cc[0]}{cc[1]}")
    if strict and re.search(r"\.local\b", ptx):
        problems.append("local memory in the PTX: a register tile or index array is not in registers")
    if ptxas is not None:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            source = Path(tmp) / "kernel.ptx"
            source.write_text(ptx)
            arch = f"sm_{cc[0]}{cc[1]}"
            proc = subprocess.run([ptxas, f"-arch={arch}", "-v", f"--maxrregcount={declared}", str(source), "-o", str(Path(tmp) / "kernel.cubin")], capture_output=True, text=True)
        report = proc.stdout + proc.stderr
        if proc.returncode:
            problems.append(f"ptxas failed for {arch}: {report[-500:]}")
        used = re.search(r"Used (\d+) registers", report)
        if used is None or int(used.group(1)) > declared:
            problems.append(f"ptxas register use not within {declared}: {report[-300:]}")
        spills = [int(x) for x in re.findall(r"(\d+) bytes spill", report)]
        if strict and any(spills):
            problems.append(f"register spills on {arch}: {spills}")
    return problems


@pytest.mark.parametrize("cc", CUDA_ARCHS, ids=lambda cc: f"sm_{cc[0]}{cc[1]}")
def test_cuda_kernels_compile_within_launch_budget(cc: tuple[int, int]) -> None:
    """Every CUDA kernel compiles for the architecture and fits a multiprocessor as it is launched."""
    ptxas = _ptxas()
    launches = _cuda_launches()
    assert "numba_cuda.lut_bmm" in launches and len(launches) >= 3
    problems = {name: launch_budget_problems(spec, cc, ptxas, strict=name.startswith("numba_cuda.")) for name, spec in launches.items()}
    assert not any(problems.values()), problems


def test_launch_budget_check_rejects_oversized_blocks() -> None:
    """The budget check itself fails a block that could not launch (the previous kernel's 512 x 255)."""
    from axhw.emulator.kernels.numba_cuda import LAUNCHES

    spec = LAUNCHES["lut_bmm"]
    too_big = type(spec)(spec.kernel, spec.signature, 512, spec.max_registers, spec.dynamic_shared_bytes)
    assert any("CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES" in p for p in launch_budget_problems(too_big, (9, 0)))
    too_much_shared = type(spec)(spec.kernel, spec.signature, spec.threads, spec.max_registers, 200 * 1024)
    assert any("shared memory" in p for p in launch_budget_problems(too_much_shared, (8, 0)))


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
    lut = truncated_partial_products(columns)
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
    assert find_low_rank(truncated_partial_products(5), max_rank=4) is None
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
        if sys.argv[3:4] == ["multi"]:  # one table: the simulator takes ~25 s per multi-tile case
            print(check_kernel(sys.argv[2], SIM_MULTI_TILE_SHAPES, {"random": make_tables()["random"]}), "cases passed")
        else:
            tables = {k: v for k, v in make_tables().items() if k in ("random", "unsigned", "wide")}
            print(check_kernel(sys.argv[2], SIM_SHAPES, tables), "cases passed")
    sys.exit(0)
