"""Database entries as atomic, self-checking units: digest, write lock, build-aside-and-swap.

An entry is a folder ``<layer>/<name>/`` holding ``record.json``, ``lut.npy``,
optionally ``hw.json``, and ``digest.json``, written last::

    {"schema": 1, "files": {"hw.json": "<sha256>", "lut.npy": "<sha256>", "record.json": "<sha256>"}}

Readers (:func:`read_files`) open the folder once, read every listed file once,
hash the bytes they read and parse those same bytes; a file that differs from its
digest, a listed file that is missing or a file the digest does not list makes the
whole entry corrupt.  A reader that races a writer's swap reads again.

Writers (:func:`commit`) hold the database's write lock (:func:`write_lock`, an
``fcntl`` lock on ``<layer>/.lock``, re-entrant within a process), build the new
entry in a temporary folder ``<layer>/.tmp-<name>-*`` and swap it in with one
``renameat2(RENAME_EXCHANGE)`` (Linux); where that call is missing the old folder is
renamed to ``.old-<name>-*`` first and restored by the next writer if a crash came
in between.  A writer killed at any moment leaves either the old entry or the new
one, never a mix; leftovers are removed the next time the lock is taken.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import json
import os
import secrets
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Iterator, Mapping

from axhw.errors import DatabaseError
from axhw.io import sha256_bytes

__all__ = ["DIGEST_FILE", "DIGEST_SCHEMA", "ENTRY_FILES", "REQUIRED_FILES", "read_files", "read_loose",
           "write_lock", "commit", "writable_root", "is_entry"]

DIGEST_FILE = "digest.json"
DIGEST_SCHEMA = 1
#: The files an entry may hold besides its digest.
ENTRY_FILES = ("record.json", "lut.npy", "hw.json")
REQUIRED_FILES = ("record.json", "lut.npy")
_WHAT = {"record.json": "record", "lut.npy": "product table", "hw.json": "hardware cost"}
_RETRIES = 3


def is_entry(folder: Path) -> bool:
    """Whether ``folder`` looks like an entry (holds a digest or, from an older axhw, a record)."""
    return (folder / DIGEST_FILE).is_file() or (folder / "record.json").is_file()


def _fix(name: str) -> str:
    return f"re-create it with `axhw rebuild {name}`"


def _read_at(dir_fd: int, filename: str) -> bytes:
    fd = os.open(filename, os.O_RDONLY, dir_fd=dir_fd)
    with os.fdopen(fd, "rb") as f:
        return f.read()


def _read_once(folder: Path) -> dict[str, bytes]:
    name = folder.name
    try:
        dir_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as exc:
        raise DatabaseError(f"{folder}: cannot open database entry ({exc.strerror})") from None
    try:
        try:
            raw_digest = _read_at(dir_fd, DIGEST_FILE)
        except FileNotFoundError:
            raise DatabaseError(f"{folder}: no {DIGEST_FILE} (written by an older axhw, or a write never finished); "
                                f"run `axhw rebuild {name}` to migrate or repair it") from None
        try:
            digest = json.loads(raw_digest)
            listed = digest["files"]
            if digest.get("schema") != DIGEST_SCHEMA or not isinstance(listed, dict):
                raise ValueError(f"schema {digest.get('schema')!r}")
        except (ValueError, TypeError, KeyError) as exc:
            raise DatabaseError(f"{folder / DIGEST_FILE}: corrupt digest ({exc}); {_fix(name)}") from None
        unknown = sorted(set(listed) - set(ENTRY_FILES))
        missing = sorted(set(REQUIRED_FILES) - set(listed))
        extra = sorted(n for n in os.listdir(dir_fd) if not n.startswith(".") and n != DIGEST_FILE and n not in listed)
        if unknown or missing or extra:
            problem = (f"lists unknown files {', '.join(unknown)}" if unknown else
                       f"does not list {', '.join(missing)}" if missing else
                       f"does not cover {', '.join(extra)} (added by hand?)")
            raise DatabaseError(f"{folder / DIGEST_FILE}: corrupt entry: the digest {problem}; {_fix(name)}")
        files: dict[str, bytes] = {}
        for filename, sha in sorted(listed.items()):
            try:
                data = _read_at(dir_fd, filename)
            except FileNotFoundError:
                raise DatabaseError(f"{folder / filename}: missing {_WHAT[filename]}; {_fix(name)}") from None
            if sha256_bytes(data) != sha:
                raise DatabaseError(f"{folder / filename}: corrupt {_WHAT[filename]} (its sha256 differs from "
                                    f"{DIGEST_FILE}: edited or truncated); {_fix(name)}")
            files[filename] = data
        return files
    finally:
        os.close(dir_fd)


def read_files(folder: Path) -> dict[str, bytes]:
    """Every file of the entry in ``folder``, each read once and checked against ``digest.json``.

    Raises:
        DatabaseError: the entry is corrupt, incomplete or from an older axhw.
    """
    for attempt in range(_RETRIES):
        try:
            before = os.stat(folder).st_ino
        except OSError:
            before = None
        try:
            return _read_once(folder)
        except DatabaseError:
            try:
                after = os.stat(folder).st_ino
            except OSError:
                after = None
            # Same folder before and after: the failure is real, not a writer's swap under us.
            if attempt == _RETRIES - 1 or before == after:
                raise
    raise AssertionError("unreachable")


def read_loose(folder: Path) -> tuple[dict[str, bytes], dict[str, str] | None]:
    """The entry's files as they are, without checks, and its digest's file -> sha256 (``None`` if unreadable).

    For repair and migration only: nothing read here is trusted until checked.
    """
    files: dict[str, bytes] = {}
    for filename in ENTRY_FILES:
        with contextlib.suppress(OSError):
            files[filename] = (folder / filename).read_bytes()
    try:
        digest = json.loads((folder / DIGEST_FILE).read_bytes())
        listed = digest["files"] if digest.get("schema") == DIGEST_SCHEMA and isinstance(digest["files"], dict) else None
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        listed = None
    return files, listed


# --------------------------------------------------------------------------- writing


def writable_root(root: Path) -> Path:
    """``root`` created if needed, or a one-line error when it cannot hold a database."""
    root = Path(root)
    if root.exists() and not root.is_dir():
        raise DatabaseError(f"the database {root} is a file, not a folder; point AXHW_DB at a folder")
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DatabaseError(f"cannot create the database folder {root} ({exc.strerror}); "
                            "set AXHW_DB to a writable folder") from None
    if not os.access(root, os.W_OK | os.X_OK):
        raise DatabaseError(f"the database {root} is read-only; set AXHW_DB to a writable folder")
    return root


class _Lock:
    def __init__(self) -> None:
        self.thread_lock = threading.RLock()
        self.file = None
        self.depth = 0


_LOCKS: dict[Path, _Lock] = {}
_LOCKS_GUARD = threading.Lock()


@contextlib.contextmanager
def write_lock(root: Path) -> Iterator[Path]:
    """Hold the write lock of the database ``root`` (created if needed); yields ``root``.

    Re-entrant within a process; other processes (and threads) wait.  Leftovers of
    writers that were killed are cleaned up when the lock is first taken.
    """
    root = writable_root(Path(root)).resolve()
    with _LOCKS_GUARD:
        state = _LOCKS.setdefault(root, _Lock())
    with state.thread_lock:
        if state.depth == 0:
            try:
                handle = open(root / ".lock", "a")
            except OSError as exc:
                raise DatabaseError(f"the database {root} is read-only ({exc.strerror}); "
                                    "set AXHW_DB to a writable folder") from None
            fcntl.flock(handle, fcntl.LOCK_EX)
            state.file = handle
            try:
                _recover(root)
            except BaseException:
                state.file = None
                handle.close()
                raise
        state.depth += 1
        try:
            yield root
        finally:
            state.depth -= 1
            if state.depth == 0:
                handle, state.file = state.file, None
                fcntl.flock(handle, fcntl.LOCK_UN)
                handle.close()


def _recover(root: Path) -> None:
    """Finish or undo what a killed writer left (call with the lock held)."""
    for path in root.iterdir():
        if path.name.startswith(".tmp-") and path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        elif path.name.startswith(".old-") and path.is_dir():
            name = path.name[len(".old-"):].rsplit("-", 1)[0]
            if not (root / name).exists():
                os.rename(path, root / name)  # the crash came between the two renames: undo it
            else:
                shutil.rmtree(path, ignore_errors=True)


def _write_durable(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two folders (Linux ``renameat2``); ``False`` where the system cannot."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    renameat2.restype = ctypes.c_int
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def commit(root: Path, name: str, files: Mapping[str, bytes]) -> Path:
    """Write the entry ``name`` with ``files`` into ``root``, replacing any entry of that name atomically.

    The caller holds :func:`write_lock` of ``root``.  The digest is written last, the
    folder is swapped in only when complete, and a failure leaves the old entry.

    Returns:
        The entry's folder.
    """
    unknown = sorted(set(files) - set(ENTRY_FILES))
    assert not unknown and set(REQUIRED_FILES) <= set(files), f"entry files {sorted(files)}"
    root = Path(root).resolve()
    final = root / name
    digest = {"schema": DIGEST_SCHEMA, "files": {f: sha256_bytes(data) for f, data in sorted(files.items())}}
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{name}-", dir=root))
    try:
        for filename, data in files.items():
            _write_durable(tmp / filename, bytes(data))
        _write_durable(tmp / DIGEST_FILE, (json.dumps(digest, indent=2, sort_keys=True) + "\n").encode())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes 0700; give the folder a plain mkdir's mode
        _fsync_dir(tmp)
        if not final.exists():
            os.rename(tmp, final)
        elif not _exchange(tmp, final):
            old = root / f".old-{name}-{secrets.token_hex(4)}"
            os.rename(final, old)
            os.rename(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        _fsync_dir(root)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # after a swap it holds the old entry
    return final
