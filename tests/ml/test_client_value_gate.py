"""The CLV promotion gate weighs every metric the model card reports, the card says where the model loses, and
the CLV model (or its carry-forward fallback) is chosen inside the training cutoffs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb

from ml.client_value import segments
from ml.client_value.evaluate import baseline_comparison, score_metrics
from ml.client_value.features import LABEL_REVENUE, NUMERIC_COLUMNS, ORDINALS, plan_cutoffs
from ml.client_value.model import TrainingConfig, fit_clv, predict, select_clv
from ml.client_value.promote import CLV_GATE_POLICY
from ml.client_value.promote import baseline_check as _baseline_check
from ml.client_value.promote import error_check as _error_check

pytestmark = pytest.mark.unit


def _metrics(rng, noise):
    y = rng.gamma(0.6, 1000.0, 500)
    return y, score_metrics("clv", y, y * rng.lognormal(0.0, noise, y.size))


def test_every_reported_clv_metric_has_a_gate_rule_or_a_stated_waiver():
    y, metrics = _metrics(np.random.default_rng(1), 0.3)
    assert set(metrics) == set(CLV_GATE_POLICY)
    for metric, rule in CLV_GATE_POLICY.items():
        assert rule.startswith(("gated", "waived")), metric
        if rule.startswith("waived"):
            assert len(rule.split(":", 1)[1].strip()) > 20, f"{metric}: a waiver must say why"


def test_errors_may_not_regress_against_the_champion():
    champion = {"rmse": 100.0, "mae": 40.0}
    assert _error_check({"rmse": 104.9, "mae": 41.0}, champion, 0.05).passed
    failed = _error_check({"rmse": 106.0, "mae": 41.0}, champion, 0.05)
    assert not failed.passed and "rmse 106.00 vs champion 100.00 (limit 105.00)" in failed.detail
    assert not _error_check({"rmse": 90.0, "mae": 43.0}, champion, 0.05).passed
    assert _error_check({"rmse": 1e9, "mae": 1e9}, None, 0.05).passed  # first version: nothing to regress from


def test_ranking_must_beat_every_baseline_on_gini_and_spearman():
    rng = np.random.default_rng(2)
    y, good = _metrics(rng, 0.2)
    _, weak = _metrics(rng, 1.5)
    assert _baseline_check("clv", good, {"carry_forward": weak}, y).passed
    # Better Gini but a worse Spearman is not enough any more.
    mixed = dict(good, spearman=weak["spearman"] - 0.01)
    check = _baseline_check("clv", mixed, {"carry_forward": weak}, y)
    assert not check.passed and "spearman" in check.detail


def test_card_lines_say_where_the_model_loses():
    lines = baseline_comparison({"gini": 0.98, "rmse": 19_255.0}, {"carry_forward": {"gini": 0.95, "rmse": 15_964.0}})
    assert "- gini: wins against carry_forward, 0.9800 vs 0.9500 (+3.2%)" in lines
    assert "- rmse: **loses** against carry_forward, 19,255.0000 vs 15,964.0000 (+20.6%)" in lines


def _mart_rows(rng, cutoff: str, households: int, revenue_from: str) -> pd.DataFrame:
    """Synthetic mart rows: ``revenue_next_12m`` is either this year's fees again (carry-forward is the truth)
    or driven by AUM that this year's fees hardly show (a model can beat carry-forward)."""
    frame = pd.DataFrame({column: rng.gamma(1.0, 1.0, households) for column in NUMERIC_COLUMNS})
    frame["aum_avg_12m"] = frame["aum_at_cutoff"] = rng.lognormal(13.0, 1.0, households)
    frame["fees_12m"] = rng.lognormal(8.0, 1.0, households)
    for source, (_, levels) in ORDINALS.items():
        frame[source] = rng.choice(levels, households)
    frame["is_active_at_cutoff"] = True
    frame["cutoff_on"] = pd.Timestamp(cutoff)
    if revenue_from == "fees":
        frame[LABEL_REVENUE] = frame["fees_12m"]
    else:
        frame[LABEL_REVENUE] = frame["aum_avg_12m"] * 0.01 * rng.lognormal(0.0, 0.1, households)
    return frame


def _select(revenue_from: str):
    rng = np.random.default_rng(3)
    fit_rows = pd.concat([_mart_rows(rng, c, 400, revenue_from) for c in ("2023-11-30", "2023-12-31")],
                         ignore_index=True)
    validation = _mart_rows(rng, "2024-10-31", 400, revenue_from)
    # 800 fitting rows, sampled down to 600 as a large book's would be (the validation's 400 are kept whole).
    config = TrainingConfig(n_estimators=60, max_depth=4, n_jobs=1, clv_selection_max_rows=600)
    return select_clv(fit_rows, validation, config, pd.Timestamp("2024-10-31"), 6), validation


def test_selection_falls_back_to_carry_forward_when_validation_says_so():
    selection, validation = _select("fees")
    assert selection.is_fallback and selection.chosen == "carry_forward"
    assert "carry-forward shipped" in selection.reason
    assert set(selection.scores.index) == {"carry_forward", "xgboost_d3", "xgboost_d4"}
    assert (selection.scores.drop(index="carry_forward")["score"] <= 0).all()
    # The shipped fallback is carry-forward exactly, as an XGBoost model (missing fees count as 0).
    booster = fit_clv(validation, selection, TrainingConfig())
    rows = validation.assign(fees_12m=validation["fees_12m"].where(validation.index % 7 != 0))
    np.testing.assert_allclose(predict(booster, rows), rows["fees_12m"].fillna(0.0), rtol=1e-6)


def test_selection_keeps_the_booster_that_beats_carry_forward_inside_the_training_cutoffs():
    selection, _ = _select("aum")
    assert not selection.is_fallback and selection.chosen.startswith("xgboost_d")
    assert selection.scores.loc[selection.chosen, "score"] > 0
    assert 1 <= selection.rounds <= 60
    assert selection.as_dict()["validation_cutoff"] == "2024-10-31"


def test_selection_without_enough_cutoffs_ships_the_configured_booster_and_says_so():
    config = TrainingConfig(n_estimators=30, max_depth=4, n_jobs=1)
    empty = _mart_rows(np.random.default_rng(4), "2024-10-31", 10, "aum").iloc[0:0]
    selection = select_clv(empty, empty, config)
    assert selection.chosen == "xgboost_d4" and selection.rounds == 30 and "no validation possible" in selection.reason


def test_plan_validates_at_the_latest_training_cutoff_with_a_gap():
    months = pd.date_range("2021-01-31", periods=40, freq="ME")
    cutoffs = pd.DataFrame({"cutoff_on": months, "complete": [True] * 28 + [False] * 12, "has_billing": True})
    plan = plan_cutoffs(cutoffs, max_train_cutoffs=6)
    assert plan.validation == plan.train[-1] and plan.validation_gap_months == 12
    assert max(plan.validation_train) <= plan.validation - pd.DateOffset(months=12) + pd.offsets.MonthEnd(0)
    assert plan.holdout > plan.validation
    # A mart too short for a 12-month gap gets 6 months (and says so through validation_gap_months).
    short = plan_cutoffs(cutoffs.iloc[6:], max_train_cutoffs=6)
    assert short.validation_gap_months == 6
    assert max(short.validation_train) <= short.validation - pd.DateOffset(months=6) + pd.offsets.MonthEnd(0)


def test_the_carry_forward_fallback_scores_and_explains_like_a_tree_model():
    from ml.client_value.features import model_matrix
    from ml.client_value.model import carry_forward_booster
    from ml.client_value.score import household_scores

    rng = np.random.default_rng(5)
    frame = _mart_rows(rng, "2024-10-31", 300, "fees")
    frame["household_id"] = [f"h{i}" for i in range(len(frame))]
    active = rng.random(len(frame)) < 0.3
    churn = xgb.train({"objective": "binary:logistic", "max_depth": 2, "nthread": 1},
                      xgb.DMatrix(model_matrix(frame), label=active.astype(float)), num_boost_round=5)
    scores = household_scores(frame, carry_forward_booster(), churn)
    np.testing.assert_allclose(scores["predicted_revenue_12m"], frame["fees_12m"], rtol=1e-6)
    value_drivers = scores.loc[~scores["segment"].eq(segments.AT_RISK), "top_drivers"]
    assert value_drivers.str.contains("raises value").all()
