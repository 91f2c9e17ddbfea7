"""Frozen records that flow between characterization, hardware cost, emulator and search.

Every record has ``to_json()`` / ``from_json()``; the JSON carries a ``schema``
number so that older files can be migrated (``from_json`` accepts every schema it
knows and raises :class:`~axhw.errors.DatabaseError` for others).  Units live in
field names (``area_um2``, ``delay_ns``, ``power_mw``, ``energy_pj``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

from .errors import DatabaseError

__all__ = ["PortSpec", "ErrorMetrics", "HardwareCost", "OpInfo", "DEFAULT_LIBERTY"]

#: The cell library hardware costs are quoted on unless a caller names another
#: (Debian's ``qflow-tech-osu018``; see :data:`axhw.hw.liberty.LIBERTY_FILES`).
DEFAULT_LIBERTY = "osu018"


def _check_schema(kind: str, data: dict[str, Any], known: tuple[int, ...]) -> int:
    schema = data.get("schema")
    if schema not in known:
        raise DatabaseError(f"{kind} record has schema {schema!r}; this axhw reads schema {', '.join(map(str, known))}")
    return schema


def _fields_from(cls, data: dict[str, Any]) -> dict[str, Any]:
    names = {f.name for f in dataclasses.fields(cls)}
    return {k: v for k, v in data.items() if k in names}


@dataclass(frozen=True)
class PortSpec:
    """The interface of a combinational multiplier module, as found by discovery.

    Attributes:
        module: Verilog module name.
        a, b: names of the two operand inputs.
        y: name of the product output.
        a_width, b_width, y_width: port widths in bits.
        signed: ``True`` when the design multiplies two's-complement operands,
            ``False`` for unsigned (used in sign-magnitude form by the emulator).
        parameters: Verilog parameter overrides used for this entry.
    """

    SCHEMA = 1
    module: str
    a: str
    b: str
    y: str
    a_width: int
    b_width: int
    y_width: int
    signed: bool
    parameters: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"schema": self.SCHEMA, **dataclasses.asdict(self)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "PortSpec":
        _check_schema("PortSpec", data, (1,))
        return cls(**_fields_from(cls, data))


@dataclass(frozen=True)
class ErrorMetrics:
    """Error of an approximate product table against the exact product.

    With ``e = approx - exact`` over all 65,536 operand pairs:
    ``mae = mean|e|``, ``mse = mean e²``, ``wce = max|e|``,
    ``mre = mean(|e| / |exact|)`` over pairs with ``exact != 0``,
    ``error_rate = P(e != 0)``, ``bias = mean e``, ``std = std e``,
    ``wre = max(|e| / |exact|)`` over ``exact != 0`` (worst relative error).
    ``mae_percent`` and ``wce_percent`` normalize by the largest exact magnitude
    (2^14 for signed 8x8).  ``histogram`` is ``{"edges": [...], "counts": [...]}``.
    """

    SCHEMA = 1
    mae: float
    mse: float
    wce: float
    mre: float
    error_rate: float
    bias: float
    std: float
    wre: float
    mae_percent: float = 0.0
    wce_percent: float = 0.0
    histogram: dict[str, list] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"schema": self.SCHEMA, **dataclasses.asdict(self)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "ErrorMetrics":
        _check_schema("ErrorMetrics", data, (1,))
        return cls(**_fields_from(cls, data))


@dataclass(frozen=True)
class HardwareCost:
    """Synthesis, timing and power of one multiplier on one cell library.

    Attributes:
        area_um2: total cell area (µm²), from the Liberty cell areas.
        cell_count: number of standard cells in the netlist.
        cell_mix: cell name -> count.
        delay_ns: critical combinational path delay (ns), from OpenSTA.
        power_mw: total (internal + switching + leakage) power (mW) at ``clock_ns``
            and the library's nominal supply, for ``operand_stream``.
        internal_mw, switching_mw, leakage_mw: the parts of ``power_mw`` (mW).
        energy_pj: energy per multiplication = power_mw × clock_ns (pJ).
        clock_ns: clock period assumed for power (one multiplication per cycle).
        liberty: name of the Liberty library (e.g. ``osu018``); ``liberty_sha256``
            its content hash.
        operand_stream: ``"uniform"`` or a label of a user stream; ``operands_sha256``
            hashes the (a, b) samples used for activity.
        tools: tool name -> version string (yosys, iverilog, sta).
    """

    SCHEMA = 1
    area_um2: float
    cell_count: int
    delay_ns: float
    power_mw: float
    energy_pj: float
    clock_ns: float
    liberty: str
    liberty_sha256: str
    operand_stream: str = "uniform"
    operands_sha256: str = ""
    internal_mw: float = 0.0
    switching_mw: float = 0.0
    leakage_mw: float = 0.0
    cell_mix: dict[str, int] = field(default_factory=dict)
    tools: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"schema": self.SCHEMA, **dataclasses.asdict(self)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "HardwareCost":
        _check_schema("HardwareCost", data, (1,))
        return cls(**_fields_from(cls, data))


@dataclass(frozen=True)
class OpInfo:
    """One approximable multiplication site of a model.

    Found by :func:`axhw.emulator.list_ops`; stored in search results and read by the
    report, which is why it lives here and not in the emulator.

    Attributes:
        name: op name used by configs (module path; ``<attention>.qk`` / ``.av`` for
            the attention products).
        kind: ``"linear"``, ``"conv"``, ``"qk"`` (``Q·Kᵀ``) or ``"av"`` (``A·V``).
        macs_per_image: multiply-accumulates of this op for one input image.
    """

    name: str
    kind: Literal["linear", "conv", "qk", "av"]
    macs_per_image: int
