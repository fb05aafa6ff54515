"""Incident descriptions name the brokerage account masked unless the installation allows it in full."""

from __future__ import annotations

import pytest

from activate.servicenow import incident_fields
from northstar import settings as settings_module

pytestmark = pytest.mark.unit

BREAK = {
    "break_key": "k1", "break_type": "account", "break_level": "trade", "business_date": "2026-10-29",
    "age_business_days": 1, "order_id": "O1", "trade_id": "T1", "account_number": "BA00000042",
    "instrument_id": "MSFT", "asset_class": "EQUITY", "broker": "atlas", "internal_value": "BA00000042",
    "broker_value": "BA00000043", "difference": None, "anomaly_score": None, "first_seen_at": None,
    "last_seen_at": None, "status": "open", "notional_usd": 1000.0, "incident_correlation_id": "northstar-break-k1",
}


def test_account_numbers_are_masked_by_default():
    text = incident_fields(BREAK)["description"]
    assert "BA00000042" not in text and "BA00000043" not in text
    assert "Account: BA****0042" in text and "BA****0043" in text


def test_full_account_numbers_only_when_settings_allow(monkeypatch):
    assert "Account: BA00000042" in incident_fields(BREAK, show_account_numbers=True)["description"]
    monkeypatch.setenv("NORTHSTAR_INCIDENT_ACCOUNT_NUMBERS", "full")
    settings_module.reset_cache()
    try:
        assert settings_module.settings().incident_account_numbers == "full"
        monkeypatch.setenv("NORTHSTAR_INCIDENT_ACCOUNT_NUMBERS", "sometimes")
        with pytest.raises(ValueError, match="masked' or 'full'"):
            settings_module.load_settings()
    finally:
        settings_module.reset_cache()
