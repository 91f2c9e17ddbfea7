"""The examples run as written, and the README's commands name real subcommands."""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))
DOCS = [ROOT / "README.md", ROOT / "examples" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def test_every_capability_has_an_example():
    names = {p.stem for p in EXAMPLES}
    assert {"add_design", "emulate", "retrain", "search_report"} <= names


@pytest.mark.slow
@pytest.mark.parametrize("script", EXAMPLES, ids=lambda p: p.stem)
def test_example_runs(script, tmp_path):
    if script.stem == "add_design" and shutil.which("iverilog") is None:
        pytest.skip("iverilog not installed (axhw doctor)")
    env = dict(os.environ, OMP_NUM_THREADS="1", AXHW_THREADS="1", MPLBACKEND="Agg")
    args = [sys.executable, str(script)]
    if script.stem == "search_report":
        args.append(str(tmp_path / "search"))
    proc = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"{script.name} exited {proc.returncode}:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    assert proc.stdout.strip(), f"{script.name} printed nothing"
    if script.stem == "search_report":
        assert (tmp_path / "search" / "report" / "report.html").is_file()
        assert (tmp_path / "search" / "search_result.json").is_file()


@functools.lru_cache(maxsize=None)
def _subcommands() -> frozenset[str]:
    script = Path(sys.executable).parent / "axhw"
    command = [str(script)] if script.is_file() else [sys.executable, "-m", "axhw.cli"]
    out = subprocess.run([*command, "--help"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    choices = re.search(r"\{([a-z,_-]+)\}", out.stdout)
    if choices:
        return frozenset(choices.group(1).split(","))
    block = out.stdout.split("positional arguments:", 1)[1].split("options:", 1)[0]
    return frozenset(re.findall(r"^    ([a-z][a-z_-]*)\b", block, flags=re.M))


def _axhw_command_lines(text: str) -> list[str]:
    lines = []
    for block in re.findall(r"^```bash\n(.*?)^```", text, flags=re.M | re.S):
        lines += [line.strip() for line in block.splitlines() if re.match(r"\s*(\S+=\S+\s+)*\.venv/bin/axhw\b", line)]
    return lines


def test_subcommand_parser_sees_the_cli():
    assert {"add", "list", "emulate", "search", "report"} <= _subcommands()


@pytest.mark.parametrize("page", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_documented_commands_name_real_subcommands(page):
    commands = _subcommands()
    lines = _axhw_command_lines(page.read_text(encoding="utf-8"))
    if page.name == "README.md" and page.parent == ROOT:
        assert len(lines) >= 5, "the README's tour lost its commands"
    for line in lines:
        words = re.sub(r"^(\S+=\S+\s+)*\.venv/bin/axhw\s*", "", line).split()
        while words and words[0].startswith("-"):
            words = words[2:] if words[0] == "--threads" else words[1:]
        assert words and words[0] in commands, f"{page.name}: `{line}` names no axhw subcommand ({sorted(commands)})"


@pytest.mark.parametrize("page", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page):
    text = page.read_text(encoding="utf-8")
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue
        path = (page.parent / target.split("#", 1)[0]).resolve()
        assert path.exists(), f"{page.relative_to(ROOT)}: link to {target} points at nothing"
