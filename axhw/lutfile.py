"""TransAxx-style product-table headers, in and out.

TransAxx (Danopoulos et al.) loads an 8x8 signed multiplier as a C header holding
one array, ``const __device__ int16_t lut [256][256] = {{...}, ...};``, indexed by
the operands' two's-complement *bit patterns*: ``lut[a & 0xFF][b & 0xFF]`` is the
product of int8 ``a`` and ``b``.

TransAxx's own conversion notebook fills the quadrant where both operands are
negative with ``mul(-a, -b)`` instead of ``mul(a, b)``, and for ``a = -128`` it
passes the out-of-range magnitude 128.  axhw never does that: :func:`write_transaxx`
writes the table the design computes, ``lut[a & 0xFF][b & 0xFF] = M(a, b)`` in
every quadrant, and :func:`read_transaxx` reads every entry the same way.  A
file made by that notebook is therefore read as the numbers it holds; for a
design that is not symmetric under negating both operands those numbers are not
the design's products, which no reader can undo.

The element type is ``int16_t`` when every product fits, else ``int32_t``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from axhw.errors import ConfigError
from axhw.io import atomic_write_text

__all__ = ["read_transaxx", "write_transaxx", "LUT_SUFFIXES"]

#: File suffixes :func:`axhw.library.add` reads as TransAxx headers.
LUT_SUFFIXES = (".h", ".hpp")

_ARRAY = re.compile(r"\b(u?int(?:8|16|32|64)_t|short|int|long)\s+(\w+)\s*\[\s*256\s*\]\s*\[\s*256\s*\]\s*=\s*\{")
_BIT_ORDER = np.arange(-128, 128) & 0xFF  # bit pattern of each signed operand, in table order


def _strip_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", lambda m: "\n" * m.group(0).count("\n"), text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


def read_transaxx(path: str | os.PathLike) -> np.ndarray:
    """Read a TransAxx header into axhw's signed table.

    Args:
        path: the ``.h`` file holding one ``[256][256]`` integer array.

    Returns:
        int32 (256, 256), ``lut[a + 128, b + 128]`` = the file's ``lut[a & 0xFF][b & 0xFF]``.

    Raises:
        ConfigError: no ``[256][256]`` array, a value that is not an integer, or not
            exactly 65,536 values (the message has file and line).
    """
    path = Path(path)
    try:
        text = _strip_comments(path.read_bytes().decode("utf-8", errors="replace"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the LUT file: {exc.strerror}") from None
    match = _ARRAY.search(text)
    if match is None:
        raise ConfigError(f"{path}: no [256][256] integer array found; expected a TransAxx header such as "
                          "`const __device__ int16_t lut [256][256] = {{...}, ...};`")
    end = text.find(";", match.end())
    body = text[match.end() - 1:end if end >= 0 else len(text)]
    tokens = re.findall(r"[^\s{},]+", body)
    bad = next((t for t in tokens if not re.fullmatch(r"[+-]?\d+", t)), None)
    if bad is not None:
        line = text.count("\n", 0, text.find(bad, match.end())) + 1
        raise ConfigError(f"{path}:{line}: {bad!r} is not an integer product")
    if len(tokens) != 256 * 256:
        line = text.count("\n", 0, match.start()) + 1
        raise ConfigError(f"{path}:{line}: array {match.group(2)} holds {len(tokens)} values, expected 65,536 (256 x 256)")
    by_bits = np.array([int(t) for t in tokens], dtype=np.int64).reshape(256, 256)
    if by_bits.min() < -(2**31) or by_bits.max() >= 2**31:
        raise ConfigError(f"{path}: products outside the int32 range")
    return by_bits[np.ix_(_BIT_ORDER, _BIT_ORDER)].astype(np.int32)


def write_transaxx(lut: np.ndarray, path: str | os.PathLike, name: str = "lut", comment: str = "") -> Path:
    """Write axhw's signed table as a TransAxx header (no sign flip, see the module docstring).

    Args:
        lut: int (256, 256), ``lut[a + 128, b + 128]``.
        path: output ``.h`` file (written atomically).
        name: C identifier of the array (TransAxx expects ``lut``).
        comment: one line put in a comment at the top.

    Returns:
        The path written.
    """
    lut = np.asarray(lut)
    if lut.shape != (256, 256):
        raise ValueError(f"a product table must have shape (256, 256), got {lut.shape}")
    by_bits = np.empty((256, 256), dtype=np.int64)
    by_bits[np.ix_(_BIT_ORDER, _BIT_ORDER)] = lut
    ctype = "int16_t" if by_bits.min() >= -(2**15) and by_bits.max() < 2**15 else "int32_t"
    rows = ",\n".join("{" + ", ".join(str(int(v)) for v in row) + "}" for row in by_bits)
    text = (f"/* {comment} */\n" if comment else "") + (
        "/* TransAxx LUT: lut[a & 0xFF][b & 0xFF] is the product of int8 a and b, in every quadrant. */\n"
        "#include <stdint.h>\n\n"
        f"const __device__ {ctype} {name} [256][256] = {{\n{rows}}};\n"
    )
    return atomic_write_text(Path(path), text)
