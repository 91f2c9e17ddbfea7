"""``axhw doctor``: check every tool and library axhw relies on.

Each check returns a :class:`Check` saying whether the dependency is present, its
version, whether it is required, and the exact command that installs it.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
from dataclasses import dataclass
from typing import Callable

from axhw.hw.liberty import LIBERTY_FILES, find_liberty
from axhw.records import DEFAULT_LIBERTY
from axhw.text import text_table
from axhw.tools import tool_version

__all__ = ["Check", "run_checks", "format_table"]

APT = "apt-get install -y"


@dataclass(frozen=True)
class Check:
    """Outcome of one dependency check."""

    name: str
    ok: bool
    version: str
    required: bool
    fix: str = ""
    detail: str = ""


def _tool(name: str, exe: str, package: str) -> Check:
    version = tool_version(exe)
    return Check(name, version is not None, version or "-", True, f"{APT} {package}")


def _sta() -> Check:
    return _tool("sta (OpenSTA)", "sta", "opensta")


def _python_package(dist: str, module: str | None = None, required: bool = True) -> Check:
    module = module or dist
    try:
        importlib.import_module(module)
        version = importlib.metadata.version(dist)
        return Check(dist, True, version, required, f"pip install {dist}")
    except Exception as exc:  # noqa: BLE001 - any import failure means unusable
        return Check(dist, False, "-", required, f"pip install {dist}", detail=f"{type(exc).__name__}: {exc}"[:120])


def _liberty() -> Check:
    found = [name for name in LIBERTY_FILES if find_liberty(name)]
    return Check("Liberty cell libraries", DEFAULT_LIBERTY in found, ", ".join(found) or "none", True,
                 f"{APT} qflow-tech-{DEFAULT_LIBERTY}", detail=LIBERTY_FILES[DEFAULT_LIBERTY])


def _cc() -> Check:
    for cc in ("cc", "gcc", "clang"):
        version = tool_version(cc)
        if version:
            return Check(f"C compiler ({cc})", True, version, False, f"{APT} gcc", detail="for `axhw add design.c`")
    return Check("C compiler", False, "-", False, f"{APT} gcc", detail="only for `axhw add design.c`")


def _torch_cuda() -> Check:
    try:
        import torch

        if torch.cuda.is_available():
            return Check("CUDA GPU (torch)", True, torch.cuda.get_device_name(0), False)
        return Check("CUDA GPU (torch)", False, "none", False, detail="optional: emulation runs on the CPU")
    except Exception as exc:  # noqa: BLE001
        return Check("CUDA GPU (torch)", False, "-", False, detail=str(exc)[:120])


def _numba_cuda() -> Check:
    try:
        from numba import cuda

        if cuda.is_available():
            return Check("numba CUDA", True, "usable", False)
        return Check("numba CUDA", False, "no GPU", False, detail="optional: numba CPU kernels are used")
    except Exception as exc:  # noqa: BLE001
        return Check("numba CUDA", False, "-", False, "pip install numba-cuda", detail=str(exc)[:120])


CHECKS: tuple[Callable[[], Check], ...] = (
    lambda: _tool("iverilog", "iverilog", "iverilog"),
    lambda: _tool("yosys", "yosys", "yosys"),
    # yosys runs ABC as a separate program for technology mapping; without it `characterize --hw` fails.
    lambda: _tool("yosys-abc", "yosys-abc", "berkeley-abc yosys"),
    _sta,
    _liberty,
    _cc,
    lambda: _python_package("torch"),
    lambda: _python_package("torchvision"),
    lambda: _python_package("timm"),
    lambda: _python_package("numpy"),
    lambda: _python_package("scikit-learn", "sklearn"),
    lambda: _python_package("numba"),
    lambda: _python_package("cocotb"),
    lambda: _python_package("pyverilog"),
    lambda: _python_package("matplotlib"),
    lambda: _python_package("pymoo"),
    lambda: _python_package("ray", required=False),
    _torch_cuda,
    _numba_cuda,
)


def run_checks() -> list[Check]:
    """Run every dependency check (takes a few seconds: it imports torch and numba)."""
    os.environ.setdefault("PYVERILOG_NO_TABLES", "1")
    return [check() for check in CHECKS]


def format_table(checks: list[Check]) -> str:
    """Render checks as an aligned text table with a status column and fixes."""
    rows = [("component", "status", "version", "how to fix / note")]
    for c in checks:
        status = "OK" if c.ok else ("MISSING" if c.required else "absent (optional)")
        note = c.detail if c.ok else " ".join(x for x in (c.fix, c.detail) if x)
        rows.append((c.name, status, c.version, note))
    return text_table(rows, left=4)
