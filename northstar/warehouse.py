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
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from northstar.errors import ExpectedError, WarehouseMissing
from northstar.settings import Settings, settings

if TYPE_CHECKING:
    import pandas as pd

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
    "model_drift": "scores",
    "trade_anomaly_scores": "scores",
    # what identity/ writes and dbt reads (source `identity`)
    "person_records": "identity",
    "review_queue": "identity",
    "resolution_runs": "identity",
}


class UnknownTable(KeyError):
    """A table name the seam does not know: register it in ``TABLES`` (and it must exist in dbt)."""


def current_engine(engine: str | None = None) -> str:
    """``engine`` if given, else the configured one (``NORTHSTAR_ENGINE``, settings)."""
    return engine or settings().engine


def schema_of(name: str, engine: str | None = None) -> str:
    """The schema the registered table ``name`` lives in on ``engine`` (default: the configured engine)."""
    try:
        layer = TABLES[name]
    except KeyError:
        raise UnknownTable(f"{name!r} is not a registered warehouse table (northstar.warehouse.TABLES)") from None
    return ENGINE_SCHEMAS[current_engine(engine)][layer]


def relation(name: str, database: str | None = None, engine: str | None = None) -> str:
    """``schema.name`` of a registered table (``database.schema.name`` for an attached database)."""
    qualified = f"{schema_of(name, engine)}.{name}"
    return f"{database}.{qualified}" if database else qualified


_PLACEHOLDER = re.compile(r"\{([a-z][a-z0-9_]*)\}")


def render(sql: str, database: str | None = None, engine: str | None = None) -> str:
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
                 engine: str | None = None) -> bool:
    """Whether the registered table (or view) ``name`` exists in the warehouse (or attached ``database``)."""
    return bool(con.execute(
        "select count(*) from information_schema.tables "
        "where table_catalog = coalesce(?, current_database()) and table_schema = ? and table_name = ?",
        [database, schema_of(name, engine), name],
    ).fetchall()[0][0])  # fetchall: a half-read result would block the caller's next statement


def present_tables(con: duckdb.DuckDBPyConnection, engine: str | None = None) -> set[str]:
    """The registered tables that exist in the warehouse, by their dbt names."""
    found = set(con.execute("select table_schema, table_name from information_schema.tables "
                            "where table_catalog = current_database()").fetchall())
    return {name for name in TABLES if (schema_of(name, engine), name) in found}


# --- the engine layer -----------------------------------------------------------------------------
# What a stage does with the warehouse, whichever engine holds it: read a query into a frame, ask
# whether a table exists, write a scoring run's rows, and make warehouse tables readable beside the
# control store. ``open_warehouse`` hands out the configured engine's implementation; no stage asks
# which engine it got. The SQL a stage gives ``frame``/``rows`` names tables as ``{<dbt name>}`` and
# keeps to what DuckDB and Spark SQL both accept (``?`` parameters, no trailing commas, no DuckDB list
# functions). What is not the warehouse stays where it is on both engines: the landing Parquet (read by
# path), and the control store, the DuckDB file ``connect()`` opens (the outbox, the reconciliation
# ledger, the gate results: small, transactional, one writer; see docs/scale.md).


@dataclass(frozen=True)
class TableSpec:
    """A table a stage owns and writes (the ``scores`` and ``identity`` tables): its columns in DuckDB's
    type names, its primary key (DuckDB only), and the columns a write replaces rows by (Spark: its
    partition columns; none: a write replaces the whole table)."""

    name: str
    columns: tuple[tuple[str, str, bool], ...]  # (column, type, not null)
    replace_by: tuple[str, ...]
    primary_key: str | None = None

    @property
    def column_names(self) -> list[str]:
        return [c for c, _, _ in self.columns]

    def duckdb_ddl(self) -> str:
        lines = [f"{c} {t}{' primary key' if c == self.primary_key else ''}{' not null' if nn else ''}"
                 for c, t, nn in self.columns]
        target = relation(self.name, engine="duckdb")
        # a table created by an older release gains the optional columns added since
        added = [f"alter table {target} add column if not exists {c} {t}" for c, t, nn in self.columns
                 if not nn and c != self.primary_key]
        return ";\n".join([f"create schema if not exists {schema_of(self.name, 'duckdb')}",
                            f"create table if not exists {target} (\n    " + ",\n    ".join(lines) + "\n)",
                            *added])

    def spark_ddl(self) -> str:
        # a partitioned Parquet table: a scoring run is one partition, replaced whole (insert overwrite)
        data = [f"{c} {_SPARK_TYPES[t]}" for c, t, _ in self.columns if c not in self.replace_by]
        parts = [f"{c} {_SPARK_TYPES[t]}" for c, t, _ in self.columns if c in self.replace_by]
        partitioned = f" partitioned by ({', '.join(self.replace_by)})" if self.replace_by else ""
        return (f"create table if not exists {relation(self.name, engine='spark')} ("
                + ", ".join(data + parts) + ") using parquet" + partitioned)


_SPARK_TYPES = {"varchar": "string", "timestamp": "timestamp", "date": "date", "bigint": "bigint",
                "integer": "int", "double": "double", "boolean": "boolean"}


@dataclass
class Replacement:
    """One table's part of a write: the rows whose ``match`` columns equal these values are replaced by
    ``frame`` (a scoring run's rows). ``match`` holds the spec's ``replace_by`` columns, and may add
    others that every replaced row must have (a run id is never reused across kinds)."""

    spec: TableSpec
    frame: pd.DataFrame
    match: dict


class Warehouse:
    """The warehouse as the stages see it (``open_warehouse`` gives the engine's implementation)."""

    engine: str = DEFAULT_ENGINE
    holds_control_store: bool = False

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:  # pragma: no cover - overridden
        pass

    def render(self, sql: str) -> str:
        return render(sql, engine=self.engine)

    @property
    def location(self) -> Path:
        """Where the warehouse's data lives (for people: summaries, logs)."""
        raise NotImplementedError

    def catalog(self) -> list[tuple[str, str, str]]:
        """(schema, table, ``BASE TABLE`` or ``VIEW``) of everything in the warehouse, sorted."""
        raise NotImplementedError

    def quote(self, *parts: str) -> str:
        """A qualified identifier from the catalog, quoted for this engine's SQL."""
        raise NotImplementedError

    def frame(self, sql: str, params: list | None = None) -> pd.DataFrame:
        """A query's rows as pandas (timestamps naive UTC, decimals as floats, as DuckDB gives them)."""
        raise NotImplementedError

    def rows(self, sql: str, params: list | None = None) -> list[tuple]:
        raise NotImplementedError

    def records(self, sql: str, params: list | None = None) -> list[dict]:
        """A query's rows as dicts by column name."""
        raise NotImplementedError

    def scalar(self, sql: str, params: list | None = None):
        found = self.rows(sql, params)
        return found[0][0] if found else None

    def exists(self, name: str) -> bool:
        raise NotImplementedError

    def present(self) -> set[str]:
        raise NotImplementedError

    def ensure(self, *specs: TableSpec) -> None:
        """Create the stage-owned tables if missing."""
        raise NotImplementedError

    def replace(self, *replacements: Replacement) -> None:
        """Replace rows by key in one or more tables (DuckDB: one transaction; Spark: partitions)."""
        raise NotImplementedError

    def copy_into(self, con: duckdb.DuckDBPyConnection, names, where: dict[str, str] | None = None) -> str | None:
        """Make the registered tables ``names`` readable in ``con`` (the control store, or a snapshot
        being built); returns the database to ``render`` them with (``None``: already there)."""
        raise NotImplementedError


def _checked_match(replacement: Replacement) -> None:
    missing = [c for c in replacement.spec.replace_by if c not in replacement.match]
    if missing:
        raise ValueError(f"a write to {replacement.spec.name} must name {missing} (its replace_by columns)")


class DuckDBWarehouse(Warehouse):
    """The DuckDB file (``connect``): the default engine, the behaviour Northstar always had."""

    engine = "duckdb"
    holds_control_store = True  # the outbox, ledger and gate results sit in the warehouse file itself

    def __init__(self, cfg: Settings | None = None, read_only: bool = True, path: Path | str | None = None):
        self.cfg = cfg or settings()
        self.path = Path(path) if path is not None else self.cfg.paths.warehouse
        self.con = connect(read_only=read_only, cfg=self.cfg, path=self.path)

    def close(self) -> None:
        self.con.close()

    @property
    def location(self) -> Path:
        return self.path

    def catalog(self) -> list[tuple[str, str, str]]:
        return self.con.execute(
            "select table_schema, table_name, table_type from information_schema.tables "
            "where table_schema not in ('information_schema', 'pg_catalog') order by 1, 2"
        ).fetchall()

    def quote(self, *parts: str) -> str:
        return ".".join('"' + part.replace('"', '""') + '"' for part in parts)

    def frame(self, sql: str, params: list | None = None) -> pd.DataFrame:
        return self.con.execute(self.render(sql), params or []).df()

    def rows(self, sql: str, params: list | None = None) -> list[tuple]:
        return self.con.execute(self.render(sql), params or []).fetchall()

    def records(self, sql: str, params: list | None = None) -> list[dict]:
        cursor = self.con.execute(self.render(sql), params or [])
        columns = [d[0] for d in cursor.description]
        return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]

    def exists(self, name: str) -> bool:
        return table_exists(self.con, name, engine=self.engine)

    def present(self) -> set[str]:
        return present_tables(self.con, engine=self.engine)

    def ensure(self, *specs: TableSpec) -> None:
        for spec in specs:
            self.con.execute(spec.duckdb_ddl())

    def replace(self, *replacements: Replacement) -> None:
        for replacement in replacements:
            _checked_match(replacement)
        self.con.execute("begin transaction")
        try:
            for number, item in enumerate(replacements):
                target = relation(item.spec.name, engine=self.engine)
                where = " and ".join(f"{column} = ?" for column in item.match) or "true"
                self.con.execute(f"delete from {target} where {where}", list(item.match.values()))  # noqa: S608
                existing = {r[0] for r in self.con.execute(
                    "select column_name from information_schema.columns where table_schema = ? and table_name = ?",
                    [schema_of(item.spec.name, self.engine), item.spec.name]).fetchall()}
                # the frame's columns the table has (an older table may lack a newer optional column)
                columns = ", ".join(c for c in item.frame.columns if c in existing)
                view = f"_replacement_{number}"
                self.con.register(view, item.frame)
                self.con.execute(f"insert into {target} ({columns}) select {columns} from {view}")  # noqa: S608
                self.con.unregister(view)
            self.con.execute("commit")
        except Exception:
            self.con.execute("rollback")
            raise

    def copy_into(self, con: duckdb.DuckDBPyConnection, names, where: dict[str, str] | None = None) -> str | None:
        return None  # the control store is the warehouse file itself


ENGINE_DATABASE = "engine"  # where ``SparkWarehouse.copy_into`` puts tables in a DuckDB connection


class SparkWarehouse(Warehouse):
    """The Spark catalog the dbt ``spark`` target builds (one session per process, ``spark_session``)."""

    engine = "spark"
    holds_control_store = False

    def __init__(self, cfg: Settings | None = None, read_only: bool = True, path: Path | str | None = None):
        # ``path`` names a DuckDB file and means nothing here: the catalog comes from settings
        self.cfg = cfg or settings()
        self.session = spark_session(self.cfg)

    def close(self) -> None:
        pass  # the session is the process's, shared with dbt-spark

    @property
    def location(self) -> Path:
        return self.cfg.paths.spark_warehouse

    def catalog(self) -> list[tuple[str, str, str]]:
        found = []
        for database in self.session.catalog.listDatabases():
            for table in self.session.catalog.listTables(database.name):
                if not table.isTemporary:
                    found.append((database.name, table.name, "VIEW" if table.tableType == "VIEW" else "BASE TABLE"))
        return sorted(found)

    def quote(self, *parts: str) -> str:
        return ".".join("`" + part.replace("`", "``") + "`" for part in parts)

    def _query(self, sql: str, params: list | None = None):
        return self.session.sql(self.render(sql), args=[_spark_value(v) for v in params] if params else None)

    def arrow(self, sql: str, params: list | None = None):
        return _normal_arrow(self._query(sql, params).toArrow())

    def frame(self, sql: str, params: list | None = None) -> pd.DataFrame:
        return self.arrow(sql, params).to_pandas()

    def rows(self, sql: str, params: list | None = None) -> list[tuple]:
        table = self.arrow(sql, params)
        return list(zip(*(column.to_pylist() for column in table.columns), strict=True)) if table.num_columns else []

    def records(self, sql: str, params: list | None = None) -> list[dict]:
        return self.arrow(sql, params).to_pylist()

    def exists(self, name: str) -> bool:
        return bool(self.session.catalog.tableExists(relation(name, engine=self.engine)))

    def present(self) -> set[str]:
        found: set[tuple[str, str]] = set()
        for schema in sorted(set(ENGINE_SCHEMAS[self.engine].values())):
            if self.session.catalog.databaseExists(schema):
                found |= {(schema, t.name) for t in self.session.catalog.listTables(schema)}
        return {name for name in TABLES if (schema_of(name, self.engine), name) in found}

    def ensure(self, *specs: TableSpec) -> None:
        for spec in specs:
            schema = schema_of(spec.name, self.engine)
            if not self.session.catalog.databaseExists(schema):  # the metastore logs a stack trace for an existing one
                self.session.sql(f"create database if not exists {schema}")
            if not self.session.catalog.tableExists(relation(spec.name, engine=self.engine)):
                self.session.sql(spec.spark_ddl())

    def replace(self, *replacements: Replacement) -> None:
        """Each table's partition (the run) overwritten whole: a retry writes the same partition again.
        Not one transaction across tables as on DuckDB: readers go through dbt's score marts, rebuilt
        after the write (the ``scores_publish`` selector), and a failed write is retried whole."""
        from pyspark.sql import functions as F  # noqa: N812 - Spark's convention

        for replacement in replacements:
            _checked_match(replacement)
        for number, item in enumerate(replacements):
            target = relation(item.spec.name, engine=self.engine)
            parts = {c: v for c, v in item.match.items() if c in item.spec.replace_by}
            others = {c: v for c, v in item.match.items() if c not in item.spec.replace_by}
            partition = " and ".join(f"{c} = ?" for c in parts) or "true"
            if others:
                clash = self.session.sql(
                    f"select count(*) from {target} where {partition} and not ("  # noqa: S608
                    + " and ".join(f"{c} <=> ?" for c in others) + ")",
                    args=[_spark_value(v) for v in [*parts.values(), *others.values()]]).collect()[0][0]
                if clash:
                    raise ValueError(f"{target} already holds rows for {parts} that are not {others}: "
                                     "pass another run id")
            table = self.session.table(target)
            data_columns = [f for f in table.schema.fields if f.name not in parts]
            incoming = self.session.createDataFrame(_arrow_of(item.frame, item.spec))
            selected = incoming.select(*[
                (F.col(f.name) if f.name in incoming.columns else F.lit(None)).cast(f.dataType).alias(f.name)
                for f in data_columns])
            view = f"_replacement_{number}"
            selected.createOrReplaceTempView(view)
            spec = ", ".join(f"{c} = {_spark_literal(v)}" for c, v in parts.items())
            partition_clause = f"partition ({spec}) " if spec else ""
            columns = ", ".join(f.name for f in data_columns)
            self.session.sql(f"insert overwrite table {target} {partition_clause}select {columns} from {view}")  # noqa: S608
            self.session.catalog.dropTempView(view)

    def copy_into(self, con: duckdb.DuckDBPyConnection, names, where: dict[str, str] | None = None) -> str | None:
        """Each table's rows (``where[name]``: a filter Spark applies first) as a table of the in-memory
        database ``engine`` attached to ``con``: what the control store's SQL joins with."""
        attached = {r[0] for r in con.execute("select database_name from duckdb_databases()").fetchall()}
        if ENGINE_DATABASE not in attached:
            con.execute(f"attach ':memory:' as {ENGINE_DATABASE}")
        for name in names:
            if not self.exists(name):
                continue
            condition = (where or {}).get(name)
            rows = self.arrow(f"select * from {{{name}}}" + (f" where {condition}" if condition else ""))  # noqa: S608
            schema = schema_of(name, self.engine)
            con.execute(f"create schema if not exists {ENGINE_DATABASE}.{schema}")
            con.register("_engine_rows", rows)
            con.execute(f"create or replace table {ENGINE_DATABASE}.{schema}.{name} as select * from _engine_rows")  # noqa: S608
            con.unregister("_engine_rows")
        return ENGINE_DATABASE


WAREHOUSES: dict[str, type[Warehouse]] = {"duckdb": DuckDBWarehouse, "spark": SparkWarehouse}


def warehouse_tables_in(con: duckdb.DuckDBPyConnection, names, cfg: Settings | None = None,
                        where: dict[str, str] | None = None) -> str | None:
    """Make the registered tables ``names`` readable in ``con``, a connection to the control store (the
    outbox's SQL joins scores with what was pushed): returns the database to ``render`` them with, ``None``
    when the engine's tables are in that file already (DuckDB). On Spark they are copied in (``where``:
    a filter per table, applied by Spark)."""
    cfg = cfg or settings()
    if WAREHOUSES[cfg.engine].holds_control_store:
        return None
    with open_warehouse(cfg=cfg) as engine:
        return engine.copy_into(con, names, where)


def warehouse_built(cfg: Settings | None = None) -> bool:
    """Whether the configured engine's warehouse exists at all (cheap: no connection, no JVM)."""
    cfg = cfg or settings()
    if cfg.engine == "spark":
        return (cfg.paths.spark_metastore / "metastore_db").exists()
    return cfg.paths.warehouse.exists()


def open_warehouse(read_only: bool = True, cfg: Settings | None = None, path: Path | str | None = None) -> Warehouse:
    """The warehouse on the configured engine (``NORTHSTAR_ENGINE``). ``path``: another DuckDB file
    (DuckDB only; a test's or a benchmark's copy). Use as a context manager."""
    cfg = cfg or settings()
    return WAREHOUSES[cfg.engine](cfg=cfg, read_only=read_only, path=path)


def _spark_value(value):
    """A parameter as Spark's ``sql(args=...)`` takes it (a pandas timestamp as a datetime)."""
    import pandas as pd

    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    return value


def _spark_literal(value) -> str:
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    if isinstance(value, bool) or value is None:
        raise ValueError(f"a partition value must be a string or number, not {value!r}")
    return str(value)


def _normal_arrow(table):
    """Spark's Arrow as DuckDB's frames look: timestamps naive UTC, decimals as doubles."""
    import pyarrow as pa

    fields, columns = [], []
    for field, column in zip(table.schema, table.columns, strict=True):
        if pa.types.is_timestamp(field.type) and field.type.tz is not None:
            column = column.cast(pa.timestamp(field.type.unit))
        elif pa.types.is_decimal(field.type):
            column = column.cast(pa.float64())
        fields.append(pa.field(field.name, column.type))
        columns.append(column)
    return pa.Table.from_arrays(columns, schema=pa.schema(fields))


_ARROW_TYPES = {"varchar": "string", "timestamp": "timestamp[us]", "date": "date32", "bigint": "int64",
                "integer": "int32", "double": "float64", "boolean": "bool"}


def _arrow_of(frame: pd.DataFrame, spec: TableSpec):
    """The frame as Arrow with the spec's types (an all-null column keeps its type)."""
    import pandas as pd
    import pyarrow as pa

    types = {c: t for c, t, _ in spec.columns}
    fields = [pa.field(c, pa.type_for_alias(_ARROW_TYPES[types[c]])) for c in frame.columns if c in types]
    prepared = frame[[f.name for f in fields]].copy()
    for field in fields:
        if pa.types.is_timestamp(field.type):
            prepared[field.name] = pd.to_datetime(prepared[field.name], utc=True).dt.tz_localize(None)
        elif pa.types.is_date(field.type):
            prepared[field.name] = pd.to_datetime(prepared[field.name]).dt.date
    return pa.Table.from_pandas(prepared, schema=pa.schema(fields), preserve_index=False)


# --- the few SQL expressions that differ between the engines ----------------------------------------
# For SQL a stage runs on the warehouse (the gates' datasets): like dbt's cross-database macros, each
# renders for the configured engine (or ``engine``). Everything else the stages write keeps to what
# both engines accept.


def seconds_between(start: str, end: str, engine: str | None = None) -> str:
    """Whole seconds from timestamp ``start`` to timestamp ``end``."""
    if current_engine(engine) == "spark":
        return f"(unix_timestamp({end}) - unix_timestamp({start}))"
    return f"date_diff('second', {start}, {end})"


def days_between(start: str, end: str, engine: str | None = None) -> str:
    """Days from date ``start`` to date ``end``."""
    if current_engine(engine) == "spark":
        return f"datediff({end}, {start})"
    return f"date_diff('day', {start}, {end})"


def split_count(text: str, separator: str, engine: str | None = None) -> str:
    """How many parts ``text`` has when split at the literal ``separator`` (no regex characters)."""
    if current_engine(engine) == "spark":
        return f"size(split({text}, {separator}))"
    return f"len(string_split({text}, {separator}))"


def quantiles(column: str, fractions: str, engine: str | None = None) -> str:
    """The exact (interpolated) quantiles of ``column`` at ``fractions`` (a comma-separated list), as a list."""
    if current_engine(engine) == "spark":
        return f"percentile({column}, array({fractions}))"
    return f"quantile_cont({column}, [{fractions}])"


def count_below(values: str, value: str, engine: str | None = None) -> str:
    """How many elements of the list ``values`` are below ``value``."""
    if current_engine(engine) == "spark":
        return f"size(filter({values}, e -> e < {value}))"
    return f"len(list_filter({values}, lambda e: e < {value}))"


def numbers(count: int, column: str, engine: str | None = None) -> str:
    """A select of ``column`` = 0, 1, ..., ``count`` - 1."""
    if current_engine(engine) == "spark":
        return f"select explode(sequence(0, {count - 1})) as {column}"
    return f"select unnest(range({count})) as {column}"
