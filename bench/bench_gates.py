"""The quality gates: wall time of each gate (landing, marts, scores) on a world of a given scale.

1. **World and landing** (reused with ``--home DIR``, the same layout as ``bench_dbt.py``): ``sandbox
   seed`` at ``--scale``, the sandbox Salesforce org served in-process, ``ingest.salesforce`` and
   ``ingest.broker_files`` into ``DIR/landing`` (``bench_dbt.build_world``).
2. **Warehouse** ``DIR/warehouse/gates.duckdb``: reused if present, else a copy of bench_dbt's
   ``full.duckdb`` if that exists, else ``dbt build --selector nightly_all``. Two scoring runs are
   written to ``scores.household_scores`` (synthetic, from ``dim_households``) when the table has
   none, so the scores gate runs its shift checks against a baseline.
3. **Gates**, each timed as ``run_gate`` from call to return (GX imported beforehand; Data Docs
   built, results written): ``landing`` over everything the world landed, ``marts`` (both domains)
   at the world's logical time, ``scores`` on the newer scoring run against the older one.

4. **Replicated** (``--replicate K``): the marts and scores of that warehouse copied ``K`` times
   into ``DIR/warehouse/gates_xK.duckdb`` (keys suffixed, so they stay unique; households ``K``
   times as many), and the marts and scores gates timed again on it. ``--scale demo --replicate 50``
   has the row counts of ``large`` (1M households, 42M household months, 33M feature rows, 25M
   trade-book rows over 5 days) without seeding, extracting and building the large world.

Target (exit 1 when missed): the marts gate under ``--marts-budget-s`` (60 s); on the replicated
warehouse, the slower of the two gates the DAGs run (nightly: ``domains=["customer"]``; intraday:
``domains=["trading"]`` for the day), with both domains at once reported beside them. A failing gate is reported (the figures say which expectations
failed) but is not a missed target.
``python bench/bench_gates.py [--scale large] [--seed 7] [--home DIR] [--replicate K] [--marts-budget-s 60]``;
without ``--home`` the world goes to a temporary folder that is removed afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import northstar.warehouse
from northstar.warehouse import relation, render

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

SCORES_DDL = """
create schema if not exists scores;
create table if not exists scores.household_scores (
    scoring_run_id varchar, as_of_date date, scored_at timestamp, household_id varchar,
    predicted_revenue_12m double, clv double, value_percentile double, attrition_probability double,
    segment varchar, top_drivers varchar, clv_model_version varchar, churn_model_version varchar,
    clv_mlflow_run_id varchar, churn_mlflow_run_id varchar, dbt_invocation_id varchar, feature_snapshot_hash varchar,
)
"""

SYNTHETIC_RUN = """
insert into scores.household_scores
with scored as (
    select household_id, exp(9 + 2 * random()) as clv, random() * 0.4 as attrition_probability
    from {dim_households}
),
ranked as (
    select *, percent_rank() over (order by clv) * 100 as value_percentile from scored
)
select
    ? as scoring_run_id, ?::date as as_of_date, ?::timestamp as scored_at, household_id,
    clv / 8 as predicted_revenue_12m, clv, value_percentile, attrition_probability,
    case
        when attrition_probability > 0.3 then 'At-Risk Retention Priority'
        when value_percentile >= 75 then 'High-Value Growth Potential'
        when value_percentile >= 35 then 'Core - Maintain'
        else 'Service Efficiently'
    end as segment,
    'aum growth 12m; calls 90d; tenure' as top_drivers,
    'northstar-clv/bench' as clv_model_version, 'northstar-churn/bench' as churn_model_version,
    'bench' as clv_mlflow_run_id, 'bench' as churn_mlflow_run_id, 'bench' as dbt_invocation_id,
    'bench' as feature_snapshot_hash,
from ranked
"""


def _settings(home: Path, warehouse: Path):
    from northstar.settings import load_settings

    os.environ.update({"NORTHSTAR_HOME": str(home / "var"), "NORTHSTAR_LANDING": str(home / "landing"),
                       "NORTHSTAR_WAREHOUSE": str(warehouse)})
    cfg = load_settings()
    cfg.paths.ensure()
    return cfg


def _warehouse(home: Path, cfg, log) -> None:
    warehouse = cfg.paths.warehouse
    if warehouse.exists():
        log(f"reusing the warehouse {warehouse}")
        return
    full = home / "warehouse" / "full.duckdb"
    if full.exists():
        log(f"copying bench_dbt's warehouse {full}")
        shutil.copyfile(full, warehouse)
        return
    from northstar.dbt import run_dbt

    log("dbt build --selector nightly_all")
    started = time.monotonic()
    run_dbt("build", ["--selector", "nightly_all"], cfg=cfg)
    northstar.warehouse.release_dbt_handles()
    log(f"dbt build: {time.monotonic() - started:.0f}s")


def _scoring_runs(cfg, log) -> tuple[str, str, str]:
    """(baseline run, current run, the world's logical time) — synthetic runs only when none exist."""

    with northstar.warehouse.connect(path=cfg.paths.warehouse) as con:
        month_end = con.execute(render("select max(month_end_on) from {fct_household_months}")).fetchone()[0]
        as_of = f"{month_end.isoformat()}T23:00:00"
        con.execute(SCORES_DDL)
        runs = [r for (r,) in con.execute(
            "select scoring_run_id from scores.household_scores group by 1 order by max(scored_at) desc limit 2"
        ).fetchall()]
        if len(runs) < 2:
            log("writing two synthetic scoring runs")
            con.execute("select setseed(0.7)")
            for run, day in (("bench_score_a", f"{month_end}T02:00:00"), ("bench_score_b", f"{month_end}T03:00:00")):
                con.execute(render(SYNTHETIC_RUN), [run, month_end, day])
            runs = ["bench_score_b", "bench_score_a"]
    return runs[1], runs[0], as_of


# table (its dbt name) -> the columns suffixed with the copy number (keys, and household_id so references hold)
REPLICATED = {
    "dim_households": ["household_id"],
    "dim_advisors": None,
    "fct_household_months": ["household_id", "household_month_id"],
    "fct_household_features": ["household_id", "feature_key"],
    "fct_interactions": ["household_id", "interaction_id"],
    "fct_internal_executions": ["trade_record_id", "trade_id"],
    "fct_broker_executions": ["execution_id"],
    "fct_prime_broker_confirms": ["confirm_id"],
    "fct_trade_matches": ["match_key"],
    "fct_trade_breaks": ["break_key"],
    "fct_recon_summary": None,
    "stg_salesforce__accounts": None,
    "household_scores": ["household_id"],
}


def _replicate(source: Path, target: Path, copies: int, log) -> None:

    if target.exists():
        log(f"reusing the replicated warehouse {target}")
        return
    log(f"replicating the marts x{copies} into {target}")
    started = time.monotonic()
    partial = target.with_suffix(".partial")
    partial.unlink(missing_ok=True)
    with northstar.warehouse.connect(path=partial) as con:
        con.execute("set preserve_insertion_order = false")
        con.execute(f"attach '{source}' as source (read_only)")
        for name, keys in REPLICATED.items():
            table = relation(name)
            schema = table.split(".")[0]
            con.execute(f"create schema if not exists {schema}")
            columns = [row[0] for row in con.execute(f"describe source.{table}").fetchall()]
            exprs = [f"{c} || '_' || copy.range::varchar as {c}" if keys and c in keys else c for c in columns]
            con.execute(f"create table {table} as select {', '.join(exprs)} from source.{table} "  # noqa: S608
                        f"cross join range({copies if keys else 1}) as copy")
    partial.rename(target)
    log(f"replicated in {time.monotonic() - started:.0f}s")


def _time_gate(gate: str, run_id: str, cfg, **context) -> dict:
    from expectations import run_gate

    started = time.monotonic()
    report = run_gate(gate, run_id, cfg=cfg, raise_on_failure=False, **context)
    seconds = time.monotonic() - started
    print(f"  {gate} ({run_id}): {seconds:.1f}s, {len(report.outcomes)} expectations, "
          f"{'passed' if report.success else 'FAILED'}", flush=True)
    return {
        "seconds": round(seconds, 1),
        "expectations": len(report.outcomes),
        "passed": report.success,
        "critical_failures": [o.expectation for o in report.critical_failures],
        "warnings": [o.expectation for o in report.warnings],
        "slowest_datasets_s": dict(sorted(report.dataset_seconds.items(), key=lambda kv: -kv[1])[:5]),
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="large")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--home", type=Path, help="world + landing + warehouse folder to create or reuse")
    parser.add_argument("--replicate", type=int, default=0, help="also time marts + scores on the marts copied K times")
    parser.add_argument("--marts-budget-s", type=float, default=60.0)
    args = parser.parse_args(argv)

    def log(msg: str) -> None:
        print(f"  {msg}", flush=True)

    from bench.bench_dbt import build_world

    home = args.home or Path(tempfile.mkdtemp(prefix="northstar-gates-"))
    home.mkdir(parents=True, exist_ok=True)
    try:
        build_world(home, args.scale, args.seed, log)
        (home / "warehouse").mkdir(parents=True, exist_ok=True)
        cfg = _settings(home, home / "warehouse" / "gates.duckdb")
        _warehouse(home, cfg, log)
        baseline, current, as_of = _scoring_runs(cfg, log)

        import great_expectations  # noqa: F401 - import time is not a gate's time

        from expectations import run_gate

        # the baseline's own gate run makes it the "last pushed run" (untimed)
        run_gate("scores", f"bench__{baseline}", cfg=cfg, scoring_run_id=baseline, kinds=["household"],
                 raise_on_failure=False, build_docs=False)
        figures: dict = {"scale": args.scale, "gates": {}}
        figures["gates"]["landing"] = _time_gate("landing", "bench__landing", cfg, ingest_run_ids="all")
        figures["gates"]["marts"] = _time_gate("marts", "bench__marts", cfg, as_of=as_of)
        figures["gates"]["scores"] = _time_gate("scores", "bench__scores", cfg, scoring_run_id=current,
                                                kinds=["household"])
        marts = figures["gates"]["marts"]["seconds"]
        if args.replicate > 1:
            replicated = home / "warehouse" / f"gates_x{args.replicate}.duckdb"
            _replicate(cfg.paths.warehouse, replicated, args.replicate, log)
            rcfg = _settings(home, replicated)
            key = f"x{args.replicate}"
            figures[key] = {
                "marts_customer": _time_gate("marts", f"bench__{key}_customer", rcfg, as_of=as_of, domains=["customer"]),
                "marts_trading_day": _time_gate("marts", f"bench__{key}_trading", rcfg, as_of=as_of, domains=["trading"]),
                "marts": _time_gate("marts", f"bench__{key}_marts", rcfg, as_of=as_of),
                "scores": _time_gate("scores", f"bench__{key}_scores", rcfg, scoring_run_id=current,
                                     baseline_scoring_run_id=baseline, kinds=["household"]),
            }
            # each DAG runs its own domain: the nightly gate the customer marts, the intraday one the day's trades
            marts = max(figures[key]["marts_customer"]["seconds"], figures[key]["marts_trading_day"]["seconds"])
        figures["load_average_1m"] = round(os.getloadavg()[0], 2)
        figures["data_docs"] = str(cfg.paths.gx_root / "data_docs" / "index.html")
        print(json.dumps(figures, indent=2))
        ok = marts <= args.marts_budget_s
        print(f"gates[{args.scale}{f' x{args.replicate}' if args.replicate > 1 else ''}]: marts {marts:.1f}s "
              f"-> {'within' if ok else 'OVER'} {args.marts_budget_s:.0f}s")
        return 0 if ok else 1
    finally:
        if args.home is None:
            shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
