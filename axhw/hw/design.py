"""What the hardware flow needs to know about a multiplier: its Verilog and its ports.

:class:`Design` is built from a database :class:`~axhw.library.Multiplier` (its
``rtl_path`` is relative to :func:`axhw.paths.rtl_dir`; costs are cached in
``multipliers_db/<name>/hw.json``) or from any Verilog file plus a
:class:`~axhw.records.PortSpec` (costs cached under :func:`axhw.paths.cache_dir`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..io import sha256_bytes, sha256_file
from ..paths import cache_dir, db_dir, rtl_dir
from ..records import PortSpec

__all__ = ["Design", "as_design"]


@dataclass(frozen=True)
class Design:
    """A combinational multiplier ready for synthesis.

    Attributes:
        name: name used in messages, logs and the cache folder.
        rtl: the Verilog source file.
        rtl_sha256: content hash recorded in ``hw.json`` (the database's hash for
            library entries; a stale hash makes every cached cost stale).
        ports: module, port names, widths, signedness and parameter overrides.
        hw_json: where costs of this design are cached.
        include_dirs: ``include`` search path for yosys and Icarus.
    """

    name: str
    rtl: Path
    rtl_sha256: str
    ports: PortSpec
    hw_json: Path
    include_dirs: tuple[Path, ...] = ()

    @property
    def design_sha256(self) -> str:
        """Hash of everything synthesis reads: the source bytes, top module, ports and parameters."""
        spec = json.dumps({"rtl": sha256_file(self.rtl), "ports": self.ports.to_json()}, sort_keys=True)
        return sha256_bytes(spec.encode())

    @classmethod
    def from_verilog(cls, path: str | Path, ports: PortSpec, name: str | None = None) -> "Design":
        """A design from a Verilog file outside the database (costs cached under ``cache_dir()/hw``)."""
        path = Path(path).expanduser().resolve()
        if not path.is_file():
            raise ConfigError(f"Verilog file {path} not found")
        sha = sha256_file(path)
        name = name or ports.module
        return cls(name, path, sha, ports, cache_dir() / "hw" / "designs" / f"{name}-{sha[:12]}" / "hw.json",
                   (path.parent,))

    @classmethod
    def from_multiplier(cls, multiplier: Any) -> "Design":
        """A design from a database :class:`~axhw.library.Multiplier` (duck-typed: ``name``,
        ``rtl_path``, ``rtl_sha256``, ``ports``)."""
        rtl = Path(multiplier.rtl_path)
        if not rtl.is_absolute():
            rtl = rtl_dir() / rtl
        if not rtl.is_file():
            raise ConfigError(f"multiplier {multiplier.name!r}: its Verilog {rtl} is missing; "
                              "restore it or rebuild the database with `axhw characterize`")
        return cls(multiplier.name, rtl, multiplier.rtl_sha256, multiplier.ports,
                   db_dir() / multiplier.name / "hw.json", (rtl.parent, rtl_dir()))


def as_design(multiplier: Any) -> Design:
    """Accept a :class:`Design`, a database ``Multiplier`` or a database name."""
    if isinstance(multiplier, Design):
        return multiplier
    if isinstance(multiplier, str):
        from .. import library

        multiplier = library.load(multiplier)
    return Design.from_multiplier(multiplier)
