"""ml.metrics on hand-computed cases."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ml import metrics

pytestmark = pytest.mark.unit

Y = np.array([10.0, 0.0, 5.0, 0.0, 1.0])


def test_gain_curve_by_hand():
    # Sorted by score 5,4,3,2,1 -> values 10,0,5,0,1 of total 16.
    gain = metrics.gain_curve(Y, [5, 4, 3, 2, 1])
    np.testing.assert_allclose(gain, [10 / 16, 10 / 16, 15 / 16, 15 / 16, 1.0])
    assert metrics.gini_raw(Y, [5, 4, 3, 2, 1]) == pytest.approx(2 * np.mean(gain) - 1)


def test_normalized_gini_perfect_reversed_and_reference_formula():
    assert metrics.normalized_gini(Y, Y) == pytest.approx(1.0)
    assert metrics.normalized_gini(Y, Y * 3 + 7) == pytest.approx(1.0)  # only the order matters
    assert metrics.normalized_gini(Y, -Y) < 0
    # google/lifetime_value gini_from_gain, written out: raw = 2 * sum(cumshare) / n - 1, normalized by truth.
    pred = np.array([3.0, 1.0, 4.0, 0.5, 2.0])

    def reference_raw(order_by):
        frame = pd.DataFrame({"y": Y, "s": order_by}).sort_values("s", ascending=False)
        return 2 * (frame["y"].cumsum() / frame["y"].sum()).sum() / len(Y) - 1

    assert metrics.normalized_gini(Y, pred) == pytest.approx(reference_raw(pred) / reference_raw(Y))


def test_normalized_gini_random_is_near_zero():
    rng = np.random.default_rng(0)
    y = rng.gamma(0.5, 10.0, 20_000)
    assert abs(metrics.normalized_gini(y, rng.random(20_000))) < 0.03


def test_ties_share_gain_evenly():
    # All predictions equal: the expected gain of a random order, a straight line -> raw Gini 1/n.
    y = np.array([4.0, 0.0, 0.0, 0.0])
    gain = metrics.gain_curve(y, np.zeros(4))
    np.testing.assert_allclose(gain, [0.25, 0.5, 0.75, 1.0])
    assert metrics.gini_raw(y, np.zeros(4)) == pytest.approx(0.25)
    # The result does not depend on the input order of tied customers.
    assert metrics.normalized_gini(y, [1, 0, 0, 0]) == metrics.normalized_gini(y[::-1], [0, 0, 0, 1])


def test_regression_errors():
    t, p = [1.0, 2.0, 3.0], [2.0, 2.0, 5.0]
    assert metrics.mae(t, p) == pytest.approx(1.0)
    assert metrics.rmse(t, p) == pytest.approx(np.sqrt(5 / 3))
    assert metrics.aggregate_error(t, p) == pytest.approx(9 / 6 - 1)
    assert metrics.spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert metrics.spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert np.isnan(metrics.spearman([1, 2, 3], [5, 5, 5]))


def test_top_decile_capture():
    y = np.r_[np.full(9, 1.0), np.full(1, 91.0)]  # one customer holds 91 of 100
    assert metrics.top_decile_capture(y, y) == pytest.approx(0.91)
    assert metrics.top_decile_capture(y, -y) == pytest.approx(0.01)


def test_decile_table():
    y = np.arange(100, dtype=float)
    table = metrics.decile_table(y, y)
    assert list(table.index) == list(range(1, 11))
    assert (table["customers"] == 10).all()
    assert table.loc[1, "actual_mean"] == pytest.approx(94.5)
    np.testing.assert_allclose(table["ratio"].iloc[:9], 1.0)
    assert table["actual_share"].sum() == pytest.approx(1.0)


def test_classifier_metrics_by_hand():
    t = np.array([0, 0, 1, 1])
    p = np.array([0.1, 0.4, 0.35, 0.8])
    assert metrics.roc_auc(t, p) == pytest.approx(0.75)
    # ranks by score: 0.8(+), 0.4(-), 0.35(+), 0.1(-): AP = (1/1 + 2/3) / 2
    assert metrics.pr_auc(t, p) == pytest.approx((1 + 2 / 3) / 2)
    assert metrics.brier(t, p) == pytest.approx((0.01 + 0.16 + 0.4225 + 0.04) / 4)
    assert metrics.roc_auc(t, t) == 1.0 and metrics.pr_auc(t, t) == 1.0 and metrics.brier(t, t) == 0.0


def test_reliability_table():
    t = np.array([0, 1, 0, 1, 1])
    p = np.array([0.05, 0.05, 0.95, 0.95, 0.95])
    table = metrics.reliability_table(t, p, bins=10)
    assert list(table["count"]) == [2, 3]
    assert list(table["observed"]) == pytest.approx([0.5, 2 / 3])
    assert list(table["lower"]) == pytest.approx([0.0, 0.9])


def test_precision_at_k():
    t = [1, 0, 1, 0, 0]
    s = [0.9, 0.8, 0.7, 0.2, 0.1]
    assert metrics.precision_at_k(t, s, 1) == 1.0
    assert metrics.precision_at_k(t, s, 2) == 0.5
    assert metrics.precision_at_k(t, s, 3) == pytest.approx(2 / 3)
    with pytest.raises(ValueError):
        metrics.precision_at_k(t, s, 0)
