"""Hardware cost of multipliers on a real standard-cell library.

Area (µm²), cell count and mix from yosys synthesis onto a Liberty library;
equivalence of the netlist with the RTL by exhaustive gate-level simulation;
critical-path delay (ns) from OpenSTA; and data-aware power (mW) and energy per
multiplication (pJ): per-net switching activity measured by gate-level simulation
of an operand stream, annotated into OpenSTA.  Unsigned designs are costed inside a
generated signed sign-magnitude wrapper (:func:`signed_wrapper`), the datapath the
emulator's table ``sign(a·b)·M(|a|, |b|)`` stands for.

    >>> from axhw import hw
    >>> hw.cost("exact").area_um2                     # uniform int8 operands, osu018
    >>> hw.workload_cost("exact", pairs, stream="blocks.0.attn.qkv")  # a layer's stream, datapath order
    >>> hw.best_exact().name                          # the reference of every saving
    >>> hw.characterize_many(jobs=2)                  # every database entry, cached in hw.json
"""

from axhw.hw.cache import load_costs
from axhw.hw.design import Design, as_design, signed_wrapper, wrapper_source
from axhw.hw.equivalence import EquivalenceError, check_equivalence
from axhw.hw.baseline import Baseline, best_exact
from axhw.hw.flow import STEPS, FlowResult, characterize_many, cost, format_table, run_flow, workload_cost
from axhw.hw.liberty import Liberty, cell_models, resolve_liberty
from axhw.hw.power import (
    DEFAULT_PAIRS,
    Activity,
    PowerResult,
    check_operands,
    estimate_power,
    operands_sha256,
    simulate_activity,
    uniform_operands,
)
from axhw.hw.synthesis import ConstantDesignWarning, SynthesisResult, synthesize
from axhw.hw.timing import TimingResult, critical_path

__all__ = [
    "cost",
    "workload_cost",
    "best_exact",
    "Baseline",
    "characterize_many",
    "format_table",
    "run_flow",
    "FlowResult",
    "STEPS",
    "Design",
    "as_design",
    "signed_wrapper",
    "wrapper_source",
    "Liberty",
    "resolve_liberty",
    "cell_models",
    "synthesize",
    "SynthesisResult",
    "ConstantDesignWarning",
    "check_equivalence",
    "EquivalenceError",
    "critical_path",
    "TimingResult",
    "simulate_activity",
    "estimate_power",
    "Activity",
    "PowerResult",
    "uniform_operands",
    "check_operands",
    "operands_sha256",
    "DEFAULT_PAIRS",
    "load_costs",
]
