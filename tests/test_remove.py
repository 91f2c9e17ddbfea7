"""``axhw remove NAME``: an entry leaves the database whole; bundled designs need --force."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from axhw import library
from axhw.cli import main
from axhw.paths import bundled_db_dir


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("AXHW_DB", str(tmp_path / "db"))
    for name, copy in (("trunc_k4", "trunc_k4"), ("trunc_k4", "mine")):
        shutil.copytree(bundled_db_dir() / name, tmp_path / "db" / copy)
    return tmp_path / "db"


def test_remove_a_user_entry(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (db / ".tmp-removed-mine-1").mkdir()  # left by a removal that was killed
    assert "mine" in library.names()
    assert main(["remove", "mine"]) == 0
    assert "removed mine" in capsys.readouterr().out
    assert "mine" not in library.names() and not (db / "mine").exists()
    assert sorted(p.name for p in db.iterdir() if not p.name.startswith(".lock")) == ["trunc_k4"]


def test_remove_refuses_unknown_and_bundled(db: Path, capsys: pytest.CaptureFixture[str], monkeypatch) -> None:
    assert main(["remove", "nothere"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nothere" in err[0]
    assert main(["remove", "../x"]) == 2 and len(capsys.readouterr().err.strip().splitlines()) == 1
    monkeypatch.setattr("axhw.removal.bundled_db_dir", lambda: db)  # treat the test database as the bundled layer
    assert main(["remove", "trunc_k4"]) == 2
    assert "bundled design" in capsys.readouterr().err and (db / "trunc_k4").is_dir()
    assert main(["remove", "trunc_k4", "--force"]) == 0 and "trunc_k4" not in library.names()
