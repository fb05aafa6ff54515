"""Scale tiers, the world's calendar and the random streams: everything a seed run is parameterised by.

Every random draw in the world comes from a ``numpy.random.Generator`` seeded with
``(seed, stream, chunk)``, so a chunk's content depends only on the seed, the scale and the chunk's
index, never on the wall clock, the machine or the order chunks are processed in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

DEFAULT_AS_OF = date(2026, 10, 30)
HISTORY_MONTHS = 48  # interactions and billing up to and including the as-of month
FUTURE_MONTHS = 12  # simulated, written only to truth/
TRADING_DAYS = 5  # business days of trading ending at as-of
EARLIEST_CLIENT_SINCE = date(2010, 1, 1)


@dataclass(frozen=True)
class Scale:
    name: str
    households: int
    trades_per_day: int
    household_chunk: int = 50_000
    trade_chunk: int = 500_000

    @property
    def advisors(self) -> int:
        # roughly 150 households per advisor, as in a typical RIA book
        return max(10, self.households // 150)


SCALES: dict[str, Scale] = {
    "small": Scale("small", 1_000, 5_000),
    "demo": Scale("demo", 20_000, 100_000),
    "large": Scale("large", 1_000_000, 5_000_000),
}

# stream ids: one independent random stream per concern
STREAM_MARKET = 1
STREAM_HOUSEHOLDS = 2
STREAM_CRM = 3
STREAM_INSTRUMENTS = 4
STREAM_TRADES = 5
STREAM_HOSTILE = 6
STREAM_MUTATE = 7
STREAM_ADVISORS = 8
STREAM_PERSONS = 9  # addresses, tax ids, duplicate Contacts, custodian owners (sandbox/world/persons.py)


def rng(seed: int, stream: int, chunk: int = 0) -> np.random.Generator:
    return np.random.default_rng([seed, stream, chunk])


def month_ends(as_of: date, months_back: int, months_forward: int) -> list[date]:
    """Month-end dates: ``months_back`` months up to and including as-of's month, then the future ones."""
    out = []
    y, m = as_of.year, as_of.month
    for k in range(-(months_back - 1), months_forward + 1):
        mm = m - 1 + k
        yy, mm = y + mm // 12, mm % 12 + 1
        nxt = date(yy + (mm == 12), mm % 12 + 1, 1)
        out.append(nxt - timedelta(days=1))
    return out


def business_days_ending(as_of: date, n: int) -> list[date]:
    """The last ``n`` weekdays up to and including as-of (no holiday calendar: weekends only)."""
    days = []
    d = as_of
    while len(days) < n:
        if d.weekday() < 5:
            days.append(d)
        d -= timedelta(days=1)
    return sorted(days)


def add_business_days(d: np.ndarray, n: np.ndarray | int) -> np.ndarray:
    """``datetime64[D]`` + n weekdays (weekends only, like ``business_days_ending``)."""
    return np.busday_offset(d.astype("datetime64[D]"), n, roll="forward")
