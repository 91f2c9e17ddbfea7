"""One thread budget (``--threads``, ``AXHW_THREADS``) for torch, Numba and worker processes."""

from __future__ import annotations

import os
import sys
import types

import numba
import pytest
import torch

from axhw import threads
from axhw.cli import build_parser, main
from axhw.errors import ConfigError


@pytest.fixture
def restore_threads(monkeypatch: pytest.MonkeyPatch):
    """Put torch's and Numba's pools and the variables back afterwards."""
    before = torch.get_num_threads(), numba.get_num_threads()
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS", "AXHW_THREADS"):
        monkeypatch.setenv(name, os.environ.get(name, ""))  # monkeypatch restores the old value (or absence)
    yield
    torch.set_num_threads(before[0])
    numba.set_num_threads(before[1])


def test_default_counts_idle_cores() -> None:
    assert threads.default_threads(cores=2, load=8.6) == 1  # a loaded 2-core machine: one thread
    assert threads.default_threads(cores=16, load=0.3) == 16
    assert threads.default_threads(cores=4, load=1.6) == 2
    assert threads.default_threads(cores=4, load=0.0) == 4


def test_resolution_order_and_bad_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AXHW_THREADS", "3")
    monkeypatch.setenv("OMP_NUM_THREADS", "5")
    assert threads.resolve_threads(2) == 2
    assert threads.resolve_threads() == 3
    monkeypatch.setenv("AXHW_THREADS", "")
    assert threads.resolve_threads() == 5
    monkeypatch.delenv("OMP_NUM_THREADS")
    monkeypatch.setattr(threads, "default_threads", lambda: 7)
    assert threads.resolve_threads() == 7
    monkeypatch.setenv("AXHW_THREADS", "many")
    with pytest.raises(ConfigError, match="AXHW_THREADS='many'"):
        threads.resolve_threads()
    with pytest.raises(ConfigError, match="--threads 0"):
        threads.resolve_threads(0)
    assert threads.worker_threads(2, 5) == 2 and threads.worker_threads(8, 2) == 1


def test_apply_sets_torch_numba_and_children(restore_threads: None) -> None:
    assert threads.apply_threads(1) == 1
    assert torch.get_num_threads() == 1 and numba.get_num_threads() == 1
    assert os.environ["OMP_NUM_THREADS"] == "1" and os.environ["AXHW_THREADS"] == "1" and os.environ["MKL_NUM_THREADS"] == "1"


def test_cli_flag_before_or_after_the_subcommand(restore_threads: None, capsys: pytest.CaptureFixture[str]) -> None:
    parser = build_parser()
    assert parser.parse_args(["--threads", "2", "doctor"]).threads == 2
    assert parser.parse_args(["doctor", "--threads", "3"]).threads == 3
    assert parser.parse_args(["doctor"]).threads is None
    assert main(["--threads", "0", "doctor"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["axhw doctor: error: --threads 0: expected a positive whole number of threads"]


def test_process_workers_take_their_share(restore_threads: None) -> None:
    from axhw.search import evaluate

    evaluate._init_worker(lambda config: 0.0, 1)  # what each spawned worker runs first
    assert torch.get_num_threads() == 1 and os.environ["OMP_NUM_THREADS"] == "1"


def test_ray_without_a_cluster_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    def init(address=None, **kwargs):
        raise ConnectionError("Could not find any running Ray instance.\nmore detail")

    fake = types.SimpleNamespace(is_initialized=lambda: False, init=init)
    monkeypatch.setitem(sys.modules, "ray", fake)
    from axhw.search.evaluate import RayExecutor

    with pytest.raises(ConfigError) as info:
        RayExecutor(address="auto")
    message = str(info.value)
    assert "\n" not in message and "'auto'" in message and "ray start --head" in message

    def broken(address=None, **kwargs):
        raise RuntimeError("raylet died")

    fake.init = broken
    with pytest.raises(ConfigError, match="local Ray instance did not start.*--executor process"):
        RayExecutor()
