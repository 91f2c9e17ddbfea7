"""The installable package, the CLI entry point and `axhw doctor`."""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import axhw
from axhw.cli import main
from axhw.doctor import Check, run_checks

ROOT = Path(__file__).resolve().parent.parent


def test_subpackages_import_under_axhw():
    import axhw.emulator
    import axhw.multipliers_db
    import axhw.rtl
    import axhw.search

    assert Path(axhw.emulator.__file__).parent == ROOT / "emulator"
    assert Path(axhw.search.__file__).parent == ROOT / "search"
    assert Path(axhw.rtl.__file__).parent == ROOT / "rtl"


def test_version_flag(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert axhw.__version__ in capsys.readouterr().out


def test_console_script_runs():
    exe = Path(sys.executable).parent / "axhw"
    proc = subprocess.run([str(exe), "--help"], capture_output=True, text=True)
    assert proc.returncode == 0
    assert "doctor" in proc.stdout


def test_doctor_passes_on_this_machine(capsys):
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    for name in ("iverilog", "yosys", "sta (OpenSTA)", "torch", "timm", "numba", "cocotb", "pyverilog", "CUDA GPU"):
        assert name in out


def test_doctor_reports_missing_tool(tmp_path):
    # A PATH holding only python: iverilog, yosys and sta are all "missing".
    (tmp_path / "python").symlink_to(sys.executable)
    env = {**os.environ, "PATH": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-m", "axhw.cli", "doctor"], capture_output=True, text=True, env=env)
    assert proc.returncode == 1
    lines = {line.split()[0]: line for line in proc.stdout.splitlines() if line.strip()}
    assert "MISSING" in lines["iverilog"] and "apt-get install -y iverilog" in lines["iverilog"]
    assert "MISSING" in lines["yosys"]
    assert "MISSING" in lines["yosys-abc"] and "berkeley-abc" in lines["yosys-abc"]
    assert "missing required: iverilog, yosys, yosys-abc, sta (OpenSTA)" in proc.stdout


@pytest.mark.skipif(shutil.which("yosys") is None, reason="no yosys")
def test_doctor_reports_missing_yosys_abc(tmp_path):
    # yosys present but not the ABC program it runs for mapping: `characterize --hw` would fail.
    (tmp_path / "python").symlink_to(sys.executable)
    (tmp_path / "yosys").symlink_to(shutil.which("yosys") or "/usr/bin/yosys")
    env = {**os.environ, "PATH": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-m", "axhw.cli", "doctor"], capture_output=True, text=True, env=env)
    lines = {line.split()[0]: line for line in proc.stdout.splitlines() if line.strip()}
    assert "MISSING" in lines["yosys-abc"] and proc.returncode == 1


def test_doctor_checks_are_records():
    """Each check is a frozen record with a version, and a failing one says how to fix it."""
    checks = run_checks()
    names = [c.name for c in checks]
    assert len(names) == len(set(names)), names
    for check in checks:
        assert isinstance(check, Check) and dataclasses.is_dataclass(check)
        with pytest.raises(dataclasses.FrozenInstanceError):
            check.ok = not check.ok
        assert isinstance(check.version, str) and check.version, check
        assert check.ok or check.fix or check.detail, f"{check.name} fails without saying how to fix it"


def _packages_on_disk() -> set[str]:
    mapping = {"axhw": ROOT / "axhw", "axhw.emulator": ROOT / "emulator", "axhw.search": ROOT / "search",
               "axhw.rtl": ROOT / "rtl", "axhw.multipliers_db": ROOT / "multipliers_db"}
    found = set()
    for prefix, folder in mapping.items():
        for init in folder.rglob("__init__.py"):
            rel = init.parent.relative_to(folder)
            found.add(".".join([prefix, *rel.parts]) if rel.parts else prefix)
    return found


def test_wheel_contains_every_package_and_the_data(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), str(ROOT)],
        capture_output=True, text=True,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    (wheel,) = tmp_path.glob("axhw-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for package in _packages_on_disk():
        assert package.replace(".", "/") + "/__init__.py" in names, f"{package} missing from the wheel"
    for verilog in (ROOT / "rtl").glob("*.v"):
        assert f"axhw/rtl/{verilog.name}" in names
    for data in (ROOT / "multipliers_db").rglob("*"):
        if data.suffix in (".npy", ".json"):
            assert "axhw/multipliers_db/" + data.relative_to(ROOT / "multipliers_db").as_posix() in names
    assert any(n.endswith("entry_points.txt") for n in names)
