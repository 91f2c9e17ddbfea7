"""Write the accelerator configuration report of a search result.

Layout of the output folder::

    report.md        the report (Markdown; figures linked from plots/)
    report.html      the same report, self-contained (figures embedded, inline CSS)
    config.json      machine-readable per-op assignment and hardware hand-off
    filelist.f       RTL of the distinct multipliers used, wrappers, top (paths relative to the folder)
    rtl/             copies of those sources (verified against the database's SHA-256), the
                     sign-magnitude wrappers of unsigned cores and a top instantiating each
                     multiplier once (see :mod:`.handoff`)
    plots/*.png      accuracy vs power, sensitivity heat-map, MCTS rewards, surrogate

Every number printed comes from the :class:`~axhw.search.SearchResult`, the
multiplier database or a file hash; multipliers that are missing from the database
or stale are flagged in the report and left out of the hand-off, never used silently.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from axhw.io import atomic_write_bytes, atomic_write_json, atomic_write_text
from axhw.report import plots
from axhw.report.content import KIND_LABELS, MultiplierInfo, ReportContent, gather
from axhw.report.handoff import TOP_MODULE, Handoff, build_handoff
from axhw.report.render import Code, Figure, Note, Paragraph, Section, Table, to_html, to_markdown

__all__ = ["ReportPaths", "write_report", "CONFIG_SCHEMA"]

#: Version of ``config.json``.
CONFIG_SCHEMA = 1


@dataclass(frozen=True)
class ReportPaths:
    """Files written by :func:`write_report`.

    Attributes:
        out_dir: the report folder.
        markdown, html, config, filelist: ``report.md``, ``report.html``, ``config.json``, ``filelist.f``.
        plots: figure key -> PNG path (``accuracy_vs_power``, ``sensitivity``,
            ``mcts_rewards``, ``surrogate``; a key is absent when the result lacks its data).
        rtl: RTL files copied into ``out_dir/rtl`` for the hand-off.
        flags: warnings the report carries (missing or stale multipliers, mismatches).
    """

    out_dir: Path
    markdown: Path
    html: Path
    config: Path
    filelist: Path
    plots: dict[str, Path] = field(default_factory=dict)
    rtl: tuple[Path, ...] = ()
    flags: tuple[str, ...] = ()


# --------------------------------------------------------------------------- formatting

def _pct(x: float | None, digits: int = 2) -> str:
    return "n/a" if x is None else f"{x * 100:.{digits}f} %"


def _num(x: float | None, fmt: str = ".4g") -> str:
    return "n/a" if x is None else format(x, fmt)


def _saving(energy: float | None, reference: float | None) -> str:
    return "n/a" if energy is None or not reference else f"{(1 - energy / reference) * 100:.1f} %"


def _int(x: int) -> str:
    return f"{x:,}"


def _status(info: MultiplierInfo) -> str:
    if info.status == "float":
        return "fp32 (no multiplier)"
    if info.status != "ok":
        return info.status.upper()
    return "ok" if not info.flagged else "ok, flagged"


def _chosen_label(content: ReportContent) -> str:
    c = content.chosen
    return f"chosen configuration (evaluation #{c.index}, {c.method})"


# --------------------------------------------------------------------------- figures

def _figures(content: ReportContent) -> dict[str, tuple[bytes, str]]:
    """Figure key -> (PNG bytes, caption) for every figure the result has data for."""
    r = content.result
    out: dict[str, tuple[bytes, str]] = {}
    met = r.constraint_met()
    out["accuracy_vs_power"] = (
        plots.accuracy_vs_power(
            [(e.method, e.power_rel, e.accuracy) for e in r.history],
            chosen=(content.chosen.power_rel, content.chosen.accuracy),
            references={"fp32": r.fp32_accuracy, "int8 exact": r.int8_accuracy},
            power_reference=content.reference,
            constraint_accuracy=content.constraint_accuracy,
        ),
        f"Accuracy (on the `{r.eval_split}` split) vs multiplier power of all {len(r.history)} true evaluations, "
        "with each method's Pareto front; "
        f"the star is the chosen configuration ({'meets' if met else 'closest to'} the constraint).",
    )
    if r.sensitivity:
        ops = [op.name for op in r.ops if op.name in r.sensitivity]
        ops += [name for name in r.sensitivity if name not in ops]
        cands = [m for m in r.candidates if any(m in r.sensitivity[o] for o in ops)]
        cands += sorted({m for o in ops for m in r.sensitivity[o]} - set(cands))
        drops = np.array([[r.sensitivity[o].get(m, np.nan) for m in cands] for o in ops], dtype=float)
        out["sensitivity"] = (
            plots.sensitivity_heatmap(ops, cands, drops),
            "Layer × multiplier sensitivity: accuracy drop (points) when one op alone uses the multiplier.",
        )
    if r.mcts_rewards:
        out["mcts_rewards"] = (
            plots.reward_convergence(r.mcts_rewards),
            f"MCTS reward of each of the {len(r.mcts_rewards)} iterations, with running mean and best.",
        )
    sm = r.surrogate_metrics or {}
    if sm.get("predicted") and sm.get("true"):
        out["surrogate"] = (
            plots.surrogate_scatter(sm["predicted"], sm["true"], rmse=sm.get("rmse"), kendall_tau=sm.get("kendall_tau")),
            "Surrogate predicted vs true accuracy drop (points below the search's reference) on held-out "
            "configurations" + (f"; protocol: {sm['protocol']}." if sm.get("protocol") else "."),
        )
    else:
        pairs = [(e.predicted_accuracy, e.accuracy) for e in r.history if e.predicted_accuracy is not None]
        if pairs:
            out["surrogate"] = (
                plots.surrogate_scatter([100 * (r.int8_accuracy - p) for p, _ in pairs],
                                        [100 * (r.int8_accuracy - t) for _, t in pairs]),
                "Surrogate prediction made before each true evaluation vs the measured accuracy drop "
                "(points below int8 exact).",
            )
    return out


# --------------------------------------------------------------------------- sections

def _summary(content: ReportContent) -> Section:
    r, c = content.result, content.chosen
    blocks: list[Any] = []
    blocks += [Note(flag, "warning") for flag in content.flags]
    blocks += [Note(note) for note in content.notes]
    blocks.append(Paragraph(
        f"Model `{r.model_name}` on data set `{r.dataset}`: {len(r.ops)} approximable ops, "
        f"{len(r.candidates)} candidate multipliers ({', '.join(f'`{m}`' for m in r.candidates)}). "
        f"Search method `{r.method}` with seed {r.seed} made {len(r.history)} true evaluations."
    ))
    rows = _accuracy_rows(content)
    blocks.append(Table(["configuration", "split (images)", "top-1 accuracy [95 % CI]",
                         "drop vs int8 exact, points [paired 95 % CI]", "drop flag"], rows, ["l", "l", "r", "r", "l"]))
    blocks.append(Paragraph(_split_note(r)))
    note = _retrained_note(content)
    if note is not None:
        blocks.append(note)
    chosen_flag = rows[-2][4] if r.holdout_evaluation(c) is not None else rows[2][4]
    if chosen_flag.startswith("not distinguishable"):
        blocks.append(Note(f"the chosen configuration's drop below int8 is {chosen_flag} at 95 %: the images "
                           "cannot tell whether it meets the limit; measure on more images before relying on it",
                           "warning"))

    met = r.constraint_met()
    min_acc = content.constraint_accuracy
    constraint = (f"accuracy drop ≤ {r.max_accuracy_drop:g} points below int8 exact "
                  f"(accuracy ≥ {_pct(min_acc)}): " + (f"met on the `{r.eval_split}` split" if met else
                                                        "NOT met by any evaluation; the closest configuration is shown"))
    energy_chosen = sum(row.energy_per_image_pj for row in content.rows) if all(
        row.energy_per_image_pj is not None for row in content.rows) else None
    source = "search's power model" if content.energy_source == "search" else "current database"
    ref = content.reference
    basis = ("each layer's own operand stream (weight-stationary: one weight held while activations stream past it)"
             if content.workload_power else "uniform operands (no workload streams recorded)")
    hw_rows = [
        [f"multiplier power, relative to all-{ref} (the cheapest zero-error design)",
         f"{_pct(c.power_rel)} (saving {_pct(1 - c.power_rel)})"],
        ["power figures from", basis],
        [f"multiplier area (MAC-weighted), relative to all-{ref}",
         _pct(c.area_rel) if c.area_rel is not None else "not recorded (a candidate has no area)"],
        ["constraint", constraint],
        ["distinct multiplier modules", str(len([n for n in content.used if n != "fp32"]))],
        ["cell library (hardware costs)", ", ".join(f"{lib['liberty']} at {lib['clock_ns']:g} ns clock"
                                                  for lib in content.liberties) or "n/a"],
    ]
    if energy_chosen is not None:
        hw_rows.append([f"multiplier energy per image ({source})", f"{energy_chosen / 1e6:.4g} µJ"])
    if content.power_rel_db is not None:
        hw_rows.append([f"power relative to all-{ref}, recomputed from the {source}", _pct(content.power_rel_db)])
    if content.power_rel_exact is not None:
        on = "uniform operands" if content.power_rel_exact_basis == "uniform" else source
        hw_rows.append([f"power relative to the behavioural `exact` ({on})",
                        f"{_pct(content.power_rel_exact)} (saving {_pct(1 - content.power_rel_exact)})"])
    blocks.append(Table(["quantity", "value"], hw_rows))
    if not met:
        blocks.append(Note(f"no evaluated configuration meets the constraint; the report shows the most accurate "
                           f"one. Relax `max_accuracy_drop`, enlarge the budget or retrain.", "warning"))
    return Section("Summary", "summary", blocks)


def _ci(accuracy: float, interval: tuple[float, float] | None) -> str:
    return _pct(accuracy) + ("" if interval is None else f" [{interval[0] * 100:.1f}, {interval[1] * 100:.1f}]")


def drop_flag(estimate: Any, limit: float) -> str:
    """Whether a paired drop is distinguishable from 0 and from the limit (its 95 % interval excludes them)."""
    if estimate is None:
        return "no interval"
    flags = [label for label, value in (("≈ 0", 0.0), ("≈ limit", limit)) if not estimate.distinguishable_from(value)]
    return "not distinguishable from " + " or ".join(f.replace("≈ ", "") for f in flags) if flags else "distinct"


def _accuracy_rows(content: ReportContent) -> list[list[str]]:
    """fp32, int8 and the chosen configuration on the search split, then on the held-out split, then retrained."""
    r, c = content.result, content.chosen
    n = r.history[0].n_images or r.settings.get("eval_images")
    split = f"{r.eval_split} ({n})" if n else r.eval_split
    from axhw.stats import wilson_interval

    def interval(acc: float, count: int | None) -> tuple[float, float] | None:
        return wilson_interval(int(round(acc * count)), int(count)) if count else None

    est = r.drop_estimate(c)
    rows = [
        ["fp32 (float model)", split, _ci(r.fp32_accuracy, interval(r.fp32_accuracy, n)), "", ""],
        ["int8, every multiplier exact", split, _ci(r.int8_accuracy, r.accuracy_interval(r.history[0])), "0", ""],
        [_chosen_label(content) + ", before retraining", split, _ci(c.accuracy, r.accuracy_interval(c)),
         est.format() if est is not None else f"{r.accuracy_drop(c):+.2f}", drop_flag(est, r.max_accuracy_drop)],
    ]
    held = r.holdout_evaluation(c)
    if held is not None:
        hs = f"{held['split']} ({held['n_images']}), untouched"
        fp32, ref = r.holdout.get("fp32_accuracy"), r.holdout["reference"]["accuracy"]
        if fp32 is not None:
            rows.append(["fp32 (float model)", hs, _ci(fp32, interval(fp32, held["n_images"])), "", ""])
        rows.append(["int8, every multiplier exact", hs, _ci(ref, interval(ref, held["n_images"])), "0", ""])
        rows.append([_chosen_label(content) + ", before retraining", hs, _ci(held["accuracy"], held["interval"]),
                     held["drop"].format(), drop_flag(held["drop"], r.max_accuracy_drop)])
    else:
        rows.append([_chosen_label(content), "held-out split", "not measured (the result has no held-out scores)",
                     "", "no interval"])
    rows.append(_retrained_row(content))
    return rows


def _retrained_row(content: ReportContent) -> list[str]:
    """The chosen configuration after retraining: measured here, typed in (labelled so), or not retrained."""
    rt = content.retrained
    label = "chosen configuration, after retraining"
    if rt is None:
        return [label, "", "not retrained", "n/a", ""]
    if rt.get("source") != "measured":
        settings = ", ".join(f"{k}={v}" for k, v in rt.items() if k not in ("source", "accuracy"))
        return [f"{label} (typed in, not measured{'; ' + settings if settings else ''})", "not measured here",
                _pct(float(rt["accuracy"])), "n/a (no per-image outcomes)", "no interval"]
    from axhw.stats import DropEstimate

    settings = ", ".join(text for key, text in (("grad", f"grad={rt.get('grad')}"), ("epochs", f"epochs={rt.get('epochs')}"),
                                                ("best_epoch", f"kept epoch {rt.get('best_epoch')} (chosen on val)"),
                                                ("lr", f"lr={rt.get('lr')}")) if rt.get(key) is not None)
    d = rt.get("drop")
    drop = DropEstimate(**d) if d else None
    return [f"{label} ({settings}; measured by this report)", f"{rt['split']} ({rt['n_images']}), untouched",
            _ci(float(rt["accuracy"]), tuple(rt["interval"])),
            drop.format() if drop is not None else "no paired reference in the result",
            drop_flag(drop, content.result.max_accuracy_drop)]


def _retrained_note(content: ReportContent) -> Note | None:
    """Where the after-retraining figure comes from."""
    rt = content.retrained
    if rt is None:
        return None
    if rt.get("source") != "measured":
        return Note("the accuracy after retraining was typed in (`--retrained-accuracy` or a mapping passed to "
                    "`write_report`), not measured by this report: it has no image count, interval or paired drop; "
                    "give `--retrained summary.json` of `axhw retrain` to have it measured")
    rec = rt.get("recorded") or {}
    text = (f"The after-retraining row was measured by this report: the `{rt['grad']}` weights `{rt['weights']}` "
            f"(sha256 `{rt['weights_sha256'][:16]}…`) of `{rt['summary']}`, rebuilt with the chosen configuration and "
            f"scored on the `{rt['split']}` split: the same images as the int8 row on `{rt['split']}`, so its drop is paired.")
    if rec.get("accuracy") is not None:
        same = rec.get("split") == rt["split"] and rec.get("n_images") == rt["n_images"]
        text += (f" The summary records {_pct(rec['accuracy'])} on {rec.get('n_images')} `{rec.get('split')}` images"
                 + ("; it disagrees (see the warning above)." if rt.get("disagreement") else
                    "; the same." if same else "; other images, not compared."))
    return Note(text)


def _split_note(r: Any) -> str:
    held = r.holdout.get("split") if r.holdout else None
    text = (f"Every choice (sensitivity profile, search evaluations, the pick) was made on the `{r.eval_split}` "
            f"split; the constraint is checked at bound `{r.bound}` (`point`: the measured drop). ")
    if held:
        text += (f"The `{held}` split was read only after the search ended, to measure the reported "
                 "configurations; its figures are the ones to quote. ")
    return text + ("Intervals: Wilson 95 % for an accuracy; Newcombe's paired 95 % interval for a drop below the "
                   "int8 model on the same images. A drop flagged as not distinguishable from 0 or from the limit "
                   "has an interval that contains it.")


def _per_layer(content: ReportContent) -> Section:
    rows = []
    for k, row in enumerate(content.rows):
        m = row.info.multiplier
        metrics = m.metrics if m is not None else None
        rows.append([
            str(k), f"`{row.name}`", KIND_LABELS.get(row.kind, row.kind), _int(row.macs_per_image), row.multiplier,
            _num(metrics.mae if metrics else None), _num(metrics.wce if metrics else None),
            _num(metrics.bias if metrics else None), _num(row.uniform_energy_pj),
            _num(row.energy_pj) if content.workload_power else "n/a", _saving(row.energy_pj, row.reference_energy_pj),
            _pct(row.share), _status(row.info),
        ])
    ref = content.reference
    header = ["#", "op", "kind", "MACs / image", "multiplier", "MAE", "WCE", "bias", "pJ / mult. (uniform)",
              "pJ / mult. (workload)", f"saving vs {ref}", "share of power", "status"]
    total_macs = sum(r.macs_per_image for r in content.rows)
    stream = ("the workload column is the multiplier costed on this layer's own operand stream, collected on the "
              "calibration images in the order a weight-stationary datapath sees it (one weight held while the "
              "activations stream past it)" if content.workload_power else
              "no workload streams were recorded, so only uniform-operand figures exist")
    blocks: list[Any] = [
        Paragraph("One row per approximable op of the model, in model order. MAE, WCE and bias are the "
                  "multiplier's error over all 65,536 int8 operand pairs, in product units: with e = approx − a·b, "
                  "MAE = mean |e|, WCE = max |e|, bias = mean e (as percentages of the 2^16 output range, as "
                  "EvoApproxLib reports them: MAE% = 100·MAE/2^16; every definition is in `axhw show` and "
                  "docs/metrics.md). Energy per "
                  f"multiplication: the uniform column is on uniformly random int8 operands; {stream}. The saving "
                  f"is against `{ref}`, the cheapest zero-error design, on the same operands as the power model; "
                  "share of power is the op's MACs × energy over the model's total."),
        Table(header, rows, ["r", "l", "l", "r", "l", "r", "r", "r", "r", "r", "r", "r", "l"]),
        Paragraph(f"{len(content.rows)} ops, {_int(total_macs)} MACs per image in total."),
    ]
    return Section("Per-layer assignment", "layers", blocks)


def _search(content: ReportContent, figures: dict[str, tuple[bytes, str]]) -> Section:
    r = content.result
    blocks: list[Any] = []
    missing = {
        "accuracy_vs_power": "",
        "sensitivity": "the result has no sensitivity profile",
        "mcts_rewards": f"method `{r.method}` records no MCTS rewards",
        "surrogate": "the result has no surrogate predictions",
    }
    for key in missing:
        if key in figures:
            png, caption = figures[key]
            blocks.append(Figure(f"plots/{key}.png", png, caption))
        else:
            blocks.append(Note(f"no {key.replace('_', ' ')} plot: {missing[key]}."))
    sm = r.surrogate_metrics or {}
    if "rmse" in sm or "kendall_tau" in sm:
        blocks.append(Paragraph(
            f"Surrogate on held-out true evaluations: RMSE {_num(sm.get('rmse'), '.3f')} points, "
            f"Kendall τ {_num(sm.get('kendall_tau'), '.3f')}"
            f" (n = {len(sm.get('true') or [])})."))
    per_method = []
    for method in sorted({e.method for e in r.history}):
        evals = [e for e in r.history if e.method == method]
        feasible = [e for e in evals if r.accuracy_drop(e) <= r.max_accuracy_drop + 1e-9]
        best = min(feasible, key=lambda e: (e.power_rel, -e.accuracy)) if feasible else None
        per_method.append([method, str(len(evals)), str(len(r.pareto(method))), str(len(feasible)),
                           _pct(1 - best.power_rel) if best else "none feasible",
                           _pct(best.accuracy) if best else "n/a"])
    blocks.append(Table(["method", "true evaluations", "Pareto points", "meeting constraint",
                         "best power saving meeting constraint", f"its accuracy ({r.eval_split})"], per_method,
                        ["l", "r", "r", "r", "r", "r"]))
    front = []
    for e in r.pareto():
        est, held = r.drop_estimate(e), r.holdout_evaluation(e)
        front.append([str(e.index), e.method, _pct(e.power_rel), _ci(e.accuracy, r.accuracy_interval(e)),
                      est.format() if est is not None else f"{r.accuracy_drop(e):+.2f}",
                      "yes" if r.accuracy_drop(e) <= r.max_accuracy_drop + 1e-9 else "no",
                      held["drop"].format() if held is not None else "not measured",
                      drop_flag(held["drop"] if held is not None else est, r.max_accuracy_drop)])
    held_split = (r.holdout or {}).get("split", "held-out")
    blocks.append(Paragraph(f"Pareto front over all methods (true evaluations on the `{r.eval_split}` split; "
                            f"drops in points with paired 95 % intervals, then re-measured on `{held_split}`):"))
    blocks.append(Table(["evaluation", "method", f"power vs all-{content.reference}", f"accuracy ({r.eval_split}) [95 % CI]",
                         f"drop ({r.eval_split})", "meets constraint", f"drop ({held_split})", "drop flag"],
                        front, ["r", "l", "r", "r", "r", "l", "r", "l"]))
    return Section("Search", "search", blocks)


def _handoff_section(content: ReportContent, handoff: Handoff) -> Section:
    modules = handoff.modules
    rows = []
    total_macs = sum(r.macs_per_image for r in content.rows) or 1
    for rec in modules:
        hw = rec.get("hardware") or {}
        params = ", ".join(f"{k}={v}" for k, v in (rec.get("parameters") or {}).items())
        module = f"`{rec['verilog_module']}`" + (f" {params}" if params else "") if rec.get("verilog_module") else "n/a"
        if rec.get("wrapper"):
            module += ", wrapped"
        energy = rec.get("energy_per_image_pj")
        rows.append([
            rec["name"], module, f"`{rec['rtl_file']}`" if rec.get("rtl_file") else "left out",
            f"`{rec['rtl_sha256'][:12]}`" if rec.get("rtl_sha256") else "n/a",
            str(len(rec["ops"])), _pct(rec["macs_per_image"] / total_macs, 1),
            _num(hw.get("area_um2"), ".1f"), _num(hw.get("delay_ns"), ".3f"), _num(hw.get("power_mw"), ".4g"),
            _num(hw.get("energy_pj"), ".4g"), _num(None if energy is None else energy / 1e6, ".4g"),
            rec["status"].upper() if rec["status"] != "ok" else "ok",
        ])
    t = handoff.totals
    energy = t["energy_per_image_pj"]
    rows.append(["total", f"{t['instances']} instance(s)", "", "", str(len(content.rows)),
                 _pct(t["macs_per_image"] / total_macs, 1), _num(t["area_um2"], ".1f"), "",
                 _num(t["power_mw"], ".4g"), "", _num(None if energy is None else energy / 1e6, ".4g"), ""])
    liberties = ", ".join(f"{lib['liberty']} at {lib['clock_ns']:g} ns clock" for lib in content.liberties) or "n/a"
    wrapped = [rec for rec in modules if rec.get("wrapper")]
    blocks: list[Any] = [
        Paragraph(f"The chosen configuration uses {len(modules)} distinct multiplier module(s). Their RTL "
                  "sources are copied into `rtl/` beside this report (checked against the database SHA-256; the "
                  f"table shows its first 12 digits, `config.json` and `filelist.f` the full hash) and listed in "
                  f"`filelist.f`, which ends with `rtl/{TOP_MODULE}.v`: a top that instantiates each multiplier once "
                  f"on its own ports, so the list elaborates as one design (`iverilog -s {TOP_MODULE} -c filelist.f`). "
                  "`config.json` holds the per-op assignment, ports, parameters and these costs in machine-readable "
                  f"form. Area, delay and power are from synthesis on {liberties}, with uniformly random operands; "
                  "power is at that clock, one multiplication per cycle. Energy per image is each op's MACs × its "
                  "energy per multiplication, summed over the ops the multiplier serves. The total row is one "
                  "instance of each multiplier, all active."),
    ]
    if wrapped:
        blocks.append(Paragraph(
            "Unsigned cores compute the product of magnitudes; the signed datapath the model was emulated and "
            "costed with is the sign-magnitude wrapper `axhw_sm_*` shipped beside each core "
            "(`y = sign(a·b)·M(|a|, |b|)`; " + ", ".join(f"`{rec['name']}` in `{rec['wrapper']['rtl_file']}`" for rec in wrapped)
            + "). Instantiate the wrapper, not the bare core; the costs below are the wrapper's."))
    blocks.append(Table(["multiplier", "Verilog module", "RTL file", "sha256", "ops", "MAC share", "area (µm²)",
                         "delay (ns)", "power (mW)", "pJ / mult.", "µJ / image", "status"], rows,
                        ["l", "l", "l", "l", "r", "r", "r", "r", "r", "r", "r", "l"]))
    for rec in modules:
        if rec["status"] != "ok":
            blocks.append(Note(f"`{rec['name']}` is {rec['status']} and is not part of the hand-off: "
                               + "; ".join(rec["problems"]), "warning"))
        elif rec["problems"]:
            blocks.append(Note(f"`{rec['name']}`: " + "; ".join(rec["problems"]), "warning"))
    blocks.append(Paragraph("`filelist.f`:"))
    blocks.append(Code(handoff.filelist))
    return Section("Hardware hand-off", "handoff", blocks)


def _reproducibility(content: ReportContent) -> Section:
    r = content.result
    liberties = content.liberties
    blocks: list[Any] = []
    settings_rows = [["search seed", str(r.seed)], ["search method", r.method],
                     ["max accuracy drop (points)", f"{r.max_accuracy_drop:g}"]]
    for key in sorted(r.settings):
        if key in ("multipliers", "energy_pj", "command"):
            continue
        value = r.settings[key]
        settings_rows.append([key, json.dumps(value, sort_keys=True, default=str)])
    blocks.append(Paragraph("Search settings, as recorded in the result:"))
    blocks.append(Table(["setting", "value"], settings_rows))

    names = sorted(set(r.versions) | set(content.versions_now))
    blocks.append(Paragraph("Package versions when the search ran and when this report was written:"))
    blocks.append(Table(["package", "search", "report"],
                        [[n, str(r.versions.get(n, "not recorded")), content.versions_now.get(n, "-")] for n in names]))
    tools: dict[str, set[str]] = {}
    for name in content.used:
        hw = content.multipliers[name].hw
        for tool, version in (getattr(hw, "tools", None) or {}).items():
            tools.setdefault(tool, set()).add(str(version))
    if tools:
        blocks.append(Paragraph("EDA tools that produced the hardware costs: "
                                + ", ".join(f"{t} {' / '.join(sorted(v))}" for t, v in sorted(tools.items())) + "."))
    lib_rows = []
    for lib in liberties:
        match = ("matches" if lib["sha256_now"] == lib["sha256"] else
                 "file not found here" if lib["sha256_now"] is None else "DIFFERS: costs were computed on another file")
        lib_rows.append([lib["liberty"], f"`{lib['path']}`" if lib["path"] else "unknown", f"`{lib['sha256']}`",
                         f"{lib['clock_ns']:g}", match])
    if lib_rows:
        blocks.append(Table(["Liberty", "file", "sha256 (recorded)", "clock (ns)", "file now"], lib_rows))
    db_rows = []
    for name, info in content.multipliers.items():
        for fname, sha in info.record_hashes.items():
            db_rows.append([name, fname, f"`{sha}`"])
        if not info.record_hashes and info.status != "float":
            db_rows.append([name, "-", "no record files in the database folder" if info.status != "missing"
                            else "MISSING"])
    blocks.append(Paragraph("Multiplier database records (the chosen multipliers, every candidate and `exact`):"))
    blocks.append(Table(["multiplier", "file", "sha256"], db_rows))
    commands = []
    search_cmd = r.settings.get("command")
    commands.append(f"# search\n{search_cmd}" if search_cmd else "# search: command not recorded in the result")
    commands.append(f"# report\n{content.command}" if content.command else "# report: written from the Python API")
    blocks.append(Paragraph("Commands:"))
    blocks.append(Code("\n".join(commands)))
    return Section("Reproducibility", "reproducibility", blocks)


# --------------------------------------------------------------------------- config.json

def _config_json(content: ReportContent, modules: list[dict[str, Any]]) -> dict[str, Any]:
    r, c = content.result, content.chosen
    return {
        "schema": CONFIG_SCHEMA,
        "kind": "axhw.report.AcceleratorConfig",
        "model": r.model_name,
        "dataset": r.dataset,
        "constraint": {"max_accuracy_drop_points": r.max_accuracy_drop, "reference": "int8_exact",
                       "min_accuracy": content.constraint_accuracy, "met": r.constraint_met()},
        "accuracy": {"split": r.eval_split, "fp32": r.fp32_accuracy, "int8_exact": r.int8_accuracy,
                     "chosen": c.accuracy, "retrained": (content.retrained or {}).get("accuracy")},
        "held_out": _held_out_json(r, c),
        "retraining": content.retrained,
        "power_rel": c.power_rel,
        "power_reference": content.reference,
        "power_basis": "workload (weight-stationary)" if content.workload_power else "uniform",
        "power_rel_exact": content.power_rel_exact,
        "area_rel": c.area_rel,
        "power_rel_recomputed": content.power_rel_db,
        "search": {"method": r.method, "seed": r.seed, "evaluation_index": c.index, "evaluation_method": c.method,
                   "true_evaluations": len(r.history)},
        "assignment": {row.name: row.multiplier for row in content.rows},
        "ops": [{"name": row.name, "kind": row.kind, "macs_per_image": row.macs_per_image,
                 "multiplier": row.multiplier, "energy_pj": row.energy_pj, "power_share": row.share,
                 "uniform_energy_pj": row.uniform_energy_pj, "reference_energy_pj": row.reference_energy_pj,
                 "status": row.info.status} for row in content.rows],
        "modules": modules,
        "liberty": content.liberties,
        "flags": list(content.flags),
    }


def _held_out_json(r: Any, c: Any) -> dict[str, Any] | None:
    held = r.holdout_evaluation(c)
    if held is None:
        return None
    d = held["drop"]
    return {"split": held["split"], "n_images": held["n_images"], "int8_exact": r.holdout["reference"]["accuracy"],
            "chosen": held["accuracy"], "chosen_interval": list(held["interval"]),
            "drop_points": d.drop, "drop_interval_points": [d.lower, d.upper]}


# --------------------------------------------------------------------------- entry point

def write_report(
    result: Any,
    out_dir: str | os.PathLike,
    *,
    retrained: str | os.PathLike | Mapping[str, Any] | Any = None,
    grad: str | None = None,
    device: str | None = None,
    backend: str = "auto",
    command: str | None = None,
) -> ReportPaths:
    """Write the accelerator configuration report of a search result.

    Args:
        result: a :class:`~axhw.search.SearchResult` (see :func:`axhw.report.load_result`
            to read one from disk with clear errors).
        out_dir: folder to write into (created; files already there are replaced).
        retrained: the chosen configuration after retraining: the ``summary.json`` of
            ``axhw retrain`` (or its folder), whose retrained weights the report rebuilds and
            measures itself on the result's held-out split
            (:func:`axhw.search.score_retrained`); an already measured
            :class:`~axhw.search.RetrainedScore`; or a mapping ``{"accuracy": fraction in
            [0, 1], ...}`` measured elsewhere, printed as typed in, not measured.
            ``None`` reports "not retrained".
        grad: which retrained weights of the summary (``None``: the one chosen on val).
        device: where the retrained model is measured (``None``: CPU).
        backend: kernel backend it is measured with.
        command: the command line that produced the report, printed in the
            reproducibility section (``None``: "written from the Python API").

    Returns:
        The :class:`ReportPaths` written; ``flags`` lists the warnings the report carries
        (among them a retraining summary whose own figure disagrees with the measurement).

    Raises:
        ConfigError: ``retrained`` is malformed, or a run of another model, data or
            per-op assignment than the chosen configuration.
        DataError: the result has no evaluation, or the held-out data changed since the search.
    """
    if isinstance(retrained, (str, os.PathLike)):
        from axhw.search.retrained import score_retrained

        retrained = score_retrained(result, retrained, grad=grad, device=device, backend=backend)
    out = Path(out_dir)
    content = gather(result, retrained=retrained, command=command)
    out.mkdir(parents=True, exist_ok=True)
    figures = _figures(content)
    plot_paths = {key: atomic_write_bytes(out / "plots" / f"{key}.png", png) for key, (png, _) in figures.items()}
    handoff = build_handoff(content, out)
    modules, filelist, copies = handoff.modules, handoff.filelist, handoff.files
    sections = [
        _summary(content),
        _per_layer(content),
        _search(content, figures),
        _handoff_section(content, handoff),
        _reproducibility(content),
    ]
    title = f"Accelerator configuration report: {result.model_name} on {result.dataset}"
    paths = ReportPaths(
        out_dir=out,
        markdown=atomic_write_text(out / "report.md", to_markdown(title, sections)),
        html=atomic_write_text(out / "report.html", to_html(title, sections)),
        config=atomic_write_json(out / "config.json", {**_config_json(content, modules), "handoff": {
            "top_module": TOP_MODULE, "totals": handoff.totals}}),
        filelist=atomic_write_text(out / "filelist.f", filelist),
        plots=plot_paths,
        rtl=tuple(copies),
        flags=tuple(content.flags),
    )
    return paths
