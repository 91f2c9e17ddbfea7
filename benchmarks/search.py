"""Search methods side by side on the embedded default, with the same budget of true evaluations.

Every method of :data:`axhw.search.METHODS` runs with ``--budget`` true evaluations of
full configurations for each of ``--seeds`` seeds, on one shared
:class:`~axhw.search.evaluate.Evaluator` (so the sensitivity profile, which every
run needs, is measured once and cached; it is *not* counted in the budget).
Written to ``--out``:

* ``search_benchmark.md`` / ``.json``: per method, mean ± std over seeds of the best
  power saving at ≤ 0.5 and ≤ 1 point true accuracy drop, the final hypervolume, the
  surrogate RMSE and Kendall τ (prospective for MCTS: predicted before each true
  evaluation; 5-fold cross-validated on the run's evaluations for the others), and
  wall time;
* ``search_benchmark.png``: hypervolume vs number of true evaluations (mean over
  seeds) and every evaluated configuration of seed 0.

Run: ``python benchmarks/search.py [--seeds 5] [--budget 25] [--eval-size 200]``.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np


def main(argv: list[str] | None = None) -> int:
    from axhw.emulator import layers
    from axhw.models import default_model
    from axhw.search import METHODS, ConstraintWarning, Evaluator, ModelTask, SearchSpace, hypervolume_curve, run_on_space
    from axhw.search.api import _load_split
    from axhw.search.space import efficient_candidates

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--budget", type=int, default=25)
    parser.add_argument("--eval-size", type=int, default=200)
    parser.add_argument("--calib-size", type=int, default=128)
    parser.add_argument("--candidates", default=None, help="comma-separated (default: energy/MAE Pareto designs)")
    parser.add_argument("--max-candidates", type=int, default=6)
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--max-drop", type=float, default=1.0)
    parser.add_argument("--out", type=Path, default=Path("out/bench_search"))
    args = parser.parse_args(argv)

    candidates = args.candidates.split(",") if args.candidates else efficient_candidates(args.max_candidates)
    model = default_model()
    ops = [op for op in layers(model) if op.name.split(".")[0] != "head"]
    space = SearchSpace.from_library(ops, candidates)
    images, labels = _load_split("digits", "test", args.eval_size)
    calib = _load_split("digits", "calib", args.calib_size)[0]
    evaluator = Evaluator(ModelTask(model, images, labels, calib), "serial", lut_sha256=space.lut_sha256)
    print(f"{space}; {len(images)} test images; budget {args.budget}; seeds {args.seeds}")
    for j, name in enumerate(space.candidates):
        print(f"  {name:<14} energy {space.energy_pj[0, j]:7.3f} pJ")

    methods = args.methods.split(",")
    runs: dict[str, list[dict]] = {m: [] for m in methods}
    example: dict[str, object] = {}
    for method in methods:
        for seed in range(args.seeds):
            t0 = time.perf_counter()
            computed = evaluator.n_computed
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConstraintWarning)
                result = run_on_space(space, evaluator, method=method, budget=args.budget, seed=seed,
                                      max_accuracy_drop=args.max_drop, model_name="default", dataset="digits")
            wall = time.perf_counter() - t0
            curve = hypervolume_curve(result)[1:]  # after each search evaluation (reference excluded)
            curve = np.concatenate([curve, np.full(args.budget - len(curve), curve[-1] if len(curve) else 0.0)])
            m = result.surrogate_metrics
            row = {
                "seed": seed,
                "n_evals": len(result.history) - 1,
                "saving_0.5": max(0.0, 100 * result.best(0.5).power_saving) if result.constraint_met(0.5) else 0.0,
                "saving_1.0": max(0.0, 100 * result.best(1.0).power_saving) if result.constraint_met(1.0) else 0.0,
                "hv": float(curve[-1]),
                "hv_curve": curve.tolist(),
                "rmse": m.get("rmse"),
                "tau": m.get("kendall_tau"),
                "protocol": m.get("protocol", ""),
                "wall_s": wall,
                "new_true_evals": evaluator.n_computed - computed,
            }
            runs[method].append(row)
            if seed == 0:
                example[method] = result
            print(f"{method:<13} seed {seed}: saving@0.5 {row['saving_0.5']:5.1f}%  saving@1.0 {row['saving_1.0']:5.1f}%  "
                  f"HV {row['hv']:.3f}  tau {row['tau']}  ({wall:.0f} s, {row['new_true_evals']} new evaluations)",
                  flush=True)

    args.out.mkdir(parents=True, exist_ok=True)

    def stat(rows: list[dict], key: str) -> str:
        vals = [r[key] for r in rows if r[key] is not None]
        return "n/a" if not vals else f"{np.mean(vals):.2f} ± {np.std(vals):.2f}"

    lines = [
        f"Embedded default (digits ViT, {space.n_ops} ops), {len(images)} test images, candidates "
        f"{', '.join(space.candidates[1:])} (+ exact); budget {args.budget} true evaluations per run; "
        f"{args.seeds} seeds; sensitivity profile ({space.n_ops * (space.n_candidates - 1)} evaluations) shared, "
        "not counted. Mean ± std over seeds.",
        "",
        "| method | best power saving % at drop ≤ 0.5 | at drop ≤ 1.0 | hypervolume | surrogate RMSE (points) | Kendall τ | evaluations used | s / run |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for method in methods:
        rows = runs[method]
        lines.append(f"| {method} | {stat(rows, 'saving_0.5')} | {stat(rows, 'saving_1.0')} | {stat(rows, 'hv')} | "
                     f"{stat(rows, 'rmse')} | {stat(rows, 'tau')} | {stat(rows, 'n_evals')} | {stat(rows, 'wall_s')} |")
    lines.append("")
    lines.append("Surrogate protocol: MCTS rows are prospective (each prediction made before that configuration's "
                 "true evaluation); other rows are 5-fold cross-validated on the run's own evaluations.")
    table = "\n".join(lines)
    (args.out / "search_benchmark.md").write_text(table + "\n")
    (args.out / "search_benchmark.json").write_text(json.dumps(
        {"candidates": space.candidates, "budget": args.budget, "seeds": args.seeds, "eval_images": len(images),
         "runs": runs}, indent=1))
    print(table)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
    x = np.arange(1, args.budget + 1)
    for method in methods:
        curves = np.array([r["hv_curve"] for r in runs[method]])
        ax1.plot(x, curves.mean(axis=0), label=method)
        ax1.fill_between(x, curves.min(axis=0), curves.max(axis=0), alpha=0.12)
    ax1.set_xlabel("true evaluations")
    ax1.set_ylabel(f"hypervolume (power ≤ 1, drop ≤ {2 * args.max_drop:g} points)")
    ax1.set_title("hypervolume vs evaluations (mean, min–max over seeds)")
    ax1.legend(fontsize=8)
    for method, result in example.items():
        pts = np.array([(e.power_rel, result.accuracy_drop(e)) for e in result.history[1:]])
        if len(pts):
            ax2.scatter(100 * pts[:, 0], pts[:, 1], s=12, label=method, alpha=0.7)
    ax2.axhline(args.max_drop, color="k", lw=0.8, ls="--")
    ax2.axhline(0.5 * args.max_drop, color="k", lw=0.8, ls=":")
    ax2.set_ylim(-1, 4 * args.max_drop)
    ax2.set_xlabel("multiplier power, % of all-exact")
    ax2.set_ylabel("true accuracy drop, points below int8")
    ax2.set_title("every evaluated configuration (seed 0)")
    ax2.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(args.out / "search_benchmark.png", dpi=120)
    print(f"written {args.out / 'search_benchmark.md'} and {args.out / 'search_benchmark.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
