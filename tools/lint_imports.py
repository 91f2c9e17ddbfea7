"""Check the import-linter contracts of ``pyproject.toml`` against the whole ``axhw`` import tree.

``lint-imports`` (grimp) finds a package's modules by walking the package's folder,
so it cannot see ``axhw.emulator`` or ``axhw.search``: the ``package-dir`` mapping in
``pyproject.toml`` puts them in the top-level folders ``emulator/`` and ``search/``.
This script copies every mapped folder's ``.py`` files into one ``axhw/`` tree in a
temporary folder, laid out as Python imports them, and runs ``lint-imports`` there
with the repository's contracts.  ``make test`` runs it through
``tests/test_layers.py``.

Usage::

    python tools/lint_imports.py            # exit 0 when every contract holds
    python tools/lint_imports.py --verbose  # any extra argument goes to lint-imports
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

#: Runs import-linter's command line in the interpreter that runs this script, so
#: that no ``lint-imports`` executable has to be on ``PATH``.
_LINT = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"


def package_dirs(repo: Path = REPO) -> dict[str, Path]:
    """Package name -> source folder, from ``[tool.setuptools] package-dir`` (shallowest first)."""
    config = tomllib.loads((repo / "pyproject.toml").read_text())
    mapping = config["tool"]["setuptools"]["package-dir"]
    return {name: repo / folder for name, folder in sorted(mapping.items(), key=lambda kv: kv[0].count("."))}


def build_tree(dest: Path, repo: Path = REPO) -> Path:
    """Copy the ``.py`` files of every mapped package into ``dest`` as one import tree; returns ``dest``."""
    for package, source in package_dirs(repo).items():
        target = dest.joinpath(*package.split("."))
        for path in source.rglob("*.py"):
            if "__pycache__" in path.parts:
                continue
            out = target / path.relative_to(source)
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, out)
    return dest


def lint(tree: Path, *args: str, repo: Path = REPO) -> subprocess.CompletedProcess:
    """Run ``lint-imports`` with ``repo``'s contracts on the import tree in ``tree``.

    The run starts in ``tree`` (lint-imports puts the working folder first on
    ``sys.path``), so ``axhw`` resolves to the copy and not to the installed package.
    """
    env = {**os.environ, "PYTHONPATH": str(tree)}
    cmd = [sys.executable, "-c", _LINT, str(repo / "pyproject.toml"), "--no-cache", *args]
    return subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True)


def main(argv: list[str] | None = None) -> int:
    with tempfile.TemporaryDirectory(prefix="axhw-imports-") as tmp:
        proc = lint(build_tree(Path(tmp)), *(sys.argv[1:] if argv is None else argv))
    sys.stdout.write(proc.stdout)
    sys.stderr.write(proc.stderr)
    return proc.returncode


if __name__ == "__main__":
    raise SystemExit(main())
