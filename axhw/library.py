"""The multiplier database: characterized product tables, their records and error metrics.

Layers (:func:`axhw.paths.db_layers`): the user database (``$AXHW_DB``, else the user
data folder), then the bundled ``multipliers_db/`` shipped with axhw, read-only
except in a source checkout.  A name in the user database hides the bundled entry
of the same name (``add --force`` says so).  Each entry is a folder::

    <name>/lut.npy       int32 (256, 256) table as the design computes it
    <name>/record.json   name, family, source file + sha256, parameters, ports, metrics,
                         and the sha256/shape/dtype of lut.npy
    <name>/hw.json       hardware cost (written by :mod:`axhw.hw`, optional), keyed by
                         :func:`axhw.records.hw_key`
    <name>/digest.json   sha256 of every other file, written last (:mod:`axhw.entries`)

The bundled designs are listed in ``rtl/library.json`` (one entry per parameter
set); :func:`rebuild` characterizes the ones that are missing or stale.  User
designs come in through :func:`add` (Verilog via cocotb + Icarus, C via
:mod:`axhw.cmodel`).

Table convention (what :class:`Multiplier` ``.lut`` always holds):
``lut[a + 128, b + 128]`` is the product for signed int8 ``a, b`` in [-128, 127].

Unsigned designs and −128: an unsigned 8x8 design ``M(x, y)``, x, y in [0, 255],
is used in sign-magnitude form, ``lut[a, b] = sign(a·b) · M(|a|, |b|)``.  The
magnitude of −128 is 128, which an 8-bit unsigned operand holds exactly (0x80),
so −128 needs no saturation or special case: an exact unsigned design gives the
exact signed table, including ``(−128)·(−128) = 16384``.  ``lut.npy`` stores the
design's own unsigned table ``M[x, y]``; the wrap happens at load time.

Integrity (see ``docs/reliability.md``): an entry is complete or absent.  Every
reader reads each file once, checks it against ``digest.json`` and parses the bytes
it checked, so an edited, truncated or half-swapped entry is reported corrupt and
never loaded; a stale entry (its source changed) is refused too.  Writers hold the
database's write lock, build the new entry aside and swap it in whole; an existing
name is replaced only with ``force``.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from axhw.entries import REQUIRED_FILES, commit, is_entry, read_files, read_loose, writable_root, write_lock
from axhw.errors import AxhwError, CharacterizationError, ConfigError, DatabaseError
from axhw.io import atomic_save_npy, atomic_write_bytes, atomic_write_text, sha256_bytes, sha256_file
from axhw.metrics import error_metrics, error_table
from axhw.paths import bundled_db_dir, db_layers, repo_root, rtl_dir, user_db_dir
from axhw.records import DEFAULT_LIBERTY, ErrorMetrics, HardwareCost, PortSpec, hw_key, read_hw_costs
from axhw.text import text_table

__all__ = [
    "Multiplier",
    "ManifestEntry",
    "names",
    "load",
    "load_all",
    "add",
    "rebuild",
    "export",
    "status",
    "manifest",
    "list_table",
    "show",
    "signedness_reason",
    "sign_magnitude",
    "entry_dir",
    "read_hw_file",
    "update_hw_file",
    "check_writable",
    "RECORD_SCHEMA",
    "EXPORT_FORMATS",
    "RESERVED_NAMES",
]

#: Schema number of ``record.json``; 2 is the first inside a digest-covered entry.
RECORD_SCHEMA = 2
#: Names :func:`add` refuses: they mean something else in a layer config.
RESERVED_NAMES = frozenset({"fp32"})
#: Formats :func:`export` writes.
EXPORT_FORMATS = ("c-header", "npy", "transaxx")
#: Which hardware cost :attr:`Multiplier.hw` returns.
DEFAULT_STREAM = "uniform"
_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$")
_MANIFEST = "library.json"
_RECORD_KEYS = {"name", "family", "description", "rtl_path", "rtl_sha256", "signed", "ports", "lut", "metrics"}


@dataclass(frozen=True)
class Multiplier:
    """One characterized 8x8 multiplier.

    Attributes:
        name: database name (folder in the user or the bundled database).
        family: algorithm family, e.g. ``"drum"``, ``"truncation"``, ``"exact"``.
        description: one line on the algorithm and its parameters.
        lut: int32 (256, 256), ``lut[a + 128, b + 128]`` ≈ ``a·b`` (unsigned designs
            already wrapped to sign-magnitude, see the module docstring).
        metrics: error of ``lut`` against ``a·b``.
        ports: module, port names, widths, signedness and parameters.
        rtl_path: source file, relative to :func:`axhw.paths.rtl_dir` for bundled
            designs, absolute for user designs.
        rtl_sha256: SHA-256 of the source file when characterized.
        signed: ``True`` for two's-complement designs, ``False`` for unsigned ones.
        costs: hardware costs from ``hw.json`` (empty until :mod:`axhw.hw` ran, or when
            ``hw.json`` was computed for another design or flow: see ``hw_note``).
        hw_note: why ``costs`` is empty ('' when it is not).
        folder: the entry's folder (user or bundled database).
    """

    name: str
    family: str
    description: str
    lut: np.ndarray
    metrics: ErrorMetrics
    ports: PortSpec
    rtl_path: str
    rtl_sha256: str
    signed: bool
    costs: tuple[HardwareCost, ...] = ()
    hw_note: str = dataclasses.field(default="", compare=False)
    folder: Path | None = dataclasses.field(default=None, compare=False)

    @property
    def hw(self) -> HardwareCost | None:
        """The cost on ``osu018`` with uniform random operands, if characterized."""
        return next((c for c in self.costs if c.liberty == DEFAULT_LIBERTY and c.operand_stream == DEFAULT_STREAM), None)

    @property
    def source_path(self) -> Path:
        """Absolute path of the source file (``.v`` or ``.c``)."""
        return rtl_dir() / self.rtl_path

    def __repr__(self) -> str:
        m = self.metrics
        return (f"Multiplier(name={self.name!r}, family={self.family!r}, signed={self.signed}, "
                f"mae={m.mae:.4g}, wce={m.wce:.0f}, error_rate={m.error_rate:.4f})")


@dataclass(frozen=True)
class ManifestEntry:
    """One bundled design (one parameter set of one ``rtl/*.v`` file) from ``rtl/library.json``."""

    name: str
    file: str
    family: str
    description: str
    parameters: dict[str, int] = dataclasses.field(default_factory=dict)
    top: str | None = None
    signed: bool | None = None


# --------------------------------------------------------------------------- paths and records


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ConfigError(f"invalid multiplier name {name!r}: use a letter then letters, digits, '_', '.', '-' "
                          "(max 64); a name is never a path")
    return name


def _relative_source(path: Path) -> str:
    path = path.resolve()
    try:
        return path.relative_to(rtl_dir().resolve()).as_posix()
    except ValueError:
        return str(path)


def _locate(name: str) -> Path | None:
    """The folder of entry ``name`` in the first database layer that has it."""
    for layer in db_layers():
        folder = layer / name
        if is_entry(folder):
            return folder
    return None


def entry_dir(name: str) -> Path:
    """Folder of database entry ``name`` (the user layer's when it shadows a bundled one).

    Raises:
        ConfigError: ``name`` is not a valid name (e.g. a path).
        DatabaseError: no such entry.
    """
    folder = _locate(_check_name(name))
    if folder is None:
        raise DatabaseError(_unknown_message(name))
    return folder


def names() -> list[str]:
    """Names of every entry of every database layer (user and bundled), sorted."""
    found: set[str] = set()
    for layer in db_layers():
        if layer.is_dir():
            found.update(p.name for p in layer.iterdir()
                         if not p.name.startswith(".") and _NAME_RE.match(p.name) and is_entry(p))
    return sorted(found)


_database_names = names  # for functions whose ``names`` argument shadows it


def manifest() -> list[ManifestEntry]:
    """The bundled designs listed in ``rtl/library.json``."""
    path = rtl_dir() / _MANIFEST
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise DatabaseError(f"{path}: cannot read the library manifest: {exc}") from None
    fields = {f.name for f in dataclasses.fields(ManifestEntry)}
    return [ManifestEntry(**{k: v for k, v in item.items() if k in fields}) for item in data["entries"]]


def _parse_record(folder: Path, data: bytes, schema: int = RECORD_SCHEMA) -> dict[str, Any]:
    path, name = folder / "record.json", folder.name
    fix = f"re-create it with `axhw rebuild {name}`"
    try:
        record = json.loads(data)
    except json.JSONDecodeError as exc:
        raise DatabaseError(f"{path}:{exc.lineno}: corrupt record ({exc.msg}); {fix}") from None
    except UnicodeDecodeError:
        raise DatabaseError(f"{path}: corrupt record (not UTF-8); {fix}") from None
    if not isinstance(record, dict) or record.get("schema") != schema:
        raise DatabaseError(f"{path}: not a schema-{schema} multiplier record; {fix}")
    missing = sorted(_RECORD_KEYS - set(record))
    if missing:
        raise DatabaseError(f"{path}: corrupt record (missing {', '.join(missing)}); {fix}")
    if record["name"] != name:
        raise DatabaseError(f"{path}: the record is for {record['name']!r}, not {name!r} (copied by hand?); {fix}")
    return record


def _parse_table(folder: Path, data: bytes, record: Mapping[str, Any]) -> np.ndarray:
    """The stored raw table, from ``data``, checked against the record's hash, shape and dtype."""
    path = folder / "lut.npy"
    fix = f"re-create it with `axhw rebuild {folder.name}`"
    meta = record.get("lut") if isinstance(record.get("lut"), dict) else {}
    if sha256_bytes(data) != meta.get("sha256"):
        raise DatabaseError(f"{path}: corrupt product table (sha256 differs from record.json; truncated or edited?); {fix}")
    try:
        table = np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise DatabaseError(f"{path}: unreadable product table ({exc}); {fix}") from None
    if table.shape != (256, 256) or table.dtype != np.int32 or list(table.shape) != meta.get("shape"):
        raise DatabaseError(f"{path}: product table has shape {table.shape} and dtype {table.dtype}, "
                            f"expected (256, 256) int32; {fix}")
    return table


def sign_magnitude(unsigned_table: np.ndarray) -> np.ndarray:
    """Wrap an unsigned design's table ``M[x, y]`` into the signed-index convention.

    Returns ``lut[a + 128, b + 128] = sign(a·b) · M[|a|, |b|]`` (int32), for a, b in
    [-128, 127]; ``|−128| = 128`` indexes ``M`` directly (see module docstring).
    """
    values = np.arange(-128, 128)
    mag = np.abs(values)
    sign = np.sign(values)
    return (np.sign(np.multiply.outer(sign, sign)) * unsigned_table[np.ix_(mag, mag)]).astype(np.int32)


def _signed_table(raw: np.ndarray, signed: bool) -> np.ndarray:
    return raw.astype(np.int32) if signed else sign_magnitude(raw)


def _hw_key(record: Mapping[str, Any]) -> dict[str, Any]:
    return hw_key(record["rtl_sha256"], PortSpec.from_json(record["ports"]))


def _read(folder: Path) -> tuple[dict[str, Any], np.ndarray, dict[str, bytes]]:
    """(record, raw table, file bytes) of one entry: every file read once, checked, and parsed from those bytes."""
    files = read_files(folder)
    record = _parse_record(folder, files["record.json"])
    return record, _parse_table(folder, files["lut.npy"], record), files


def _multiplier(folder: Path, record: Mapping[str, Any], raw: np.ndarray, files: Mapping[str, bytes]) -> Multiplier:
    name = folder.name
    try:
        signed = record["signed"]
        ports = PortSpec.from_json(record["ports"])
        if not isinstance(signed, bool) or signed != ports.signed:
            raise ValueError(f"'signed' is {signed!r} but the ports say {ports.signed!r}")
        costs, note = read_hw_costs(files.get("hw.json"), _hw_key(record), str(folder / "hw.json"),
                                    fix=f"re-run `axhw characterize --hw {name}`")
        return Multiplier(
            name=record["name"], family=str(record["family"]), description=str(record["description"]),
            lut=_signed_table(raw, signed), metrics=ErrorMetrics.from_json(record["metrics"]), ports=ports,
            rtl_path=str(record["rtl_path"]), rtl_sha256=str(record["rtl_sha256"]), signed=signed, costs=costs,
            hw_note=note, folder=folder)
    except (TypeError, ValueError, KeyError, AttributeError, DatabaseError) as exc:
        raise DatabaseError(f"{folder / 'record.json'}: corrupt record ({exc}); "
                            f"re-create it with `axhw rebuild {name}`") from None


def _source_state(record: Mapping[str, Any], entry: ManifestEntry | None) -> str:
    """``ok``, ``stale`` (source or parameters changed) or ``no-source`` for one record."""
    source = rtl_dir() / record["rtl_path"]
    if not source.is_file():
        return "no-source"
    if sha256_file(source) != record["rtl_sha256"]:
        return "stale"
    if entry is not None and (dict(entry.parameters) != record.get("overrides", {}) or entry.file != record["rtl_path"]):
        return "stale"
    return "ok"


def _manifest_by_name() -> dict[str, ManifestEntry]:
    try:
        return {e.name: e for e in manifest()}
    except DatabaseError:
        return {}


def _is_shadow(folder: Path) -> bool:
    """Whether ``folder`` is a user entry that hides a bundled design of the same name."""
    layers = db_layers()
    return len(layers) > 1 and folder.parent == layers[0]


def _bundled_entry(name: str, folder: Path | None) -> ManifestEntry | None:
    """The manifest entry ``name`` is checked against (none for a user entry shadowing a bundled one)."""
    if folder is not None and _is_shadow(folder):
        return None
    return _manifest_by_name().get(name)


def status(name: str) -> str:
    """State of one database entry or bundled design.

    Returns:
        ``"ok"``, ``"missing"`` (bundled but not characterized), ``"stale"`` (source or
        parameters changed), ``"corrupt"`` (a file fails its digest, the record or
        table its checks, or the entry predates digests) or ``"no-source"`` (usable,
        but its source file is gone so staleness is unknown).
    """
    folder = _locate(_check_name(name))
    entry = _bundled_entry(name, folder)
    if folder is None:
        if entry is None:
            raise DatabaseError(_unknown_message(name))
        return "missing"
    try:
        record, raw, files = _read(folder)
        _multiplier(folder, record, raw, files)
        return _source_state(record, entry)
    except (DatabaseError, OSError, TypeError, KeyError):
        return "corrupt"


def _unknown_message(name: str) -> str:
    available = names()
    shown = ", ".join(available) if available else "none (run `axhw rebuild`)"
    where = " or ".join(str(p) for p in db_layers())
    return f"no multiplier named {name!r} in {where}; available: {shown}"


def load(name: str) -> Multiplier:
    """Load one characterized multiplier (the user database's entry first, then the bundled one).

    Raises:
        ConfigError: ``name`` is not a valid name (a path, say).
        DatabaseError: unknown name (the message lists the available ones), a corrupt
            entry (any file differs from its digest, or fails its checks), or a stale
            entry (its source changed since characterization).
    """
    folder = entry_dir(name)
    record, raw, files = _read(folder)
    mult = _multiplier(folder, record, raw, files)
    state = _source_state(record, _bundled_entry(name, folder))
    if state == "stale":
        raise DatabaseError(f"{name}: stale entry: {record['rtl_path']} or its parameters changed since it was "
                            f"characterized; re-characterize with `axhw rebuild {name}`")
    if state == "no-source":
        warnings.warn(f"{name}: source {record['rtl_path']} not found; using the stored table", stacklevel=2)
    return mult


def load_all() -> list[Multiplier]:
    """Every entry of the database, by name; raises on the first corrupt or stale one."""
    return [load(n) for n in names()]


# --------------------------------------------------------------------------- writing


def _layer_writable(layer: Path) -> bool:
    """The bundled layer is written only in a source checkout (maintainers regenerating it)."""
    return layer.resolve() != bundled_db_dir().resolve() or repo_root() is not None or bool(os.environ.get("AXHW_DB"))


def _write_root(source: Path | None) -> Path:
    """Where a new entry from ``source`` goes: ``$AXHW_DB``; in a source checkout, the repository's
    ``multipliers_db/`` for designs under ``rtl/``; else the user database."""
    if os.environ.get("AXHW_DB") or source is None or repo_root() is None:
        return user_db_dir()
    try:
        source.resolve().relative_to(rtl_dir().resolve())
    except ValueError:
        return user_db_dir()
    return bundled_db_dir()


def _entry_files(name: str, family: str, description: str, path: Path, raw: np.ndarray, ports: PortSpec,
                 overrides: Mapping[str, int], extra: Mapping[str, Any]) -> dict[str, bytes]:
    """The bytes of a new entry's ``record.json`` and ``lut.npy`` (hashes taken from these very bytes)."""
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(raw, dtype=np.int32), allow_pickle=False)
    lut = buf.getvalue()
    rtl_sha256 = sha256_file(path)
    metrics = error_metrics(_signed_table(raw.astype(np.int32), ports.signed),
                            unsigned_table=None if ports.signed else raw.astype(np.int32))
    record = {
        "schema": RECORD_SCHEMA,
        "name": name,
        "family": family,
        "description": description,
        "rtl_path": _relative_source(path),
        "rtl_sha256": rtl_sha256,
        "entry_sha256": sha256_bytes((rtl_sha256 + json.dumps(ports.parameters, sort_keys=True)).encode()),
        "parameters": dict(ports.parameters),
        "overrides": dict(sorted(overrides.items())),
        "signed": ports.signed,
        "ports": ports.to_json(),
        "lut": {"file": "lut.npy", "sha256": sha256_bytes(lut), "shape": [256, 256], "dtype": "int32",
                "index": "[a + 128, b + 128]" if ports.signed else "[|a|, |b|] (unsigned; sign-magnitude at load)"},
        "metrics": metrics.to_json(),
        **extra,
    }
    return {"record.json": _record_bytes(record), "lut.npy": lut}


def _record_bytes(record: Mapping[str, Any]) -> bytes:
    return (json.dumps(record, indent=2, sort_keys=True) + "\n").encode()


def _exists_message(name: str, folder: Path) -> str:
    try:
        previous = f" (from {_parse_record(folder, read_files(folder)['record.json'])['rtl_path']})"
    except DatabaseError:
        previous = " (a corrupt entry; `axhw rebuild` may repair it)"
    layer = "the bundled database" if folder.parent.resolve() == bundled_db_dir().resolve() else str(folder.parent)
    return f"{name!r} already exists in {layer}{previous}; choose another --name or pass --force to replace it"


def _kept_hw(folder: Path, files: Mapping[str, bytes]) -> dict[str, bytes]:
    """The old entry's ``hw.json`` when it was computed for exactly the new entry's design."""
    try:
        old = read_files(folder).get("hw.json")
        key = _hw_key(_parse_record(folder, files["record.json"]))
    except DatabaseError:
        return {}
    costs, _ = read_hw_costs(old, key, str(folder / "hw.json"))
    return {"hw.json": old} if costs else {}


def _store(name: str, root: Path, files: dict[str, bytes], force: bool) -> Path | None:
    """Swap the new entry in under the write lock; returns the folder of a bundled entry it shadows."""
    with write_lock(root) as root:
        existing = _locate(name)
        if existing is not None and not force:  # another writer added it while we characterized
            raise DatabaseError(_exists_message(name, existing))
        if existing is not None and existing.parent.resolve() == root:
            files = {**files, **_kept_hw(existing, files)}
        commit(root, name, files)
    if existing is not None and existing.parent.resolve() != root:
        return existing
    return None


# --------------------------------------------------------------------------- characterization


def _tool_versions() -> dict[str, str]:
    import importlib.metadata

    from axhw.tools import tool_version

    return {"cocotb": importlib.metadata.version("cocotb"), "iverilog": tool_version("iverilog") or "missing"}


def _characterize(path: Path, family: str, ports_args: Mapping[str, Any], function: str | None,
                  twin: Path | None = None, time_limit_s: float | None = None) -> tuple[np.ndarray, PortSpec, dict[str, Any]]:
    """Sweep one source file; returns (raw table, ports, source-specific record fields).

    The fields include ``signedness`` (the reading taken and why); with a Verilog
    ``twin`` of a C model they also include ``rtl``, the file the entry is made from.
    """
    from axhw.lutfile import LUT_SUFFIXES

    if path.suffix in LUT_SUFFIXES:
        from axhw.lutfile import read_transaxx
        from axhw.simulate import SignednessDecision

        if ports_args.get("parameters") or ports_args.get("signed") is False or twin is not None:
            raise ConfigError(f"{path}: a TransAxx LUT is a signed table; --param, --unsigned and --twin do not apply")
        raw = read_transaxx(path)
        ports = PortSpec(module=path.stem, a="a", b="b", y="lut", a_width=8, b_width=8,
                         y_width=16 if np.abs(raw).max() < 2**15 else 32, signed=True, parameters={})
        decision = SignednessDecision(True, "read as two's complement: a TransAxx LUT is indexed by the operands' "
                                            "two's-complement bit patterns")
        return raw, ports, {"source": "transaxx", "signedness": decision.to_json()}
    if path.suffix == ".c":
        from axhw.cmodel import characterize_c, compiler

        verilog_only = [k for k in ("top", "a", "b", "y") if ports_args.get(k)] + (["parameters"] if ports_args.get("parameters") else [])
        if verilog_only:
            raise ConfigError(f"{path}: {', '.join(verilog_only)} only apply to Verilog designs, not to C models")
        raw, ports, decision = characterize_c(path, function, signed=ports_args.get("signed"), time_limit_s=time_limit_s)
        extra = {"source": "c", "function": ports.module, "tools": {"cc": compiler()}, "signedness": decision.to_json()}
        if twin is None:
            return raw, ports, extra
        from axhw.simulate import characterize_verilog

        twin_raw, twin_ports, _ = characterize_verilog(twin, signed=ports.signed, time_limit_s=time_limit_s)
        differ = np.argwhere(twin_raw != raw)
        if differ.size:
            low = -128 if ports.signed else 0
            i, j = (int(v) for v in differ[0])
            raise CharacterizationError(f"{twin}: not a twin of {path.name}:{ports.module}: for a={low + i}, b={low + j} "
                                        f"the Verilog gives {int(twin_raw[i, j])}, the C model {int(raw[i, j])} "
                                        f"({len(differ)} of 65,536 pairs differ)")
        extra = {**extra, "source": "verilog", "tools": _tool_versions(), "rtl": twin,
                 "c_model": {"path": str(path), "function": ports.module, "agrees": "all 65,536 pairs"}}
        return raw, twin_ports, extra
    if twin is not None:
        raise ConfigError(f"{path}: --twin pairs a C model with its Verilog; {path.name} is not a .c file")
    if path.suffix not in (".v", ".sv"):
        raise ConfigError(f"{path}: expected a Verilog file (.v, .sv) or a C model (.c)")
    from axhw.simulate import characterize_verilog

    raw, ports, decision = characterize_verilog(path, **ports_args, check_exact=(family == "exact"),
                                                time_limit_s=time_limit_s)
    return raw, ports, {"source": "verilog", "tools": _tool_versions(), "signedness": decision.to_json()}


def _default_name(path: Path, parameters: Mapping[str, int], function: str | None) -> str:
    base = function if function else path.stem
    suffix = "".join(f"_{k.lower()}{v}" for k, v in sorted(parameters.items()))
    return re.sub(r"[^A-Za-z0-9_.-]", "_", base + suffix)

def add(
    path: str | os.PathLike,
    *,
    name: str | None = None,
    parameters: Mapping[str, int] | None = None,
    family: str | None = None,
    description: str | None = None,
    top: str | None = None,
    a: str | None = None,
    b: str | None = None,
    y: str | None = None,
    signed: bool | None = None,
    function: str | None = None,
    force: bool = False,
    twin: str | os.PathLike | None = None,
    time_limit_s: float | None = None,
) -> Multiplier:
    """Characterize a Verilog design or a C model exhaustively and store it in the database.

    The entry goes to ``$AXHW_DB`` when set; otherwise to the user database, except that
    in a source checkout a design under ``rtl/`` goes to the repository's
    ``multipliers_db/``.  The new entry is built aside and swapped in under the
    database's write lock, so a failed or killed ``add`` leaves the old entry as it was.

    Args:
        path: ``.v``/``.sv`` file (discovered with :func:`axhw.discover.discover`, simulated
            with cocotb + Icarus) or ``.c`` file (compiled, see :mod:`axhw.cmodel`).
        name: database name; ``None`` uses the file stem (or ``function``) plus the parameters.
        parameters: Verilog parameter overrides (name -> int).
        family, description: free text stored in the record (defaults: ``"user"`` and the source).
        top, a, b, y, signed: discovery overrides (see :func:`axhw.discover.discover`).
        function: the C function to sweep (C models only; ``None`` picks the one named
            like the file, else the only two-operand function).
        force: replace an existing entry of the same name, or shadow a bundled one (with a
            warning saying so); its ``hw.json`` is kept only when computed for the same design.
        twin: a Verilog design computing the same table as the C model ``path``; the
            entry is then made from the Verilog (so it has a hardware cost) once both
            tables agree on all 65,536 pairs.
        time_limit_s: limit (s) of each external run (compiler, simulator, C model);
            ``None`` is :data:`axhw.subproc.DEFAULT_TIME_LIMIT_S`.

    Returns:
        The stored :class:`Multiplier`.

    Raises:
        VerilogError, CharacterizationError, ToolMissingError: the design cannot be characterized.
        ConfigError: an invalid or reserved name.
        DatabaseError: ``name`` exists and ``force`` is false, or the database is not writable
            (both checked before any simulation).
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such file")
    parameters = dict(parameters or {})
    name = _check_name(name or _default_name(path, parameters, function))
    if name.lower() in RESERVED_NAMES:
        raise ConfigError(f"{name!r} is reserved (in a layer config it means 'leave the layer in float'); "
                          "choose another --name")
    existing = _locate(name)
    if existing is not None and not force:
        raise DatabaseError(_exists_message(name, existing))
    root = _write_root(path)
    if existing is not None and existing.parent.resolve() == user_db_dir().resolve():
        root = existing.parent  # replace a user entry where it is, so it is not left hiding the new one
    bundled = _manifest_by_name().get(name)
    if bundled is not None and ((rtl_dir() / bundled.file).resolve() != path.resolve()
                                or dict(bundled.parameters) != parameters):
        # Another design under a bundled design's name: in the bundled layer it would be stale at once.
        if len(db_layers()) == 1:
            listed = ", ".join(f"{k}={v}" for k, v in bundled.parameters.items())
            raise ConfigError(f"{name!r} is the bundled design {bundled.file}{' ' + listed if listed else ''} "
                              f"(rtl/library.json); choose another --name")
        root = user_db_dir()
    writable_root(root)  # a read-only database or an AXHW_DB that is a file fails now, not after the sweep
    ports_args = {"top": top, "a": a, "b": b, "y": y, "signed": signed, "parameters": parameters}
    family = family or "user"
    raw, ports, extra = _characterize(path, family, ports_args, function, Path(twin) if twin else None,
                                     time_limit_s)
    source = Path(extra.pop("rtl", path))
    # What was asked, not what was found: a repair re-runs discovery from this, not from found fields.
    extra = {**extra, "request": {**ports_args, "function": function, "twin": str(twin) if twin else None}}
    description = description or f"{ports.module} from {path.name}" + "".join(f", {k}={v}" for k, v in ports.parameters.items())
    shadowed = _store(name, root, _entry_files(name, family, description, source, raw, ports, parameters, extra), force)
    if shadowed is not None:
        warnings.warn(f"{name} in {root} now shadows the entry in {shadowed.parent}", stacklevel=2)
    return load(name)


def read_hw_file(name: str) -> tuple[bytes | None, dict[str, Any]]:
    """The verified bytes of entry ``name``'s ``hw.json`` (``None`` if it has none) and its hardware key.

    For :mod:`axhw.hw.cache`, which parses them with :func:`axhw.records.read_hw_costs`.
    """
    folder = entry_dir(name)
    record, _, files = _read(folder)
    return files.get("hw.json"), _hw_key(record)


def _hw_root(folder: Path) -> Path:
    return folder.parent if _layer_writable(folder.parent) else _write_root(None)


def check_writable(name: str) -> Path:
    """The database folder a new ``hw.json`` of entry ``name`` would go to, checked writable.

    Raises:
        DatabaseError: unknown entry, or the folder is read-only or not a folder (before any synthesis).
    """
    return writable_root(_hw_root(entry_dir(name)))


def update_hw_file(name: str, update: Callable[[bytes | None, dict[str, Any]], bytes]) -> Path:
    """Replace entry ``name``'s ``hw.json`` with ``update(old bytes or None, hardware key)``, atomically.

    The read, the update and the swap happen under the database's write lock, so
    parallel writers never lose a cost.  An entry of a read-only bundled database is
    copied to the user database with the new file (the copy shadows it; same table).

    Returns:
        The entry's folder.
    """
    with write_lock(_hw_root(entry_dir(name))) as root:
        folder = entry_dir(name)
        record, _, files = _read(folder)
        key = _hw_key(record)
        data = update(files.get("hw.json"), key)
        costs, note = read_hw_costs(data, key, f"new hw.json of {name}")
        if note:
            raise DatabaseError(f"{name}: refusing to store hardware costs: {note}")
        return commit(root, name, {**files, "hw.json": data})


def _salvage(folder: Path) -> bool:
    """Re-write an entry from its own files when the record and the table can still be trusted.

    Trusted means: listed in a readable digest with matching hashes, or, for an entry
    from an older axhw (schema-1 record, no digest), a table that matches the record's
    hash and error metrics recomputed from it.  A ``hw.json`` that fails its digest is
    dropped; one from an older axhw is kept for :func:`axhw.hw.cache.migrate`.  Returns
    whether the entry now loads.
    """
    files, listed = read_loose(folder)
    if "record.json" not in files or "lut.npy" not in files:
        return False
    if listed is not None:
        if any(listed.get(f) != sha256_bytes(files[f]) for f in REQUIRED_FILES):
            return False
        keep = {f: files[f] for f in files if listed.get(f) == sha256_bytes(files[f])}
    else:
        try:
            record = _parse_record(folder, files["record.json"], schema=1)
            raw = _parse_table(folder, files["lut.npy"], record)
            signed = record["signed"]
            if not isinstance(signed, bool) or signed != record["ports"].get("signed"):
                return False
            recomputed = error_metrics(_signed_table(raw, signed)).to_json()
            if json.dumps(recomputed, sort_keys=True) != json.dumps(record["metrics"], sort_keys=True):
                return False
        except (DatabaseError, TypeError, KeyError, AttributeError):
            return False
        record["schema"] = RECORD_SCHEMA
        keep = {**files, "record.json": _record_bytes(record)}
    with write_lock(folder.parent) as root:
        commit(root, folder.name, keep)
    try:
        _multiplier(folder, *_read(folder))
    except DatabaseError:
        return False
    return True


def _untrusted_record(folder: Path) -> dict[str, Any]:
    """The record of a corrupt entry, only to find its source again (whatever schema)."""
    try:
        record = json.loads((folder / "record.json").read_bytes())
        source, ports = record["rtl_path"], PortSpec.from_json(record["ports"])
        assert isinstance(source, str)
        return {**record, "ports": ports}
    except (OSError, ValueError, TypeError, KeyError, AttributeError, AssertionError, DatabaseError):
        raise DatabaseError(f"{folder / 'record.json'} is unreadable, so its source is unknown; "
                            f"re-add it with `axhw add SOURCE --name {folder.name} --force`") from None


def _rebuild_one(name: str, entry: ManifestEntry | None, force: bool) -> str:
    """Repair or re-characterize one entry; returns what was done."""
    folder = _locate(name)
    if folder is not None and status(name) == "corrupt" and _layer_writable(folder.parent) and _salvage(folder):
        if not force and status(name) in ("ok", "no-source"):
            return "repaired"
        # salvaged, but its source changed (or a rebuild was asked for): characterize again below
    if entry is not None:
        add(rtl_dir() / entry.file, name=entry.name, parameters=entry.parameters, family=entry.family,
            description=entry.description, top=entry.top, signed=entry.signed, force=True)
        return "characterized"
    record = _untrusted_record(folder)
    ports = record["ports"]
    source = rtl_dir() / record["rtl_path"]
    if not source.is_file():
        raise DatabaseError(f"cannot re-characterize: its source {source} is gone")
    request = record.get("request")
    if isinstance(request, dict) and set(request) - {"twin"} == {"top", "a", "b", "y", "signed", "parameters", "function"}:
        add(source, name=name, family=record["family"], description=record["description"], force=True, **request)
    elif record.get("source") == "c":
        add(source, name=name, family=record["family"], description=record["description"], signed=ports.signed,
            function=record["function"], force=True)
    else:
        add(source, name=name, parameters=record.get("overrides", {}), family=record["family"], description=record["description"],
            top=ports.module, a=ports.a, b=ports.b, y=ports.y, signed=ports.signed, force=True)
    return "characterized"


def rebuild(names: Sequence[str] | None = None, force: bool = False, progress: bool = True) -> list[str]:
    """Repair or characterize every bundled or named entry that is missing, stale or corrupt.

    A corrupt entry whose record and table still match its digest (only ``hw.json``
    was damaged), or an entry from an older axhw whose table matches its record, is
    re-written from its own files; anything else is characterized again from its
    source.  Every entry is tried; those that cannot be repaired are reported together.

    Args:
        names: entries to consider (bundled names from ``rtl/library.json`` or database
            names); ``None`` means every bundled design plus every database entry.
        force: re-characterize even entries that are up to date.
        progress: show a tqdm bar while characterizing.

    Returns:
        The names that were repaired or (re-)characterized, in order; empty when all were up to date.

    Raises:
        DatabaseError: one line per entry that could not be repaired (the others are done).
    """
    from tqdm.auto import tqdm

    bundled = {e.name: e for e in manifest()}
    wanted = list(names) if names is not None else list(dict.fromkeys([*bundled, *_database_names()]))
    todo, failed = [], []
    for name in wanted:
        try:
            state = status(name)
        except AxhwError as exc:
            failed.append(f"{name}: {exc}")
            continue
        if force or state in ("missing", "stale", "corrupt"):
            todo.append(name)
    done = []
    for name in tqdm(todo, desc="characterizing", unit="design", disable=not progress or not todo):
        try:
            _rebuild_one(name, _bundled_entry(name, _locate(name)), force)
            done.append(name)
        except AxhwError as exc:
            failed.append(f"{name}: cannot repair: {exc}")
    if failed:
        lines = "\n".join(f"  {line}" for line in failed)
        raise DatabaseError(f"rebuilt {len(done)} ({', '.join(done) or 'none'}); "
                            f"{len(failed)} could not be repaired:\n{lines}")
    return done


# --------------------------------------------------------------------------- presentation and export


def export(name: str, format: str = "c-header", out: str | os.PathLike | None = None) -> Path:
    """Write a multiplier's signed table for use elsewhere.

    Args:
        name: database name.
        format: ``"c-header"`` (``static const int32_t axhw_<name>_lut[256][256]`` plus an
            inline ``int32_t axhw_<name>(int8_t a, int8_t b)``), ``"npy"`` (int32 array) or
            ``"transaxx"`` (TransAxx header indexed by bit patterns, see :mod:`axhw.lutfile`).
        out: output file, or an existing folder to write ``<name>.h`` / ``<name>.npy`` in;
            ``None`` writes them in the current folder.

    Returns:
        The path written.
    """
    if format not in EXPORT_FORMATS:
        raise ConfigError(f"unknown export format {format!r}; choose one of {', '.join(EXPORT_FORMATS)}")
    default = f"{name}.npy" if format == "npy" else f"{name}.h"
    target = Path(out) if out is not None else Path(default)
    if target.is_dir():
        target = target / default
    if not target.parent.is_dir():
        raise ConfigError(f"cannot write {target}: the folder {target.parent} does not exist")
    mult = load(name)
    ident = re.sub(r"\W", "_", mult.name)
    if format == "npy":
        return atomic_save_npy(target, mult.lut)
    if format == "transaxx":
        from axhw.lutfile import write_transaxx

        return write_transaxx(mult.lut, target,
                              comment=f"{mult.name}: {mult.description} (axhw, from {Path(mult.rtl_path).name})")
    guard = f"AXHW_{ident.upper()}_H"
    rows = ",\n".join("  {" + ", ".join(str(int(v)) for v in row) + "}" for row in mult.lut)
    text = (
        f"/* {mult.name}: {mult.description}\n"
        f" * Generated by axhw from {mult.rtl_path} (sha256 {mult.rtl_sha256[:16]}).\n"
        f" * axhw_{ident}_lut[a + 128][b + 128] is the product for int8 a, b;\n"
        f" * MAE {mult.metrics.mae:.4g}, WCE {mult.metrics.wce:.0f}, error rate {mult.metrics.error_rate:.4f}. */\n"
        f"#ifndef {guard}\n#define {guard}\n#include <stdint.h>\n\n"
        f"static const int32_t axhw_{ident}_lut[256][256] = {{\n{rows}\n}};\n\n"
        f"static inline int32_t axhw_{ident}(int8_t a, int8_t b) {{\n"
        f"  return axhw_{ident}_lut[(int)a + 128][(int)b + 128];\n}}\n\n#endif /* {guard} */\n"
    )
    return atomic_write_text(target, text)


def list_table(selected: Iterable[str] | None = None) -> str:
    """A text table of database entries: name, family, MAE, WCE, ER, bias (+ hardware cost columns).

    Hardware columns (``area_um2``, ``delay_ns``, ``energy_pj`` and the energy saving
    in percent against the cheapest zero-error design, named in the header and the
    last line (:func:`axhw.hw.baseline.best_exact`), with the saving against the
    behavioural ``exact`` beside it) appear once any entry has an ``hw.json``.
    Entries that fail to load show their state (stale, corrupt) instead of numbers,
    and the listing goes on.
    """
    loaded: list[Multiplier | tuple[str, str]] = []
    for name in (list(selected) if selected is not None else names()):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # a missing source is shown by `show`, not once per row
                loaded.append(load(name))
        except AxhwError:
            try:
                loaded.append((name, status(name)))
            except AxhwError:
                loaded.append((name, "unknown"))
    with_hw = any(isinstance(m, Multiplier) and m.hw is not None for m in loaded)
    ref = next((m.hw for m in loaded if isinstance(m, Multiplier) and m.name == "exact"), None)
    base = None
    if with_hw:
        from axhw.hw.baseline import best_exact

        try:
            base = best_exact(DEFAULT_LIBERTY, DEFAULT_STREAM)
        except DatabaseError:
            base = None
    header = ["name", "family", "signed", "MAE", "WCE", "ER", "bias", "MRE%"]
    if with_hw:
        header += ["area_um2", "delay_ns", "energy_pj", f"saving_vs_{base.name if base else 'none'}%", "vs_exact%"]
    rows = [tuple(header)]
    for m in loaded:
        if not isinstance(m, Multiplier):
            rows.append((m[0], f"({m[1]})") + ("",) * (len(header) - 2))
            continue
        e = m.metrics
        row = [m.name, m.family, "yes" if m.signed else "no (s-m)", f"{e.mae:.2f}", f"{e.wce:.0f}",
               f"{e.error_rate:.4f}", f"{e.bias:+.2f}", f"{100 * e.mre:.3f}"]
        if with_hw:
            hw = m.hw
            saving = f"{100 * (1 - hw.energy_pj / base.energy_pj):.1f}" if hw and base else "-"
            vs_exact = f"{100 * (1 - hw.energy_pj / ref.energy_pj):.1f}" if hw and ref and ref.energy_pj > 0 else "-"
            row += ([f"{hw.area_um2:.0f}", f"{hw.delay_ns:.3f}", f"{hw.energy_pj:.3f}", saving, vs_exact] if hw
                    else ["-"] * 5)
        rows.append(tuple(row))
    if len(rows) == 1:
        where = " and ".join(str(p) for p in db_layers())
        return f"the database ({where}) is empty; run `axhw rebuild` or `axhw add FILE.v`"
    table = text_table(rows, left=2)
    if with_hw:
        table += ("\nsavings: energy per multiplication against " + (base.label() if base else
                  "no characterized zero-error design") + "; vs_exact: against the behavioural `exact`")
    return table


def _heatmap(mult: Multiplier, png: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    err = error_table(mult.lut)
    limit = max(1, int(np.abs(err).max()))
    fig, ax = plt.subplots(figsize=(6, 5), dpi=100)
    image = ax.imshow(err, cmap="RdBu_r", vmin=-limit, vmax=limit, origin="lower", extent=(-128.5, 127.5, -128.5, 127.5))
    ax.set_xlabel("b")
    ax.set_ylabel("a")
    ax.set_title(f"{mult.name}: error (approx − a·b)")
    fig.colorbar(image, ax=ax, label="error (product units)")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return atomic_write_bytes(png, buf.getvalue())


def signedness_reason(name: str, short: bool = False) -> str:
    """How the stored entry's signedness was decided (declared, given, or from the tables), one line.

    Args:
        name: database name.
        short: a few words for a table instead of the full sentence.
    """
    record, _, _ = _read(entry_dir(name))
    decision = record.get("signedness")
    key = "short" if short else "reason"
    if isinstance(decision, dict) and decision.get(key):
        return str(decision[key])
    return "not recorded" if short else "not recorded (characterized by an older axhw; `axhw rebuild` records it)"


def _fmt(value: float | None, spec: str) -> str:
    return "n/a (rebuild)" if value is None else format(value, spec)


def _metric_lines(e: ErrorMetrics) -> list[str]:
    """The metrics of ``show``, with their domain and the base of every percentage."""
    from axhw.metrics import METRIC_DEFINITIONS

    zero = {None: "unknown (rebuild)", True: "yes", False: "no: a·0 or 0·b is not 0 for some operand"}[e.zero_preserving]
    lines = [
        "error vs a·b over all 65,536 pairs a, b in [-128, 127] (product units; MRE/WRE/ER/rel.bias as fractions;"
        f" % of 2^{int(np.log2(e.percent_base))} = {e.percent_base:.0f}, the 8x8 output range):",
        f"  MAE {e.mae:.4f}  MSE {e.mse:.4f}  WCE {e.wce:.0f}  bias {e.bias:+.4f}  std {e.std:.4f}",
        f"  MRE {e.mre:.6f}  WRE {e.wre:.6f}  ER {e.error_rate:.6f}  MAE% {e.mae_percent:.4f}  WCE% {e.wce_percent:.4f}",
        f"  rel.bias {_fmt(e.relative_bias, '+.6f')}  reachable a, b in [-127, 127]: MAE {_fmt(e.mae_reachable, '.4f')}"
        f"  WCE {_fmt(e.wce_reachable, '.0f')}  zero-preserving {zero}",
    ]
    u = e.unsigned
    if u is not None:
        lines += [
            "error of the unsigned design over its own domain a, b in [0, 255]:",
            f"  MAE {u.mae:.4f}  MSE {u.mse:.4f}  WCE {u.wce:.0f}  bias {u.bias:+.4f}  MRE {u.mre:.6f}  WRE {u.wre:.6f}"
            f"  ER {u.error_rate:.6f}  MAE% {u.mae_percent:.4f}  WCE% {u.wce_percent:.4f}  rel.bias {_fmt(u.relative_bias, '+.6f')}",
        ]
    lines.append("definitions:")
    lines += [f"  {key:<16} {text}" for key, text in METRIC_DEFINITIONS]
    return lines


def show(name: str, heatmap: str | os.PathLike | None = None) -> str:
    """The full record of one entry as text; also writes its error heat-map PNG when asked.

    Args:
        name: database name.
        heatmap: PNG path for the map of ``lut - a·b`` over (a, b); ``None`` skips it.
    """
    mult = load(name)
    e = mult.metrics
    if e.zero_preserving is None:  # an older record: the metrics it lacks come from its verified table
        e = error_metrics(mult.lut, unsigned_table=None if mult.signed else _read(entry_dir(name))[1])
    p = mult.ports
    lines = [
        f"name         {mult.name}",
        f"family       {mult.family}",
        f"description  {mult.description}",
        f"source       {mult.rtl_path} (sha256 {mult.rtl_sha256})",
        f"module       {p.module}({p.a}[{p.a_width}], {p.b}[{p.b_width}]) -> {p.y}[{p.y_width}]"
        f"{'  parameters ' + ', '.join(f'{k}={v}' for k, v in p.parameters.items()) if p.parameters else ''}",
        f"operands     {'signed (two' + chr(39) + 's complement)' if mult.signed else 'unsigned, used in sign-magnitude form'}",
        f"signedness   {signedness_reason(name)}",
        *_metric_lines(e),
    ]
    if mult.folder is not None:
        lines.insert(4, f"stored in    {mult.folder}")
    if not mult.costs and mult.rtl_path.endswith(".c") and read_hw_file(name)[0] is None:
        lines.append("hardware     none: imported from a C model; `axhw add FILE.c --twin FILE.v --force` makes it costable")
    elif not mult.costs:
        lines.append(f"hardware     {mult.hw_note}")
    for cost in mult.costs:
        lines.append(f"hardware     {cost.liberty}/{cost.operand_stream}: area {cost.area_um2:.1f} um2, delay "
                     f"{cost.delay_ns:.3f} ns, power {cost.power_mw:.4f} mW, energy {cost.energy_pj:.4f} pJ")
    if heatmap is not None:
        lines.append(f"heat-map     {_heatmap(mult, Path(heatmap))}")
    return "\n".join(lines)
