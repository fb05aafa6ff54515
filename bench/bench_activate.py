"""Activation throughput: push N changed households (default 1,000,000) to the sandbox org, then a rerun.

Builds an org with N household Accounts (sandbox store, its own process), a warehouse with
``main.fct_household_scores`` for every household (DuckDB, generated in SQL), then times
``plan_salesforce`` + ``send_salesforce`` (Bulk API 2.0 upsert by Household_Id__c) and a no-change
rerun. Prints the API calls the client made and the server counted, rows/s, and checks the org.
Exit 1 when the no-change rerun makes any API call (target: zero) or anything is left unsent.

    python bench/bench_activate.py [--households 1000000] [--work var/bench/activate]
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
        create or replace table main.fct_household_scores as
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
    con.close()


def _serve(state: Path, credentials: dict, ready) -> None:
    from sandbox.server import start_in_thread

    handle = start_in_thread(state, credentials=credentials)
    ready.put((handle.salesforce_url, str(handle.ca_cert)))
    while True:
        time.sleep(3600)


def main(argv: list[str]) -> int:  # noqa: C901 - one linear script
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--households", type=int, default=1_000_000)
    parser.add_argument("--work", type=Path, default=REPO / "var" / "bench" / "activate")
    parser.add_argument("--no-consent-every", type=int, default=0,
                        help="every Nth household without analytics consent (0: all consented, all pushed)")
    args = parser.parse_args(argv)
    n = args.households

    import requests

    from activate.config import SendLimits
    from activate.salesforce import plan_salesforce, send_salesforce
    from connectors.salesforce import login
    from northstar import settings as settings_module
    from northstar.settings import Endpoint, Secret
    from sandbox.credentials import _random_credentials
    from sandbox.salesforce.store import SalesforceStore

    shutil.rmtree(args.work, ignore_errors=True)
    state, home = args.work / "state", args.work / "var"
    state.mkdir(parents=True)
    os.environ["NORTHSTAR_HOME"] = str(home)
    os.environ["NORTHSTAR_NO_AIRFLOW_CONNECTIONS"] = "1"
    os.environ.pop("NORTHSTAR_KILL_SWITCH", None)
    settings_module.reset_cache()
    cfg = settings_module.settings()
    cfg.paths.ensure()

    started = time.monotonic()
    builder = mp.get_context("spawn").Process(target=build_org, args=(state / "salesforce.db", n, args.no_consent_every))
    builder.start()
    builder.join()
    if builder.exitcode:
        print(f"building the org failed (exit {builder.exitcode})")
        return 1
    build_scores(cfg.paths.warehouse, n, args.no_consent_every, 1.0)
    print(f"setup: {n:,} Accounts + fct_household_scores in {time.monotonic() - started:.1f}s", flush=True)

    credentials = _random_credentials()
    ctx = mp.get_context("spawn")
    ready = ctx.Queue()
    server = ctx.Process(target=_serve, args=(state, credentials, ready), daemon=True)
    server.start()
    failures = []
    try:
        url, ca = ready.get(timeout=120)
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
            print(f"{label}: planned {plan.enqueued} in {t1 - t0:.1f}s; sent {report.sent:,} rows in "
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
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS (bench process): {peak:,.0f} MB; load average {os.getloadavg()[0]:.2f}")
    for failure in failures:
        print(f"MISSED: {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
