"""Unit tests for the break-anomaly pieces that need no warehouse: ranking, break-score rule, metrics.

(The incident priority rule is activate's: tests/activate/test_incident_priority.py.)
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

pytestmark = pytest.mark.unit


def test_rank_descending_is_dense_from_one_and_breaks_ties_by_key():
    from ml.anomaly.score import rank_descending

    ranks = rank_descending(pd.Series([0.2, 0.9, 0.2, 0.5]), pd.Series(["d", "a", "b", "c"]))
    assert ranks.tolist() == [4, 1, 3, 2]


def test_break_takes_its_trades_score_or_its_orders_highest_and_unknown_is_most_suspicious():
    from ml.anomaly.score import UNSCORED_BREAK_SCORE, break_scores_from_trades

    trades = pd.DataFrame({"trade_id": ["T1", "T2", "T3"], "order_id": ["O1", "O1", "O2"],
                           "anomaly_score": [0.1, 0.7, 0.3], "notional_usd": [100.0, 50.0, 7.0]})
    breaks = pd.DataFrame({
        "break_key": ["b-alloc", "b-order", "b-unknown"],
        "break_level": ["allocation", "order", "allocation"],
        "trade_id": ["T3", None, "T9"],
        "order_id": [None, "O1", None],
    })
    scores, missing = break_scores_from_trades(breaks, trades)
    assert dict(zip(scores["break_key"], scores["anomaly_score"], strict=True)) == {
        "b-alloc": 0.3, "b-order": 0.7, "b-unknown": UNSCORED_BREAK_SCORE}
    assert missing == 1
    assert scores["notional_usd"].iloc[:2].tolist() == [7.0, 150.0]  # the trade's, the whole order's
    assert np.isnan(scores["notional_usd"].iloc[2])


def test_ranking_metrics_by_hand():
    from ml.anomaly.model import ranking_metrics

    labels = np.array([1, 0, 1, 0, 0, 0])
    scores = np.array([0.9, 0.8, 0.7, 0.3, 0.2, 0.1])
    metrics = ranking_metrics(labels, scores)
    # average precision: positives at ranks 1 and 3 -> (1/1 + 2/3) / 2
    assert metrics["pr_auc"] == pytest.approx((1 + 2 / 3) / 2)
    assert metrics["precision_at_50"] == pytest.approx(2 / 6)  # k capped at the population
    assert np.isnan(ranking_metrics(np.zeros(4), np.arange(4.0))["pr_auc"])


def test_holdout_is_the_latest_business_date():
    from ml.anomaly.model import holdout_split

    frame = pd.DataFrame({"business_date": ["2026-10-28", "2026-10-30", "2026-10-29", "2026-10-30"]})
    split = holdout_split(frame)
    assert split.holdout_dates == ["2026-10-30"]
    assert len(split.holdout) == 2 and set(split.train["business_date"]) == {"2026-10-28", "2026-10-29"}
    with pytest.raises(ValueError):
        holdout_split(frame.iloc[[1]])


def test_negative_sampling_keeps_every_positive_and_reweights_the_negatives():
    from ml.anomaly.model import negative_sample

    labels = pd.Series([1.0] * 50 + [0.0] * 9_950)
    rows, weights, rate = negative_sample(labels, max_rows=1_050)
    kept = labels.iloc[rows]
    assert (kept == 1).sum() == 50
    assert rate == pytest.approx(1_000 / 9_950)
    assert abs(len(rows) - 1_050) < 120  # binomial around the target
    assert weights[kept.to_numpy() == 1].tolist() == [1.0] * 50
    assert weights[kept.to_numpy() == 0].sum() == pytest.approx(9_950, rel=0.15)  # negatives' total weight kept
    all_rows, all_weights, all_rate = negative_sample(labels, max_rows=None)
    assert len(all_rows) == len(labels) and all_rate == 1.0 and (all_weights == 1).all()


def test_scoring_and_features_never_touch_labels_or_the_truth_folder():
    """Ground truth reaches the model only through the label provider, which only training imports."""
    import ast
    from pathlib import Path

    package = Path(__file__).resolve().parents[2] / "ml" / "anomaly"
    for module in ("score.py", "features.py", "lineage.py"):
        source = (package / module).read_text()
        imported = set()
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.ImportFrom) and node.module:
                imported.add(node.module)
            elif isinstance(node, ast.Import):
                imported.update(alias.name for alias in node.names)
        assert not imported & {"ml.anomaly.labels", "ml.anomaly.train"}, module
        assert "paths.truth" not in source and "truth_dir" not in source, module
