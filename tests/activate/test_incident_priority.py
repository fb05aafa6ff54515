"""The incident priority rule (``activate.priority``): urgency from the anomaly score, impact from the amount."""

from __future__ import annotations

import pytest

from activate.priority import assignment_group, impact_urgency, priority_for

pytestmark = pytest.mark.unit


def test_priority_urgency_follows_score_and_settlement_blocking_types():
    assert priority_for(0.95, "commission", 50_000).urgency == 1
    assert priority_for(0.5, "commission", 50_000).urgency == 2
    assert priority_for(0.3, "commission", 50_000).urgency == 2  # the elevated threshold is 0.3, not 0.5
    assert priority_for(0.05, "commission", 50_000).urgency == 3
    assert priority_for(0.05, "missing_confirm", 50_000).urgency == 2  # blocks settlement
    assert priority_for(None, None, None).urgency == 3


def test_priority_impact_follows_amount_and_is_raised_for_an_urgent_score():
    assert priority_for(0.1, "price", 2_500_000).impact == 1
    assert priority_for(0.1, "price", -250_000).impact == 2  # the size of the amount, not its sign
    assert priority_for(0.1, "price", 5_000).impact == 3
    assert priority_for(0.1, "price", None).impact == 2
    assert priority_for(0.9, "price", 5_000).impact == 2
    top = priority_for(0.99, "quantity", 5_000_000)
    assert (top.impact, top.urgency, top.priority) == (1, 1, 1)
    assert top.as_fields() == {"impact": "1", "urgency": "1"}
    low = priority_for(0.0, "commission", 10.0)
    assert (low.impact, low.urgency, low.priority) == (3, 3, 5)
    assert "amount" in low.reason and "score" in low.reason


def test_a_register_row_takes_the_scored_notional_else_its_amount():
    row = {"break_type": "price", "anomaly_score": float("nan"), "notional_usd": 2_000_000.0, "amount": 5.0}
    assert impact_urgency(row) == (1, 3)  # unscored (NaN): urgency from the type; impact from the notional
    assert impact_urgency({"break_type": "side", "amount": 150_000.0}) == (2, 2)  # no score column at all


def test_assignment_group_by_break_type_then_asset_class():
    assert assignment_group({"break_type": "account", "asset_class": "BOND"}) == "Middle Office"
    assert assignment_group({"break_type": "price", "asset_class": "etf"}) == "Trade Support - Equities"
    assert assignment_group({"break_type": "price", "asset_class": None}) == "Middle Office"
