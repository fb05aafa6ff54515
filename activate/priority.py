"""ServiceNow impact / urgency for a break, and its assignment group.

``ml.anomaly.priority.priority_for(anomaly_score, break_type, amount)`` (the anomaly engineer's
mapping) decides; a missing score means "from break type and amount alone" there. The amount is the
break's ``notional_usd`` / ``amount`` column when the register has one (else unknown). Only if that
module cannot be imported does this fallback apply:

* severity (impact) from the break type, raised one level when the break is 3+ business days old:
  high (1) for breaks that move money or positions the wrong way (missing_internal, missing_broker,
  side, account, duplicate, quantity), medium (2) for price, settlement_date, currency,
  missing_confirm, low (3) for commission;
* urgency from the anomaly score when the break was scored (>= 0.8 -> 1, >= 0.5 -> 2, else 3),
  otherwise from severity and age alone (high and 2+ days old -> 1, high or 2+ days -> 2, else 3).

ServiceNow computes priority from impact x urgency itself.
"""

from __future__ import annotations

from collections.abc import Mapping

HIGH = {"missing_internal", "missing_broker", "side", "account", "duplicate", "quantity"}
MEDIUM = {"price", "settlement_date", "currency", "missing_confirm"}
GROUPS_BY_ASSET_CLASS = {
    "EQUITY": "Trade Support - Equities",
    "ETF": "Trade Support - Equities",
    "BOND": "Trade Support - Fixed Income",
    "FX_FWD": "Trade Support - FX",
    "OPTION": "Trade Support - Derivatives",
}
MIDDLE_OFFICE = "Middle Office"
# break types that are about the account or the settlement, not the instrument: middle office
MIDDLE_OFFICE_TYPES = {"account", "settlement_date", "missing_confirm"}


def _fallback(row: Mapping) -> tuple[int, int]:
    btype = str(row.get("break_type") or "")
    age = int(row.get("age_business_days") or 0)
    impact = 1 if btype in HIGH else 2 if btype in MEDIUM else 3
    if age >= 3:
        impact = max(1, impact - 1)
    score = row.get("anomaly_score")
    if score is not None and score == score:  # not NaN
        urgency = 1 if score >= 0.8 else 2 if score >= 0.5 else 3
    else:
        urgency = 1 if impact == 1 and age >= 2 else 2 if impact == 1 or age >= 2 else 3
    return impact, urgency


def impact_urgency(row: Mapping) -> tuple[int, int]:
    try:
        from ml.anomaly.priority import priority_for  # the anomaly engineer's mapping
    except Exception:  # noqa: BLE001 - not importable: the documented fallback
        return _fallback(row)
    score = row.get("anomaly_score")
    amount = row.get("notional_usd", row.get("amount"))
    result = priority_for(score, row.get("break_type"), amount)
    return int(result.impact), int(result.urgency)


def assignment_group(row: Mapping) -> str:
    """By break type for account/settlement breaks, else by asset class, else by broker side."""
    if str(row.get("break_type") or "") in MIDDLE_OFFICE_TYPES:
        return MIDDLE_OFFICE
    return GROUPS_BY_ASSET_CLASS.get(str(row.get("asset_class") or "").upper(), MIDDLE_OFFICE)
