"""ServiceNow impact / urgency for a break incident, and its assignment group: the rule's one owner.

Why here: the rule decides what an incident says, and ``activate`` is the only code that raises incidents.
The score it reads is the break-anomaly model's, already in the warehouse (``fct_break_scores``), so the only
thing shared with ``ml`` is the meaning of that score: a probability in [0, 1] that the break is a real problem.

The rule's numbers and vocabulary are reference data, dbt seeds read through :mod:`northstar.reference` (never
copied here): ``incident_rules`` (the score thresholds ``urgent_score`` / ``elevated_score``, the amounts
``high_impact_usd`` / ``medium_impact_usd``, the default group), ``break_types`` (which break types stop
settlement, which go to a group of their own) and ``asset_classes`` (each class's group). A model whose
score means something else changes the ``incident_rules`` seed.

ServiceNow's scale is 1 (high) .. 3 (low) for both fields; the instance derives ``priority`` (1 critical ..
5 planning) from them with its own matrix, and :data:`PRIORITY_MATRIX` is the out-of-the-box one (ServiceNow's,
not ours), returned for information.

* **urgency** — how soon someone must look: from the anomaly score (>= ``urgent_score`` → 1,
  >= ``elevated_score`` → 2, else 3), raised to at least 2 for break types that stop settlement
  (``break_types.is_settlement_blocking``). An unscored break (no champion yet) counts as score 0.
* **impact** — how much is at stake: from the amount in USD (the trade's notional, ``notional_usd`` from the
  break scores, else the register's ``amount``; >= ``high_impact_usd`` → 1, >= ``medium_impact_usd`` → 2,
  else 3), raised one level when the score is urgent (a confident anomaly on a mid-sized trade matters
  as much as a large one). An unknown amount counts as medium.
* **assignment group** — the break type's group when it has one (account and settlement breaks: the middle
  office), else the asset class's, else ``incident_rules.default_assignment_group``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from northstar.reference import asset_classes, break_types, incident_rules

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
    rules = incident_rules()
    settlement_blocking = {b.break_type for b in break_types() if b.is_settlement_blocking}
    score = 0.0 if anomaly_score is None or anomaly_score != anomaly_score else float(anomaly_score)
    if score >= rules.urgent_score:
        urgency, why_urgency = 1, f"score {score:.2f} >= {rules.urgent_score}"
    elif score >= rules.elevated_score:
        urgency, why_urgency = 2, f"score {score:.2f} >= {rules.elevated_score}"
    else:
        urgency, why_urgency = 3, f"score {score:.2f}"
    if break_type in settlement_blocking and urgency > 2:
        urgency, why_urgency = 2, f"{break_type} blocks settlement ({why_urgency})"

    if amount is None or amount != amount:
        impact, why_impact = 2, "amount unknown"
    else:
        amount = abs(float(amount))
        impact = 1 if amount >= rules.high_impact_usd else 2 if amount >= rules.medium_impact_usd else 3
        why_impact = f"amount {amount:,.0f} USD"
    if score >= rules.urgent_score and impact > 1:
        impact -= 1
        why_impact += ", raised for an urgent score"
    return IncidentPriority(impact, urgency, PRIORITY_MATRIX[(impact, urgency)], f"{why_urgency}; {why_impact}")


def impact_urgency(row: Mapping) -> tuple[int, int]:
    """:func:`priority_for` over one row of the break register (joined to its scores)."""
    amount = row.get("notional_usd", row.get("amount"))
    result = priority_for(row.get("anomaly_score"), row.get("break_type"), amount)
    return result.impact, result.urgency


def assignment_group(row: Mapping) -> str:
    """The break type's group if it has one, else the asset class's, else the default group (seeds)."""
    by_break_type = {b.break_type: b.assignment_group for b in break_types() if b.assignment_group}
    group = by_break_type.get(str(row.get("break_type") or ""))
    if group:
        return group
    by_asset_class = {a.asset_class: a.assignment_group for a in asset_classes()}
    return by_asset_class.get(str(row.get("asset_class") or "").upper(), incident_rules().default_assignment_group)
