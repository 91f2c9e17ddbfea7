"""Running the external EDA tools (yosys, iverilog/vvp, OpenSTA) with logs kept on disk.

Every run writes its full stdout+stderr to a log file; a failure raises
:class:`~axhw.errors.SynthesisError` quoting the last lines of the log and saying
where the whole log is.  OpenSTA keeps going after a Tcl error and still exits 0,
so its logs are also scanned for ``Error:`` lines.
"""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
from pathlib import Path
from typing import Sequence

from axhw.errors import SynthesisError, ToolMissingError
from axhw.tools import tool_version

__all__ = ["run_tool", "tool_versions", "log_tail", "require"]

#: Debian packages providing each executable, for the "how to fix" part of errors.
_PACKAGES = {"yosys": "yosys", "iverilog": "iverilog", "vvp": "iverilog", "sta": "opensta"}

#: Lines of a failing tool's log quoted in the error message.
TAIL_LINES = 15


def require(exe: str) -> str:
    """Absolute path of ``exe``; raises :class:`ToolMissingError` with the install command."""
    path = shutil.which(exe)
    if path is None:
        package = _PACKAGES.get(exe, exe)
        raise ToolMissingError(f"`{exe}` is not installed; install it with `apt-get install -y {package}` "
                               "(or run `make demo`, which installs every system tool); see `axhw doctor`")
    return path


def log_tail(text: str, lines: int = TAIL_LINES) -> str:
    """The last ``lines`` non-empty lines of ``text``, indented for an error message."""
    kept = [line for line in text.splitlines() if line.strip()][-lines:]
    return "\n".join("    " + line for line in kept)


def run_tool(cmd: Sequence[str], log: Path, what: str, *, cwd: Path, timeout_s: float = 600.0,
             error_pattern: str | None = None) -> str:
    """Run ``cmd`` in ``cwd``, save its output to ``log`` and return that output.

    Args:
        cmd: the command line; ``cmd[0]`` is looked up on ``PATH``.
        log: file receiving stdout and stderr (overwritten).
        what: what the run does, for the error message (e.g. "yosys synthesis of exact").
        cwd: working directory (tools may drop history or temp files there).
        timeout_s: wall-clock limit in seconds.
        error_pattern: regular expression; a log line matching it (``re.M``) counts as
            a failure even when the exit status is 0 (OpenSTA's ``^Error:``).

    Raises:
        ToolMissingError: the executable is not installed.
        SynthesisError: non-zero exit, time-out, or an ``error_pattern`` match; the
            message quotes the log tail and gives the log path.
    """
    exe = require(cmd[0])
    log.parent.mkdir(parents=True, exist_ok=True)
    try:
        proc = subprocess.run([exe, *cmd[1:]], cwd=cwd, capture_output=True, text=True, timeout=timeout_s,
                              stdin=subprocess.DEVNULL)
        output = proc.stdout + proc.stderr
        failed = proc.returncode != 0
        reason = f"exit status {proc.returncode}"
    except subprocess.TimeoutExpired as exc:
        output = (exc.stdout or b"").decode(errors="replace") if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        failed, reason = True, f"timed out after {timeout_s:.0f} s"
    log.write_text(output)
    if not failed and error_pattern:
        match = re.search(error_pattern, output, re.M)
        if match:
            failed, reason = True, f"reported {match.group(0).strip()!r}"
    if failed:
        raise SynthesisError(f"{what} failed ({reason}); last lines of the log:\n{log_tail(output)}\n"
                             f"full log: {log}")
    return output


@functools.cache
def tool_versions() -> dict[str, str]:
    """Versions of yosys, iverilog and OpenSTA, recorded with every hardware cost.

    Raises:
        ToolMissingError: one of them is not installed.
    """
    versions = {}
    for exe in ("yosys", "iverilog", "sta"):
        require(exe)
        versions[exe] = tool_version(exe) or "unknown"
    return versions
