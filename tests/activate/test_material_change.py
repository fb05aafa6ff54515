"""A rerun on unchanged input sends nothing: what is material is defined per field, with a tolerance.

Before the rules per field, one household's driver text flipping "$749" -> "$748" (a whole-dollar
rounding of a float summed in a different order) rewrote its Account on every rerun.
"""

from __future__ import annotations

import pytest
from activation_world import FAST_RETRY, household_scores, write_household_scores

from activate.config import SendLimits
from activate.salesforce import plan_salesforce, send_salesforce

pytestmark = pytest.mark.integration

SMALL = SendLimits(bulk_threshold=10_000, collection_size=50)


def _with_drivers(rows: list[dict], fees: int) -> list[dict]:
    return [{**r, "top_drivers": f"fees billed, last 12 months: ${fees:,} (up); calls, last 90 days: 3 (down)"}
            for r in rows]


def test_float_noise_and_driver_figures_alone_are_not_material(env):
    rows = _with_drivers(household_scores(seed=4), 749)
    write_household_scores(env.warehouse, rows)
    first = plan_salesforce("night-1", cfg=env.cfg).enqueued["Account"]
    assert first > 0
    send_salesforce(cfg=env.cfg, connect=env.sf_connect(), limits=SMALL, retry=FAST_RETRY, sleep=lambda s: None)

    # the rerun: the same scores give the same figures up to the last bits, and the driver's dollars flip
    noisy = [{**r, "predicted_revenue_12m": r["predicted_revenue_12m"] * (1 + 1e-13),
              "clv": r["clv"] + 1e-9, "value_percentile": r["value_percentile"] + 1e-12}
             for r in _with_drivers(rows, 748)]
    write_household_scores(env.warehouse, noisy)
    assert plan_salesforce("night-2", cfg=env.cfg).enqueued == {"Account": 0, "Task": 0}
    env.reset_stats()
    report = send_salesforce(cfg=env.cfg, connect=env.sf_connect(), limits=SMALL, retry=FAST_RETRY,
                             sleep=lambda s: None)
    assert report.sent == 0 and env.stats("salesforce")["total_writes"] == 0

    # a different driver is material: that household (and only it) is sent
    changed = [dict(r) for r in noisy]
    consenting = next(r for r in changed if r["has_analytics_consent"])
    consenting["top_drivers"] = "complaints, last 90 days: 2 (up); fees billed, last 12 months: $748 (up)"
    write_household_scores(env.warehouse, changed)
    assert plan_salesforce("night-3", cfg=env.cfg).enqueued["Account"] == 1
