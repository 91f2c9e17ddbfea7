"""A small search and its accelerator report, on the embedded default model.

``axhw.search.run`` first profiles each op's sensitivity to each candidate, then
searches the per-op assignment with the least multiplier power whose accuracy drop
(points below the int8 all-exact model) stays within the limit. Power comes from the
uniform-operand costs in the database (``power="uniform"``); ``exact_u``, the cheapest
zero-error design, is the reference. Tiny evaluation sizes keep it under a minute, so
the figures are noisy: 64 search images, one image = 1.6 points (the search
warns that the limit is under the split's resolution). ``write_report``
turns the result into report.md, report.html, config.json and the RTL hand-off
(docs/search.md, docs/report.md).

Run:  .venv/bin/python examples/search_report.py [OUT_DIR]     (default out/examples/search)
"""

import sys
import tempfile
from pathlib import Path

from axhw import search
from axhw.report import write_report
from axhw.threads import apply_threads


def main(out: str = "out/examples/search") -> None:
    apply_threads()
    out_dir = Path(out)
    with tempfile.TemporaryDirectory(prefix="axhw-search-cache-") as cache:
        result = search.run(
            "default",
            "digits",
            ["trunc_k4", "etm_l2"],
            max_accuracy_drop=2.0,
            budget=25,
            method="greedy",
            executor="serial",
            eval_size=64,
            calib_size=64,
            power="uniform",
            cache_dir=cache,
            progress=False,
        )
    best = result.best()
    print(f"{len(result.history)} true evaluations; best: {100 * best.accuracy:.2f} % on 64 search images "
          f"at {100 * best.power_rel:.1f} % of the all-exact_u multiplier power")
    print("types used:", sorted(set(best.config.values())))

    result.save(out_dir / "search_result.json")
    paths = write_report(result, out_dir / "report")
    print(f"report: {paths.html}  (hand-off: {paths.config}, {paths.filelist})")
    for flag in paths.flags:
        print("flag:", flag)


if __name__ == "__main__":
    main(*sys.argv[1:2])
