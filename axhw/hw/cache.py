"""Where hardware costs are kept: ``hw.json`` per design, build folders per synthesis.

``multipliers_db/<name>/hw.json``::

    {"schema": 1, "rtl_sha256": ..., "design_sha256": ...,
     "costs": [HardwareCost.to_json() + {"flow": ..., "supply_v": ..., ...}, ...]}

A cost is found again by (RTL hash, Liberty hash, operand-stream hash, clock, flow
version); when the RTL hash or the design hash (source, ports, parameters) changes,
every cost of the file is stale and the next write starts the list afresh.  Writes
are atomic and serialized by a lock file, so parallel workers never lose an entry.

Intermediate products (netlist, logs, activity) live in
``cache_dir()/hw/build/<key>/``, one folder per (design, Liberty, flow version), so a
new operand stream re-uses synthesis, equivalence and timing.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import warnings
from pathlib import Path
from typing import Any, Iterator

from ..io import atomic_write_json, sha256_bytes
from ..paths import cache_dir
from ..records import HardwareCost

__all__ = ["SCHEMA", "FLOW_VERSION", "build_dir", "lookup", "store", "load_costs"]

SCHEMA = 1
#: Bumped whenever the flow (scripts, constraints, activity model) changes results.
FLOW_VERSION = 1


def build_dir(design_sha256: str, liberty_sha256: str) -> Path:
    """Folder for the synthesis products of one design on one Liberty library."""
    key = sha256_bytes(f"{design_sha256}:{liberty_sha256}:{FLOW_VERSION}".encode())[:24]
    return cache_dir() / "hw" / "build" / key


def _read(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
        if data.get("schema") != SCHEMA or not isinstance(data.get("costs"), list):
            raise ValueError(f"schema {data.get('schema')!r}")
        return data
    except (ValueError, AttributeError) as exc:
        warnings.warn(f"ignoring unreadable hardware-cost cache {path} ({exc}); it will be rebuilt", stacklevel=3)
        return None


def _matches(entry: dict[str, Any], liberty_sha256: str, operands_sha256: str, clock_ns: float) -> bool:
    return (entry.get("liberty_sha256") == liberty_sha256 and entry.get("operands_sha256") == operands_sha256
            and abs(float(entry.get("clock_ns", -1)) - clock_ns) < 1e-9 and entry.get("flow") == FLOW_VERSION)


def lookup(path: Path, rtl_sha256: str, design_sha256: str, liberty_sha256: str, operands_sha256: str,
           clock_ns: float) -> HardwareCost | None:
    """The cached cost for this key in ``path``, or ``None`` (missing or stale)."""
    data = _read(path)
    if data is None or data.get("rtl_sha256") != rtl_sha256 or data.get("design_sha256") != design_sha256:
        return None
    for entry in data["costs"]:
        if _matches(entry, liberty_sha256, operands_sha256, clock_ns):
            return HardwareCost.from_json(entry)
    return None


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.parent / f".{path.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def store(path: Path, rtl_sha256: str, design_sha256: str, cost: HardwareCost, extra: dict[str, Any]) -> None:
    """Add (or replace) ``cost`` in ``path``; ``extra`` keys are stored beside its fields."""
    entry = {**cost.to_json(), **extra, "flow": FLOW_VERSION}
    with _locked(path):
        data = _read(path)
        if data is None or data.get("rtl_sha256") != rtl_sha256 or data.get("design_sha256") != design_sha256:
            data = {"schema": SCHEMA, "rtl_sha256": rtl_sha256, "design_sha256": design_sha256, "costs": []}
        costs = [e for e in data["costs"]
                 if not _matches(e, cost.liberty_sha256, cost.operands_sha256, cost.clock_ns)]
        costs.append(entry)
        # Uniform-stream costs first, then by library and clock: stable, readable files.
        costs.sort(key=lambda e: (e.get("operand_stream") != "uniform", e.get("liberty", ""), e.get("clock_ns", 0),
                                  e.get("operand_stream", ""), e.get("operands_sha256", "")))
        data["costs"] = costs
        atomic_write_json(path, data)


def load_costs(path: Path, rtl_sha256: str | None = None) -> list[HardwareCost]:
    """Every cost in ``path`` (current flow only); with ``rtl_sha256``, none when it is stale."""
    data = _read(path)
    if data is None or (rtl_sha256 is not None and data.get("rtl_sha256") != rtl_sha256):
        return []
    return [HardwareCost.from_json(e) for e in data["costs"] if e.get("flow") == FLOW_VERSION]
