"""``axhw remove NAME``: take one entry out of the multiplier database, whole or not at all.

Under the database's write lock (:func:`axhw.entries.write_lock`), the entry folder is
renamed aside in one atomic ``rename`` to a ``.tmp-`` name, so a reader sees the complete
entry or none, and then deleted; a ``.tmp-`` folder left by a removal that was killed
is swept the next time anyone takes the lock.  Only the first layer holding the name
is touched: removing a user entry that shadows a bundled design makes the bundled one
visible again.  Bundled designs (``rtl/library.json``) in the bundled layer are refused
unless ``force`` (``axhw rebuild`` would bring them back, and the demo relies on them),
and so is an installed, read-only bundled layer.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from axhw.entries import write_lock
from axhw.errors import DatabaseError
from axhw.paths import bundled_db_dir

__all__ = ["remove"]


def remove(name: str, *, force: bool = False) -> Path:
    """Remove database entry ``name`` from the first layer that has it; return the folder it occupied.

    Args:
        name: the entry (see ``axhw list``).
        force: also remove a bundled design's entry from the bundled layer.

    Raises:
        ConfigError: ``name`` is not a valid entry name.
        DatabaseError: no such entry; a bundled design without ``force``; a read-only layer.
    """
    from axhw import library

    folder = library.entry_dir(name)
    bundled_layer = folder.parent.resolve() == bundled_db_dir().resolve()
    if bundled_layer and not library._layer_writable(folder.parent):
        raise DatabaseError(f"{name!r} is bundled with the installed axhw ({folder.parent}) and cannot be removed; "
                            "a user entry of the same name would shadow it (`axhw add ... --name NAME`)")
    if bundled_layer and not force and name in library._manifest_by_name():
        raise DatabaseError(f"{name!r} is a bundled design (rtl/library.json): `axhw rebuild` would characterize it "
                            "again; pass --force to remove it anyway")
    with write_lock(folder.parent) as root:
        aside = root / f".tmp-removed-{name}-{os.getpid()}"
        os.rename(root / name, aside)
        shutil.rmtree(aside, ignore_errors=True)
    return folder
