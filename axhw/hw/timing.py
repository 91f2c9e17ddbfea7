"""Static timing with OpenSTA: the critical combinational path of the multiplier (ns).

The netlist sits between ideal registers of a virtual clock of period ``clock_ns``:
every input arrives at time 0 with a :data:`INPUT_TRANSITION_NS` slew, every output
drives :data:`OUTPUT_LOAD_PF` and is required by the next edge.  The delay is the
data arrival time of the worst path (0 when no input reaches an output).  The same
constraints serve the power analysis (:mod:`axhw.hw.power`), which needs the clock.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from axhw.errors import SynthesisError
from axhw.io import atomic_write_text
from axhw.hw._tools import run_tool
from axhw.hw.liberty import Liberty
from axhw.hw.synthesis import SynthesisResult

__all__ = ["TimingResult", "critical_path", "sta_preamble", "run_sta", "INPUT_TRANSITION_NS", "OUTPUT_LOAD_PF"]

#: Slew of every primary input (ns).
INPUT_TRANSITION_NS = 0.1
#: Capacitive load on every product bit (pF): a few gate inputs of a 0.18 µm library.
OUTPUT_LOAD_PF = 0.01


@dataclass(frozen=True)
class TimingResult:
    """Critical path of a netlist.

    Attributes:
        delay_ns: data arrival time of the worst input-to-output path (ns).
        clock_ns: the virtual clock period it was checked against (ns).
        report: OpenSTA log with the full path report.
    """

    delay_ns: float
    clock_ns: float
    report: Path


def sta_preamble(synth: SynthesisResult, liberty: Liberty, clock_ns: float) -> str:
    """Tcl that loads the netlist and sets the virtual clock, input slews and output loads."""
    if not clock_ns > 0:
        raise ValueError(f"clock_ns must be positive, got {clock_ns}")
    return "\n".join([
        f"read_liberty {{{liberty.path}}}",
        f"read_verilog {{{synth.netlist}}}",
        f"link_design {synth.module}",
        "set_cmd_units -capacitance pF -time ns",
        f"create_clock -name vclk -period {clock_ns}",
        "set_input_delay 0 -clock vclk [all_inputs]",
        "set_output_delay 0 -clock vclk [all_outputs]",
        f"set_input_transition {INPUT_TRANSITION_NS} [all_inputs]",
        f"set_load {OUTPUT_LOAD_PF} [all_outputs]",
    ]) + "\n"


def run_sta(script: str, work: Path, stem: str, what: str) -> str:
    """Run a Tcl ``script`` in OpenSTA (files ``<stem>.tcl`` and ``<stem>.log`` in ``work``); return the log."""
    tcl = work / f"{stem}.tcl"
    atomic_write_text(tcl, script + "exit\n")
    return run_tool(["sta", "-no_init", "-no_splash", "-exit", str(tcl)], work / f"{stem}.log", what, cwd=work,
                    error_pattern=r"^Error:.*$")


def critical_path(synth: SynthesisResult, liberty: Liberty, clock_ns: float, work: Path) -> TimingResult:
    """Critical-path delay (ns) of ``synth`` on ``liberty`` with OpenSTA.

    Raises:
        SynthesisError: OpenSTA failed (log tail and path in the message).
    """
    script = sta_preamble(synth, liberty, clock_ns) + "\n".join([
        "report_checks -path_delay max -digits 4 -fields {capacitance slew}",
        "set pe [lindex [find_timing_paths -path_delay max] 0]",
        'if {$pe == ""} { puts "AXHW_ARRIVAL none" } else { puts "AXHW_ARRIVAL [$pe data_arrival_time]" }',
    ]) + "\n"
    log = run_sta(script, work, "timing", f"OpenSTA timing of {synth.netlist}")
    match = re.search(r"^AXHW_ARRIVAL (\S+)", log, re.M)
    if match is None:
        raise SynthesisError(f"OpenSTA printed no arrival time for {synth.netlist}; see {work / 'timing.log'}")
    delay_s = 0.0 if match.group(1) == "none" else float(match.group(1))
    return TimingResult(delay_ns=delay_s * 1e9, clock_ns=float(clock_ns), report=work / "timing.log")
