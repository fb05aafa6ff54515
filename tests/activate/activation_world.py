"""Helpers for the activation tests: a private warehouse and both sandbox servers per test.

The org holds advisors (User), households (Account, with the output fields from the sandbox seed's
schema) and the Task object, defined from ``sandbox.world.crm.SCHEMA`` so the tests write to the
same fields the seeded world has. ``main.fct_household_scores`` (with ``main.dim_resolved_households``,
the push's consent) / ``main.fct_trade_breaks`` / ``main.fct_break_scores`` are built directly in the
warehouse with the marts' columns.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import requests

import northstar.warehouse
from connectors.retry import RetryPolicy
from connectors.salesforce import login
from northstar.settings import Endpoint, Secret
from sandbox.salesforce.store import SalesforceStore, new_id
from sandbox.world.crm import KEY_PREFIX, SCHEMA, SEGMENTS

N_HOUSEHOLDS = 120
N_ADVISORS = 6
SCORED_AT = datetime(2026, 10, 30, 22, 0)
AT_RISK_SEGMENT = "At-Risk Retention Priority"
FAST_RETRY = RetryPolicy(max_attempts=4, base_delay=0.0, max_delay=0.0)
OUTPUT_FIELDS = ("Value_12M__c", "CLV__c", "Value_Percentile__c", "Segment__c", "Attrition_Risk__c",
                 "Top_Drivers__c", "Model_Version__c", "Scored_At__c")


def household_id(i: int) -> str:
    return f"HH{i:07d}"


def seed_org(state: Path, n: int = N_HOUSEHOLDS) -> None:
    store = SalesforceStore(state / "salesforce.db")
    for name in ("User", "Account", "Task"):
        store.define_object(name, SCHEMA[name], KEY_PREFIX[name])
    stamp = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    users = [{"Id": new_id("005", i + 10), "Username": f"advisor{i}@northstar.example", "LastName": f"A{i}",
              "IsActive": True, "CreatedDate": stamp, "LastModifiedDate": stamp, "SystemModstamp": stamp}
             for i in range(N_ADVISORS)]
    store.insert_records("User", users)
    accounts = [{
        "Id": new_id("001", i + 1), "Name": f"Household {i}", "Type": "Household",
        "OwnerId": users[i % N_ADVISORS]["Id"], "Household_Id__c": household_id(i + 1),
        "Analytics_Consent__c": i % 10 != 3, "CreatedDate": stamp, "LastModifiedDate": stamp,
        "SystemModstamp": stamp,
    } for i in range(n)]
    store.insert_records("Account", accounts)
    store.close()


@dataclass
class Env:
    handle: object
    cfg: object
    warehouse: Path

    @property
    def store(self) -> SalesforceStore:
        return self.handle.salesforce_app.store

    def sf_connect(self):
        creds = self.handle.credentials["salesforce"]
        endpoint = Endpoint(url=self.handle.salesforce_url, username=creds["username"],
                            password=Secret(creds["password"]), security_token=Secret(creds["security_token"]),
                            ca_bundle=self.handle.ca_cert)
        return lambda: login(endpoint)

    def sn_endpoint(self) -> Endpoint:
        creds = self.handle.credentials["servicenow"]
        return Endpoint(url=self.handle.servicenow_url, username=creds["username"],
                        password=Secret(creds["password"]), ca_bundle=self.handle.ca_cert)

    def faults(self, system: str, body: dict) -> None:
        app = self.handle.salesforce_app if system == "salesforce" else self.handle.servicenow_app
        app.faults.configure(body)

    def stats(self, system: str) -> dict:
        """The server's counters over its admin endpoint, as an outside observer sees them."""
        url = self.handle.salesforce_url if system == "salesforce" else self.handle.servicenow_url
        creds = self.handle.credentials[system]
        session = requests.Session()
        session.trust_env = False
        session.verify = str(self.handle.ca_cert)
        response = session.get(f"{url}/__sandbox/stats", auth=(creds["username"], creds["password"]))
        response.raise_for_status()
        return response.json()

    def reset_stats(self) -> None:
        for app in (self.handle.salesforce_app, self.handle.servicenow_app):
            app.faults.reset_stats()

    def accounts(self) -> dict[str, dict]:
        rows = self.store.select("Account", ["Household_Id__c", "Analytics_Consent__c", *OUTPUT_FIELDS])
        return {r["Household_Id__c"]: r for r in rows}

    def tasks(self) -> list[dict]:
        return self.store.select("Task", ["Northstar_Key__c", "WhatId", "OwnerId", "Subject", "Description"])

    def db(self) -> duckdb.DuckDBPyConnection:
        return northstar.warehouse.connect(path=self.warehouse)


# --- marts -------------------------------------------------------------------------------------


def household_scores(seed: int = 1, scored_at: datetime = SCORED_AT, run: str = "score-1",
                     n: int = N_HOUSEHOLDS, clv_version: str = "northstar-clv/3") -> list[dict]:
    """Rows shaped like main.fct_household_scores (one per household, the latest scoring run)."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        revenue = float(np.round(rng.lognormal(8.5, 1.0), 4))
        rows.append({
            "household_id": household_id(i + 1),
            "account_id": new_id("001", i + 1),
            "advisor_id": new_id("005", i % N_ADVISORS + 10),
            "has_analytics_consent": i % 10 != 3,
            "scoring_run_id": run,
            "as_of_date": scored_at.date(),
            "scored_at": scored_at,
            "predicted_revenue_12m": revenue,
            "clv": revenue * float(rng.uniform(3, 9)),
            "value_percentile": float(rng.uniform(0, 100)),
            "attrition_probability": float(rng.uniform(0, 0.6)),
            "segment": SEGMENTS[int(rng.integers(0, 4))],
            "top_drivers": "fees trailing 12m high; 2 complaints in 6m; calls down 40%",
            "clv_model_version": clv_version,
            "churn_model_version": "northstar-churn/2",
            "clv_mlflow_run_id": "a" * 32,
            "churn_mlflow_run_id": "b" * 32,
            "dbt_invocation_id": "dbt-inv-0001",
            "feature_snapshot_hash": "f" * 16,
        })
    return rows


def resolved_households(rows: list[dict]) -> list[dict]:
    """Rows shaped like main.dim_resolved_households for scored ``rows``: each Account its own resolved
    household, nobody opted out, so consent is the Account's analytics consent."""
    return [{"household_id": r["household_id"], "resolved_household_id": r["household_id"], "is_primary_account": True,
             "accounts_in_household": 1, "persons": 2, "has_opted_out": False,
             "has_analytics_consent": r["has_analytics_consent"], "has_push_consent": r["has_analytics_consent"]}
            for r in rows]


def write_household_scores(warehouse: Path, rows: list[dict], resolved: list[dict] | None = None) -> None:
    """``main.fct_household_scores`` from ``rows``, and the consent the push reads with it
    (``main.dim_resolved_households``: ``resolved``, else each Account alone and nobody opted out)."""
    import polars as pl

    frame = pl.DataFrame(rows)  # noqa: F841 - read by DuckDB
    households = pl.DataFrame(resolved if resolved is not None else resolved_households(rows))  # noqa: F841
    con = northstar.warehouse.connect(path=warehouse)
    try:
        con.execute("create or replace table main.fct_household_scores as select * from frame")
        con.execute("create or replace table main.dim_resolved_households as select * from households")
    finally:
        con.close()


BREAK_TYPES = ("price", "quantity", "missing_confirm", "commission", "side", "settlement_date")
ASSET_CLASSES = ("EQUITY", "BOND", "FX_FWD", "OPTION", "ETF", "EQUITY")


def trade_breaks(n: int = 8, cleared: tuple[int, ...] = (), values: dict | None = None) -> list[dict]:
    """Rows shaped like main.fct_trade_breaks (the break register)."""
    values = values or {}
    rows = []
    first_seen = datetime(2026, 10, 26, 21, 0)
    for i in range(n):
        key = f"{i:04d}" + "c0ffee" * 4
        btype = BREAK_TYPES[i % len(BREAK_TYPES)]
        internal, broker = values.get(i, ("101.25", "101.75" if btype == "price" else "100"))
        rows.append({
            "break_key": key,
            "business_date": (first_seen - timedelta(days=i % 3)).date(),
            "break_type": btype,
            "break_level": "allocation",
            "order_id": f"ORD{i:06d}",
            "trade_id": f"T{i:07d}",
            "broker": "atlas" if i % 2 else "meridian",
            "asset_class": ASSET_CLASSES[i % len(ASSET_CLASSES)],
            "instrument_id": f"INST{i:03d}",
            "account_number": f"BA{i:08d}",
            "internal_value": internal,
            "broker_value": broker,
            "difference": float(abs(float(broker) - float(internal))) if btype in {"price", "quantity"} else 1.0,
            "status": "cleared" if i in cleared else "open",
            "first_seen_at": first_seen,
            "last_seen_at": first_seen + timedelta(days=1),
            "cleared_at": first_seen + timedelta(days=2) if i in cleared else None,
            "age_business_days": 1 + i % 4,
            "incident_correlation_id": f"northstar-break-{key}",
        })
    return rows


def write_breaks(warehouse: Path, rows: list[dict], scores: list[dict] | None = None) -> None:
    import polars as pl

    frame = pl.DataFrame(rows, infer_schema_length=None)  # noqa: F841 - read by DuckDB
    con = northstar.warehouse.connect(path=warehouse)
    try:
        con.execute("create or replace table main.fct_trade_breaks as select * from frame")
        if scores is not None:
            sframe = pl.DataFrame(scores)  # noqa: F841 - read by DuckDB
            con.execute("create or replace table main.fct_break_scores as select * from sframe")
    finally:
        con.close()


def break_scores(rows: list[dict], scored_at: datetime = SCORED_AT) -> list[dict]:
    out = []
    for rank, row in enumerate(rows, start=1):
        out.append({"scoring_run_id": "anomaly-1", "scored_at": scored_at, "break_key": row["break_key"],
                    "anomaly_score": round(1.0 - rank / (len(rows) + 1), 3), "anomaly_rank": rank,
                    "model_version": "northstar-break-anomaly/2", "mlflow_run_id": "c" * 32,
                    "notional_usd": 250_000.0 * rank})
    return out


def dumps(value) -> str:
    return json.dumps(value, default=str, sort_keys=True)
