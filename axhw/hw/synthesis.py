"""Synthesis with yosys onto a Liberty standard-cell library: netlist, area, cell count and mix.

Flow: ``synth -flatten`` (generic gates), ``dfflibmap`` + ``abc -liberty`` (map onto
the library's cells), ``setundef -zero``, ``opt_clean -purge``, ``rename -enumerate``
(internal nets become ``_N_``), then the netlist is written as Verilog (for Icarus and
OpenSTA) and JSON (for connectivity).  The gate-level module is named
``<module>_gl`` so it can sit beside the RTL in one simulation.  Area is the sum of
the Liberty cell areas over the cell mix (µm² for the OSU libraries).
"""

from __future__ import annotations

import json
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from axhw.errors import SynthesisError
from axhw.io import atomic_write_json, atomic_write_text
from axhw.hw._tools import run_tool
from axhw.hw.design import Design
from axhw.hw.liberty import Liberty

__all__ = ["SynthesisResult", "ConstantDesignWarning", "synthesize", "load_synthesis", "GL_SUFFIX"]

#: Suffix appended to the top module name in the gate-level netlist.
GL_SUFFIX = "_gl"


class ConstantDesignWarning(UserWarning):
    """A design whose outputs synthesize to constants (no operand reaches the product)."""


@dataclass(frozen=True)
class SynthesisResult:
    """A synthesized gate-level netlist and its size.

    Attributes:
        module: name of the gate-level top module (``<module>_gl``).
        netlist: Verilog netlist file; ``netlist_json``: the same in yosys JSON.
        area_um2: total cell area (µm²) from the Liberty cell areas.
        cell_count: number of cell instances; ``cell_mix``: cell name -> count.
        constant_outputs: every output bit is a constant (0 or 1).
        log: yosys log file.
        seconds: wall time of the synthesis run (s).
    """

    module: str
    netlist: Path
    netlist_json: Path
    area_um2: float
    cell_count: int
    cell_mix: dict[str, int] = field(default_factory=dict)
    constant_outputs: bool = False
    log: Path = Path()
    seconds: float = 0.0


def _script(design: Design, liberty: Liberty, work: Path) -> str:
    ports = design.ports
    includes = " ".join(f"-I{d}" for d in design.include_dirs)
    lines = [f"read_verilog -sv {includes} {source}" for source in design.sources]
    lines += [f"chparam -set {key} {int(value)} {ports.module}" for key, value in sorted(ports.parameters.items())]
    lines += [
        f"hierarchy -check -top {ports.module}",
        f"synth -flatten -top {ports.module}",
        f"dfflibmap -liberty {liberty.path}",
        f"abc -liberty {liberty.path}",
        "setundef -zero",
        "opt_clean -purge",
        "rename -enumerate",
        f"rename {ports.module} {ports.module}{GL_SUFFIX}",
        f"stat -liberty {liberty.path}",
        f"write_verilog -noattr -noexpr -nohex -nodec {work / 'netlist.v'}",
        f"write_json {work / 'netlist.json'}",
    ]
    return "\n".join(lines) + "\n"


def _summarize(netlist_json: Path, module: str, design: Design, liberty: Liberty) -> tuple[dict[str, int], bool]:
    top = json.loads(netlist_json.read_text())["modules"][module]
    mix: dict[str, int] = {}
    for cell in top["cells"].values():
        mix[cell["type"]] = mix.get(cell["type"], 0) + 1
    unmapped = sorted(c for c in mix if c.startswith("$") or c not in liberty.cell_areas)
    if unmapped:
        raise SynthesisError(f"synthesis of {design.name} left cells that are not in {liberty.path}: "
                             f"{', '.join(unmapped)}; is the design combinational, and does the library "
                             "have the cells it needs?")
    y_bits = top["ports"][design.ports.y]["bits"]
    return dict(sorted(mix.items())), all(bit in ("0", "1") for bit in y_bits)


def synthesize(design: Design, liberty: Liberty, work: Path) -> SynthesisResult:
    """Synthesize ``design`` onto ``liberty`` in folder ``work`` (created; reused when complete).

    Warns with :class:`ConstantDesignWarning` when the product is constant.

    Raises:
        SynthesisError: yosys failed (the message quotes the log tail and gives its
            path) or left cells the library does not provide.
    """
    cached = load_synthesis(work)
    if cached is None:
        work.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        script = work / "synth.ys"
        atomic_write_text(script, _script(design, liberty, work))
        run_tool(["yosys", "-s", str(script)], work / "synth.log", f"yosys synthesis of {design.name} ({design.rtl})",
                 cwd=work)
        module = design.ports.module + GL_SUFFIX
        mix, constant = _summarize(work / "netlist.json", module, design, liberty)
        cached = SynthesisResult(module, work / "netlist.v", work / "netlist.json", liberty.area_of(mix),
                                 sum(mix.values()), mix, constant, work / "synth.log", time.perf_counter() - t0)
        atomic_write_json(work / "synth.json", {
            "module": cached.module, "area_um2": cached.area_um2, "cell_count": cached.cell_count,
            "cell_mix": cached.cell_mix, "constant_outputs": cached.constant_outputs, "seconds": cached.seconds})
    if cached.constant_outputs:
        warnings.warn(f"{design.name}: the product synthesizes to constants ({cached.cell_count} cells); "
                      "its area, delay and power are those of tied-off outputs", ConstantDesignWarning, stacklevel=2)
    return cached


def load_synthesis(work: Path) -> SynthesisResult | None:
    """The synthesis result completed earlier in ``work``, or ``None``."""
    summary = work / "synth.json"
    if not (summary.is_file() and (work / "netlist.v").is_file() and (work / "netlist.json").is_file()):
        return None
    data = json.loads(summary.read_text())
    return SynthesisResult(data["module"], work / "netlist.v", work / "netlist.json", data["area_um2"],
                           data["cell_count"], data["cell_mix"], data["constant_outputs"], work / "synth.log",
                           data.get("seconds", 0.0))
