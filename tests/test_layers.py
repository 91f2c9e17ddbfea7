"""The package's structure: imports point one way, private names stay home, no name shadows a module.

The layer contract itself is ``[tool.importlinter]`` in ``pyproject.toml``; these
tests run it (through ``tools/lint_imports.py``, which lays the mapped folders out as
one import tree) and show that it is not vacuous: a backwards import makes it fail.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

def _lint_tool():
    spec = importlib.util.spec_from_file_location("axhw_lint_imports", REPO / "tools" / "lint_imports.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


lint_tool = _lint_tool()


def test_layer_contract_holds(tmp_path):
    proc = lint_tool.lint(lint_tool.build_tree(tmp_path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 kept, 0 broken" in proc.stdout


def test_tree_holds_every_mapped_package(tmp_path):
    tree = lint_tool.build_tree(tmp_path)
    for package in lint_tool.package_dirs():
        assert (tree.joinpath(*package.split(".")) / "__init__.py").is_file(), package


@pytest.mark.parametrize(
    ("module", "line", "expected"),
    [
        # a lower layer reaching up, at module level
        ("axhw/emulator/_backwards_probe.py", "import axhw.search\n", "axhw.emulator._backwards_probe -> axhw.search"),
        # the core reaching up from inside a function: lazy imports count too
        ("axhw/records.py", "\n\ndef _probe():\n    from axhw import library\n", "axhw.records -> axhw.library"),
        # the report importing the command line
        ("axhw/report/_backwards_probe.py", "from axhw.commands import report\n", "axhw.report._backwards_probe -> axhw.commands"),
    ],
)
def test_contract_fails_on_a_backwards_import(tmp_path, module, line, expected):
    tree = lint_tool.build_tree(tmp_path)
    path = tree / module
    path.write_text((path.read_text() if path.exists() else "") + line)
    proc = lint_tool.lint(tree)
    assert proc.returncode != 0
    assert "BROKEN" in proc.stdout and expected in proc.stdout, proc.stdout


def test_contract_fails_on_a_module_without_a_layer(tmp_path):
    tree = lint_tool.build_tree(tmp_path)
    (tree / "axhw" / "unplaced.py").write_text("X = 1\n")
    proc = lint_tool.lint(tree)
    assert proc.returncode != 0
    assert "axhw.unplaced" in proc.stdout + proc.stderr


def _package_sources() -> dict[str, Path]:
    """Module name -> source file of every module of the mapped packages."""
    out = {}
    for package, folder in lint_tool.package_dirs().items():
        for path in folder.rglob("*.py"):
            rel = path.relative_to(folder).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            out[".".join([package, *parts])] = path
    return out


def _imported_module(module: str, node: ast.ImportFrom, is_package: bool) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".")
    base = base[: len(base) - node.level + (1 if is_package else 0)]
    return ".".join(base + ([node.module] if node.module else []))


def _subpackage(module: str) -> str:
    """``axhw.emulator.kernels.table`` -> ``axhw.emulator``; ``axhw.library`` -> ``axhw.library``."""
    return ".".join(module.split(".")[:2])


def test_no_private_name_is_imported_from_another_package():
    """A ``_helper`` serves its own package; another package that needs it wants a public name."""
    found = []
    for module, path in _package_sources().items():
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.ImportFrom):
                continue
            source = _imported_module(module, node, path.name == "__init__.py")
            if not source.startswith("axhw") or _subpackage(source) == _subpackage(module):
                continue
            for alias in node.names:
                if alias.name.startswith("_") and not alias.name.startswith("__"):
                    found.append(f"{path.relative_to(REPO)}:{node.lineno} imports {alias.name} from {source}")
    assert not found, "\n".join(found)


def test_imports_are_absolute():
    """``from ..library import x`` climbs folders that the package-dir mapping does not lay out on disk."""
    found = []
    for module, path in _package_sources().items():
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.ImportFrom) and node.level:
                found.append(f"{path.relative_to(REPO)}:{node.lineno} from {'.' * node.level}{node.module or ''}")
    assert not found, "write these imports absolute (from axhw.… import …):\n" + "\n".join(found)


@pytest.mark.parametrize("package", ["axhw", "axhw.emulator", "axhw.emulator.kernels", "axhw.search", "axhw.hw",
                                     "axhw.report", "axhw.commands"])
def test_no_public_name_shadows_a_submodule(package):
    """A function named like a submodule hides the module from ``from package import name``."""
    pkg = importlib.import_module(package)
    submodules = {info.name for info in pkgutil.iter_modules(pkg.__path__)}
    public = set(getattr(pkg, "__all__", ())) | {n for n in vars(pkg) if not n.startswith("_")}
    shadowing = sorted(name for name in submodules & public
                       if not isinstance(getattr(pkg, name), type(pkg)))
    assert not shadowing, f"{package}: {', '.join(shadowing)} name both a submodule and something else"


def test_reading_a_result_loads_no_deep_learning_stack(tmp_path):
    """``axhw report`` works from a result file: torch, timm and numba stay unloaded."""
    from axhw.records import OpInfo
    from axhw.search.result import Evaluation, SearchResult

    ops = [OpInfo("blocks.0.mlp.fc1", "linear", 10), OpInfo("blocks.0.attn.qk", "qk", 30)]
    config = {op.name: "exact" for op in ops}
    path = SearchResult("m", "digits", ops, ["exact"], "uniform", 0, 1.0, 0.91, 0.9,
                        [Evaluation(0, "reference", config, 0.9, 1.0)]).save(tmp_path / "result.json")
    code = ("import sys; from axhw.report import load_result; import axhw.commands.report; "
            f"assert load_result({str(path)!r}).ops[0].kind == 'linear'; "
            "print(sorted(m for m in ('torch', 'timm', 'numba') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]", proc.stdout
