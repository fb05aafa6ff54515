"""The dashboard's warehouse snapshot: the few KPI tables copied out of the warehouse in one short read.

The pipeline's writers hold DuckDB's single write lock, and a BI server that kept the warehouse open
would block them. So the dashboard never reads the warehouse while it is served: ``take_snapshot``
opens it read-only (inside the one-slot Airflow ``warehouse`` pool, like every other reader that
must see a consistent state), copies what the pages show into ``var/dashboard/snapshot.duckdb`` and
lets go. It also copies what the warehouse does not hold yet: quarantined rows and the incidents read
back from ServiceNow (landing Parquet) and the model registry's versions, aliases and holdout metrics
(MLflow). The dashboard app (``dashboard.app``) reads that file alone, and picks up a new snapshot on
the next page load: the swap is one atomic rename.

Each table is as small as its charts need (aggregates where the page shows aggregates); the
household scores are copied row by row because the pages compute medians and distributions.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import northstar.warehouse
from northstar.settings import Settings, settings

log = logging.getLogger(__name__)

SNAPSHOT_FILE = "snapshot.duckdb"

# Open breaks are bucketed by age in business days the way the ops desk escalates: 0–1, 1–3, 3–5 and
# more than 5 (an age of exactly 1, 3 or 5 falls in the lower bucket).
# Every copy is `create table <name> as <select over the warehouse>`; a missing source table
# (a world that has not run the nightly yet) leaves an empty table of the same shape instead.
# `{<table>}` is a warehouse table by its dbt name, resolved by the seam: in the attached warehouse file
# `wh` on DuckDB, in the engine's tables copied into this connection on Spark (`wh` is then the control
# store alone: outbox, gate results).
WAREHOUSE_COPIES: dict[str, str] = {
    "recon_daily": """
        select business_date, broker, items_compared, items_matched, match_rate, open_breaks
        from {fct_recon_summary}
    """,
    "open_breaks": """
        select
            b.break_key, b.business_date, b.break_type, b.break_level, b.broker, b.asset_class,
            b.instrument_id, b.age_business_days, case
                when age_business_days <= 1 then '0–1 days'
                when age_business_days <= 3 then '1–3 days'
                when age_business_days <= 5 then '3–5 days'
                else '>5 days'
            end as age_bucket,
            b.first_seen_at, b.last_seen_at, s.anomaly_score, case
                when s.anomaly_score is null then 'not scored'
                when s.anomaly_score < 0.2 then '0.0–0.2'
                when s.anomaly_score < 0.4 then '0.2–0.4'
                when s.anomaly_score < 0.6 then '0.4–0.6'
                when s.anomaly_score < 0.8 then '0.6–0.8'
                else '0.8–1.0'
            end as anomaly_band,
            s.notional_usd, p.external_number as incident_number
        from {fct_trade_breaks} as b
        left join {fct_break_scores} as s on s.break_key = b.break_key
        left join wh.activation.pushed_state as p
            on p.target = 'servicenow' and p.record_key = b.break_key
        where b.cleared_at is null
    """,
    "break_flow": """
        with opened as (
            select first_seen_at as run_at, count(*) as breaks_opened
            from {fct_trade_breaks} group by all
        ),
        resolved as (
            select cleared_at as run_at, count(*) as breaks_resolved
            from {fct_trade_breaks} where cleared_at is not null group by all
        ),
        final as (
            select
                coalesce(o.run_at, r.run_at) as run_at,
                coalesce(o.breaks_opened, 0) as breaks_opened,
                coalesce(r.breaks_resolved, 0) as breaks_resolved,
            from opened as o full outer join resolved as r on o.run_at = r.run_at
        )
        select * from final order by run_at
    """,
    "break_register": """
        select break_key, break_type, broker, first_seen_at, cleared_at, incident_correlation_id
        from {fct_trade_breaks}
    """,
    "household_scores": """
        select
            household_id, segment, clv, predicted_revenue_12m, attrition_probability, value_percentile,
            top_drivers, has_analytics_consent, scoring_run_id, scored_at, as_of_date,
            clv_model_version, churn_model_version
        from {fct_household_scores}
    """,
    "segment_transitions": """
        with runs as (
            select scoring_run_id, scored_at,
                row_number() over (order by scored_at desc, scoring_run_id desc) as recency
            from {scoring_runs} where kind = 'household'
        ),
        latest as (
            select h.household_id, h.segment from {household_scores} as h
            join runs on runs.scoring_run_id = h.scoring_run_id and runs.recency = 1
        ),
        previous as (
            select h.household_id, h.segment from {household_scores} as h
            join runs on runs.scoring_run_id = h.scoring_run_id and runs.recency = 2
        ),
        final as (
            select
                coalesce(p.segment, '(not scored before)') as previous_segment,
                l.segment as current_segment,
                count(*) as households,
            from latest as l left join previous as p on p.household_id = l.household_id
            group by all
        )
        select * from final
    """,
    "scoring_runs": """
        select scoring_run_id, kind, scored_at, as_of_date, rows, model_versions, needs_retraining
        from {scoring_runs}
    """,
    "salesforce_push": """
        select status, count(*) as outbox_rows, count(distinct record_key) as households,
            max(updated_at) as last_updated_at
        from wh.activation.outbox where target = 'salesforce'
        group by all
    """,
    "salesforce_pushed_households": """
        select count(distinct record_key) as households, max(pushed_at) as last_pushed_at
        from wh.activation.pushed_state where target = 'salesforce'
    """,
    "model_drift": """
        select d.scoring_run_id, r.scored_at, d.model, d.kind, d.name, d.psi, d.status
        from {model_drift} as d
        left join {scoring_runs} as r on r.scoring_run_id = d.scoring_run_id
    """,
    "gate_results": """
        select run_id, gate, expectation, severity, success, observed_value, details, validated_at
        from wh.quality.gate_results
    """,
}

# What the warehouse does not hold: read from the landing folder next to it.
LANDING_COPIES: dict[str, tuple[str, str]] = {
    # table: (glob under the landing folder, select over `src`)
    "quarantine": (
        "quarantine/**/*.parquet",
        "select source, reason_code, count(*) as rows_quarantined, max(quarantined_at) as last_quarantined_at "
        "from src group by all",
    ),
    "incident_resolutions": (
        "servicenow/incidents/*.parquet",
        "select break_key, number as incident_number, state, close_code, resolved_at from src",
    ),
}


@dataclass(frozen=True)
class SnapshotReport:
    path: Path
    tables: dict[str, int]
    seconds_in_warehouse: float
    seconds_total: float
    taken_at: str

    def as_dict(self) -> dict:
        return {"path": str(self.path), "tables": self.tables, "seconds_in_warehouse": round(self.seconds_in_warehouse, 2),
                "seconds_total": round(self.seconds_total, 2), "taken_at": self.taken_at}


def dashboard_dir(cfg: Settings | None = None) -> Path:
    cfg = cfg or settings()
    return cfg.paths.var / "dashboard"


def snapshot_path(cfg: Settings | None = None) -> Path:
    return dashboard_dir(cfg) / SNAPSHOT_FILE


def _attach_warehouse(con, warehouse: Path, attempts: int = 30) -> None:
    import duckdb

    for attempt in range(attempts):
        try:
            con.execute(f"attach '{warehouse}' as wh (read_only)")
            return
        except duckdb.IOException as exc:  # a writer outside the pool holds the lock: wait for it
            if attempt == attempts - 1:
                raise
            log.warning("warehouse busy (%s); retrying the snapshot read", exc)
            time.sleep(2)


def _table_exists(con, catalog: str, schema: str, table: str) -> bool:
    return bool(con.execute(
        "select count(*) from duckdb_tables() where database_name = ? and schema_name = ? and table_name = ?",
        [catalog, schema, table]).fetchone()[0] or con.execute(
        "select count(*) from duckdb_views() where database_name = ? and schema_name = ? and view_name = ?",
        [catalog, schema, table]).fetchone()[0])


def _sources_present(con, sql: str) -> bool:
    import re

    databases = "|".join(("wh", northstar.warehouse.ENGINE_DATABASE))
    for catalog, schema, table in re.findall(rf"\b({databases})\.(\w+)\.(\w+)\b", sql):
        if not _table_exists(con, catalog, schema, table):
            return False
    return True


def take_snapshot(cfg: Settings | None = None, run_id: str | None = None) -> SnapshotReport:
    """Copy the KPI tables into a fresh snapshot file and swap it in; hold the warehouse only to read.

    Writes ``<var>/dashboard/snapshot.duckdb`` atomically (a reader never sees half a snapshot).
    A warehouse that lacks a table yet (no nightly run so far) leaves that table empty: every page
    still builds and says there is nothing to show.
    """

    cfg = cfg or settings()
    folder = dashboard_dir(cfg)
    folder.mkdir(parents=True, exist_ok=True)
    target = snapshot_path(cfg)
    partial = folder / f".{SNAPSHOT_FILE}.{os.getpid()}.partial"
    partial.unlink(missing_ok=True)
    started = time.monotonic()
    taken_at = datetime.now(UTC).replace(tzinfo=None)
    counts: dict[str, int] = {}
    with northstar.warehouse.connect(cfg=cfg, path=partial) as con:  # the one seam: memory and temp from settings
        # The warehouse is read under the pool; everything else (MLflow, Parquet) after letting go.
        _attach_warehouse(con, cfg.paths.warehouse)
        database = "wh"
        try:
            # the engine's tables: in `wh` itself on DuckDB, copied in from Spark
            database = northstar.warehouse.warehouse_tables_in(con, _warehouse_tables(), cfg) or "wh"
            for table, sql in WAREHOUSE_COPIES.items():
                sql = northstar.warehouse.render(sql, database=database)
                if _sources_present(con, sql):
                    con.execute(f"create table {table} as {sql}")  # noqa: S608 - fixed SQL above
                else:
                    log.info("snapshot: %s has no source in the warehouse yet; left empty", table)
            as_of = _warehouse_as_of(con, database)
        finally:
            con.execute("detach wh")
            if database != "wh":
                con.execute(f"detach {database}")
        in_warehouse = time.monotonic() - started
        _create_missing_empty(con)
        for table, (pattern, sql) in LANDING_COPIES.items():
            _copy_landing(con, table, cfg.paths.landing, pattern, sql)
        _copy_model_registry(con, cfg)
        con.execute("""
            create or replace table snapshot_info as
            select ?::timestamp as snapshot_taken_at, ?::varchar as pipeline_run_id,
                ?::date as trades_as_of, ?::timestamp as scores_as_of, ?::timestamp as gates_as_of,
                ?::timestamp as pushes_as_of
        """, [taken_at, run_id or "manual", *as_of])
        for (table,) in con.execute("select table_name from duckdb_tables() where schema_name = 'main'").fetchall():
            counts[table] = con.execute(f'select count(*) from "{table}"').fetchone()[0]  # noqa: S608
        con.execute("checkpoint")
    os.replace(partial, target)
    total = time.monotonic() - started
    log.info("dashboard snapshot %s: %d tables, warehouse held %.1fs, %.1fs in all",
             target, len(counts), in_warehouse, total)
    return SnapshotReport(target, counts, in_warehouse, total, taken_at.isoformat(timespec="seconds"))


def _warehouse_tables() -> list[str]:
    """The registered tables the copies read."""
    named = {name for sql in WAREHOUSE_COPIES.values() for name in re.findall(r"\{([a-z][a-z0-9_]*)\}", sql)}
    return sorted((named | {"fct_recon_summary", "scoring_runs"}) & set(northstar.warehouse.TABLES))


def _warehouse_as_of(con, database: str = "wh") -> tuple:
    """The data's own as-of times: latest business date, scoring run, gate run and push."""
    def one(sql: str, source: str):
        schema, table = source.split(".")
        return con.execute(sql).fetchone()[0] if _table_exists(con, "wh", schema, table) else None

    def latest(column: str, table: str):
        sql = f"select max({column}) from {northstar.warehouse.relation(table, database=database)}"  # noqa: S608
        return con.execute(sql).fetchone()[0] if northstar.warehouse.table_exists(con, table, database=database) else None

    return (
        latest("business_date", "fct_recon_summary"),
        latest("scored_at", "scoring_runs"),
        one("select max(validated_at) from wh.quality.gate_results", "quality.gate_results"),
        one("select max(pushed_at) from wh.activation.pushed_state", "activation.pushed_state"),
    )


# Shapes of the copies, for a warehouse that has not produced a table yet.
EMPTY_SHAPES: dict[str, str] = {
    "recon_daily": "business_date date, broker varchar, items_compared bigint, items_matched bigint, "
                   "match_rate double, open_breaks bigint",
    "open_breaks": "break_key varchar, business_date date, break_type varchar, break_level varchar, broker varchar, "
                   "asset_class varchar, instrument_id varchar, age_business_days integer, age_bucket varchar, "
                   "first_seen_at timestamp, last_seen_at timestamp, anomaly_score double, anomaly_band varchar, "
                   "notional_usd double, incident_number varchar",
    "break_flow": "run_at timestamp, breaks_opened bigint, breaks_resolved bigint",
    "break_register": "break_key varchar, break_type varchar, broker varchar, first_seen_at timestamp, "
                      "cleared_at timestamp, incident_correlation_id varchar",
    "household_scores": "household_id varchar, segment varchar, clv double, predicted_revenue_12m double, "
                        "attrition_probability double, value_percentile double, top_drivers varchar, "
                        "has_analytics_consent boolean, scoring_run_id varchar, scored_at timestamp, "
                        "as_of_date date, clv_model_version varchar, churn_model_version varchar",
    "segment_transitions": "previous_segment varchar, current_segment varchar, households bigint",
    "scoring_runs": "scoring_run_id varchar, kind varchar, scored_at timestamp, as_of_date date, rows bigint, "
                    "model_versions varchar, needs_retraining boolean",
    "salesforce_push": "status varchar, outbox_rows bigint, households bigint, last_updated_at timestamp",
    "salesforce_pushed_households": "households bigint, last_pushed_at timestamp",
    "model_drift": "scoring_run_id varchar, scored_at timestamp, model varchar, kind varchar, name varchar, "
                   "psi double, status varchar",
    "gate_results": "run_id varchar, gate varchar, expectation varchar, severity varchar, success boolean, "
                    "observed_value varchar, details varchar, validated_at timestamp",
    "quarantine": "source varchar, reason_code varchar, rows_quarantined bigint, last_quarantined_at timestamp",
    "incident_resolutions": "break_key varchar, incident_number varchar, state varchar, close_code varchar, "
                            "resolved_at timestamp",
}


def _create_missing_empty(con) -> None:
    for table in WAREHOUSE_COPIES:
        con.execute(f"create table if not exists {table} ({EMPTY_SHAPES[table]})")


def _copy_landing(con, table: str, landing: Path, pattern: str, sql: str) -> None:
    files = sorted(landing.glob(pattern))
    if not files:
        con.execute(f"create table {table} ({EMPTY_SHAPES[table]})")
        return
    con.read_parquet([str(f) for f in files], union_by_name=True).create_view("src")
    con.execute(f"create table {table} as {sql}")  # noqa: S608 - fixed SQL above
    con.execute("drop view src")


# Metric names the training code logs (ml/client_value/train.py, ml/anomaly/train.py): the candidate's
# holdout figures, then each baseline's on the same holdout.
CLIENT_VALUE_BASELINES = ("carry_forward", "bgnbd_gg", "bgnbd")
NOT_HOLDOUT_METRICS = ("fit_seconds", "train_rows", "seconds_")


def _metric_rows(model: str, version: str, metrics: dict[str, float]) -> list[tuple]:
    rows = []
    for key, value in metrics.items():
        if key.startswith(NOT_HOLDOUT_METRICS):
            continue
        if key.startswith("holdout_"):
            rows.append((model, version, "xgboost (candidate)", key.removeprefix("holdout_"), value))
        elif key.startswith("baseline_"):
            rest = key.removeprefix("baseline_")
            named = next((b for b in CLIENT_VALUE_BASELINES if rest.startswith(b + "_")), None)
            if named:
                rows.append((model, version, named, rest.removeprefix(named + "_"), value))
            else:  # the anomaly model's one baseline logs baseline_<metric>
                rows.append((model, version, "isolation_forest", rest, value))
        elif model.endswith("break-anomaly"):
            rows.append((model, version, "xgboost (candidate)", key, value))
    return rows


def _copy_model_registry(con, cfg: Settings) -> None:
    """Versions, their aliases and decisions, and their holdout metrics, from the MLflow registry."""
    versions: list[tuple] = []
    metrics: list[tuple] = []
    try:
        from northstar import model_registry

        client = model_registry.configure(cfg)
        for model in model_registry.REGISTERED_MODELS:
            try:
                registered = client.get_registered_model(model)
            except Exception:  # noqa: BLE001 - not registered yet: nothing to show for it
                continue
            aliases_by_version: dict[str, list[str]] = {}
            for alias, version in (registered.aliases or {}).items():
                aliases_by_version.setdefault(str(version), []).append(alias)
            for mv in client.search_model_versions(f"name = '{model}'"):
                tags = mv.tags or {}
                version = str(mv.version)
                versions.append((
                    model, int(version), datetime.fromtimestamp(mv.creation_timestamp / 1000, UTC).replace(tzinfo=None),
                    ", ".join(sorted(aliases_by_version.get(version, []))) or None,
                    tags.get("promotion_decision"), tags.get("promotion_reasons"), tags.get("previous_champion"),
                    mv.run_id,
                ))
                if mv.run_id:
                    metrics.extend(_metric_rows(model, version, client.get_run(mv.run_id).data.metrics))
    except Exception as exc:  # noqa: BLE001 - the registry is down: the pages say so, the snapshot still lands
        log.warning("dashboard snapshot: MLflow registry unreadable (%s); model tables left empty", exc)
    con.execute("create table model_versions (model varchar, version integer, registered_at timestamp, "
                "aliases varchar, promotion_decision varchar, promotion_reasons varchar, "
                "previous_champion varchar, mlflow_run_id varchar)")
    if versions:
        con.executemany("insert into model_versions values (?, ?, ?, ?, ?, ?, ?, ?)", versions)
    con.execute("create table model_metrics (model varchar, version integer, method varchar, metric varchar, "
                "value double)")
    if metrics:
        con.executemany("insert into model_metrics values (?, ?, ?, ?, ?)", metrics)


def describe(report: SnapshotReport) -> str:
    return json.dumps(report.as_dict(), indent=2, default=str)
