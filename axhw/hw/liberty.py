"""Standard-cell libraries: find a Liberty file by name or path, read its cell areas and supply.

A library is named either by one of :data:`LIBERTY_FILES` (``osu018``,
``osu035``, ``osu050``: Debian's ``qflow-tech-*`` packages) or by the path of any
Liberty (``.lib``) file.  Gate-level simulation needs Verilog models of the cells:
the library's own models are used when a ``.v`` file next to the ``.lib`` defines
every cell of the netlist (they carry ``specify`` path delays, so simulation sees
glitches); otherwise models are generated from the Liberty ``function`` attributes
with yosys (zero-delay).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from pathlib import Path

from axhw.errors import ConfigError, ToolMissingError
from axhw.io import atomic_write_text, sha256_file
from axhw.records import DEFAULT_LIBERTY
from axhw.hw._tools import run_tool

__all__ = ["Liberty", "resolve_liberty", "cell_models", "LIBERTY_FILES", "find_liberty"]

#: Standard-cell Liberty libraries axhw knows by name (Debian's qflow-tech-* packages).
LIBERTY_FILES: dict[str, str] = {
    "osu018": "/usr/share/qflow/tech/osu018/osu018_stdcells.lib",
    "osu035": "/usr/share/qflow/tech/osu035/osu035_stdcells.lib",
    "osu050": "/usr/share/qflow/tech/osu050/osu05_stdcells.lib",
}


def find_liberty(name: str) -> Path | None:
    """Path of a known Liberty library by name, or ``None`` when it is not installed."""
    path = Path(LIBERTY_FILES.get(name, ""))
    return path if name in LIBERTY_FILES and path.is_file() else None


_CELL_RE = re.compile(r"^\s*cell\s*\(\s*\"?([^\s\")]+)\"?\s*\)\s*\{", re.M)
_AREA_RE = re.compile(r"^\s*area\s*:\s*([-+0-9.eE]+)\s*;", re.M)
_VOLTAGE_RE = re.compile(r"^\s*nom_voltage\s*:\s*([-+0-9.eE]+)\s*;", re.M)
_LIBNAME_RE = re.compile(r"^\s*library\s*\(\s*\"?([^\s\")]+)\"?\s*\)", re.M)
_MODULE_RE = re.compile(r"^\s*module\s+(\w+)", re.M)


@dataclass(frozen=True)
class Liberty:
    """A Liberty cell library as axhw uses it.

    Attributes:
        name: short name (``osu018``) or the file stem for a library given by path.
        path: the ``.lib`` file.
        sha256: hash of its content (part of every hardware-cost cache key).
        supply_v: nominal supply voltage ``nom_voltage`` (V), used for power.
        cell_areas: cell name -> area (µm² for the OSU libraries: the Liberty area unit).
    """

    name: str
    path: Path
    sha256: str
    supply_v: float
    cell_areas: dict[str, float] = field(default_factory=dict, compare=False, repr=False)

    def area_of(self, cell_mix: dict[str, int]) -> float:
        """Total area (µm²) of ``cell_mix`` (cell name -> count) from the Liberty cell areas."""
        missing = sorted(set(cell_mix) - set(self.cell_areas))
        if missing:
            raise ConfigError(f"Liberty file {self.path} has no area for cell(s) {', '.join(missing)}")
        return float(sum(self.cell_areas[cell] * count for cell, count in cell_mix.items()))


def _parse(path: Path) -> tuple[str, float, dict[str, float]]:
    text = path.read_text(errors="replace")
    if not _LIBNAME_RE.search(text):
        raise ConfigError(f"{path} is not a Liberty file (no `library (...)` group); give a .lib cell library")
    cells = list(_CELL_RE.finditer(text))
    if not cells:
        raise ConfigError(f"Liberty file {path} defines no cells")
    areas: dict[str, float] = {}
    for match, nxt in zip(cells, cells[1:] + [None]):
        body = text[match.end(): nxt.start() if nxt else len(text)]
        area = _AREA_RE.search(body)
        if area:
            areas[match.group(1)] = float(area.group(1))
    voltage = _VOLTAGE_RE.search(text)
    if voltage is None:
        raise ConfigError(f"Liberty file {path} has no `nom_voltage`; the supply for power is unknown")
    return _LIBNAME_RE.search(text).group(1), float(voltage.group(1)), areas


@functools.lru_cache(maxsize=16)
def _load(path: Path, mtime_ns: int) -> Liberty:
    _, supply_v, areas = _parse(path)
    return Liberty(name=path.stem, path=path, sha256=sha256_file(path), supply_v=supply_v, cell_areas=areas)


def resolve_liberty(liberty: str | Path | Liberty = DEFAULT_LIBERTY) -> Liberty:
    """Find and read a Liberty library given by name (``osu018``/``osu035``/``osu050``) or path.

    Raises:
        ToolMissingError: a known library name whose Debian package is not installed.
        ConfigError: an unknown name, a path that does not exist or is not a Liberty file.
    """
    if isinstance(liberty, Liberty):
        return liberty
    text = str(liberty)
    if text in LIBERTY_FILES:
        path = find_liberty(text)
        if path is None:
            raise ToolMissingError(f"Liberty library {text} is not installed (looked for {LIBERTY_FILES[text]}); "
                                   f"install it with `apt-get install -y qflow-tech-{text}`")
        name = text
    else:
        path = Path(text).expanduser()
        if not path.is_file():
            known = ", ".join(LIBERTY_FILES)
            raise ConfigError(f"Liberty file {text!r} not found; give one of {known} or the path of a .lib file")
        name = None
    path = path.resolve()
    lib = _load(path, path.stat().st_mtime_ns)
    return lib if name is None else Liberty(name, lib.path, lib.sha256, lib.supply_v, lib.cell_areas)


def cell_models(liberty: Liberty, cells: set[str], build_dir: Path) -> tuple[Path, bool]:
    """Verilog simulation models for ``cells`` of ``liberty``.

    Returns ``(path, timed)``: the library's own ``.v`` models next to the ``.lib``
    when one file defines every cell (``timed=True``: they carry ``specify`` delays),
    else models generated by yosys from the Liberty cell functions into ``build_dir``
    (``timed=False``, zero-delay).
    """
    for candidate in sorted(liberty.path.parent.glob("*.v")):
        text = candidate.read_text(errors="replace")
        if cells <= set(_MODULE_RE.findall(text)):
            return candidate, "specify" in text
    generated = build_dir / f"cells-{liberty.sha256[:16]}.v"
    if not generated.is_file():
        tmp = build_dir / f".cells-{liberty.sha256[:16]}.ys"
        out = build_dir / f".cells-{liberty.sha256[:16]}.tmp.v"
        atomic_write_text(tmp, f"read_liberty -ignore_miss_func {liberty.path}\nwrite_verilog -noattr {out}\n")
        run_tool(["yosys", "-q", "-s", str(tmp)], build_dir / "cells.log",
                 f"yosys generating cell models from {liberty.path}", cwd=build_dir)
        out.replace(generated)
    defined = set(_MODULE_RE.findall(generated.read_text()))
    if not cells <= defined:
        raise ConfigError(f"Liberty file {liberty.path} has no function for cell(s) "
                          f"{', '.join(sorted(cells - defined))}, so the netlist cannot be simulated")
    return generated, False
