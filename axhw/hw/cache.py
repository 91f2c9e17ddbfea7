"""Where hardware costs are kept: ``hw.json`` per design, build folders per synthesis.

``<entry>/hw.json`` (database entries) or ``cache_dir()/hw/designs/<name>-<hash>/hw.json``
(any other Verilog file)::

    {"schema": 2, "key": hw_key(...), "rtl_sha256": ..., "design_sha256": ...,
     "costs": [HardwareCost.to_json() + {"flow": ..., "supply_v": ..., ...}, ...]}

``key`` (:func:`axhw.records.hw_key`) holds everything that determines a cost: RTL
digest, top module, parameters, ports, signedness, wrapper version and flow version.
It is checked by :func:`axhw.records.read_hw_costs`, the one reader of ``hw.json``,
which the library (``Multiplier.costs``, and through it the search and the report)
uses too; this module also checks ``design_sha256`` (the sources as synthesized,
wrapper text and reference table).  Within a file a cost is found by (Liberty hash,
operand-stream hash, clock).  When the key changes every cost of the file is stale
and the next write starts the list afresh.

Writes are serialized: a database entry's ``hw.json`` is replaced through
:func:`axhw.library.update_hw_file` (the database's write lock, the entry's digest
re-written, the entry swapped whole); other files take a lock file beside them.

Intermediate products (netlist, logs, activity) live in
``cache_dir()/hw/build/<key>/``, one folder per (design, Liberty, flow version), so a
new operand stream re-uses synthesis, equivalence and timing.  A forced run gets a
private folder of its own, so two forced runs of one design never share one.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import tempfile
from pathlib import Path
from typing import Any, Iterator

from axhw.errors import AxhwError
from axhw.io import atomic_write_bytes, sha256_bytes
from axhw.paths import cache_dir
from axhw.records import HW_FLOW_VERSION, HW_SCHEMA, HardwareCost, hw_key, read_hw_costs

__all__ = ["SCHEMA", "FLOW_VERSION", "build_dir", "design_key", "lookup", "store", "load_costs", "migrate"]

SCHEMA = HW_SCHEMA
#: Bumped whenever the flow (scripts, constraints, activity model) changes results.
FLOW_VERSION = HW_FLOW_VERSION


def build_dir(design_sha256: str, liberty_sha256: str, fresh: bool = False) -> Path:
    """Folder for the synthesis products of one design on one Liberty library.

    With ``fresh`` a new, empty private folder (for a forced run, which must not
    delete a folder another run is using).
    """
    key = sha256_bytes(f"{design_sha256}:{liberty_sha256}:{FLOW_VERSION}".encode())[:24]
    root = cache_dir() / "hw" / "build"
    if fresh:
        root.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=f"{key}-fresh-", dir=root))
    return root / key


def design_key(design: Any) -> dict[str, Any]:
    """:func:`~axhw.records.hw_key` of a :class:`~axhw.hw.design.Design` (of its core, when wrapped)."""
    core = design.core if design.core is not None else design
    return hw_key(design.rtl_sha256, core.ports)


def _entry_name(design: Any) -> str | None:
    """The database entry whose ``hw.json`` ``design`` uses, or ``None`` for a design outside the database."""
    from axhw import library

    folder = design.hw_json.parent
    if folder.name != design.name:
        return None
    try:
        return design.name if folder.resolve() == library.entry_dir(design.name).resolve() else None
    except AxhwError:
        return None


def _read_bytes(design: Any) -> bytes | None:
    name = _entry_name(design)
    if name is not None:
        from axhw import library

        return library.read_hw_file(name)[0]
    try:
        return design.hw_json.read_bytes()
    except FileNotFoundError:
        return None


def _current(design: Any, data: bytes | None) -> dict[str, Any] | None:
    """The parsed file when it was computed for ``design`` as it is now (else ``None``)."""
    costs, note = read_hw_costs(data, design_key(design), str(design.hw_json))
    if note and data is not None:
        return None
    if data is None:
        return None
    parsed = json.loads(data)
    return parsed if parsed.get("design_sha256") == design.design_sha256 else None


def load_costs(design: Any) -> list[HardwareCost]:
    """Every current-flow cost cached for ``design`` (none when its ``hw.json`` is missing or stale)."""
    data = _read_bytes(design)
    if _current(design, data) is None:
        return []
    return list(read_hw_costs(data, design_key(design), str(design.hw_json))[0])


def lookup(design: Any, liberty_sha256: str, operands_sha256: str, clock_ns: float) -> HardwareCost | None:
    """The cached cost of ``design`` for this library, operand stream and clock, or ``None``."""
    for cost in load_costs(design):
        if (cost.liberty_sha256 == liberty_sha256 and cost.operands_sha256 == operands_sha256
                and abs(cost.clock_ns - clock_ns) < 1e-9):
            return cost
    return None


def _matches(entry: dict[str, Any], liberty_sha256: str, operands_sha256: str, clock_ns: float) -> bool:
    return (entry.get("liberty_sha256") == liberty_sha256 and entry.get("operands_sha256") == operands_sha256
            and abs(float(entry.get("clock_ns", -1)) - clock_ns) < 1e-9 and entry.get("flow") == FLOW_VERSION)


def _merged(design: Any, old: bytes | None, entry: dict[str, Any]) -> bytes:
    data = _current(design, old)
    if data is None:
        data = {"schema": SCHEMA, "key": design_key(design), "rtl_sha256": design.rtl_sha256,
                "design_sha256": design.design_sha256, "costs": []}
    costs = [e for e in data["costs"]
             if not _matches(e, entry["liberty_sha256"], entry["operands_sha256"], entry["clock_ns"])]
    costs.append(entry)
    # Uniform-stream costs first, then by library and clock: stable, readable files.
    costs.sort(key=lambda e: (e.get("operand_stream") != "uniform", e.get("liberty", ""), e.get("clock_ns", 0),
                              e.get("operand_stream", ""), e.get("operands_sha256", "")))
    data["costs"] = costs
    return (json.dumps(data, indent=2, sort_keys=True) + "\n").encode()


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.parent / f".{path.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def store(design: Any, cost: HardwareCost, extra: dict[str, Any]) -> None:
    """Add (or replace) ``cost`` in ``design``'s ``hw.json``; ``extra`` keys are stored beside its fields."""
    entry = {**cost.to_json(), **extra, "flow": FLOW_VERSION}
    name = _entry_name(design)
    if name is not None:
        from axhw import library

        library.update_hw_file(name, lambda old, key: _merged(design, old, entry))
        return
    with _locked(design.hw_json):
        old = design.hw_json.read_bytes() if design.hw_json.is_file() else None
        atomic_write_bytes(design.hw_json, _merged(design, old, entry))


def migrate(names: list[str] | None = None) -> list[str]:
    """Re-write schema-1 ``hw.json`` files of database entries as schema 2, without re-running the flow.

    A file is migrated only when its RTL and design hashes match the entry's design as
    it is now (the check schema 1 made); the others stay and are refused as stale.

    Returns:
        The entries whose ``hw.json`` was migrated.
    """
    from axhw import library
    from axhw.hw.design import as_design

    done = []
    for name in (library.names() if names is None else names):
        try:
            data, _ = library.read_hw_file(name)
            old = json.loads(data) if data is not None else None
            if not isinstance(old, dict) or old.get("schema") != 1:
                continue
            design = as_design(name)
            if old.get("rtl_sha256") != design.rtl_sha256 or old.get("design_sha256") != design.design_sha256:
                continue
            new = {"schema": SCHEMA, "key": design_key(design), "rtl_sha256": design.rtl_sha256,
                   "design_sha256": design.design_sha256,
                   "costs": [e for e in old.get("costs", []) if e.get("flow") == FLOW_VERSION]}
            payload = (json.dumps(new, indent=2, sort_keys=True) + "\n").encode()
            library.update_hw_file(name, lambda _old, _key: payload)
            done.append(name)
        except (AxhwError, ValueError):
            continue
    return done
