"""``axhw remove NAME``: an entry leaves the database whole; bundled designs need --force."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from axhw import library
from axhw.cli import main
from axhw.paths import db_dir


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bundled = db_dir()
    monkeypatch.setenv("AXHW_DB", str(tmp_path / "db"))
    for name, copy in (("trunc_k4", "trunc_k4"), ("trunc_k4", "mine")):
        shutil.copytree(bundled / name, tmp_path / "db" / copy)
    return tmp_path / "db"


def test_remove_a_user_entry(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (db / ".mine.removed-1").mkdir()  # left by an interrupted removal
    assert "mine" in library.names()
    assert main(["remove", "mine"]) == 0
    assert "removed mine" in capsys.readouterr().out
    assert "mine" not in library.names() and not (db / "mine").exists()
    assert [p.name for p in db.iterdir()] == ["trunc_k4"]


def test_remove_refuses_unknown_and_bundled(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["remove", "nothere"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no multiplier named 'nothere'" in err[0]
    assert main(["remove", "trunc_k4"]) == 2
    assert "bundled design" in capsys.readouterr().err and (db / "trunc_k4" / "record.json").is_file()
    assert main(["remove", "trunc_k4", "--force"]) == 0 and "trunc_k4" not in library.names()
