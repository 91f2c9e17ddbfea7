"""Every shell command in README.md, docs/*.md and examples/README.md parses, and runs as written.

The harness is ``tests/_docs_harness.py``.  Fast tests classify and parse every block; the
``slow`` test runs each page's runnable blocks in order in a scratch folder that looks like a
fresh clone (``AXHW_DB`` a copy of the bundled database, one ``AXHW_CACHE`` for the session).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

import _docs_harness as docs
from _docs_harness import DocsError

ROOT = docs.ROOT
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "examples" / "README.md"]
IDS = [str(p.relative_to(ROOT)) for p in PAGES]


def _blocks(page: Path) -> list[docs.Block]:
    return docs.command_blocks(page.read_text(encoding="utf-8"), str(page.relative_to(ROOT)))


def _has_run_block(page: Path) -> bool:
    try:
        return any(b.mode == "run" for b in _blocks(page))
    except DocsError:  # collected anyway, so the run test reports it; the fast tests say why
        return True


RUN_PAGES = [p for p in PAGES if _has_run_block(p)]


# ------------------------------------------------------------------------- the pages


@pytest.mark.parametrize("page", PAGES, ids=IDS)
def test_no_block_left_unclassified(page):
    """Commands sit only in shell blocks, and each shell block runs or says why it is only parsed."""
    for block in _blocks(page):
        assert block.mode in {"run", "parse-only"}, block.where
        assert block.mode == "run" or block.reason, f"{block.where}: a parse-only block must say why"
        docs.lint(block)


def test_the_readme_tour_runs():
    tour = [b for b in _blocks(ROOT / "README.md") if b.mode == "run"]
    assert tour and sum(len(docs.commands(b)) for b in tour) >= 5, "the README's tour lost its commands"


def test_parse_only_blocks_parse():
    """One test for all pages: their python programs are parsed in one child interpreter."""
    pages = {str(page.relative_to(ROOT)): page.read_text(encoding="utf-8") for page in PAGES}
    assert docs.parse_check(pages) >= 10


@pytest.mark.parametrize("page", PAGES, ids=IDS)
def test_axhw_lines_of_run_blocks_parse(page):
    """The quick half of the slow run: every ``axhw`` line, run or not, parses with the real CLI parser."""
    for block in _blocks(page):
        for line, words in docs.programs(block):
            if words[0] == ".venv/bin/axhw" and "..." not in words:
                assert docs._parse_axhw(words[1:]) == "ok", f"{block.where}: `{line}` does not parse"


@pytest.fixture(scope="session")
def docs_cache(tmp_path_factory):
    """One cache for the whole run: later pages re-use the evaluations of earlier ones, as a reader's would."""
    return tmp_path_factory.mktemp("docs-cache")


_GUARDED = ("multipliers_db", "rtl", "axhw/weights", "benchmarks", "constraints.txt", "examples/evoapprox")


def _git_status() -> str | None:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        return None
    # where a documented command could write by mistake (the database, the RTL, the weights, inputs)
    out = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all", "--", *_GUARDED],
                         cwd=ROOT, capture_output=True, text=True)
    return out.stdout if out.returncode == 0 else None


@pytest.mark.slow
@pytest.mark.parametrize("page", RUN_PAGES, ids=[str(p.relative_to(ROOT)) for p in RUN_PAGES])
def test_page_commands_run(page, tmp_path, docs_cache):
    """Each runnable block of the page, in order, in one fresh-clone scratch folder, exits 0."""
    if shutil.which("iverilog") is None or shutil.which("yosys") is None:
        pytest.skip("system tools missing (axhw doctor)")
    before = _git_status()
    clone = tmp_path / "clone"
    env = docs.scratch_clone(clone, tmp_path / "db", docs_cache)
    times = []
    for block in _blocks(page):
        if block.mode == "run":
            times.append(f"{block.where} {docs.run_block(block, clone, env):.1f} s")
    print("\n" + "\n".join(times))
    assert _git_status() == before, "a documented command wrote into the repository"


# ------------------------------------------------------------------ the harness itself

GOOD = """
Intro.

```bash
.venv/bin/axhw list                      # comment
```

<!-- docs-test: parse-only (needs a CUDA GPU) -->
```bash
.venv/bin/axhw emulate --multiplier drum_k4 \\
    --device cuda --eval-size 16
.venv/bin/python -m axhw.data export digits-folder --per-class 2
make demo
```

```python
axhw nonsense here is python, not shell
```
"""


def test_harness_classifies_and_accepts_good_docs():
    found = docs.command_blocks(GOOD, "good.md")
    assert [b.mode for b in found] == ["run", "parse-only"]
    assert found[1].reason == "needs a CUDA GPU"
    assert docs.commands(found[1])[0] == ".venv/bin/axhw emulate --multiplier drum_k4      --device cuda --eval-size 16"
    assert docs.parse_check({"good.md": GOOD}) == 1


@pytest.mark.parametrize("snippet, message", [
    ("<!-- docs-test: parse-only (gpu) -->\n```bash\n.venv/bin/axhw emulate --no-such-flag 3\n```\n", "does not parse"),
    ("<!-- docs-test: parse-only (gpu) -->\n```bash\n.venv/bin/axhw emulat --multiplier x\n```\n", "does not parse"),
    ("<!-- docs-test: parse-only (slow) -->\n```bash\n.venv/bin/python -m venv --no-such-flag .venv2\n```\n",
     "does not parse"),
    ("<!-- docs-test: parse-only (slow) -->\n```bash\n.venv/bin/python -m axhw.training --no-such-flag\n```\n", "does not parse"),
    ("<!-- docs-test: parse-only (slow) -->\n```bash\nmake no-such-target\n```\n", "does not parse"),
    ("<!-- docs-test: parse-only (slow) -->\n```bash\n.venv/bin/pip install --no-such-option .\n```\n", "does not parse"),
    ("<!-- docs-test: parse-only (ray) -->\n```bash\n.venv/bin/axhw search --budget 3 ...\n```\n", "placeholder"),
    ("<!-- docs-test: parse-only (why) -->\n```bash\nrm -rf /tmp/x\n```\n", "cannot parse-check"),
    ("```bash\naxhw list\n```\n", "write `.venv/bin/axhw`"),
    ("```bash\npython benchmarks/hwcost.py\n```\n", "write `.venv/bin/python`"),
    ("```\n.venv/bin/axhw list\n```\n", "unlabelled block"),
    ("<!-- docs-test: maybe -->\n```bash\n.venv/bin/axhw list\n```\n", "unknown docs-test marker"),
    ("<!-- docs-test: parse-only (x) -->\n\nText.\n```bash\n.venv/bin/axhw list\n```\n", "must stand right before"),
])
def test_harness_fails_bad_docs(snippet, message):
    with pytest.raises(DocsError, match=message):
        docs.parse_check({"bad.md": snippet})


def test_harness_run_fails_a_failing_command_and_a_missing_output(tmp_path):
    clone = tmp_path / "clone"
    env = docs.scratch_clone(clone, tmp_path / "db", tmp_path / "cache")
    assert (tmp_path / "db" / "drum_k4" / "record.json").is_file() and env["AXHW_DB"] == str(tmp_path / "db")
    ok, bad_flag, missing = docs.command_blocks(
        "```bash\necho hi > made.txt   # a comment\n```\n"
        "```bash\n.venv/bin/axhw list --no-such-flag\necho never\n```\n"
        "<!-- docs-test: run, creates made.txt nothing.txt -->\n```bash\ntrue\n```\n", "run.md")
    start = time.perf_counter()
    docs.run_block(ok, clone, env)
    assert (clone / "made.txt").read_text() == "hi\n"
    with pytest.raises(DocsError, match=r"exited 2:(.|\n)*no-such-flag(.|\n)*failed: \.venv/bin/axhw list"):
        docs.run_block(bad_flag, clone, env)
    with pytest.raises(DocsError, match="left no nothing.txt"):
        docs.run_block(missing, clone, env)
    assert time.perf_counter() - start < 60


def test_here_documents_are_data_not_commands():
    (block,) = docs.command_blocks("```bash\ncat > cfg.json <<'EOF'\n{\"*\": \"it's\"}\naxhw not a command\nEOF\ntrue\n```\n", "h.md")
    assert docs.commands(block) == ["cat > cfg.json <<'EOF'", "true"]
    docs.lint(block)


def test_console_blocks_run_only_the_prompted_lines():
    (block,) = docs.command_blocks("```console\n$ .venv/bin/axhw list \\\n    --threads 1\nname  MAE\n$ true\ndone\n```\n", "c.md")
    assert docs.commands(block) == [".venv/bin/axhw list      --threads 1", "true"]


# ------------------------------------------------------- the docs' stand-in image folder


def test_export_digits_writes_the_digits_splits_as_an_image_folder(tmp_path):
    from axhw.data import export_digits, get_dataset
    from axhw.errors import DataError

    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits

    assert export_digits(tmp_path / "f", per_class=2, splits=("train", "test")) == {"train": 20, "test": 20}
    folder = get_dataset(f"imagefolder:{tmp_path / 'f'}", "test")
    assert len(folder) == 20 and sorted({int(y) for _, y in folder}) == list(range(10))
    bunch = load_digits()
    for png in (tmp_path / "f" / "test").glob("*/*.png"):  # <label>/<digits index>.png, the original pixels
        i = int(png.stem)
        assert int(png.parent.name) == bunch.target[i]
        np.testing.assert_array_equal(np.asarray(Image.open(png)), np.round(bunch.images[i] / 16 * 255).astype(np.uint8))
    with pytest.raises(DataError, match="per_class"):
        export_digits(tmp_path / "g", per_class=0)
    with pytest.raises(DataError, match="calib"):
        export_digits(tmp_path / "g", splits=("calib",))
