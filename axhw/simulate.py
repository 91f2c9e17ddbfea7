"""Exhaustive simulation of a combinational 8x8 multiplier with cocotb + Icarus.

:func:`sweep` wraps ``cocotb_tools.runner.get_runner("icarus")``: it builds the
design, inside the bench's generated multi-lane top level
(:func:`axhw.rtl.bench.wrapper_source`), once per (RTL content, ports, parameters)
into a build folder under ``cache_dir()/sim/`` (re-used afterwards), runs the
generic bench :mod:`axhw.rtl.bench` and reads the product words it saved.  Every simulator failure,
including the runner's ``SystemExit``, becomes a
:class:`~axhw.errors.CharacterizationError` naming the RTL file and the log.

The bench sweeps operand *bit patterns*; :func:`reading` turns the words into a
two's-complement or an unsigned table.  :func:`decide_signedness` compares both
readings with ``a·b`` when the ports do not declare signedness.

Every program (``iverilog``, ``vvp``) runs through :func:`axhw.subproc.run_limited`:
own process group, a time limit (``time_limit_s``), killed on timeout, Ctrl-C or
exit.  A design that never settles therefore ends in a
:class:`~axhw.errors.CharacterizationError` instead of a hung ``axhw add``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from axhw.errors import CharacterizationError, ToolMissingError
from axhw.io import atomic_write_text, sha256_bytes
from axhw.paths import cache_dir
from axhw.records import PortSpec
from axhw.subproc import DEFAULT_TIME_LIMIT_S, TimeLimitExceeded, run_limited

__all__ = ["sweep", "sweep_words", "reading", "characterize_verilog", "build_key", "decide_signedness",
           "name_hint", "SignednessDecision", "BENCH_MODULE"]

#: The cocotb test module every design is simulated with.
BENCH_MODULE = "axhw.rtl.bench"
#: Bumped when the bench or the build options change, so old builds are not reused.
_BENCH_VERSION = "3"
_TIMESCALE = ("1ns", "1ps")


def build_key(rtl_path: str | os.PathLike, ports: PortSpec) -> str:
    """Hex SHA-256 of the RTL bytes, the port spec (incl. parameters) and the bench version.

    Signedness is left out: the build and the product words do not depend on it.
    """
    spec = {**ports.to_json(), "signed": None}
    payload = Path(rtl_path).read_bytes() + json.dumps(spec, sort_keys=True).encode() + _BENCH_VERSION.encode()
    return sha256_bytes(payload)


def _require_tools() -> None:
    for tool in ("iverilog", "vvp"):
        if shutil.which(tool) is None:
            raise ToolMissingError(f"{tool} (Icarus Verilog) is not installed, so designs cannot be simulated; "
                                   "run `axhw doctor` for how to install it")


def _failure_message(results_xml: Path) -> str:
    """The first failure message of a cocotb JUnit results file ('' when none)."""
    from xml.etree import ElementTree

    try:
        root = ElementTree.parse(results_xml).getroot()
    except (OSError, ElementTree.ParseError):
        return ""
    for tag in ("failure", "error"):
        node = root.find(f".//{tag}")
        if node is not None:
            return (node.get("message") or node.text or "").strip().splitlines()[0] if (node.get("message") or node.text) else ""
    return ""


def _runner(time_limit_s: float):
    """cocotb's Icarus runner, with every command run by :func:`run_limited`."""
    from cocotb_tools.runner import Icarus

    class _LimitedIcarus(Icarus):
        def _execute_cmds(self, cmds, cwd, stdout=None) -> None:
            for cmd in cmds:
                err = None if stdout is None else subprocess.STDOUT
                result = run_limited(cmd, cwd=cwd, env=self.env, stdout=stdout, stderr=err, timeout_s=time_limit_s)
                if result.returncode != 0:
                    raise RuntimeError(f"Command failed with return code: {result.returncode}")

    runner = _LimitedIcarus()
    logging.getLogger(type(runner).__qualname__).setLevel(logging.ERROR)
    logging.getLogger(Icarus.__qualname__).setLevel(logging.ERROR)
    return runner


def _pair(status: dict) -> str:
    return f"a={status['a']}, b={status['b']}"


def sweep_words(rtl_path: str | os.PathLike, ports: PortSpec, *, signed: bool | None = None,
                check_exact: bool = False, time_limit_s: float | None = None) -> np.ndarray:
    """Simulate all 65,536 operand bit patterns of a design and return its product words.

    Args:
        rtl_path: the Verilog file.
        ports: the discovered interface (:func:`axhw.discover.discover`), including
            parameter overrides; ``ports.signed`` is not used.
        signed: how to print operands in messages and read products for ``check_exact``;
            ``None`` while undecided (operands are then printed as bit patterns 0..255).
        check_exact: also assert in the bench that every product equals ``a·b``
            (needs ``signed``).
        time_limit_s: wall-clock limit (s) for the build and for the simulation, each;
            ``None`` is :data:`axhw.subproc.DEFAULT_TIME_LIMIT_S`.

    Returns:
        int64 array (256, 256), ``words[x, y]``: the product output as an unsigned
        ``ports.y_width``-bit word for operand bit patterns ``x``, ``y`` in 0..255.

    Raises:
        ToolMissingError: Icarus Verilog is not installed.
        CharacterizationError: the build or simulation failed or ran past the time
            limit, an output bit was X/Z, the product depends on the order operands
            are applied (state: a latch or feedback), or ``check_exact`` failed; the
            message names the first operand pair.
    """
    from cocotb_tools.check_results import get_results

    from axhw.rtl.bench import TOPLEVEL, bench_env, wrapper_source

    _require_tools()
    limit = DEFAULT_TIME_LIMIT_S if time_limit_s is None else float(time_limit_s)
    rtl_path = Path(rtl_path).resolve()
    build_dir = cache_dir() / "sim" / build_key(rtl_path, ports)[:20]
    build_dir.mkdir(parents=True, exist_ok=True)
    wrapper = build_dir / f"{TOPLEVEL}.v"
    if not wrapper.exists():
        atomic_write_text(wrapper, wrapper_source(ports.module, ports.a, ports.b, ports.y, ports.y_width, ports.parameters))
    runner = _runner(limit)
    build_log = build_dir / "build.log"
    more = f"; if the design is just slow, raise the limit with --time-limit SECONDS (now {limit:g})"
    try:
        runner.build(sources=[rtl_path, wrapper], hdl_toplevel=TOPLEVEL, build_dir=build_dir,
                     timescale=_TIMESCALE, log_file=build_log)
    except TimeLimitExceeded:
        (build_dir / "sim.vvp").unlink(missing_ok=True)
        raise CharacterizationError(f"{rtl_path}: Icarus did not finish building module {ports.module} within "
                                    f"{limit:g} s and was stopped{more}") from None
    except (SystemExit, RuntimeError) as exc:
        (build_dir / "sim.vvp").unlink(missing_ok=True)
        detail = build_log.read_text(errors="replace").strip().splitlines()[:3] if build_log.exists() else [str(exc)]
        raise CharacterizationError(f"{rtl_path}: Icarus could not build module {ports.module}: "
                                    f"{' | '.join(detail)} (log: {build_log})") from None
    with tempfile.TemporaryDirectory(prefix="run-", dir=build_dir) as tmp:
        test_dir = Path(tmp)
        out, status_path, log = test_dir / "lut.npy", test_dir / "status.json", build_dir / "test.log"
        env = bench_env(signed, str(out), str(status_path), check_exact)
        results_xml = test_dir / "results.xml"
        error = None
        try:
            runner.test(test_module=BENCH_MODULE, hdl_toplevel=TOPLEVEL, build_dir=build_dir, test_dir=test_dir,
                        extra_env=env, seed=0, results_xml=str(results_xml), log_file=log, timescale=_TIMESCALE)
        except TimeLimitExceeded:
            raise CharacterizationError(
                f"{rtl_path}: simulating {ports.module} did not finish within {limit:g} s and was stopped: a design "
                f"that never settles (e.g. a loop or a feedback path in an always block) or a very large one"
                f"{more} (log: {log})") from None
        except (SystemExit, RuntimeError) as exc:
            error = exc
        status = json.loads(status_path.read_text()) if status_path.exists() else {}
        kind = status.get("kind")
        if kind == "xz":
            raise CharacterizationError(
                f"{rtl_path}: output {ports.y} of {ports.module} is X/Z ({status['value']}) for {_pair(status)} "
                f"(the first such pair{', found when re-applying operands in another order' if status.get('sweep') == 'second' else ''}); "
                f"drive every bit of {ports.y} for all inputs (log: {log})")
        if kind == "order":
            raise CharacterizationError(
                f"{rtl_path}: combinational designs only: the output {ports.y} of {ports.module} depends on the order "
                f"operands are applied ({_pair(status)} gave {status['first']} in table order and {status['second']} "
                f"in another order), so the design holds state (a latch or a feedback path); assign {ports.y} "
                f"from a and b alone on every path")
        if kind == "exact":
            raise CharacterizationError(f"{rtl_path}: {ports.module} is not exact: {status['a']} * {status['b']}: "
                                        f"got {status['got']}, want {status['want']}")
        try:
            n_tests, n_failed = get_results(results_xml)
        except RuntimeError:
            n_tests, n_failed = 0, 1
        if error is not None or n_failed or kind != "ok" or not out.exists():
            shutil.copy(results_xml, build_dir / "results.xml") if results_xml.exists() else None
            why = _failure_message(results_xml) or f"simulation ended abnormally ({error or 'no results'})"
            raise CharacterizationError(f"{rtl_path}: simulating {ports.module} failed: {why} (log: {log})")
        words = np.load(out, allow_pickle=False)
    if words.shape != (256, 256):
        raise CharacterizationError(f"{rtl_path}: the bench returned a table of shape {words.shape}, expected (256, 256)")
    return words.astype(np.int64)


def reading(words: np.ndarray, signed: bool, y_width: int) -> np.ndarray:
    """A product table under one reading of the operand and product bits.

    Args:
        words: int64 (256, 256) product words by operand bit pattern (:func:`sweep_words`).
        signed: ``True``: operands and product are two's complement, table indexed
            ``[a + 128, b + 128]``; ``False``: unsigned, indexed ``[a, b]``.
        y_width: product width (bits); a signed product is sign-extended from it.

    Returns:
        int32 (256, 256) table.
    """
    words = np.asarray(words, dtype=np.int64)
    if not signed:
        return words.astype(np.int32)
    order = np.arange(-128, 128) & 0xFF
    table = words[np.ix_(order, order)]
    table = np.where(table >= 1 << (y_width - 1), table - (1 << y_width), table)
    return table.astype(np.int32)


def sweep(rtl_path: str | os.PathLike, ports: PortSpec, *, check_exact: bool = False,
          time_limit_s: float | None = None) -> np.ndarray:
    """Simulate all 65,536 operand pairs of a design and return its raw product table.

    Args:
        rtl_path: the Verilog file.
        ports: the discovered interface (:func:`axhw.discover.discover`), including
            parameter overrides and signedness.
        check_exact: also assert in the bench that every product equals ``a·b``.
        time_limit_s: limit (s) of each external run (see :func:`sweep_words`).

    Returns:
        int32 array (256, 256): ``[a + 128, b + 128]`` for signed designs,
        ``[a, b]`` (a, b in 0..255) for unsigned ones; values as the design outputs them.

    Raises:
        ToolMissingError: Icarus Verilog is not installed.
        CharacterizationError: see :func:`sweep_words`.
    """
    words = sweep_words(rtl_path, ports, signed=ports.signed, check_exact=check_exact, time_limit_s=time_limit_s)
    return reading(words, ports.signed, ports.y_width)


# --------------------------------------------------------------------------- signedness from evidence

#: A reading is kept when its relative error is at most this fraction of the other's ...
_CLEAR_RATIO = 0.25
#: ... and at most this much itself (normalized MAE over the pairs where the readings differ).
_CLEAR_ERROR = 0.5
_NAME_HINT = re.compile(r"(?:^|[_\W])mul\d+([su])(?:_|$)", re.I)


@dataclass(frozen=True)
class SignednessDecision:
    """Which reading of a design's operands was taken, and why.

    Attributes:
        signed: ``True`` two's complement, ``False`` unsigned, ``None`` undecided.
        reason: one sentence a user can check.
        error_signed, error_unsigned: normalized MAE (``sum|approx - a·b| / sum|a·b|``)
            of each reading over the operand pairs where the readings differ
            (at least one operand with its top bit set); ``None`` when not measured.
    """

    signed: bool | None
    reason: str
    error_signed: float | None = None
    error_unsigned: float | None = None

    @property
    def short(self) -> str:
        """A few words for a summary table, e.g. ``signed (tables: 0 vs 2.1)``."""
        if self.signed is None:
            return "undecided"
        word = "signed" if self.signed else "unsigned"
        if self.error_signed is not None and self.error_unsigned is not None:
            mine, other = (self.error_signed, self.error_unsigned) if self.signed else (self.error_unsigned, self.error_signed)
            return f"{word} (tables: error {mine:.2g} vs {other:.2g})"
        return f"{word} ({self.reason.split(': ', 1)[-1]})"

    def to_json(self) -> dict:
        return {**dataclasses.asdict(self), "short": self.short}


def _normalized_error(table: np.ndarray, signed: bool) -> float:
    values = np.arange(-128, 128) if signed else np.arange(256)
    exact = np.multiply.outer(values, values).astype(np.int64)
    top = values < 0 if signed else values >= 128
    mask = top[:, None] | top[None, :]
    err = np.abs(table.astype(np.int64) - exact)[mask].sum()
    return float(err / max(np.abs(exact[mask]).sum(), 1))


def name_hint(name: str) -> bool | None:
    """``True``/``False`` when ``name`` follows EvoApproxLib's ``mul8s_``/``mul8u_`` pattern, else ``None``."""
    match = _NAME_HINT.search(name)
    return None if match is None else match.group(1).lower() == "s"


def decide_signedness(signed_table: np.ndarray, unsigned_table: np.ndarray, names: tuple[str, ...] = (),
                      what: str = "the ports do not declare signedness") -> SignednessDecision:
    """Keep the reading of a design's bits that is consistent with multiplication.

    Each reading is compared with ``a·b`` over the pairs where the readings differ
    (an operand with its top bit set).  A reading is kept when its normalized error
    is at most 0.25 times the other's and at most 0.5; otherwise the decision is
    ``None`` (the caller asks for ``--signed``/``--unsigned``).  A name like
    ``mul8s_…``/``mul8u_…`` in ``names`` is reported as agreeing or disagreeing,
    never used to decide.

    Args:
        signed_table: int (256, 256) table under the two's-complement reading, ``[a + 128, b + 128]``.
        unsigned_table: int (256, 256) table under the unsigned reading, ``[a, b]``.
        names: file stem, module or function names to look for a signedness hint in.
        what: why evidence is needed (starts the reason).
    """
    es, eu = _normalized_error(signed_table, True), _normalized_error(unsigned_table, False)
    hints = {h for h in map(name_hint, names) if h is not None}
    hint = hints.pop() if len(hints) == 1 else None
    figures = (f"relative error against a·b over pairs with a negative (or >= 128) operand: "
               f"{es:.3g} read as two's complement, {eu:.3g} read as unsigned")
    if es <= _CLEAR_RATIO * eu and es <= _CLEAR_ERROR:
        signed = True
    elif eu <= _CLEAR_RATIO * es and eu <= _CLEAR_ERROR:
        signed = False
    else:
        note = f"; the name suggests {'signed' if hint else 'unsigned'}, which alone is not proof" if hint is not None else ""
        return SignednessDecision(None, f"{what} and neither reading is clearly a multiplication ({figures}){note}", es, eu)
    taken = "two's complement" if signed else "unsigned"
    note = "; both readings are exact products, so either gives the same signed table" if es == eu == 0 else ""
    if hint is not None:
        note += "; the name agrees" if hint == signed else f"; the name suggests {'signed' if hint else 'unsigned'}, but the tables decide"
    return SignednessDecision(signed, f"read as {taken}: {what}; {figures}{note}", es, eu)


def _require_exact(rtl_path: Path, ports: PortSpec, table: np.ndarray) -> None:
    values = np.arange(-128, 128) if ports.signed else np.arange(256)
    wrong = np.argwhere(table.astype(np.int64) != np.multiply.outer(values, values))
    if wrong.size:
        i, j = wrong[0]
        a, b = int(values[i]), int(values[j])
        raise CharacterizationError(f"{rtl_path}: {ports.module} is not exact: {a} * {b}: got {int(table[i, j])}, want {a * b}")


def characterize_verilog(path: str | os.PathLike, *, top: str | None = None, a: str | None = None,
                         b: str | None = None, y: str | None = None, signed: bool | None = None,
                         parameters: dict[str, int] | None = None, check_exact: bool = False,
                         time_limit_s: float | None = None) -> tuple[np.ndarray, PortSpec, SignednessDecision]:
    """Discover, prove combinational, simulate, and decide signedness of one Verilog design.

    Args:
        path: the Verilog file.
        top, a, b, y, signed, parameters: as for :func:`axhw.discover.discover`.
        check_exact: require every product to equal ``a·b`` (exact designs).
        time_limit_s: limit (s) of each external run.

    Returns:
        ``(raw, ports, decision)``: the int32 table in the chosen reading (see
        :func:`sweep`), the ports with ``signed`` decided, and the decision with its reason.

    Raises:
        CharacterizationError: signedness is neither declared nor clear from the
            tables (the message asks for ``--signed`` or ``--unsigned``), or any
            failure of :func:`sweep_words`.
        VerilogError: discovery failed, or the design has a latch or a logic loop.
    """
    from axhw.discover import check_combinational, discover_declared

    path = Path(path).resolve()
    ports, why = discover_declared(path, top=top, a=a, b=b, y=y, signed=signed, parameters=parameters)
    check_combinational(path, ports, time_limit_s)
    words = sweep_words(path, ports, signed=ports.signed if why else None,
                        check_exact=check_exact and why is not None, time_limit_s=time_limit_s)
    if why is not None:
        decision = SignednessDecision(ports.signed, f"read as {'two' + chr(39) + 's complement' if ports.signed else 'unsigned'}: {why}")
    else:
        decision = decide_signedness(reading(words, True, ports.y_width), reading(words, False, ports.y_width),
                                     names=(path.stem, ports.module))
        if decision.signed is None:
            raise CharacterizationError(f"{path}: cannot tell whether {ports.module} multiplies signed or unsigned "
                                        f"operands: {decision.reason}; say which with --signed or --unsigned")
        ports = dataclasses.replace(ports, signed=decision.signed)
    raw = reading(words, ports.signed, ports.y_width)
    if check_exact:
        _require_exact(path, ports, raw)
    return raw, ports, decision
