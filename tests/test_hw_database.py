"""The committed database carries the hardware cost of every library design."""

from __future__ import annotations

from axhw import library


def test_committed_database_has_hardware_costs():
    """Every library design has area, delay and uniform-operand power on osu018 in multipliers_db/."""
    missing = [m.name for m in library.load_all() if m.hw is None]
    assert not missing, f"no current hw.json for {missing}: run `axhw characterize --hw --all`"
    entries = {m.name: m.hw for m in library.load_all()}
    for name in [m.name for m in library.load_all() if m.family == "truncation"]:
        assert entries[name].area_um2 < entries["exact"].area_um2
        assert entries[name].power_mw < entries["exact"].power_mw
