"""``python -m axhw.training`` writes to ./out unless told otherwise, never into the package by default."""

from __future__ import annotations

from pathlib import Path

import pytest

from axhw import training
from axhw.io import sha256_file
from axhw.models import default_metrics_path, default_weights_path


def test_training_writes_to_the_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bundled = {p: sha256_file(p) for p in (default_weights_path(), default_metrics_path())}
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(training, "apply_threads", lambda threads: 1)  # keep this process's pools
    assert training.main(["--epochs", "1", "--batch-size", "256"]) == 0
    assert (tmp_path / "out" / default_weights_path().name).is_file()
    assert (tmp_path / "out" / default_metrics_path().name).is_file()
    assert {p: sha256_file(p) for p in bundled} == bundled
