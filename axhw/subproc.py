"""External programs run under a time limit, in their own process group, and never left behind.

Every simulator, compiler and C-model run of characterization goes through
:func:`run_limited`.  The child starts a new session (so it and everything it
spawns share one process group that can be killed as a unit), is asked by the
kernel to die with the thread that started it (``PR_SET_PDEATHSIG`` on Linux,
so even ``kill -9`` of axhw leaves no orphaned ``vvp``), and is killed

* when it runs past ``timeout_s`` (SIGTERM to the group, SIGKILL after a short
  grace period; the caller gets :class:`TimeLimitExceeded`);
* on Ctrl-C or any other exception in the caller while it waits;
* at interpreter exit, for any group still alive.
"""

from __future__ import annotations

import atexit
import ctypes
import os
import signal
import subprocess
import sys
import threading
from typing import IO, Mapping, Sequence

__all__ = ["run_limited", "TimeLimitExceeded", "DEFAULT_TIME_LIMIT_S", "signal_name"]

#: Default wall-clock limit of one external run (s); ``axhw add --time-limit`` changes it.
DEFAULT_TIME_LIMIT_S = 300.0
#: Seconds between SIGTERM and SIGKILL when a group is stopped.
_GRACE_S = 2.0

_live: set[subprocess.Popen] = set()
_live_lock = threading.Lock()


class TimeLimitExceeded(Exception):
    """An external program ran past its time limit and was killed (with its process group).

    Attributes:
        cmd: the command line.
        timeout_s: the limit (s).
        stdout, stderr: what the program wrote before it was stopped (text).
    """

    def __init__(self, cmd: Sequence[str], timeout_s: float, stdout: str = "", stderr: str = ""):
        super().__init__(f"{cmd[0]} ran past its time limit of {timeout_s:g} s and was stopped")
        self.cmd, self.timeout_s, self.stdout, self.stderr = list(cmd), timeout_s, stdout, stderr


def signal_name(returncode: int) -> str | None:
    """``"SIGSEGV"`` etc. for a return code that means "killed by a signal" (negative), else ``None``."""
    if returncode >= 0:
        return None
    try:
        return signal.Signals(-returncode).name
    except ValueError:
        return f"signal {-returncode}"


def _load_prctl():
    """libc's ``prctl``, looked up once in the parent (a forked child must not call the loader)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


_prctl = _load_prctl()


def _die_with_parent() -> None:
    """In the child, before exec: receive SIGKILL when the starting thread dies."""
    if _prctl is not None:
        _prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG = 1


def _kill_group(proc: subprocess.Popen, grace_s: float = _GRACE_S) -> None:
    """SIGTERM the child's process group, then SIGKILL whatever is left after ``grace_s``."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        pass
    # the leader may be gone while members of its group linger: the whole group gets SIGKILL
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


@atexit.register
def _kill_all() -> None:
    with _live_lock:
        procs = list(_live)
    for proc in procs:
        _kill_group(proc, grace_s=0.5)


def run_limited(cmd: Sequence[str], *, timeout_s: float | None = None, cwd: str | os.PathLike | None = None,
                env: Mapping[str, str] | None = None, stdout: IO | int | None = subprocess.PIPE,
                stderr: IO | int | None = subprocess.PIPE, input: str | None = None) -> subprocess.CompletedProcess:
    """Run ``cmd`` to completion in its own process group, killed after ``timeout_s`` seconds.

    Args:
        cmd: program and arguments.
        timeout_s: wall-clock limit (s); ``None`` means :data:`DEFAULT_TIME_LIMIT_S`.
        cwd, env: as for :class:`subprocess.Popen`.
        stdout, stderr: ``subprocess.PIPE`` (captured as text, the default), a file, or ``None``.
        input: text sent to the program's standard input.

    Returns:
        The :class:`subprocess.CompletedProcess`; a negative ``returncode`` means it was
        killed by that signal (see :func:`signal_name`).  Never raises for a non-zero status.

    Raises:
        TimeLimitExceeded: the program ran too long; it and its group are gone.
        KeyboardInterrupt (and any exception while waiting): re-raised after killing the group.
    """
    limit = DEFAULT_TIME_LIMIT_S if timeout_s is None else float(timeout_s)
    proc = subprocess.Popen(list(map(str, cmd)), cwd=cwd, env=dict(env) if env is not None else None,
                            stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                            stdout=stdout, stderr=stderr, text=True, start_new_session=True,
                            preexec_fn=_die_with_parent)
    with _live_lock:
        _live.add(proc)
    try:
        try:
            out, err = proc.communicate(input, timeout=limit)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            out, err = proc.communicate()
            raise TimeLimitExceeded(cmd, limit, out or "", err or "") from None
        except BaseException:
            _kill_group(proc, grace_s=0.5)
            raise
    finally:
        with _live_lock:
            _live.discard(proc)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
