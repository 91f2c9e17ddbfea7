"""Batch import: several designs (files or folders) characterized in parallel, one summary table.

:func:`add_many` expands folders into their designs (``.v``, ``.sv``, ``.c`` and
TransAxx ``.h`` LUTs; a ``.c`` and a ``.v``/``.sv`` with the same stem are one
design, the Verilog being the C model's twin, as EvoApproxLib ships them), runs
:func:`axhw.library.add` for each in a pool of worker processes (one per
available core by default) under one tqdm bar, and returns one
:class:`ImportResult` per design.  A design that fails is reported in its row and
the others go on: every entry that succeeded is stored, whatever happens to the
rest.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

from axhw.errors import AxhwError, ConfigError

__all__ = ["ImportResult", "add_many", "expand_paths", "summary_table", "DESIGN_SUFFIXES"]

#: File suffixes a folder is searched for.
DESIGN_SUFFIXES = (".v", ".sv", ".c", ".h")
_LUT_ARRAY = re.compile(r"\[\s*256\s*\]\s*\[\s*256\s*\]")


@dataclass(frozen=True)
class ImportResult:
    """The outcome of importing one design.

    Attributes:
        path: the design file (for a C model with a twin, the ``.c`` file).
        name: database name (the intended one when the import failed).
        ok: whether the entry was stored.
        signedness: the reading taken and, in brief, why ('' when it failed before deciding).
        mae, wce: error against ``a·b`` over the signed domain (product units), ``None`` on failure.
        status: ``"added"``, or ``"failed: "`` and the one-line reason.
        twin: the Verilog twin of a C model, when one was paired with it.
    """

    path: str
    name: str
    ok: bool
    signedness: str
    mae: float | None
    wce: float | None
    status: str
    twin: str | None = None


def _is_lut(path: Path) -> bool:
    try:
        return bool(_LUT_ARRAY.search(path.read_bytes()[:4096].decode("utf-8", errors="replace")))
    except OSError:
        return False


def expand_paths(paths: Iterable[str | os.PathLike]) -> list[tuple[Path, Path | None]]:
    """Designs named by ``paths``: files as given, folders by their design files (not recursive).

    Returns:
        ``(design, twin)`` pairs in order; ``twin`` is the ``.v``/``.sv`` of a ``.c`` with
        the same stem in the same folder (the Verilog is then not a design of its own).

    Raises:
        ConfigError: a path does not exist, or a folder holds no design.
    """
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.is_file() and p.suffix in DESIGN_SUFFIXES
                           and (p.suffix != ".h" or _is_lut(p)))
            if not found:
                raise ConfigError(f"{path}: no design in this folder (expected {', '.join(DESIGN_SUFFIXES)} files)")
            files += found
        elif path.is_file():
            files.append(path)
        else:
            raise ConfigError(f"{path}: no such file or folder")
    files = list(dict.fromkeys(files))
    c_stems = {(p.parent, p.stem): p for p in files if p.suffix == ".c"}
    twins = {c_stems[(p.parent, p.stem)]: p for p in files if p.suffix in (".v", ".sv") and (p.parent, p.stem) in c_stems}
    paired = set(twins.values())
    return [(p, twins.get(p)) for p in files if p not in paired]


def _settings() -> dict[str, str]:
    """The caller's environment settings a worker must see (a forkserver keeps the environment it started with)."""
    return {k: v for k, v in os.environ.items() if k.startswith("AXHW_") or k in ("CC", "PATH")}


def _add_one(path: str, twin: str | None, options: dict[str, Any], settings: dict[str, str]) -> ImportResult:
    """Worker: import one design; every failure becomes the row's status."""
    for key in [k for k in os.environ if k.startswith("AXHW_") and k not in settings]:
        del os.environ[key]
    os.environ.update(settings)
    from axhw import library

    name = re.sub(r"[^A-Za-z0-9_.-]", "_", Path(path).stem)
    try:
        mult = library.add(path, twin=twin, **options)
    except AxhwError as exc:
        return ImportResult(path, name, False, "", None, None, f"failed: {exc}", twin)
    except Exception as exc:  # a bug in one import must not lose the others; reported as such
        return ImportResult(path, name, False, "", None, None, f"failed (internal error {type(exc).__name__}: {exc})", twin)
    return ImportResult(path, mult.name, True, library.signedness_reason(mult.name, short=True),
                        mult.metrics.mae, mult.metrics.wce, "added", twin)


def add_many(paths: Sequence[str | os.PathLike], *, jobs: int | None = None, progress: bool = True,
             **options: Any) -> list[ImportResult]:
    """Characterize and store several designs in parallel.

    Args:
        paths: design files and folders (see :func:`expand_paths`).
        jobs: worker processes; ``None`` uses every available core.
        progress: show one tqdm bar over the designs.
        **options: passed to :func:`axhw.library.add` for every design (e.g. ``signed``,
            ``parameters``, ``family``, ``force``, ``time_limit_s``); options that name
            one design's parts (``name``, ``top``, ``a``, ``b``, ``y``, ``function``,
            ``twin``) are refused.

    Returns:
        One :class:`ImportResult` per design, in the order of :func:`expand_paths`.

    Raises:
        ConfigError: a path is missing, a per-design option was given, or ``jobs < 1``.
    """
    from tqdm.auto import tqdm

    per_design = ("name", "top", "a", "b", "y", "function", "twin")
    single = sorted(k for k in per_design if options.get(k) is not None)
    if single:
        raise ConfigError(f"--{', --'.join(single)} name(s) one design's parts; import several designs without them "
                          "(or one at a time)")
    options = {k: v for k, v in options.items() if k not in per_design}
    designs = expand_paths(paths)
    jobs = len(os.sched_getaffinity(0)) if jobs is None and hasattr(os, "sched_getaffinity") else (jobs or os.cpu_count() or 1)
    if jobs < 1:
        raise ConfigError(f"--jobs must be at least 1, got {jobs}")
    results: dict[int, ImportResult] = {}
    stems: dict[str, Path] = {}
    todo = []
    for i, (path, twin) in enumerate(designs):
        first = stems.setdefault(path.stem, path)
        if first != path:
            results[i] = ImportResult(str(path), path.stem, False, "", None, None,
                                      f"failed: same name as {first}; add it on its own with --name", None)
        else:
            todo.append((i, path, twin))
    context = multiprocessing.get_context("forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn")
    workers = max(1, min(jobs, len(todo)))
    with cf.ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        settings = _settings()
        futures = {pool.submit(_add_one, str(path), str(twin) if twin else None, options, settings): (i, path, twin)
                   for i, path, twin in todo}
        bar = tqdm(total=len(futures), desc="characterizing", unit="design", disable=not progress or not futures)
        try:
            for future in cf.as_completed(futures):
                i, path, twin = futures[future]
                try:
                    results[i] = future.result()
                except Exception as exc:  # the worker process itself died
                    results[i] = ImportResult(str(path), path.stem, False, "", None, None,
                                              f"failed: its worker process ended abnormally ({type(exc).__name__})",
                                              str(twin) if twin else None)
                bar.set_postfix_str(Path(path).name, refresh=False)
                bar.update()
        finally:
            bar.close()
    return [results[i] for i in sorted(results)]


def summary_table(results: Sequence[ImportResult]) -> str:
    """A text table: name, signedness and why, MAE, WCE, status (one row per design)."""
    rows = [("name", "signedness", "MAE", "WCE", "status")]
    for r in results:
        status = r.status if r.twin is None or not r.ok else f"added (C model checked against {Path(r.twin).name})"
        rows.append((r.name, r.signedness or "-", "-" if r.mae is None else f"{r.mae:.3f}",
                     "-" if r.wce is None else f"{r.wce:.0f}", status))
    widths = [max(len(row[k]) for row in rows) for k in range(4)]
    lines = ["  ".join(c.ljust(w) if k < 2 else c.rjust(w) for k, (c, w) in enumerate(zip(row[:4], widths))) + "  " + row[4]
             for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths) + "  " + "-" * 6)
    ok = sum(r.ok for r in results)
    lines.append(f"{ok} of {len(results)} added" + (f"; {len(results) - ok} failed" if ok < len(results) else ""))
    return "\n".join(lines)
