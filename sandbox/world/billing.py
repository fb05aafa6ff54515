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

from sandbox.world.config import FUTURE_MONTHS, month_ends
from sandbox.world.households import T_HIST, HouseholdChunk

COLUMNS = ["account_number", "period_end", "market_value", "net_flows", "fees_billed", "currency", "account_status"]


class BillingWriter:
    """Appends each chunk's rows to the 48 monthly files (headers written once).

    ``later_month=k`` writes only the k-th month after as-of's (a month the seed simulated but did not
    bill: ``python -m sandbox advance`` bills it, in full, at its month end)."""

    def __init__(self, drop: Path, as_of: date, later_month: int | None = None) -> None:
        self.folder = drop / "billing"
        self.folder.mkdir(parents=True, exist_ok=True)
        if later_month is None:
            ends = month_ends(as_of, T_HIST, 0)
            ends[-1] = min(ends[-1], as_of)  # the as-of month is billed as of as-of
            self.months = list(range(T_HIST))
        else:
            if not 1 <= later_month <= FUTURE_MONTHS:
                raise ValueError(f"the world simulates {FUTURE_MONTHS} months after as-of, not {later_month}")
            ends = [month_ends(as_of, 1, later_month)[-1]]
            self.months = [T_HIST - 1 + later_month]
        self.period_end = [d.isoformat() for d in ends]
        self.paths = [self.folder / f"billing_{d.year:04d}{d.month:02d}.csv" for d in ends]
        self.handles = [p.open("wb") for p in self.paths]
        self.header = [True] * len(self.months)
        self.rows = 0

    def write(self, hh: HouseholdChunk, acct_numbers: np.ndarray) -> None:
        a = hh.acct_household
        share = hh.acct_share
        numbers = pl.Series(acct_numbers)
        status_text = pl.Series(["OPEN", "CLOSED"])
        for i, t in enumerate(self.months):
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
            }).with_columns(pl.lit(self.period_end[i]).alias("period_end"), pl.lit("USD").alias("currency"))
            frame.select(COLUMNS).write_csv(self.handles[i], include_header=self.header[i], float_precision=2)
            self.header[i] = False
            self.rows += len(idx)

    def close(self) -> None:
        for handle in self.handles:
            handle.close()
