"""``LutTable``: a product table prepared once for every kernel.

``prepare_table(lut)`` checks the table, keeps a read-only int32 copy and an int16
copy when every value fits, and looks for an exact low-rank form (see
:mod:`.lowrank`).  Tables are cached by the SHA-256 of their bytes, so preparing
the same multiplier twice is free.  Device copies (torch tensors on a GPU, float
factors) are made lazily, once per device, by the kernels through
:meth:`LutTable.cached`.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from axhw.emulator.kernels.lowrank import LowRankForm, find_low_rank
from axhw.emulator.kernels.reference import check_lut

__all__ = ["LutTable", "prepare_table"]


@dataclass(frozen=True, eq=False)
class LutTable:
    """A product table ready for the kernels (immutable).

    Attributes:
        lut: int32 (256, 256), read-only; ``lut[a + 128, b + 128]`` is the product.
        lut16: uint16 (256, 256), read-only, with ``lut = lut16 + offset16`` when the
            values span fewer than 2**16 integers, else ``None``.  Halves the
            shared-memory / cache footprint of the LUT kernels, which accumulate
            ``sum_k lut16[...]`` and add ``K * offset16`` once per output.
        offset16: the offset of ``lut16`` (its smallest value; 0 when ``lut16`` is None).
        lowrank: exact form ``lut = c*a*b + sum_s u_s(a) v_s(b) / d`` with the
            fewest terms, or ``None`` when it has more than ``max_rank`` terms.
        sha256: hex digest of the int32 table bytes (its identity).
        max_rank: the ``max_rank`` the low-rank search used.
    """

    lut: np.ndarray
    lut16: np.ndarray | None
    offset16: int
    lowrank: LowRankForm | None
    sha256: str
    max_rank: int = 8
    _cache: dict[Any, Any] = field(default_factory=dict, repr=False, compare=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @property
    def rank(self) -> int | None:
        """Number of GEMM terms of the exact low-rank form (``None`` if not low-rank)."""
        return None if self.lowrank is None else self.lowrank.terms

    def cached(self, key: Any, make: Callable[[], Any]) -> Any:
        """Return ``make()`` computed once per ``key`` (e.g. a device copy of the LUT)."""
        with self._lock:
            if key not in self._cache:
                self._cache[key] = make()
            return self._cache[key]

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle/deepcopy as the table itself: unpickling prepares it again (cached, device copies not carried)."""
        return (prepare_table, (np.array(self.lut), self.max_rank))

    def __repr__(self) -> str:
        form = "none" if self.lowrank is None else self.lowrank.describe()
        return f"LutTable(sha256={self.sha256[:12]}, uint16={self.lut16 is not None}, lowrank={form})"


_TABLES: dict[tuple[str, int], LutTable] = {}
_TABLES_LOCK = threading.Lock()


def prepare_table(lut: np.ndarray, max_rank: int = 8) -> LutTable:
    """Check a product table and prepare it for every kernel.

    Args:
        lut: integer array (256, 256), ``lut[a + 128, b + 128]`` = product of the
            signed int8 operands ``a`` and ``b``; values must fit in int32.
        max_rank: largest number of rank-1 terms searched for the exact low-rank
            form; tables needing more use the LUT kernels only.

    Returns:
        The (cached) :class:`LutTable`.

    Raises:
        ValueError: when the shape is not (256, 256) or the values are not int32 integers.
    """
    lut32 = check_lut(lut)
    sha = hashlib.sha256(lut32.tobytes()).hexdigest()
    key = (sha, max_rank)
    with _TABLES_LOCK:
        table = _TABLES.get(key)
    if table is not None:
        return table
    lut32 = lut32.copy()
    lut32.setflags(write=False)
    lut16, offset16 = None, 0
    if int(lut32.max()) - int(lut32.min()) <= np.iinfo(np.uint16).max:
        offset16 = int(lut32.min())
        lut16 = (lut32.astype(np.int64) - offset16).astype(np.uint16)
        lut16.setflags(write=False)
    lowrank = find_low_rank(lut32, max_rank=max_rank)
    table = LutTable(lut=lut32, lut16=lut16, offset16=offset16, lowrank=lowrank, sha256=sha, max_rank=max_rank)
    with _TABLES_LOCK:
        return _TABLES.setdefault(key, table)
