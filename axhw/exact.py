"""The exact product: the golden model every multiplier is compared with.

Operands are 8-bit integers; a signed table covers ``a, b`` in [-128, 127] and is
indexed ``lut[a + 128, b + 128]``; an unsigned table covers [0, 255] and is indexed
``lut[a, b]``.  Products are int32 (``|a·b| <= 2^14`` signed, ``< 2^16`` unsigned).
"""

from __future__ import annotations

import numpy as np

__all__ = ["EXACT", "OPERAND_BITS", "operand_values", "exact_product", "exact_lut"]

#: Name of the exact multiplier: configs, search candidates and the database use it, and
#: the emulator computes its table instead of loading one.
EXACT = "exact"

#: Operand width (bits) of every multiplier axhw characterizes.
OPERAND_BITS = 8


def operand_values(signed: bool = True) -> np.ndarray:
    """All operand values in table order: [-128, 127] when ``signed``, else [0, 255] (int32)."""
    low = -(1 << (OPERAND_BITS - 1)) if signed else 0
    return np.arange(low, low + (1 << OPERAND_BITS), dtype=np.int32)


def exact_product(a: int, b: int) -> int:
    """The exact product ``a · b`` of two integers (the reference for one pair)."""
    return int(a) * int(b)


def exact_lut(signed: bool = True) -> np.ndarray:
    """The exact 256x256 product table (int32) in the table order of :func:`operand_values`."""
    values = operand_values(signed)
    return np.multiply.outer(values, values).astype(np.int32)
