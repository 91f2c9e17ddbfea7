"""One thread policy for torch, Numba, BLAS/OpenMP and worker processes.

Every compute library sizes its thread pool on its own, to every core of the machine;
on a machine shared with other jobs, or with several worker processes, the pools
oversubscribe the cores and a run gets many times slower (see docs/performance.md).
So axhw decides one number, the *thread budget*, and gives it to all of them:

1. ``threads`` passed explicitly (``axhw --threads N``, :func:`apply_threads`),
2. else the ``AXHW_THREADS`` environment variable,
3. else ``OMP_NUM_THREADS`` (the variable users of torch already know),
4. else :func:`default_threads`: the cores this process may run on, less those that
   other jobs keep busy (the one-minute load average), at least 1.

:func:`apply_threads` sets torch's and Numba's pools and exports ``OMP_NUM_THREADS``,
``MKL_NUM_THREADS``, ``OPENBLAS_NUM_THREADS``, ``NUMBA_NUM_THREADS`` and
``AXHW_THREADS`` so that child processes inherit the budget; worker pools split it
with :func:`worker_threads` (``n`` workers of ``budget // n`` threads each, at least 1).
The CLI applies it once at start-up; Python users call :func:`apply_threads` themselves.
"""

from __future__ import annotations

import math
import os
import sys

from axhw.errors import ConfigError

__all__ = ["ENV", "available_cores", "default_threads", "resolve_threads", "apply_threads", "worker_threads"]

ENV = "AXHW_THREADS"
"""Environment variable holding the thread budget."""

_CHILD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS", ENV)


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity; else ``os.cpu_count()``)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def default_threads(cores: int | None = None, load: float | None = None) -> int:
    """The budget when none is given: idle cores, at least 1.

    Args:
        cores: cores available (default :func:`available_cores`).
        load: run-queue length of the other jobs (default: the one-minute load average,
            taken before axhw starts working, so it counts other jobs).

    Returns:
        ``max(1, cores - ceil(load - 0.5))``: a core counts as busy when another job
        keeps it more than half loaded.
    """
    cores = available_cores() if cores is None else cores
    if load is None:
        try:
            load = os.getloadavg()[0]
        except (AttributeError, OSError):
            load = 0.0
    busy = max(0, math.ceil(load - 0.5))
    return max(1, min(cores, cores - busy))


def resolve_threads(threads: int | None = None) -> int:
    """The thread budget: ``threads``, else ``$AXHW_THREADS``, else ``$OMP_NUM_THREADS``, else :func:`default_threads`.

    Raises:
        ConfigError: ``threads`` or ``AXHW_THREADS`` is not a positive integer.
    """
    if threads is None:
        variable = next((name for name in (ENV, "OMP_NUM_THREADS") if os.environ.get(name, "").strip()), None)
        if variable is None:
            return default_threads()
        text = os.environ[variable].strip()
        try:
            threads = int(text)
        except ValueError:
            raise ConfigError(f"{variable}={text!r}: expected a positive whole number of threads, e.g. {variable}=2") from None
        where = f"{variable}={text}"
    else:
        where = f"--threads {threads}"
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ConfigError(f"{where}: expected a positive whole number of threads")
    return threads


def apply_threads(threads: int | None = None) -> int:
    """Give the thread budget to torch, Numba and (through the environment) child processes.

    Args:
        threads: the budget; ``None`` resolves it with :func:`resolve_threads`.

    Returns:
        The budget applied.
    """
    n = resolve_threads(threads)
    for name in _CHILD_VARIABLES:
        # Numba refuses a changed NUMBA_NUM_THREADS once its pool runs; set_num_threads covers it.
        if name != "NUMBA_NUM_THREADS" or "numba" not in sys.modules:
            os.environ[name] = str(n)
    # Not imported yet: torch and Numba size their pools from the variables above on import.
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(n)
    numba = sys.modules.get("numba")
    if numba is not None:
        numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    return n


def worker_threads(workers: int, threads: int | None = None) -> int:
    """Threads for each of ``workers`` processes sharing the budget: ``max(1, budget // workers)``."""
    return max(1, resolve_threads(threads) // max(1, workers))
