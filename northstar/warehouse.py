"""The one seam to the warehouse: every DuckDB connection Northstar opens comes from here.

It owns four things the stages used to do each their own way:

* the engine settings of every connection (``memory_limit`` and ``temp_directory`` from settings,
  the same values dbt gets through ``profiles.yml``), so no connection takes DuckDB's default of
  80% of the machine's memory;
* the lock discipline: DuckDB lets one process write a file, and while it does no other process
  can open it at all. ``connect`` waits for the lock with a clear message instead of failing a DAG
  task or an operator's command with a raw traceback, and gives up with ``WarehouseBusy`` after
  ``NORTHSTAR_WAREHOUSE_LOCK_WAIT`` seconds. Read-only callers (``activate status``, ``trace``,
  the summary, the gates' reads) open ``read_only=True`` and hold the file only as long as a query;
* the release of the handle dbt-duckdb keeps open after an in-process ``dbtRunner`` call
  (``release_dbt_handles``);
* the names of the tables Python reads and writes (``TABLES``, ``relation``, ``render``): a stage names a
  table by its dbt name and the seam says where it lives on the engine in use.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import time
from pathlib import Path

import duckdb

from northstar.errors import ExpectedError, WarehouseMissing
from northstar.settings import Settings, settings

log = logging.getLogger(__name__)

IN_MEMORY = ":memory:"
_POLL_S = 0.5
_HOLDER = re.compile(r"Conflicting lock is held in (?P<program>.+?) \(PID (?P<pid>\d+)\)")


class WarehouseBusy(ExpectedError):
    """Another process held the warehouse for longer than the configured wait."""


def engine_config(cfg: Settings | None = None) -> dict[str, str]:
    """The DuckDB settings every connection gets (the same as dbt's profile)."""
    cfg = cfg or settings()
    cfg.paths.duckdb_temp.mkdir(parents=True, exist_ok=True)
    return {"memory_limit": cfg.duckdb_memory_limit, "temp_directory": str(cfg.paths.duckdb_temp)}


_SPARK_LOG_CONFIG = Path(__file__).with_name("spark-log4j2.properties")


def spark_conf(cfg: Settings | None = None) -> dict[str, str]:
    """The settings of the Spark session on the ``spark`` engine: dbt-spark's ``session`` target
    (profiles.yml reads them from ``spark_environment``) and the Python engine layer get the same, so
    both see one catalog and one warehouse folder."""
    cfg = cfg or settings()
    metastore = cfg.paths.spark_metastore
    return {
        "spark.master": cfg.spark_master,
        "spark.driver.memory": cfg.spark_driver_memory,
        "spark.sql.warehouse.dir": str(cfg.paths.spark_warehouse),
        # the catalog survives the process (embedded Derby, one driver at a time)
        "spark.hadoop.javax.jdo.option.ConnectionURL": f"jdbc:derby:;databaseName={metastore / 'metastore_db'};create=true",
        "spark.driver.extraJavaOptions": f"-Dderby.system.home={metastore} -Dlog4j2.configurationFile={_SPARK_LOG_CONFIG}",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.shuffle.partitions": str(cfg.spark_shuffle_partitions),
        "spark.sql.session.timeZone": "UTC",
        # insert_overwrite replaces only the partitions a run writes (a business date), not the table
        "spark.sql.sources.partitionOverwriteMode": "dynamic",
        # landing files of different runs may differ in columns: read their union (DuckDB's union_by_name)
        "spark.sql.parquet.mergeSchema": "true",
        "spark.ui.enabled": "false",
        # dbt-spark turns ANSI mode off for its session; the engine layer reads with the same semantics
        "spark.sql.ansi.enabled": "false",
        "spark.pyspark.python": sys.executable,
    }


def spark_session(cfg: Settings | None = None):
    """The process's Spark session on the ``spark`` engine (started on first use, then shared: dbt-spark's
    ``session`` method gets the same one through ``SparkSession.builder.getOrCreate``)."""
    try:
        from pyspark.sql import SparkSession
    except ImportError as missing:
        raise RuntimeError("the spark engine needs the spark extra: NORTHSTAR_ENGINE=spark make install "
                           "(or uv sync --extra deploy --extra spark)") from missing

    cfg = cfg or settings()
    for folder in (cfg.paths.spark_warehouse, cfg.paths.spark_metastore):
        folder.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.enableHiveSupport()
    for key, value in spark_conf(cfg).items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


def spark_environment(cfg: Settings | None = None) -> dict[str, str]:
    """The variables profiles.yml's ``spark`` target reads (``NORTHSTAR_SPARK_*``), and PYSPARK_PYTHON."""
    conf = spark_conf(cfg)
    return {
        "NORTHSTAR_SPARK_MASTER": conf["spark.master"],
        "NORTHSTAR_SPARK_DRIVER_MEMORY": conf["spark.driver.memory"],
        "NORTHSTAR_SPARK_WAREHOUSE": conf["spark.sql.warehouse.dir"],
        "NORTHSTAR_SPARK_METASTORE_URL": conf["spark.hadoop.javax.jdo.option.ConnectionURL"],
        "NORTHSTAR_SPARK_DRIVER_JAVA_OPTIONS": conf["spark.driver.extraJavaOptions"],
        "NORTHSTAR_SPARK_SHUFFLE_PARTITIONS": conf["spark.sql.shuffle.partitions"],
        "PYSPARK_PYTHON": sys.executable,
    }


def _holder(message: str) -> str:
    match = _HOLDER.search(message)
    if not match:
        return "another process"
    return f"process {match['pid']} ({Path(match['program']).name})"


def _is_lock_conflict(exc: duckdb.Error) -> bool:
    return isinstance(exc, duckdb.IOException) and "lock" in str(exc).lower()


def connect(
    read_only: bool = False,
    cfg: Settings | None = None,
    path: Path | str | None = None,
    wait_s: float | None = None,
) -> duckdb.DuckDBPyConnection:
    """A connection to the warehouse (or ``path``; ``":memory:"`` for a scratch database).

    ``read_only=True`` for every caller that only reads: it never takes the write lock, so several
    readers coexist. While another process writes, this waits (logging who holds the file) up to
    ``wait_s`` seconds (default ``NORTHSTAR_WAREHOUSE_LOCK_WAIT``), then raises ``WarehouseBusy``.
    A new warehouse file is created readable by its owner only (it holds client data).
    """
    cfg = cfg or settings()
    target = str(path) if path is not None else str(cfg.paths.warehouse)
    config = engine_config(cfg)
    if target == IN_MEMORY:
        return duckdb.connect(IN_MEMORY, config=config)
    file = Path(target)
    if read_only and not file.exists():
        raise WarehouseMissing(f"no warehouse at {file}: run the pipeline (or `python -m northstar demo`) first")
    creating = not file.exists()
    if creating:
        file.parent.mkdir(parents=True, exist_ok=True)
    wait_s = cfg.warehouse_lock_wait_s if wait_s is None else wait_s
    deadline = time.monotonic() + wait_s
    announced = False
    while True:
        try:
            con = duckdb.connect(target, read_only=read_only, config=config)
            break
        except duckdb.Error as exc:
            if not _is_lock_conflict(exc):
                raise
            holder = _holder(str(exc))
            if time.monotonic() >= deadline:
                raise WarehouseBusy(
                    f"the warehouse {file} is locked by {holder}, which is writing to it; gave up after "
                    f"{wait_s:.0f} s (NORTHSTAR_WAREHOUSE_LOCK_WAIT). Try again when that run has finished."
                ) from None
            if not announced:
                log.warning("the warehouse %s is locked by %s (a pipeline task writing); waiting up to %.0f s",
                            file, holder, wait_s)
                announced = True
            time.sleep(_POLL_S)
    if creating:
        restrict(file)
    return con


def restrict(file: Path) -> None:
    """Owner-only permissions on a warehouse file (and its write-ahead log if present)."""
    for candidate in (file, file.with_name(file.name + ".wal")):
        if candidate.exists():
            os.chmod(candidate, 0o600)


def release_dbt_handles() -> None:
    """Close the DuckDB handle dbt-duckdb keeps open after an in-process run.

    dbt-duckdb holds its read-write connection in a class-level environment for the life of the
    process. Under ``airflow dags test`` (and in tests) the next task runs in the same process and
    opens the warehouse read-only, which DuckDB refuses while that handle exists; a task on a worker
    would merely hold the file lock longer than it needs to.
    """
    module = sys.modules.get("dbt.adapters.duckdb.connections")
    if module is None:  # no dbt-duckdb run in this process (or another adapter): nothing to release
        return
    DuckDBConnectionManager = module.DuckDBConnectionManager  # noqa: N806 - the adapter's class
    with DuckDBConnectionManager._LOCK:
        environment = DuckDBConnectionManager._ENV
        if environment is not None:
            try:
                environment.close()
            finally:
                DuckDBConnectionManager._ENV = None


def scratch(cfg: Settings | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB (reading Parquet, staging a computation) with the same engine settings."""
    return connect(cfg=cfg, path=IN_MEMORY)


# Columns that say when or in which run a row was written, not what it says: left out of a content
# fingerprint so that a rerun on unchanged input can be compared with the run before it. The CRM's
# own modification stamps belong here too: Northstar's push bumps them without changing a business
# value (the households snapshot ignores them for the same reason).
RUN_STAMP_COLUMNS = re.compile(
    r"(^|_)(run_id|invocation_id|scored_at|updated_at|validated_at|extracted_at|landed_at|"
    r"loaded_at|observed_at|sent_at|pushed_at|built_at|system_modstamp_at|last_modified_at|"
    r"dbt_updated_at|dbt_valid_from|dbt_scd_id)$"
)


def content_fingerprints(con: duckdb.DuckDBPyConnection, schemas: tuple[str, ...] = ("main", "scores")) -> dict:
    """``schema.table -> (rows, hash)`` over every base table of ``schemas``, run stamps excluded by
    name (``RUN_STAMP_COLUMNS``); order-independent, and a duplicated row changes it."""
    tables = [row for row in con.execute(
        "select table_schema, table_name from information_schema.tables where table_type = 'BASE TABLE' order by 1, 2"
    ).fetchall() if row[0] in schemas]
    result = {}
    for schema, table in tables:
        columns = [c for (c,) in con.execute(
            "select column_name from information_schema.columns where table_schema = ? and table_name = ? "
            "order by ordinal_position", [schema, table]).fetchall() if not RUN_STAMP_COLUMNS.search(c)]
        packed = ", ".join(f'"{c}" := "{c}"' for c in columns)
        rows, digest = con.execute(
            f'select count(*), coalesce(sum(hash(struct_pack({packed}))::hugeint), 0) from "{schema}"."{table}"'  # noqa: S608
        ).fetchone()
        result[f"{schema}.{table}"] = (int(rows), str(digest))
    return result


# --- the tables Python reads and writes -----------------------------------------------------------
# Every relation a stage reads or writes in SQL is named here once, by its dbt name (a model, a seed,
# or a source table that ml/ writes and dbt reads), with the layer of the dbt project it belongs to.
# Where a layer lands is the engine's business: dbt's ``generate_schema_name`` puts marts in the
# target's own schema (DuckDB's ``main``) and every other layer in a schema of its name. A stage never
# writes ``main.<mart>``; it asks ``relation("fct_trade_breaks")`` or renders ``{fct_trade_breaks}``
# placeholders with ``render``. Another engine (issue 20: Spark) adds its row to ``ENGINE_SCHEMAS``.
# tests/foundation/test_warehouse_tables.py checks every name against the dbt manifest and scans the
# stages for table names written out by hand.

DEFAULT_ENGINE = "duckdb"

ENGINE_SCHEMAS: dict[str, dict[str, str]] = {
    "duckdb": {
        "marts": "main",  # the dbt target's schema
        "staging": "staging",
        "intermediate": "intermediate",
        "reference": "reference",  # seeds
        "snapshots": "snapshots",
        "scores": "scores",  # written by ml/, read by dbt as the source `scores`
        "identity": "identity",  # written by identity/, read by dbt as the source `identity`
    },
    # Spark: a schema is a database of the metastore; the marts sit in the `spark` target's schema
    "spark": {
        "marts": "northstar",
        "staging": "staging",
        "intermediate": "intermediate",
        "reference": "reference",
        "snapshots": "snapshots",
        "scores": "scores",
        "identity": "identity",
    },
}

TABLES: dict[str, str] = {
    # customer marts
    "dim_households": "marts",
    "dim_advisors": "marts",
    "fct_interactions": "marts",
    "fct_household_months": "marts",
    "fct_household_features": "marts",
    # trading marts
    "fct_internal_executions": "marts",
    "fct_broker_executions": "marts",
    "fct_prime_broker_confirms": "marts",
    "fct_trade_matches": "marts",
    "fct_trade_breaks": "marts",
    "fct_recon_summary": "marts",
    "fct_trade_anomaly_features": "marts",  # the break-anomaly model's inputs
    # score marts (dbt's view of what ml/ scored)
    "fct_household_scores": "marts",
    "fct_break_scores": "marts",
    # persons resolved from the CRM's duplicates (dbt's view of what identity/ wrote)
    "dim_persons": "marts",
    "dim_resolved_households": "marts",  # the push's consent: the strictest of the resolved household
    # staging read directly (no public mart carries these columns yet)
    "stg_salesforce__accounts": "staging",
    "stg_salesforce__brokerage_accounts": "staging",
    "stg_salesforce__contacts": "staging",  # identity/ links the people in it
    "stg_broker__internal_trades": "staging",
    "stg_broker__fix_executions": "staging",
    "stg_broker__pb_confirms": "staging",
    # seeds
    "recon_tolerances": "reference",
    # what ml/ writes and dbt reads (source `scores`)
    "household_scores": "scores",
    "break_scores": "scores",
    "scoring_runs": "scores",
    # what identity/ writes and dbt reads (source `identity`)
    "person_records": "identity",
    "review_queue": "identity",
    "resolution_runs": "identity",
}


class UnknownTable(KeyError):
    """A table name the seam does not know: register it in ``TABLES`` (and it must exist in dbt)."""


def schema_of(name: str, engine: str = DEFAULT_ENGINE) -> str:
    """The schema the registered table ``name`` lives in on ``engine``."""
    try:
        layer = TABLES[name]
    except KeyError:
        raise UnknownTable(f"{name!r} is not a registered warehouse table (northstar.warehouse.TABLES)") from None
    return ENGINE_SCHEMAS[engine][layer]


def relation(name: str, database: str | None = None, engine: str = DEFAULT_ENGINE) -> str:
    """``schema.name`` of a registered table (``database.schema.name`` for an attached database)."""
    qualified = f"{schema_of(name, engine)}.{name}"
    return f"{database}.{qualified}" if database else qualified


_PLACEHOLDER = re.compile(r"\{([a-z][a-z0-9_]*)\}")


def render(sql: str, database: str | None = None, engine: str = DEFAULT_ENGINE) -> str:
    """``sql`` with every ``{<registered table>}`` replaced by its relation; other braces are left alone
    (a placeholder that looks like a dbt model but is not registered raises ``UnknownTable``)."""
    def replace(match: re.Match) -> str:
        name = match[1]
        if name in TABLES:
            return relation(name, database, engine)
        if name.startswith(("fct_", "dim_", "stg_", "int_")):
            raise UnknownTable(f"{name!r} is not a registered warehouse table (northstar.warehouse.TABLES)")
        return match[0]

    return _PLACEHOLDER.sub(replace, sql)


def table_exists(con: duckdb.DuckDBPyConnection, name: str, database: str | None = None,
                 engine: str = DEFAULT_ENGINE) -> bool:
    """Whether the registered table (or view) ``name`` exists in the warehouse (or attached ``database``)."""
    return bool(con.execute(
        "select count(*) from information_schema.tables "
        "where table_catalog = coalesce(?, current_database()) and table_schema = ? and table_name = ?",
        [database, schema_of(name, engine), name],
    ).fetchall()[0][0])  # fetchall: a half-read result would block the caller's next statement


def present_tables(con: duckdb.DuckDBPyConnection, engine: str = DEFAULT_ENGINE) -> set[str]:
    """The registered tables that exist in the warehouse, by their dbt names."""
    found = set(con.execute("select table_schema, table_name from information_schema.tables "
                            "where table_catalog = current_database()").fetchall())
    return {name for name in TABLES if (schema_of(name, engine), name) in found}
