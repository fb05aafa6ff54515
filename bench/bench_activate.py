"""Activation throughput: Salesforce households and ServiceNow incidents pushed to the sandbox, then reruns.

Salesforce: builds an org with N household Accounts (sandbox store, its own process), a warehouse with
``fct_household_scores`` (and the push's consent, ``dim_resolved_households``) for every household
(DuckDB, generated in SQL), then times
``plan_salesforce`` + ``send_salesforce`` (Bulk API 2.0 upsert by Household_Id__c) and a no-change
rerun. Prints the API calls the client made and the server counted, rows/s, and checks the org.

ServiceNow: a break register of M open breaks (default 12,000, the demo's first intraday push), pushed
to an empty sandbox instance through the Batch API; then a change run (every 3rd break's values
change, every 6th clears: updates and resolves) and a no-change rerun. The same three runs go through
the Table API alone (``batch_size=0``, one call per write, what every send did before the Batch API)
for comparison. Prints per run the changes, the calls the client made and the server counted, the
bound ceil(changes / 100) + 5, and the time; checks one incident per break.

Exit 1 when a no-change rerun makes any API call (target: zero), anything is left unsent, a Batch API
run exceeds its call bound, or the instance holds other than one incident per break.

    python bench/bench_activate.py [--households 1000000] [--incidents 12000] [--no-table-api]
                                   [--work var/bench/activate]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import resource
import shutil
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import northstar.warehouse
from northstar.warehouse import relation

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def build_org(db: Path, households: int, no_consent_every: int) -> None:
    from sandbox.salesforce.store import SalesforceStore, format_datetime, new_id, quote, table_name
    from sandbox.world.crm import KEY_PREFIX, SCHEMA

    for suffix in ("", "-wal", "-shm"):
        Path(str(db) + suffix).unlink(missing_ok=True)
    store = SalesforceStore(db)
    for name in ("User", "Account", "Task"):
        store.define_object(name, SCHEMA[name], KEY_PREFIX[name])
    stamp = format_datetime(datetime(2026, 1, 5, tzinfo=UTC))
    advisors = max(1, households // 1000)
    store.insert_records("User", ({"Id": new_id("005", i + 1), "Username": f"a{i}@northstar.example",
                                   "LastName": f"A{i}", "IsActive": True} for i in range(advisors)))
    conn = store.connection()
    columns = ["Id", "Name", "Type", "OwnerId", "Household_Id__c", "Analytics_Consent__c", "CreatedDate",
               "LastModifiedDate", "SystemModstamp", "IsDeleted"]
    sql = (f"insert into {table_name('Account')} ({', '.join(quote(c) for c in columns)}) "  # noqa: S608 - fixed names
           f"values ({', '.join('?' for _ in columns)})")
    conn.execute("begin immediate")
    conn.executemany(sql, (
        (new_id("001", i + 1), f"Household {i}", "Household", new_id("005", i % advisors + 1), f"HH{i + 1:07d}",
         int(not no_consent_every or i % no_consent_every != 3), stamp, stamp, stamp, 0)
        for i in range(households)))
    conn.execute("commit")
    conn.execute("update _objects set next_seq = max(next_seq, ?) where name = 'Account'", (households + 1,))
    store.close()


def build_scores(warehouse: Path, households: int, no_consent_every: int, bump: float) -> None:

    con = northstar.warehouse.connect(path=warehouse)
    con.execute(f"""
        create or replace table {relation("fct_household_scores")} as
        select
            'HH' || lpad(cast(i + 1 as varchar), 7, '0') as household_id,
            '001' || lpad(cast(i + 1 as varchar), 12, '0') as account_id,
            null::varchar as advisor_id,
            {f"i % {no_consent_every} <> 3" if no_consent_every else "true"} as has_analytics_consent,
            'bench-score' as scoring_run_id,
            date '2026-10-30' as as_of_date,
            timestamp '2026-10-30 22:00:00' as scored_at,
            (500 + (hash(i) % 20000)) * {bump} as predicted_revenue_12m,
            (2500 + (hash(i * 7) % 90000)) * {bump} as clv,
            (hash(i * 3) % 1000) / 10.0 as value_percentile,
            (hash(i * 5) % 600) / 1000.0 as attrition_probability,
            ['High-Value Growth Potential', 'Core - Maintain', 'Service Efficiently', 'Core - Maintain'][1 + i % 4]
                as segment,
            'fees trailing 12m high; calls down 40%; 1 complaint in 6m' as top_drivers,
            'northstar-clv/3' as clv_model_version, 'northstar-churn/2' as churn_model_version,
            repeat('a', 32) as clv_mlflow_run_id, repeat('b', 32) as churn_mlflow_run_id,
            'dbt-bench' as dbt_invocation_id, 'bench' as feature_snapshot_hash
        from range({households}) as t(i)
    """)  # noqa: S608 - numbers only
    # the push's consent (identity's resolved households): each Account its own household, nobody opted out
    con.execute(f"""
        create or replace table {relation("dim_resolved_households")} as
        select household_id, household_id as resolved_household_id, true as is_primary_account,
            1::bigint as accounts_in_household, 2::bigint as persons, false as has_opted_out,
            has_analytics_consent, has_analytics_consent as has_push_consent
        from {relation("fct_household_scores")}
    """)  # noqa: S608 - fixed identifiers
    con.close()


def build_breaks(warehouse: Path, breaks: int, changed_every: int = 0, cleared_every: int = 0) -> None:
    """``fct_trade_breaks`` with the mart's columns: every break open, or some changed / cleared."""
    changed = f"i % {changed_every} = 1" if changed_every else "false"
    cleared = f"i % {cleared_every} = 0" if cleared_every else "false"
    con = northstar.warehouse.connect(path=warehouse)
    con.execute(f"""
        create or replace table {relation("fct_trade_breaks")} as
        with numbered as (
            select i, md5('bench-break-' || i) as break_key, {changed} as is_changed, {cleared} as is_cleared
            from range({breaks}) as t(i)
        )
        select
            break_key,
            date '2026-10-26' - cast(i % 3 as integer) as business_date,
            ['price', 'quantity', 'missing_confirm', 'commission', 'side', 'settlement_date'][1 + i % 6]
                as break_type,
            'allocation' as break_level,
            'ORD' || lpad(cast(i as varchar), 8, '0') as order_id,
            'T' || lpad(cast(i as varchar), 9, '0') as trade_id,
            case when i % 2 = 0 then 'meridian' else 'atlas' end as broker,
            ['EQUITY', 'BOND', 'FX_FWD', 'OPTION', 'ETF'][1 + i % 5] as asset_class,
            'INST' || lpad(cast(i % 997 as varchar), 4, '0') as instrument_id,
            'BA' || lpad(cast(i as varchar), 8, '0') as account_number,
            '101.25' as internal_value,
            case when is_changed then '103.00' else '101.75' end as broker_value,
            case when is_changed then 1.75 else 0.5 end as difference,
            case when is_cleared then 'cleared' else 'open' end as status,
            timestamp '2026-10-26 21:00:00' as first_seen_at,
            timestamp '2026-10-27 21:00:00' as last_seen_at,
            case when is_cleared then timestamp '2026-10-28 21:00:00' end as cleared_at,
            1 + i % 4 as age_business_days,
            'northstar-break-' || break_key as incident_correlation_id
        from numbered
    """)  # noqa: S608 - numbers only
    con.close()


def _serve(state: Path, credentials: dict, ready) -> None:
    from sandbox.server import start_in_thread

    handle = start_in_thread(state, credentials=credentials)
    ready.put((handle.salesforce_url, handle.servicenow_url, str(handle.ca_cert)))
    while True:
        time.sleep(3600)


def _start_sandbox(state: Path):
    """The sandbox servers in a spawned process over ``state`` with fresh credentials: (process,
    credentials, queue); the queue yields (salesforce_url, servicenow_url, ca_cert) once they answer."""
    from sandbox.credentials import _random_credentials

    credentials = _random_credentials()
    ctx = mp.get_context("spawn")
    ready = ctx.Queue()
    server = ctx.Process(target=_serve, args=(state, credentials, ready), daemon=True)
    server.start()
    return server, credentials, ready


def _use_home(home: Path):
    from northstar import settings as settings_module

    os.environ["NORTHSTAR_HOME"] = str(home)
    os.environ["NORTHSTAR_NO_AIRFLOW_CONNECTIONS"] = "1"
    os.environ.pop("NORTHSTAR_KILL_SWITCH", None)
    os.environ.pop("NORTHSTAR_SERVICENOW_BATCH_SIZE", None)
    settings_module.reset_cache()
    cfg = settings_module.settings()
    cfg.paths.ensure()
    return cfg


def bench_servicenow(work: Path, breaks: int, batch_size: int) -> list[str]:
    """First push, change run, no-change rerun through one API; the failures found (empty: all good)."""
    import math

    import requests

    from activate.config import SendLimits
    from activate.servicenow import plan_servicenow, send_servicenow
    from northstar.settings import Endpoint, Secret
    from sandbox.servicenow.store import ServiceNowStore

    api = "Batch API" if batch_size else "Table API"
    state = work / "state"
    state.mkdir(parents=True)
    cfg = _use_home(work / "var")
    build_breaks(cfg.paths.warehouse, breaks)
    server, credentials, ready = _start_sandbox(state)
    failures = []
    try:
        _, url, ca = ready.get(timeout=120)
        creds = credentials["servicenow"]
        endpoint = Endpoint(url=url, username=creds["username"], password=Secret(creds["password"]),
                            ca_bundle=Path(ca))
        admin = requests.Session()
        admin.trust_env, admin.verify = False, ca
        admin.auth = (creds["username"], creds["password"])
        limits = SendLimits(batch_size=batch_size)
        runs = (("first push", "sn-1", None), ("changes", "sn-2", (3, 6)), ("no-change rerun", "sn-3", None))
        for label, run_id, mutation in runs:
            if mutation:
                build_breaks(cfg.paths.warehouse, breaks, *mutation)
            admin.post(f"{url}/__sandbox/reset-stats").raise_for_status()
            t0 = time.monotonic()
            plan = plan_servicenow(run_id, cfg=cfg)
            t1 = time.monotonic()
            report = send_servicenow(run_id, cfg=cfg, endpoint=endpoint, limits=limits)
            t2 = time.monotonic()
            stats = admin.get(f"{url}/__sandbox/stats").json()
            changes = plan.enqueued["incident"]
            bound = math.ceil(changes / 100) + 5 if changes else 0
            print(f"servicenow {api}, {label}: planned {changes:,} changes "
                  f"({ {k: v for k, v in plan.enqueued.items() if k != 'incident'} }) in {t1 - t0:.1f}s; "
                  f"sent {report.sent:,} in {t2 - t1:.1f}s; API calls {report.api_calls:,} (client), "
                  f"{stats['api_calls']:,} (server; {report.detail.get('calls')}); bound ceil(changes/100)+5 = "
                  f"{bound:,}; failed {report.failed}, open {report.open_rows}", flush=True)
            if report.sent != changes or report.open_rows or report.interrupted:
                failures.append(f"servicenow {api} {label}: sent {report.sent:,} of {changes:,}")
            if batch_size and report.api_calls > bound:
                failures.append(f"servicenow {api} {label}: {report.api_calls:,} calls, above the bound {bound:,}")
            if not changes and (report.api_calls or stats["total_requests"]):
                failures.append(f"servicenow {api} {label}: {report.api_calls} API calls (target 0)")
        server.terminate()
        server.join()
        store = ServiceNowStore(state / "servicenow.db")
        total, distinct, resolved = store.connection().execute(
            "select count(*), count(distinct correlation_id), count(*) filter (where state = '6') from incident"
        ).fetchone()
        expected_resolved = len(range(0, breaks, 6))
        print(f"servicenow {api} instance check: {total:,} incidents for {distinct:,} breaks "
              f"(expected {breaks:,}), {resolved:,} resolved (expected {expected_resolved:,})", flush=True)
        if total != breaks or distinct != breaks or resolved != expected_resolved:
            failures.append(f"servicenow {api}: the instance differs from one incident per break")
    finally:
        if server.is_alive():
            server.terminate()
    return failures


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--households", type=int, default=1_000_000)
    parser.add_argument("--work", type=Path, default=REPO / "var" / "bench" / "activate")
    parser.add_argument("--no-consent-every", type=int, default=0,
                        help="every Nth household without analytics consent (0: all consented, all pushed)")
    parser.add_argument("--incidents", type=int, default=12_000,
                        help="open breaks pushed to ServiceNow (0: skip the ServiceNow runs)")
    parser.add_argument("--no-table-api", action="store_true",
                        help="skip the Table API comparison runs (one call per write)")
    args = parser.parse_args(argv)
    shutil.rmtree(args.work, ignore_errors=True)
    failures = []
    if args.households:
        failures += bench_salesforce(args)
    if args.incidents:
        for batch_size in (100,) if args.no_table_api else (100, 0):
            failures += bench_servicenow(args.work / f"servicenow-batch-{batch_size}", args.incidents, batch_size)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS (bench process): {peak:,.0f} MB; load average {os.getloadavg()[0]:.2f}")
    for failure in failures:
        print(f"MISSED: {failure}")
    return 1 if failures else 0


def bench_salesforce(args) -> list[str]:  # noqa: C901 - one linear script
    """First push and no-change rerun of N households; the failures found (empty: all good)."""
    n = args.households

    import requests

    from activate.config import SendLimits
    from activate.salesforce import plan_salesforce, send_salesforce
    from connectors.salesforce import login
    from northstar.settings import Endpoint, Secret
    from sandbox.salesforce.store import SalesforceStore

    state = args.work / "salesforce" / "state"
    state.mkdir(parents=True)
    cfg = _use_home(args.work / "salesforce" / "var")

    started = time.monotonic()
    builder = mp.get_context("spawn").Process(target=build_org, args=(state / "salesforce.db", n, args.no_consent_every))
    builder.start()
    builder.join()
    if builder.exitcode:
        return [f"building the org failed (exit {builder.exitcode})"]
    build_scores(cfg.paths.warehouse, n, args.no_consent_every, 1.0)
    print(f"setup: {n:,} Accounts + fct_household_scores in {time.monotonic() - started:.1f}s", flush=True)

    server, credentials, ready = _start_sandbox(state)
    failures = []
    try:
        url, _, ca = ready.get(timeout=120)
        creds = credentials["salesforce"]
        endpoint = Endpoint(url=url, username=creds["username"], password=Secret(creds["password"]),
                            security_token=Secret(creds["security_token"]), ca_bundle=Path(ca))
        admin = requests.Session()
        admin.trust_env, admin.verify = False, ca
        admin.auth = (creds["username"], creds["password"])

        def server_stats() -> dict:
            return admin.get(f"{url}/__sandbox/stats").json()

        limits = SendLimits()
        results = {}
        for label, run_id in (("first push", "bench-1"), ("no-change rerun", "bench-2")):
            admin.post(f"{url}/__sandbox/reset-stats").raise_for_status()
            t0 = time.monotonic()
            plan = plan_salesforce(run_id, cfg=cfg)
            t1 = time.monotonic()
            report = send_salesforce(run_id, cfg=cfg, connect=lambda: login(endpoint), limits=limits)
            t2 = time.monotonic()
            stats = server_stats()
            results[label] = (plan, report, stats)
            rate = report.sent / (t2 - t1) if report.sent and t2 > t1 else 0.0
            print(f"salesforce {label}: planned {plan.enqueued} in {t1 - t0:.1f}s; sent {report.sent:,} rows in "
                  f"{t2 - t1:.1f}s ({rate:,.0f} rows/s); API calls {report.api_calls} (client, after its login), "
                  f"{stats['total_requests']} requests / {stats['total_writes']} writes (server); "
                  f"failed {report.failed}, dead {report.dead}, open {report.open_rows}", flush=True)
        plan1, report1, _ = results["first push"]
        consented = plan1.considered - plan1.skipped_no_consent
        if report1.sent != consented or report1.open_rows:
            failures.append(f"first push sent {report1.sent:,} of {consented:,}")
        _, report2, stats2 = results["no-change rerun"]
        if report2.api_calls or stats2["total_requests"]:
            failures.append(f"no-change rerun made {report2.api_calls} API calls (target 0)")
        # the org holds what was intended: every consented household written, nobody else
        server.terminate()
        server.join()
        store = SalesforceStore(state / "salesforce.db")
        conn = store.connection()
        written, wrong_consent = conn.execute(
            'select count(*) filter (where "Segment__c" is not null), '
            'count(*) filter (where "Segment__c" is not null and not "Analytics_Consent__c") from "obj_Account"'
        ).fetchone()
        store.close()
        con = northstar.warehouse.connect(read_only=True, path=cfg.paths.warehouse)
        sample_ok = con.execute("select count(*) from activation.pushed_state").fetchall()[0][0]
        con.close()
        print(f"org check: {written:,} Accounts carry scores (expected {consented:,}), {wrong_consent} without "
              f"consent; pushed_state rows {sample_ok:,}")
        if written != consented or wrong_consent:
            failures.append("org state differs from the intended state")
    finally:
        if server.is_alive():
            server.terminate()
    return failures


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
