"""The break-anomaly classifier, its unsupervised baseline, the holdout split and the evaluation.

* :func:`holdout_split` — the latest ``holdout_days`` business dates are the holdout, every earlier date
  trains (a trade is never judged by a model that saw its day).
* :func:`fit_classifier` — XGBoost, binary logistic, ``tree_method=hist``, ``n_jobs=2`` (the machine has two
  cores), a fixed number of rounds (no early stopping: the holdout stays untouched until evaluation) and
  ``scale_pos_weight`` capped so the rare class is not drowned; above :data:`MAX_TRAINING_ROWS` training rows the
  negatives are sampled and weighted up (every positive kept), so the large world trains in memory.
* :func:`fit_isolation_forest` — scikit-learn's IsolationForest on the same features (missing values
  filled with the training medians), no labels; its score is the negated ``score_samples`` so that higher
  means more suspicious, like the classifier's.
* :func:`evaluate_scores` — PR-AUC (average precision) and precision at the top 50 / 100, on every holdout
  trade and on the trades the matching rules did *not* flag (no break on the trade or its order), which is
  where a model adds something the reconciliation cannot.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import xgboost as xgb
from sklearn.ensemble import IsolationForest

from ml.anomaly.features import FEATURE_COLUMNS, feature_matrix
from ml.metrics import pr_auc, precision_at_k

XGB_PARAMS = {
    "n_estimators": 300,
    "max_depth": 4,
    "learning_rate": 0.05,
    "subsample": 0.9,
    "colsample_bytree": 0.9,
    "min_child_weight": 1.0,
    "reg_lambda": 1.0,
    "tree_method": "hist",
    "n_jobs": 2,
    "random_state": 7,
}
MAX_SCALE_POS_WEIGHT = 20.0
ISOLATION_FOREST_PARAMS = {"n_estimators": 200, "max_samples": 4096, "random_state": 7, "n_jobs": 2}
TOP_K = (50, 100)
MAX_TRAINING_ROWS = 2_000_000  # above this, negatives are sampled (the large world has 20M training trades)


@dataclass(frozen=True)
class Split:
    train: pd.DataFrame
    holdout: pd.DataFrame
    holdout_dates: list

    def describe(self) -> dict[str, str]:
        return {
            "split_method": "latest business dates held out",
            "holdout_dates": ",".join(str(d) for d in self.holdout_dates),
            "train_dates": ",".join(str(d) for d in sorted(self.train["business_date"].unique())),
        }


def holdout_split(frame: pd.DataFrame, holdout_days: int = 1) -> Split:
    dates = sorted(frame["business_date"].unique())
    if len(dates) <= holdout_days:
        raise ValueError(f"need more than {holdout_days} business dates to hold some out, have {len(dates)}")
    holdout_dates = dates[-holdout_days:]
    in_holdout = frame["business_date"].isin(holdout_dates)
    return Split(frame[~in_holdout].reset_index(drop=True), frame[in_holdout].reset_index(drop=True), holdout_dates)


def negative_sample(labels: pd.Series, max_rows: int | None, seed: int = 7) -> tuple[np.ndarray, np.ndarray, float]:
    """Rows to train on and their weights: every positive, and the negatives at the rate that keeps the total
    at ``max_rows`` (each kept negative weighted by 1/rate so the model's odds stay calibrated)."""
    y = labels.to_numpy(dtype=float)
    rows = np.arange(len(y))
    if max_rows is None or len(y) <= max_rows:
        return rows, np.ones(len(y)), 1.0
    negatives = rows[y == 0]
    rate = max(min((max_rows - (len(y) - len(negatives))) / max(len(negatives), 1), 1.0), 0.01)
    kept = np.random.default_rng(seed).random(len(negatives)) < rate
    chosen = np.sort(np.r_[rows[y != 0], negatives[kept]])
    weights = np.where(y[chosen] == 0, 1.0 / rate, 1.0)
    return chosen, weights, rate


def fit_classifier(train: pd.DataFrame, labels: pd.Series, params: dict | None = None,
                   max_rows: int | None = None) -> xgb.XGBClassifier:
    """XGBoost on ``train``; above ``max_rows`` rows the negatives are sampled (see :func:`negative_sample`)."""
    y = labels.to_numpy(dtype=float)
    positives = max(float(y.sum()), 1.0)
    params = {**XGB_PARAMS, **(params or {})}
    params.setdefault("scale_pos_weight", min((len(y) - positives) / positives, MAX_SCALE_POS_WEIGHT))
    rows, weights, _ = negative_sample(labels, max_rows)
    model = xgb.XGBClassifier(**params)
    model.fit(feature_matrix(train.iloc[rows]), y[rows].astype(int), sample_weight=weights)
    return model


class IsolationForestBaseline:
    """IsolationForest on the model's features; ``score`` is higher for more unusual trades."""

    def __init__(self, params: dict | None = None):
        self.params = {**ISOLATION_FOREST_PARAMS, **(params or {})}
        self.forest = IsolationForest(**self.params)
        self.fill_values: pd.Series | None = None

    def fit(self, train: pd.DataFrame, max_rows: int | None = None, seed: int = 7) -> IsolationForestBaseline:
        if max_rows is not None and len(train) > max_rows:  # each tree sees max_samples rows anyway
            train = train.sample(n=max_rows, random_state=seed)
        matrix = feature_matrix(train)
        self.fill_values = matrix.median().fillna(0.0)
        self.forest.set_params(max_samples=min(self.params["max_samples"], len(matrix)))
        self.forest.fit(matrix.fillna(self.fill_values).to_numpy())
        return self

    def score(self, frame: pd.DataFrame) -> np.ndarray:
        matrix = feature_matrix(frame).fillna(self.fill_values)
        return -self.forest.score_samples(matrix.to_numpy())


def fit_isolation_forest(train: pd.DataFrame, params: dict | None = None,
                         max_rows: int | None = None) -> IsolationForestBaseline:
    return IsolationForestBaseline(params).fit(train, max_rows)


def ranking_metrics(labels: np.ndarray, scores: np.ndarray, prefix: str = "") -> dict[str, float]:
    """PR-AUC and precision@k (k capped at the population); NaN PR-AUC when there is no positive."""
    labels = np.asarray(labels, dtype=float)
    scores = np.asarray(scores, dtype=float)
    metrics: dict[str, float] = {f"{prefix}positives": float(labels.sum()), f"{prefix}rows": float(len(labels))}
    metrics[f"{prefix}pr_auc"] = pr_auc(labels, scores) if 0 < labels.sum() < len(labels) else float("nan")
    for k in TOP_K:
        metrics[f"{prefix}precision_at_{k}"] = precision_at_k(labels, scores, min(k, len(labels))) if len(labels) else float("nan")
    return metrics


def unflagged_mask(frame: pd.DataFrame) -> np.ndarray:
    """Trades the matching rules did not flag: no break on the trade and none on its order."""
    return ((frame["break_count"] == 0) & (frame["order_break_count"] == 0)).to_numpy()


def evaluate_scores(frame: pd.DataFrame, labels: pd.Series, scores: np.ndarray) -> dict[str, float]:
    """Metrics on every trade and (``unflagged_`` prefix) on trades without a break."""
    y = labels.to_numpy(dtype=float)
    scores = np.asarray(scores, dtype=float)
    mask = unflagged_mask(frame)
    return {**ranking_metrics(y, scores), **ranking_metrics(y[mask], scores[mask], "unflagged_")}


def feature_importance(model: xgb.XGBClassifier) -> pd.Series:
    """Total gain per feature (features never split on are 0), largest first."""
    gains = model.get_booster().get_score(importance_type="total_gain")
    return pd.Series({name: gains.get(name, 0.0) for name in FEATURE_COLUMNS}).sort_values(ascending=False)
