"""Evaluation metrics shared by every Northstar model: value (CLV) regression, classifiers, rankings.

Value metrics follow google/lifetime_value (``lifetime_value/metrics.py``): the normalized Gini is
computed from gain charts. Sort customers by predicted value, descending; the gain curve is the
cumulative share of *actual* value captured by the first k customers, k = 1..n:

    gain_k = sum_{i<=k} y_(i) / sum_i y_i
    raw Gini = 2 * mean_k(gain_k) - 1
    normalized Gini = raw Gini(sorted by prediction) / raw Gini(sorted by actual)

so a perfect ranking scores 1, a random one about 0 and the reversed one a negative number.
The one difference from the reference: customers with *tied* predictions share the gain of their tie
group evenly (the expected gain over every order of the tie), so the figure does not depend on how a
sort breaks ties (carry-forward predicts exactly 0 for many customers). Without ties it is identical.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats
from sklearn import metrics as skm

ArrayLike = Sequence[float] | np.ndarray | pd.Series


def _arrays(y_true: ArrayLike, y_pred: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(y_true, dtype=float)
    p = np.asarray(y_pred, dtype=float)
    if t.shape != p.shape or t.ndim != 1:
        raise ValueError(f"y_true and y_pred must be 1-d of the same length, got {t.shape} and {p.shape}")
    if t.size == 0:
        raise ValueError("empty inputs")
    return t, p


# ---------------------------------------------------------------- value (regression) metrics

def mae(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    t, p = _arrays(y_true, y_pred)
    return float(np.mean(np.abs(t - p)))


def rmse(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    t, p = _arrays(y_true, y_pred)
    return float(np.sqrt(np.mean((t - p) ** 2)))


def spearman(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Spearman rank correlation (average ranks for ties); NaN if either side is constant."""
    t, p = _arrays(y_true, y_pred)
    if np.all(t == t[0]) or np.all(p == p[0]):
        return float("nan")
    return float(stats.spearmanr(t, p).statistic)


def gain_curve(y_true: ArrayLike, y_score: ArrayLike) -> np.ndarray:
    """Cumulative share of actual value over customers sorted by ``y_score`` descending (ties share)."""
    t, s = _arrays(y_true, y_score)
    total = t.sum()
    if total <= 0:
        raise ValueError("gain curve needs a positive total actual value")
    order = np.argsort(-s, kind="stable")
    t_sorted, s_sorted = t[order], s[order]
    # Within a run of equal scores, replace each value by the run's mean (expected order-free gain).
    starts = np.flatnonzero(np.r_[True, s_sorted[1:] != s_sorted[:-1]])
    sizes = np.diff(np.r_[starts, t.size])
    means = np.add.reduceat(t_sorted, starts) / sizes
    return np.cumsum(np.repeat(means, sizes)) / total


def gini_raw(y_true: ArrayLike, y_score: ArrayLike) -> float:
    return float(2.0 * gain_curve(y_true, y_score).mean() - 1.0)


def normalized_gini(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Gain-based normalized Gini (google/lifetime_value ``gini_from_gain``): model Gini / perfect Gini."""
    perfect = gini_raw(y_true, y_true)
    if perfect <= 0:
        return float("nan")
    return gini_raw(y_true, y_pred) / perfect


def top_share_capture(y_true: ArrayLike, y_pred: ArrayLike, share: float = 0.10) -> float:
    """Share of total actual value held by the top ``share`` of customers by prediction (ties share)."""
    t, _ = _arrays(y_true, y_pred)
    k = max(1, int(round(share * t.size)))
    return float(gain_curve(y_true, y_pred)[k - 1])


def top_decile_capture(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    return top_share_capture(y_true, y_pred, 0.10)


def aggregate_error(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """sum(pred) / sum(actual) - 1: +0.21 means the total is over-predicted by 21%."""
    t, p = _arrays(y_true, y_pred)
    return float(p.sum() / t.sum() - 1.0)


def decile_table(y_true: ArrayLike, y_pred: ArrayLike, buckets: int = 10) -> pd.DataFrame:
    """Calibration by predicted decile: mean actual vs mean predicted per bucket (1 = highest predicted).

    Buckets are equal-sized by rank of prediction (ties broken by position, stable), so a model that
    predicts many equal values still gets ``buckets`` rows.
    """
    t, p = _arrays(y_true, y_pred)
    order = np.argsort(-p, kind="stable")
    bucket = np.empty(t.size, dtype=int)
    bucket[order] = np.arange(t.size) * buckets // t.size + 1
    frame = pd.DataFrame({"bucket": bucket, "actual": t, "predicted": p})
    table = frame.groupby("bucket").agg(customers=("actual", "size"), actual_mean=("actual", "mean"),
                                        predicted_mean=("predicted", "mean"),
                                        actual_total=("actual", "sum"))
    table["actual_share"] = table["actual_total"] / t.sum() if t.sum() else np.nan
    table["ratio"] = table["predicted_mean"] / table["actual_mean"].replace(0.0, np.nan)
    return table.drop(columns="actual_total")


VALUE_METRICS = {
    "gini": normalized_gini,
    "spearman": spearman,
    "aggregate_error": aggregate_error,
    "rmse": rmse,
    "mae": mae,
    "top_decile_capture": top_decile_capture,
}


def value_metrics(y_true: ArrayLike, y_pred: ArrayLike) -> dict[str, float]:
    """Every value metric above, keyed by name (the order of ``VALUE_METRICS``)."""
    return {name: fn(y_true, y_pred) for name, fn in VALUE_METRICS.items()}


# ---------------------------------------------------------------- classifier metrics

def roc_auc(y_true: ArrayLike, y_prob: ArrayLike) -> float:
    t, p = _arrays(y_true, y_prob)
    return float(skm.roc_auc_score(t, p))


def pr_auc(y_true: ArrayLike, y_score: ArrayLike) -> float:
    """Average precision (the step-wise area under the precision-recall curve)."""
    t, p = _arrays(y_true, y_score)
    return float(skm.average_precision_score(t, p))


def brier(y_true: ArrayLike, y_prob: ArrayLike) -> float:
    t, p = _arrays(y_true, y_prob)
    return float(np.mean((p - t) ** 2))


def reliability_table(y_true: ArrayLike, y_prob: ArrayLike, bins: int = 10) -> pd.DataFrame:
    """Observed rate vs mean predicted probability in ``bins`` equal-width probability bins (empty bins dropped)."""
    t, p = _arrays(y_true, y_prob)
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.clip(np.digitize(p, edges[1:-1], right=False), 0, bins - 1)
    frame = pd.DataFrame({"bin": index, "outcome": t, "probability": p})
    table = frame.groupby("bin").agg(count=("outcome", "size"), predicted=("probability", "mean"),
                                     observed=("outcome", "mean"))
    table.insert(0, "upper", edges[table.index + 1])
    table.insert(0, "lower", edges[table.index])
    return table.reset_index(drop=True)


def classifier_metrics(y_true: ArrayLike, y_prob: ArrayLike) -> dict[str, float]:
    return {"auc": roc_auc(y_true, y_prob), "pr_auc": pr_auc(y_true, y_prob), "brier": brier(y_true, y_prob)}


# ---------------------------------------------------------------- ranking metrics

def precision_at_k(y_true: ArrayLike, y_score: ArrayLike, k: int) -> float:
    """Share of positives among the ``k`` highest scores (stable order among ties)."""
    t, s = _arrays(y_true, y_score)
    if not 1 <= k <= t.size:
        raise ValueError(f"k must be in 1..{t.size}, got {k}")
    top = np.argsort(-s, kind="stable")[:k]
    return float(np.mean(t[top] > 0))
