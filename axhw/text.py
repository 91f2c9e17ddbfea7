"""Plain-text tables for the terminal (``axhw list``, ``axhw doctor``, hardware-cost tables)."""

from __future__ import annotations

from typing import Sequence

__all__ = ["text_table"]


def text_table(rows: Sequence[Sequence[str]], left: int = 1) -> str:
    """Rows as aligned columns, the first row a header underlined with dashes.

    Args:
        rows: the header, then one row per line; every row has the header's length.
        left: how many leading columns are left-aligned (names); the rest are
            right-aligned so that numbers line up on their last digit.
    """
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) if i < left else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    return "\n".join([line(rows[0]), "  ".join("-" * w for w in widths), *(line(row) for row in rows[1:])])
