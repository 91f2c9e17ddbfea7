"""Find, classify, parse-check and run the shell commands of the documentation pages.

A fenced block whose language is ``bash``, ``sh``, ``shell`` or ``console`` holds commands.
By default a block *runs*: its text, verbatim, is a bash script (``set -e``, pipefail) run in a
scratch folder that looks like a fresh clone.  A block the test machine cannot run as written
carries a marker on the line before its fence::

    <!-- docs-test: parse-only (needs a CUDA GPU) -->

and then each of its commands is only parsed: ``.venv/bin/axhw`` lines by the real CLI parser,
``.venv/bin/python SCRIPT``/``-m MODULE`` lines by that program's own argparse parser (the
program is run until it has parsed its arguments, then stopped), ``make TARGET`` by ``make -n``
and ``pip SUB`` by checking its flags against ``pip SUB --help``.  A run block may also say what
it leaves behind: ``<!-- docs-test: run, creates out/report/report.html -->``.

In a ``console`` block the commands are the lines starting with ``$ `` (with their ``\\``
continuations); everything else is output.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parents[1]
SHELL_LANGS = frozenset({"bash", "sh", "shell", "console"})
#: Unlabelled lines that look like a command the reader is meant to type.
_COMMANDISH = re.compile(r"^\s*(\$ |\.venv/bin/|axhw |python3? |make |pip |iverilog )")
_MARKER = re.compile(r"<!--\s*docs-test:\s*(?P<body>.*?)\s*-->")
_FENCE = re.compile(r"^```(?P<lang>[A-Za-z0-9_+-]*)\s*$")

__all__ = [
    "DocsError", "Block", "blocks", "command_blocks", "commands", "simple_commands",
    "lint", "parse_check", "parse_check_blocks", "scratch_clone", "run_block",
]


class DocsError(AssertionError):
    """A documented command that does not parse, does not run, or is not classified."""


@dataclass(frozen=True)
class Block:
    """One fenced block of a page.

    ``mode`` is ``"run"`` or ``"parse-only"`` for a shell block (``None`` otherwise);
    ``line`` is the 1-based line of the opening fence.
    """

    page: str
    line: int
    lang: str
    text: str
    mode: str | None = None
    reason: str = ""
    creates: tuple[str, ...] = ()

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"


def _marker(lines: list[str], fence: int, page: str) -> tuple[str, str, tuple[str, ...]] | None:
    """The docs-test marker on the last non-blank line before the fence at index ``fence``."""
    k = fence - 1
    while k >= 0 and not lines[k].strip():
        k -= 1
    if k < 0:
        return None
    found = _MARKER.search(lines[k])
    if not found:
        return None
    body = found.group("body")
    where = f"{page}:{k + 1}"
    parse = re.fullmatch(r"parse-only\s*\((?P<reason>.+)\)", body)
    if parse:
        return "parse-only", parse.group("reason").strip(), ()
    run = re.fullmatch(r"run(?:\s*,\s*creates\s+(?P<paths>.+))?", body)
    if run:
        return "run", "", tuple(run.group("paths").split()) if run.group("paths") else ()
    raise DocsError(f"{where}: unknown docs-test marker {body!r}; write `run`, `run, creates PATH...` "
                    "or `parse-only (why it cannot run here)`")


def blocks(text: str, page: str = "<text>") -> list[Block]:
    """Every fenced block of a markdown text, with its docs-test classification."""
    lines = text.splitlines()
    out: list[Block] = []
    i = 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if not opening:
            if _MARKER.search(lines[i]):
                j = i + 1
                while j < len(lines) and not lines[j].strip():
                    j += 1
                fence = _FENCE.match(lines[j]) if j < len(lines) else None
                if not fence or fence.group("lang") not in SHELL_LANGS:
                    raise DocsError(f"{page}:{i + 1}: a docs-test marker must stand right before a ```bash block")
            i += 1
            continue
        end = i + 1
        while end < len(lines) and not lines[end].startswith("```"):
            end += 1
        if end == len(lines):
            raise DocsError(f"{page}:{i + 1}: code fence is never closed")
        lang = opening.group("lang").lower()
        body = "\n".join(lines[i + 1:end]) + "\n"
        if lang in SHELL_LANGS:
            mode, reason, creates = _marker(lines, i, page) or ("run", "", ())
            out.append(Block(page, i + 1, lang, body, mode, reason, creates))
        else:
            out.append(Block(page, i + 1, lang, body))
        i = end + 1
    return out


def command_blocks(text: str, page: str = "<text>") -> list[Block]:
    """The shell blocks of a page; raises :class:`DocsError` for an unlabelled block of commands."""
    found = blocks(text, page)
    for block in found:
        if not block.lang:
            for line in block.text.splitlines():
                if _COMMANDISH.match(line):
                    raise DocsError(f"{block.where}: this unlabelled block holds the command `{line.strip()}`; "
                                    "label it ```bash (or ```console with `$ ` prompts) so the docs test covers it")
    return [b for b in found if b.mode is not None]


def _script(block: Block) -> str:
    """The block as a bash script: verbatim, or a console block's ``$ `` commands."""
    if block.lang != "console":
        return block.text
    kept: list[str] = []
    continuing = False
    for line in block.text.splitlines():
        if line.startswith("$ "):
            kept.append(line[2:])
        elif continuing:
            kept.append(line)
        else:
            continue
        continuing = line.rstrip().endswith("\\")
    return "\n".join(kept) + "\n"


def commands(block: Block) -> list[str]:
    """The logical command lines of a block: continuations joined, comment-only lines and here-document bodies dropped."""
    joined = re.sub(r"\\\n", " ", _script(block))
    out: list[str] = []
    until: str | None = None  # the terminator of the here-document being skipped
    for line in joined.splitlines():
        if until is not None:
            until = None if line.strip() == until else until
            continue
        if line.strip() and not line.strip().startswith("#"):
            out.append(line.strip())
            heredoc = re.search(r"<<-?\s*(['\"]?)(\w+)\1", line)
            until = heredoc.group(2) if heredoc else None
    return out


def simple_commands(line: str) -> list[list[str]]:
    """Split one command line into simple commands (at ``&&``, ``||``, ``;``, ``|``), comments dropped."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|")
    lexer.whitespace_split = True
    lexer.commenters = "#"
    out: list[list[str]] = [[]]
    for token in lexer:
        if token in {"&&", "||", ";", "|", "&"}:
            out.append([])
        else:
            out[-1].append(token)
    return [words for words in out if words]


def _program(words: list[str]) -> list[str]:
    """``words`` without leading ``NAME=value`` assignments."""
    k = 0
    while k < len(words) and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", words[k]):
        k += 1
    return words[k:]


def programs(block: Block) -> Iterator[tuple[str, list[str]]]:
    """``(line, words)`` of every simple command of the block that runs a program (assignments stripped)."""
    for line in commands(block):
        for words in simple_commands(line):
            words = _program(words)
            if words:
                yield line, words

def lint(block: Block) -> None:
    """The conventions every documented command follows (a fresh clone has no activated venv)."""
    for line, words in programs(block):
        prog = words[0]
        if prog == "axhw":
            raise DocsError(f"{block.where}: `{line}`: write `.venv/bin/axhw`, the venv is not on PATH in a fresh clone")
        if prog in {"python", "python3"} and words[1:3] != ["-m", "venv"]:
            raise DocsError(f"{block.where}: `{line}`: write `.venv/bin/python`; only `python -m venv` "
                            "runs before the venv exists")
        if prog in {"pip", "pip3"}:
            raise DocsError(f"{block.where}: `{line}`: write `.venv/bin/pip`")


# ------------------------------------------------------------------------------ parse-only

#: Run in a child interpreter: each (cwd, kind, target, argv) runs until its argparse parser
#: has parsed argv, then stops; prints one JSON result per item.
_PARSE_CHILD = r"""
import argparse, contextlib, io, json, os, runpy, sys
class Parsed(BaseException):
    pass
_original = argparse.ArgumentParser.parse_args
def parse_args(self, args=None, namespace=None):
    _original(self, args, namespace)
    raise Parsed()
argparse.ArgumentParser.parse_args = parse_args
results = []
for cwd, kind, target, argv in json.loads(sys.argv[1]):
    os.chdir(cwd)
    err = io.StringIO()
    status = "ran without parsing its arguments with argparse"
    sys.argv = [target, *argv]
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            if kind == "module":
                runpy.run_module(target, run_name="__main__", alter_sys=True)
            else:
                sys.path.insert(0, os.path.dirname(os.path.abspath(target)))
                runpy.run_path(target, run_name="__main__")
    except Parsed:
        status = "ok"
    except SystemExit as exc:
        status = f"exit {exc.code}: {err.getvalue().strip()[-600:]}"
    except BaseException as exc:
        status = f"{type(exc).__name__}: {exc} {err.getvalue().strip()[-300:]}"
    results.append(status)
print(json.dumps(results))
"""


def _parse_axhw(argv: list[str]) -> str:
    from axhw.cli import build_parser

    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            args = build_parser().parse_args(argv)
    except SystemExit as exc:
        return f"exit {exc.code}: {err.getvalue().strip()[-600:]}"
    if not getattr(args, "func", None):
        return "names no subcommand"
    return "ok"


def _python_target(words: list[str]) -> tuple[str, str, list[str]]:
    """(kind, target, argv) of a python command line: ``-m MODULE ...``, ``-c CODE`` or ``SCRIPT ...``."""
    rest = words[1:]
    if rest[:1] == ["-m"] and len(rest) >= 2:
        return "module", rest[1], rest[2:]
    if rest[:1] == ["-c"] and len(rest) >= 2:
        return "code", rest[1], []
    if rest and not rest[0].startswith("-"):
        return "script", rest[0], rest[1:]
    raise DocsError(f"cannot tell what `{shlex.join(words)}` runs")


def _parse_pip(words: list[str], python: str) -> str:
    sub = [w for w in words[1:] if not w.startswith("-")][:1]
    out = subprocess.run([python, "-m", "pip", *sub, "--help"], capture_output=True, text=True, timeout=120)
    if out.returncode != 0:
        return f"`pip {' '.join(sub)} --help` failed: {out.stderr.strip()[-300:]}"
    for word in words[1:]:
        flag = word.split("=", 1)[0]
        if flag.startswith("-") and not re.search(rf"(^|[\s,]){re.escape(flag)}([\s,=]|$)", out.stdout, flags=re.M):
            return f"pip has no option {flag}"
    return "ok"


def parse_check_blocks(found: list[Block], root: Path = ROOT, python: str = sys.executable) -> None:
    """Parse every command of the blocks without running them; raises :class:`DocsError` on the first failure.

    The python programs of all blocks are parsed in one child interpreter, so the imports
    they share (torch, Numba) are paid once.
    """
    pending: list[tuple[str, list]] = []  # (where: line, [cwd, kind, target, argv]) for the child interpreter
    for block in found:
        _check_block(block, root, python, pending)
    if pending:
        out = subprocess.run([python, "-c", _PARSE_CHILD, json.dumps([item for _, item in pending])],
                             capture_output=True, text=True, timeout=300, cwd=root,
                             env=dict(os.environ, OMP_NUM_THREADS="1", AXHW_THREADS="1", MPLBACKEND="Agg"))
        if out.returncode != 0:
            raise DocsError(f"the parse checker failed: {out.stderr.strip()[-1500:]}")
        for (line, _), status in zip(pending, json.loads(out.stdout.strip().splitlines()[-1])):
            if status != "ok":
                raise DocsError(f"{line} does not parse: {status}")


def _check_block(block: Block, root: Path, python: str, pending: list[tuple[str, list]]) -> None:
    lint(block)
    for line in commands(block):
        if re.search(r"(^|\s)(\.\.\.|…)(\s|$)", line):
            raise DocsError(f"{block.where}: `{line}` has a `...` placeholder: make it concrete or drop it")
    for line, words in programs(block):
        prog = words[0]
        if prog == ".venv/bin/axhw":
            status = _parse_axhw(words[1:])
        elif prog in {".venv/bin/python", "python", "python3"}:
            kind, target, argv = _python_target(words)
            if kind == "code":
                try:
                    compile(target, f"{block.where} python -c", "exec")
                    status = "ok"
                except SyntaxError as exc:
                    status = f"SyntaxError: {exc}"
            else:
                pending.append((f"{block.where}: `{line}`", [str(root), kind, target, argv]))
                continue
        elif prog == ".venv/bin/pip":
            status = _parse_pip(words, python)
        elif prog == "make":
            out = subprocess.run(["make", "-n", "-C", str(root), *words[1:]], capture_output=True, text=True, timeout=60)
            status = "ok" if out.returncode == 0 else f"make -n: {out.stderr.strip()[-300:]}"
        else:
            raise DocsError(f"{block.where}: `{line}`: the docs test cannot parse-check `{prog}`; "
                            "make the block runnable")
        if status != "ok":
            raise DocsError(f"{block.where}: `{line}` does not parse: {status}")


def parse_check(pages: dict[str, str], root: Path = ROOT) -> int:
    """Lint every shell block of the pages (name -> text) and parse-check the parse-only ones.

    Returns:
        How many parse-only blocks were checked.
    """
    found = [block for page, text in pages.items() for block in command_blocks(text, page)]
    for block in found:
        lint(block)
    parse_only = [block for block in found if block.mode == "parse-only"]
    parse_check_blocks(parse_only, root)
    return len(parse_only)


# ----------------------------------------------------------------------------------- run

#: What a fresh clone holds that the documented commands read, besides the venv.
_CLONE_SKIP = frozenset({".git", ".venv", "out", ".pytest_cache"})


def scratch_clone(dest: Path, db: Path, cache: Path, root: Path = ROOT) -> dict[str, str]:
    """Make ``dest`` look like a fresh clone of ``root`` and return the environment to run in.

    Tracked top-level entries are symlinked (so nothing is copied, and a command that
    wrote into them would show up in ``git status``); ``.venv`` links to this interpreter's
    venv.  ``AXHW_DB`` is ``db``, a fresh copy of the bundled ``multipliers_db/``, so
    ``axhw add`` never writes the repository's database; ``AXHW_CACHE`` is ``cache``.
    """
    dest.mkdir(parents=True, exist_ok=True)
    for entry in root.iterdir():
        if entry.name not in _CLONE_SKIP and not (dest / entry.name).exists():
            (dest / entry.name).symlink_to(entry)
    venv = root / ".venv" if (root / ".venv" / "bin" / "python").exists() else Path(sys.prefix)
    (dest / ".venv").symlink_to(venv)
    shutil.copytree(root / "multipliers_db", db, ignore=shutil.ignore_patterns("__pycache__", ".*"))
    venv_bins = {str(venv / "bin"), str(Path(sys.prefix) / "bin"), str(Path(sys.executable).parent)}
    path = os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep) if p not in venv_bins)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AXHW_", "VIRTUAL_ENV", "PYTEST_"))}
    env.update(PATH=path, AXHW_DB=str(db), AXHW_CACHE=str(cache), AXHW_THREADS="1", OMP_NUM_THREADS="1",
               MKL_NUM_THREADS="1", NUMBA_NUM_THREADS="1", MPLBACKEND="Agg", TMPDIR=str(dest.parent / "tmp"))
    (dest.parent / "tmp").mkdir(exist_ok=True)  # `$(mktemp -d)` in a page stays inside the test's folder
    return env


def run_block(block: Block, cwd: Path, env: dict[str, str], timeout: float = 600) -> float:
    """Run a block as written, as one bash script in ``cwd``; returns the seconds it took.

    Raises:
        DocsError: the script exits non-zero (the failing command and the output's tail are
            in the message), runs past ``timeout``, or leaves out a file its marker names.
    """
    import time

    script = ("set -eo pipefail\n"
              "trap 'echo \"docs-test: failed: $BASH_COMMAND\" >&2' ERR\n" + _script(block))
    log = cwd / f".docs-test-{Path(block.page).name}-{block.line}.log"
    start = time.perf_counter()
    with open(log, "w") as sink:
        try:
            proc = subprocess.run(["bash", "-c", script], cwd=cwd, env=env, stdout=sink, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise DocsError(f"{block.where}: ran past {timeout:.0f} s; log {log}") from None
    seconds = time.perf_counter() - start
    tail = log.read_text(errors="replace")[-4000:]
    if proc.returncode != 0:
        raise DocsError(f"{block.where}: exited {proc.returncode}:\n{tail}")
    for path in block.creates:
        if not (cwd / path).exists():
            raise DocsError(f"{block.where}: ran, but left no {path}:\n{tail}")
    return seconds
