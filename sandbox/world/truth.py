"""Ground truth: what the pipeline should find, written to ``truth/`` and read only by evaluation and tests.

- ``households.parquet``: the future (fees billed in the 12 months after as-of, whether and when
  the household left) and the latent traits that drove it.
- ``breaks.parquet``: every injected break and benign difference (see ``trading.py``).
- ``anomalies.parquet``: trades no matching rule catches but that should look odd.
- ``hostile_files.csv``: the bad deliveries of ``--hostile`` and the reason ingest should give.
- ``crm_mutations.parquet``: what ``mutate`` changed (appended per run).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from sandbox.world.households import LIFE_STAGES, RISK_PROFILES, T_ALL, T_HIST, HouseholdChunk

BREAK_COLUMNS = {
    "trade_id": pl.String, "order_id": pl.String, "business_date": pl.Date, "broker": pl.String,
    "kind": pl.String, "break_type": pl.String, "detail": pl.String,
}
ANOMALY_COLUMNS = {
    "trade_id": pl.String, "order_id": pl.String, "business_date": pl.Date, "account_number": pl.String,
    "anomaly_type": pl.String, "detail": pl.String,
}


def household_truth(hh: HouseholdChunk) -> pl.DataFrame:
    n = hh.n
    future = slice(T_HIST, T_ALL)
    left_within = (hh.close_t >= T_HIST) & (hh.close_t < T_ALL)
    return pl.DataFrame({
        "household_id": np.char.add("HH", np.char.zfill((hh.start + np.arange(n) + 1).astype(str), 7)),
        "revenue_next_12m": np.round(hh.fees[:, future].sum(axis=1), 2),
        "left_within_12m": left_within,
        "attrited_on": pl.Series(hh.attrited_on, dtype=pl.Date),
        "left_before_as_of": hh.close_t < T_HIST,
        "fees_trailing_12m": np.round(hh.fees[:, T_HIST - 12 : T_HIST].sum(axis=1), 2),
        "market_value_as_of": np.round(hh.mv[:, T_HIST - 1], 2),
        "complaints_trailing_12m": hh.complaints[:, T_HIST - 12 : T_HIST].sum(axis=1).astype(np.int32),
        "wealth_log10": hh.wealth_log10,
        "growth_propensity": hh.growth,
        "engagement_propensity": hh.engagement,
        "service_sensitivity": hh.service_sensitivity,
        "price_sensitivity": hh.price_sensitivity,
        "age": np.round(hh.age, 1),
        "life_stage": LIFE_STAGES[hh.life_stage],
        "risk_profile": RISK_PROFILES[hh.risk_idx],
        "fee_bps": hh.fee_bps,
    })


def write_parquet(frames: list[pl.DataFrame], path: Path, schema: dict | None = None) -> int:
    if frames:
        frame = pl.concat(frames, how="vertical_relaxed")
    else:
        frame = pl.DataFrame(schema=schema)
    frame.write_parquet(path, statistics=False)
    return frame.height
