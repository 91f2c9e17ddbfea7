"""Import a multiplier's C model: compile it with the system compiler and sweep it exhaustively.

Accepted as EvoApproxLib writes them:

* ``uint16_t mul8u_XXX(uint8_t A, uint8_t B)`` (unsigned designs);
* ``uint16_t mul8s_XXX(uint8_t A, uint8_t B)`` (signed designs: operand bytes are
  two's complement, the 16-bit return word holds a two's complement product);
* ``uint64_t mul8u_XXX(const uint64_t B, const uint64_t A)`` (any integer operand
  type; operands named ``a``/``b`` in either case are matched by name, whatever the
  declared order; otherwise the first parameter is ``a``);
* ``int16_t f(int8_t a, int8_t b)`` and any integer return type of at least 16 bits.

Signedness: ``int8_t``/``signed char`` operands declare it; every other operand
type does not (EvoApproxLib types signed designs ``uint8_t``), so the model is swept
once over all 65,536 operand *bit patterns* and both readings are compared with
``a·b`` (:func:`axhw.simulate.decide_signedness`).  Under the signed reading an
unsigned return word is read as two's complement at 16 bits when every word fits
in 16 bits, else at the return type's width.

The C file is ``#include``-d into a small generated driver program (its own
``main``, if any, is renamed away) built with ``cc -O1`` into
``cache_dir()/cmodel/<sha256>/`` and run as a separate process under a time
limit (:func:`axhw.subproc.run_limited`): a model that crashes is reported with
its signal and the operands it crashed on, one that loops is stopped and reported
with the operands it was stuck on; neither takes axhw down.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from axhw.errors import CharacterizationError, ConfigError, ToolMissingError
from axhw.io import atomic_write_text, sha256_bytes
from axhw.paths import cache_dir
from axhw.records import PortSpec
from axhw.subproc import DEFAULT_TIME_LIMIT_S, TimeLimitExceeded, run_limited, signal_name

__all__ = ["sweep_c", "characterize_c", "parse_signature", "default_function", "c_reading", "compiler",
           "CSignature"]

_SIGNED_8 = {"int8_t", "signed char", "int_least8_t", "int_fast8_t"}
_TYPE_BITS = {
    "char": 8, "signed char": 8, "unsigned char": 8, "int8_t": 8, "uint8_t": 8,
    "int_least8_t": 8, "uint_least8_t": 8, "int_fast8_t": 8, "uint_fast8_t": 8,
    "int16_t": 16, "uint16_t": 16, "short": 16, "signed short": 16, "unsigned short": 16,
    "int32_t": 32, "uint32_t": 32, "int": 32, "signed int": 32, "unsigned": 32, "unsigned int": 32,
    "int64_t": 64, "uint64_t": 64, "long": 64, "signed long": 64, "unsigned long": 64,
    "long long": 64, "signed long long": 64, "unsigned long long": 64,
}
_TYPE = (r"(?:const\s+)?((?:unsigned|signed)\s+(?:char|short|int|long\s+long|long)|long\s+long|unsigned"
         r"|u?int(?:_least|_fast)?\d+_t|char|short|int|long)(?:\s+const)?")
_CRASH_SIGNALS = ("SIGSEGV", "SIGBUS", "SIGFPE", "SIGILL", "SIGABRT", "SIGTERM")


def _is_unsigned(ctype: str) -> bool:
    return ctype.startswith("u") or ctype == "unsigned" or ctype.startswith("unsigned ")


@dataclass(frozen=True)
class CSignature:
    """Return type, operand types and parameter names of the swept C function.

    Attributes:
        function: its name.
        return_type: e.g. ``"uint16_t"``.
        arg_types, arg_names: as declared, in declared order.
        line: 1-based line of the definition.
        order: ``(i, j)``: the table's ``a`` is parameter ``i``, ``b`` is parameter ``j``.
    """

    function: str
    return_type: str
    arg_types: tuple[str, str]
    arg_names: tuple[str, str]
    line: int
    order: tuple[int, int] = (0, 1)

    @property
    def declared_signed(self) -> bool:
        """Whether both operand types are signed 8-bit types (the only declaration of signedness)."""
        return all(t in _SIGNED_8 for t in self.arg_types)


def _strip_comments(text: str) -> str:
    """Remove C comments, keeping line breaks so line numbers stay right."""
    text = re.sub(r"/\*.*?\*/", lambda m: "\n" * m.group(0).count("\n"), text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


def _definitions(code: str) -> list[tuple[str, str]]:
    """``(name, params)`` of every function definition in comment-free C."""
    return re.findall(rf"{_TYPE}\s+(\w+)\s*\(([^;{{()]*)\)\s*\{{", code)


def default_function(source: str, path: str | os.PathLike, stem: str) -> str:
    """The function to sweep when none is named: the one named like the file, else the only two-operand one.

    Raises:
        ConfigError: no such function, or several candidates (the message lists them).
    """
    defs = [(name, params) for _, name, params in _definitions(_strip_comments(source)) if name != "main"]
    names = [name for name, _ in defs]
    if stem in names:
        return stem
    two = [name for name, params in defs if len([p for p in params.split(",") if p.strip()]) == 2]
    if len(two) == 1:
        return two[0]
    listed = ", ".join(sorted(set(two or names))) or "none"
    raise ConfigError(f"{path}: a C model needs the function to sweep: --function NAME "
                      f"(functions with two parameters there: {listed})")


def parse_signature(source: str, function: str, path: str | os.PathLike = "<source>") -> CSignature:
    """Find ``function``'s definition in C ``source`` and read its signature.

    Raises:
        ConfigError: the function is not defined there, does not take two integer
            operands, or returns fewer than 16 bits.
    """
    code = _strip_comments(source)
    pattern = re.compile(rf"(?:^|[;\}}\s])(?:static\s+|inline\s+|extern\s+)*{_TYPE}\s+{re.escape(function)}\s*\(([^)]*)\)\s*\{{", re.M)
    match = pattern.search(code)
    if match is None:
        names = ", ".join(sorted({d[1] for d in _definitions(code)})) or "none"
        raise ConfigError(f"{path}: no definition of function {function!r}; functions defined there: {names}")
    line = code.count("\n", 0, match.start(2)) + 1
    params = [p.strip() for p in match.group(2).split(",")]
    parsed = [re.fullmatch(rf"{_TYPE}\s*(\w*)", p) for p in params]
    if len(params) != 2 or not all(parsed):
        raise ConfigError(f"{path}:{line}: {function} must take two integer operands, e.g. "
                          f"uint16_t {function}(uint8_t a, uint8_t b); found ({match.group(2).strip()})")
    arg_types = tuple(" ".join(p.group(1).split()) for p in parsed)
    ret = " ".join(match.group(1).split())
    if _TYPE_BITS.get(ret, 0) < 16:
        raise ConfigError(f"{path}:{line}: {function} returns {ret}, narrower than needed: "
                          "an 8x8 product needs an integer return type of at least 16 bits")
    names = tuple(p.group(2) or f"arg{i}" for i, p in enumerate(parsed))
    lowered = [n.lower() for n in names]
    order = (lowered.index("a"), lowered.index("b")) if sorted(lowered) == ["a", "b"] else (0, 1)
    return CSignature(function, ret, arg_types, names, line, order)  # type: ignore[arg-type]


def compiler() -> str:
    """The C compiler used: ``$CC``, else the first of cc, gcc, clang on ``PATH``."""
    for cc in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if cc and shutil.which(cc):
            return cc
    raise ToolMissingError("no C compiler (cc, gcc or clang) found, needed to import C models; run `axhw doctor`")


def _operand(ctype: str, var: str) -> str:
    """C expression passing operand bit pattern ``var`` (0..255) as a ``ctype`` argument.

    Unsigned types get the pattern 0..255, 8-bit signed types its two's-complement value;
    a wider signed type (``int``) gets either, by the run's mode (``axhw_signed_mode``).
    """
    if _is_unsigned(ctype):
        return f"({ctype})(uint8_t){var}"
    if _TYPE_BITS.get(ctype, 8) == 8:
        return f"({ctype})(int8_t){var}"
    return f"(axhw_signed_mode ? ({ctype})(int8_t){var} : ({ctype})(uint8_t){var})"


def _mode_matters(sig: CSignature) -> bool:
    """Whether the two readings pass different operand values (a signed operand type wider than 8 bits)."""
    return any(not _is_unsigned(t) and _TYPE_BITS.get(t, 8) > 8 for t in sig.arg_types)


def _driver(path: Path, sig: CSignature) -> str:
    args = ["", ""]
    args[sig.order[0]] = _operand(sig.arg_types[sig.order[0]], "x")
    args[sig.order[1]] = _operand(sig.arg_types[sig.order[1]], "y")
    handlers = "\n".join(f"  signal({name}, axhw_on_signal);" for name in _CRASH_SIGNALS)
    return (
        "#include <stdint.h>\n#include <stdio.h>\n#include <signal.h>\n#include <unistd.h>\n"
        "#define main axhw_user_main\n"
        f'#include "{path}"\n'
        "#undef main\n"
        "static volatile int axhw_x = -1, axhw_y = -1;\nstatic int axhw_signed_mode = 0;\n"
        "static int64_t axhw_words[256 * 256];\n"
        "static void axhw_put(int fd, int v) {\n"
        "  char buf[16]; int n = 0; if (v < 0) { write(fd, \"-\", 1); v = -v; }\n"
        "  do { buf[15 - n++] = (char)('0' + v % 10); v /= 10; } while (v && n < 15);\n"
        "  write(fd, buf + 16 - n, n);\n}\n"
        "static void axhw_on_signal(int sig) {\n"
        "  write(2, \"\\nAXHW_AT \", 9); axhw_put(2, axhw_x); write(2, \" \", 1); axhw_put(2, axhw_y);\n"
        "  write(2, \"\\n\", 1); signal(sig, SIG_DFL); raise(sig);\n}\n"
        "int main(int argc, char **argv) {\n"
        f"{handlers}\n"
        "  axhw_signed_mode = argc > 2 && argv[2][0] == 's';\n"
        "  for (int x = 0; x < 256; x++)\n"
        "    for (int y = 0; y < 256; y++) {\n"
        "      axhw_x = x; axhw_y = y;\n"
        f"      axhw_words[x * 256 + y] = (int64_t)({sig.return_type}){sig.function}({args[0]}, {args[1]});\n"
        "    }\n"
        "  FILE *f = fopen(argv[1], \"wb\");\n"
        "  if (!f || fwrite(axhw_words, sizeof axhw_words, 1, f) != 1 || fclose(f)) return 3;\n"
        "  return 0;\n}\n"
    )


def _pair_text(x: int, y: int, signed: bool | None) -> str:
    def one(v: int) -> str:
        if signed is None:
            return f"{v}" if v < 128 else f"{v} (or {v - 256} as two's complement)"
        return str(v - 256 if signed and v >= 128 else v)

    return f"a={one(x)}, b={one(y)}"


def _where(stderr: str) -> tuple[int, int] | None:
    found = re.findall(r"AXHW_AT (-?\d+) (-?\d+)", stderr or "")
    if not found or int(found[-1][0]) < 0:
        return None
    return int(found[-1][0]), int(found[-1][1])


def sweep_c_words(path: str | os.PathLike, function: str, *, signed: bool | None = None,
                  time_limit_s: float | None = None, signed_operands: bool = False) -> tuple[np.ndarray, CSignature]:
    """Compile a C model and evaluate it on all 65,536 operand bit patterns, in a separate process.

    Args:
        path: the ``.c`` file defining ``function``.
        function: name of the multiplier function.
        signed: how to print operands in messages (``None``: undecided).
        time_limit_s: limit (s) for the compiler and for the run, each; ``None`` is
            :data:`axhw.subproc.DEFAULT_TIME_LIMIT_S`.
        signed_operands: pass two's-complement values to signed operand types wider
            than 8 bits (``int``) instead of the patterns 0..255.

    Returns:
        ``(words, signature)``: int64 (256, 256), ``words[x, y]`` = the return value
        (converted to int64) for operand bit patterns ``x``, ``y`` in 0..255.

    Raises:
        ConfigError: the function is missing or has an unsupported signature.
        CharacterizationError: the compiler rejected the file (file:line), the model
            crashed (signal and operands) or ran past the time limit (operands it was on).
        ToolMissingError: no C compiler is installed.
    """
    path = Path(path).resolve()
    source = path.read_text(errors="replace")
    sig = parse_signature(source, function, path)
    limit = DEFAULT_TIME_LIMIT_S if time_limit_s is None else float(time_limit_s)
    driver = _driver(path, sig)
    cc = compiler()
    key = sha256_bytes(path.read_bytes() + driver.encode() + cc.encode())
    folder = cache_dir() / "cmodel" / key[:20]
    exe = folder / "sweep"
    if not exe.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        driver_path = atomic_write_text(folder / "driver.c", driver)
        tmp_exe = folder / f".sweep.{os.getpid()}"
        try:
            proc = run_limited([cc, "-O1", "-w", "-o", str(tmp_exe), str(driver_path)], timeout_s=limit)
        except TimeLimitExceeded:
            raise CharacterizationError(f"{path}: the C compiler ({cc}) did not finish within {limit:g} s") from None
        if proc.returncode != 0:
            errors = [ln for ln in proc.stderr.splitlines() if "error" in ln] or proc.stderr.strip().splitlines()
            raise CharacterizationError(f"{path}: the C compiler ({cc}) failed: {' | '.join(errors[:3])}")
        os.replace(tmp_exe, exe)
    with tempfile.TemporaryDirectory(prefix="axhw-c-") as tmp:
        out = Path(tmp) / "words.bin"
        try:
            proc = run_limited([str(exe), str(out), "s" if signed_operands else "u"], cwd=tmp, timeout_s=limit,
                               stdout=None)
        except TimeLimitExceeded as exc:
            at = _where(exc.stderr)
            where = f", stuck at {_pair_text(*at, signed)}" if at else ""
            raise CharacterizationError(f"{path}: C model {function} did not finish within {limit:g} s and was "
                                        f"stopped{where}; if it is just slow, raise the limit with --time-limit SECONDS") from None
        sig_name = signal_name(proc.returncode)
        if sig_name is not None:
            at = _where(proc.stderr)
            where = f" at {_pair_text(*at, signed)}" if at else ""
            raise CharacterizationError(f"{path}: C model {function} crashed with {sig_name}{where}; "
                                        "fix the model for every 8-bit operand pair")
        if proc.returncode != 0 or not out.is_file():
            raise CharacterizationError(f"{path}: C model {function} exited with status {proc.returncode} "
                                        "before returning all 65,536 products (does it call exit()?)")
        words = np.fromfile(out, dtype=np.int64)
    if words.size != 256 * 256:
        raise CharacterizationError(f"{path}: C model {function} returned {words.size} products, expected 65,536")
    return words.reshape(256, 256), sig


def c_reading(words: np.ndarray, sig: CSignature, signed: bool) -> np.ndarray:
    """The model's table under one reading (see the module docstring for the return word).

    Returns:
        int64 (256, 256): ``[a + 128, b + 128]`` when ``signed``, else ``[a, b]``.
    """
    words = np.asarray(words, dtype=np.int64)
    if not signed:
        return words
    order = np.arange(-128, 128) & 0xFF
    table = words[np.ix_(order, order)]
    width = _signed_word_bits(words, sig)
    if width < 64:
        table = np.where(table >= 1 << (width - 1), table - (1 << width), table)
    return table


def _signed_word_bits(words: np.ndarray, sig: CSignature) -> int:
    """Width at which the signed reading takes the return word as two's complement (64: as returned)."""
    bits = _TYPE_BITS[sig.return_type]
    if not _is_unsigned(sig.return_type) or bits >= 64:
        return 64
    return 16 if words.min() >= 0 and words.max() < 1 << 16 else bits


def _to_int32(path: Path, function: str, table: np.ndarray) -> np.ndarray:
    if table.min() < -(2**31) or table.max() >= 2**31:
        raise CharacterizationError(f"{path}: C model {function} returns products outside the int32 range "
                                    f"({int(table.min())} .. {int(table.max())})")
    return table.astype(np.int32)


def characterize_c(path: str | os.PathLike, function: str | None = None, *, signed: bool | None = None,
                   time_limit_s: float | None = None):
    """Sweep a C model and decide its signedness.

    Args:
        path: the ``.c`` file.
        function: function to sweep; ``None`` picks it (:func:`default_function`).
        signed: force a reading; ``None`` reads ``int8_t`` operands as declared signed
            and decides every other case from the tables.
        time_limit_s: limit (s) for the compiler and the run, each.

    Returns:
        ``(raw, ports, decision)``: int32 table (``[a + 128, b + 128]`` signed, ``[a, b]``
        unsigned), a :class:`~axhw.records.PortSpec` (module = function, product port
        ``return``), and the :class:`~axhw.simulate.SignednessDecision`.

    Raises:
        CharacterizationError: as :func:`sweep_c_words`, or signedness is unclear
            (the message asks for ``--signed`` or ``--unsigned``).
    """
    from axhw.simulate import SignednessDecision, decide_signedness

    path = Path(path).resolve()
    if not path.is_file():
        raise ConfigError(f"{path}: no such file")
    if function is None:
        function = default_function(path.read_text(errors="replace"), path, path.stem)
    declared = signed
    probe = parse_signature(path.read_text(errors="replace"), function, path)
    if declared is None and probe.declared_signed:
        declared = True
    words, sig = sweep_c_words(path, function, signed=declared, time_limit_s=time_limit_s,
                               signed_operands=declared is not False)
    words_u = words
    if _mode_matters(sig) and declared is None:  # the unsigned reading needs its own operand values
        words_u, _ = sweep_c_words(path, function, signed=False, time_limit_s=time_limit_s, signed_operands=False)
    if signed is not None:
        decision = SignednessDecision(signed, f"read as {'two' + chr(39) + 's complement' if signed else 'unsigned'}: "
                                              f"given as {'--signed' if signed else '--unsigned'}")
    elif declared:
        decision = SignednessDecision(True, f"read as two's complement: operands are declared "
                                            f"{sig.arg_types[0]} and {sig.arg_types[1]}")
    else:
        decision = decide_signedness(c_reading(words, sig, True), c_reading(words_u, sig, False),
                                     names=(path.stem, function),
                                     what=f"operand types {sig.arg_types[0]}/{sig.arg_types[1]} do not declare signedness")
        if decision.signed is None:
            raise CharacterizationError(f"{path}: cannot tell whether {function} multiplies signed or unsigned "
                                        f"operands: {decision.reason}; say which with --signed or --unsigned")
    if not decision.signed:
        words = words_u
    raw = _to_int32(path, function, c_reading(words, sig, decision.signed))
    a, b = sig.arg_names[sig.order[0]], sig.arg_names[sig.order[1]]
    y_bits = _TYPE_BITS[sig.return_type]
    if decision.signed:
        y_bits = min(y_bits, _signed_word_bits(words, sig))
    ports = PortSpec(module=function, a=a, b=b, y="return", a_width=8, b_width=8, y_width=y_bits,
                     signed=bool(decision.signed), parameters={})
    return raw, ports, decision


def sweep_c(path: str | os.PathLike, function: str, signed: bool | None = None,
            time_limit_s: float | None = None) -> tuple[np.ndarray, PortSpec]:
    """Compile a C multiplier model and evaluate it on all 65,536 operand pairs.

    Returns:
        ``(table, ports)`` as the first two items of :func:`characterize_c`.
    """
    raw, ports, _ = characterize_c(path, function, signed=signed, time_limit_s=time_limit_s)
    return raw, ports
