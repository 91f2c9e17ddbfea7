"""axhw.report: the accelerator configuration report a hardware engineer takes away.

From a :class:`~axhw.search.SearchResult`, :func:`write_report` writes ``report.md``,
a self-contained ``report.html``, a machine-readable ``config.json``, a
``filelist.f`` of the RTL sources and the figures, flagging multipliers that are
missing from the database or stale.  :func:`load_result` reads a result file with
errors that say what is wrong instead of a traceback.

Example::

    from axhw.report import load_result, write_report
    paths = write_report(load_result("search_result.json"), "out/report")
    print(paths.html)
"""

from __future__ import annotations

import os

from axhw.report.writer import CONFIG_SCHEMA, ReportPaths, write_report

__all__ = ["write_report", "load_result", "ReportPaths", "CONFIG_SCHEMA"]


def load_result(path: str | os.PathLike):
    """Read a search result written by :meth:`axhw.search.SearchResult.save`.

    Raises:
        DataError: the file is missing, truncated or not JSON, is not a search result,
            or was written with a schema this axhw cannot read.
    """
    from axhw.search.result import SearchResult

    return SearchResult.load(path)
