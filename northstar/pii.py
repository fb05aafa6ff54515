"""How client identifiers look outside the governed marts: one masking rule for every stage.

A brokerage account number is personal data. Ops-only marts keep it (``access: protected``); what
leaves them (score tables, ServiceNow incident descriptions) carries the masked form, which still
lets an operator tell accounts apart and find the one in the book: the first two and last four
characters survive (``BA****0001``).
"""

from __future__ import annotations

KEEP_START, KEEP_END = 2, 4


def mask_account_number(value: str | None) -> str | None:
    """``BA00000001`` -> ``BA****0001``; short values are masked whole; None stays None."""
    if value is None or value != value:  # None, or pandas' NaN for a missing value
        return None
    text = str(value)
    if len(text) <= KEEP_START + KEEP_END:
        return "*" * len(text)
    return f"{text[:KEEP_START]}****{text[-KEEP_END:]}"

