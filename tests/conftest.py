"""Shared pytest set-up: slow tests run only when AXHW_SLOW=1 (or -m slow is given)."""

from __future__ import annotations

import os

import pytest


def pytest_collection_modifyitems(config, items):
    if os.environ.get("AXHW_SLOW") == "1" or "slow" in (config.getoption("-m") or ""):
        return
    skip = pytest.mark.skip(reason="slow test: set AXHW_SLOW=1 to run")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny shapes gain nothing from threads, and spinning threads stall on a busy machine.

    Use it per module: ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``.
    """
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def fake_library(monkeypatch):
    """``axhw.library.load`` knowing only the designs of ``_emulator_doubles`` (an 8-bit and a 4-bit one).

    The emulator's table caches are emptied before and after, so no other test sees
    the fake tables or keeps real ones in their place.
    """
    import axhw.library
    from _emulator_doubles import fake_load
    from axhw.emulator import layers

    caches = (layers._cached_lut, layers._prepared_table)
    monkeypatch.setattr(axhw.library, "load", fake_load)
    for cache in caches:
        cache.cache_clear()
    yield
    for cache in caches:
        cache.cache_clear()


@pytest.fixture
def db(tmp_path, monkeypatch):
    """An empty multiplier database (``AXHW_DB``) and cache (``AXHW_CACHE``) in ``tmp_path``; returns the database folder."""
    monkeypatch.setenv("AXHW_DB", str(tmp_path / "db"))
    monkeypatch.setenv("AXHW_CACHE", str(tmp_path / "cache"))
    return tmp_path / "db"
