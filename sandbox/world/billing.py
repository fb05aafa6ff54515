"""Monthly billing files: one row per brokerage account per month, for the 48 history months.

``market_value`` is the account's share of the household's month-end value, ``net_flows`` its share
of the month's flows, ``fees_billed`` its share of the household's tiered fee (tiering is applied to
the household's total, as householding does). A closed account shows its outflow in the closing
month and zeros after that, with ``account_status`` ``CLOSED``.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import polars as pl

from sandbox.world.config import month_ends
from sandbox.world.households import T_HIST, HouseholdChunk

COLUMNS = ["account_number", "period_end", "market_value", "net_flows", "fees_billed", "currency", "account_status"]


class BillingWriter:
    """Appends each chunk's rows to the 48 monthly files (headers written once)."""

    def __init__(self, drop: Path, as_of: date) -> None:
        self.folder = drop / "billing"
        self.folder.mkdir(parents=True, exist_ok=True)
        ends = month_ends(as_of, T_HIST, 0)
        ends[-1] = min(ends[-1], as_of)  # the as-of month is billed as of as-of
        self.period_end = [d.isoformat() for d in ends]
        self.paths = [self.folder / f"billing_{d.year:04d}{d.month:02d}.csv" for d in ends]
        self.handles = [p.open("wb") for p in self.paths]
        self.header = [True] * T_HIST
        self.rows = 0

    def write(self, hh: HouseholdChunk, acct_numbers: np.ndarray) -> None:
        a = hh.acct_household
        share = hh.acct_share
        numbers = pl.Series(acct_numbers)
        status_text = pl.Series(["OPEN", "CLOSED"])
        for t in range(T_HIST):
            idx = np.flatnonzero(hh.join_t[a] <= t)
            if not len(idx):
                continue
            h = a[idx]
            frame = pl.DataFrame({
                "account_number": numbers.gather(idx),
                "market_value": np.round(hh.mv[h, t] * share[idx], 2) + 0.0,
                "net_flows": np.round(hh.flows[h, t] * share[idx], 2) + 0.0,
                "fees_billed": np.round(hh.fees[h, t] * share[idx], 2) + 0.0,
                "account_status": status_text.gather((hh.close_t[h] <= t).astype(np.int64)),
            }).with_columns(pl.lit(self.period_end[t]).alias("period_end"), pl.lit("USD").alias("currency"))
            frame.select(COLUMNS).write_csv(self.handles[t], include_header=self.header[t], float_precision=2)
            self.header[t] = False
            self.rows += len(idx)

    def close(self) -> None:
        for handle in self.handles:
            handle.close()
