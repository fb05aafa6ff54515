"""Intraday reconciliation: which business dates to re-match, the dbt build over them, and its ledger.

What to re-match is decided from the landing manifest, not from what the current run landed: every
trade file landed but not yet reconciled counts, so a run that landed files and then failed (the
warehouse lock, a crash) leaves them for the next run instead of stranding them. The ledger
``recon.reconciled_files`` records each file's hash once its dates were rebuilt; it is written in the
same process right after dbt succeeds. The ledger is control state, not warehouse data: it lives in the
control store (the DuckDB file ``northstar.warehouse.connect`` opens) on either engine.

Scoring follows the same rule: the dates to score are the re-matched ones plus any date with a
break the current champion has not scored (a champion trained since, a run that failed before
scoring). A run with nothing delivered, nothing pending and nothing unscored does nothing: no gate,
no dbt build, no scoring, nothing appended (``work_after_landing`` is empty and the DAG stops there).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import northstar.warehouse
from northstar.settings import Settings, settings

if TYPE_CHECKING:
    import polars as pl

log = logging.getLogger(__name__)

BROKER_STAGE = "broker_files"  # the landing manifest stage of ingest.broker_files
TRADE_TABLES = ("internal_trades", "fix_executions", "pb_confirms")
LEDGER = "recon.reconciled_files"
LEDGER_DDL = f"""
create schema if not exists recon;
create table if not exists {LEDGER} (
    sha256 varchar not null,
    table_name varchar not null,
    business_date date,
    landed_run_id varchar not null,
    reconciled_run_id varchar not null,
    reconciled_at timestamp not null,
)
"""


def _landed_trade_files(cfg: Settings) -> pl.DataFrame:
    """The broker-file manifest's landed trade files, read as files (``landing/_manifest/broker_files/``),
    as dbt and the landing gate read them: the manifest is ingest's output, not its code."""
    import polars as pl

    columns = {"run_id": pl.String, "sha256": pl.String, "table_name": pl.String, "status": pl.String,
               "business_date": pl.Date}
    files = sorted((cfg.paths.landing / "_manifest" / BROKER_STAGE).glob("*.parquet"))
    manifest = (pl.concat([pl.read_parquet(f, columns=list(columns)) for f in files], how="vertical_relaxed")
                if files else pl.DataFrame(schema=columns))
    return (
        manifest.filter(pl.col("status").eq("landed") & pl.col("table_name").is_in(TRADE_TABLES)
                        & pl.col("business_date").is_not_null())
        .select("sha256", "table_name", "business_date", pl.col("run_id").alias("landed_run_id"))
        .unique("sha256")
    )


def _reconciled_hashes(cfg: Settings) -> set[str]:
    if not cfg.paths.warehouse.exists():
        return set()
    with northstar.warehouse.connect(read_only=True, cfg=cfg) as con:
        present = con.execute(
            "select count(*) from information_schema.tables where table_schema = 'recon' and table_name = 'reconciled_files'"
        ).fetchone()[0]
        if not present:
            return set()
        return {row[0] for row in con.execute(f"select sha256 from {LEDGER}").fetchall()}  # noqa: S608 - fixed name


def pending_files(cfg: Settings | None = None) -> pl.DataFrame:
    """Trade files the manifest says landed and the ledger says are not reconciled yet."""
    import polars as pl

    cfg = cfg or settings()
    landed = _landed_trade_files(cfg)
    done = _reconciled_hashes(cfg)
    return landed.filter(~pl.col("sha256").is_in(list(done))) if done else landed


def trade_side_current(cfg: Settings | None = None) -> bool:
    """True when the trade marts exist and every landed trade file is reconciled: a nightly build then
    has no business date to re-match (``northstar.dbt.build_nightly``)."""
    cfg = cfg or settings()
    if not northstar.warehouse.warehouse_built(cfg):
        return False
    with northstar.warehouse.open_warehouse(read_only=True, cfg=cfg) as engine:
        if not engine.exists("fct_trade_breaks"):
            return False
    return pending_files(cfg).height == 0


def pending_dates(cfg: Settings | None = None) -> list[str]:
    """The business dates to re-match (ISO strings, sorted); empty when there is nothing to do."""
    files = pending_files(cfg)
    return sorted({d.isoformat() for d in files["business_date"].to_list()})


def _champion_label(cfg: Settings) -> str | None:
    from northstar import model_registry as registry

    version = registry.alias_version(registry.BREAK_ANOMALY_MODEL, registry.CHAMPION, cfg=cfg)
    return None if version is None else registry.version_label(registry.BREAK_ANOMALY_MODEL, version.version)


def unscored_dates(cfg: Settings | None = None) -> list[str]:
    """Business dates with an open break the current break-anomaly champion has not scored (none without a
    champion): a champion trained since the last intraday run, or a run that failed before scoring."""
    cfg = cfg or settings()
    champion = _champion_label(cfg)
    if champion is None or not northstar.warehouse.warehouse_built(cfg):
        return []
    with northstar.warehouse.open_warehouse(read_only=True, cfg=cfg) as engine:
        tables = engine.present()
        if "fct_trade_breaks" not in tables:
            return []
        scored = ("and not exists (select 1 from {break_scores} as s "
                  "where s.break_key = b.break_key and s.model_version = ?)"
                  if "break_scores" in tables else "")
        rows = engine.rows("select distinct b.business_date from {fct_trade_breaks} as b "  # noqa: S608
                           f"where b.status = 'open' {scored} order by 1", [champion] if scored else [])
    return [row[0].isoformat() for row in rows]


def work_after_landing(landing_report: dict, cfg: Settings | None = None) -> dict:
    """What an intraday run has to check, match and score after landing, or ``{}`` (false) for a no-op run.

    ``ingest_run_ids``: this run (if it delivered anything, quarantined rows included) and every run
    whose landed files are not reconciled yet, for the landing gate; ``business_dates``: the dates
    those files touch, for the dbt build; ``unscored_dates``: dates the champion has not scored
    (looked up only when nothing was delivered or is pending).
    """
    cfg = cfg or settings()
    files = pending_files(cfg)
    delivered = (landing_report.get("files_landed") or 0) + (landing_report.get("files_quarantined") or 0)
    # the registry (an MLflow import, slow on a busy worker) is asked only when nothing else makes
    # this run necessary; reconcile_pending asks it again for the dates to score
    unscored = [] if files.height or delivered else unscored_dates(cfg)
    if not files.height and not delivered and not unscored:
        return {}
    runs = set(files["landed_run_id"].to_list())
    if delivered:
        runs.add(landing_report["run_id"])
    return {
        "ingest_run_ids": sorted(runs),
        "business_dates": sorted({d.isoformat() for d in files["business_date"].to_list()}),
        "unscored_dates": unscored,
        "files_pending": files.height,
    }


def reconcile_pending(run_id: str, cfg: Settings | None = None, observed_at: datetime | None = None) -> dict:
    """Re-match every pending business date with dbt, record the files as reconciled, and say which
    dates to score: the re-matched ones and any the champion has not scored yet.

    ``observed_at`` (the run's logical time) stamps the breaks it sees; see ``observed_at_vars``.
    Returns (small, for XCom) ``business_dates`` (re-matched), ``score_dates`` and dbt's invocation
    id; with nothing to match or score it builds nothing, writes nothing and returns ``{}``.
    """
    from northstar.dbt import observed_at_vars, run_dbt

    cfg = cfg or settings()
    files = pending_files(cfg)
    dates = sorted({d.isoformat() for d in files["business_date"].to_list()})
    result: dict = {"command": "build", "invocation_id": None}
    if dates:
        log.info("re-matching %d business date(s) for %d landed file(s): %s", len(dates), files.height, dates)
        # with a break-anomaly champion the run scores too: build the features it reads as well
        selector = "intraday_trading_scored" if _champion_label(cfg) else "intraday_trading"
        result = run_dbt("build", ["--selector", selector], dbt_vars={"business_dates": dates, **observed_at_vars(observed_at)},
                         cfg=cfg).as_dict()
        record_reconciled(files, run_id, cfg)
    score_dates = sorted(set(dates) | set(unscored_dates(cfg)))
    if not dates and not score_dates:
        log.info("no landed trade file awaits reconciliation and every break is scored: nothing to do")
        return {}
    return {**result, "business_dates": dates, "score_dates": score_dates}


def record_reconciled(files: pl.DataFrame, run_id: str, cfg: Settings) -> None:
    import polars as pl

    ledger = files.with_columns(
        pl.lit(run_id).alias("reconciled_run_id"),
        pl.lit(datetime.now(UTC).replace(tzinfo=None)).alias("reconciled_at"),
    )
    with northstar.warehouse.connect(cfg=cfg) as con:
        con.execute(LEDGER_DDL)
        con.register("reconciled_now", ledger.to_arrow())
        con.execute(f"""
            insert into {LEDGER}
            select sha256, table_name, business_date, landed_run_id, reconciled_run_id, reconciled_at
            from reconciled_now
            where sha256 not in (select sha256 from {LEDGER})
        """)  # noqa: S608 - fixed names
        con.unregister("reconciled_now")
