"""``python -m sandbox advance``: one more business day of the world, for incremental runs and benchmarks.

One call is one round k (counted in ``world.json`` as ``days_advanced``), deterministic for the seed,
the scale and k:

- the CRM: one business day of changes (``mutate_world(full_day=True)``: updated, new and deleted
  households, contacts, opportunities, cases and tasks), stamped with the clock as ``mutate`` is;
- billing: the k-th month after the seed's as-of month, billed in full at its month end
  (``billing/billing_YYYYMM.csv``), from the months the seed simulated for ground truth; so round k
  reveals month k of the truth's 12-month future (at most 12 rounds);
- trading: the k-th business day after as-of: its trade book, FIX drop copies and prime-broker
  confirms, with injected breaks and anomalies appended to ``truth/breaks.parquet`` and
  ``truth/anomalies.parquet``.

The households are re-simulated (the simulation is deterministic per chunk), so nothing from the seed
run has to be kept beyond ``world.json`` and the org.
"""

from __future__ import annotations

import json
import time
from datetime import date, datetime, timedelta
from pathlib import Path

import polars as pl

from sandbox.world import trading
from sandbox.world.billing import BillingWriter
from sandbox.world.config import SCALES, TRADING_DAYS, business_days_ending
from sandbox.world.households import market_returns
from sandbox.world.mutate import mutate_world
from sandbox.world.seed import simulate_accounts
from sandbox.world.truth import ANOMALY_COLUMNS, BREAK_COLUMNS, write_parquet


def business_day_after(as_of: date, k: int) -> date:
    """The k-th weekday after as-of (no holiday calendar, as the seed)."""
    day = as_of
    while k > 0:
        day += timedelta(days=1)
        k -= day.weekday() < 5
    return day


def _append_truth(frames: list[pl.DataFrame], path: Path, schema: dict) -> int:
    if path.exists():
        frames = [pl.read_parquet(path), *frames]
    return write_parquet(frames, path, schema)


def advance_world(state: Path, drop: Path | None = None, truth: Path | None = None, seed: int | None = None,
                  now: datetime | None = None, log=print) -> dict:
    started = time.monotonic()
    meta_path = state / "world.json"
    meta = json.loads(meta_path.read_text())
    seed = meta["seed"] if seed is None else seed
    drop = Path(drop or meta["drop"])
    truth = Path(truth or meta["truth"])
    scale, as_of = meta["scale"], date.fromisoformat(meta["as_of"])
    tier = SCALES[scale]
    k = int(meta.get("days_advanced", 0)) + 1
    business_date = business_day_after(as_of, k)

    crm = mutate_world(state, truth, seed=seed, now=now, full_day=True)
    log(f"CRM day done ({time.monotonic() - started:.0f}s)")

    billing = BillingWriter(drop, as_of, later_month=k)  # raises past the simulated future
    market = market_returns(seed)
    chunk_accounts, accounts = simulate_accounts(seed, scale, as_of, market, on_chunk=billing.write)
    billing.close()
    log(f"billing month {billing.period_end[0]} done ({time.monotonic() - started:.0f}s)")

    days = business_days_ending(as_of, TRADING_DAYS) + [business_day_after(as_of, i) for i in range(1, k + 1)]
    universe = trading.build_universe(seed, days)
    pools = accounts.pools()
    writer = trading.TradingWriter(drop)
    breaks, anomalies = [], []
    trade_chunks = -(-tier.trades_per_day // tier.trade_chunk)
    order_seq = trade_seq = 0
    for c in range(trade_chunks):
        n_alloc = min(tier.trade_chunk, tier.trades_per_day - c * tier.trade_chunk)
        out, n_orders = trading.generate_chunk(seed, len(days) - 1, c, trade_chunks, business_date, n_alloc,
                                               order_seq, trade_seq, universe, accounts, pools)
        order_seq += n_orders
        trade_seq += n_alloc
        writer.write(business_date, out)
        breaks.append(out.breaks.select(list(BREAK_COLUMNS)))
        anomalies.append(out.anomalies.select(list(ANOMALY_COLUMNS)))
    writer.close()
    _append_truth(breaks, truth / "breaks.parquet", BREAK_COLUMNS)
    _append_truth(anomalies, truth / "anomalies.parquet", ANOMALY_COLUMNS)
    log(f"trading day {business_date} done ({time.monotonic() - started:.0f}s)")

    meta = json.loads(meta_path.read_text())  # mutate_world rewrote it
    meta["days_advanced"] = k
    meta_path.write_text(json.dumps(meta, indent=2))
    return {
        "round": k, "business_date": business_date.isoformat(), "billing_month": billing.period_end[0],
        "crm": crm, "rows": {
            "billing": billing.rows,
            **{Path(p).relative_to(drop).as_posix(): n for p, n in writer.rows.items()},
            "truth.breaks": sum(f.height for f in breaks), "truth.anomalies": sum(f.height for f in anomalies),
        },
        "seconds": round(time.monotonic() - started, 1),
    }
