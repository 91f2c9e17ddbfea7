"""Data-aware power: switching activity measured by gate-level simulation, then OpenSTA.

1. An operand stream — uniform int8 pairs (seeded) or the (a, b) pairs a layer
   really multiplies — drives the gate-level netlist in Icarus, one pair per
   simulated cycle of :data:`SIM_PERIOD_NS`, in the order given: the activity of a
   workload stream is that of consecutive pairs as the datapath sees them (e.g. one
   weight held while activations stream past it, :func:`axhw.emulator.collect_operands`),
   so nothing here reorders or resamples the pairs.  With the library's own cell models
   the cells switch with their ``specify`` delays, so glitches are counted; with
   generated models the simulation is zero-delay.
2. The VCD of every net of the netlist gives, per net, the number of transitions
   per cycle (*activity*; changes within one time step count once) and the fraction
   of time at 1 (*duty*), over cycles 1..N-1.  Several streams of one design run back
   to back in one simulation (:func:`simulate_activities`), the VCD cut into one
   window per stream that opens one cycle after the stream's first pair, so each
   stream's activity is exactly that of a run of its own.
3. OpenSTA gets these per pin: ``set_power_activity -input_ports`` for the primary
   inputs and ``sta::set_power_pin_activity`` for every cell pin (this 2019 OpenSTA
   has no ``read_vcd``/``read_saif``, and its ``set_power_activity -pins`` branch is
   broken), then ``design_power`` gives internal, switching and leakage power at the
   clock of :func:`~axhw.hw.timing.sta_preamble` and the Liberty nominal supply; one
   session annotates and reports each stream in turn (:func:`estimate_powers`).

Energy per multiplication = total power (mW) × clock period (ns) = pJ.

Unsigned designs are costed inside their generated sign-magnitude wrapper
(:func:`~axhw.hw.design.signed_wrapper`), a signed design driven by the same stream as
any other; only a bare unsigned core (``Design.from_verilog(..., sign_magnitude=False)``)
is driven with the magnitudes ``|a|``, ``|b|``.
"""

from __future__ import annotations

import json
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from axhw.errors import ConfigError, DataError, SynthesisError
from axhw.io import atomic_write_json, atomic_write_text, sha256_bytes
from axhw.hw._tools import run_tool
from axhw.hw.design import Design
from axhw.hw.liberty import Liberty
from axhw.hw.synthesis import SynthesisResult
from axhw.hw.timing import run_sta, sta_preamble

__all__ = [
    "Activity", "PowerResult", "uniform_operands", "check_operands", "operands_sha256",
    "simulate_activity", "simulate_activities", "estimate_power", "estimate_powers", "DEFAULT_PAIRS",
    "SIM_PERIOD_NS",
]

#: Length of the default uniform operand stream (pairs).
DEFAULT_PAIRS = 4096
#: Simulated time per operand pair (ns): long enough for any cell-model delay to settle.
SIM_PERIOD_NS = 100


def uniform_operands(n: int = DEFAULT_PAIRS, seed: int = 0) -> np.ndarray:
    """``n`` independent uniform int8 (a, b) pairs, shape (n, 2), from ``numpy.random.default_rng(seed)``."""
    return np.random.default_rng(seed).integers(-128, 128, size=(n, 2), dtype=np.int8)


def check_operands(operands: np.ndarray) -> np.ndarray:
    """Validate an operand stream and return it as a C-contiguous int8 array of shape (N, 2).

    Raises:
        DataError: not an integer array of shape (N, 2) with N >= 2, or a value
            outside the int8 range [-128, 127] (the message gives the first one).
    """
    arr = np.asarray(operands)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise DataError(f"operand stream must have shape (N, 2) of (a, b) pairs, got shape {arr.shape}")
    if arr.shape[0] < 2:
        raise DataError(f"operand stream needs at least 2 pairs to show any switching, got {arr.shape[0]}")
    if arr.dtype.kind not in "iu":
        if arr.dtype.kind == "f" and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
            arr = arr.astype(np.int64)
        else:
            raise DataError(f"operand stream must hold integers (int8 values), got dtype {arr.dtype}")
    bad = np.argwhere((arr < -128) | (arr > 127))
    if bad.size:
        row, col = (int(v) for v in bad[0])
        raise DataError(f"operand stream has {len(bad)} value(s) outside int8 [-128, 127]; first: "
                        f"{'ab'[col]}={int(arr[row, col])} in pair {row}; quantize the operands to int8 first")
    return np.ascontiguousarray(arr.astype(np.int8))


def operands_sha256(operands: np.ndarray) -> str:
    """Hash of an int8 (N, 2) stream: its shape and bytes."""
    arr = check_operands(operands)
    return sha256_bytes(f"int8{arr.shape}".encode() + arr.tobytes())


@dataclass(frozen=True)
class Activity:
    """Switching activity of every net bit over an operand stream.

    Attributes:
        toggles: net bit name (``_12_``, ``a[3]``) -> transitions counted.
        duty: net bit name -> fraction of time at logic 1.
        cycles: number of operand changes observed (stream length - 1).
        timed: ``True`` when the cells switched with delays (glitches included).
    """

    toggles: dict[str, int] = field(repr=False)
    duty: dict[str, float] = field(repr=False)
    cycles: int
    timed: bool

    def rate(self, net: str) -> float:
        """Transitions of ``net`` per operand pair (per clock cycle)."""
        return self.toggles[net] / self.cycles

    @property
    def mean_rate(self) -> float:
        """Mean transitions per cycle over all net bits."""
        return float(np.mean([self.rate(n) for n in self.toggles])) if self.toggles else 0.0


@dataclass(frozen=True)
class PowerResult:
    """Power of a netlist for one operand stream at one clock (mW) and energy per product (pJ)."""

    internal_mw: float
    switching_mw: float
    leakage_mw: float
    clock_ns: float
    supply_v: float

    @property
    def power_mw(self) -> float:
        """Total power (mW)."""
        return self.internal_mw + self.switching_mw + self.leakage_mw

    @property
    def energy_pj(self) -> float:
        """Energy per multiplication (pJ) = total power (mW) × clock period (ns)."""
        return self.power_mw * self.clock_ns


def _port_codes(values: np.ndarray, width: int, signed: bool, port: str) -> np.ndarray:
    if width < 8:
        raise ConfigError(f"operand port {port} is {width} bits wide; int8 operand streams need at least 8 bits")
    v = values.astype(np.int64)
    return v & ((1 << width) - 1) if signed else np.abs(v)


def _write_stimulus(design: Design, operands: np.ndarray, path: Path) -> None:
    ports = design.ports
    a = _port_codes(operands[:, 0], ports.a_width, ports.signed, ports.a)
    b = _port_codes(operands[:, 1], ports.b_width, ports.signed, ports.b)
    digits = (ports.a_width + ports.b_width + 3) // 4
    words = [format(int(x), f"0{digits}x") for x in (a << ports.b_width) | b]
    atomic_write_text(path, "\n".join(words) + "\n")


def _bench(design: Design, synth: SynthesisResult, n: int) -> str:
    p = design.ports
    return f"""`timescale 1ns/1ps
module axhw_activity;
  reg [{p.a_width - 1}:0] a;
  reg [{p.b_width - 1}:0] b;
  wire [{p.y_width - 1}:0] y;
  reg [{p.a_width + p.b_width - 1}:0] stream [0:{n - 1}];
  integer i, n;
  {synth.module} dut (.{p.a}(a), .{p.b}(b), .{p.y}(y));
  initial begin
    if (!$value$plusargs("pairs=%d", n)) n = {n};  // a shorter operands.hex in the run's own folder
    $readmemh("operands.hex", stream, 0, n - 1);
    $dumpfile("activity.vcd");
    $dumpvars(1, dut);
    for (i = 0; i < n; i = i + 1) begin
      {{a, b}} = stream[i];
      #{SIM_PERIOD_NS};
    end
    $finish;
  end
endmodule
"""


def _var_bit_names(width: int, ref: str, index: str) -> list[str]:
    """The bit names of one VCD ``$var`` (``ref`` with its ``[msb:lsb]`` range), most significant first."""
    if width == 1:
        return [ref + index] if index else [ref]
    msb, lsb = (int(x) for x in re.match(r"\[(-?\d+):(-?\d+)\]", index).groups())
    step = -1 if msb >= lsb else 1
    return [f"{ref}[{i}]" for i in range(msb, lsb + step, step)]


class _VcdCounter:
    """Per-bit transition counts and time at 1 in a VCD, from ``t_start`` to ``t_end`` (changes at or
    after ``t_end`` are ignored).  The reference :func:`_count_vcd_windows` is tested against."""

    def __init__(self, t_start: int, t_end: int):
        self.t_start, self.t_end = t_start, t_end
        self.names: dict[str, list[str]] = {}  # id code -> bit names, MSB first
        self.value: dict[str, list[str]] = {}
        self.since: dict[str, list[int]] = {}
        self.toggles: dict[str, list[int]] = {}
        self.high: dict[str, list[int]] = {}

    def declare(self, code: str, width: int, ref: str, index: str) -> None:
        if code in self.names:
            return
        names = _var_bit_names(width, ref, index)
        self.names[code] = names
        self.value[code] = ["x"] * width
        self.since[code] = [self.t_start] * width
        self.toggles[code] = [0] * width
        self.high[code] = [0] * width

    def commit(self, t: int, pending: dict[str, str]) -> None:
        if t >= self.t_end:
            return
        t_clip = max(t, self.t_start)
        for code, raw in pending.items():
            old = self.value[code]
            width = len(old)
            new = raw.rjust(width, "x" if raw[0] in "xXzZ" else "0")[-width:].lower()
            for i in range(width):
                if new[i] != old[i]:
                    if old[i] == "1":
                        self.high[code][i] += t_clip - self.since[code][i]
                    if t >= self.t_start and old[i] in "01" and new[i] in "01":
                        self.toggles[code][i] += 1
                    self.since[code][i] = t_clip
                    old[i] = new[i]

    def finish(self) -> tuple[dict[str, int], dict[str, float]]:
        toggles: dict[str, int] = {}
        duty: dict[str, float] = {}
        span = max(self.t_end - self.t_start, 1)
        for code, names in self.names.items():
            for i, name in enumerate(names):
                high = self.high[code][i] + (self.t_end - self.since[code][i] if self.value[code][i] == "1" else 0)
                toggles[name] = self.toggles[code][i]
                duty[name] = high / span
        return toggles, duty


_TIME_UNITS_NS = {"s": 1e9, "ms": 1e6, "us": 1e3, "ns": 1.0, "ps": 1e-3, "fs": 1e-6}
_VAR_RE = re.compile(r"\$var\s+\S+\s+(?P<width>\d+)\s+(?P<code>\S+)\s+(?P<ref>\S+)\s*(?P<index>\[[^\]]*\])?\s*\$end")


def _count_vcd(path: Path, t_start_ns: int, t_end_ns: int) -> tuple[dict[str, int], dict[str, float]]:
    """Per-bit transitions and duty in the window [t_start_ns, t_end_ns) of a VCD file, line by line.

    The reference for :func:`_count_vcd_windows`, which the flow uses (same numbers, far faster).
    """
    pending: dict[str, str] = {}
    t = 0
    with path.open() as f:
        header = []
        for line in f:
            header.append(line)
            if line.startswith("$enddefinitions"):
                break
        text = "".join(header)
        scale = re.search(r"\$timescale\s*(\d+)\s*(s|ms|us|ns|ps|fs)\s*\$end", text)
        if scale is None:
            raise SynthesisError(f"{path}: no $timescale in the VCD header")
        ticks_per_ns = 1.0 / (int(scale.group(1)) * _TIME_UNITS_NS[scale.group(2)])
        counter = _VcdCounter(round(t_start_ns * ticks_per_ns), round(t_end_ns * ticks_per_ns))
        for var in _VAR_RE.finditer(text):  # $var wire 8 ! a [7:0] $end
            counter.declare(var.group("code"), int(var.group("width")), var.group("ref"), var.group("index") or "")
        for line in f:
            c = line[:1]
            if c == "#":
                counter.commit(t, pending)
                pending.clear()
                t = int(line[1:])
            elif c in ("0", "1", "x", "z", "X", "Z"):
                pending[line[1:].strip()] = c
            elif c in ("b", "B"):
                value, code = line[1:].split()
                pending[code] = value
    counter.commit(t, pending)
    return counter.finish()


def _count_vcd_windows(path: Path, windows_ns: list[tuple[int, int]]) -> list[tuple[dict[str, int], dict[str, float]]]:
    """Per-bit transitions and duty in each window ``[t_start_ns, t_end_ns)`` of a VCD file, in one pass.

    The same numbers as :func:`_count_vcd` (its reference) for every window at once,
    from a compiled scan of the file (:mod:`axhw.hw._vcd`).  Windows must be sorted
    and disjoint; changes between windows move the state but count nowhere.
    """
    from axhw.hw._vcd import code_key, count_windows

    with path.open("rb") as f:
        header = []
        for line in f:
            header.append(line)
            if line.startswith(b"$enddefinitions"):
                break
        body = f.read()
    text = b"".join(header).decode()
    scale = re.search(r"\$timescale\s*(\d+)\s*(s|ms|us|ns|ps|fs)\s*\$end", text)
    if scale is None:
        raise SynthesisError(f"{path}: no $timescale in the VCD header")
    ticks_per_ns = 1.0 / (int(scale.group(1)) * _TIME_UNITS_NS[scale.group(2)])
    declared: dict[str, tuple[int, int]] = {}  # code -> (first bit, width); the first declaration wins
    bit_names: list[str] = []
    for var in _VAR_RE.finditer(text):  # $var wire 8 ! a [7:0] $end
        code, width, ref, index = var.group("code"), int(var.group("width")), var.group("ref"), var.group("index") or ""
        if code in declared:
            continue
        names = _var_bit_names(width, ref, index)
        declared[code] = (len(bit_names), width)
        bit_names.extend(names)
    order = sorted(declared, key=code_key)
    keys = np.array([code_key(c) for c in order], dtype=np.int64)
    bases = np.array([declared[c][0] for c in order], dtype=np.int64)
    widths = np.array([declared[c][1] for c in order], dtype=np.int64)
    starts = np.array([round(a * ticks_per_ns) for a, _ in windows_ns], dtype=np.int64)
    ends = np.array([round(b * ticks_per_ns) for _, b in windows_ns], dtype=np.int64)
    if np.any(ends < starts) or np.any(starts[1:] < ends[:-1]):
        raise ValueError(f"windows must be sorted and disjoint, got {windows_ns}")
    toggles, high, bad = count_windows(np.frombuffer(body, dtype=np.uint8), keys, bases, widths, len(bit_names),
                                       starts, ends)
    if bad >= 0:
        line = body[bad:].split(b"\n", 1)[0].decode(errors="replace")
        raise SynthesisError(f"{path}: value change {line!r} of an undeclared identifier code")
    results = []
    for k in range(len(windows_ns)):
        span = max(int(ends[k] - starts[k]), 1)
        tk, hk = toggles[k].tolist(), high[k].tolist()
        results.append(({name: tk[i] for i, name in enumerate(bit_names)},
                        {name: hk[i] / span for i, name in enumerate(bit_names)}))
    return results


def simulate_activity(design: Design, synth: SynthesisResult, models: Path, timed: bool, operands: np.ndarray,
                      work: Path) -> Activity:
    """Drive the netlist with ``operands`` in Icarus and measure the activity of every net.

    One stream of :func:`simulate_activities`.

    Args:
        design: the design (ports, signedness).
        synth: its netlist.
        models: Verilog cell models; ``timed``: they have ``specify`` delays (``-gspecify``).
        operands: int8 (N, 2) stream, one pair per cycle.
        work: folder for the bench, stimulus, logs and ``activity.json`` (the VCD is deleted).

    Raises:
        DataError: a bad operand stream.
        SynthesisError: the simulation could not be compiled or run.
    """
    return simulate_activities(design, synth, models, timed, [operands], work)[0]


def simulate_activities(design: Design, synth: SynthesisResult, models: Path, timed: bool,
                        streams: Sequence[np.ndarray], work: Path, *, jobs: int = 1,
                        keep_vcd: bool = False) -> list[Activity]:
    """Activity of every net for each of several operand streams, from one compiled simulation.

    The streams are driven back to back in one Icarus run and the VCD is cut into one
    window per stream.  A stream's window opens one cycle after its first pair is
    applied and closes when the next stream's first pair is: the change from the
    previous stream's last pair to this stream's first pair, like the change from the
    unknown power-up state to the first pair of a stream simulated alone, counts in no
    window.  The netlist is combinational and every change settles within a cycle
    (:data:`SIM_PERIOD_NS`), so a stream starts from the state its first pair sets,
    and each :class:`Activity` is exactly the one a run of that stream alone gives.

    Args:
        design, synth, models, timed: as :func:`simulate_activity`.
        streams: int8 (N_i, 2) streams, one pair per cycle each.
        work: folder for the bench, stimulus, logs and ``activity.json`` (one entry per stream).
        jobs: simulations run at once; with more than one, the streams are split into that
            many consecutive groups of about equal length, each run of the same compiled
            simulation in a folder ``part-<g>`` of its own (same numbers, less wall time).
        keep_vcd: keep each run's ``activity.vcd`` (deleted by default: tens of MB per design).

    Raises:
        DataError: a bad operand stream (or none).
        ConfigError: ``jobs`` below 1.
        SynthesisError: the simulation could not be compiled or run.
    """
    if not len(streams):
        raise DataError("no operand stream to simulate; pass at least one (N, 2) int8 array")
    if jobs < 1:
        raise ConfigError(f"jobs must be at least 1, got {jobs}")
    checked = [check_operands(ops) for ops in streams]
    lengths = [len(ops) for ops in checked]
    work.mkdir(parents=True, exist_ok=True)
    atomic_write_text(work / "activity_tb.v", _bench(design, synth, sum(lengths)))
    run_tool(["iverilog", *(["-gspecify"] if timed else []), "-o", "activity.vvp", "-s", "axhw_activity",
              "activity_tb.v", str(synth.netlist), str(models)], work / "activity_compile.log",
             f"iverilog compiling the activity bench of {design.name}", cwd=work)
    groups = _groups(lengths, jobs)
    folders = [work] if len(groups) == 1 else [work / f"part-{g}" for g in range(len(groups))]

    def simulate(folder: Path, members: list[int]) -> list[tuple[dict[str, int], dict[str, float]]]:
        folder.mkdir(parents=True, exist_ok=True)
        _write_stimulus(design, np.concatenate([checked[k] for k in members]), folder / "operands.hex")
        n = sum(lengths[k] for k in members)
        run_tool(["vvp", "-n", str(work / "activity.vvp"), f"+pairs={n}"], folder / "activity.log",
                 f"gate-level activity simulation of {design.name}", cwd=folder)
        vcd = folder / "activity.vcd"
        if not vcd.is_file():
            raise SynthesisError(f"activity simulation of {design.name} wrote no VCD; see {folder / 'activity.log'}")
        first = np.cumsum([0, *(lengths[k] for k in members[:-1])])
        windows = [(int(f + 1) * SIM_PERIOD_NS, int(f + lengths[k]) * SIM_PERIOD_NS) for f, k in zip(first, members)]
        counted = _count_vcd_windows(vcd, windows)
        if not keep_vcd:
            vcd.unlink()
        return counted

    if len(groups) == 1:
        counted = simulate(work, groups[0])
    else:
        with ThreadPoolExecutor(max_workers=len(groups)) as pool:  # the simulator runs outside the GIL
            counted = [c for part in pool.map(simulate, folders, groups) for c in part]
    (work / "activity.vvp").unlink(missing_ok=True)
    activities = [Activity(toggles, duty, m - 1, timed) for (toggles, duty), m in zip(counted, lengths)]
    records = [{"cycles": a.cycles, "timed": timed, "toggles": a.toggles, "duty": a.duty} for a in activities]
    atomic_write_json(work / "activity.json", records[0] if len(records) == 1 else {"streams": records})
    return activities


def _groups(lengths: list[int], jobs: int) -> list[list[int]]:
    """Stream indices split into at most ``jobs`` consecutive groups of about equal total length."""
    jobs = min(jobs, len(lengths))
    total, groups, current, done = sum(lengths), [], [], 0
    for k, m in enumerate(lengths):
        current.append(k)
        done += m
        if len(groups) < jobs - 1 and done >= total * (len(groups) + 1) / jobs:
            groups.append(current)
            current = []
    if current:
        groups.append(current)
    return groups


def _bit_names(netlist_json: Path, module: str) -> tuple[dict, dict[int, str]]:
    top = json.loads(netlist_json.read_text())["modules"][module]
    names: dict[int, str] = {}
    ports = set(top["ports"])
    # Port names first: a bit known under a port name is dumped under it.
    for name, net in sorted(top["netnames"].items(), key=lambda kv: kv[0] not in ports):
        bits, offset = net["bits"], net.get("offset", 0)
        for i, bit in enumerate(bits):
            if isinstance(bit, int) and bit not in names:
                names[bit] = name if len(bits) == 1 else f"{name}[{offset + i}]"
    return top, names


def _tcl_activity(value: float, duty: float) -> str:
    return f"{value:.6g} {min(max(duty, 0.0), 1.0):.6g}"


def estimate_power(synth: SynthesisResult, liberty: Liberty, activity: Activity, clock_ns: float,
                   work: Path) -> PowerResult:
    """Internal, switching and leakage power (mW) of ``synth`` for a measured ``activity``.

    Raises:
        SynthesisError: OpenSTA failed, or a net of the netlist has no measured activity.
    """
    return estimate_powers(synth, liberty, [activity], clock_ns, work)[0]


def estimate_powers(synth: SynthesisResult, liberty: Liberty, activities: Sequence[Activity], clock_ns: float,
                    work: Path) -> list[PowerResult]:
    """Power (mW) of ``synth`` for each measured activity, from one OpenSTA session.

    The netlist and library are read once; every pin is annotated anew before each
    ``design_power``, so each result is the one a session of its own gives.

    Raises:
        SynthesisError: OpenSTA failed, or a net of the netlist has no measured activity.
    """
    top, names = _bit_names(synth.netlist_json, synth.module)

    def annotate(activity: Activity, bit: int | str) -> str:
        if not isinstance(bit, int):  # a constant "0"/"1" (or "x", tied to 0 by setundef)
            return _tcl_activity(0.0, 1.0 if bit == "1" else 0.0)
        name = names.get(bit)
        if name not in activity.toggles:
            raise SynthesisError(f"net {name or bit} of {synth.netlist} has no activity in the simulation; "
                                 f"see {work / 'activity.log'}")
        return _tcl_activity(activity.rate(name), activity.duty[name])

    lines = [sta_preamble(synth, liberty, clock_ns)]
    for k, activity in enumerate(activities):
        for port, spec in sorted(top["ports"].items()):
            if spec["direction"] == "input":
                for i, bit in enumerate(spec["bits"]):
                    ref = port if len(spec["bits"]) == 1 else f"{port}[{i}]"
                    act, duty = annotate(activity, bit).split()
                    lines.append(f"set_power_activity -input_ports {{{ref}}} -activity {act} -duty {duty}")
        for inst, cell in sorted(top["cells"].items()):
            for pin, bits in sorted(cell["connections"].items()):
                lines.append(f"sta::set_power_pin_activity [get_pins {{{inst}/{pin}}}] {annotate(activity, bits[0])}")
        lines.append(f'puts "AXHW_POWER {k} [sta::design_power [sta::cmd_corner]]"')
    log = run_sta("\n".join(lines) + "\n", work, "power", f"OpenSTA power of {synth.netlist}")
    found = {int(k): groups for k, *groups in re.findall(r"^AXHW_POWER (\d+) (\S+) (\S+) (\S+)", log, re.M)}
    results = []
    for k in range(len(activities)):
        if k not in found:
            raise SynthesisError(f"OpenSTA printed no power for {synth.netlist}; see {work / 'power.log'}")
        internal_w, switching_w, leakage_w = (float(x) for x in found[k])
        results.append(PowerResult(internal_w * 1e3, switching_w * 1e3, leakage_w * 1e3, float(clock_ns),
                                   liberty.supply_v))
    return results
