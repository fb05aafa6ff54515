"""``python -m sandbox seed``: build the whole synthetic world, chunk by chunk, and ``mutate`` it later.

Order of work: advisors; pass 1 simulates every chunk of households (truth, and the accounts that
billing and trading need); then billing (48 monthly files, re-simulating each chunk: the simulation
is deterministic) and trading (per business day and chunk of allocations: trade book, FIX drop
copies, prime-broker confirms, injected breaks) run — in a second process on big worlds — while this
process loads the CRM org chunk by chunk; then ``--hostile`` deliveries and ``world.json`` (what was
seeded, for ``mutate``).
Memory stays bounded: only per-account trading attributes (a few arrays) outlive a chunk.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import queue
import shutil
import sys
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np

from sandbox.world import crm, hostile, trading
from sandbox.world.billing import BillingWriter
from sandbox.world.config import (
    SCALES,
    STREAM_ADVISORS,
    STREAM_CRM,
    STREAM_PERSONS,
    TRADING_DAYS,
    business_days_ending,
    rng,
)
from sandbox.world.households import T_HIST, market_returns, simulate_chunk
from sandbox.world.truth import ANOMALY_COLUMNS, BREAK_COLUMNS, household_truth, write_parquet

PARALLEL_FROM = 50_000  # households: from here on trading runs in its own process
DROP_SUBFOLDERS = ("oms", "fix", "prime", "billing", "_redeliveries")
TRUTH_FILES = ("households.parquet", "breaks.parquet", "anomalies.parquet", "hostile_files.csv",
               "crm_mutations.parquet", "identity.parquet")


@dataclass
class SeedReport:
    scale: str
    seed: int
    as_of: str
    hostile: bool
    seconds: dict[str, float] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"scale": self.scale, "seed": self.seed, "as_of": self.as_of, "hostile": self.hostile,
                "seconds": self.seconds, "rows": self.rows}


def _clean(drop: Path, truth: Path) -> None:
    drop.mkdir(parents=True, exist_ok=True)
    truth.mkdir(parents=True, exist_ok=True)
    for sub in DROP_SUBFOLDERS:
        shutil.rmtree(drop / sub, ignore_errors=True)
    for extra in hostile.EXTRA_ROOT_FILES:
        (drop / extra).unlink(missing_ok=True)
    for name in TRUTH_FILES:
        (truth / name).unlink(missing_ok=True)


def run_billing(seed: int, scale: str, as_of: date, drop: Path, chunk_accounts: list[np.ndarray],
                log=print) -> dict[str, int]:
    """The 48 monthly billing files (the household simulation is re-run per chunk: it is deterministic)."""
    tier = SCALES[scale]
    started = time.monotonic()
    market = market_returns(seed)
    billing = BillingWriter(drop, as_of)
    for chunk, acct_numbers in enumerate(chunk_accounts):
        start = chunk * tier.household_chunk
        n = min(tier.household_chunk, tier.households - start)
        billing.write(simulate_chunk(seed, chunk, start, n, tier.advisors, as_of, market), acct_numbers)
    billing.close()
    log(f"billing done ({time.monotonic() - started:.0f}s in billing)")
    return {"billing": billing.rows, "seconds.billing": int(round(time.monotonic() - started))}


def run_billing_and_trading(seed: int, scale: str, as_of: date, drop: Path, truth: Path,
                            chunk_accounts: list[np.ndarray], accounts: trading.TradingAccounts,
                            log=print) -> dict[str, int]:
    rows = run_billing(seed, scale, as_of, drop, chunk_accounts, log=log)
    rows.update(run_trading(seed, scale, as_of, drop, truth, accounts, log=log))
    return rows


def run_trading(seed: int, scale: str, as_of: date, drop: Path, truth: Path, accounts: trading.TradingAccounts,
                log=print) -> dict[str, int]:
    """The 5 business days of trading: drop-folder files plus breaks/anomalies truth."""
    tier = SCALES[scale]
    started = time.monotonic()
    rows: dict[str, int] = {}
    pools = accounts.pools()
    days = business_days_ending(as_of, TRADING_DAYS)
    universe = trading.build_universe(seed, days)
    trades = trading.TradingWriter(drop)
    breaks, anomalies = [], []
    trade_chunks = -(-tier.trades_per_day // tier.trade_chunk)
    for d, day in enumerate(days):
        order_seq = trade_seq = 0
        for c in range(trade_chunks):
            n_alloc = min(tier.trade_chunk, tier.trades_per_day - c * tier.trade_chunk)
            out, n_orders = trading.generate_chunk(seed, d, c, trade_chunks, day, n_alloc, order_seq, trade_seq,
                                                   universe, accounts, pools)
            order_seq += n_orders
            trade_seq += n_alloc
            trades.write(day, out)
            breaks.append(out.breaks.select(list(BREAK_COLUMNS)))
            anomalies.append(out.anomalies.select(list(ANOMALY_COLUMNS)))
        log(f"trading day {day} done ({time.monotonic() - started:.0f}s in trading)")
    trades.close()
    rows.update({Path(k).relative_to(drop).as_posix(): v for k, v in trades.rows.items()})
    rows["truth.breaks"] = write_parquet(breaks, truth / "breaks.parquet", BREAK_COLUMNS)
    rows["truth.anomalies"] = write_parquet(anomalies, truth / "anomalies.parquet", ANOMALY_COLUMNS)
    rows["seconds.trading"] = int(round(time.monotonic() - started))
    return rows


def _second_process(seed, scale, as_of, drop, truth, chunk_accounts, accounts, results) -> None:
    try:
        results.put(run_billing_and_trading(seed, scale, as_of, drop, truth, chunk_accounts, accounts,
                                            log=lambda msg: print(msg, file=sys.stderr, flush=True)))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, which raises
        results.put({"error": repr(exc)})
        raise


def simulate_accounts(seed: int, scale: str, as_of: date, market: np.ndarray,
                      on_chunk=None) -> tuple[list[np.ndarray], trading.TradingAccounts]:
    """Pass 1 over every chunk of households: their brokerage account numbers (numbered in chunk
    order) and what trading needs per account. ``on_chunk(hh, acct_numbers)`` sees each chunk."""
    tier = SCALES[scale]
    parts: dict[str, list[np.ndarray]] = {"number": [], "prime": [], "open": [], "habit": []}
    next_account = 1
    for chunk in range(-(-tier.households // tier.household_chunk)):
        start = chunk * tier.household_chunk
        n = min(tier.household_chunk, tier.households - start)
        hh = simulate_chunk(seed, chunk, start, n, tier.advisors, as_of, market)
        acct_numbers = np.char.add("BA", np.char.zfill((next_account + np.arange(hh.n_accounts)).astype(str), 8))
        next_account += hh.n_accounts
        if on_chunk is not None:
            on_chunk(hh, acct_numbers)
        a = hh.acct_household
        parts["number"].append(acct_numbers)
        parts["prime"].append(hh.acct_custodian)
        parts["open"].append(hh.close_t[a] >= T_HIST)
        habit = hh.mv[a, T_HIST - 1] * hh.acct_share
        habit = np.where(habit > 0, habit, 10 ** hh.wealth_log10[a] * hh.acct_share)
        parts["habit"].append(habit * np.exp(rng(seed, STREAM_CRM, 50_000 + chunk).normal(np.log(0.03), 0.5, len(a))))
    accounts = trading.TradingAccounts(
        number=np.concatenate(parts["number"]), prime=np.concatenate(parts["prime"]),
        is_open=np.concatenate(parts["open"]), habit_usd=np.concatenate(parts["habit"]),
    )
    return parts["number"], accounts


def seed_world(
    scale: str, seed: int, as_of: date, drop: Path, truth: Path, state: Path, hostile_inputs: bool = False,
    log=print,
) -> SeedReport:
    tier = SCALES[scale]
    report = SeedReport(scale, seed, as_of.isoformat(), hostile_inputs)
    started = time.monotonic()
    _clean(drop, truth)
    state.mkdir(parents=True, exist_ok=True)

    # advisors
    ids = crm.IdCounter()
    writer = crm.CrmWriter(state / "salesforce.db")
    users = crm.user_frame(rng(seed, STREAM_ADVISORS), tier.advisors, ids, as_of)
    writer.write("User", users)
    user_ids = users["Id"].to_numpy().astype(str)
    user_region = np.array([list(crm.REGION_NAMES).index(x) for x in users["Region__c"].to_list()])
    clock = crm.WorldClock(as_of)
    market = market_returns(seed)

    # pass 1, households chunk by chunk: simulation, truth, what billing and trading need
    truth_frames = []
    chunk_accounts, accounts = simulate_accounts(seed, scale, as_of, market,
                                                 on_chunk=lambda hh, _: truth_frames.append(household_truth(hh)))
    report.rows["households"] = write_parquet(truth_frames, truth / "households.parquet")
    truth_frames.clear()
    report.seconds["households"] = round(time.monotonic() - started, 1)
    log(f"households simulated ({time.monotonic() - started:.0f}s)")
    n_chunks = len(chunk_accounts)

    # billing and trading need only the accounts: on a big world they run in a second process meanwhile
    job_args = (seed, scale, as_of, drop, truth, chunk_accounts, accounts)
    parallel = tier.households >= PARALLEL_FROM and (os.cpu_count() or 1) > 1
    if parallel:
        ctx = multiprocessing.get_context("spawn")  # polars' thread pool does not survive fork
        results = ctx.Queue()
        job = ctx.Process(target=_second_process, args=(*job_args, results), name="world-billing-trading",
                          daemon=True)
        job.start()
    else:
        report.rows.update(run_billing_and_trading(*job_args, log=log))
    del accounts

    # pass 2, the CRM org (the simulation is deterministic per chunk, so it is re-run, not kept)
    t = time.monotonic()
    identity_truth = []
    for chunk in range(n_chunks):
        start = chunk * tier.household_chunk
        n = min(tier.household_chunk, tier.households - start)
        hh = simulate_chunk(seed, chunk, start, n, tier.advisors, as_of, market)
        frames = crm.household_frames(rng(seed, STREAM_CRM, chunk), hh, ids, user_ids, user_region,
                                      chunk_accounts[chunk], clock, identity_rng=rng(seed, STREAM_PERSONS, chunk),
                                      hostile=hostile_inputs)
        identity_truth.append(frames.pop(crm.IDENTITY_TRUTH))
        for name, frame in frames.items():
            writer.write(name, frame)
        if n_chunks > 1:
            log(f"CRM chunk {chunk + 1}/{n_chunks} done ({time.monotonic() - started:.0f}s)")
    writer.finish(ids)
    report.rows.update({f"crm.{k}": v for k, v in writer.rows.items()})
    report.rows["truth.identity"] = write_parquet(identity_truth, truth / "identity.parquet")
    del identity_truth
    report.seconds["crm"] = round(time.monotonic() - t, 1)

    if parallel:
        outcome = None
        while outcome is None:
            try:
                outcome = results.get(timeout=5)
            except queue.Empty:
                if not job.is_alive():
                    outcome = {"error": f"trading process died (exit {job.exitcode})"}
        job.join()
        if job.exitcode != 0 or "error" in outcome:
            raise RuntimeError(f"billing/trading generation failed: {outcome.get('error', job.exitcode)}")
        report.rows.update(outcome)
    report.seconds["billing_and_trading_done_at"] = round(time.monotonic() - started, 1)

    days = business_days_ending(as_of, TRADING_DAYS)
    hostile_rows = hostile.write_hostile(seed, drop, truth, days) if hostile_inputs else []
    if hostile_inputs:
        report.rows["truth.hostile_files"] = len(hostile_rows)

    (state / "world.json").write_text(json.dumps({
        "scale": scale, "seed": seed, "as_of": as_of.isoformat(), "households": tier.households,
        "mutations": 0, "id_counters": ids.next, "drop": str(drop.resolve()), "truth": str(truth.resolve()),
    }, indent=2))
    report.seconds["total"] = round(time.monotonic() - started, 1)
    return report

