"""True evaluations: the accuracy of a configuration, measured, cached, and run in parallel.

An *evaluation task* is a picklable callable ``task(config) -> accuracy`` with a
``fingerprint`` string that identifies everything its answer depends on (model
weights, data subset, calibration, kernel backend).  :class:`ModelTask` is the real
one: :func:`axhw.emulator.approximate` then :func:`axhw.emulator.evaluate` on a fixed
held-out subset.  :class:`Evaluator` adds the on-disk cache, keyed by
``sha256(task fingerprint, config, product-table hash of each multiplier used)``, and
hands cache misses to an executor from :data:`EXECUTORS`:

``"process"`` (default)
    a local :class:`concurrent.futures.ProcessPoolExecutor` (``spawn`` start method,
    the task shipped once per worker); with one worker it runs in the calling process.
``"ray"``
    Ray tasks on an existing cluster (``address="ray://..."`` or ``"auto"``) or on a
    local instance started with ``num_cpus=n_workers`` and no dashboard.
``"serial"``
    the calling process, one configuration after another.

Results come back in the order the configurations were given, whatever the executor,
so a search makes the same decisions on one core or on a cluster.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, Callable, Mapping, Protocol, Sequence

import numpy as np

from axhw.errors import ConfigError
from axhw.io import atomic_write_json, sha256_bytes
from axhw.threads import apply_threads, resolve_threads, worker_threads

__all__ = [
    "EvaluationTask",
    "ModelTask",
    "Evaluator",
    "SerialExecutor",
    "ProcessExecutor",
    "RayExecutor",
    "EXECUTORS",
    "make_executor",
]


class EvaluationTask(Protocol):
    """What an :class:`Evaluator` runs: ``task(config) -> accuracy in [0, 1]``."""

    fingerprint: str

    def __call__(self, config: Mapping[str, str]) -> float: ...


# ---------------------------------------------------------------------- executors
class SerialExecutor:
    """Runs every configuration in the calling process."""

    name = "serial"

    def __init__(self, n_workers: int | None = None, address: str | None = None) -> None:
        self.n_workers = 1

    def map(self, task: Callable[[Mapping[str, str]], Any], configs: Sequence[Mapping[str, str]]) -> list[Any]:
        return [task(c) for c in configs]

    def close(self) -> None:
        pass


_WORKER_TASK: Any = None


def _init_worker(task: Any, torch_threads: int) -> None:
    global _WORKER_TASK
    _WORKER_TASK = task
    apply_threads(torch_threads)  # torch and Numba may be loaded already by unpickling the task


def _run_in_worker(config: Mapping[str, str]) -> Any:
    return _WORKER_TASK(config)


class ProcessExecutor:
    """A local process pool (``spawn``); one worker means the calling process.

    Args:
        n_workers: number of worker processes; ``None``: the thread budget (:mod:`axhw.threads`).
        address: unused (accepted so every executor takes the same arguments).
    """

    name = "process"

    def __init__(self, n_workers: int | None = None, address: str | None = None) -> None:
        self.n_workers = max(1, int(n_workers or resolve_threads()))
        self._pool: ProcessPoolExecutor | None = None
        self._task: Any = None

    def map(self, task: Callable[[Mapping[str, str]], Any], configs: Sequence[Mapping[str, str]]) -> list[Any]:
        if self.n_workers == 1 or len(configs) <= 1:
            return [task(c) for c in configs]
        if self._pool is None or self._task is not task:
            self.close()
            import multiprocessing

            threads = worker_threads(self.n_workers)
            self._pool = ProcessPoolExecutor(self.n_workers, mp_context=multiprocessing.get_context("spawn"),
                                             initializer=_init_worker, initargs=(task, threads))
            self._task = task
        return list(self._pool.map(_run_in_worker, list(configs)))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
            self._task = None


class RayExecutor:
    """Ray tasks, on an existing cluster or a local instance.

    Args:
        n_workers: CPUs of the local instance when one is started (``None``: the thread budget);
            ignored when connecting to a cluster.
        address: ``None`` starts (or reuses) a local instance; ``"auto"`` or
            ``"ray://host:port"`` connects to a running cluster.

    Raises:
        ConfigError: Ray is not installed (``pip install 'ray'``).
    """

    name = "ray"

    def __init__(self, n_workers: int | None = None, address: str | None = None) -> None:
        try:
            import ray
        except ImportError as exc:
            raise ConfigError("executor 'ray' needs the ray package; install it with `pip install ray`, "
                              "or use executor 'process'") from exc
        self._ray = ray
        self.address = address
        self._started = False
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
            if address is None:
                kwargs["num_cpus"] = int(n_workers or resolve_threads())
            _start_ray(ray, address, kwargs)
            self._started = True
        self.n_workers = max(1, int(ray.available_resources().get("CPU", 1)))
        self._remote = ray.remote(_ray_evaluate)
        self._task_ref: Any = None
        self._task: Any = None

    def map(self, task: Callable[[Mapping[str, str]], Any], configs: Sequence[Mapping[str, str]]) -> list[Any]:
        if self._task is not task:
            self._task_ref = self._ray.put(task)
            self._task = task
        refs = [self._remote.remote(self._task_ref, dict(c)) for c in configs]
        return list(self._ray.get(refs))

    def close(self) -> None:
        self._task_ref = None
        self._task = None
        if self._started and self._ray.is_initialized():
            self._ray.shutdown()
            self._started = False


def _start_ray(ray: Any, address: str | None, kwargs: dict[str, Any]) -> None:
    """``ray.init``, with a missing cluster or a local start that fails told in one line.

    Raises:
        ConfigError: no Ray cluster answers at ``address`` (or ``$RAY_ADDRESS``), or a
            local instance cannot start.
    """
    where = address or os.environ.get("RAY_ADDRESS")
    try:
        ray.init(address=address, **kwargs)
    except ConnectionError as exc:
        raise ConfigError(f"executor 'ray': no Ray cluster answers at {where!r} ({str(exc).splitlines()[0][:120]}); "
                          "start one with `ray start --head`, or give no --address (and no RAY_ADDRESS) "
                          "to start a local Ray instance") from None
    except Exception as exc:  # noqa: BLE001 - Ray's start-up raises many types; all mean "cannot run here"
        if where:
            raise
        raise ConfigError(f"executor 'ray': a local Ray instance did not start ({type(exc).__name__}: "
                          f"{str(exc).splitlines()[0][:120] if str(exc) else ''}); use --executor process") from None


def _ray_evaluate(task: Any, config: Mapping[str, str]) -> Any:
    return task(config)


#: Executor name -> class; each takes ``(n_workers=None, address=None)``.
EXECUTORS: dict[str, type] = {"serial": SerialExecutor, "process": ProcessExecutor, "ray": RayExecutor}


def make_executor(name: str = "process", n_workers: int | None = None, address: str | None = None) -> Any:
    """An executor from :data:`EXECUTORS` by name.

    Raises:
        ConfigError: unknown name.
    """
    if name not in EXECUTORS:
        raise ConfigError(f"unknown executor {name!r}; choose one of {', '.join(EXECUTORS)}")
    return EXECUTORS[name](n_workers=n_workers, address=address)


# ---------------------------------------------------------------------- evaluator
class Evaluator:
    """Cached, parallel true evaluations of configurations.

    Args:
        task: the evaluation task (``task(config) -> accuracy``, with ``fingerprint``).
        executor: an executor name from :data:`EXECUTORS` or an executor object.
        n_workers: workers of the executor (``None``: its default).
        address: Ray cluster address (executor ``"ray"`` only).
        cache_dir: folder of the on-disk cache; ``None``: ``axhw.paths.cache_dir() /
            "search_evals"``; ``False``: in-memory only.
        lut_sha256: multiplier name -> product-table hash, mixed into each cache key.

    A task with an ``outcomes(config)`` method (per-image correctness, as
    :class:`ModelTask` has) is run through it, so every evaluation also keeps which
    images it got right (:meth:`outcomes`): paired intervals against the int8 model
    need them.

    Attributes:
        n_computed: configurations actually run by the task (cache misses).
        n_cached: configurations answered from the cache.
    """

    def __init__(
        self,
        task: EvaluationTask,
        executor: str | Any = "process",
        *,
        n_workers: int | None = None,
        address: str | None = None,
        cache_dir: str | os.PathLike | None | bool = None,
        lut_sha256: Mapping[str, str] | None = None,
    ) -> None:
        self.task = task
        self.executor = make_executor(executor, n_workers, address) if isinstance(executor, str) else executor
        if cache_dir is None:
            from axhw.paths import cache_dir as default_cache_dir

            cache_dir = default_cache_dir() / "search_evals"
        self.cache_dir = None if cache_dir is False else Path(cache_dir)
        self.lut_sha256 = dict(lut_sha256 or {})
        self._run = _OutcomeCall(task) if callable(getattr(task, "outcomes", None)) else task
        self._memory: dict[str, float] = {}
        self._outcomes: dict[str, tuple[int, str]] = {}
        self.n_computed = 0
        self.n_cached = 0

    @property
    def n_workers(self) -> int:
        return int(getattr(self.executor, "n_workers", 1))

    def key(self, config: Mapping[str, str]) -> str:
        """Content hash of (task, configuration, product tables used)."""
        items = sorted((str(k), str(v)) for k, v in config.items())
        luts = sorted({(v, self.lut_sha256.get(v, "")) for _, v in items})
        blob = json.dumps({"task": self.task.fingerprint, "config": items, "luts": luts}, sort_keys=True)
        return sha256_bytes(blob.encode())

    def _path(self, key: str) -> Path | None:
        return None if self.cache_dir is None else self.cache_dir / key[:2] / f"{key}.json"

    def _lookup(self, key: str) -> float | None:
        if key in self._memory:
            return self._memory[key]
        path = self._path(key)
        if path is not None and path.is_file():
            try:
                data = json.loads(path.read_text())
                value = float(data["accuracy"])
                outcome = (int(data["n_images"]), str(data["correct"])) if "correct" in data else None
            except (ValueError, KeyError, TypeError, OSError):
                return None  # a damaged entry is simply recomputed
            if outcome is None and self._run is not self.task:
                return None  # written before outcomes were kept: measure again to get them
            self._memory[key] = value
            if outcome is not None:
                self._outcomes[key] = outcome
            return value
        return None

    def outcomes(self, config: Mapping[str, str]) -> np.ndarray | None:
        """Per-image correctness of an evaluated configuration (``None``: not kept or not evaluated)."""
        from axhw.stats import unpack_outcomes

        key = self.key(config)
        if key not in self._memory:
            self._lookup(key)
        kept = self._outcomes.get(key)
        return None if kept is None else unpack_outcomes(kept[1], kept[0])

    def evaluate(self, configs: Sequence[Mapping[str, str]]) -> list[float]:
        """Accuracy of each configuration, in order (cache first, then the executor).

        Every result is written to the cache as soon as its batch returns.
        """
        keys = [self.key(c) for c in configs]
        out: list[float | None] = [self._lookup(k) for k in keys]
        todo: dict[str, int] = {}
        for i, (k, v) in enumerate(zip(keys, out)):
            if v is None and k not in todo:
                todo[k] = i
        self.n_cached += sum(v is not None for v in out)
        if todo:
            values = self.executor.map(self._run, [dict(configs[i]) for i in todo.values()])
            self.n_computed += len(values)
            for (k, i), raw in zip(todo.items(), values):
                entry: dict[str, Any] = {}
                if isinstance(raw, tuple):  # (accuracy, n_images, packed outcomes) from _OutcomeCall
                    raw, n_images, packed = raw
                    self._outcomes[k] = (int(n_images), str(packed))
                    entry = {"n_images": int(n_images), "correct": str(packed)}
                value = float(raw)
                if not np.isfinite(value) or not 0.0 <= value <= 1.0:
                    raise ValueError(f"evaluation task returned accuracy {value!r} outside [0, 1]")
                self._memory[k] = value
                path = self._path(k)
                if path is not None:
                    atomic_write_json(path, {"accuracy": value, "config": dict(configs[i]), **entry})
        return [float(self._memory[k]) if v is None else float(v) for k, v in zip(keys, out)]

    def __call__(self, config: Mapping[str, str]) -> float:
        return self.evaluate([config])[0]

    def close(self) -> None:
        """Stop the executor's workers."""
        self.executor.close()

    def __enter__(self) -> "Evaluator":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class _OutcomeCall:
    """Picklable ``config -> (accuracy, n_images, packed per-image outcomes)`` over a task's ``outcomes``."""

    def __init__(self, task: Any) -> None:
        self.task = task
        self.fingerprint = task.fingerprint

    def __call__(self, config: Mapping[str, str]) -> tuple[float, int, str]:
        from axhw.stats import pack_outcomes

        correct = np.asarray(self.task.outcomes(config), dtype=bool)
        return float(correct.mean()), int(correct.size), pack_outcomes(correct)


# ---------------------------------------------------------------------- real task
class ModelTask:
    """Accuracy of a model under a configuration, on a fixed held-out subset.

    On its first call the task converts a copy of ``model`` once with
    :func:`axhw.emulator.approximate` (all ops ``"exact"``, calibrated on
    ``calib_images``); every call then re-assigns the multipliers with
    :func:`axhw.emulator.set_multipliers` (calibration runs the float model, so the
    scales do not depend on the multipliers) and measures top-1 accuracy on
    ``images`` with :func:`axhw.emulator.evaluate`.  The data are held as tensors so
    the task pickles to worker processes and Ray nodes; the converted model is
    rebuilt in each worker, not shipped.

    Args:
        model: the float model; the task keeps its own copy (on the CPU, in eval
            mode), so the caller's model is neither moved nor changed.
        images, labels: the evaluation subset (the ``search`` split in a search).
        calib_images: calibration images for the int8 scales.
        backend: kernel backend for :func:`axhw.emulator.approximate`.
        batch_size: evaluation batch size.
        device: device to evaluate on (``None``: CPU).
    """

    def __init__(self, model: Any, images: Any, labels: Any, calib_images: Any, *, backend: str = "auto",
                 batch_size: int = 512, device: str | None = None) -> None:
        import copy

        import torch

        self.model = copy.deepcopy(model).cpu().eval()
        self.images = torch.as_tensor(images).float().contiguous()
        self.labels = torch.as_tensor(labels).long().contiguous()
        self.calib_images = torch.as_tensor(calib_images).float().contiguous()
        self.backend = backend
        self.batch_size = int(batch_size)
        self.device = device
        self.fingerprint = self._fingerprint()
        self._ax: Any = None

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_ax"] = None
        return state

    def _fingerprint(self) -> str:
        import torch

        parts = [sha256_bytes(t.detach().cpu().contiguous().numpy().tobytes())
                 for t in list(self.model.state_dict().values()) if isinstance(t, torch.Tensor)]
        parts += [sha256_bytes(t.numpy().tobytes()) for t in (self.images, self.labels, self.calib_images)]
        parts += [type(self.model).__name__, self.backend, _axhw_version()]
        if self.device is not None and str(self.device) != "cpu":  # float rounding may differ off the CPU
            parts.append(str(self.device))
        return sha256_bytes("|".join(parts).encode())

    def _loader(self, images: Any, labels: Any | None = None) -> Any:
        import torch
        from torch.utils.data import DataLoader, TensorDataset

        if labels is None:
            labels = torch.zeros(len(images), dtype=torch.long)
        return DataLoader(TensorDataset(images, labels), batch_size=self.batch_size, shuffle=False)

    def float_accuracy(self) -> float:
        """Top-1 accuracy of the unmodified float model on the subset."""
        from axhw.emulator import evaluate

        return float(evaluate(self.model, self._loader(self.images, self.labels), device=self.device, progress=False))

    def approximated(self, config: Mapping[str, str]) -> Any:
        """The converted model with ``config`` assigned (shared between calls: do not keep it)."""
        from axhw.emulator import approximate, set_multipliers

        if self._ax is None:
            self._ax = approximate(self.model, "exact", self._loader(self.calib_images), backend=self.backend,
                                   progress=False)
            if self.device is not None:
                self._ax.to(self.device)
        return set_multipliers(self._ax, dict(config))

    def outcomes(self, config: Mapping[str, str]) -> np.ndarray:
        """Per-image top-1 correctness (bool, one per image) under ``config``."""
        from axhw.emulator.scoring import correct_per_image

        model = self.approximated(config)
        return correct_per_image(model, self._loader(self.images, self.labels), device=self.device)

    def __call__(self, config: Mapping[str, str]) -> float:
        return float(self.outcomes(config).mean())


def _axhw_version() -> str:
    from axhw._version import __version__

    return __version__
