"""ServiceNow impact / urgency for a break incident, from the anomaly score, the break type and the amount.

``activate/`` imports :func:`priority_for` when it writes an incident. ServiceNow's scale is 1 (high) .. 3 (low)
for both fields; the instance derives ``priority`` (1 critical .. 5 planning) from them with its own matrix,
and :data:`PRIORITY_MATRIX` is the out-of-the-box one, returned for information.

* **urgency** — how soon someone must look: from the anomaly score (>= :data:`URGENT_SCORE` → 1,
  >= :data:`ELEVATED_SCORE` → 2, else 3), raised to at least 2 for break types that stop settlement
  (:data:`SETTLEMENT_BLOCKING`);
* **impact** — how much is at stake: from the amount in USD (the trade's notional; >= :data:`HIGH_IMPACT_USD`
  → 1, >= :data:`MEDIUM_IMPACT_USD` → 2, else 3), raised one level when the score is urgent (a confident
  anomaly on a mid-sized trade matters as much as a large one). An unknown amount counts as medium.
"""

from __future__ import annotations

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
