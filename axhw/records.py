"""Frozen records that flow between characterization, hardware cost, emulator and search.

Every record has ``to_json()`` / ``from_json()``; the JSON carries a ``schema``
number so that older files can be migrated (``from_json`` accepts every schema it
knows and raises :class:`~axhw.errors.DatabaseError` for others).  Units live in
field names (``area_um2``, ``delay_ns``, ``power_mw``, ``energy_pj``).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, Literal

from axhw.errors import DatabaseError

__all__ = ["PortSpec", "ErrorMetrics", "HardwareCost", "OpInfo", "DEFAULT_LIBERTY", "HW_SCHEMA", "HW_FLOW_VERSION",
           "HW_WRAPPER_VERSION", "hw_key", "read_hw_costs"]

#: The cell library hardware costs are quoted on unless a caller names another
#: (Debian's ``qflow-tech-osu018``; see :data:`axhw.hw.liberty.LIBERTY_FILES`).
DEFAULT_LIBERTY = "osu018"
#: Schema number of ``hw.json``; 2 added the ``key`` that every reader checks.
HW_SCHEMA = 2
#: Bumped whenever the hardware flow (scripts, constraints, activity model) changes results.
HW_FLOW_VERSION = 1
#: Bumped whenever the generated sign-magnitude wrapper of unsigned designs changes.
HW_WRAPPER_VERSION = 1


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

    With ``e = approx - exact`` over all 65,536 operand pairs of the domain
    (signed: a, b in [-128, 127]; the ``unsigned`` part: a, b in [0, 255]):
    ``mae = mean|e|``, ``mse = mean e²``, ``wce = max|e|``,
    ``mre = mean(|e| / |exact|)`` over pairs with ``exact != 0``,
    ``error_rate = P(e != 0)`` (EvoApproxLib's EP), ``bias = mean e``, ``std = std e``,
    ``wre = max(|e| / |exact|)`` over ``exact != 0`` (worst relative error, WCRE).
    ``mae_percent = 100·mae / percent_base`` and ``wce_percent = 100·wce / percent_base``
    with ``percent_base = 2^16``, the output range of an 8x8 multiplier, as EvoApproxLib
    reports them.  ``relative_bias = mean(e / exact)`` over ``exact != 0``: the mean
    relative error signed by the product, negative when magnitudes come out too small
    (a scaling bias that ``bias`` averages away in sign-magnitude designs).
    ``mae_reachable``/``wce_reachable``: MAE and WCE over a, b in [-127, 127], the
    operands int8 quantization produces (no -128).  ``zero_preserving``: ``a·0 = 0·b = 0``
    for every a, b.  ``unsigned``: for unsigned designs, the same metrics of the
    design's own table over a, b in [0, 255] against ``a·b`` (``None`` for signed
    designs).  ``histogram`` is ``{"edges": [...], "counts": [...]}`` of ``e``.
    Fields that older records lack are ``None`` until the entry is re-characterized.
    """

    SCHEMA = 2
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
    percent_base: float = 65536.0
    relative_bias: float | None = None
    mae_reachable: float | None = None
    wce_reachable: float | None = None
    zero_preserving: bool | None = None
    unsigned: "ErrorMetrics | None" = None

    def to_json(self) -> dict[str, Any]:
        data = {"schema": self.SCHEMA, **dataclasses.asdict(self)}
        data["unsigned"] = None if self.unsigned is None else self.unsigned.to_json()
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "ErrorMetrics":
        schema = _check_schema("ErrorMetrics", data, (1, 2))
        values = _fields_from(cls, data)
        if schema == 1:
            # schema 1 gave percentages of 2^14, the largest signed product
            values["mae_percent"] = values.get("mae_percent", 0.0) * 2**14 / 2**16
            values["wce_percent"] = values.get("wce_percent", 0.0) * 2**14 / 2**16
            values["percent_base"] = 65536.0
        if values.get("unsigned") is not None:
            values["unsigned"] = cls.from_json(values["unsigned"])
        return cls(**values)


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


# --------------------------------------------------------------------------- hw.json: the one reader


def hw_key(rtl_sha256: str, ports: PortSpec) -> dict[str, Any]:
    """Everything that determines a design's hardware cost, apart from library, stream and clock.

    The RTL digest, the top module, the parameters, the port names and widths, the
    signedness (an unsigned design is costed inside the sign-magnitude wrapper, whose
    version is part of the key) and the flow version.  Liberty, operand stream and
    clock are matched per cost inside ``hw.json``.
    """
    return {
        "rtl_sha256": rtl_sha256,
        "top": ports.module,
        "parameters": {k: int(v) for k, v in sorted(ports.parameters.items())},
        "ports": [ports.a, ports.a_width, ports.b, ports.b_width, ports.y, ports.y_width],
        "signed": bool(ports.signed),
        "wrapper": None if ports.signed else HW_WRAPPER_VERSION,
        "flow": HW_FLOW_VERSION,
    }


def read_hw_costs(data: bytes | None, key: dict[str, Any], where: str,
                  fix: str = "re-run `axhw characterize --hw`") -> tuple[tuple["HardwareCost", ...], str]:
    """Parse ``hw.json`` bytes and return its costs only when they were computed for ``key``.

    Every reader of ``hw.json`` (the library's :attr:`Multiplier.costs`, the hardware
    cache, and through them the search and the report) goes through this function, so
    a cost computed for other RTL, parameters, top module, wrapper or flow is refused
    everywhere alike.

    Args:
        data: the file's bytes, ``None`` when there is none.
        key: :func:`hw_key` of the design as it is now.
        where: the file, for messages.
        fix: what to run to recompute the costs.

    Returns:
        ``(costs, note)``: the costs and ``""``, or ``()`` and one line saying why none
        can be used (missing, unreadable, older format, stale).
    """
    if data is None:
        return (), f"not characterized yet ({fix})"
    try:
        parsed = json.loads(data)
        if not isinstance(parsed, dict) or not isinstance(parsed.get("costs"), list):
            raise ValueError("not a hw.json object with a 'costs' list")
        if parsed.get("schema") != HW_SCHEMA:
            return (), f"{where} has schema {parsed.get('schema')!r} (older axhw); run `axhw rebuild` to migrate it or {fix}"
        stored = parsed.get("key")
        if stored != key:
            changed = sorted(k for k in key if not isinstance(stored, dict) or stored.get(k) != key[k])
            return (), f"{where} is stale ({', '.join(changed) or 'key'} changed since it was computed); {fix}"
        costs = tuple(HardwareCost.from_json(c) for c in parsed["costs"] if c.get("flow") == HW_FLOW_VERSION)
    except (ValueError, TypeError, AttributeError, DatabaseError) as exc:
        return (), f"{where} is unreadable ({exc}); {fix}"
    return costs, ""
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
