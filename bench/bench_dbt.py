"""The warehouse: a full ``dbt build`` at a scale tier, and the trade reconciliation against two baselines.

1. **World and landing** (once; reused with ``--home DIR``): ``sandbox seed`` at ``--scale`` into
   ``DIR/{drop,truth,state}``, the sandbox Salesforce org served in-process, ``ingest.salesforce`` and
   ``ingest.broker_files`` into ``DIR/landing``: the same path production takes.
2. **Full build**: ``dbt build`` (every model, snapshot, seed and test) of that landing into a fresh
   warehouse, in a child process: wall time, peak RSS, warnings (must be 0).
3. **Reconciliation** on one business date's trading files (``--recon-date``, default the world's
   last; on ``large`` about 5,000,000 internal allocations against about 5,000,000 confirms and the FIX
   fills of their orders), linked into ``DIR/recon/landing`` and staged once (``dbt run`` of the three
   broker staging models and the seeds, not timed). Then, each in its own child process and on the same
   staged relations:

   * ``dbt``: ``dbt run --full-refresh`` of the matching models: ``intermediate/trading`` and
     ``fct_trade_breaks`` (what ``dbt build --select +fct_trade_breaks`` runs beyond staging). Timed as
     the span of the models (first start to last end in dbt's run results) and as the whole
     invocation (including dbt's start-up and parsing).
   * ``duckdb``: one hand-written DuckDB query doing the same classification (below), into a temp table.
   * ``pandas``: the same logic in pandas (the inputs fetched from the warehouse included).

   The three must find the same breaks: counts by reason code and level are asserted equal.

Targets (exit 1 when missed): dbt's reconciliation within 1.5x of the hand-written query, at least 8x
faster than pandas, and peak memory of each reconciliation dbt process under 4 GB (the full build runs with
``--full-build-memory-limit``, 10GB: its peak RSS is reported, not a target). dbt and the hand-written query run
``--repeat`` times (best time, highest peak), pandas once; a pandas run above ``--pandas-rss-cap-mb`` is
killed (its time is then a lower bound). DuckDB runs with ``memory_limit`` = ``NORTHSTAR_DUCKDB_MEMORY_LIMIT``
(3GB, as in the dbt profile). On a shared machine the load average is printed beside the figures.

``python bench/bench_dbt.py [--scale large] [--seed 7] [--home DIR] [--recon-date YYYY-MM-DD]
[--skip-full-build] [--repeat 1]``; without ``--home`` (or ``NORTHSTAR_BENCH_DBT_HOME``, which is how
``make bench`` can reuse a world) the world goes to a temporary folder that is removed afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import northstar.warehouse
from northstar.warehouse import relation, render

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

PROJECT_DIR = REPO / "dbt_project"
DBT_RATIO_TARGET = 1.5  # dbt's recon within 1.5x of the hand-written DuckDB query
PANDAS_SPEEDUP_TARGET = 8.0  # dbt at least 8x faster than pandas
RSS_LIMIT_MB = 4096
TRADING_TABLES = ("internal_trades", "fix_executions", "pb_confirms")
STAGING_MODELS = ("stg_broker__internal_trades", "stg_broker__fix_executions", "stg_broker__pb_confirms")
RECON_SELECT = ["path:models/intermediate/trading", "fct_trade_breaks"]

# The reconciliation as one query over the staged relations: the rules of int_*_aggregated,
# int_orders_matched, int_allocations_matched and int_trade_breaks_identified, written by hand.
# `{<table>}`: a warehouse table by its dbt name (northstar.warehouse.render).
HANDWRITTEN_RECON = """
create or replace temp table handwritten_breaks as
with
-- only the columns the rules read: CTEs used several times are materialized, so their width counts
internal_trades as (
    select trade_record_id, trade_id, order_id, business_date, trade_date, executing_broker, prime_broker,
           instrument_id, asset_class, side, currency, quantity, price, account_number, settle_date, commission,
           source_file, source_line
    from {stg_broker__internal_trades}
),
confirms as (
    select confirm_id, trade_id, prime_broker, business_date, trade_date, executing_broker, instrument_id,
           asset_class, side, currency, quantity, price, account_number, settle_date, commission, source_file,
           source_line
    from {stg_broker__pb_confirms}
),
executions as (
    select execution_id, exec_id, order_id, executing_broker, business_date, trade_date, instrument_id,
           asset_class, side, currency, fill_quantity, fill_price, source_file, source_line
    from {stg_broker__fix_executions}
),
tolerances as (select * from {recon_tolerances}),
-- first delivery per key: only the (few) repeated keys are ranked
repeated_trades as (
    select trade_id, min(business_date) as business_date, min(order_id) as order_id, min(prime_broker) as broker
    from internal_trades
    semi join (select trade_id from internal_trades group by trade_id having count(*) > 1) using (trade_id)
    group by trade_id
),
repeated_confirms as (
    select trade_id, min(business_date) as business_date, min(prime_broker) as broker
    from confirms
    semi join (select trade_id from confirms group by trade_id having count(*) > 1) using (trade_id)
    group by trade_id
),
repeated_reports as (
    select executing_broker, exec_id, min(business_date) as business_date, min(order_id) as order_id
    from executions
    semi join (select executing_broker, exec_id from executions group by all having count(*) > 1)
        using (executing_broker, exec_id)
    group by executing_broker, exec_id
),
allocations as (
    select * from internal_trades
    where trade_id not in (select trade_id from repeated_trades)
       or trade_record_id in (
           select trade_record_id from internal_trades semi join repeated_trades using (trade_id)
           qualify row_number() over (partition by trade_id order by business_date, source_file, source_line) = 1)
),
first_confirms as (
    select * from confirms
    where trade_id not in (select trade_id from repeated_confirms)
       or confirm_id in (
           select confirm_id from confirms semi join repeated_confirms using (trade_id)
           qualify row_number() over (partition by trade_id order by business_date, source_file, source_line) = 1)
),
fills as (
    select * from executions
    where (executing_broker, exec_id) not in (select (executing_broker, exec_id) from repeated_reports)
       or execution_id in (
           select execution_id from executions semi join repeated_reports using (executing_broker, exec_id)
           qualify row_number() over (partition by executing_broker, exec_id
                                      order by business_date, source_file, source_line) = 1)
),
internal_orders as (
    select order_id, min(business_date) as business_date, min(trade_date) as trade_date,
           min(executing_broker) as executing_broker, min(instrument_id) as instrument_id,
           min(asset_class) as asset_class, min(side) as side, min(currency) as currency,
           sum(quantity) as quantity, sum(quantity * price) / nullif(sum(quantity), 0) as average_price
    from allocations group by order_id
),
broker_orders as (
    select order_id, executing_broker, min(business_date) as business_date, min(trade_date) as trade_date,
           min(instrument_id) as instrument_id, min(asset_class) as asset_class, min(side) as side,
           min(currency) as currency, sum(fill_quantity) as quantity,
           sum(fill_quantity * fill_price) / nullif(sum(fill_quantity), 0) as average_price
    from fills group by order_id, executing_broker
),
orders as (
    select
        coalesce(i.order_id, b.order_id) as order_id,
        coalesce(i.business_date, b.trade_date, b.business_date) as business_date,
        coalesce(b.executing_broker, i.executing_broker) as broker,
        coalesce(i.asset_class, b.asset_class) as asset_class,
        coalesce(i.instrument_id, b.instrument_id) as instrument_id,
        coalesce(i.trade_date, b.trade_date) as trade_date,
        coalesce(i.side, b.side) as side,
        i.order_id is not null as has_internal, b.order_id is not null as has_broker,
        i.side as internal_side, b.side as broker_side, i.currency as internal_currency,
        b.currency as broker_currency, b.quantity - i.quantity as quantity_difference,
        coalesce(b.quantity, 0) - coalesce(i.quantity, 0) as surplus,
        b.average_price - i.average_price as price_difference,
        abs(b.average_price - i.average_price) / nullif(abs(i.average_price), 0) * 10000 as price_bps
    from internal_orders as i full outer join broker_orders as b on i.order_id = b.order_id
),
-- a FIX surplus explained by confirms missing from the book (same broker, instrument, side, date)
candidates as (
    select o.order_id, o.broker, o.surplus, c.trade_id, c.quantity
    from (select * from orders where surplus > 0) as o
    join confirms as c on o.trade_date = c.trade_date and o.broker = c.executing_broker
        and o.instrument_id = c.instrument_id and o.side = c.side
),
explained as (
    select order_id, broker, sum(quantity) as unbooked_quantity,
           max(case when round(quantity - surplus, 6) = 0 then 1 else 0 end) as exact
    from candidates
    where trade_id not in (select trade_id from internal_trades semi join candidates using (trade_id))
    group by order_id, broker
),
order_flags as (
    select o.*,
        coalesce(e.exact = 1 or round(o.surplus - e.unbooked_quantity, 6) = 0, false) as is_explained,
        coalesce(t.price_abs_tolerance, 0) as price_abs, coalesce(t.price_bps_tolerance, 0) as price_bps_tol,
        coalesce(t.quantity_tolerance, 0) as quantity_tol
    from orders as o
    left join explained as e on o.order_id = e.order_id and o.broker = e.broker
    left join tolerances as t on o.asset_class = t.asset_class
),
order_breaks as (
    select * from (select business_date, unnest([
        case when has_broker and not has_internal and not is_explained then 'missing_internal' end,
        case when has_internal and not has_broker then 'missing_broker' end,
        case when has_internal and has_broker and internal_side != broker_side then 'side' end,
        case when has_internal and has_broker and internal_currency != broker_currency then 'currency' end,
        case when has_internal and has_broker and abs(round(quantity_difference, 6)) > quantity_tol
             and not is_explained then 'quantity' end,
        case when has_internal and has_broker and abs(round(price_difference, 9)) > price_abs
             and round(coalesce(price_bps, 0), 6) > price_bps_tol then 'price' end
    ]) as break_type, 'order' as break_level, order_id, null::varchar as trade_id, broker from order_flags)
    where break_type is not null
),
allocation_pairs as (
    select
        coalesce(a.trade_id, c.trade_id) as trade_id, a.order_id,
        coalesce(a.business_date, c.trade_date, c.business_date) as business_date,
        coalesce(c.prime_broker, a.prime_broker) as broker,
        a.trade_id is not null as has_internal, c.trade_id is not null as has_confirm,
        a.account_number as internal_account, c.account_number as confirm_account,
        a.side as internal_side, c.side as confirm_side, a.currency as internal_currency,
        c.currency as confirm_currency, c.quantity - a.quantity as quantity_difference,
        c.price - a.price as price_difference,
        abs(c.price - a.price) / nullif(abs(a.price), 0) * 10000 as price_bps,
        c.commission - a.commission as commission_difference,
        date_diff('day', a.settle_date, c.settle_date) as settle_days,
        coalesce(t.price_abs_tolerance, 0) as price_abs, coalesce(t.price_bps_tolerance, 0) as price_bps_tol,
        coalesce(t.quantity_tolerance, 0) as quantity_tol, coalesce(t.commission_abs_tolerance, 0) as commission_tol,
        coalesce(t.settlement_days_tolerance, 0) as settle_tol
    from allocations as a
    full outer join first_confirms as c on a.trade_id = c.trade_id
    left join tolerances as t on coalesce(a.asset_class, c.asset_class) = t.asset_class
),
allocation_breaks as (
    select * from (select business_date, unnest([
        case when has_confirm and not has_internal then 'missing_internal' end,
        case when has_internal and not has_confirm then 'missing_confirm' end,
        case when has_internal and has_confirm and internal_side != confirm_side then 'side' end,
        case when has_internal and has_confirm and internal_currency != confirm_currency then 'currency' end,
        case when has_internal and has_confirm and internal_account != confirm_account then 'account' end,
        case when has_internal and has_confirm and abs(round(quantity_difference, 6)) > quantity_tol
             then 'quantity' end,
        case when has_internal and has_confirm and abs(round(price_difference, 9)) > price_abs
             and round(coalesce(price_bps, 0), 6) > price_bps_tol then 'price' end,
        case when has_internal and has_confirm
             and abs(round(coalesce(commission_difference, 0), 6)) > commission_tol then 'commission' end,
        case when has_internal and has_confirm and abs(coalesce(settle_days, 0)) > settle_tol
             then 'settlement_date' end
    ]) as break_type, 'allocation' as break_level, order_id, trade_id, broker from allocation_pairs)
    where break_type is not null
),
duplicates as (
    select business_date, 'duplicate', 'allocation', order_id, trade_id, broker from repeated_trades
    union all
    select r.business_date, 'duplicate', 'allocation', min(i.order_id), r.trade_id, r.broker
    from repeated_confirms as r left join internal_trades as i using (trade_id)
    group by r.business_date, r.trade_id, r.broker
    union all
    select business_date, 'duplicate', 'order', order_id, null, executing_broker from repeated_reports
)
select * from order_breaks
union all select * from allocation_breaks
union all select * from duplicates
"""


# --- children: each measured engine runs in its own process ---------------------------------------

def _dbt_invoke(args: list[str], target: Path, logs: Path) -> dict:
    """``dbt <args>`` in this process; the models' span from the run results, warnings collected."""
    from dbt.cli.main import dbtRunner

    warnings: list[str] = []

    def collect(event) -> None:
        if getattr(event.info, "level", "") == "warn":
            warnings.append(f"{event.info.name}: {event.info.msg}")

    started = time.monotonic()
    result = dbtRunner(callbacks=[collect]).invoke(
        ["--quiet", *args, "--project-dir", str(PROJECT_DIR), "--profiles-dir", str(PROJECT_DIR),
         "--target-path", str(target), "--log-path", str(logs)]
    )
    wall = time.monotonic() - started
    results = getattr(result.result, "results", None) or []
    failures = [f"{r.node.unique_id}: {r.status}: {r.message}" for r in results
                if str(r.status).lower() in {"error", "fail", "runtime error"}]
    spans = [(t.started_at, t.completed_at) for r in results for t in (r.timing or [])
             if t.started_at and t.completed_at]
    models_s = (max(e for _, e in spans) - min(s for s, _ in spans)).total_seconds() if spans else wall
    return {"ok": bool(result.success) and not failures, "wall_s": wall, "models_s": models_s,
            "nodes": len(results), "warnings": warnings,
            "failures": failures or ([str(result.exception)] if result.exception else [])}


def _breaks_by_type(rows) -> dict[str, int]:
    return {f"{level}:{kind}": int(n) for kind, level, n in rows}


def child_dbt(spec: dict) -> dict:
    os.environ.update(spec["env"])
    out = _dbt_invoke(spec["args"], Path(spec["target"]), Path(spec["logs"]))
    if spec.get("count_breaks") and out["ok"]:
        northstar.warehouse.release_dbt_handles()  # release the file before reading it
        with northstar.warehouse.connect(read_only=True, path=spec["env"]["NORTHSTAR_WAREHOUSE"]) as con:
            out["breaks"] = _breaks_by_type(con.execute(
                render("select break_type, break_level, count(*) from {fct_trade_breaks} group by all")
            ).fetchall())
    return out


def child_duckdb(spec: dict) -> dict:

    con = northstar.warehouse.connect(path=spec["warehouse"])
    con.execute("set enable_progress_bar = false")
    started = time.monotonic()
    con.execute(render(HANDWRITTEN_RECON))
    seconds = time.monotonic() - started
    breaks = _breaks_by_type(con.execute(
        "select break_type, break_level, count(*) from handwritten_breaks group by all").fetchall())
    con.close()
    return {"ok": True, "wall_s": seconds, "models_s": seconds, "breaks": breaks}


def child_pandas(spec: dict) -> dict:
    import numpy  # noqa: F401 - imported before the clock starts, like the other engines' start-up
    import pandas  # noqa: F401

    started = time.monotonic()
    with northstar.warehouse.connect(read_only=True, path=spec["warehouse"]) as con:
        internal = con.execute(render(
            "select trade_id, order_id, business_date, trade_date, executing_broker, prime_broker, instrument_id,"
            " asset_class, side, currency, quantity, price, account_number, settle_date, commission,"
            " source_file, source_line from {stg_broker__internal_trades}")).df()
        confirms = con.execute(render(
            "select confirm_id, trade_id, prime_broker, business_date, trade_date, executing_broker,"
            " instrument_id, asset_class, side, currency, quantity, price, account_number, settle_date,"
            " commission, source_file, source_line from {stg_broker__pb_confirms}")).df()
        executions = con.execute(render(
            "select exec_id, order_id, executing_broker, business_date, trade_date, instrument_id, asset_class,"
            " side, currency, fill_quantity, fill_price, source_file, source_line"
            " from {stg_broker__fix_executions}")).df()
        tolerances = con.execute(render("select * from {recon_tolerances}")).df()
    loaded = time.monotonic()
    breaks = pandas_recon(internal, confirms, executions, tolerances)
    done = time.monotonic()
    counts = breaks.groupby(["break_type", "break_level"]).size()
    return {"ok": True, "wall_s": done - started, "models_s": done - started, "load_s": loaded - started,
            "breaks": {f"{level}:{kind}": int(n) for (kind, level), n in counts.items()}}


def pandas_recon(internal, confirms, executions, tolerances):
    """The reconciliation's rules in pandas, one step per CTE of the dbt models."""
    import numpy as np
    import pandas as pd

    order_keys = ["business_date", "source_file", "source_line"]

    def first_per(frame, keys):
        return frame.sort_values(order_keys, kind="stable").drop_duplicates(keys, keep="first")

    def ne(left, right):  # SQL's a != b: null when either side is null, which is not a break
        return left.notna() & right.notna() & (left != right)

    def sql_round(values, digits):  # half away from zero, like DuckDB's round on doubles
        scale = 10.0 ** digits
        return np.sign(values) * np.floor(np.abs(values) * scale + 0.5) / scale

    allocations = first_per(internal, ["trade_id"])
    first_confirms = first_per(confirms, ["trade_id"])
    fills = first_per(executions, ["executing_broker", "exec_id"])

    allocations = allocations.assign(notional=allocations["quantity"] * allocations["price"])
    internal_orders = allocations.groupby("order_id", as_index=False, sort=False).agg(
        business_date=("business_date", "min"), trade_date=("trade_date", "min"),
        executing_broker=("executing_broker", "min"), instrument_id=("instrument_id", "min"),
        asset_class=("asset_class", "min"), side=("side", "min"), currency=("currency", "min"),
        quantity=("quantity", "sum"), notional=("notional", "sum"))
    internal_orders["average_price"] = internal_orders["notional"] / internal_orders["quantity"].replace(0, np.nan)
    fills = fills.assign(notional=fills["fill_quantity"] * fills["fill_price"])
    broker_orders = fills.groupby(["order_id", "executing_broker"], as_index=False, sort=False).agg(
        business_date=("business_date", "min"), trade_date=("trade_date", "min"),
        instrument_id=("instrument_id", "min"), asset_class=("asset_class", "min"), side=("side", "min"),
        currency=("currency", "min"), quantity=("fill_quantity", "sum"), notional=("notional", "sum"))
    broker_orders["average_price"] = broker_orders["notional"] / broker_orders["quantity"].replace(0, np.nan)

    booked = set(internal["trade_id"].dropna())
    unbooked = confirms.loc[~confirms["trade_id"].isin(booked),
                            ["trade_date", "executing_broker", "instrument_id", "side", "quantity"]]

    i = internal_orders.add_prefix("i_")
    b = broker_orders.add_prefix("b_")
    o = i.merge(b, left_on="i_order_id", right_on="b_order_id", how="outer")
    orders = pd.DataFrame({
        "order_id": o["i_order_id"].fillna(o["b_order_id"]),
        "business_date": o["i_business_date"].fillna(o["b_trade_date"]).fillna(o["b_business_date"]),
        "broker": o["b_executing_broker"].fillna(o["i_executing_broker"]),
        "asset_class": o["i_asset_class"].fillna(o["b_asset_class"]),
        "instrument_id": o["i_instrument_id"].fillna(o["b_instrument_id"]),
        "trade_date": o["i_trade_date"].fillna(o["b_trade_date"]),
        "side": o["i_side"].fillna(o["b_side"]),
        "has_internal": o["i_order_id"].notna(), "has_broker": o["b_order_id"].notna(),
        "internal_side": o["i_side"], "broker_side": o["b_side"],
        "internal_currency": o["i_currency"], "broker_currency": o["b_currency"],
        "quantity_difference": o["b_quantity"] - o["i_quantity"],
        "surplus": o["b_quantity"].fillna(0) - o["i_quantity"].fillna(0),
        "price_difference": o["b_average_price"] - o["i_average_price"],
    })
    orders["price_bps"] = orders["price_difference"].abs() / o["i_average_price"].abs().replace(0, np.nan) * 10000

    with_surplus = orders.loc[orders["surplus"] > 0, ["order_id", "broker", "trade_date", "instrument_id", "side",
                                                      "surplus"]]
    pairs = with_surplus.merge(unbooked, left_on=["trade_date", "broker", "instrument_id", "side"],
                               right_on=["trade_date", "executing_broker", "instrument_id", "side"])
    pairs["exact"] = (sql_round(pairs["quantity"] - pairs["surplus"], 6) == 0).astype(int)
    explained = pairs.groupby(["order_id", "broker"], as_index=False).agg(
        unbooked_quantity=("quantity", "sum"), exact=("exact", "max"), surplus=("surplus", "first"))
    explained["is_explained"] = (explained["exact"] == 1) | (
        sql_round(explained["surplus"] - explained["unbooked_quantity"], 6) == 0)
    orders = orders.merge(explained[["order_id", "broker", "is_explained"]], on=["order_id", "broker"], how="left")
    orders["is_explained"] = orders["is_explained"].astype("boolean").fillna(False).astype(bool)
    tol = tolerances.set_index("asset_class")
    for column in ("price_abs_tolerance", "price_bps_tolerance", "quantity_tolerance"):
        orders[column] = orders["asset_class"].map(tol[column]).fillna(0)

    both = orders["has_internal"] & orders["has_broker"]
    price_break = (both & (sql_round(orders["price_difference"], 9).abs() > orders["price_abs_tolerance"])
                   & (sql_round(orders["price_bps"].fillna(0), 6) > orders["price_bps_tolerance"]))
    order_flags = {
        "missing_internal": orders["has_broker"] & ~orders["has_internal"] & ~orders["is_explained"],
        "missing_broker": orders["has_internal"] & ~orders["has_broker"],
        "side": both & ne(orders["internal_side"], orders["broker_side"]),
        "currency": both & ne(orders["internal_currency"], orders["broker_currency"]),
        "quantity": both & (sql_round(orders["quantity_difference"], 6).abs() > orders["quantity_tolerance"])
        & ~orders["is_explained"],
        "price": price_break,
    }

    a = allocations.add_prefix("a_")
    c = first_confirms.add_prefix("c_")
    p = a.merge(c, left_on="a_trade_id", right_on="c_trade_id", how="outer")
    asset_class = p["a_asset_class"].fillna(p["c_asset_class"])
    tolerance = {column: asset_class.map(tol[column]).fillna(0) for column in tol.columns}
    has_internal, has_confirm = p["a_trade_id"].notna(), p["c_trade_id"].notna()
    matched = has_internal & has_confirm
    price_difference = p["c_price"] - p["a_price"]
    price_bps = price_difference.abs() / p["a_price"].abs().replace(0, np.nan) * 10000
    settle_days = (pd.to_datetime(p["c_settle_date"]) - pd.to_datetime(p["a_settle_date"])).dt.days
    allocation_flags = {
        "missing_internal": has_confirm & ~has_internal,
        "missing_confirm": has_internal & ~has_confirm,
        "side": matched & ne(p["a_side"], p["c_side"]),
        "currency": matched & ne(p["a_currency"], p["c_currency"]),
        "account": matched & ne(p["a_account_number"], p["c_account_number"]),
        "quantity": matched & (sql_round(p["c_quantity"] - p["a_quantity"], 6).abs() > tolerance["quantity_tolerance"]),
        "price": matched & (sql_round(price_difference, 9).abs() > tolerance["price_abs_tolerance"])
        & (sql_round(price_bps.fillna(0), 6) > tolerance["price_bps_tolerance"]),
        "commission": matched & (sql_round((p["c_commission"] - p["a_commission"]).fillna(0), 6).abs()
                                 > tolerance["commission_abs_tolerance"]),
        "settlement_date": matched & (settle_days.fillna(0).abs() > tolerance["settlement_days_tolerance"]),
    }

    frames = []
    for kind, flag in order_flags.items():
        hit = orders.loc[flag.fillna(False).astype(bool)]
        frames.append(pd.DataFrame({"business_date": hit["business_date"], "break_type": kind, "break_level": "order",
                                    "order_id": hit["order_id"], "trade_id": None, "broker": hit["broker"]}))
    pair_business_date = p["a_business_date"].fillna(p["c_trade_date"]).fillna(p["c_business_date"])
    pair_broker = p["c_prime_broker"].fillna(p["a_prime_broker"])
    pair_trade_id = p["a_trade_id"].fillna(p["c_trade_id"])
    for kind, flag in allocation_flags.items():
        hit = flag.fillna(False).astype(bool)
        frames.append(pd.DataFrame({"business_date": pair_business_date[hit], "break_type": kind,
                                    "break_level": "allocation", "order_id": p.loc[hit, "a_order_id"],
                                    "trade_id": pair_trade_id[hit], "broker": pair_broker[hit]}))

    counts = internal.groupby("trade_id")["trade_id"].transform("size")
    booked_twice = internal.loc[counts > 1].groupby("trade_id", as_index=False).agg(
        business_date=("business_date", "min"), order_id=("order_id", "min"), broker=("prime_broker", "min"))
    frames.append(booked_twice.assign(break_type="duplicate", break_level="allocation"))
    confirm_copies = confirms.groupby("trade_id")["confirm_id"].transform("nunique")
    delivered_twice = confirms.loc[confirm_copies > 1].groupby("trade_id", as_index=False).agg(
        business_date=("business_date", "min"), broker=("prime_broker", "min"))
    order_of_trade = internal.groupby("trade_id")["order_id"].min()
    delivered_twice["order_id"] = delivered_twice["trade_id"].map(order_of_trade)
    frames.append(delivered_twice.assign(break_type="duplicate", break_level="allocation"))
    reports = executions.groupby(["executing_broker", "exec_id"])["exec_id"].transform("size")
    reported_twice = executions.loc[reports > 1].groupby(["executing_broker", "exec_id"], as_index=False).agg(
        business_date=("business_date", "min"), order_id=("order_id", "min"))
    frames.append(reported_twice.rename(columns={"executing_broker": "broker"}).drop(columns="exec_id")
                  .assign(trade_id=None, break_type="duplicate", break_level="order"))
    return pd.concat([f for f in frames if len(f)], ignore_index=True) if any(len(f) for f in frames) else \
        pd.DataFrame(columns=["business_date", "break_type", "break_level", "order_id", "trade_id", "broker"])


CHILDREN = {"dbt": child_dbt, "duckdb": child_duckdb, "pandas": child_pandas}


def _own_peak_rss_mb() -> float:
    """This process's high-water RSS since exec (VmHWM): ``ru_maxrss`` would carry over the parent's
    peak from before the fork, and the parent holds the sandbox and the landing work."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def run_child(kind: str, spec: dict, rss_cap_mb: float | None = None) -> dict:
    """One measured step in a fresh process: its result, wall time and its own peak RSS. With
    ``rss_cap_mb`` the child is killed when its RSS passes the cap (a shared machine's memory is not
    ours to exhaust); the result then says so."""
    with tempfile.NamedTemporaryFile("w+", suffix=".json", delete=False) as handle:
        out_path = Path(handle.name)
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, __file__, "--child", kind, json.dumps(spec), str(out_path)], cwd=REPO)
    capped = False
    while True:  # os.wait4 rather than proc.poll: the child's rusage is only available to the reaper
        pid, status, usage = os.wait4(proc.pid, 0 if not rss_cap_mb else os.WNOHANG)
        if pid:
            break
        if not capped and _rss_mb(proc.pid) > rss_cap_mb:
            proc.kill()
            capped = True
        time.sleep(0.25)
    elapsed = time.monotonic() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if capped:
        out_path.unlink(missing_ok=True)
        return {"ok": False, "capped": True, "failures": [f"killed above {rss_cap_mb:.0f} MB RSS"],
                "process_s": elapsed, "models_s": elapsed, "wall_s": elapsed, "peak_rss_mb": rss_cap_mb,
                "cpu_s": usage.ru_utime + usage.ru_stime}
    try:
        result = json.loads(out_path.read_text()) if out_path.stat().st_size else {"ok": False}
    finally:
        out_path.unlink(missing_ok=True)
    if proc.returncode != 0:
        result = {**result, "ok": False, "failures": [*result.get("failures", []), f"exit {proc.returncode}"]}
    return {**result, "process_s": elapsed, "peak_rss_mb": result.get("peak_rss_mb", usage.ru_maxrss / 1024),
            "cpu_s": usage.ru_utime + usage.ru_stime}


# --- parent: the world, the landing, the runs ----------------------------------------------------

def seed(home: Path, scale: str, seed: int, log) -> float:
    log(f"seeding the {scale} world into {home}")
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "sandbox", "seed", "--scale", scale, "--seed", str(seed),
                    "--state", str(home / "state"), "--drop", str(home / "drop"), "--truth", str(home / "truth")],
                   check=True, cwd=REPO, env={**os.environ, "NORTHSTAR_HOME": str(home / "var")})
    return round(time.monotonic() - started, 1)


def build_world(home: Path, scale: str, seed_value: int, log) -> dict:
    """Seed, serve, extract and land into ``home`` unless a landing is already there."""
    landing = home / "landing"
    if (landing / "_manifest" / "broker_files").is_dir() and (landing / "_manifest" / "salesforce").is_dir():
        log(f"reusing the landing in {landing}")
        return {"reused": True}
    from connectors.salesforce import login
    from ingest.broker_files import land_broker_files
    from ingest.salesforce import extract_salesforce
    from northstar.settings import Endpoint, Secret
    from sandbox.credentials import _random_credentials
    from sandbox.server import start_in_thread

    has_drop = (home / "drop" / "oms").is_dir()
    has_org = (home / "state" / "salesforce.db").is_file()
    if has_drop != has_org:  # never re-seed over a drop folder that may be someone else's (a link)
        raise SystemExit(f"{home} has {'a drop folder but no state/salesforce.db' if has_drop else 'an org but no drop'}:"
                         " point --home at a complete world, or use --skip-full-build")
    seconds = {"seed_s": seed(home, scale, seed_value, log) if not has_drop else 0.0}
    started = time.monotonic()
    handle = start_in_thread(home / "state", credentials=_random_credentials())
    try:
        creds = handle.credentials["salesforce"]
        endpoint = Endpoint(url=handle.salesforce_url, username=creds["username"],
                            password=Secret(creds["password"]), security_token=Secret(creds["security_token"]),
                            ca_bundle=handle.ca_cert)
        extract_salesforce(landing, run_id="bench_full", full_refresh=True, connect=lambda: login(endpoint))
    finally:
        handle.stop()
    seconds["salesforce_extract_s"] = time.monotonic() - started
    started = time.monotonic()
    land_broker_files(home / "drop", landing, run_id="bench_broker")
    seconds["broker_landing_s"] = time.monotonic() - started
    return {"reused": False, **{k: round(v, 1) for k, v in seconds.items()}}


def recon_landing(home: Path, recon_date: str | None, log) -> tuple[Path, str]:
    """One business date's trading files in their own landing: the landed partitions linked (not
    copied) when the full landing exists, else that date's drop-folder files landed by ingest."""
    landing = home / "recon" / "landing"
    source = home / "landing" / "broker"
    if (source / "internal_trades").is_dir():
        dates = sorted(p.name.split("=", 1)[1] for p in (source / "internal_trades").glob("business_date=*"))
        recon_date = recon_date or dates[-1]
        shutil.rmtree(landing, ignore_errors=True)
        for table in TRADING_TABLES:
            folder = landing / "broker" / table / f"business_date={recon_date}"
            folder.mkdir(parents=True)
            for file in (source / table / f"business_date={recon_date}").glob("*.parquet"):
                os.link(file, folder / file.name)
        return landing, recon_date
    from ingest.broker_files import land_broker_files

    drop = home / "drop"
    dates = sorted(p.stem.rsplit("_", 1)[1] for p in (drop / "oms").glob("trade_book_*.csv"))
    ymd = (recon_date or "").replace("-", "") or dates[-1]
    recon_date = f"{ymd[:4]}-{ymd[4:6]}-{ymd[6:]}"
    if (landing / "_manifest").is_dir():
        log(f"reusing the recon landing of {recon_date} in {landing}")
        return landing, recon_date
    day_drop = home / "recon" / "drop"
    shutil.rmtree(day_drop, ignore_errors=True)
    for file in [*drop.glob(f"oms/trade_book_{ymd}.csv"), *drop.glob(f"fix/*_{ymd}.fix"),
                 *drop.glob(f"prime/atlas/ATLAS_CONF_{ymd}.csv"), *drop.glob(f"prime/meridian/*_{recon_date}.csv")]:
        target = day_drop / file.relative_to(drop)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.link(file, target)
    log(f"landing the trading files of {recon_date} ({sum(1 for _ in day_drop.rglob('*.*'))} files)")
    started = time.monotonic()
    land_broker_files(day_drop, landing, run_id="bench_recon")
    log(f"landed in {time.monotonic() - started:.0f}s")
    return landing, recon_date


def _counts(warehouse: Path) -> dict:

    with northstar.warehouse.connect(read_only=True, path=warehouse) as con:
        return {name: con.execute(f"select count(*) from {relation(name)}").fetchone()[0]  # noqa: S608 - our own names
                for name in STAGING_MODELS}


def _best(runs: list[dict]) -> dict:
    best = min(runs, key=lambda r: r.get("models_s", float("inf")))
    return {**best, "peak_rss_mb": max(r["peak_rss_mb"] for r in runs), "runs_s": [round(r["models_s"], 2) for r in runs]}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="large")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--home", type=Path, default=os.environ.get("NORTHSTAR_BENCH_DBT_HOME") or None,
                        help="world + landing folder to create or reuse (default: $NORTHSTAR_BENCH_DBT_HOME, "
                             "else a temporary folder)")
    parser.add_argument("--recon-date", help="business date of the reconciliation (default: the latest)")
    parser.add_argument("--skip-full-build", action="store_true",
                        help="only the reconciliation part (then only the world's drop folder is needed: the "
                             "recon date's files are landed on their own, no Salesforce extraction)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per engine (best time, highest peak)")
    parser.add_argument("--full-build-memory-limit", default=os.environ.get("NORTHSTAR_BENCH_FULL_BUILD_MEMORY_LIMIT", "10GB"),
                        help="DuckDB memory_limit of the full build (NORTHSTAR_DUCKDB_MEMORY_LIMIT for that run; "
                             "the point-in-time feature mart's joins spill tens of GB to disk at 3GB)")
    parser.add_argument("--pandas-rss-cap-mb", type=float, default=16_000,
                        help="kill the pandas run above this RSS (its time is then a lower bound)")
    args = parser.parse_args(argv)

    home = args.home or Path(tempfile.mkdtemp(prefix="northstar-bench-dbt-"))
    home.mkdir(parents=True, exist_ok=True)

    def log(msg: str) -> None:
        print(f"  [{time.strftime('%H:%M:%S')}] {msg}", flush=True)

    load_before = os.getloadavg()[0]
    figures: dict = {"scale": args.scale, "home": str(home), "date": date.today().isoformat(),
                     "cpus": os.cpu_count(), "load_average_1m_start": round(load_before, 2)}
    failures: list[str] = []
    try:
        if not args.skip_full_build:
            figures["world"] = build_world(home, args.scale, args.seed, log)
        elif not (home / "drop" / "oms").is_dir() and not (home / "landing" / "broker").is_dir():
            figures["world"] = {"reused": False, "seed_s": seed(home, args.scale, args.seed, log)}
        else:
            figures["world"] = {"reused": True}
        # DuckDB's spill folder beside the bench's warehouses: the profile's default is relative to the
        # repository (var/warehouse/duckdb-tmp), which a checkout that never ran the demo lacks, and the
        # first model to spill then failed ("Failed to create directory").
        spill = home / "warehouse" / "duckdb-tmp"
        spill.mkdir(parents=True, exist_ok=True)
        base_env = {"DBT_SEND_ANONYMOUS_USAGE_STATS": "False", "NORTHSTAR_DBT_TARGET": "dev",
                    "NORTHSTAR_DUCKDB_TEMP_DIR": str(spill),
                    "NORTHSTAR_PII_SALT": secrets.token_hex(16)}  # a throwaway world: any secret salt

        if not args.skip_full_build:
            warehouse = home / "warehouse" / "full.duckdb"
            warehouse.parent.mkdir(parents=True, exist_ok=True)
            warehouse.unlink(missing_ok=True)
            log("full dbt build")
            warehouse.with_name(warehouse.name + ".wal").unlink(missing_ok=True)  # a killed run's log
            shutil.rmtree(warehouse.with_name(warehouse.name + ".tmp"), ignore_errors=True)  # its spill
            full = run_child("dbt", {"env": {**base_env, "NORTHSTAR_LANDING": str(home / "landing"),
                                             "NORTHSTAR_WAREHOUSE": str(warehouse),
                                             "NORTHSTAR_DUCKDB_MEMORY_LIMIT": args.full_build_memory_limit},
                                     "args": ["build"], "target": str(home / "target" / "full"),
                                     "logs": str(home / "logs")})
            figures["full_build"] = {"seconds": round(full["process_s"], 1), "nodes": full.get("nodes"),
                                     "duckdb_memory_limit": args.full_build_memory_limit,
                                     "warnings": len(full.get("warnings", [])),
                                     "peak_rss_mb": round(full["peak_rss_mb"]), "cpu_s": round(full["cpu_s"], 1)}
            if not full["ok"]:
                failures.append(f"full dbt build failed: {full.get('failures')}")
            if full.get("warnings"):
                failures.append(f"full dbt build: {len(full['warnings'])} warning(s): {full['warnings'][:3]}")

        landing, recon_date = recon_landing(home, args.recon_date, log)
        warehouse = home / "warehouse" / "recon.duckdb"
        warehouse.parent.mkdir(parents=True, exist_ok=True)
        warehouse.unlink(missing_ok=True)
        env = {**base_env, "NORTHSTAR_LANDING": str(landing), "NORTHSTAR_WAREHOUSE": str(warehouse)}
        dbt_spec = {"env": env, "target": str(home / "target" / "recon"), "logs": str(home / "logs")}
        log(f"staging the trading files of {recon_date}")
        seeded = run_child("dbt", {**dbt_spec, "args": ["seed", "--select", "recon_tolerances", "fix_security_types", "incident_rules"]})
        staged = run_child("dbt", {**dbt_spec, "args": ["run", "--select", *STAGING_MODELS, "--full-refresh"]})
        if not (staged["ok"] and seeded["ok"]):
            raise RuntimeError(f"staging failed: {staged.get('failures')} {seeded.get('failures')}")
        rows = _counts(warehouse)
        figures["recon_input"] = {"business_date": recon_date, "rows": rows, "staging_s": round(staged["process_s"], 1)}

        runs: dict[str, list[dict]] = {"dbt": [], "duckdb": [], "pandas": []}
        for attempt in range(args.repeat):
            for kind in runs:
                if kind == "pandas" and attempt > 0:  # minutes per run at scale; once is enough for >= 8x
                    continue
                log(f"reconciliation: {kind} (run {attempt + 1} of {args.repeat})")
                if kind == "dbt":
                    spec = {**dbt_spec, "args": ["run", "--full-refresh", "--select", *RECON_SELECT],
                            "count_breaks": True}
                else:
                    spec = {"warehouse": str(warehouse)}
                result = run_child(kind, spec, rss_cap_mb=args.pandas_rss_cap_mb if kind == "pandas" else None)
                if result.get("capped"):
                    log(f"pandas killed at {args.pandas_rss_cap_mb:.0f} MB RSS after {result['process_s']:.0f}s")
                elif not result["ok"]:
                    raise RuntimeError(f"{kind} reconciliation failed: {result.get('failures')}")
                runs[kind].append(result)
        best = {kind: _best(r) for kind, r in runs.items()}
        dbt_s, duck_s, pandas_s = (best[k]["models_s"] for k in ("dbt", "duckdb", "pandas"))
        figures["recon"] = {
            kind: {"seconds": round(b["models_s"], 2), "runs_s": b["runs_s"], "process_s": round(b["process_s"], 1),
                   "peak_rss_mb": round(b["peak_rss_mb"]), "cpu_s": round(b["cpu_s"], 1),
                   **({"invocation_s": round(b["wall_s"], 2)} if kind == "dbt" else {}),
                   **({"load_s": round(b["load_s"], 2)} if "load_s" in b else {})}
            for kind, b in best.items()
        }
        figures["breaks"] = best["dbt"]["breaks"]
        figures["ratios"] = {"dbt_over_duckdb": round(dbt_s / duck_s, 2), "pandas_over_dbt": round(pandas_s / dbt_s, 2),
                             "dbt_invocation_over_duckdb": round(best["dbt"]["wall_s"] / duck_s, 2)}

        pandas_capped = all(r.get("capped") for r in runs["pandas"])
        if pandas_capped:
            figures["recon"]["pandas"]["killed_at_rss_mb"] = args.pandas_rss_cap_mb
            failures.append(f"pandas did not finish under {args.pandas_rss_cap_mb:.0f} MB RSS: its time is a lower "
                            f"bound ({pandas_s:.0f}s), so pandas/dbt >= {pandas_s / dbt_s:.1f}x")
        for kind in ("duckdb", "pandas"):
            if kind == "pandas" and pandas_capped:
                continue
            if best[kind].get("breaks") != best["dbt"]["breaks"]:
                failures.append(f"{kind} found other breaks than dbt: {best[kind]['breaks']} vs {best['dbt']['breaks']}")
        if dbt_s > DBT_RATIO_TARGET * duck_s:
            failures.append(f"dbt recon {dbt_s:.2f}s is {dbt_s / duck_s:.2f}x the hand-written query "
                            f"(target <= {DBT_RATIO_TARGET}x)")
        if pandas_s < PANDAS_SPEEDUP_TARGET * dbt_s and not pandas_capped:
            failures.append(f"dbt recon only {pandas_s / dbt_s:.1f}x faster than pandas (target >= {PANDAS_SPEEDUP_TARGET}x)")
        if best["dbt"]["peak_rss_mb"] > RSS_LIMIT_MB:
            failures.append(f"dbt recon peak RSS {best['dbt']['peak_rss_mb']:.0f} MB > {RSS_LIMIT_MB} MB")
    finally:
        if args.home is None:
            shutil.rmtree(home, ignore_errors=True)

    figures["load_average_1m_end"] = round(os.getloadavg()[0], 2)
    print(json.dumps(figures, indent=2))
    recon = figures.get("recon")
    if recon:
        print(f"recon {figures['recon_input']['business_date']} ({figures['recon_input']['rows']}): "
              f"dbt {recon['dbt']['seconds']}s (invocation {recon['dbt']['invocation_s']}s), "
              f"hand-written DuckDB {recon['duckdb']['seconds']}s, pandas {recon['pandas']['seconds']}s; "
              f"dbt/duckdb {figures['ratios']['dbt_over_duckdb']}x (target <= {DBT_RATIO_TARGET}), "
              f"pandas/dbt {figures['ratios']['pandas_over_dbt']}x (target >= {PANDAS_SPEEDUP_TARGET}); "
              f"peak RSS dbt {recon['dbt']['peak_rss_mb']} MB")
    for failure in failures:
        print(f"MISSED: {failure}")
    print("bench_dbt: " + ("ok" if not failures else "TARGET MISSED"))
    return 1 if failures else 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        kind, spec, out = sys.argv[2], json.loads(sys.argv[3]), Path(sys.argv[4])
        try:
            out.write_text(json.dumps({**CHILDREN[kind](spec), "peak_rss_mb": _own_peak_rss_mb()}))
        except Exception as exc:  # noqa: BLE001 - reported to the parent as a failed step
            out.write_text(json.dumps({"ok": False, "failures": [f"{type(exc).__name__}: {exc}"]}))
            raise
        sys.exit(0)
    sys.exit(main(sys.argv[1:]))
