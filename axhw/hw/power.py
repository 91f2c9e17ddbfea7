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
   of time at 1 (*duty*), over cycles 1..N-1.
3. OpenSTA gets these per pin: ``set_power_activity -input_ports`` for the primary
   inputs and ``sta::set_power_pin_activity`` for every cell pin (this 2019 OpenSTA
   has no ``read_vcd``/``read_saif``, and its ``set_power_activity -pins`` branch is
   broken), then ``design_power`` gives internal, switching and leakage power at the
   clock of :func:`~axhw.hw.timing.sta_preamble` and the Liberty nominal supply.

Energy per multiplication = total power (mW) × clock period (ns) = pJ.

Unsigned designs are costed inside their generated sign-magnitude wrapper
(:func:`~axhw.hw.design.signed_wrapper`), a signed design driven by the same stream as
any other; only a bare unsigned core (``Design.from_verilog(..., sign_magnitude=False)``)
is driven with the magnitudes ``|a|``, ``|b|``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import ConfigError, DataError, SynthesisError
from ..io import atomic_write_json, atomic_write_text, sha256_bytes
from ._tools import run_tool
from .design import Design
from .liberty import Liberty
from .synthesis import SynthesisResult
from .timing import run_sta, sta_preamble

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
  integer i;
  {synth.module} dut (.{p.a}(a), .{p.b}(b), .{p.y}(y));
  initial begin
    $readmemh("operands.hex", stream);
    $dumpfile("activity.vcd");
    $dumpvars(1, dut);
    for (i = 0; i < {n}; i = i + 1) begin
      {{a, b}} = stream[i];
      #{SIM_PERIOD_NS};
    end
    $finish;
  end
endmodule
"""


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
        if width == 1:
            names = [ref + index] if index else [ref]
        else:
            msb, lsb = (int(x) for x in re.match(r"\[(-?\d+):(-?\d+)\]", index).groups())
            step = -1 if msb >= lsb else 1
            names = [f"{ref}[{i}]" for i in range(msb, lsb + step, step)]
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


def _vcd_header(f, path: Path) -> tuple[float, list[tuple[str, int, str, str]]]:
    """Ticks per ns and the ``$var`` declarations (code, width, ref, index) of an open VCD, read up to
    ``$enddefinitions``."""
    header = []
    for line in f:
        header.append(line)
        if line.startswith(b"$enddefinitions"):
            break
    text = b"".join(header).decode()
    scale = re.search(r"\$timescale\s*(\d+)\s*(s|ms|us|ns|ps|fs)\s*\$end", text)
    if scale is None:
        raise SynthesisError(f"{path}: no $timescale in the VCD header")
    ticks_per_ns = 1.0 / (int(scale.group(1)) * _TIME_UNITS_NS[scale.group(2)])
    variables = [(v.group("code"), int(v.group("width")), v.group("ref"), v.group("index") or "")
                 for v in _VAR_RE.finditer(text)]
    return ticks_per_ns, variables


def _code_keys(buf: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """Each identifier code ``buf[start:end]`` (printable ASCII) as one int64, distinct for distinct codes."""
    length = end - start
    key = np.zeros(len(start), dtype=np.int64)
    for j in range(int(length.max(initial=0))):
        take = j < length
        digit = buf[np.minimum(start + j, len(buf) - 1)].astype(np.int64) - 32  # 1..94, never 0
        key = np.where(take, key * 96 + digit, key)
    return key


def _bit_value(chars: np.ndarray) -> np.ndarray:
    """VCD value characters as 0, 1, or 2 for x/z."""
    return np.where(chars == ord("0"), 0, np.where(chars == ord("1"), 1, 2)).astype(np.int8)


def _count_vcd_windows(path: Path, windows_ns: list[tuple[int, int]]) -> list[tuple[dict[str, int], dict[str, float]]]:
    """Per-bit transitions and duty in each window ``[t_start_ns, t_end_ns)`` of a VCD file.

    The same quantities as :func:`_count_vcd` (its reference) for every window at
    once, with numpy over the whole file: a net's value is taken as it stood after
    each time step (changes within one step count once), a transition between two
    of 0/1 counts in the window its time step falls in, and duty is the time at 1
    inside the window over the window's length.  Windows must be sorted and
    disjoint; events between windows move the state but count nowhere.
    """
    with path.open("rb") as f:
        ticks_per_ns, variables = _vcd_header(f, path)
        body = f.read()
    width_of: dict[str, int] = {}
    bit_names: list[str] = []
    base_of: dict[str, int] = {}
    for code, width, ref, index in variables:  # $var wire 8 ! a [7:0] $end
        if code in width_of:
            continue
        if width == 1:
            names = [ref + index] if index else [ref]
        else:
            msb, lsb = (int(x) for x in re.match(r"\[(-?\d+):(-?\d+)\]", index).groups())
            step = -1 if msb >= lsb else 1
            names = [f"{ref}[{i}]" for i in range(msb, lsb + step, step)]
        width_of[code], base_of[code] = width, len(bit_names)
        bit_names.extend(names)
    n_bits = len(bit_names)
    codes = list(width_of)
    code_buf = np.frombuffer("\n".join(codes).encode() + b"\n", dtype=np.uint8)
    code_nl = np.flatnonzero(code_buf == 10)
    declared = _code_keys(code_buf, np.r_[0, code_nl[:-1] + 1], code_nl)
    order = np.argsort(declared)
    declared_sorted = declared[order]
    widths = np.array([width_of[c] for c in codes], dtype=np.int64)[order]
    bases = np.array([base_of[c] for c in codes], dtype=np.int64)[order]

    buf = np.frombuffer(body + b"\n", dtype=np.uint8)
    nl = np.flatnonzero(buf == 10)
    start = np.r_[0, nl[:-1] + 1]
    end = nl.copy()
    for _ in range(4):  # trailing blanks and carriage returns
        trailing = (end > start) & np.isin(buf[np.maximum(end - 1, 0)], (32, 9, 13))
        if not trailing.any():
            break
        end[trailing] -= 1
    keep = end > start
    start, end = start[keep], end[keep]
    first = buf[start]
    line = np.arange(len(start))

    # time steps: block k holds the changes after the k-th "#t" line (block 0: before any)
    is_time = first == ord("#")
    t_start, t_end = start[is_time] + 1, end[is_time]
    t_len = t_end - t_start
    step_time = np.zeros(int(is_time.sum()) + 1, dtype=np.int64)
    for j in range(int(t_len.max(initial=0))):
        take = j < t_len
        step_time[1:] = np.where(take, step_time[1:] * 10 + (buf[np.minimum(t_start + j, len(buf) - 1)] - 48), step_time[1:])
    block = np.cumsum(is_time)

    # value changes: scalar "1!" (value 1 char, code after it) and vector "b0101 !" (code after a blank)
    is_scalar = np.isin(first, np.frombuffer(b"01xzXZ", dtype=np.uint8))
    is_vector = np.isin(first, np.frombuffer(b"bB", dtype=np.uint8))
    v_start = np.where(is_vector, start + 1, start)[is_scalar | is_vector]
    c_end = end[is_scalar | is_vector]
    if is_vector.any():
        sel = is_vector[is_scalar | is_vector]
        v_len = np.ones(len(v_start), dtype=np.int64)
        max_len = int((c_end - v_start)[sel].max())
        found = np.zeros(int(sel.sum()), dtype=bool)
        blank_at = np.zeros(int(sel.sum()), dtype=np.int64)
        vs = v_start[sel]
        for j in range(max_len):
            hit = ~found & (buf[np.minimum(vs + j, len(buf) - 1)] == 32)
            blank_at[hit], found[hit] = j, True
        if not found.all():
            raise SynthesisError(f"{path}: a vector value change without an identifier code")
        v_len[sel] = blank_at
        c_start = v_start + np.where(sel, v_len + 1, 1)
        while True:  # more than one blank between value and code
            extra = sel & (buf[np.minimum(c_start, len(buf) - 1)] == 32) & (c_start < c_end)
            if not extra.any():
                break
            c_start[extra] += 1
    else:
        v_len = np.ones(len(v_start), dtype=np.int64)
        c_start = v_start + 1
    keys = _code_keys(buf, c_start, c_end)
    slot = np.searchsorted(declared_sorted, keys)
    slot_ok = slot < len(declared_sorted)
    slot_ok[slot_ok] = declared_sorted[slot[slot_ok]] == keys[slot_ok]
    if not slot_ok.all():
        bad = int(np.flatnonzero(~slot_ok)[0])
        code = bytes(buf[c_start[bad]:c_end[bad]]).decode(errors="replace")
        raise SynthesisError(f"{path}: value change of undeclared identifier code {code!r}")
    ch_width, ch_base = widths[slot], bases[slot]
    ch_line = line[is_scalar | is_vector]
    # a value shorter than its variable is padded with x when it starts with x/z, else with 0
    lead = buf[v_start]
    pad = np.where(np.isin(lead, np.frombuffer(b"xXzZ", dtype=np.uint8)), 2, 0).astype(np.int8)
    is_one = ch_width == 1  # nearly every change: no padding, one event per line
    ev_bit, ev_val, ev_line = [ch_base[is_one]], [_bit_value(buf[v_start[is_one] + v_len[is_one] - 1])], [ch_line[is_one]]
    wide = np.flatnonzero(~is_one)
    for i in range(int(ch_width[wide].max(initial=0))):  # bit i of each wider change, MSB first
        rows = wide[i < ch_width[wide]]
        pos = v_len[rows] - ch_width[rows] + i
        val = _bit_value(buf[np.minimum(v_start[rows] + np.maximum(pos, 0), len(buf) - 1)])
        ev_bit.append(ch_base[rows] + i)
        ev_val.append(np.where(pos >= 0, val, pad[rows]).astype(np.int8))
        ev_line.append(ch_line[rows])
    bit, val, ev_at = np.concatenate(ev_bit), np.concatenate(ev_val), np.concatenate(ev_line)
    # by bit, then file order: each bit's changes sit in one list above, already in file order
    order = np.argsort(bit.astype(np.uint16) if n_bits <= 1 << 16 else bit, kind="stable")
    bit, val, blk = bit[order], val[order], block[ev_at[order]]
    # the value each bit holds after a time step: the last change of that step
    last = np.ones(len(bit), dtype=bool)
    last[:-1] = (bit[1:] != bit[:-1]) | (blk[1:] != blk[:-1])
    bit, val, blk = bit[last], val[last], blk[last]
    prev = np.full(len(bit), 2, dtype=np.int8)  # every bit starts unknown
    same_bit = np.zeros(len(bit), dtype=bool)
    same_bit[1:] = bit[1:] == bit[:-1]
    prev[1:] = np.where(same_bit[1:], val[:-1], 2)
    changed = val != prev
    bit, val, prev, t = bit[changed], val[changed], prev[changed], step_time[blk[changed]]

    # time at 1 in [0, T) per bit, from the running total of high intervals before each change
    same = np.zeros(len(bit), dtype=bool)
    same[1:] = bit[1:] == bit[:-1]
    dur = np.zeros(len(bit), dtype=np.int64)
    dur[:-1] = np.where(same[1:] & (val[:-1] == 1), t[1:] - t[:-1], 0)
    cum = np.cumsum(dur) - dur
    group_start = np.maximum.accumulate(np.where(~same, np.arange(len(bit)), 0))
    before = cum - cum[group_start]
    stride = int(t.max(initial=0)) + 2
    sort_key = bit * stride + t
    all_bits = np.arange(n_bits, dtype=np.int64)

    def high_until(ticks: int) -> np.ndarray:
        """Time at 1 in [0, ticks) of every bit (ticks)."""
        out = np.zeros(n_bits, dtype=np.int64)
        j = np.searchsorted(sort_key, all_bits * stride + min(ticks, stride - 1), side="right") - 1
        ok = j >= 0
        ok[ok] = bit[j[ok]] == all_bits[ok]
        jj = j[ok]
        out[ok] = before[jj] + np.where(val[jj] == 1, ticks - t[jj], 0)
        return out

    toggling = (prev != 2) & (val != 2)
    results = []
    for t0_ns, t1_ns in windows_ns:
        t0, t1 = round(t0_ns * ticks_per_ns), round(t1_ns * ticks_per_ns)
        inside = toggling & (t >= t0) & (t < t1)
        toggles = np.bincount(bit[inside], minlength=n_bits)
        high = high_until(t1) - high_until(t0)
        span = max(t1 - t0, 1)
        results.append(({name: int(toggles[i]) for i, name in enumerate(bit_names)},
                        {name: int(high[i]) / span for i, name in enumerate(bit_names)}))
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
                        streams: Sequence[np.ndarray], work: Path, *, keep_vcd: bool = False) -> list[Activity]:
    """Activity of every net for each of several operand streams, from one compiled simulation run.

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
        keep_vcd: keep ``activity.vcd`` (it is deleted by default: tens of MB per design).

    Raises:
        DataError: a bad operand stream (or none).
        SynthesisError: the simulation could not be compiled or run.
    """
    if not len(streams):
        raise DataError("no operand stream to simulate; pass at least one (N, 2) int8 array")
    checked = [check_operands(ops) for ops in streams]
    lengths = [len(ops) for ops in checked]
    n = sum(lengths)
    work.mkdir(parents=True, exist_ok=True)
    _write_stimulus(design, np.concatenate(checked), work / "operands.hex")
    atomic_write_text(work / "activity_tb.v", _bench(design, synth, n))
    run_tool(["iverilog", *(["-gspecify"] if timed else []), "-o", "activity.vvp", "-s", "axhw_activity",
              "activity_tb.v", str(synth.netlist), str(models)], work / "activity_compile.log",
             f"iverilog compiling the activity bench of {design.name}", cwd=work)
    run_tool(["vvp", "-n", "activity.vvp"], work / "activity.log", f"gate-level activity simulation of {design.name}",
             cwd=work)
    vcd = work / "activity.vcd"
    if not vcd.is_file():
        raise SynthesisError(f"activity simulation of {design.name} wrote no VCD; see {work / 'activity.log'}")
    first = np.cumsum([0, *lengths[:-1]])
    windows = [(int(f + 1) * SIM_PERIOD_NS, int(f + m) * SIM_PERIOD_NS) for f, m in zip(first, lengths)]
    counted = _count_vcd_windows(vcd, windows)
    if not keep_vcd:
        vcd.unlink()
    (work / "activity.vvp").unlink(missing_ok=True)
    activities = [Activity(toggles, duty, m - 1, timed) for (toggles, duty), m in zip(counted, lengths)]
    records = [{"cycles": a.cycles, "timed": timed, "toggles": a.toggles, "duty": a.duty} for a in activities]
    atomic_write_json(work / "activity.json", records[0] if len(records) == 1 else {"streams": records})
    return activities


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
