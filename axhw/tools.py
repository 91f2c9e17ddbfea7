"""Asking the external tools (iverilog, yosys, OpenSTA, a C compiler) for their versions.

One probe serves ``axhw doctor``, the hardware-cost records (``HardwareCost.tools``)
and the characterization records, so they all report a tool the same way.
"""

from __future__ import annotations

import re
import shutil
import subprocess

__all__ = ["VERSION_QUERIES", "tool_version"]

_CC_QUERY = ("--version",), r"(\d+\.\d+(?:\.\d+)?)"

#: Executable -> (arguments that print its version, regex whose first group is the version).
VERSION_QUERIES: dict[str, tuple[tuple[str, ...], str]] = {
    "iverilog": (("-V",), r"Icarus Verilog version (\S+)"),
    "yosys": (("-V",), r"Yosys (\S+)"),
    "yosys-abc": (("-q", "version"), r"ABC (\S+)"),  # the ABC yosys runs for technology mapping
    "sta": (("-version",), r"(\d+\.\d+\.\d+)"),
    "cc": _CC_QUERY,
    "gcc": _CC_QUERY,
    "clang": _CC_QUERY,
}


def tool_version(exe: str, timeout_s: float = 30.0) -> str | None:
    """Version string of the external tool ``exe`` (a key of :data:`VERSION_QUERIES`).

    Returns:
        The version (e.g. ``"12.0"``); ``"unknown"`` when the tool ran but printed no
        version this axhw recognizes; ``None`` when it is not on ``PATH``, cannot be
        run, or takes longer than ``timeout_s`` seconds.
    """
    args, pattern = VERSION_QUERIES[exe]
    path = shutil.which(exe)
    if path is None:
        return None
    try:
        proc = subprocess.run([path, *args], capture_output=True, text=True, timeout=timeout_s,
                              stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(pattern, proc.stdout + proc.stderr)
    return match.group(1) if match else "unknown"
