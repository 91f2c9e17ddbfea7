"""Where axhw finds its data: the RTL library, the multiplier database, caches.

In a source checkout (editable install) these are the repository's ``rtl/`` and
``multipliers_db/`` folders; in an installed wheel they are the package data
``axhw/rtl`` and ``axhw/multipliers_db``.  ``AXHW_DB`` and ``AXHW_CACHE`` override
the database and cache locations.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["rtl_dir", "db_dir", "cache_dir", "repo_root"]


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


def db_dir() -> Path:
    """Folder of the multiplier database (``multipliers_db/``), or ``$AXHW_DB``."""
    env = os.environ.get("AXHW_DB")
    return Path(env).expanduser().resolve() if env else _package_dir("multipliers_db")


def cache_dir() -> Path:
    """Folder for build products and caches (``$AXHW_CACHE``, else ``~/.cache/axhw``)."""
    env = os.environ.get("AXHW_CACHE")
    path = Path(env).expanduser() if env else Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "axhw"
    path.mkdir(parents=True, exist_ok=True)
    return path
