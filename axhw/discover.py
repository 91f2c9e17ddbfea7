"""Find the multiplier in a Verilog file: its module, operand and product ports.

The file is preprocessed by ``iverilog -E`` and parsed by pyverilog (its parser
tables are cached under :func:`axhw.paths.cache_dir`, never in the working
directory).  Discovery then picks

* the top module: ``top`` if given, else the one module no other module of the
  file instantiates;
* the operands: the two 8-bit inputs (names ``a``/``b`` are preferred when there
  are more candidates), overridable with ``a=``/``b=``;
* the product: the one output at least 16 bits wide (``y``, ``p``, ``prod``,
  ``product``, ``out``, ``z`` are preferred), overridable with ``y=``;
* signedness: ``True`` when both operand ports are declared ``signed``; when they
  are not, :func:`discover_declared` reports it as undeclared and the caller
  decides from simulation (:func:`axhw.simulate.decide_signedness`).

:func:`check_combinational` asks yosys (``proc``) whether any signal is kept in a
latch and whether the logic has a loop, and names the file and line.

Overrides may also live in a sidecar file next to the design, ``<stem>.ports.json``
(e.g. ``mul.ports.json`` for ``mul.v``) with any of the keys ``top``, ``a``, ``b``,
``y``, ``signed``, ``parameters``; explicit arguments win over the sidecar.

Every unsupported design raises :class:`~axhw.errors.VerilogError` naming the file
(and line where there is one) and what was expected.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping

from axhw.errors import ToolMissingError, VerilogError
from axhw.exact import OPERAND_BITS
from axhw.paths import cache_dir
from axhw.records import PortSpec
from axhw.subproc import TimeLimitExceeded, run_limited

__all__ = ["discover", "discover_declared", "check_combinational", "read_sidecar", "parse_modules", "ModuleInfo", "PortInfo", "SIDECAR_SUFFIX"]

#: Suffix of the optional port-override file next to a design (``mul.v`` -> ``mul.ports.json``).
SIDECAR_SUFFIX = ".ports.json"
_SIDECAR_KEYS = {"top", "a", "b", "y", "signed", "parameters"}
_MAX_PRODUCT_BITS = 32  # tables are int32
_PRODUCT_NAMES = ("y", "p", "prod", "product", "out", "z", "result", "o")
_OPERAND_NAMES = (("a", "b"), ("x", "y"), ("in1", "in2"), ("a_i", "b_i"), ("op1", "op2"))


@dataclass(frozen=True)
class PortInfo:
    """One port of a module: direction (``input``/``output``/``inout``), width in bits."""

    name: str
    direction: str
    width: int | None
    signed: bool
    lineno: int
    width_text: str = ""

    def describe(self) -> str:
        """The port as Verilog would write it, e.g. ``a[15:0]``."""
        return f"{self.name}{self.width_text}"


@dataclass(frozen=True)
class ModuleInfo:
    """What discovery needs from one parsed module."""

    name: str
    lineno: int
    ports: tuple[PortInfo, ...]
    parameters: dict[str, int | None]  # None: a default this module's evaluator cannot compute
    instantiates: frozenset[str]
    clocked: tuple[tuple[int, str], ...] = field(default=())


def _tool(name: str) -> str:
    exe = shutil.which(name)
    if exe is None:
        raise ToolMissingError(f"{name} is not installed (needed to read Verilog); run `axhw doctor` for how to install it")
    return exe


@functools.lru_cache(maxsize=1)
def _parser():
    """The pyverilog LALR parser, with its tables written to the axhw cache folder."""
    from pyverilog.vparser.parser import VerilogParser

    outdir = cache_dir() / "pyverilog"
    outdir.mkdir(parents=True, exist_ok=True)
    return VerilogParser(outputdir=str(outdir), debug=False)


def _preprocess(path: Path, include_dirs: tuple[Path, ...] = ()) -> str:
    iverilog = _tool("iverilog")
    with tempfile.TemporaryDirectory(prefix="axhw-pp-") as tmp:
        out = Path(tmp) / "pp.v"
        cmd = [iverilog, "-E", "-o", str(out), *(f"-I{d}" for d in (path.parent, *include_dirs)), str(path)]
        try:
            proc = run_limited(cmd)
        except TimeLimitExceeded as exc:
            raise VerilogError(f"{path}: preprocessing did not finish within {exc.timeout_s:g} s (an include loop?)") from None
        if proc.returncode != 0 or not out.exists():
            detail = (proc.stderr or proc.stdout).strip() or f"iverilog -E exited with status {proc.returncode}"
            raise VerilogError(f"{path}: preprocessing failed: {detail}")
        # a Latin-1 (or any non-UTF-8) byte in a comment must not stop discovery
        return out.read_bytes().decode("utf-8", errors="replace")


def _int_literal(text: str, where: str) -> int:
    text = text.replace("_", "").strip()
    match = re.fullmatch(r"(\d*)\s*'\s*[sS]?([bBoOdDhH])\s*([0-9a-fA-F]+)", text)
    if match:
        return int(match.group(3), {"b": 2, "o": 8, "d": 10, "h": 16}[match.group(2).lower()])
    if re.fullmatch(r"\d+", text):
        return int(text)
    raise VerilogError(f"{where}: cannot evaluate constant {text!r} (x/z digits or an unsupported literal)")


def _evaluate(node: Any, params: Mapping[str, int | None], where: str) -> int:
    """Evaluate a constant expression of parameters (for port widths and parameter values)."""
    from pyverilog.vparser import ast

    binary = {
        ast.Plus: lambda x, y: x + y, ast.Minus: lambda x, y: x - y, ast.Times: lambda x, y: x * y,
        ast.Divide: lambda x, y: x // y, ast.Mod: lambda x, y: x % y, ast.Power: lambda x, y: x**y,
        ast.Sll: lambda x, y: x << y, ast.Srl: lambda x, y: x >> y,
    }
    if isinstance(node, ast.IntConst):
        return _int_literal(node.value, where)
    if isinstance(node, ast.Identifier):
        if node.name not in params:
            raise VerilogError(f"{where}: width or parameter uses {node.name!r}, which is not a parameter of the module")
        if params[node.name] is None:
            raise VerilogError(f"{where}: cannot evaluate parameter {node.name!r} (only integer arithmetic on parameters is supported in port widths)")
        return params[node.name]
    if isinstance(node, ast.Uminus):
        return -_evaluate(node.right, params, where)
    if isinstance(node, ast.Cond):
        cond = _evaluate(node.cond, params, where)
        return _evaluate(node.true_value if cond else node.false_value, params, where)
    op = binary.get(type(node))
    if op is not None:
        return op(_evaluate(node.left, params, where), _evaluate(node.right, params, where))
    raise VerilogError(f"{where}: cannot evaluate the constant expression {type(node).__name__} (line {getattr(node, 'lineno', '?')})")


def _walk(node: Any) -> Iterator[Any]:
    yield node
    for child in node.children():
        if child is not None:
            yield from _walk(child)


def _module_info(path: Path, mod: Any, overrides: Mapping[str, int]) -> ModuleInfo:
    from pyverilog.vparser import ast

    where = f"{path}:{mod.lineno}"
    # Parameters and localparams, for evaluating port widths.  A value this evaluator
    # cannot compute (e.g. a constant function call) is None: fine unless a width uses it.
    params: dict[str, int | None] = {}
    overridable: dict[str, int] = {}
    for p in (n for n in _walk(mod) if isinstance(n, ast.Parameter)):
        is_local = isinstance(p, ast.Localparam)
        if p.name in overrides and not is_local:
            params[p.name] = int(overrides[p.name])
        else:
            try:
                params[p.name] = _evaluate(p.value.var, params, f"{path}:{p.lineno}")
            except VerilogError:
                params[p.name] = None
        if not is_local and params[p.name] is not None:
            overridable[p.name] = params[p.name]
        elif not is_local:
            overridable[p.name] = None  # type: ignore[assignment]
    # Width of each declared signal; ports may be declared ANSI (Ioport) or in the body (Decl).
    declared: dict[str, dict[str, Any]] = {}
    for node in _walk(mod):
        if isinstance(node, ast.Ioport):
            parts = [node.first] + ([node.second] if node.second is not None else [])
        elif isinstance(node, (ast.Input, ast.Output, ast.Inout, ast.Wire, ast.Reg)):
            parts = [node]
        else:
            continue
        for var in parts:
            info = declared.setdefault(var.name, {"direction": None, "signed": False, "width": None, "lineno": var.lineno})
            if isinstance(var, (ast.Input, ast.Output, ast.Inout)):
                info["direction"] = {ast.Input: "input", ast.Output: "output", ast.Inout: "inout"}[type(var)]
                info["lineno"] = var.lineno
            info["signed"] = info["signed"] or bool(var.signed)
            if var.width is not None and info["width"] is None:
                info["width"] = var.width
    port_order = [p.first.name if isinstance(p, ast.Ioport) else p.name for p in (mod.portlist.ports if mod.portlist else ())]
    ports = []
    for name in port_order:
        info = declared.get(name, {"direction": None, "signed": False, "width": None, "lineno": mod.lineno})
        if info["width"] is None:
            width, text = 1, ""
        else:
            msb = _evaluate(info["width"].msb, params, f"{path}:{info['lineno']}")
            lsb = _evaluate(info["width"].lsb, params, f"{path}:{info['lineno']}")
            width, text = abs(msb - lsb) + 1, f"[{msb}:{lsb}]"
        ports.append(PortInfo(name, info["direction"] or "unknown", width, info["signed"], info["lineno"], text))
    instantiates = frozenset(n.module for n in _walk(mod) if isinstance(n, ast.InstanceList))
    clocked = []
    for node in _walk(mod):
        if isinstance(node, ast.Always) and node.sens_list is not None:
            edges = [s for s in node.sens_list.list if s.type in ("posedge", "negedge")]
            if edges or isinstance(node, (ast.AlwaysFF, ast.AlwaysLatch)):
                label = ", ".join(f"{s.type} {getattr(s.sig, 'name', s.sig)}" for s in edges) or type(node).__name__
                clocked.append((node.lineno, f"always @({label})"))
    return ModuleInfo(mod.name, mod.lineno, tuple(ports), overridable, instantiates, tuple(clocked))


def parse_modules(path: str | os.PathLike, parameters: Mapping[str, int] | None = None) -> list[ModuleInfo]:
    """Parse a Verilog file and describe each module in it.

    Args:
        path: the ``.v`` file.
        parameters: parameter overrides applied to every module that declares them.

    Raises:
        VerilogError: missing file, preprocessing or syntax error (``file:line``).
        ToolMissingError: ``iverilog`` is not installed.
    """
    from pyverilog.vparser import ast
    from pyverilog.vparser.parser import ParseError

    path = Path(path)
    if not path.is_file():
        raise VerilogError(f"{path}: no such Verilog file")
    text = _preprocess(path)
    if not re.search(r"\b(?:module|macromodule)\b", text):
        raise VerilogError(f"{path}: no module found; expected one `module ... endmodule` describing the multiplier")
    parser = _parser()
    parser.lexer.filename = str(path)
    try:
        tree = parser.parse(text, debug=0)
    except ParseError as exc:
        match = re.search(r"line:(\d+)(?:.*?):\s*(.*)$", str(exc))
        line, detail = (match.group(1), match.group(2)) if match else ("?", str(exc))
        raise VerilogError(f"{path}:{line}: syntax error {detail}".rstrip()) from None
    finally:
        _reset_parser(parser)
    modules = [d for d in tree.description.definitions if isinstance(d, ast.ModuleDef)]
    return [_module_info(path, m, parameters or {}) for m in modules]


def _reset_parser(parser: Any) -> None:
    """Clear lexer state so that line numbers of the next file start at 1."""
    parser.lexer.reset_lineno()


def read_sidecar(path: str | os.PathLike) -> dict[str, Any]:
    """Port overrides from ``<stem>.ports.json`` beside ``path`` (``{}`` when absent)."""
    path = Path(path)
    sidecar = path.with_name(path.stem + SIDECAR_SUFFIX)
    if not sidecar.is_file():
        return {}
    try:
        data = json.loads(sidecar.read_text())
    except json.JSONDecodeError as exc:
        raise VerilogError(f"{sidecar}:{exc.lineno}: invalid JSON in port sidecar: {exc.msg}") from None
    if not isinstance(data, dict) or set(data) - _SIDECAR_KEYS:
        unknown = sorted(set(data) - _SIDECAR_KEYS) if isinstance(data, dict) else "not an object"
        raise VerilogError(f"{sidecar}: expected a JSON object with keys among {sorted(_SIDECAR_KEYS)}; got {unknown}")
    return data


def _pick_top(path: Path, modules: list[ModuleInfo], top: str | None) -> ModuleInfo:
    by_name = {m.name: m for m in modules}
    if not modules:
        raise VerilogError(f"{path}: no module found; expected one `module ... endmodule` describing the multiplier")
    if top is not None:
        if top not in by_name:
            raise VerilogError(f"{path}: no module named {top!r}; modules in the file: {', '.join(by_name)}")
        return by_name[top]
    used = set().union(*(m.instantiates for m in modules))
    roots = [m for m in modules if m.name not in used]
    if len(roots) != 1:
        names = ", ".join(m.name for m in (roots or modules))
        raise VerilogError(f"{path}: several top-level modules ({names}); choose one with --top NAME "
                           f"(or \"top\" in {path.stem}{SIDECAR_SUFFIX})")
    return roots[0]


def _pick(path: Path, mod: ModuleInfo, role: str, candidates: list[PortInfo], name: str | None,
          preferred: tuple[str, ...]) -> PortInfo:
    ports = {p.name: p for p in mod.ports}
    if name is not None:
        if name not in ports:
            raise VerilogError(f"{path}:{mod.lineno}: module {mod.name} has no port {name!r} (given as {role}); "
                               f"ports: {', '.join(p.describe() for p in mod.ports)}")
        return ports[name]
    for pref in preferred:
        match = [p for p in candidates if p.name.lower() == pref]
        if match:
            return match[0]
    if len(candidates) == 1:
        return candidates[0]
    raise VerilogError(f"{path}:{mod.lineno}: cannot tell which port of {mod.name} is the {role} among "
                       f"{', '.join(p.describe() for p in candidates)}; name it with --{role} PORT")


def _pick_operands(path: Path, mod: ModuleInfo, inputs: list[PortInfo], a: str | None,
                   b: str | None) -> tuple[PortInfo, PortInfo]:
    """The two operand ports: named ones, else the two 8-bit inputs (a/b-like names first)."""
    eight = [p for p in inputs if p.width == OPERAND_BITS]
    if a is None and b is None and len(eight) > 2:
        lowered = {p.name.lower(): p.name for p in eight}
        pair = next(((lowered[x], lowered[z]) for x, z in _OPERAND_NAMES if x in lowered and z in lowered), None)
        if pair is None:
            raise VerilogError(f"{path}:{mod.lineno}: module {mod.name} has more than two 8-bit inputs "
                               f"({', '.join(p.name for p in eight)}); name the operands with --a and --b")
        a, b = pair
    if a is None or b is None:
        pool = [p.name for p in (eight if len(eight) >= 2 else inputs) if p.name not in (a, b)]
        if len(pool) + (a is not None) + (b is not None) < 2:
            found = ", ".join(p.describe() for p in inputs) or "none"
            raise VerilogError(f"{path}:{mod.lineno}: only 8-bit operands are supported: module {mod.name} needs two "
                               f"{OPERAND_BITS}-bit inputs; found inputs {found}")
        a = a or pool.pop(0)
        b = b or next(n for n in pool if n != a)
    pa, pb = _pick(path, mod, "a", inputs, a, ()), _pick(path, mod, "b", inputs, b, ())
    for port in (pa, pb):
        if port.direction != "input":
            raise VerilogError(f"{path}:{port.lineno}: operand {port.name} of {mod.name} must be an input, it is {port.direction}")
        if port.width != OPERAND_BITS:
            raise VerilogError(f"{path}:{port.lineno}: only {OPERAND_BITS}-bit operands are supported: found {port.describe()}")
    if pa.name == pb.name:
        raise VerilogError(f"{path}:{mod.lineno}: operands a and b are both {pa.name}; name two different ports")
    return pa, pb


def discover(
    path: str | os.PathLike,
    *,
    top: str | None = None,
    a: str | None = None,
    b: str | None = None,
    y: str | None = None,
    signed: bool | None = None,
    parameters: Mapping[str, int] | None = None,
) -> PortSpec:
    """Find the multiplier's module and ports in a Verilog file.

    Args:
        path: the ``.v`` file.
        top: module name; ``None`` picks the one module no other module instantiates.
        a, b, y: operand and product port names; ``None`` infers them.
        signed: force two's-complement (``True``) or unsigned (``False``) operands;
            ``None`` infers ``True`` iff both operand ports are declared ``signed``
            (see :func:`discover_declared` to tell "undeclared" from "unsigned").
        parameters: Verilog parameter overrides (name -> integer value).

    Returns:
        The :class:`~axhw.records.PortSpec` with widths in bits; its ``parameters`` are
        every module parameter's effective value (defaults with the overrides applied).

    Raises:
        VerilogError: syntax error, no/several modules, unsupported ports, sequential design.
        ToolMissingError: ``iverilog`` is not installed.
    """
    return discover_declared(path, top=top, a=a, b=b, y=y, signed=signed, parameters=parameters)[0]


def discover_declared(
    path: str | os.PathLike,
    *,
    top: str | None = None,
    a: str | None = None,
    b: str | None = None,
    y: str | None = None,
    signed: bool | None = None,
    parameters: Mapping[str, int] | None = None,
) -> tuple[PortSpec, str | None]:
    """:func:`discover`, plus where the signedness came from.

    Returns:
        ``(ports, why)``: ``why`` says how signedness was fixed (the ``signed``
        argument, the sidecar, or ``signed`` on both operand ports); ``None`` when
        nothing declares it, and ``ports.signed`` is then only a placeholder
        (``False``) for the caller to decide from evidence.
    """
    path = Path(path)
    side = read_sidecar(path)
    top = top if top is not None else side.get("top")
    a = a if a is not None else side.get("a")
    b = b if b is not None else side.get("b")
    y = y if y is not None else side.get("y")
    why = None
    if signed is not None:
        why = f"given as {'--signed' if signed else '--unsigned'}"
    elif side.get("signed") is not None:
        signed = bool(side["signed"])
        why = f"\"signed\": {str(signed).lower()} in {path.stem}{SIDECAR_SUFFIX}"
    params = {**side.get("parameters", {}), **(parameters or {})}
    modules = parse_modules(path, params)
    mod = _pick_top(path, modules, top)
    unknown = sorted(set(params) - set(mod.parameters))
    if unknown:
        have = ", ".join(f"{k}={v}" for k, v in mod.parameters.items()) or "none"
        raise VerilogError(f"{path}:{mod.lineno}: module {mod.name} has no parameter {', '.join(unknown)}; its parameters: {have}")
    if mod.clocked:
        line, text = mod.clocked[0]
        raise VerilogError(f"{path}:{line}: combinational designs only: module {mod.name} has a clocked block `{text}`; "
                           "characterize the combinational multiplier core (remove the registers or pass its module with --top)")
    inputs = [p for p in mod.ports if p.direction == "input"]
    outputs = [p for p in mod.ports if p.direction == "output"]
    pa, pb = _pick_operands(path, mod, inputs, a, b)
    need = pa.width + pb.width
    if not outputs:
        raise VerilogError(f"{path}:{mod.lineno}: module {mod.name} has no output port; expected a {need}-bit product")
    wide = [p for p in outputs if p.width >= need]
    py = _pick(path, mod, "y", wide or outputs, y, _PRODUCT_NAMES)
    if py.direction != "output":
        raise VerilogError(f"{path}:{py.lineno}: product {py.name} of {mod.name} must be an output, it is {py.direction}")
    if py.width < need:
        raise VerilogError(f"{path}:{py.lineno}: output {py.describe()} is {py.width} bits, narrower than needed: "
                           f"an {pa.width}x{pb.width} multiplier needs a {need}-bit product")
    if py.width > _MAX_PRODUCT_BITS:
        raise VerilogError(f"{path}:{py.lineno}: output {py.describe()} is {py.width} bits; products of at most "
                           f"{_MAX_PRODUCT_BITS} bits are supported (name the {need}-bit product with --y)")
    others = [p for p in inputs if p.name not in (pa.name, pb.name)]
    if others:
        raise VerilogError(f"{path}:{mod.lineno}: module {mod.name} has inputs besides the operands "
                           f"({', '.join(p.describe() for p in others)}); combinational two-operand multipliers only")
    if signed is None and pa.signed and pb.signed:
        signed, why = True, f"operand ports {pa.name} and {pb.name} are declared signed"
    ports = PortSpec(module=mod.name, a=pa.name, b=pb.name, y=py.name, a_width=pa.width, b_width=pb.width,
                     y_width=py.width, signed=bool(signed),
                     parameters={k: v for k, v in sorted(mod.parameters.items()) if v is not None})
    return ports, why


_LATCH = re.compile(r"Latch inferred for signal `\\?([^']*)' from process `[^$]*\$proc\$([^:]*):(\d+)")
_LOOP = re.compile(r"found logic loop", re.I)
_LOOP_CELL = re.compile(r"^\s*cell \$(\w+)\$[^$]*?:(\d+)\$")


def check_combinational(path: str | os.PathLike, ports: PortSpec, time_limit_s: float | None = None) -> bool:
    """Reject a design whose logic keeps state: an inferred latch or a combinational loop.

    Runs ``yosys`` (``read_verilog; hierarchy; proc; flatten; check``) under the time
    limit.  The simulation's second sweep in another order is the cross-check for
    what yosys cannot read.

    Returns:
        ``True`` when yosys checked the design, ``False`` when it could not (yosys
        missing, or it does not read this Verilog; simulation still runs).

    Raises:
        VerilogError: a latch (``file:line`` of the always block and the signal) or a
            logic loop was found.
    """
    exe = shutil.which("yosys")
    if exe is None:
        return False
    path = Path(path).resolve()
    chparam = "".join(f" -chparam {k} {int(v)}" for k, v in ports.parameters.items())
    script = (f"read_verilog -sv -I{path.parent} {path}; hierarchy -top {ports.module}{chparam}; "
              "proc; flatten; check")
    with tempfile.TemporaryDirectory(prefix="axhw-comb-") as tmp:
        try:
            proc = run_limited([exe, "-p", script], cwd=tmp, timeout_s=time_limit_s)
        except TimeLimitExceeded:
            return False
    if proc.returncode != 0:
        return False
    for match in _LATCH.finditer(proc.stdout):
        signal_name, file, line = match.group(1), match.group(2), match.group(3)
        signal_name = signal_name.split(".")[-1].lstrip("\\")
        raise VerilogError(f"{path}:{line}: combinational designs only: yosys infers a latch for {signal_name} "
                           f"(the always block does not assign it on every path, so it keeps an old value); "
                           f"assign {signal_name} for every input")
    lines = proc.stdout.splitlines()
    for k, line in enumerate(lines):
        if _LOOP.search(line):
            cells = [m for m in (_LOOP_CELL.search(x) for x in lines[k + 1:k + 12]) if m]
            where = f"{path}:{cells[0].group(2)}" if cells else str(path)
            through = f" through {', '.join(sorted({c.group(1) for c in cells}))}" if cells else ""
            raise VerilogError(f"{where}: combinational designs only: yosys finds a logic loop in {ports.module}"
                               f"{through} (a signal that depends on itself); the product must be a function of a and b alone")
    return True
