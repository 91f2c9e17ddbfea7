"""Accuracy surrogate: a scikit-learn regressor of a configuration's accuracy drop.

Two estimators, so that the whole :class:`~sklearn.pipeline.Pipeline` can be
cross-validated and cloned:

* :class:`ConfigFeatures` (transformer) turns an integer configuration matrix
  ``X[n, n_ops]`` (``X[k, i]`` = candidate index of op ``i``) into features, given
  the per-(op, candidate) sensitivity table ``S`` (accuracy drop in points when op
  ``i`` alone uses candidate ``j``), the MAC share ``w_i`` of each op and per-candidate
  error statistics ``err[j, :]``:

  ======================  =================================================
  ``additive``            ``Σ_i S[i, x_i]`` (drop if effects simply added up)
  ``additive_sq``         ``(Σ_i S[i, x_i])²`` (compounding)
  ``rank1``               ``Σ_i R[i, x_i]``, ``R`` the rank-one fit of ``max(S, 0)``
                          (:func:`~axhw.search.sensitivity.rank1_sensitivity`), which
                          sees drops below one test image's resolution
  ``max``                 ``max_i S[i, x_i]``
  ``positive``            ``Σ_i max(S[i, x_i], 0)``
  ``n_approx``            ``#{i : x_i != 0} / n_ops``
  ``err_<stat>``          ``Σ_i w_i · err[x_i, stat]`` for each error statistic
  ``kind_<k>``            ``Σ_{i of kind k} S[i, x_i]`` (linear, conv, qk, av)
  ``op_<i>``              ``S[i, x_i]`` for every op (``per_op=True``)
  ======================  =================================================

* :class:`AccuracySurrogate` (regressor) fits a ridge regression on standardized
  features and, when there are enough samples, gradient-boosted trees on its
  residuals: ``ŷ = ridge(X) + boost(X)``.  The ridge part extrapolates the additive
  trend to configurations far from the data; the trees learn the interactions.

Targets are accuracy drops in points (``100 × (int8_accuracy - accuracy)``).
:func:`surrogate_metrics` reports RMSE and Kendall's τ on held-out evaluations.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin, TransformerMixin
from sklearn.ensemble import GradientBoostingRegressor
from sklearn.linear_model import Ridge
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from axhw.search.sensitivity import rank1_sensitivity

__all__ = ["ConfigFeatures", "AccuracySurrogate", "make_surrogate", "surrogate_metrics", "near_constraint_quality", "KINDS"]

#: Op kinds that get a per-kind feature.
KINDS: tuple[str, ...] = ("linear", "conv", "qk", "av")


class ConfigFeatures(TransformerMixin, BaseEstimator):
    """Features of integer-encoded configurations (see the module docstring).

    Args:
        sensitivity: ``(n_ops, n_candidates)`` accuracy drop in points of each op
            alone using each candidate (column 0, exact, is zero).
        mac_share: ``(n_ops,)`` share of the model's MACs in each op (sums to 1);
            ``None``: equal shares.
        error_features: ``(n_candidates, k)`` error statistics of each candidate;
            ``None``: no error features.
        kinds: op kind of each op (``"linear"``, ``"conv"``, ``"qk"``, ``"av"``);
            ``None``: no per-kind features.
        per_op: add one ``S[i, x_i]`` column per op.
    """

    def __init__(self, sensitivity: Any = None, mac_share: Any = None, error_features: Any = None,
                 kinds: Sequence[str] | None = None, per_op: bool = True) -> None:
        self.sensitivity = sensitivity
        self.mac_share = mac_share
        self.error_features = error_features
        self.kinds = kinds
        self.per_op = per_op

    def fit(self, X: Any, y: Any = None) -> "ConfigFeatures":
        """Check the tables against ``X``; learns nothing from the data."""
        if self.sensitivity is None:
            raise ValueError("ConfigFeatures needs the sensitivity table (n_ops, n_candidates)")
        S = np.asarray(self.sensitivity, dtype=float)
        X = self._as_configs(X, S)
        self.sensitivity_ = S
        self.rank1_ = rank1_sensitivity(S)
        self.n_features_in_ = X.shape[1]
        n_ops = S.shape[0]
        share = np.full(n_ops, 1.0 / n_ops) if self.mac_share is None else np.asarray(self.mac_share, dtype=float)
        if share.shape != (n_ops,):
            raise ValueError(f"mac_share has shape {share.shape}, expected ({n_ops},)")
        self.mac_share_ = share
        err = np.zeros((S.shape[1], 0)) if self.error_features is None else np.asarray(self.error_features, float)
        if err.shape[0] != S.shape[1]:
            raise ValueError(f"error_features has {err.shape[0]} rows, expected one per candidate ({S.shape[1]})")
        self.error_features_ = err
        kinds = list(self.kinds) if self.kinds is not None else []
        if kinds and len(kinds) != n_ops:
            raise ValueError(f"kinds has {len(kinds)} entries, expected {n_ops}")
        self.kind_masks_ = [np.array([k == kind for k in kinds]) for kind in KINDS if kind in kinds]
        return self

    @staticmethod
    def _as_configs(X: Any, S: np.ndarray) -> np.ndarray:
        X = np.asarray(X)
        if X.ndim != 2 or X.shape[1] != S.shape[0]:
            raise ValueError(f"X must have shape (n_samples, {S.shape[0]}) (one candidate index per op), got {X.shape}")
        Xi = X.astype(np.int64)
        if not np.array_equal(Xi, X) or (Xi.size and (Xi.min() < 0 or Xi.max() >= S.shape[1])):
            raise ValueError(f"X must hold candidate indices in [0, {S.shape[1]})")
        return Xi

    def transform(self, X: Any) -> np.ndarray:
        """``(n_samples, n_features)`` float features."""
        check_is_fitted(self)
        S = self.sensitivity_
        X = self._as_configs(X, S)
        picked = S[np.arange(S.shape[0])[None, :], X]  # n, n_ops
        additive = picked.sum(axis=1)
        rank1 = self.rank1_[np.arange(S.shape[0])[None, :], X].sum(axis=1)
        cols = [additive, additive ** 2, rank1, picked.max(axis=1), np.clip(picked, 0, None).sum(axis=1),
                (X != 0).mean(axis=1)]
        if self.error_features_.shape[1]:
            cols.extend((self.mac_share_[None, :, None] * self.error_features_[X]).sum(axis=1).T)
        cols.extend(picked[:, mask].sum(axis=1) for mask in self.kind_masks_)
        feats = np.column_stack(cols)
        return np.hstack([feats, picked]) if self.per_op else feats


class AccuracySurrogate(RegressorMixin, BaseEstimator):
    """Ridge regression plus gradient-boosted residuals: ``ŷ = ridge(X) + boost(X)``.

    Args:
        alpha: ridge penalty on standardized features.
        n_estimators: boosting stages on the ridge residuals (0: ridge only).
        learning_rate: shrinkage of each boosting stage.
        max_depth: depth of each tree.
        min_samples_leaf: smallest leaf; boosting is skipped with fewer than
            ``2 × min_samples_leaf`` samples.
        random_state: seed of the boosting's randomness (``None``: numpy's global state).
    """

    def __init__(self, alpha: float = 1.0, n_estimators: int = 100, learning_rate: float = 0.05,
                 max_depth: int = 2, min_samples_leaf: int = 3, random_state: Any = None) -> None:
        self.alpha = alpha
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.max_depth = max_depth
        self.min_samples_leaf = min_samples_leaf
        self.random_state = random_state

    def fit(self, X: Any, y: Any) -> "AccuracySurrogate":
        """Fit the ridge part, then the trees on its residuals; returns ``self``."""
        X, y = validate_data(self, X, y, y_numeric=True)
        rng = check_random_state(self.random_state)
        self.model_ = make_pipeline(StandardScaler(), Ridge(alpha=self.alpha)).fit(X, y)
        residual = y - self.model_.predict(X)
        self.residual_model_: GradientBoostingRegressor | None = None
        if self.n_estimators > 0 and len(y) >= 2 * self.min_samples_leaf:
            self.residual_model_ = GradientBoostingRegressor(
                n_estimators=self.n_estimators, learning_rate=self.learning_rate, max_depth=self.max_depth,
                min_samples_leaf=self.min_samples_leaf, subsample=0.8,
                random_state=rng.randint(np.iinfo(np.int32).max),
            ).fit(X, residual)
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Predicted targets (accuracy drops in points)."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False)
        y = self.model_.predict(X)
        if self.residual_model_ is not None:
            y = y + self.residual_model_.predict(X)
        return y


def make_surrogate(space: Any, sensitivity: np.ndarray, random_state: Any = None, **params: Any) -> Pipeline:
    """``Pipeline([features, regressor])`` for configurations of ``space``.

    Args:
        space: the :class:`~axhw.search.space.SearchSpace`.
        sensitivity: ``(n_ops, n_candidates)`` drops in points.
        random_state: passed to :class:`AccuracySurrogate`.
        **params: further :class:`AccuracySurrogate` arguments.
    """
    err = np.asarray(space.error_features, dtype=float)
    return Pipeline([
        ("features", ConfigFeatures(sensitivity=np.asarray(sensitivity, float), mac_share=space.mac_share,
                                    error_features=err, kinds=[op.kind for op in space.ops])),
        ("regressor", AccuracySurrogate(random_state=random_state, **params)),
    ])


def surrogate_metrics(predicted: Sequence[float], true: Sequence[float], protocol: str = "") -> dict[str, Any]:
    """RMSE (points) and Kendall's τ between predicted and true accuracy drops.

    Returns:
        ``{"rmse", "kendall_tau", "n", "predicted", "true", "protocol"}``; with fewer
        than 3 pairs ``rmse`` and ``kendall_tau`` are ``None``.
    """
    from scipy.stats import kendalltau

    p = np.asarray(predicted, dtype=float)
    t = np.asarray(true, dtype=float)
    out: dict[str, Any] = {"n": int(len(p)), "predicted": p.round(6).tolist(), "true": t.round(6).tolist(),
                           "protocol": protocol, "rmse": None, "kendall_tau": None}
    if len(p) >= 3:
        out["rmse"] = float(np.sqrt(np.mean((p - t) ** 2)))
        tau = kendalltau(p, t).statistic
        out["kendall_tau"] = None if not np.isfinite(tau) else float(tau)
    return out


def near_constraint_quality(space: Any, sensitivity: np.ndarray, X: np.ndarray, drops: np.ndarray, limit: float, *,
                            window: float | None = None, n_splits: int = 5, history_weight: int = 3,
                            random_state: int = 0) -> dict[str, Any]:
    """Surrogate quality where a search decides: on configurations whose drop is near the limit.

    The configurations with true drop within ``limit ± window`` points are split
    into ``n_splits`` folds; each fold is predicted by a surrogate fitted on the
    sensitivity table plus every other evaluated configuration (near or far), so no
    prediction saw its own configuration.  The same held-out configurations are also
    ranked by the sensitivity sum ``Σ_i S[i, x_i]`` (the additive estimate the
    surrogate is meant to improve on).

    Args:
        space: the design space; sensitivity: its ``(n_ops, n_candidates)`` table (points).
        X: evaluated configurations (candidate indices); drops: their true drops (points).
        limit: the constraint (points).
        window: half-width of the band around the limit (``None``: ``max(limit, 1)``).

    Returns:
        ``{"limit", "window", "n", "surrogate": {"rmse", "kendall_tau"}, "sensitivity_sum":
        {"rmse", "kendall_tau"}, "surrogate_ranks_better": bool | None}``; metrics are
        ``None`` with fewer than ``max(3, n_splits)`` configurations in the band.
    """
    from sklearn.model_selection import KFold

    X = np.asarray(X, dtype=np.int64)
    drops = np.asarray(drops, dtype=float)
    window = max(float(limit), 1.0) if window is None else float(window)
    near = np.flatnonzero(np.abs(drops - limit) <= window)
    out: dict[str, Any] = {"limit": float(limit), "window": window, "n": int(near.size),
                           "surrogate": {"rmse": None, "kendall_tau": None},
                           "sensitivity_sum": {"rmse": None, "kendall_tau": None}, "surrogate_ranks_better": None}
    if near.size < max(3, n_splits):
        return out
    from axhw.search.sensitivity import sensitivity_samples

    X_s, y_s = sensitivity_samples(space, sensitivity)
    predicted = np.zeros(near.size)
    for train_near, test_near in KFold(n_splits, shuffle=True, random_state=random_state).split(near):
        held = set(near[test_near].tolist())
        rest = np.array([k for k in range(len(X)) if k not in held], dtype=np.int64)
        model = make_surrogate(space, sensitivity, random_state=random_state)
        model.fit(np.vstack([X_s] + [X[rest]] * history_weight), np.concatenate([y_s] + [drops[rest]] * history_weight))
        predicted[test_near] = model.predict(X[near[test_near]])
    table = np.asarray(sensitivity, dtype=float)
    additive = table[np.arange(table.shape[0])[None, :], X[near]].sum(axis=1)
    true = drops[near]
    for key, pred in (("surrogate", predicted), ("sensitivity_sum", additive)):
        m = surrogate_metrics(pred, true)
        out[key] = {"rmse": m["rmse"], "kendall_tau": m["kendall_tau"]}
    tau_s, tau_a = out["surrogate"]["kendall_tau"], out["sensitivity_sum"]["kendall_tau"]
    out["surrogate_ranks_better"] = None if tau_s is None or tau_a is None else bool(tau_s > tau_a)
    return out
