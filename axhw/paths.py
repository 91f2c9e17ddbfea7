"""Where axhw finds its data: the RTL library, the multiplier database, caches.

In a source checkout (editable install) the bundled data are the repository's
``rtl/`` and ``multipliers_db/`` folders; in an installed wheel they are the package
data ``axhw/rtl`` and ``axhw/multipliers_db``.

The database has two layers, searched in this order (:func:`db_layers`):

1. the user database (:func:`user_db_dir`): ``platformdirs.user_data_dir("axhw")/multipliers_db``,
   where ``axhw add`` writes;
2. the bundled database (:func:`bundled_db_dir`), read-only.

``AXHW_DB`` overrides both: the database is that one folder (bundled entries are
not added), as every test and benchmark uses it.  ``AXHW_CACHE`` moves the cache.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["rtl_dir", "db_dir", "db_layers", "bundled_db_dir", "user_db_dir", "cache_dir", "repo_root"]


def _package_dir(subpackage: str) -> Path:
    import importlib

    module = importlib.import_module(f"axhw.{subpackage}")
    return Path(module.__file__).resolve().parent


def repo_root() -> Path | None:
    """The source checkout holding this package, or ``None`` when installed as a wheel."""
    root = Path(__file__).resolve().parent.parent
    return root if (root / "pyproject.toml").exists() and (root / "rtl").is_dir() else None


def rtl_dir() -> Path:
    """Folder of the bundled Verilog multipliers (``rtl/``)."""
    return _package_dir("rtl")


def bundled_db_dir() -> Path:
    """The database shipped with axhw (``multipliers_db/``); read-only except in a source checkout."""
    return _package_dir("multipliers_db")


def user_db_dir() -> Path:
    """The writable database: ``$AXHW_DB``, else ``multipliers_db`` in the user data folder."""
    env = os.environ.get("AXHW_DB")
    if env:
        return Path(env).expanduser().resolve()
    import platformdirs

    return Path(platformdirs.user_data_dir("axhw", appauthor=False)) / "multipliers_db"


def db_layers() -> list[Path]:
    """Database folders in search order: the user database, then the bundled one (only the first with ``AXHW_DB``)."""
    user = user_db_dir()
    if os.environ.get("AXHW_DB"):
        return [user]
    bundled = bundled_db_dir()
    return [user] if user == bundled else [user, bundled]


def db_dir() -> Path:
    """The database new entries go to by default (:func:`user_db_dir`; see :func:`db_layers` for reading)."""
    return user_db_dir()


def cache_dir() -> Path:
    """Folder for build products and caches (``$AXHW_CACHE``, else ``~/.cache/axhw``)."""
    env = os.environ.get("AXHW_CACHE")
    path = Path(env).expanduser() if env else Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "axhw"
    path.mkdir(parents=True, exist_ok=True)
    return path
