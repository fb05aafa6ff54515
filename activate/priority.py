"""ServiceNow impact / urgency for a break incident, and its assignment group: the rule's one owner.

Why here: the rule decides what an incident says, and ``activate`` is the only code that raises incidents.
It used to live in ``ml/anomaly/priority.py`` with a fallback copy here (other thresholds, used only when
``ml`` could not be imported); the copy is gone, and ``activate`` no longer imports ``ml``. The score it
reads is the break-anomaly model's, already in the warehouse (``main.fct_break_scores``), so the only thing
shared with ``ml`` is the meaning of that score: a probability in [0, 1] that the break is a real problem. A
model whose score means something else must change :data:`URGENT_SCORE` / :data:`ELEVATED_SCORE` here.
(Moving the thresholds into a dbt seed is part of issue 17's reference-data work.)

ServiceNow's scale is 1 (high) .. 3 (low) for both fields; the instance derives ``priority`` (1 critical ..
5 planning) from them with its own matrix, and :data:`PRIORITY_MATRIX` is the out-of-the-box one, returned
for information.

* **urgency** — how soon someone must look: from the anomaly score (>= :data:`URGENT_SCORE` → 1,
  >= :data:`ELEVATED_SCORE` → 2, else 3), raised to at least 2 for break types that stop settlement
  (:data:`SETTLEMENT_BLOCKING`). An unscored break (no champion yet) counts as score 0.
* **impact** — how much is at stake: from the amount in USD (the trade's notional, ``notional_usd`` from the
  break scores, else the register's ``amount``; >= :data:`HIGH_IMPACT_USD` → 1, >= :data:`MEDIUM_IMPACT_USD`
  → 2, else 3), raised one level when the score is urgent (a confident anomaly on a mid-sized trade matters
  as much as a large one). An unknown amount counts as medium.
* **assignment group** — by break type for account/settlement breaks (Middle Office), else by asset class.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

URGENT_SCORE = 0.8
ELEVATED_SCORE = 0.3
HIGH_IMPACT_USD = 1_000_000.0
MEDIUM_IMPACT_USD = 100_000.0
SETTLEMENT_BLOCKING = frozenset({
    "missing_internal", "missing_broker", "missing_confirm", "quantity", "side", "settlement_date", "account",
    "currency", "duplicate",
})
PRIORITY_MATRIX = {  # (impact, urgency) -> ServiceNow priority, out-of-the-box data lookup
    (1, 1): 1, (1, 2): 2, (2, 1): 2, (1, 3): 3, (2, 2): 3, (3, 1): 3, (2, 3): 4, (3, 2): 4, (3, 3): 5,
}

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


@dataclass(frozen=True)
class IncidentPriority:
    impact: int  # 1 high .. 3 low
    urgency: int  # 1 high .. 3 low
    priority: int  # 1 critical .. 5 planning (ServiceNow's default matrix)
    reason: str

    def as_fields(self) -> dict[str, str]:
        """The incident fields as the Table API takes them."""
        return {"impact": str(self.impact), "urgency": str(self.urgency)}


def priority_for(anomaly_score: float | None, break_type: str | None = None,
                 amount: float | None = None) -> IncidentPriority:
    """Impact and urgency (1-3) of the incident for one break or flagged trade. See the module doc."""
    score = 0.0 if anomaly_score is None or anomaly_score != anomaly_score else float(anomaly_score)
    if score >= URGENT_SCORE:
        urgency, why_urgency = 1, f"score {score:.2f} >= {URGENT_SCORE}"
    elif score >= ELEVATED_SCORE:
        urgency, why_urgency = 2, f"score {score:.2f} >= {ELEVATED_SCORE}"
    else:
        urgency, why_urgency = 3, f"score {score:.2f}"
    if break_type in SETTLEMENT_BLOCKING and urgency > 2:
        urgency, why_urgency = 2, f"{break_type} blocks settlement ({why_urgency})"

    if amount is None or amount != amount:
        impact, why_impact = 2, "amount unknown"
    else:
        amount = abs(float(amount))
        impact = 1 if amount >= HIGH_IMPACT_USD else 2 if amount >= MEDIUM_IMPACT_USD else 3
        why_impact = f"amount {amount:,.0f} USD"
    if score >= URGENT_SCORE and impact > 1:
        impact -= 1
        why_impact += ", raised for an urgent score"
    return IncidentPriority(impact, urgency, PRIORITY_MATRIX[(impact, urgency)], f"{why_urgency}; {why_impact}")


def impact_urgency(row: Mapping) -> tuple[int, int]:
    """:func:`priority_for` over one row of the break register (joined to its scores)."""
    amount = row.get("notional_usd", row.get("amount"))
    result = priority_for(row.get("anomaly_score"), row.get("break_type"), amount)
    return result.impact, result.urgency


def assignment_group(row: Mapping) -> str:
    """By break type for account/settlement breaks, else by asset class, else Middle Office."""
    if str(row.get("break_type") or "") in MIDDLE_OFFICE_TYPES:
        return MIDDLE_OFFICE
    return GROUPS_BY_ASSET_CLASS.get(str(row.get("asset_class") or "").upper(), MIDDLE_OFFICE)
