"""Test doubles for the emulator tests (tests only: never imported by axhw).

A fake multiplier database (the ``fake_library`` fixture of ``conftest.py`` installs
:func:`fake_load` as ``axhw.library.load``) that knows one approximate 8-bit design,
:data:`APPROX`, and one 4-bit design, :data:`MUL4`, which the emulator must refuse.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from axhw.errors import DatabaseError
from axhw.testing import truncated_product

#: An approximate 8-bit design: :func:`axhw.testing.truncated_product` with 4 bits dropped.
APPROX = "trunc4_test"
#: A 4x4-bit design (16x16 table) that an int8 emulator cannot use.
MUL4 = "mul4_test"


def fake_load(name: str) -> SimpleNamespace:
    """Stands in for ``axhw.library.load`` with the two designs above."""
    if name == APPROX:
        return SimpleNamespace(name=name, lut=truncated_product(4), ports=SimpleNamespace(a_width=8, b_width=8))
    if name == MUL4:
        return SimpleNamespace(name=name, lut=np.zeros((16, 16), np.int32), ports=SimpleNamespace(a_width=4, b_width=4))
    raise DatabaseError(f"no multiplier named {name!r}; available: {APPROX}, {MUL4}")
