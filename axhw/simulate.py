"""Exhaustive simulation of a combinational 8x8 multiplier with cocotb + Icarus.

:func:`sweep` wraps ``cocotb_tools.runner.get_runner("icarus")``: it builds the
design, inside the bench's generated multi-lane top level
(:func:`axhw.rtl.bench.wrapper_source`), once per (RTL content, ports, parameters)
into a build folder under ``cache_dir()/sim/`` (re-used afterwards), runs the
generic bench :mod:`axhw.rtl.bench` and reads the products it saved.  Every simulator failure,
including the runner's ``SystemExit``, becomes a
:class:`~axhw.errors.CharacterizationError` naming the RTL file and the log.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from .errors import CharacterizationError, ToolMissingError
from .io import atomic_write_text, sha256_bytes
from .paths import cache_dir
from .records import PortSpec

__all__ = ["sweep", "build_key", "BENCH_MODULE"]

#: The cocotb test module every design is simulated with.
BENCH_MODULE = "axhw.rtl.bench"
#: Bumped when the bench or the build options change, so old builds are not reused.
_BENCH_VERSION = "2"
_TIMESCALE = ("1ns", "1ps")


def build_key(rtl_path: str | os.PathLike, ports: PortSpec) -> str:
    """Hex SHA-256 of the RTL bytes, the port spec (incl. parameters) and the bench version."""
    payload = Path(rtl_path).read_bytes() + json.dumps(ports.to_json(), sort_keys=True).encode() + _BENCH_VERSION.encode()
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


def sweep(rtl_path: str | os.PathLike, ports: PortSpec, *, check_exact: bool = False) -> np.ndarray:
    """Simulate all 65,536 operand pairs of a design and return its raw product table.

    Args:
        rtl_path: the Verilog file.
        ports: the discovered interface (:func:`axhw.discover.discover`), including
            parameter overrides.
        check_exact: also assert in the bench that every product equals ``a·b``.

    Returns:
        int32 array (256, 256): ``[a + 128, b + 128]`` for signed designs,
        ``[a, b]`` (a, b in 0..255) for unsigned ones; values as the design outputs them.

    Raises:
        ToolMissingError: Icarus Verilog is not installed.
        CharacterizationError: the build or simulation failed, an output bit was X/Z
            (the message names the first operand pair), or ``check_exact`` failed.
    """
    from cocotb_tools.check_results import get_results
    from cocotb_tools.runner import get_runner

    from .rtl.bench import TOPLEVEL, bench_env, wrapper_source

    _require_tools()
    rtl_path = Path(rtl_path).resolve()
    build_dir = cache_dir() / "sim" / build_key(rtl_path, ports)[:20]
    build_dir.mkdir(parents=True, exist_ok=True)
    wrapper = build_dir / f"{TOPLEVEL}.v"
    if not wrapper.exists():
        atomic_write_text(wrapper, wrapper_source(ports.module, ports.a, ports.b, ports.y, ports.y_width, ports.parameters))
    runner = get_runner("icarus")
    logging.getLogger(type(runner).__qualname__).setLevel(logging.ERROR)
    build_log = build_dir / "build.log"
    try:
        runner.build(sources=[rtl_path, wrapper], hdl_toplevel=TOPLEVEL, build_dir=build_dir,
                     timescale=_TIMESCALE, log_file=build_log)
    except (SystemExit, RuntimeError) as exc:
        (build_dir / "sim.vvp").unlink(missing_ok=True)
        detail = build_log.read_text().strip().splitlines()[:3] if build_log.exists() else [str(exc)]
        raise CharacterizationError(f"{rtl_path}: Icarus could not build module {ports.module}: "
                                    f"{' | '.join(detail)} (log: {build_log})") from None
    with tempfile.TemporaryDirectory(prefix="run-", dir=build_dir) as tmp:
        test_dir = Path(tmp)
        out, status_path, log = test_dir / "lut.npy", test_dir / "status.json", build_dir / "test.log"
        env = bench_env(ports.signed, str(out), str(status_path), check_exact)
        results_xml = test_dir / "results.xml"
        error = None
        try:
            runner.test(test_module=BENCH_MODULE, hdl_toplevel=TOPLEVEL, build_dir=build_dir, test_dir=test_dir,
                        extra_env=env, seed=0, results_xml=str(results_xml), log_file=log, timescale=_TIMESCALE)
        except (SystemExit, RuntimeError) as exc:
            error = exc
        status = json.loads(status_path.read_text()) if status_path.exists() else {}
        if status.get("kind") == "xz":
            raise CharacterizationError(
                f"{rtl_path}: output {ports.y} of {ports.module} is X/Z ({status['value']}) for a={status['a']}, "
                f"b={status['b']} (the first such pair); drive every bit of {ports.y} for all inputs (log: {log})")
        try:
            n_tests, n_failed = get_results(results_xml)
        except RuntimeError:
            n_tests, n_failed = 0, 1
        if error is not None or n_failed or status.get("kind") != "ok" or not out.exists():
            shutil.copy(results_xml, build_dir / "results.xml") if results_xml.exists() else None
            why = _failure_message(results_xml) or f"simulation ended abnormally ({error or 'no results'})"
            raise CharacterizationError(f"{rtl_path}: simulating {ports.module} failed: {why} (log: {log})")
        products = np.load(out, allow_pickle=False)
    if products.shape != (256, 256):
        raise CharacterizationError(f"{rtl_path}: the bench returned a table of shape {products.shape}, expected (256, 256)")
    return products.astype(np.int32)
