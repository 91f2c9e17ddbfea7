"""``make demo``: the whole pipeline on the embedded default, stage by stage.

Each stage is a function taking the output folder; stages re-use cached results,
so a second run is fast.  Run with ``python -m axhw.demo [--out DIR]``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any, Callable

from axhw.errors import AxhwError
from axhw.records import DEFAULT_LIBERTY

__all__ = ["run_demo", "STAGES"]


def _print_rows(rows: list[tuple[str, str]], width: int = 28) -> None:
    """Print ``(label, value)`` pairs as an aligned two-column summary."""
    for key, value in rows:
        print(f"{key:<{width}} {value}")


def _stage_doctor(out: Path) -> None:
    from axhw.doctor import format_table, run_checks

    checks = run_checks()
    missing = [c.name for c in checks if c.required and not c.ok]
    if missing:
        print(format_table(checks))
        raise AxhwError(f"required components missing: {', '.join(missing)}; see `axhw doctor`")
    print(f"environment: {len(checks)} components checked, all required found")


def _stage_library(out: Path) -> None:
    """Characterize the bundled RTL library (only stale or missing entries) and print its error metrics."""
    from axhw import library
    from axhw.io import atomic_write_text

    rebuilt = library.rebuild()
    table = library.list_table()
    atomic_write_text(out / "multipliers.txt", table + "\n")
    count = len(library.names())
    print(f"{count} multipliers in the database; re-characterized now: {', '.join(rebuilt) if rebuilt else 'none'}")
    print(table)


def _stage_hardware(out: Path) -> None:
    """Hardware cost of every library design (osu018, uniform operands); cached in hw.json."""
    from axhw import library
    from axhw.hw import characterize_many, format_table
    from axhw.io import atomic_write_text

    costs = characterize_many(None, DEFAULT_LIBERTY, jobs=2)
    mae = {m.name: m.metrics.mae for m in library.load_all()}
    table = format_table(costs, mae)
    atomic_write_text(out / "hardware_costs.txt", table + "\n")
    print(f"{DEFAULT_LIBERTY}, 10 ns clock, uniform int8 operands; energy per multiplication, saving vs the cheapest "
          "zero-error design (named in the column) and vs the behavioural exact:")
    print(table)


#: (name, function) in execution order; later issues append stages here.
STAGES: list[tuple[str, Callable[[Path], None]]] = [
    ("environment", _stage_doctor),
    ("multiplier library", _stage_library),
    ("hardware cost", _stage_hardware),
]


#: Loader settings shared by the accuracy and retraining stages, so their numbers agree.
_DEMO_BATCH = 64
_DEMO_CALIB_BATCHES = 4
_DEMO_SEARCH_BUDGET = 25  # true evaluations the search may make after its sensitivity profile


def _stage_default_model(out: Path) -> None:
    """The embedded default ViT: trained here only when its committed weights are missing."""
    from axhw.models import DEFAULT_CONFIG, default_metrics, default_metrics_path, default_weights_path

    if not default_weights_path().is_file():
        from axhw.training import TrainConfig, save, train_default

        print(f"{default_weights_path()} is missing: training the default model (about a minute)")
        save(train_default(TrainConfig()), default_weights_path(), default_metrics_path())
    m = default_metrics()
    cfg = DEFAULT_CONFIG
    rows = [
        ("model", f"timm VisionTransformer: {cfg['img_size']}x{cfg['img_size']}x{cfg['in_chans']} input, patch "
                  f"{cfg['patch_size']}, dim {cfg['embed_dim']}, depth {cfg['depth']}, {cfg['num_heads']} heads, "
                  f"{m['n_parameters']:,} parameters"),
        ("data", f"scikit-learn digits: {m['n_train']} train / {m['n_val']} val / {m.get('n_search', '?')} search / "
                 f"{m['n_test']} test images"),
        ("fp32 accuracy", f"val {100 * m['val_accuracy']:.2f} % (chose the epoch), test {100 * m['test_accuracy']:.2f} % "
                          f"(epoch {m['best_epoch']}, trained in {m['train_seconds']} s)"),
        ("weights", str(default_weights_path())),
    ]
    _print_rows(rows, 16)


def _stage_uniform_accuracy(out: Path) -> None:
    """Accuracy of the default model with each library multiplier applied to every layer.

    Measured on the ``search`` split (the retraining stage picks its multiplier from
    these) and on the ``test`` split (the figures shown, with Wilson intervals and the
    paired drop below int8).  Calibrates once (the scales do not depend on the
    multiplier), then swaps the multipliers; per-image scores are cached by model
    fingerprint in ``accuracy/evaluations.json``.
    """
    from tqdm.auto import tqdm

    from axhw import library
    from axhw.data import get_loader
    from axhw.emulator import approximate, set_multipliers
    from axhw.emulator.finetune import model_fingerprint
    from axhw.emulator.scoring import correct_per_image
    from axhw.io import atomic_write_json, atomic_write_text
    from axhw.models import default_model
    from axhw.stats import pack_outcomes, paired_drop, unpack_outcomes, wilson_interval

    folder = out / "accuracy"
    cache_path = folder / "evaluations.json"
    cache: dict[str, Any] = _read_json(cache_path)
    loaders = {split: get_loader("digits", split, batch_size=_DEMO_BATCH) for split in ("search", "test")}

    def correct(net, split: str):
        key = f"{model_fingerprint(net)}:digits:{split}:all"
        if not isinstance(cache.get(key), dict):
            c = correct_per_image(net, loaders[split])
            cache[key] = {"n": int(c.size), "correct": pack_outcomes(c)}
            atomic_write_json(cache_path, cache)
        return unpack_outcomes(cache[key]["correct"], cache[key]["n"])

    model = default_model()
    calib = get_loader("digits", "calib", batch_size=_DEMO_BATCH)
    ax = approximate(model, {"*": "exact"}, calib, num_batches=_DEMO_CALIB_BATCHES, progress=False)
    from axhw.hw.baseline import best_exact

    ref = {split: correct(ax, split) for split in loaders}
    fp32 = {split: float(correct(model, split).mean()) for split in loaders}
    multipliers = [m for m in library.load_all() if m.metrics.error_rate > 0]
    base = best_exact()
    exact_hw = library.load("exact").hw
    rows = []
    for mult in tqdm(multipliers, desc="multipliers", unit="mult"):
        set_multipliers(ax, {"*": mult.name})
        saving = vs_exact = None
        if mult.hw is not None:
            saving = 1.0 - mult.hw.energy_pj / base.energy_pj
            if exact_hw is not None and exact_hw.energy_pj > 0:
                vs_exact = 1.0 - mult.hw.energy_pj / exact_hw.energy_pj
        test = correct(ax, "test")
        d = paired_drop(ref["test"], test)
        rows.append({"multiplier": mult.name, "accuracy_search": float(correct(ax, "search").mean()),
                     "accuracy": float(test.mean()), "interval": list(wilson_interval(int(test.sum()), test.size)),
                     "drop": d.drop, "drop_interval": [d.lower, d.upper], "mre": mult.metrics.mre,
                     "energy_saving": saving, "energy_saving_vs_exact": vs_exact})
    rows.sort(key=lambda r: (-r["accuracy"], r["multiplier"]))
    int8 = {split: float(ref[split].mean()) for split in ref}
    atomic_write_json(folder / "uniform.json", {"schema": 2, "split": "test", "n_test": int(ref["test"].size),
                                                "fp32_accuracy": fp32["test"], "int8_accuracy": int8["test"],
                                                "int8_accuracy_search": int8["search"],
                                                "saving_reference": base.name, "rows": rows})
    base_vs_exact = 1 - base.energy_pj / exact_hw.energy_pj if exact_hw and exact_hw.energy_pj > 0 else None
    table = _uniform_table(fp32["test"], int8["test"], int(ref["test"].size), rows, base.name, base.label(),
                           base_vs_exact)
    atomic_write_text(folder / "uniform.md", table + "\n")
    _uniform_plot(rows, int8["test"], folder / "uniform.png")
    print(table)
    print(f"tables: {folder / 'uniform.md'}, {folder / 'uniform.json'}; plot: {folder / 'uniform.png'}")


def _read_json(path: Path) -> dict[str, Any]:
    import json

    try:
        return json.loads(path.read_text()) if path.is_file() else {}
    except ValueError:
        return {}  # a damaged cache is measured again


def _uniform_table(fp32: float, int8: float, n: int, rows: list[dict[str, Any]], base_name: str, base_label: str,
                   base_vs_exact: float | None) -> str:
    from axhw.stats import wilson_interval

    def pct(x: float | None) -> str:
        return "n/a" if x is None else f"{100 * x:.1f}"

    def ci(acc: float, interval: Any) -> str:
        return f"{100 * acc:.2f} [{100 * interval[0]:.1f}, {100 * interval[1]:.1f}]"

    lines = [f"Test split ({n} images, never used to choose anything); intervals are 95 % (Wilson for accuracy, "
             "paired Newcombe for the drop).", "",
             "| configuration | top-1 on test (%) [95 % CI] | drop vs int8 (points) [paired 95 % CI] | MRE (%) | "
             f"energy saving vs {base_name} (%) | vs behavioural exact (%) |", "|---|---:|---:|---:|---:|---:|",
             f"| fp32 | {ci(fp32, wilson_interval(round(fp32 * n), n))} | | | | |",
             f"| int8, exact multiplier ({base_name}) | {ci(int8, wilson_interval(round(int8 * n), n))} | 0.00 | 0.0 "
             f"| 0.0 | {pct(base_vs_exact)} |"]
    lines += [f"| {r['multiplier']} everywhere | {ci(r['accuracy'], r['interval'])} | {r['drop']:.2f} "
              f"[{r['drop_interval'][0]:.2f}, {r['drop_interval'][1]:.2f}] | {pct(r['mre'])} | "
              f"{pct(r['energy_saving'])} | {pct(r.get('energy_saving_vs_exact'))} |" for r in rows]
    lines.append(f"\nEnergy per multiplication on uniform int8 operands ({DEFAULT_LIBERTY}); savings against {base_label}.")
    return "\n".join(lines)


def _uniform_plot(rows: list[dict[str, Any]], int8: float, path: Path) -> None:
    import io as _io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from axhw.io import atomic_write_bytes

    fig, axis = plt.subplots(figsize=(10, 4))
    acc = [100 * r["accuracy"] for r in rows]
    err = [[a - 100 * r["interval"][0] for a, r in zip(acc, rows)], [100 * r["interval"][1] - a for a, r in zip(acc, rows)]]
    axis.bar([r["multiplier"] for r in rows], acc, yerr=err, capsize=2, color="tab:blue")
    axis.axhline(100 * int8, color="tab:green", linestyle="--", label=f"int8 exact {100 * int8:.2f} %")
    axis.set(ylabel="test top-1 (%), 95 % interval", title="default ViT on digits, one multiplier in every layer")
    axis.tick_params(axis="x", rotation=60)
    axis.legend()
    fig.tight_layout()
    buffer = _io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())


def _stage_retrain(out: Path) -> None:
    """Retrain the multiplier that loses the most accuracy (while still above chance) with STE and gradient LUT.

    A model that a multiplier drives to chance level carries no signal left to
    recover (retraining it is training from scratch through broken products), so
    those designs are listed and skipped; the largest loss among the rest is
    retrained for one epoch with each gradient method (Adam, lr 5e-5).
    """
    import json

    from axhw.data import num_classes
    from axhw.emulator.retraining import retrain_config

    uniform_path = out / "accuracy" / "uniform.json"
    if not uniform_path.is_file():
        raise AxhwError(f"{uniform_path} not found: the accuracy stage writes it; run the whole demo (`make demo`)")
    uniform = json.loads(uniform_path.read_text())
    chance = 1.0 / num_classes("digits")
    if uniform.get("schema") != 2:
        raise AxhwError(f"{uniform_path} is from an older demo; delete {out / 'accuracy'} and run `make demo` again")
    # the pick reads the search split, so the test figures printed below stay untouched by it
    collapsed = [r["multiplier"] for r in uniform["rows"] if r["accuracy_search"] <= 2 * chance]
    usable = [r for r in uniform["rows"] if r["accuracy_search"] > 2 * chance]
    if collapsed:
        print(f"at chance level on the search split (<= {200 * chance:.0f} %), not retrained: {', '.join(collapsed)}")
    if not usable or uniform["int8_accuracy_search"] - min(r["accuracy_search"] for r in usable) < 0.005:
        print("no multiplier loses more than 0.5 points on the search split: nothing to retrain")
        return
    worst = min(usable, key=lambda r: (r["accuracy_search"], r["multiplier"]))
    print(f"largest loss on the search split: {worst['multiplier']} everywhere ({100 * worst['accuracy_search']:.2f} %); "
          "retraining 1 epoch on train with each gradient method (epoch kept on val, reported on test)")
    report = retrain_config(worst["multiplier"], out_dir=out / "retrain", epochs=1, batch_size=_DEMO_BATCH,
                            calib_batches=_DEMO_CALIB_BATCHES, progress=False)
    print(report.table())
    for grad, run in report.runs.items():
        cached = " (from checkpoint)" if run.resumed_from_step == run.steps else ""
        print(f"{grad}: {run.steps} steps, {run.seconds:.1f} s{cached}; kept epoch {run.best_epoch} (chosen on val)")
    print(f"tables: {report.files['summary_md']}, {report.files['summary_json']}; plot: {report.files['plot']}")


STAGES += [
    ("default model", _stage_default_model),
    ("accuracy per multiplier", _stage_uniform_accuracy),
    ("retraining", _stage_retrain),
]


def _stage_search(out: Path) -> None:
    """A short MCTS search on the embedded default; writes ``search_result.json``.

    Candidates: up to three database designs on the energy/MAE front
    (:func:`axhw.search.space.efficient_candidates`, osu018), plus the cheapest zero-error design, the power
    reference.  Power is each layer's own operand stream (weight-stationary order, collected on the calibration
    images, cached by content hash).  Every choice reads the search split; the reported configurations are then
    measured on the test split.  Evaluations are cached on disk; the checkpoint makes a second run replay
    instead of re-evaluate.
    """
    import warnings

    from axhw.commands.search import summary_rows
    from axhw.search import ConstraintWarning, ResolutionWarning, run
    from axhw.search.space import efficient_candidates

    candidates = efficient_candidates(3)
    if not candidates:
        raise AxhwError("no multiplier cheaper than the best exact design has a hardware cost; run the hardware cost "
                        "stage first")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("ignore", ConstraintWarning)
        warnings.simplefilter("always", ResolutionWarning)
        result = run("default", "digits", candidates, max_accuracy_drop=1.0, budget=_DEMO_SEARCH_BUDGET, method="mcts",
                     seed=0, calib_size=128, checkpoint=out / "search_checkpoint.json", progress=False,
                     settings={"command": "python -m axhw.demo  # stage: search (axhw.demo._stage_search)"})
    result.save(out / "search_result.json")
    rows = [("candidates", ", ".join(result.candidates)),
            ("power model", f"{result.settings.get('power_model')}, relative to all-{result.settings.get('power_reference')}"),
            ("replayed from checkpoint", str(result.settings["replayed_from_checkpoint"])),
            *summary_rows(result), ("result", str(out / "search_result.json"))]
    _print_rows(rows)
    for w in caught:
        if issubclass(w.category, ResolutionWarning):
            print(f"  warning: {w.message}")


STAGES.append(("search", _stage_search))


def _retrain_chosen(config: dict[str, str], out: Path) -> Path:
    """Retrain the search's chosen configuration (STE, 1 epoch on train, epoch kept on val); returns its folder.

    The report reads that folder as ``axhw report --retrained`` does: it rebuilds the
    retrained weights and measures them itself on the test split.
    """
    from axhw.emulator.retraining import retrain_config

    folder = out / "retrain_chosen"
    retrain_config(config, out_dir=folder, grads=("ste",), epochs=1, batch_size=_DEMO_BATCH,
                   calib_batches=_DEMO_CALIB_BATCHES, progress=False)
    return folder


def _stage_report(out: Path) -> None:
    """Write the accelerator configuration report of the search stage's result, its chosen configuration retrained."""
    import json

    from axhw.report import load_result, write_report

    result_path = out / "search_result.json"
    if not result_path.is_file():
        raise AxhwError(f"{result_path} not found: the search stage writes it; run the whole demo (`make demo`)")
    result = load_result(result_path)
    chosen = result.best()
    folder = _retrain_chosen(chosen.config, out)
    paths = write_report(result, out / "report", retrained=folder / "summary.json",
                         command=f"python -m axhw.demo  # stage: report (--retrained {folder / 'summary.json'})")
    retrained = json.loads(paths.config.read_text())["retraining"]
    held = result.holdout_evaluation(chosen)
    rows = [
        ("chosen configuration", f"evaluation #{chosen.index} ({chosen.method}) of {len(result.history)}"),
        ("multiplier power", f"{chosen.power_rel * 100:.2f} % of all-{result.candidates[0]} "
                             f"({result.settings.get('power_model', 'uniform operands')})"),
        (f"accuracy int8 / chosen ({result.eval_split})", f"{result.int8_accuracy * 100:.2f} % / {chosen.accuracy * 100:.2f} %"),
    ]
    if held is not None:
        lo, hi = held["interval"]
        rows += [(f"chosen on {held['split']} (untouched)", f"{held['accuracy'] * 100:.2f} % [{lo * 100:.1f}, {hi * 100:.1f}]"),
                 (f"drop vs int8 on {held['split']}", f"{held['drop'].format()} points (paired 95 % interval)")]
    d = retrained.get("drop")
    rows += [(f"after retraining (STE, {retrained['split']})", f"{retrained['accuracy'] * 100:.2f} %"
              + (f", drop {d['drop']:.2f} [{d['lower']:.2f}, {d['upper']:.2f}] points" if d else "")
              + f" (kept epoch {retrained['best_epoch']}, chosen on val; measured by the report)"),
             ("flags", str(len(paths.flags)))]
    _print_rows(rows, 34)
    for flag in paths.flags:
        print(f"  warning: {flag}")
    print(f"report: {paths.html.resolve()}")


# The report reads what the other stages wrote: keep it the last stage.
STAGES.append(("report", _stage_report))


def run_demo(out: Path) -> None:
    """Run every demo stage, writing outputs under ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    for index, (name, stage) in enumerate(STAGES, 1):
        t0 = time.perf_counter()
        print(f"\n== [{index}/{len(STAGES)}] {name}")
        stage(out)
        print(f"   ({time.perf_counter() - t0:.1f} s)")
    print(f"\ndemo finished in {time.perf_counter() - t_start:.1f} s; outputs in {out.resolve()}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m axhw.demo", description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("out/demo"), help="output folder (default: out/demo)")
    args = parser.parse_args(argv)
    try:
        run_demo(args.out)
    except AxhwError as exc:
        print(f"demo: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
