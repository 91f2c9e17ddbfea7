"""The core helpers every layer shares: the text table, the tool-version probe, the exact table."""

from __future__ import annotations

import numpy as np
import pytest

from axhw.exact import EXACT, exact_lut
from axhw.text import text_table
from axhw.tools import VERSION_QUERIES, tool_version


def test_text_table_aligns_names_left_and_numbers_right():
    table = text_table([("name", "MAE"), ("exact", "0.00"), ("drum_k4", "240.69")], left=1)
    assert table.splitlines() == [
        "name        MAE",
        "-------  ------",
        "exact      0.00",
        "drum_k4  240.69",
    ]


def test_text_table_left_columns_carry_no_trailing_blanks():
    table = text_table([("a", "note"), ("bb", ""), ("c", "long note")], left=2)
    assert all(line == line.rstrip() for line in table.splitlines())
    assert table.splitlines()[1] == "--  ---------"


def _fake_tool(folder, name: str, output: str) -> None:
    path = folder / name
    path.write_text(f"#!/bin/sh\necho '{output}'\n")
    path.chmod(0o755)


def test_tool_version_reads_the_version_or_says_unknown(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert tool_version("yosys") is None  # not on PATH
    _fake_tool(tmp_path, "yosys", "Yosys 0.99+1 (git sha1 abc)")
    assert tool_version("yosys") == "0.99+1"
    _fake_tool(tmp_path, "sta", "no version here")
    assert tool_version("sta") == "unknown"


def test_every_version_query_names_a_group():
    for exe, (args, pattern) in VERSION_QUERIES.items():
        assert args and "(" in pattern, exe


def test_emulator_serves_the_core_exact_table_read_only():
    from axhw.emulator import EXACT as EMULATOR_EXACT
    from axhw.emulator import load_lut
    from axhw.search import EXACT as SEARCH_EXACT

    assert EMULATOR_EXACT == SEARCH_EXACT == EXACT
    lut = load_lut(EXACT)
    np.testing.assert_array_equal(lut, exact_lut())
    with pytest.raises(ValueError):
        lut[0, 0] = 1
