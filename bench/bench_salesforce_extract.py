"""Salesforce extraction throughput on a ``large``-tier org: 1,000,000 Accounts plus related records.

Builds the org directly through the sandbox store API (cached under ``var/bench/salesforce_large``
so later runs skip it), serves it from a separate process (so the figures below are the
extractor's own), runs a full extraction and prints rows/s per object and the peak RSS.

    python bench/bench_salesforce_extract.py [--accounts 1000000] [--contacts-per-account 1]

``--state DIR`` extracts a seeded world's org instead (the ``state/`` folder of ``python -m sandbox
seed --scale large``, e.g. bench_dbt's ``--home``): every object of the contract (Account, Contact,
Case, Task, Event, Opportunity, User, Brokerage_Account__c), served from that store as it is, into
``--work``/landing.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

OBJECTS = ("User", "Account", "Contact")


def build_org(db: Path, accounts: int, contacts_per_account: int) -> None:
    """Define the contract's CRM schema and insert synthetic households, advisors and contacts."""
    import numpy as np

    from sandbox.salesforce.store import SalesforceStore, format_datetime, new_id
    from sandbox.world.crm import KEY_PREFIX, SCHEMA

    for suffix in ("", "-wal", "-shm"):
        Path(str(db) + suffix).unlink(missing_ok=True)
    store = SalesforceStore(db)
    for name, fields in SCHEMA.items():
        store.define_object(name, fields, KEY_PREFIX[name])
    rng = np.random.default_rng(7)
    base = datetime(2026, 10, 30, tzinfo=UTC)
    advisors = max(1, accounts // 1000)
    user_ids = [new_id(KEY_PREFIX["User"], i + 1) for i in range(advisors)]
    store.insert_records("User", (
        {"Id": uid, "Username": f"advisor{i}@northstar.example", "LastName": f"Advisor{i}",
         "IsActive": True, "Region__c": "Northeast"}
        for i, uid in enumerate(user_ids)
    ))
    states = ["NY", "MA", "CA", "TX", "FL", "IL"]
    bands = ["<250K", "250K-1M", "1M-5M", "5M-25M", "25M+"]
    stamps_s = rng.integers(0, 5 * 365 * 86400, size=accounts)
    fees = rng.uniform(25, 120, size=accounts).round(1)

    def account_rows():
        for i in range(accounts):
            stamp = format_datetime(base - timedelta(seconds=int(stamps_s[i])))
            yield {
                "Id": new_id(KEY_PREFIX["Account"], i + 1), "Name": f"Household {i:07d}", "Type": "Household",
                "OwnerId": user_ids[i % advisors], "Household_Id__c": f"HH{i + 1:07d}",
                "AUM_Band__c": bands[i % 5], "Fee_Schedule_Bps__c": float(fees[i]),
                "Client_Since__c": f"{2010 + i % 16}-0{1 + i % 9}-1{i % 10}", "Risk_Profile__c": "Balanced",
                "Marketing_Consent__c": i % 3 == 0, "Analytics_Consent__c": i % 7 != 0,
                "BillingState": states[i % 6], "CreatedDate": stamp, "LastModifiedDate": stamp,
                "SystemModstamp": stamp, "IsDeleted": i % 500 == 0,
            }

    store.insert_records("Account", account_rows())

    def contact_rows():
        n = 0
        for i in range(accounts):
            for j in range(contacts_per_account):
                n += 1
                stamp = format_datetime(base - timedelta(seconds=int(stamps_s[i]) + j))
                yield {
                    "Id": new_id(KEY_PREFIX["Contact"], n), "AccountId": new_id(KEY_PREFIX["Account"], i + 1),
                    "FirstName": "Alex", "LastName": f"Client{n:07d}", "Email": f"c{n}@example.com",
                    "Phone": "+1 212 555 0100", "Birthdate": "1960-05-17", "MailingState": states[n % 6],
                    "Is_Primary__c": j == 0, "CreatedDate": stamp, "LastModifiedDate": stamp,
                    "SystemModstamp": stamp,
                }

    if contacts_per_account:
        store.insert_records("Contact", contact_rows())
    store.close()


def _serve(state: Path, credentials: dict, ready) -> None:
    from sandbox.server import start_in_thread

    handle = start_in_thread(state, credentials=credentials)
    ready.put((handle.salesforce_url, str(handle.ca_cert)))
    while True:
        time.sleep(3600)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=1_000_000)
    parser.add_argument("--contacts-per-account", type=int, default=1)
    parser.add_argument("--work", type=Path, default=REPO / "var" / "bench" / "salesforce_large")
    parser.add_argument("--state", type=Path, help="extract this seeded org (a sandbox state folder) instead")
    args = parser.parse_args(argv)

    import shutil

    from connectors.salesforce import login
    from ingest.salesforce import ExtractConfig, extract_salesforce
    from ingest.salesforce.extract import DEFAULT_OBJECTS
    from northstar.settings import Endpoint, Secret
    from sandbox.credentials import _random_credentials
    from sandbox.salesforce.store import SalesforceStore

    objects = DEFAULT_OBJECTS if args.state else OBJECTS
    state = args.state or args.work / "state"
    state.mkdir(parents=True, exist_ok=True)
    db = state / "salesforce.db"
    marker = state / f"built-{args.accounts}-{args.contacts_per_account}"
    if not args.state and not marker.exists():
        started = time.monotonic()
        # In a child process, so the peak RSS printed below is the extraction's alone.
        builder = mp.get_context("spawn").Process(
            target=build_org, args=(db, args.accounts, args.contacts_per_account)
        )
        builder.start()
        builder.join()
        if builder.exitcode != 0:
            print(f"building the org failed (exit {builder.exitcode})")
            return 1
        marker.touch()
        print(f"built org: {args.accounts:,} Accounts, {args.accounts * args.contacts_per_account:,} Contacts "
              f"in {time.monotonic() - started:.1f}s", flush=True)
    store = SalesforceStore(db)
    expected = {name: store.count(name, include_deleted=True) for name in objects}
    store.close()

    credentials = _random_credentials()
    ctx = mp.get_context("spawn")
    ready = ctx.Queue()
    server = ctx.Process(target=_serve, args=(state, credentials, ready), daemon=True)
    server.start()
    try:
        url, ca = ready.get(timeout=120)
        creds = credentials["salesforce"]
        endpoint = Endpoint(url=url, username=creds["username"], password=Secret(creds["password"]),
                            security_token=Secret(creds["security_token"]), ca_bundle=Path(ca))
        landing = args.work / "landing"
        shutil.rmtree(landing, ignore_errors=True)
        config = ExtractConfig(objects=objects, bulk_poll_wait=0.2)
        started = time.monotonic()
        report = extract_salesforce(landing, config=config, connect=lambda: login(endpoint))
        elapsed = time.monotonic() - started
    finally:
        server.terminate()
        server.join(timeout=10)

    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    total = 0
    print(f"{'object':<22} {'api':<6} {'rows':>10} {'seconds':>8} {'rows/s':>9}")
    for name, result in report.objects.items():
        total += result.rows
        rate = result.rows / result.duration_s if result.duration_s else 0
        print(f"{name:<22} {result.api or '-':<6} {result.rows:>10,} {result.duration_s:>8.1f} {rate:>9,.0f}")
        if result.status != "ok" or result.rows != expected[name]:
            print(f"  MISMATCH {name}: status={result.status} rows={result.rows} expected={expected[name]} "
                  f"error={result.error}")
    print(f"total: {total:,} rows in {elapsed:.1f}s = {total / elapsed:,.0f} rows/s; "
          f"peak RSS of the extractor: {peak_mb:,.0f} MB")
    ok = report.ok and all(report.objects[n].rows == expected[n] for n in objects)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
