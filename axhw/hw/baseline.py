"""The exact design every saving is measured against.

A saving is only as honest as its reference.  The behavioural ``exact`` (yosys's
mapping of a signed ``a*b``) is not the cheapest exact multiplier the library
holds, so a saving against it mixes the gain of approximation with the gain of a
better exact array.  :func:`best_exact` names the reference instead: the
zero-error database entry with the lowest energy per multiplication for the same
operand format (8x8 operands as the datapath sees them: signed int8, unsigned
cores in their sign-magnitude wrapper), on one Liberty library and operand stream.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from axhw.errors import DatabaseError
from axhw.exact import EXACT
from axhw.records import DEFAULT_LIBERTY, HardwareCost

__all__ = ["Baseline", "best_exact", "saving", "BEHAVIOURAL_EXACT"]

#: The behavioural reference design; savings against it may stand beside the baseline's, labelled.
BEHAVIOURAL_EXACT = EXACT


@dataclass(frozen=True)
class Baseline:
    """The cheapest zero-error design for one operand format, Liberty library and stream.

    Attributes:
        name: database name of the baseline design.
        cost: its hardware cost (``energy_pj`` is the reference energy, pJ per multiplication).
        liberty: cell library of the costs compared.
        operand_stream: operand stream of the costs compared (``"uniform"`` by default).
        operand_widths: (a, b) operand widths of the format (bits).
        compared: energy per multiplication (pJ) of every zero-error design considered.
    """

    name: str
    cost: HardwareCost
    liberty: str
    operand_stream: str
    operand_widths: tuple[int, int]
    compared: dict[str, float]

    @property
    def energy_pj(self) -> float:
        """Reference energy per multiplication (pJ)."""
        return self.cost.energy_pj

    def label(self) -> str:
        """How a saving against this baseline is named in tables and reports."""
        return f"{self.name} (cheapest zero-error design, {self.liberty}, {self.operand_stream} operands)"


def saving(energy_pj: float, reference_pj: float) -> float:
    """Fraction of ``reference_pj`` saved by ``energy_pj`` (negative when it costs more)."""
    return 1.0 - energy_pj / reference_pj


def best_exact(liberty: str = DEFAULT_LIBERTY, stream: str = "uniform", *, names: Iterable[str] | None = None,
               operand_widths: tuple[int, int] = (8, 8)) -> Baseline:
    """The zero-error database entry with the lowest energy per multiplication.

    Zero error means an error rate of 0 over all operand pairs (the table equals
    ``a·b``).  Entries that fail to load (stale, corrupt) or have no cost for
    ``liberty`` and ``stream`` are skipped; ties go to the smaller area, then the name.

    Args:
        liberty: cell-library name of the costs (``HardwareCost.liberty``).
        stream: operand-stream label of the costs (``"uniform"``: the seeded uniform stream).
        names: database names to consider (``None``: every entry).
        operand_widths: operand widths of the format.

    Raises:
        DatabaseError: no zero-error entry of that format has such a cost (the message
            says how to characterize one).
    """
    from axhw import library

    found: list[tuple[float, float, str, HardwareCost]] = []
    for name in (library.names() if names is None else names):
        try:
            m = library.load(name)
        except DatabaseError:
            continue
        if m.metrics.error_rate != 0 or (m.ports.a_width, m.ports.b_width) != tuple(operand_widths):
            continue
        cost = next((c for c in m.costs if c.liberty == liberty and c.operand_stream == stream), None)
        if cost is not None:
            found.append((cost.energy_pj, cost.area_um2, name, cost))
    if not found:
        raise DatabaseError(f"no zero-error {operand_widths[0]}x{operand_widths[1]} multiplier has a {liberty} cost for "
                            f"{stream} operands, so savings have no reference; characterize one with "
                            f"`axhw characterize --hw exact_u` (or any exact design)")
    found.sort(key=lambda t: (t[0], t[1], t[2]))
    energy, _, name, cost = found[0]
    return Baseline(name, cost, liberty, stream, tuple(operand_widths), {n: e for e, _, n, _ in found})
