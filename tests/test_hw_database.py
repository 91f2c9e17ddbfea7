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


def test_committed_costs_of_unsigned_designs_are_of_the_signed_wrapper():
    """hw.json of an unsigned design holds the cost of its sign-magnitude wrapper, not of the bare core."""
    import json

    from axhw import hw

    for mult in library.load_all():
        if mult.signed:
            continue
        design = hw.as_design(mult)
        data = json.loads(design.hw_json.read_text())
        assert data["design_sha256"] == design.design_sha256, (
            f"{mult.name}: hw.json is not for the wrapper {design.ports.module}; run `axhw characterize --hw {mult.name}`")
        assert mult.hw is not None and mult.hw.cell_count > 0
