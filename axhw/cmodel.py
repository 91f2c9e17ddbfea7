"""Import a multiplier's C model: compile it with the system compiler and sweep it exhaustively.

The function must take two 8-bit operands and return the product, as in
EvoApproxLib: ``uint16_t mul8u_XXX(uint8_t a, uint8_t b)`` (unsigned) or
``int16_t mul8s_XXX(int8_t a, int8_t b)`` (signed); any integer return type of up
to 32 bits works.  Signedness is read from the operand type (``int8_t``/
``signed char`` versus ``uint8_t``/``unsigned char``) unless given.

The C file is ``#include``-d into a small generated driver that loops over all
65,536 pairs in C; the driver is built as a shared library with ``cc -O1 -shared
-fPIC`` into ``cache_dir()/cmodel/<sha256>/`` and called once through ctypes.
"""

from __future__ import annotations

import ctypes
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import CharacterizationError, ConfigError, ToolMissingError
from .io import atomic_write_text, sha256_bytes
from .paths import cache_dir
from .records import PortSpec

__all__ = ["sweep_c", "parse_signature", "compiler", "CSignature"]

_SIGNED_TYPES = {"int8_t", "signed char", "char", "int_least8_t", "int_fast8_t"}
_UNSIGNED_TYPES = {"uint8_t", "unsigned char", "uint_least8_t", "uint_fast8_t"}
_RETURN_BITS = {
    "int8_t": 8, "uint8_t": 8, "int16_t": 16, "uint16_t": 16, "int32_t": 32, "uint32_t": 32,
    "int": 32, "unsigned": 32, "unsigned int": 32, "short": 16, "unsigned short": 16, "long": 64,
    "signed int": 32, "signed short": 16, "int64_t": 64, "uint64_t": 64, "long long": 64,
}
_TYPE = r"(?:const\s+)?((?:unsigned|signed)\s+(?:char|short|int|long)|unsigned|u?int(?:_least|_fast)?\d+_t|char|short|int|long)"


@dataclass(frozen=True)
class CSignature:
    """Return type, operand types and parameter names of the swept C function (``line``: 1-based)."""

    function: str
    return_type: str
    arg_types: tuple[str, str]
    arg_names: tuple[str, str]
    line: int


def _strip_comments(text: str) -> str:
    """Remove C comments, keeping line breaks so line numbers stay right."""
    text = re.sub(r"/\*.*?\*/", lambda m: "\n" * m.group(0).count("\n"), text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


def parse_signature(source: str, function: str, path: str | os.PathLike = "<source>") -> CSignature:
    """Find ``function``'s definition in C ``source`` and read its signature.

    Raises:
        ConfigError: the function is not defined there, or does not take two 8-bit operands.
    """
    code = _strip_comments(source)
    pattern = re.compile(rf"(?:^|[;\}}\s])(?:static\s+|inline\s+|extern\s+)*{_TYPE}\s+{re.escape(function)}\s*\(([^)]*)\)\s*\{{", re.M)
    match = pattern.search(code)
    if match is None:
        defined = sorted(set(re.findall(rf"{_TYPE}\s+(\w+)\s*\([^;{{]*\)\s*\{{", code)), key=str)
        names = ", ".join(sorted({d[1] for d in defined})) or "none"
        raise ConfigError(f"{path}: no definition of function {function!r}; functions defined there: {names}")
    line = code.count("\n", 0, match.start(2)) + 1
    params = [p.strip() for p in match.group(2).split(",")]
    parsed = [re.fullmatch(rf"{_TYPE}\s*(\w*)", p) for p in params]
    if len(params) != 2 or not all(parsed):
        raise ConfigError(f"{path}:{line}: {function} must take two 8-bit integer operands, e.g. "
                          f"uint16_t {function}(uint8_t a, uint8_t b); found ({match.group(2).strip()})")
    arg_types = tuple(" ".join(p.group(1).split()) for p in parsed)
    for t in arg_types:
        if t not in _SIGNED_TYPES | _UNSIGNED_TYPES:
            raise ConfigError(f"{path}:{line}: only 8-bit operands are supported: {function} takes {t}; "
                              "use int8_t or uint8_t operands")
    ret = " ".join(match.group(1).split())
    if _RETURN_BITS.get(ret, 0) < 16:
        raise ConfigError(f"{path}:{line}: {function} returns {ret}, narrower than needed: "
                          "an 8x8 product needs an integer return type of at least 16 bits")
    names = tuple(p.group(2) or f"arg{i}" for i, p in enumerate(parsed))
    return CSignature(function, ret, arg_types, names, line)  # type: ignore[arg-type]


def compiler() -> str:
    """The C compiler used: ``$CC``, else the first of cc, gcc, clang on ``PATH``."""
    for cc in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if cc and shutil.which(cc):
            return cc
    raise ToolMissingError("no C compiler (cc, gcc or clang) found, needed to import C models; run `axhw doctor`")


def sweep_c(path: str | os.PathLike, function: str, signed: bool | None = None) -> tuple[np.ndarray, PortSpec]:
    """Compile a C multiplier model and evaluate it on all 65,536 operand pairs.

    Args:
        path: the ``.c`` file defining ``function``.
        function: name of the multiplier function.
        signed: override the signedness read from the operand types.

    Returns:
        ``(table, ports)``: int32 (256, 256) raw table (``[a + 128, b + 128]`` when signed,
        ``[a, b]`` when unsigned) and a :class:`~axhw.records.PortSpec` whose module is
        the function name and whose product port is ``return``.

    Raises:
        ConfigError: the function is missing or has an unsupported signature.
        CharacterizationError: the compiler rejected the file (its message has file:line).
        ToolMissingError: no C compiler is installed.
    """
    path = Path(path).resolve()
    source = path.read_text(errors="replace")
    sig = parse_signature(source, function, path)
    is_signed = (sig.arg_types[0] in _SIGNED_TYPES) if signed is None else bool(signed)
    low = -128 if is_signed else 0
    operand = "int8_t" if is_signed else "uint8_t"
    ret_bits = _RETURN_BITS[sig.return_type]
    driver = (
        "#include <stdint.h>\n"
        f'#include "{path}"\n'
        "void axhw_sweep(int32_t *out) {\n"
        "  for (int i = 0; i < 256; i++)\n"
        "    for (int j = 0; j < 256; j++)\n"
        f"      out[i * 256 + j] = (int32_t)({sig.return_type}){function}(({operand})({low} + i), ({operand})({low} + j));\n"
        "}\n"
    )
    cc = compiler()
    key = sha256_bytes(source.encode() + driver.encode() + cc.encode())
    folder = cache_dir() / "cmodel" / key[:20]
    lib = folder / "sweep.so"
    if not lib.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        driver_path = atomic_write_text(folder / "driver.c", driver)
        tmp_lib = folder / f".sweep.{os.getpid()}.so"
        proc = subprocess.run([cc, "-O1", "-shared", "-fPIC", "-o", str(tmp_lib), str(driver_path)],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            errors = [ln for ln in proc.stderr.splitlines() if "error" in ln] or proc.stderr.strip().splitlines()
            raise CharacterizationError(f"{path}: the C compiler ({cc}) failed: {' | '.join(errors[:3])}")
        os.replace(tmp_lib, lib)
    table = np.zeros(256 * 256, dtype=np.int32)
    handle = ctypes.CDLL(str(lib))
    handle.axhw_sweep.argtypes = [ctypes.POINTER(ctypes.c_int32)]
    handle.axhw_sweep.restype = None
    handle.axhw_sweep(table.ctypes.data_as(ctypes.POINTER(ctypes.c_int32)))
    ports = PortSpec(module=function, a=sig.arg_names[0], b=sig.arg_names[1], y="return", a_width=8, b_width=8,
                     y_width=ret_bits, signed=is_signed, parameters={})
    return table.reshape(256, 256), ports
