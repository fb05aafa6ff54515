"""The CLV promotion gate weighs every metric the model card reports, and the card says where the model loses."""

from __future__ import annotations

import numpy as np
import pytest

from ml.client_value.evaluate import baseline_comparison, score_metrics
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
