"""axhw.search: per-layer multiplier assignment search on the accuracy/power front.

``run(model, data, candidates, max_accuracy_drop=1.0, budget=40, method="mcts")``
profiles each op's sensitivity to each candidate, then searches with a Monte-Carlo
tree search whose rollouts follow a hardware-driven policy and whose rewards come
from a scikit-learn accuracy surrogate (or with a baseline: uniform sweep, random,
greedy, multiple-choice knapsack, NSGA-II), and returns a :class:`SearchResult`.
"""

from axhw.search.api import METHODS, ConstraintWarning, ResolutionWarning, cross_validated_surrogate_metrics, run_on_space
from axhw.search.baselines import NSGA2, GreedySensitivity, Knapsack, RandomSearch, UniformSweep
from axhw.search.evaluate import EXECUTORS, Evaluator, ModelTask, ProcessExecutor, RayExecutor, SerialExecutor, make_executor
from axhw.search.mcts import MCTS, rollout_policy
from axhw.search.pareto import hypervolume, hypervolume_curve, pareto_front
from axhw.search.problem import SearchProblem
from axhw.search.result import Evaluation, SearchResult
from axhw.search.retrained import RetrainedScore, score_retrained
from axhw.search.sensitivity import profile_sensitivity, sensitivity_configs
from axhw.search.space import EXACT, SearchSpace, efficient_candidates, hardware_cost
from axhw.search.surrogate import AccuracySurrogate, ConfigFeatures, make_surrogate, surrogate_metrics
from axhw.search.workflow import load_split, run, score_holdout

__all__ = [
    "run",
    "run_on_space",
    "METHODS",
    "ConstraintWarning",
    "ResolutionWarning",
    "load_split",
    "score_holdout",
    "score_retrained",
    "RetrainedScore",
    "cross_validated_surrogate_metrics",
    "SearchSpace",
    "EXACT",
    "hardware_cost",
    "efficient_candidates",
    "Evaluator",
    "ModelTask",
    "EXECUTORS",
    "SerialExecutor",
    "ProcessExecutor",
    "RayExecutor",
    "make_executor",
    "SearchProblem",
    "profile_sensitivity",
    "sensitivity_configs",
    "AccuracySurrogate",
    "ConfigFeatures",
    "make_surrogate",
    "surrogate_metrics",
    "MCTS",
    "rollout_policy",
    "UniformSweep",
    "RandomSearch",
    "GreedySensitivity",
    "Knapsack",
    "NSGA2",
    "Evaluation",
    "SearchResult",
    "pareto_front",
    "hypervolume",
    "hypervolume_curve",
]
