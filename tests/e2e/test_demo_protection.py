"""Data protection on the demo world, judged by the values, not by the declarations.

Runs after `test_demo_flow.py` and before `test_gates_stop_the_dags.py` (file order) on the shared
demo world. The dbt governance tests check what the YAML declares; these read what the public marts,
the score tables, ServiceNow and the files on disk actually hold.
"""

from __future__ import annotations

import json
import re
import sqlite3
import stat

import pytest

import northstar.warehouse

pytestmark = pytest.mark.e2e

EMAIL = r"^[^@\s*]+@[^@\s]+\.[A-Za-z]{2,}$"  # a masked address (j***@...) does not match
PHONE = r"^\+?[0-9][0-9 ().-]{5,}[0-9]$"


def _public_columns(cfg) -> dict[str, set[str]]:
    """relation -> columns that may hold PII only masked: every public model's columns not tagged pii."""
    manifest = json.loads((cfg.paths.dbt_target_dir / "manifest.json").read_text())
    allowed: dict[str, set[str]] = {}
    for node in manifest["nodes"].values():
        if node["resource_type"] != "model" or node.get("access") != "public":
            continue
        tagged = {name.lower() for name, column in node["columns"].items()
                  if (column.get("meta") or {}).get("pii") or (column.get("config") or {}).get("meta", {}).get("pii")}
        allowed[f"{node['schema']}.{node['alias']}"] = tagged
    return allowed


def test_no_public_mart_or_score_table_holds_raw_account_numbers_emails_or_phones(demo_run):
    """Any text column of a public mart or a score table whose values are a real brokerage account
    number, an e-mail address or a phone number fails, unless the column is tagged pii (masked)."""
    public = _public_columns(demo_run)
    findings = []
    with northstar.warehouse.connect(read_only=True, cfg=demo_run) as con:
        con.execute("create temp table known_accounts as select distinct account_number "
                    "from staging.stg_salesforce__brokerage_accounts where account_number is not null")
        columns = con.execute(
            "select table_schema, table_name, column_name from information_schema.columns "
            "where data_type = 'VARCHAR' and table_schema in ('main', 'scores')").fetchall()
        scanned = 0
        for schema, table, column in columns:
            relation = f"{schema}.{table}"
            if schema == "main" and relation not in public:
                continue  # protected and private models: governed by their access, not scanned
            if column.lower() in public.get(relation, set()):
                continue  # tagged pii (masked): the masking tests own it
            scanned += 1
            quoted = f'"{column}"'
            hits = con.execute(f"""
                select
                    count(*) filter (where {quoted} in (select account_number from known_accounts)),
                    count(*) filter (where regexp_matches({quoted}, '{EMAIL}')),
                    count(*) filter (where regexp_matches({quoted}, '{PHONE}')
                                      and length(regexp_replace({quoted}, '[^0-9]', '', 'g')) >= 7)
                from {relation}
            """).fetchone()  # noqa: S608 - names from information_schema
            for kind, count in zip(("account number", "e-mail", "phone"), hits, strict=True):
                if count:
                    findings.append(f"{relation}.{column}: {count} {kind} value(s)")
    assert scanned > 20  # the scan did look at the public marts and the score tables
    assert findings == []


def test_incidents_name_accounts_masked(demo_run):
    with northstar.warehouse.connect(read_only=True, cfg=demo_run) as con:
        accounts = {r[0] for r in con.execute(
            "select distinct account_number from main.fct_trade_breaks where account_number is not null").fetchall()}
    with sqlite3.connect(demo_run.paths.sandbox_state / "servicenow.db") as sn:
        descriptions = [r[0] or "" for r in sn.execute("select description from incident").fetchall()]
    assert descriptions and accounts
    pattern = re.compile("|".join(re.escape(a) for a in sorted(accounts)))
    assert [d for d in descriptions if pattern.search(d)] == []
    assert any(re.search(r"Account: [A-Z0-9]{2}\*{4}[A-Z0-9]{4}", d) for d in descriptions)


def test_warehouse_salt_and_mlflow_store_are_private(demo_run):
    paths = demo_run.paths
    assert stat.S_IMODE(paths.warehouse.stat().st_mode) == 0o600
    assert stat.S_IMODE((paths.var / "pii-salt").stat().st_mode) == 0o600
    for folder in (paths.warehouse.parent, paths.mlflow_dir):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    salt = (paths.var / "pii-salt").read_text().strip()
    assert len(salt) >= 32 and salt != "northstar"
