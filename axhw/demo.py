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

from .errors import AxhwError

__all__ = ["run_demo", "STAGES"]


def _print_rows(rows: list[tuple[str, str]], width: int = 28) -> None:
    """Print ``(label, value)`` pairs as an aligned two-column summary."""
    for key, value in rows:
        print(f"{key:<{width}} {value}")


def _stage_doctor(out: Path) -> None:
    from .doctor import format_table, run_checks

    checks = run_checks()
    missing = [c.name for c in checks if c.required and not c.ok]
    if missing:
        print(format_table(checks))
        raise AxhwError(f"required components missing: {', '.join(missing)}; see `axhw doctor`")
    print(f"environment: {len(checks)} components checked, all required found")


def _stage_library(out: Path) -> None:
    """Characterize the bundled RTL library (only stale or missing entries) and print its error metrics."""
    from . import library
    from .io import atomic_write_text

    rebuilt = library.rebuild()
    table = library.list_table()
    atomic_write_text(out / "multipliers.txt", table + "\n")
    count = len(library.names())
    print(f"{count} multipliers in the database; re-characterized now: {', '.join(rebuilt) if rebuilt else 'none'}")
    print(table)


def _stage_hardware(out: Path) -> None:
    """Hardware cost of every library design (osu018, uniform operands); cached in hw.json."""
    from . import library
    from .hw import characterize_many, format_table
    from .io import atomic_write_text
    from .records import DEFAULT_LIBERTY

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
_DEMO_SEARCH_EVAL = 200  # test images per true evaluation in the search stage
_DEMO_SEARCH_BUDGET = 25  # true evaluations the search may make after its sensitivity profile


def _stage_default_model(out: Path) -> None:
    """The embedded default ViT: trained here only when its committed weights are missing."""
    from .models import DEFAULT_CONFIG, default_metrics, default_metrics_path, default_weights_path

    if not default_weights_path().is_file():
        from .training import TrainConfig, save, train_default

        print(f"{default_weights_path()} is missing: training the default model (about a minute)")
        save(train_default(TrainConfig()), default_weights_path(), default_metrics_path())
    m = default_metrics()
    cfg = DEFAULT_CONFIG
    rows = [
        ("model", f"timm VisionTransformer: {cfg['img_size']}x{cfg['img_size']}x{cfg['in_chans']} input, patch "
                  f"{cfg['patch_size']}, dim {cfg['embed_dim']}, depth {cfg['depth']}, {cfg['num_heads']} heads, "
                  f"{m['n_parameters']:,} parameters"),
        ("data", f"scikit-learn digits: {m['n_train']} train / {m['n_val']} val / {m['n_test']} test images"),
        ("fp32 accuracy", f"val {100 * m['val_accuracy']:.2f} %, test {100 * m['test_accuracy']:.2f} % "
                          f"(epoch {m['best_epoch']}, trained in {m['train_seconds']} s)"),
        ("weights", str(default_weights_path())),
    ]
    _print_rows(rows, 16)


def _stage_uniform_accuracy(out: Path) -> None:
    """Test accuracy of the default model with each library multiplier applied to every layer.

    Calibrates once (the scales do not depend on the multiplier), then swaps the
    multipliers; accuracies are cached by model fingerprint in ``accuracy/evaluations.json``.
    """
    import json

    from tqdm.auto import tqdm

    from . import library
    from .data import get_loader
    from .emulator import approximate, evaluate, set_multipliers
    from .emulator.retrain import model_fingerprint
    from .io import atomic_write_bytes, atomic_write_json, atomic_write_text
    from .models import default_model

    folder = out / "accuracy"
    cache_path = folder / "evaluations.json"
    cache: dict[str, float] = json.loads(cache_path.read_text()) if cache_path.is_file() else {}
    test = get_loader("digits", "test", batch_size=_DEMO_BATCH)

    def accuracy(net) -> float:
        key = f"{model_fingerprint(net)}:digits:test:all"
        if key not in cache:
            cache[key] = float(evaluate(net, test, progress=False))
            atomic_write_json(cache_path, cache)
        return cache[key]

    model = default_model()
    fp32 = accuracy(model)
    calib = get_loader("digits", "calib", batch_size=_DEMO_BATCH)
    ax = approximate(model, {"*": "exact"}, calib, num_batches=_DEMO_CALIB_BATCHES, progress=False)
    int8 = accuracy(ax)
    from .hw.baseline import best_exact

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
        rows.append({"multiplier": mult.name, "accuracy": accuracy(ax), "mre": mult.metrics.mre, "energy_saving": saving,
                     "energy_saving_vs_exact": vs_exact})
    rows.sort(key=lambda r: (-r["accuracy"], r["multiplier"]))
    atomic_write_json(folder / "uniform.json", {"schema": 2, "fp32_accuracy": fp32, "int8_accuracy": int8,
                                                "saving_reference": base.name, "rows": rows})

    def pct(x: float | None) -> str:
        return "n/a" if x is None else f"{100 * x:.1f}"

    lines = [f"| configuration | top-1 (%) | drop vs int8 (points) | MRE (%) | energy saving vs {base.name} (%) | "
             "vs behavioural exact (%) |",
             "|---|---:|---:|---:|---:|---:|",
             f"| fp32 | {100 * fp32:.2f} | | | | |",
             f"| int8, exact multiplier ({base.name}) | {100 * int8:.2f} | 0.00 | 0.0 | 0.0 | "
             f"{pct(1 - base.energy_pj / exact_hw.energy_pj) if exact_hw else 'n/a'} |"]
    lines += [f"| {r['multiplier']} everywhere | {100 * r['accuracy']:.2f} | {100 * (int8 - r['accuracy']):.2f} | "
              f"{pct(r['mre'])} | {pct(r['energy_saving'])} | {pct(r['energy_saving_vs_exact'])} |" for r in rows]
    lines.append(f"\nEnergy per multiplication on uniform int8 operands (osu018); savings against {base.label()}.")
    table = "\n".join(lines)
    atomic_write_text(folder / "uniform.md", table + "\n")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axis = plt.subplots(figsize=(10, 4))
    axis.bar([r["multiplier"] for r in rows], [100 * r["accuracy"] for r in rows], color="tab:blue")
    axis.axhline(100 * int8, color="tab:green", linestyle="--", label=f"int8 exact {100 * int8:.2f} %")
    axis.set(ylabel="test top-1 (%)", title="default ViT on digits, one multiplier in every layer")
    axis.tick_params(axis="x", rotation=60)
    axis.legend()
    fig.tight_layout()
    import io as _io

    buffer = _io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    atomic_write_bytes(folder / "uniform.png", buffer.getvalue())
    print(table)
    print(f"tables: {folder / 'uniform.md'}, {folder / 'uniform.json'}; plot: {folder / 'uniform.png'}")


def _stage_retrain(out: Path) -> None:
    """Retrain the multiplier that loses the most accuracy (while still above chance) with STE and gradient LUT.

    A model that a multiplier drives to chance level carries no signal left to
    recover (retraining it is training from scratch through broken products), so
    those designs are listed and skipped; the largest loss among the rest is
    retrained for one epoch with each gradient method (Adam, lr 5e-5).
    """
    import json

    from .data import num_classes
    from .emulator.retrain import retrain_config

    uniform_path = out / "accuracy" / "uniform.json"
    if not uniform_path.is_file():
        raise AxhwError(f"{uniform_path} not found: the accuracy stage writes it; run the whole demo (`make demo`)")
    uniform = json.loads(uniform_path.read_text())
    chance = 1.0 / num_classes("digits")
    collapsed = [r["multiplier"] for r in uniform["rows"] if r["accuracy"] <= 2 * chance]
    usable = [r for r in uniform["rows"] if r["accuracy"] > 2 * chance]
    if collapsed:
        print(f"at chance level (<= {200 * chance:.0f} %), not retrained: {', '.join(collapsed)}")
    if not usable or uniform["int8_accuracy"] - min(r["accuracy"] for r in usable) < 0.005:
        print("no multiplier loses more than 0.5 points: nothing to retrain")
        return
    worst = min(usable, key=lambda r: (r["accuracy"], r["multiplier"]))
    print(f"largest loss: {worst['multiplier']} everywhere ({100 * worst['accuracy']:.2f} %); "
          "retraining 1 epoch with each gradient method")
    report = retrain_config(worst["multiplier"], out_dir=out / "retrain", epochs=1, batch_size=_DEMO_BATCH,
                            calib_batches=_DEMO_CALIB_BATCHES, progress=False)
    print(report.table())
    for grad, run in report.runs.items():
        cached = " (from checkpoint)" if run.resumed_from_step == run.steps else ""
        print(f"{grad}: {run.steps} steps, {run.seconds:.1f} s{cached}; kept epoch {run.best_epoch}")
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
    images, cached by content hash).  True evaluations use the first 200 test images and are
    cached on disk; the checkpoint makes a second run replay instead of re-evaluate.
    """
    import warnings

    from .search import ConstraintWarning, run
    from .search.space import efficient_candidates

    candidates = efficient_candidates(3)
    if not candidates:
        raise AxhwError("no multiplier cheaper than the best exact design has a hardware cost; run the hardware cost "
                        "stage first")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConstraintWarning)
        result = run("default", "digits", candidates, max_accuracy_drop=1.0, budget=_DEMO_SEARCH_BUDGET, method="mcts", seed=0,
                     eval_size=_DEMO_SEARCH_EVAL, calib_size=128, checkpoint=out / "search_checkpoint.json", progress=False,
                     settings={"command": "python -m axhw.demo  # stage: search (axhw.demo._stage_search)"})
    result.save(out / "search_result.json")
    best = result.best()
    rows = [
        ("candidates", ", ".join(result.candidates)),
        ("true evaluations", f"{len(result.history) - 1} search + {result.settings['sensitivity_evaluations']} "
                             f"sensitivity ({result.settings['replayed_from_checkpoint']} replayed from checkpoint)"),
        ("accuracy fp32 / int8", f"{100 * result.fp32_accuracy:.2f} % / {100 * result.int8_accuracy:.2f} %"),
        ("power model", f"{result.settings.get('power_model')}, relative to all-{result.settings.get('power_reference')}"),
        ("best within 1.0 point", f"power {100 * best.power_rel:.1f} % of all-{result.candidates[0]}, "
                                  f"drop {result.accuracy_drop(best):.2f} points"),
        ("Pareto front", f"{len(result.pareto())} configurations"),
        ("result", str(out / "search_result.json")),
    ]
    _print_rows(rows)


STAGES.append(("search", _stage_search))


def _retrain_chosen(result: Any, config: dict[str, str], out: Path) -> dict[str, Any]:
    """Retrain the search's chosen configuration (STE, 1 epoch) on the search's test subset.

    Returns the ``retrained`` summary the report takes: ``accuracy`` in [0, 1] plus settings.
    """
    from .emulator.retrain import retrain_config

    eval_size = int(result.settings.get("eval_images", _DEMO_SEARCH_EVAL))
    report = retrain_config(config, out_dir=out / "retrain_chosen", grads=("ste",), epochs=1,
                            batch_size=_DEMO_BATCH, calib_batches=_DEMO_CALIB_BATCHES, eval_size=eval_size,
                            progress=False)
    return {"accuracy": report.retrained_accuracy["ste"], "grad": "ste", "epochs": 1, "lr": 5e-5,
            "test_images": eval_size, "before": report.approx_accuracy}


def _stage_report(out: Path) -> None:
    """Write the accelerator configuration report of the search stage's result."""
    from .report import load_result, write_report

    result_path = out / "search_result.json"
    if not result_path.is_file():
        raise AxhwError(f"{result_path} not found: the search stage writes it; run the whole demo (`make demo`)")
    result = load_result(result_path)
    chosen = result.best()
    retrained = _retrain_chosen(result, chosen.config, out)
    paths = write_report(result, out / "report", retrained=retrained, command="python -m axhw.demo  # stage: report")
    _print_rows([
        ("chosen configuration", f"evaluation #{chosen.index} ({chosen.method}) of {len(result.history)}"),
        ("accuracy int8 / chosen", f"{result.int8_accuracy * 100:.2f} % / {chosen.accuracy * 100:.2f} %"),
        ("multiplier power", f"{chosen.power_rel * 100:.2f} % of all-{result.candidates[0]} "
                             f"({result.settings.get('power_model', 'uniform operands')})"),
        ("after retraining (STE)", f"{retrained['accuracy'] * 100:.2f} %"),
        ("flags", str(len(paths.flags))),
    ])
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
