"""``axhw remove NAME``: take one entry out of the multiplier database, whole or not at all.

The entry folder is first renamed to a hidden sibling in the same folder (one atomic
``rename``), so a reader sees the complete entry or none, never a half-deleted one; the
renamed folder is then deleted.  A hidden ``.NAME.removed-*`` left by an interrupted
removal is swept by the next removal.  Bundled designs (``rtl/library.json``) are
refused unless ``force``: ``axhw rebuild`` would bring them back, and the demo and
tests rely on them.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from .errors import DatabaseError
from .paths import db_dir

__all__ = ["remove"]


def remove(name: str, *, force: bool = False) -> Path:
    """Remove database entry ``name`` and return the folder it occupied.

    Args:
        name: the entry (see ``axhw list``).
        force: also remove a bundled design's entry.

    Raises:
        DatabaseError: no such entry, or a bundled design without ``force``.
    """
    from . import library

    library._check_name(name)
    root = db_dir()
    folder = root / name
    if not folder.is_dir():
        raise DatabaseError(library._unknown_message(name))
    if not force and name in library._manifest_by_name():
        raise DatabaseError(f"{name!r} is a bundled design (rtl/library.json): `axhw rebuild` would characterize it "
                            f"again; pass --force to remove it anyway")
    for stale in root.glob(f".{name}.removed-*"):
        shutil.rmtree(stale, ignore_errors=True)
    aside = root / f".{name}.removed-{os.getpid()}"
    os.rename(folder, aside)
    shutil.rmtree(aside, ignore_errors=True)
    return folder
