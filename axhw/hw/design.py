"""What the hardware flow needs to know about a multiplier: its Verilog and its ports.

:class:`Design` is built from a database :class:`~axhw.library.Multiplier` (its
``rtl_path`` is relative to :func:`axhw.paths.rtl_dir`; costs are cached in
``multipliers_db/<name>/hw.json``) or from any Verilog file plus a
:class:`~axhw.records.PortSpec` (costs cached under :func:`axhw.paths.cache_dir`).

Unsigned designs are costed inside a generated signed wrapper.  The emulator uses an
unsigned design ``M`` in sign-magnitude form, ``lut[a, b] = sign(a·b)·M(|a|, |b|)``,
so the hardware that computes that table on int8 operands is ``M`` plus the
conversions around it; :func:`signed_wrapper` writes that datapath as a Verilog
module ``axhw_sm_<module>`` (two's-complement ``a``, ``b`` in, two's-complement
``y`` out)::

    ma = a[7] ? -a : a            // |a| as 8-bit unsigned; |-128| = 128 = 8'h80
    mb = b[7] ? -b : b
    p  = <module>(ma, mb)          // the unsigned core, with its parameters
    y  = (a[7] ^ b[7]) ? -p : p    // zero_gate: y = 0 when a == 0 or b == 0

The zero gate is only generated for cores with a non-zero product by 0 (``M(0, y)``
or ``M(x, 0)`` != 0), where sign(a·b) = 0 must override ``M``.  Synthesis, the
equivalence check, timing and power then all run on the wrapper, which gets the same
signed operand streams as a signed design; the equivalence check compares its
netlist with the stored sign-magnitude table of the database entry (``reference``)
or, without one, with ``sign(a·b)·M(|a|, |b|)`` computed from the core's RTL.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from axhw.errors import ConfigError
from axhw.io import atomic_write_text, sha256_bytes, sha256_file
from axhw.paths import cache_dir, db_dir, rtl_dir
from axhw.records import HW_WRAPPER_VERSION, PortSpec

__all__ = ["Design", "as_design", "signed_wrapper", "wrapper_source", "WRAPPER_VERSION", "WRAPPER_PREFIX"]

#: Bumped (in :mod:`axhw.records`) whenever the generated sign-magnitude wrapper changes
#: (part of the design hash and of the ``hw.json`` key).
WRAPPER_VERSION = HW_WRAPPER_VERSION
#: Module name prefix of generated wrappers.
WRAPPER_PREFIX = "axhw_sm_"


@dataclass(frozen=True)
class Design:
    """A combinational multiplier ready for synthesis.

    Attributes:
        name: name used in messages, logs and the cache folder.
        rtl: the Verilog source file (for a wrapped design: the generated wrapper).
        rtl_sha256: content hash recorded in ``hw.json`` (the database's hash for
            library entries — of the core for wrapped designs; a stale hash makes
            every cached cost stale).
        ports: module, port names, widths, signedness and parameter overrides.
        hw_json: where costs of this design are cached.
        include_dirs: ``include`` search path for yosys and Icarus.
        core: for a sign-magnitude wrapper, the unsigned design it instantiates.
        reference: int32 (2^aw, 2^bw) table ``reference[a + 2^(aw-1), b + 2^(bw-1)]``
            the netlist must compute (the database's signed-index LUT), or ``None``.
    """

    name: str
    rtl: Path
    rtl_sha256: str
    ports: PortSpec
    hw_json: Path
    include_dirs: tuple[Path, ...] = ()
    core: "Design | None" = None
    reference: np.ndarray | None = field(default=None, compare=False, repr=False, hash=False)

    @property
    def sources(self) -> tuple[Path, ...]:
        """Every Verilog file synthesis and simulation read (the core's first)."""
        return (*(self.core.sources if self.core else ()), self.rtl)

    @property
    def design_sha256(self) -> str:
        """Hash of everything synthesis and the checks read: the sources, top module, ports,
        parameters, the wrapped core and the reference table."""
        spec: dict[str, Any] = {"rtl": sha256_file(self.rtl), "ports": self.ports.to_json()}
        if self.core is not None:
            spec.update(core=self.core.design_sha256, wrapper=WRAPPER_VERSION)
        if self.reference is not None:
            ref = np.ascontiguousarray(self.reference, dtype=np.int32)
            spec["reference"] = sha256_bytes(f"int32{ref.shape}".encode() + ref.tobytes())
        return sha256_bytes(json.dumps(spec, sort_keys=True).encode())

    @classmethod
    def from_verilog(cls, path: str | Path, ports: PortSpec, name: str | None = None, *,
                     sign_magnitude: bool = True, zero_gate: bool = True) -> "Design":
        """A design from a Verilog file outside the database (costs cached under ``cache_dir()/hw``).

        An unsigned design (``ports.signed`` false) is wrapped by :func:`signed_wrapper`
        unless ``sign_magnitude=False`` (then the bare core is costed, driven by
        operand magnitudes).  ``zero_gate=False`` leaves out the zero gate, for cores
        whose product by 0 is 0 (the equivalence check catches a wrong claim).
        """
        path = Path(path).expanduser().resolve()
        if not path.is_file():
            raise ConfigError(f"Verilog file {path} not found")
        sha = sha256_file(path)
        name = name or ports.module
        folder = f"{name}-{sha[:12]}" if ports.signed or not sign_magnitude else f"{name}-sm-{sha[:12]}"
        core = cls(name, path, sha, ports, cache_dir() / "hw" / "designs" / folder / "hw.json", (path.parent,))
        if ports.signed or not sign_magnitude:
            return core
        return signed_wrapper(core, zero_gate=zero_gate)

    @classmethod
    def from_multiplier(cls, multiplier: Any) -> "Design":
        """A design from a database :class:`~axhw.library.Multiplier` (duck-typed: ``name``,
        ``rtl_path``, ``rtl_sha256``, ``ports``; ``lut`` when unsigned).

        Unsigned entries are wrapped by :func:`signed_wrapper` and checked against
        their stored sign-magnitude ``lut``; the zero gate is added only when the
        stored unsigned table has a non-zero product by 0.
        """
        rtl = Path(multiplier.rtl_path)
        if not rtl.is_absolute():
            rtl = rtl_dir() / rtl
        if rtl.suffix == ".c":
            raise ConfigError(f"multiplier {multiplier.name!r} was imported from the C model {rtl}, which has no "
                              f"hardware to cost; re-add it with its Verilog twin: `axhw add {rtl} --twin DESIGN.v --force`")
        if not rtl.is_file():
            raise ConfigError(f"multiplier {multiplier.name!r}: its Verilog {rtl} is missing; "
                              "restore it or rebuild the database with `axhw characterize`")
        folder = getattr(multiplier, "folder", None) or db_dir() / multiplier.name
        design = cls(multiplier.name, rtl, multiplier.rtl_sha256, multiplier.ports,
                     folder / "hw.json", (rtl.parent, rtl_dir()))
        if multiplier.ports.signed:
            return design
        reference = getattr(multiplier, "lut", None)
        return signed_wrapper(design, zero_gate=_needs_zero_gate(folder), reference=reference)


def _needs_zero_gate(folder: Path) -> bool:
    """Whether the stored unsigned table of the database entry in ``folder`` has M(0, y) or M(x, 0) != 0."""
    path = folder / "lut.npy"
    try:
        raw = np.load(path, allow_pickle=False)
    except (OSError, ValueError):
        return True  # unknown: the gate makes any core match sign(a·b)·M(|a|, |b|)
    return bool(np.any(raw[0, :]) or np.any(raw[:, 0]))


def wrapper_source(core: PortSpec, zero_gate: bool = False) -> str:
    """Verilog of the signed sign-magnitude wrapper ``axhw_sm_<module>`` around the unsigned ``core``."""
    aw, bw, yw = core.a_width, core.b_width, core.y_width
    params = ", ".join(f".{k}({int(v)})" for k, v in sorted(core.parameters.items()))
    inst = f"{core.module} {'#(' + params + ') ' if params else ''}axhw_core"
    product = "axhw_neg ? -axhw_p : axhw_p"
    if zero_gate:
        product = f"(a == {aw}'d0 || b == {bw}'d0) ? {yw}'d0 : ({product})"
    return f"""// Generated by axhw.hw.design.signed_wrapper (wrapper version {WRAPPER_VERSION}); do not edit.
// Signed (two's-complement) {aw}x{bw} multiplier around the unsigned core `{core.module}`,
// computing y = sign(a*b) * {core.module}(|a|, |b|) (|-2^{aw - 1}| = 2^{aw - 1} fits {aw} unsigned bits).
module {WRAPPER_PREFIX}{core.module} (
  input  [{aw - 1}:0] a,
  input  [{bw - 1}:0] b,
  output [{yw - 1}:0] y
);
  wire [{aw - 1}:0] axhw_ma = a[{aw - 1}] ? -a : a;
  wire [{bw - 1}:0] axhw_mb = b[{bw - 1}] ? -b : b;
  wire [{yw - 1}:0] axhw_p;
  wire axhw_neg = a[{aw - 1}] ^ b[{bw - 1}];
  {inst} (.{core.a}(axhw_ma), .{core.b}(axhw_mb), .{core.y}(axhw_p));
  assign y = {product};
endmodule
"""


def signed_wrapper(core: Design, *, zero_gate: bool = True, reference: np.ndarray | None = None) -> Design:
    """The signed sign-magnitude datapath around an unsigned ``core`` (see the module docstring).

    The wrapper's Verilog is written to ``cache_dir()/hw/wrappers/``; the returned
    design keeps the core's name, ``rtl_sha256`` and ``hw_json``, has signed ports
    ``a``, ``b``, ``y`` of the core's widths and module ``axhw_sm_<module>``.

    Args:
        core: an unsigned design (``core.ports.signed`` false).
        zero_gate: force y = 0 when a or b is 0 (needed when ``M(0, y)`` or ``M(x, 0)`` != 0).
        reference: the signed-index table the netlist must equal (the database LUT);
            ``None`` to check against ``sign(a·b)·M(|a|, |b|)`` simulated from the core RTL.
    """
    if core.ports.signed:
        raise ConfigError(f"{core.name}: signed_wrapper needs an unsigned design, got signed ports")
    if core.core is not None:
        raise ConfigError(f"{core.name}: already wrapped")
    ports = core.ports
    if reference is not None:
        reference = np.asarray(reference)
        shape = (1 << ports.a_width, 1 << ports.b_width)
        if reference.shape != shape:
            raise ConfigError(f"{core.name}: reference table has shape {reference.shape}, expected {shape}")
    text = wrapper_source(ports, zero_gate)
    path = cache_dir() / "hw" / "wrappers" / f"{WRAPPER_PREFIX}{ports.module}-{sha256_bytes(text.encode())[:12]}.v"
    if not (path.is_file() and path.read_text() == text):
        atomic_write_text(path, text)
    wrapped = PortSpec(f"{WRAPPER_PREFIX}{ports.module}", "a", "b", "y", ports.a_width, ports.b_width,
                       ports.y_width, True)
    return Design(core.name, path, core.rtl_sha256, wrapped, core.hw_json, core.include_dirs, core, reference)


def as_design(multiplier: Any) -> Design:
    """Accept a :class:`Design`, a database ``Multiplier`` or a database name."""
    if isinstance(multiplier, Design):
        return multiplier
    if isinstance(multiplier, str):
        from axhw import library

        multiplier = library.load(multiplier)
    return Design.from_multiplier(multiplier)
