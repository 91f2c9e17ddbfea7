"""Every example script is listed in examples/README.md's command block, and the docs' links resolve.

The scripts themselves run as ``examples/README.md`` shows them, with every other documented
command, in ``tests/test_docs_commands.py`` (``slow``).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import _docs_harness as docs

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))
DOCS = [ROOT / "README.md", ROOT / "examples" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def test_every_capability_has_an_example():
    names = {p.stem for p in EXAMPLES}
    assert {"add_design", "emulate", "retrain", "search_report"} <= names


def test_the_examples_readme_runs_every_script():
    page = ROOT / "examples" / "README.md"
    run = [b for b in docs.command_blocks(page.read_text(encoding="utf-8"), "examples/README.md") if b.mode == "run"]
    scripts = {words[1] for b in run for line in docs.commands(b) for words in docs.simple_commands(line)
               if words[0] == ".venv/bin/python" and len(words) > 1}
    assert scripts == {f"examples/{p.name}" for p in EXAMPLES}, "examples/README.md must run each script once"


@pytest.mark.parametrize("page", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page):
    text = page.read_text(encoding="utf-8")
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue
        path = (page.parent / target.split("#", 1)[0]).resolve()
        assert path.exists(), f"{page.relative_to(ROOT)}: link to {target} points at nothing"
