"""Baseline search methods, run on the same :class:`~axhw.search.problem.SearchProblem`
(and so the same budget of true evaluations) as :class:`~axhw.search.mcts.MCTS`.

* :class:`UniformSweep` — every op uses the same multiplier; one evaluation per
  candidate, least aggressive first (it cannot use more than ``n_candidates - 1``).
* :class:`RandomSearch` — configurations drawn uniformly at random.
* :class:`GreedySensitivity` — start all-exact; try single-op moves in decreasing
  ``saving / (sensitivity + ε)`` order; keep a move when the true drop stays within
  the constraint.
* :class:`Knapsack` — the multiple-choice knapsack on additive sensitivities, solved
  exactly with :func:`scipy.optimize.milp`::

      max Σ_ij saving[i, j] x_ij   s.t.  Σ_j x_ij = 1 (every op),  Σ_ij max(S[i, j], 0) x_ij ≤ C,  x binary

  The capacity ``C`` starts at the constraint ``Δ`` and is bisected on the true
  outcome (doubled while feasible and no upper bound is known) until the bracket is
  narrower than ``tol × Δ``; then the remaining budget enumerates the next-best
  solutions at the feasible end.  A solution already evaluated is excluded with a
  no-good cut ``Σ_{(i,j) ∈ sol} x_ij ≤ n_ops − 1``.
* :class:`NSGA2` — pymoo's NSGA-II on (power_rel, drop), integer variables (SBX and
  polynomial mutation with rounding), driven through its ask/tell interface.

Each has the scikit-learn shape: ``__init__`` stores settings and ``random_state``,
``run(problem)`` does the work, learned state ends in ``_``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.utils import check_random_state

from axhw.search.problem import SearchProblem

__all__ = ["UniformSweep", "RandomSearch", "GreedySensitivity", "Knapsack", "NSGA2"]


class UniformSweep:
    """One multiplier for every op, each candidate in turn (highest power first).

    Args:
        random_state: unused (deterministic); accepted for a uniform interface.
    """

    name = "uniform"

    def __init__(self, random_state: Any = None) -> None:
        self.random_state = random_state

    def run(self, problem: SearchProblem) -> "UniformSweep":
        space = problem.space
        X = np.array([space.uniform_config(j) for j in range(1, space.n_candidates)], dtype=np.int64)
        if len(X):
            order = np.argsort(-np.asarray(space.power_rel(X)), kind="stable")
            problem.evaluate(X[order], self.name)
        return self


class RandomSearch:
    """Configurations with every op's candidate drawn uniformly at random.

    Args:
        batch_size: configurations evaluated per executor call.
        random_state: seed.
    """

    name = "random"

    def __init__(self, batch_size: int = 4, random_state: Any = None) -> None:
        self.batch_size = batch_size
        self.random_state = random_state

    def run(self, problem: SearchProblem) -> "RandomSearch":
        rng = check_random_state(self.random_state)
        space = problem.space
        tries = 0
        while problem.remaining > 0 and tries < 1000:
            X = rng.randint(space.n_candidates, size=(min(self.batch_size, problem.remaining), space.n_ops))
            before = problem.n_spent
            problem.evaluate(X, self.name)
            tries = 0 if problem.n_spent > before else tries + 1
        return self


class GreedySensitivity:
    """Greedy single-op moves by saving per unit of sensitivity, checked by true evaluation.

    Args:
        epsilon: added to the sensitivity (in points) so that zero-drop moves rank by saving.
        random_state: unused (deterministic).

    Attributes:
        config_: the final accepted configuration (candidate indices).
    """

    name = "greedy"

    def __init__(self, epsilon: float = 0.05, random_state: Any = None) -> None:
        self.epsilon = epsilon
        self.random_state = random_state

    def run(self, problem: SearchProblem) -> "GreedySensitivity":
        space = problem.space
        S = np.clip(problem.sensitivity, 0.0, None)
        saving = space.saving
        moves = [(i, j) for i in range(space.n_ops) for j in range(1, space.n_candidates)
                 if saving[i, j] > 0 and S[i, j] <= problem.max_accuracy_drop]
        score = np.array([saving[i, j] / (S[i, j] + self.epsilon) for i, j in moves])
        current = space.exact_config()
        for k in np.argsort(-score, kind="stable"):
            if problem.remaining <= 0:
                break
            i, j = moves[k]
            if space.energy_pj[i, j] >= space.energy_pj[i, current[i]]:
                continue  # op i already uses a cheaper design
            trial = current.copy()
            trial[i] = j
            result = problem.evaluate(trial[None], self.name)
            if result and problem.drop(result[0].accuracy) <= problem.max_accuracy_drop:
                current = trial
        self.config_ = current
        return self


class Knapsack:
    """Exact multiple-choice knapsack on additive sensitivities, capacity bisected on true drops.

    Args:
        tol: bisection stops when the capacity bracket is narrower than ``tol × Δ``.
        random_state: unused (deterministic).

    Attributes:
        capacities_: the capacity ``C`` (points) of every solve, in order.
    """

    name = "knapsack"

    def __init__(self, tol: float = 0.05, random_state: Any = None) -> None:
        self.tol = tol
        self.random_state = random_state

    def run(self, problem: SearchProblem) -> "Knapsack":
        from scipy.optimize import Bounds, LinearConstraint, milp

        space = problem.space
        n, m = space.n_ops, space.n_candidates
        S = np.clip(problem.sensitivity, 0.0, None).ravel()
        c = -space.saving.ravel()  # milp minimizes
        choose_one = np.kron(np.eye(n), np.ones((1, m)))
        cuts: list[np.ndarray] = []
        # offset of the reference: the knapsack budgets drops below int8
        offset = 100.0 * (problem.reference_accuracy - problem.int8_accuracy)
        limit = problem.max_accuracy_drop - offset
        lo, hi = 0.0, None
        capacity = max(limit, 0.0)
        tol = self.tol * max(abs(problem.max_accuracy_drop), 1e-3)
        self.capacities_: list[float] = []
        for _ in range(4 * max(problem.remaining, 1) + 50):
            if problem.remaining <= 0:
                break
            constraints = [LinearConstraint(choose_one, 1, 1), LinearConstraint(S[None, :], -np.inf, capacity)]
            if cuts:
                constraints.append(LinearConstraint(np.array(cuts), -np.inf, n - 1))
            sol = milp(c, constraints=constraints, integrality=np.ones(n * m), bounds=Bounds(0, 1))
            self.capacities_.append(capacity)
            if sol.x is None:
                if capacity >= S.reshape(n, m).max(axis=1).sum():
                    break  # every configuration has been cut: nothing left
                lo = capacity
                capacity = 2 * capacity + 1e-3 if hi is None else (capacity + hi) / 2
                continue
            x = np.round(sol.x).reshape(n, m).argmax(axis=1)
            if problem.is_evaluated(x):
                cut = np.zeros(n * m)
                cut[np.arange(n) * m + x] = 1.0
                cuts.append(cut)
                continue
            e = problem.evaluate(x[None], self.name)[0]
            if problem.drop(e.accuracy) <= problem.max_accuracy_drop:
                lo = capacity
                capacity = 2 * capacity + 1e-3 if hi is None else (capacity + hi) / 2
            else:
                hi = capacity
                capacity = (lo + capacity) / 2
            if hi is not None and hi - lo < tol:
                capacity = lo  # bracket closed: enumerate the next-best solutions (no-good cuts) at lo
        return self


class NSGA2:
    """pymoo's NSGA-II on (power_rel, accuracy drop), both minimized, integer genes.

    Args:
        pop_size: population size (``None``: ``clip(budget // 4, 6, 40)``).
        random_state: seed (an int is passed to pymoo).

    Attributes:
        algorithm_: the pymoo algorithm after the last generation.
    """

    name = "nsga2"

    def __init__(self, pop_size: int | None = None, random_state: Any = None) -> None:
        self.pop_size = pop_size
        self.random_state = random_state

    def run(self, problem: SearchProblem) -> "NSGA2":
        from pymoo.algorithms.moo.nsga2 import NSGA2 as _NSGA2
        from pymoo.core.problem import Problem
        from pymoo.operators.crossover.sbx import SBX
        from pymoo.operators.mutation.pm import PM
        from pymoo.operators.repair.rounding import RoundingRepair
        from pymoo.operators.sampling.rnd import IntegerRandomSampling

        space = problem.space
        rng = check_random_state(self.random_state)
        seed = int(rng.randint(np.iinfo(np.int32).max))
        pop_size = self.pop_size or int(np.clip(problem.budget // 4, 6, 40))
        pm_problem = Problem(n_var=space.n_ops, n_obj=2, xl=0, xu=space.n_candidates - 1, vtype=int)
        algorithm = _NSGA2(
            pop_size=pop_size,
            sampling=IntegerRandomSampling(),
            crossover=SBX(prob=0.9, eta=15, vtype=float, repair=RoundingRepair()),
            mutation=PM(eta=20, vtype=float, repair=RoundingRepair()),
            eliminate_duplicates=True,
        )
        algorithm.setup(pm_problem, seed=seed, verbose=False)
        idle = 0
        while problem.remaining > 0 and idle < 20:
            pop = algorithm.ask()
            X = np.clip(np.round(pop.get("X")), 0, space.n_candidates - 1).astype(np.int64)
            before = problem.n_spent
            problem.evaluate(X, self.name)
            idle = 0 if problem.n_spent > before else idle + 1
            found = [problem.lookup(x) for x in X]  # None: left out by the budget
            keep = [k for k, e in enumerate(found) if e is not None]
            if not keep:
                break
            pop = pop[keep]
            pop.set("F", np.array([[found[k].power_rel, problem.drop(found[k].accuracy)] for k in keep]))
            algorithm.tell(infills=pop)
        self.algorithm_ = algorithm
        return self
