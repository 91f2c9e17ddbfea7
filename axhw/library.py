"""The multiplier database: characterized product tables, their records and error metrics.

Layout (``db_dir()``, i.e. ``multipliers_db/`` or ``$AXHW_DB``)::

    <name>/lut.npy       int32 (256, 256) table as the design computes it
    <name>/record.json   name, family, source file + sha256, parameters, ports, metrics,
                         and the sha256/shape/dtype of lut.npy
    <name>/hw.json       hardware cost (written by :mod:`axhw.hw`, optional)

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

Integrity: :func:`load` never returns an entry whose ``lut.npy`` does not hash,
shape and type-check against its record, whose record is not valid JSON, or whose
source file changed since characterization (stale); it raises
:class:`~axhw.errors.DatabaseError` saying how to rebuild it.  Every file is
written atomically (temp file + rename), ``lut.npy`` before ``record.json``.
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
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from .errors import ConfigError, DatabaseError
from .io import atomic_save_npy, atomic_write_bytes, atomic_write_json, atomic_write_text, sha256_bytes, sha256_file
from .metrics import error_metrics, error_table
from .paths import db_dir, rtl_dir
from .records import DEFAULT_LIBERTY, ErrorMetrics, HardwareCost, PortSpec
from .text import text_table

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
    "sign_magnitude",
    "RECORD_SCHEMA",
    "EXPORT_FORMATS",
]

#: Schema number of ``record.json``.
RECORD_SCHEMA = 1
#: Formats :func:`export` writes.
EXPORT_FORMATS = ("c-header", "npy")
#: Which hardware cost :attr:`Multiplier.hw` returns.
DEFAULT_STREAM = "uniform"
_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$")
_MANIFEST = "library.json"
_RECORD_KEYS = {"name", "family", "description", "rtl_path", "rtl_sha256", "signed", "ports", "lut", "metrics"}


@dataclass(frozen=True)
class Multiplier:
    """One characterized 8x8 multiplier.

    Attributes:
        name: database name (folder under ``multipliers_db/``).
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
            ``hw.json`` was computed for another version of the RTL; :func:`show` says which).
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


def _entry_dir(name: str) -> Path:
    return db_dir() / name


def _check_name(name: str) -> str:
    if not _NAME_RE.match(name or ""):
        raise ConfigError(f"invalid multiplier name {name!r}: use a letter then letters, digits, '_', '.', '-' (max 64)")
    return name


def _relative_source(path: Path) -> str:
    path = path.resolve()
    try:
        return path.relative_to(rtl_dir().resolve()).as_posix()
    except ValueError:
        return str(path)


def names() -> list[str]:
    """Names of every entry in the database (folders holding a ``record.json``), sorted."""
    root = db_dir()
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / "record.json").is_file())


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


def _read_record(name: str) -> dict[str, Any]:
    path = _entry_dir(name) / "record.json"
    try:
        record = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise DatabaseError(f"{path}:{exc.lineno}: corrupt record ({exc.msg}); re-create it with `axhw rebuild {name}`") from None
    except OSError as exc:
        raise DatabaseError(f"{path}: cannot read record: {exc.strerror}") from None
    if not isinstance(record, dict) or record.get("schema") != RECORD_SCHEMA:
        raise DatabaseError(f"{path}: not a schema-{RECORD_SCHEMA} multiplier record; re-create it with `axhw rebuild {name}`")
    missing = sorted(_RECORD_KEYS - set(record))
    if missing:
        raise DatabaseError(f"{path}: corrupt record (missing {', '.join(missing)}); re-create it with `axhw rebuild {name}`")
    return record


def _read_table(name: str, record: Mapping[str, Any]) -> np.ndarray:
    """The stored raw table, verified against the record's hash, shape and dtype."""
    path = _entry_dir(name) / "lut.npy"
    fix = f"re-create it with `axhw rebuild {name}`"
    try:
        data = path.read_bytes()
    except OSError:
        raise DatabaseError(f"{path}: missing product table; {fix}") from None
    meta = record.get("lut", {})
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


def _hw_file(name: str, rtl_sha256: str) -> tuple[tuple[HardwareCost, ...], str]:
    """Costs from ``hw.json`` and a note saying why there are none ('' when there are)."""
    path = _entry_dir(name) / "hw.json"
    if not path.is_file():
        return (), f"not characterized yet (`axhw characterize --hw {name}`)"
    try:
        data = json.loads(path.read_text())
        if data.get("rtl_sha256") != rtl_sha256:
            return (), f"{path} is for another version of the RTL; re-run `axhw characterize --hw {name}`"
        return tuple(HardwareCost.from_json(c) for c in data.get("costs", [])), ""
    except (json.JSONDecodeError, AttributeError, TypeError, DatabaseError) as exc:
        return (), f"{path} is unreadable ({exc}); re-run `axhw characterize --hw {name}`"


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


def status(name: str) -> str:
    """State of one database entry or bundled design.

    Returns:
        ``"ok"``, ``"missing"`` (bundled but not characterized), ``"stale"`` (source or
        parameters changed), ``"corrupt"`` (record or table fails its checks) or
        ``"no-source"`` (usable, but its source file is gone so staleness is unknown).
    """
    entry = _manifest_by_name().get(name)
    if not (_entry_dir(name) / "record.json").is_file():
        if entry is None:
            raise DatabaseError(_unknown_message(name))
        return "missing"
    try:
        record = _read_record(name)
        _read_table(name, record)
    except DatabaseError:
        return "corrupt"
    return _source_state(record, entry)


def _unknown_message(name: str) -> str:
    available = names()
    shown = ", ".join(available) if available else "none (run `axhw rebuild`)"
    return f"no multiplier named {name!r} in {db_dir()}; available: {shown}"


def load(name: str) -> Multiplier:
    """Load one characterized multiplier.

    Raises:
        DatabaseError: unknown name (the message lists the available ones), a corrupt
            record or table, or a stale entry (its source changed since characterization).
    """
    if not (_entry_dir(name) / "record.json").is_file():
        raise DatabaseError(_unknown_message(name))
    record = _read_record(name)
    raw = _read_table(name, record)
    state = _source_state(record, _manifest_by_name().get(name))
    if state == "stale":
        raise DatabaseError(f"{name}: stale entry: {record['rtl_path']} or its parameters changed since it was "
                            f"characterized; re-characterize with `axhw rebuild {name}`")
    if state == "no-source":
        warnings.warn(f"{name}: source {record['rtl_path']} not found; using the stored table", stacklevel=2)
    signed = bool(record["signed"])
    return Multiplier(
        name=record["name"],
        family=record["family"],
        description=record["description"],
        lut=_signed_table(raw, signed),
        metrics=ErrorMetrics.from_json(record["metrics"]),
        ports=PortSpec.from_json(record["ports"]),
        rtl_path=record["rtl_path"],
        rtl_sha256=record["rtl_sha256"],
        signed=signed,
        costs=_hw_file(name, record["rtl_sha256"])[0],
    )


def load_all() -> list[Multiplier]:
    """Every entry of the database, by name; raises on the first corrupt or stale one."""
    return [load(n) for n in names()]


# --------------------------------------------------------------------------- characterization


def _tool_versions() -> dict[str, str]:
    import importlib.metadata

    from .tools import tool_version

    return {"cocotb": importlib.metadata.version("cocotb"), "iverilog": tool_version("iverilog") or "missing"}


def _characterize(path: Path, family: str, ports_args: Mapping[str, Any],
                  function: str | None) -> tuple[np.ndarray, PortSpec, dict[str, Any]]:
    """Sweep one source file; returns (raw table, ports, source-specific record fields)."""
    if path.suffix == ".c":
        from .cmodel import compiler, sweep_c

        if function is None:
            raise ConfigError(f"{path}: a C model needs the function to sweep: --function NAME")
        verilog_only = [k for k in ("top", "a", "b", "y") if ports_args.get(k)] + (["parameters"] if ports_args.get("parameters") else [])
        if verilog_only:
            raise ConfigError(f"{path}: {', '.join(verilog_only)} only apply to Verilog designs, not to C models")
        raw, ports = sweep_c(path, function, signed=ports_args.get("signed"))
        return raw, ports, {"source": "c", "function": function, "tools": {"cc": compiler()}}
    if path.suffix not in (".v", ".sv"):
        raise ConfigError(f"{path}: expected a Verilog file (.v, .sv) or a C model (.c)")
    from .discover import discover
    from .simulate import sweep

    ports = discover(path, **ports_args)
    raw = sweep(path, ports, check_exact=(family == "exact"))
    return raw, ports, {"source": "verilog", "tools": _tool_versions()}


def _store(name: str, family: str, description: str, path: Path, raw: np.ndarray, ports: PortSpec,
           overrides: Mapping[str, int], extra: Mapping[str, Any]) -> None:
    folder = _entry_dir(name)
    rtl_sha256 = sha256_file(path)
    lut_path = atomic_save_npy(folder / "lut.npy", raw.astype(np.int32))
    metrics = error_metrics(_signed_table(raw, ports.signed))
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
        "lut": {"file": "lut.npy", "sha256": sha256_file(lut_path), "shape": [256, 256], "dtype": "int32",
                "index": "[a + 128, b + 128]" if ports.signed else "[|a|, |b|] (unsigned; sign-magnitude at load)"},
        "metrics": metrics.to_json(),
        **extra,
    }
    atomic_write_json(folder / "record.json", record)


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
) -> Multiplier:
    """Characterize a Verilog design or a C model exhaustively and store it in the database.

    Args:
        path: ``.v``/``.sv`` file (discovered with :func:`axhw.discover.discover`, simulated
            with cocotb + Icarus) or ``.c`` file (compiled, see :mod:`axhw.cmodel`).
        name: database name; ``None`` uses the file stem (or ``function``) plus the parameters.
        parameters: Verilog parameter overrides (name -> int).
        family, description: free text stored in the record (defaults: ``"user"`` and the source).
        top, a, b, y, signed: discovery overrides (see :func:`axhw.discover.discover`).
        function: the C function to sweep (C models only).
        force: replace an existing entry characterized from a different source file.

    Returns:
        The stored :class:`Multiplier`.

    Raises:
        VerilogError, CharacterizationError, ToolMissingError: the design cannot be characterized.
        DatabaseError: ``name`` exists for another source and ``force`` is false.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such file")
    parameters = dict(parameters or {})
    name = _check_name(name or _default_name(path, parameters, function))
    if (_entry_dir(name) / "record.json").is_file() and not force:
        try:
            previous = _read_record(name)["rtl_path"]
        except DatabaseError:
            previous = None
        if previous is not None and previous != _relative_source(path):
            raise DatabaseError(f"{name!r} already exists (from {previous}); choose another --name or pass --force")
    ports_args = {"top": top, "a": a, "b": b, "y": y, "signed": signed, "parameters": parameters}
    family = family or "user"
    raw, ports, extra = _characterize(path, family, ports_args, function)
    description = description or f"{ports.module} from {path.name}" + "".join(f", {k}={v}" for k, v in ports.parameters.items())
    _store(name, family, description, path, raw, ports, parameters, extra)
    return load(name)


def _rebuild_one(name: str, entry: ManifestEntry | None) -> None:
    if entry is not None:
        add(rtl_dir() / entry.file, name=entry.name, parameters=entry.parameters, family=entry.family,
            description=entry.description, top=entry.top, signed=entry.signed, force=True)
        return
    record = _read_record(name)
    ports = PortSpec.from_json(record["ports"])
    source = rtl_dir() / record["rtl_path"]
    if not source.is_file():
        raise DatabaseError(f"{name}: cannot re-characterize, its source {source} is gone")
    if record.get("source") == "c":
        add(source, name=name, family=record["family"], description=record["description"], signed=ports.signed,
            function=record["function"], force=True)
    else:
        add(source, name=name, parameters=record.get("overrides", {}), family=record["family"], description=record["description"],
            top=ports.module, a=ports.a, b=ports.b, y=ports.y, signed=ports.signed, force=True)


def rebuild(names: Sequence[str] | None = None, force: bool = False, progress: bool = True) -> list[str]:
    """Characterize every bundled or named entry that is missing, stale or corrupt.

    Args:
        names: entries to consider (bundled names from ``rtl/library.json`` or database
            names); ``None`` means every bundled design plus every database entry.
        force: re-characterize even entries that are up to date.
        progress: show a tqdm bar while characterizing.

    Returns:
        The names that were (re-)characterized, in order; empty when all were up to date.
    """
    from tqdm.auto import tqdm

    bundled = {e.name: e for e in manifest()}
    wanted = list(names) if names is not None else list(dict.fromkeys([*bundled, *_database_names()]))
    todo = []
    for name in wanted:
        state = status(name)
        if force or state in ("missing", "stale", "corrupt"):
            todo.append(name)
    for name in tqdm(todo, desc="characterizing", unit="design", disable=not progress or not todo):
        _rebuild_one(name, bundled.get(name))
    return todo


# --------------------------------------------------------------------------- presentation and export


def export(name: str, format: str = "c-header", out: str | os.PathLike | None = None) -> Path:
    """Write a multiplier's signed table for use elsewhere.

    Args:
        name: database name.
        format: ``"c-header"`` (``static const int32_t axhw_<name>_lut[256][256]`` plus an
            inline ``int32_t axhw_<name>(int8_t a, int8_t b)``) or ``"npy"`` (int32 array).
        out: output file; ``None`` writes ``<name>.h`` / ``<name>.npy`` in the current folder.

    Returns:
        The path written.
    """
    if format not in EXPORT_FORMATS:
        raise ConfigError(f"unknown export format {format!r}; choose one of {', '.join(EXPORT_FORMATS)}")
    mult = load(name)
    ident = re.sub(r"\W", "_", mult.name)
    if format == "npy":
        return atomic_save_npy(Path(out or f"{mult.name}.npy"), mult.lut)
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
    return atomic_write_text(Path(out or f"{mult.name}.h"), text)


def list_table(selected: Iterable[str] | None = None) -> str:
    """A text table of database entries: name, family, MAE, WCE, ER, bias (+ hardware cost columns).

    Hardware columns (``area_um2``, ``delay_ns``, ``power_mw`` and the power saving
    against ``exact``, in percent) appear once any entry has an ``hw.json``.  Entries
    that fail to load show their state (stale, corrupt) instead of numbers.
    """
    loaded: list[Multiplier | tuple[str, str]] = []
    for name in (list(selected) if selected is not None else names()):
        try:
            loaded.append(load(name))
        except DatabaseError:
            loaded.append((name, status(name)))
    with_hw = any(isinstance(m, Multiplier) and m.hw is not None for m in loaded)
    ref = next((m.hw for m in loaded if isinstance(m, Multiplier) and m.name == "exact"), None)
    header = ["name", "family", "signed", "MAE", "WCE", "ER", "bias", "MRE%"]
    if with_hw:
        header += ["area_um2", "delay_ns", "power_mw", "power_saving%"]
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
            saving = f"{100 * (1 - hw.power_mw / ref.power_mw):.1f}" if hw and ref and ref.power_mw > 0 else "-"
            row += [f"{hw.area_um2:.0f}", f"{hw.delay_ns:.3f}", f"{hw.power_mw:.4f}", saving] if hw else ["-"] * 3 + [saving]
        rows.append(tuple(row))
    if len(rows) == 1:
        return f"the database {db_dir()} is empty; run `axhw rebuild` or `axhw add FILE.v`"
    return text_table(rows, left=2)


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


def show(name: str, heatmap: str | os.PathLike | None = None) -> str:
    """The full record of one entry as text; also writes its error heat-map PNG when asked.

    Args:
        name: database name.
        heatmap: PNG path for the map of ``lut - a·b`` over (a, b); ``None`` skips it.
    """
    mult = load(name)
    e = mult.metrics
    p = mult.ports
    lines = [
        f"name         {mult.name}",
        f"family       {mult.family}",
        f"description  {mult.description}",
        f"source       {mult.rtl_path} (sha256 {mult.rtl_sha256})",
        f"module       {p.module}({p.a}[{p.a_width}], {p.b}[{p.b_width}]) -> {p.y}[{p.y_width}]"
        f"{'  parameters ' + ', '.join(f'{k}={v}' for k, v in p.parameters.items()) if p.parameters else ''}",
        f"operands     {'signed (two' + chr(39) + 's complement)' if mult.signed else 'unsigned, used in sign-magnitude form'}",
        "error vs a*b (product units; MRE/WRE/ER as fractions):",
        f"  MAE {e.mae:.4f}  MSE {e.mse:.4f}  WCE {e.wce:.0f}  bias {e.bias:+.4f}  std {e.std:.4f}",
        f"  MRE {e.mre:.6f}  WRE {e.wre:.6f}  ER {e.error_rate:.6f}  MAE% {e.mae_percent:.4f}  WCE% {e.wce_percent:.4f}",
    ]
    if not mult.costs:
        lines.append(f"hardware     {_hw_file(name, mult.rtl_sha256)[1]}")
    for cost in mult.costs:
        lines.append(f"hardware     {cost.liberty}/{cost.operand_stream}: area {cost.area_um2:.1f} um2, delay "
                     f"{cost.delay_ns:.3f} ns, power {cost.power_mw:.4f} mW, energy {cost.energy_pj:.4f} pJ")
    if heatmap is not None:
        lines.append(f"heat-map     {_heatmap(mult, Path(heatmap))}")
    return "\n".join(lines)
