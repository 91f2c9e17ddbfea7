"""Search methods side by side on the embedded default, on equal terms, scored on held-out images.

Fairness rules (issue 14):

* **One budget of true evaluations for every method.**  Each run may spend
  ``--total`` true evaluations on the ``search`` split.  Methods that use the
  sensitivity profile (MCTS, greedy, knapsack) pay for it out of that budget: they
  get ``--total - n_ops × (n_candidates - 1)`` evaluations of full configurations,
  the others (random, NSGA-II, uniform) get all ``--total``.
* **Every target is a run of its own** (``--targets``, default 0.5 and 1.0 points
  below int8): a method is never scored at a limit it did not search for.
* **Scored on the test split**, which no run reads: the configuration a run picks
  (its lowest-power one within the limit on the search split) is measured on
  ``test``, and its *verified saving* is its power saving when its paired drop on
  test is within the limit too, else 0 (a pick that does not hold counts as
  nothing, as it would in silicon).
* ``--seeds`` seeds per (method, target); mean, standard deviation and a paired
  comparison (same seeds) of MCTS against the best other method: mean
  difference, Wilcoxon signed-rank and paired t-test p-values.
* The surrogate's quality near each limit (:func:`axhw.search.surrogate.near_constraint_quality`)
  on every configuration any run evaluated.

Written to ``--out``: ``search_benchmark.md`` / ``.json`` and ``search_benchmark.png``
(best feasible power on the search split vs true evaluations spent, sensitivity
profile included, mean over seeds, one panel per target).

Run: ``python benchmarks/search.py [--seeds 5] [--total 100] [--max-candidates 3]``.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

#: Methods that read the sensitivity profile, so pay for it out of the budget.
USES_SENSITIVITY = ("mcts", "mcts_uniform", "greedy", "knapsack")


def _best_power_curve(result: Any, target: float, offset: int, total: int) -> np.ndarray:
    """Best feasible power (search split, point drop) after each of ``total`` evaluations spent."""
    curve = np.ones(total)
    best = 1.0
    for e in result.history[1:]:
        if result.accuracy_drop(e) <= target + 1e-9:
            best = min(best, e.power_rel)
        spent = offset + e.index  # the profile is spent before the first search evaluation
        if spent <= total:
            curve[spent - 1:] = best
    return curve


def _run_one(method: str, seed: int, target: float, ctx: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    from axhw.search import ConstraintWarning, ResolutionWarning, run_on_space
    from axhw.stats import paired_drop

    space, evaluator, test_eval = ctx["space"], ctx["evaluator"], ctx["test"]
    offset = ctx["n_sens"] if method in USES_SENSITIVITY else 0
    t0 = time.perf_counter()
    computed = evaluator.n_computed
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConstraintWarning)
        warnings.simplefilter("ignore", ResolutionWarning)
        result = run_on_space(space, evaluator, method=method, budget=ctx["total"] - offset, seed=seed,
                              max_accuracy_drop=target, model_name="default", dataset="digits",
                              settings={"eval_split": "search"})
    met = result.constraint_met(target)
    pick = result.best(target)
    exact = space.decode(space.exact_config())
    test_eval.evaluate([exact, pick.config])
    test_ref = test_eval.outcomes(exact)
    test_drop = paired_drop(test_ref, test_eval.outcomes(pick.config))
    holds = met and test_drop.drop <= target + 1e-9
    row = {
        "method": method, "seed": seed, "target": target, "evaluations": offset + result.settings["true_evaluations"],
        # + 0.0 turns the all-exact pick's -0.0 (1 - 1.0 in floating point) into 0.0
        "search_feasible": met, "search_saving": round(100 * pick.power_saving, 9) + 0.0 if met else 0.0,
        "search_drop": result.accuracy_drop(pick), "test_drop": test_drop.drop,
        "test_drop_interval": [test_drop.lower, test_drop.upper], "holds_on_test": holds,
        "verified_saving": round(100 * pick.power_saving, 9) + 0.0 if holds else 0.0,
        "curve": _best_power_curve(result, target, offset, ctx["total"]).tolist(),
        "wall_s": time.perf_counter() - t0, "new_evaluations": evaluator.n_computed - computed,
    }
    return row, result


def _paired(a: list[float], b: list[float]) -> dict[str, Any]:
    """Mean difference ``a - b`` over paired seeds with Wilcoxon and paired-t p-values."""
    from scipy.stats import ttest_rel, wilcoxon

    d = np.asarray(a) - np.asarray(b)
    out: dict[str, Any] = {"mean_difference": float(d.mean()), "std_difference": float(d.std(ddof=1)) if len(d) > 1 else 0.0,
                           "wilcoxon_p": None, "ttest_p": None, "n": int(len(d))}
    if np.any(d != 0):
        out["wilcoxon_p"] = float(wilcoxon(a, b).pvalue)
        if d.std() > 0:
            out["ttest_p"] = float(ttest_rel(a, b).pvalue)
    else:
        out["wilcoxon_p"] = out["ttest_p"] = 1.0
    return out


def _summary(rows: list[dict[str, Any]], methods: list[str], targets: list[float]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for target in targets:
        per: dict[str, Any] = {}
        for method in methods:
            rs = sorted((r for r in rows if r["method"] == method and r["target"] == target), key=lambda r: r["seed"])
            v = np.array([r["verified_saving"] for r in rs])
            per[method] = {
                "verified_saving_mean": float(v.mean()), "verified_saving_std": float(v.std(ddof=1)) if len(v) > 1 else 0.0,
                "verified_saving_min": float(v.min()), "verified_saving_max": float(v.max()),
                "search_saving_mean": float(np.mean([r["search_saving"] for r in rs])),
                "holds_on_test": int(sum(r["holds_on_test"] for r in rs)), "runs": len(rs),
                "test_drop_mean": float(np.mean([r["test_drop"] for r in rs])),
                "evaluations_mean": float(np.mean([r["evaluations"] for r in rs])),
                "seeds_verified": [r["verified_saving"] for r in rs],
            }
        others = [m for m in methods if m != "mcts"]
        comparison = None
        if "mcts" in per and others:
            best_other = max(others, key=lambda m: per[m]["verified_saving_mean"])
            comparison = {"other": best_other, **_paired(per["mcts"]["seeds_verified"], per[best_other]["seeds_verified"])}
        out[str(target)] = {"methods": per, "mcts_vs_best_other": comparison}
    return out


def _table(summary: dict[str, Any], quality: dict[str, Any], header: str) -> str:
    lines = [header, ""]
    for target, block in summary.items():
        lines += [f"### Target: drop ≤ {target} points below int8", "",
                  "| method | verified saving % on test (mean ± std, min–max) | saving % on search split | "
                  "picks that hold on test | mean test drop (points) | evaluations |",
                  "|---|---|---|---|---|---|"]
        for method, m in sorted(block["methods"].items(), key=lambda kv: -kv[1]["verified_saving_mean"]):
            lines.append(f"| {method} | {m['verified_saving_mean']:.1f} ± {m['verified_saving_std']:.1f} "
                         f"({m['verified_saving_min']:.1f}–{m['verified_saving_max']:.1f}) | {m['search_saving_mean']:.1f} | "
                         f"{m['holds_on_test']}/{m['runs']} | {m['test_drop_mean']:.2f} | {m['evaluations_mean']:.0f} |")
        c = block["mcts_vs_best_other"]
        if c is not None:
            p_w = "n/a" if c["wilcoxon_p"] is None else f"{c['wilcoxon_p']:.3f}"
            p_t = "n/a" if c["ttest_p"] is None else f"{c['ttest_p']:.3f}"
            lines += ["", f"MCTS − {c['other']} (best other method), paired over {c['n']} seeds: "
                          f"{c['mean_difference']:+.1f} ± {c['std_difference']:.1f} points of verified saving; "
                          f"Wilcoxon p = {p_w}, paired t p = {p_t}."]
        q = quality.get(target)
        if q:
            def fmt(d: dict[str, Any]) -> str:
                tau = "n/a" if d["kendall_tau"] is None else f"{d['kendall_tau']:.2f}"
                return "n/a" if d["rmse"] is None else f"RMSE {d['rmse']:.2f} points, τ {tau}"
            verdict = {True: "the surrogate ranks them better", False: "the sensitivity sum ranks them as well or better",
                       None: "too few to tell"}[q["surrogate_ranks_better"]]
            lines += ["", f"Surrogate near this limit ({q['n']} evaluated configurations with drop within "
                          f"{q['limit']:g} ± {q['window']:g} points, 5-fold held out): surrogate {fmt(q['surrogate'])}; "
                          f"sensitivity sum {fmt(q['sensitivity_sum'])}: {verdict}."]
        lines.append("")
    return "\n".join(lines)


def _plot(rows: list[dict[str, Any]], methods: list[str], targets: list[float], total: int, n_sens: int, path: Path,
          reference: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(targets), figsize=(6 * len(targets), 4.5), squeeze=False)
    x = np.arange(1, total + 1)
    for ax, target in zip(axes[0], targets):
        for method in methods:
            curves = np.array([r["curve"] for r in rows if r["method"] == method and r["target"] == target])
            if len(curves):
                mean = 100 * curves.mean(axis=0)
                ax.plot(x, mean, label=method)
                ax.fill_between(x, 100 * curves.min(axis=0), 100 * curves.max(axis=0), alpha=0.1)
        ax.axvline(n_sens, color="k", lw=0.8, ls=":")
        ax.set(xlabel="true evaluations spent (sensitivity profile included)",
               ylabel=f"best feasible multiplier power, % of all-{reference} (search split)",
               title=f"drop ≤ {target:g} points (mean, min–max over seeds)")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _setup(args: argparse.Namespace) -> dict[str, Any]:
    from axhw.emulator import list_ops
    from axhw.models import default_model
    from axhw.search import Evaluator, ModelTask, SearchSpace, load_split
    from axhw.search.space import efficient_candidates

    candidates = args.candidates.split(",") if args.candidates else efficient_candidates(args.max_candidates)
    model = default_model()
    ops = [op for op in list_ops(model) if op.name.split(".")[0] != "head"]
    space = SearchSpace.from_library(ops, candidates)
    calib = load_split("digits", "calib", args.calib_size)[0]
    images, labels = load_split("digits", "search", args.eval_size)
    test_images, test_labels = load_split("digits", "test")
    evaluator = Evaluator(ModelTask(model, images, labels, calib), "serial", cache_dir=False, lut_sha256=space.lut_sha256)
    test = Evaluator(ModelTask(model, test_images, test_labels, calib), "serial", cache_dir=False,
                     lut_sha256=space.lut_sha256)
    n_sens = space.n_ops * (space.n_candidates - 1)
    if args.total < n_sens + space.n_ops:
        raise SystemExit(f"--total {args.total} leaves sensitivity users fewer than n_ops = {space.n_ops} evaluations "
                         f"after the {n_sens}-evaluation profile; give at least {n_sens + space.n_ops}")
    return {"space": space, "evaluator": evaluator, "test": test, "n_sens": n_sens, "total": args.total,
            "n_search": len(images), "n_test": len(test_images)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--total", type=int, default=100, help="true evaluations per run, profile included")
    parser.add_argument("--targets", default="0.5,1.0")
    parser.add_argument("--eval-size", type=int, default=None, help="search-split images (default all)")
    parser.add_argument("--calib-size", type=int, default=128)
    parser.add_argument("--candidates", default=None, help="comma-separated (default: energy/MAE Pareto designs)")
    parser.add_argument("--max-candidates", type=int, default=3)
    parser.add_argument("--methods", default="mcts,greedy,knapsack,random,nsga2,uniform")
    parser.add_argument("--out", type=Path, default=Path("out/bench_search"))
    args = parser.parse_args(argv)

    from axhw.search.surrogate import near_constraint_quality

    ctx = _setup(args)
    space, methods = ctx["space"], args.methods.split(",")
    targets = [float(t) for t in args.targets.split(",")]
    print(f"{space}; {ctx['n_search']} search / {ctx['n_test']} test images; {args.total} true evaluations per run "
          f"(sensitivity users: {ctx['n_sens']} of them on the profile); seeds {args.seeds}", flush=True)
    rows: list[dict[str, Any]] = []
    seen: dict[tuple[int, ...], float] = {}  # every configuration any run evaluated -> search-split accuracy
    t_start = time.perf_counter()
    args.out.mkdir(parents=True, exist_ok=True)
    for seed in range(args.seeds):  # seeds outermost: an interrupted run still has every method for its seeds
        for target in targets:
            for method in methods:
                row, result = _run_one(method, seed, target, ctx)
                rows.append(row)
                seen.update({tuple(int(v) for v in space.encode(e.config)): e.accuracy for e in result.history})
                print(f"target {target:g} {method:<9} seed {seed}: search saving {row['search_saving']:5.1f}%  "
                      f"test drop {row['test_drop']:5.2f}  verified {row['verified_saving']:5.1f}%  "
                      f"({row['wall_s']:.0f} s, {row['new_evaluations']} new)", flush=True)
        (args.out / "search_benchmark_runs.json").write_text(json.dumps(rows))

    ev = ctx["evaluator"]
    int8 = ev.evaluate([space.decode(space.exact_config())])[0]
    X = np.array(list(seen), dtype=np.int64)
    drops = 100 * (int8 - np.array(list(seen.values())))
    from axhw.search import profile_sensitivity

    S = profile_sensitivity(space, ev, int8)
    quality = {str(t): near_constraint_quality(space, S, X, drops, t) for t in targets}
    summary = _summary(rows, methods, targets)
    header = (f"Embedded default (digits ViT, {space.n_ops} ops), candidates {', '.join(space.candidates[1:])} "
              f"(+ {space.candidates[0]}, the cheapest zero-error design and the power reference: every power and "
              f"saving is relative to all-{space.candidates[0]}, energy per multiplication on uniform int8 operands, "
              f"{space.liberty}). "
              f"Every run: {args.total} true evaluations on the {ctx['n_search']}-image search split, the "
              f"{ctx['n_sens']}-evaluation sensitivity profile counted for {', '.join(m for m in methods if m in USES_SENSITIVITY)}; "
              f"the pick scored on the {ctx['n_test']}-image test split (verified saving: its saving when its test drop "
              f"is within the target, else 0); {args.seeds} seeds; {time.perf_counter() - t_start:.0f} s in all.")
    table = _table(summary, quality, header)
    (args.out / "search_benchmark.md").write_text(table + "\n")
    (args.out / "search_benchmark.json").write_text(json.dumps(
        {"candidates": space.candidates, "total": args.total, "sensitivity_evaluations": ctx["n_sens"],
         "seeds": args.seeds, "targets": targets, "search_images": ctx["n_search"], "test_images": ctx["n_test"],
         "summary": summary, "surrogate_near_limit": quality, "runs": rows}, indent=1))
    _plot(rows, methods, targets, args.total, ctx["n_sens"], args.out / "search_benchmark.png", space.candidates[0])
    print(table)
    print(f"written {args.out / 'search_benchmark.md'} and {args.out / 'search_benchmark.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
