"""Monte-Carlo tree search with a hardware-driven rollout policy and an accuracy surrogate.

State and actions
    A node at depth ``d`` fixes the multipliers of the first ``d`` ops (model order);
    its children choose a candidate for op ``d``.  A leaf at depth ``n_ops`` is a full
    configuration.

Selection (UCT)
    From the root, while a node has no untried action, go to the child maximizing
    ``Q(c) + c_uct · sqrt(ln N(parent) / N(c))`` with ``Q = W / N`` its mean backed-up
    value.  Then expand one untried action, drawn from the rollout policy restricted
    to the untried actions.

Rollout policy (``policy="hardware"``)
    Every op not fixed by the path gets multiplier ``m`` with probability::

        P(m | op i) ∝ exp(α · s[i, m] − β · max(S[i, m], 0) / Δ)

    where ``s[i, m] = n_ops · MACs_i · (E[i, exact] − E[i, m]) / Σ_k MACs_k E[k, exact]``
    is the power saving of ``m`` at op ``i`` as a share of the all-exact total, scaled
    by ``n_ops`` so that an op of average size saving 50 % scores 0.5 (hardware cost);
    ``S[i, m]`` is the sensitivity (accuracy drop in points when op ``i`` alone uses
    ``m``: the larger of the measured drop and its rank-one fit
    :func:`~axhw.search.sensitivity.rank1_sensitivity`) and ``Δ`` the constraint in points.  The joint probability of a
    rollout is then ``∝ exp(α · n_ops · saving(x) − β · Σ_i S[i, x_i] / Δ)``: a Boltzmann
    distribution around the Lagrangian optimum of "most saving for an additive drop
    within the target".  Default ``α = 4``; ``β = "auto"`` sets ``β`` per target ``t``
    by bisection so that the expected additive drop of a rollout,
    ``Σ_i Σ_m P(m | i) · max(S[i, m], 0)``, equals ``t``.  Measured sensitivities are
    coarse (one test image is 0.28-0.5 points, so many small drops read 0 and add up
    unseen), so by default (``calibrate=True``) ``β`` is instead re-calibrated every
    round, by bisection on ``log β ∈ [-3, 4]``, until the *surrogate's* mean predicted
    drop of policy rollouts equals the round's target: the policy's caution follows
    what the true evaluations have taught the surrogate, while designs with zero
    sensitivity (an exact design that is merely cheaper) keep their full preference.
    ``policy="uniform"`` (the
    ablation) draws every candidate with probability ``1 / n_candidates``, for both
    rollouts and expansion.

Reward (from the surrogate, no true evaluation)
    Each iteration runs ``n_rollouts`` rollouts from the expanded node and predicts
    their accuracy drops ``d̂`` with the surrogate
    (:func:`~axhw.search.surrogate.make_surrogate`).  A rollout with power ``p``
    (relative to all-exact) earns::

        r = 1 − p                               if d̂ ≤ t   (the power saving)
        r = −λ · min(1, (d̂ − t) / Δ)             otherwise  (penalty, λ = ``penalty``)

    and the node values back up the best reward of the iteration (``backup="max"``)
    or their mean.  The target ``t`` cycles through ``targets × Δ`` (default
    ``(1.0, 0.5)``), one tree per target, so the evaluated set covers the constraint
    and a safer point of the front.

True evaluations
    After ``iterations`` iterations, the ``batch_size`` not-yet-evaluated
    configurations with the highest reward under the current surrogate (among this
    round's rollouts and the best of earlier rounds) get a true evaluation; the
    surrogate is refit on the sensitivity table plus every true evaluation
    (replicated ``history_weight`` times), and the next round starts, until the
    budget is spent.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from sklearn.utils import check_random_state

from axhw.search.problem import SearchProblem
from axhw.search.sensitivity import rank1_sensitivity, sensitivity_samples
from axhw.search.surrogate import make_surrogate

__all__ = ["MCTS", "rollout_policy"]


def _softmax_rows(logits: np.ndarray) -> np.ndarray:
    logits = logits - logits.max(axis=1, keepdims=True)
    p = np.exp(logits)
    return p / p.sum(axis=1, keepdims=True)


def rollout_policy(problem: SearchProblem, policy: str = "hardware", alpha: float = 4.0,
                   beta: float | str = "auto", target: float | None = None) -> np.ndarray:
    """``(n_ops, n_candidates)`` rollout probabilities (rows sum to 1); see the module docstring.

    Args:
        problem: gives the space (energies, MACs), the sensitivity table and ``Δ``.
        policy: ``"hardware"`` or ``"uniform"``.
        alpha: weight of the power saving.
        beta: weight of the sensitivity, or ``"auto"``: the ``β`` for which the
            expected additive drop of a rollout, ``Σ_i Σ_m P(m | i) max(S[i, m], 0)``,
            equals ``target`` (found by bisection; 0 when even ``β = 0`` stays below).
        target: accuracy target in points for ``beta="auto"`` (default ``Δ``).
    """
    space = problem.space
    if policy == "uniform":
        return np.full((space.n_ops, space.n_candidates), 1.0 / space.n_candidates)
    if policy != "hardware":
        raise ValueError(f"unknown rollout policy {policy!r}; use 'hardware' or 'uniform'")
    delta = max(problem.max_accuracy_drop, 1e-6)
    s = space.n_ops * space.saving
    S = np.maximum(np.clip(problem.sensitivity, 0.0, None), rank1_sensitivity(problem.sensitivity))
    if beta != "auto":
        return _softmax_rows(alpha * s - float(beta) * S / delta)
    target = delta if target is None else max(float(target), 0.0)

    def expected_drop(b: float) -> float:
        return float((_softmax_rows(alpha * s - b * S / delta) * S).sum())

    if expected_drop(0.0) <= target:
        return _softmax_rows(alpha * s)
    lo, hi = 0.0, 1.0
    while expected_drop(hi) > target and hi < 1e8:
        lo, hi = hi, hi * 4
    for _ in range(50):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if expected_drop(mid) > target else (lo, mid)
    return _softmax_rows(alpha * s - hi * S / delta)


class _Node:
    __slots__ = ("children", "untried", "n", "w")

    def __init__(self, n_actions: int) -> None:
        self.children: dict[int, _Node] = {}
        self.untried: list[int] = list(range(n_actions))
        self.n = 0
        self.w = 0.0


class MCTS:
    """UCT search over per-op multiplier assignments (see the module docstring).

    Args:
        policy: ``"hardware"`` (energy saving vs. sensitivity) or ``"uniform"`` (ablation).
        alpha: weight of the relative energy saving in the policy.
        beta: weight of the sensitivity (in units of the constraint) in the policy, or
            ``"auto"`` (calibrated per target, see :func:`rollout_policy`).
        c_uct: UCT exploration constant (rewards lie in ``[-penalty, 1]``).
        iterations: tree iterations per round of true evaluations.
        n_rollouts: rollouts per iteration (predicted together).
        batch_size: true evaluations per round.
        penalty: ``λ``, the reward of a configuration predicted to miss the target by ``Δ`` or more.
        targets: accuracy targets, as fractions of the constraint, cycled over rounds.
        backup: ``"max"`` or ``"mean"`` of an iteration's rollout rewards.
        history_weight: how many times each true evaluation counts in the surrogate fit.
        elite_size: best earlier rollouts kept as candidates for true evaluation.
        calibrate: with ``beta="auto"``, calibrate ``β`` every round on the surrogate
            (the value for which its mean predicted drop of ``calibration_samples``
            rollouts equals the round's target) instead of on additive sensitivities.
        calibration_samples: rollouts used for that calibration.
        random_state: seed (``None``: numpy's global state); same seed, same history.

    Attributes:
        trees_: the root of the tree of each target.
        policies_: the latest rollout probabilities ``(n_ops, n_candidates)`` of each target.
        betas_: the ``β`` used in each round.
        rewards_: backed-up value of every iteration, in order.
        surrogate_: the last fitted surrogate pipeline.
        predictions_: ``(predicted drop, true drop)`` of every configuration this search
            evaluated, the prediction made before its evaluation.
    """

    def __init__(self, policy: str = "hardware", alpha: float = 4.0, beta: float | str = "auto",
                 c_uct: float = 0.1, iterations: int = 48, n_rollouts: int = 8, batch_size: int = 2, penalty: float = 1.0,
                 targets: tuple[float, ...] = (1.0, 0.5), backup: str = "max", history_weight: int = 3,
                 elite_size: int = 256, calibrate: bool = True, calibration_samples: int = 128,
                 random_state: Any = None) -> None:
        self.policy = policy
        self.alpha = alpha
        self.beta = beta
        self.c_uct = c_uct
        self.iterations = iterations
        self.n_rollouts = n_rollouts
        self.batch_size = batch_size
        self.penalty = penalty
        self.targets = targets
        self.backup = backup
        self.history_weight = history_weight
        self.elite_size = elite_size
        self.calibrate = calibrate
        self.calibration_samples = calibration_samples
        self.random_state = random_state

    @property
    def name(self) -> str:
        """Method name recorded in the history: ``"mcts"``, or ``"mcts_uniform"`` for the ablation."""
        return "mcts" if self.policy == "hardware" else f"mcts_{self.policy}"

    # ---------------------------------------------------------------- surrogate
    def _fit_surrogate(self, problem: SearchProblem, seed: int) -> Any:
        space = problem.space
        X_s, y_s = sensitivity_samples(space, problem.sensitivity)
        X_h, _ = problem.training_data()
        y_h = np.array([100.0 * (problem.int8_accuracy - e.accuracy) for e in problem.history])
        X = np.vstack([X_s] + [X_h] * self.history_weight)
        y = np.concatenate([y_s] + [y_h] * self.history_weight)
        return make_surrogate(space, problem.sensitivity, random_state=seed).fit(X, y)

    def _rewards(self, problem: SearchProblem, X: np.ndarray, drops: np.ndarray, target: float) -> np.ndarray:
        saving = 1.0 - np.asarray(problem.space.power_rel(X))
        delta = max(problem.max_accuracy_drop, 1e-6)
        excess = drops - target
        return np.where(excess <= 0, saving, -self.penalty * np.minimum(1.0, excess / delta))

    # --------------------------------------------------------------------- run
    def run(self, problem: SearchProblem) -> "MCTS":
        """Search until ``problem``'s budget is spent; the evaluations land in ``problem.history``."""
        if self.backup not in ("max", "mean"):
            raise ValueError(f"backup must be 'max' or 'mean', got {self.backup!r}")
        rng = check_random_state(self.random_state)
        space = problem.space
        n_ops, n_cand = space.n_ops, space.n_candidates
        offset = 100.0 * (problem.reference_accuracy - problem.int8_accuracy)  # int8-drop -> reference-drop
        delta = problem.max_accuracy_drop
        targets = [float(t) * delta for t in self.targets] or [delta]
        self.betas_: list[float | str] = []
        self.policies_: list[np.ndarray | None] = [None] * len(targets)
        self.trees_ = [_Node(n_cand) for _ in targets]
        self.rewards_: list[float] = []
        self.predictions_: list[tuple[float, float]] = []
        elite: dict[tuple[int, ...], np.ndarray] = {}
        stalled = 0
        round_index = 0
        while problem.remaining > 0:
            surrogate_seed = int(rng.randint(np.iinfo(np.int32).max))
            self.surrogate_ = self._fit_surrogate(problem, surrogate_seed)
            t_index = round_index % len(targets)
            target = targets[t_index]
            root = self.trees_[t_index]
            beta: float | str = self.beta
            if self.policy == "hardware" and self.beta == "auto" and self.calibrate:
                beta = self._calibrated_beta(problem, target, offset, rng)
            self.betas_.append(beta if isinstance(beta, str) else float(beta))
            probs = rollout_policy(problem, self.policy, self.alpha, beta, target=target - offset)
            cum = np.cumsum(probs, axis=1)
            cum[:, -1] = 1.0
            self.policies_[t_index] = probs
            pool: dict[tuple[int, ...], np.ndarray] = dict(elite)
            for _ in range(self.iterations):
                X, path = self._iterate(root, rng, probs, cum, n_ops)
                drops = self.surrogate_.predict(X) + offset
                rewards = self._rewards(problem, X, drops, target)
                value = float(rewards.max() if self.backup == "max" else rewards.mean())
                for node in path:
                    node.n += 1
                    node.w += value
                self.rewards_.append(value)
                for x in X:
                    pool.setdefault(tuple(int(v) for v in x), x)
            keys = [k for k in pool if not problem.is_evaluated(k)]
            if not keys:
                stalled += 1
                round_index += 1
                if stalled >= 5:  # the tree keeps producing evaluated configurations: space exhausted
                    break
                continue
            stalled = 0
            X_pool = np.array(keys, dtype=np.int64)
            drops = self.surrogate_.predict(X_pool) + offset
            rewards = self._rewards(problem, X_pool, drops, target)
            order = np.lexsort((np.arange(len(keys)), -rewards))
            take = order[: min(self.batch_size, problem.remaining)]
            evaluated = problem.evaluate(X_pool[take], self.name, predicted_drop=drops[take].tolist())
            for e, d in zip(evaluated, drops[take]):
                self.predictions_.append((float(d), float(problem.drop(e.accuracy))))
            keep = order[len(take): len(take) + self.elite_size]
            elite = {keys[i]: X_pool[i] for i in keep}
            round_index += 1
        return self

    def _calibrated_beta(self, problem: SearchProblem, target: float, offset: float,
                         rng: np.random.RandomState) -> float:
        """``β`` whose rollouts' mean *predicted* drop equals ``target`` (bisection on log β)."""
        u = rng.random_sample((self.calibration_samples, problem.space.n_ops))  # common random numbers

        def mean_drop(b: float) -> float:
            cum = np.cumsum(rollout_policy(problem, "hardware", self.alpha, b), axis=1)
            X = (u[:, :, None] > cum[None, :, :]).sum(axis=2).clip(max=problem.space.n_candidates - 1)
            return float(np.mean(self.surrogate_.predict(X)) + offset)

        lo, hi = -3.0, 4.0  # log10 β
        if mean_drop(0.0) <= target:
            return 0.0
        if mean_drop(10.0 ** hi) > target:
            return 10.0 ** hi
        for _ in range(14):
            mid = 0.5 * (lo + hi)
            lo, hi = (lo, mid) if mean_drop(10.0 ** mid) <= target else (mid, hi)
        return 10.0 ** hi

    def _iterate(self, root: _Node, rng: np.random.RandomState, probs: np.ndarray, cum: np.ndarray,
                 n_ops: int) -> tuple[np.ndarray, list[_Node]]:
        """One selection + expansion; returns the rollouts (n_rollouts, n_ops) and the path."""
        node = root
        path = [root]
        prefix: list[int] = []
        while len(prefix) < n_ops:
            depth = len(prefix)
            if node.untried:
                p = probs[depth, node.untried]
                total = float(p.sum())
                p = p / total if total > 0 else np.full(len(p), 1.0 / len(p))  # every untried one underflowed
                a = node.untried[int(rng.choice(len(node.untried), p=p))]
                node.untried.remove(a)
                child = _Node(probs.shape[1])
                node.children[a] = child
                prefix.append(a)
                path.append(child)
                break
            log_n = math.log(max(node.n, 1))
            best_a, best_score = -1, -math.inf
            for a, child in node.children.items():
                score = child.w / max(child.n, 1) + self.c_uct * math.sqrt(log_n / max(child.n, 1))
                if score > best_score:
                    best_a, best_score = a, score
            prefix.append(best_a)
            node = node.children[best_a]
            path.append(node)
        depth = len(prefix)
        X = np.empty((self.n_rollouts, n_ops), dtype=np.int64)
        X[:, :depth] = prefix
        if depth < n_ops:
            u = rng.random_sample((self.n_rollouts, n_ops - depth))
            X[:, depth:] = (u[:, :, None] > cum[None, depth:, :]).sum(axis=2)
        return X, path
