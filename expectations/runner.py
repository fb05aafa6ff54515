"""Run one quality gate: plan the batch, validate it with Great Expectations, record, decide.

``run_gate`` is what the DAG tasks, the CLI and the benchmark call. It asks the gate's suite module
for its datasets (SQL selects: over DuckDB views of the landing Parquet, or over the warehouse
read-only on its engine), builds the GX objects as code in the file context under ``settings().paths.gx_root``
(datasource: GX's SQL datasource over a DuckDB file, or its Spark datasource on the Spark engine, each
dataset's SQL run by Spark as a DataFrame asset; one suite, validation definition and checkpoint per dataset, then the
Data Docs site ``gx_root/data_docs``), runs the checkpoints, writes one row per
expectation to ``quality.gate_results`` in one short write transaction, logs a readable summary and
raises ``GateFailed`` when any critical expectation failed. Warnings are logged and recorded only.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import re
import shutil
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import import_module
from pathlib import Path
from typing import Any

import northstar.warehouse
from expectations.checks import CRITICAL, WARNING, Check, Dataset
from expectations.data_docs_offline import make_offline
from expectations.thresholds import Thresholds, load_thresholds
from northstar.settings import Settings, settings

log = logging.getLogger(__name__)

GATES = ("landing", "marts", "scores")
DATA_DOCS_SITE = "northstar"
RESULTS_TABLE = "quality.gate_results"
SAMPLE_ROWS = 5
DEFAULT_RETENTION_DAYS = 30  # GX's own stored results and pages; quality.gate_results keeps everything


class GateFailed(RuntimeError):
    """A critical expectation failed: nothing downstream of the gate may run.

    ``str(exc)`` is the readable summary (each failed expectation, its observed value, sample rows);
    ``exc.report`` is the full ``GateReport``.
    """

    def __init__(self, report: GateReport):
        self.report = report
        super().__init__(report.summary())


@dataclass
class ExpectationOutcome:
    expectation: str  # <gate>.<dataset>.<check>
    severity: str
    success: bool
    observed_value: str
    description: str
    sample_rows: list = field(default_factory=list)
    unexpected_query: str | None = None
    error: str | None = None

    def details(self, batch: dict) -> str:
        return json.dumps(
            {
                "description": self.description,
                "batch": batch,
                "sample_rows": self.sample_rows,
                "unexpected_query": self.unexpected_query,
                "error": self.error,
            },
            default=str,
        )


@dataclass
class GateReport:
    gate: str
    run_id: str
    success: bool
    validated_at: datetime
    duration_s: float
    batch: dict
    outcomes: list[ExpectationOutcome]
    data_docs_index: Path | None
    dataset_seconds: dict[str, float] = field(default_factory=dict)  # validation time per dataset

    @property
    def critical_failures(self) -> list[ExpectationOutcome]:
        return [o for o in self.outcomes if not o.success and o.severity == CRITICAL]

    @property
    def warnings(self) -> list[ExpectationOutcome]:
        return [o for o in self.outcomes if not o.success and o.severity == WARNING]

    def summary(self) -> str:
        verdict = "PASSED" if self.success else "FAILED"
        lines = [
            f"{self.gate} gate {verdict} for run {self.run_id}: {len(self.critical_failures)} critical failure(s), "
            f"{len(self.warnings)} warning(s), {len(self.outcomes)} expectations in {self.duration_s:.1f}s "
            f"(batch: {json.dumps(self.batch, default=str)})"
        ]
        for outcome in self.critical_failures + self.warnings:
            lines.append(f"  {outcome.severity.upper()} {outcome.expectation}: observed {outcome.observed_value}")
            lines.append(f"      expected: {outcome.description}")
            if outcome.error:
                lines.append(f"      error: {outcome.error}")
            for row in outcome.sample_rows[:SAMPLE_ROWS]:
                lines.append(f"      sample: {json.dumps(row, default=str)}")
            if outcome.unexpected_query:
                query = " ".join(outcome.unexpected_query.split())
                lines.append(f"      all offending rows: {query[:2000]}")
        if self.data_docs_index:
            lines.append(f"  Data Docs: {self.data_docs_index}")
        return "\n".join(lines)

    def as_dict(self) -> dict:
        """Small enough for XCom."""
        return {
            "gate": self.gate,
            "run_id": self.run_id,
            "success": self.success,
            "expectations": len(self.outcomes),
            "critical_failures": [o.expectation for o in self.critical_failures],
            "warnings": [o.expectation for o in self.warnings],
            "batch": json.loads(json.dumps(self.batch, default=str)),
            "duration_s": round(self.duration_s, 2),
            "data_docs": str(self.data_docs_index) if self.data_docs_index else None,
        }


@dataclass
class GateContext:
    """What a suite module gets to plan its batch."""

    gate: str
    run_id: str
    cfg: Settings
    thresholds: Thresholds
    as_of: datetime  # the run's logical time (UTC, naive) for freshness; never wall-clock inside checks
    options: dict
    workdir: Path
    batch: dict = field(default_factory=dict)  # what was validated (run ids, files, scoring run ...)


@dataclass
class Plan:
    database: Path | None  # the DuckDB file GX connects to, read-only (None on Spark)
    datasets: list[Dataset]
    # where the datasets' SQL runs: "duckdb" (the file above, through GX's SQL datasource) or "spark"
    # (the warehouse's Spark catalog, through GX's Spark datasource: each dataset a DataFrame)
    engine: str = "duckdb"


def _as_of(context: dict) -> datetime:
    for key in ("as_of", "data_interval_end", "logical_date"):
        value = context.get(key)
        if value is None:
            continue
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        if value.tzinfo is not None:
            value = value.astimezone(UTC)
        return value.replace(tzinfo=None)
    return datetime.now(UTC).replace(tzinfo=None)


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", text)


def run_gate(gate: str, run_id: str | None = None, cfg: Settings | None = None, **context: Any) -> GateReport:
    """Validate ``gate`` ('landing' | 'marts' | 'scores') for ``run_id``; raise ``GateFailed`` on a critical failure.

    Keyword context (all optional): ``as_of`` / ``data_interval_end`` / ``logical_date`` (the run's
    logical time, for freshness; default now), ``thresholds`` (dict of overrides), ``build_docs``
    (default True), ``raise_on_failure`` (default True), ``log_summary`` (default True), and per gate:
    landing ``ingest_run_ids`` (default ``[run_id]``), ``tables`` (validate only these),
    ``required_tables`` (fail unless each got a file); marts ``domains`` (``customer``, ``trading``;
    default both), ``business_dates`` (trading; default the latest); scores ``scoring_run_id`` (default the latest),
    ``baseline_scoring_run_id`` (default the last pushed run), ``kinds``, ``break_scoring_run_id``.
    """
    if gate not in GATES:
        raise ValueError(f"unknown gate {gate!r}; one of {GATES}")
    cfg = cfg or settings()
    run_id = run_id or f"manual__{datetime.now(UTC):%Y%m%dT%H%M%S}"
    started = time.monotonic()
    workdir = cfg.paths.gx_root / "work" / f"{gate}-{_safe(run_id)}-{os.getpid()}"
    workdir.mkdir(parents=True, exist_ok=True)
    ctx = GateContext(
        gate=gate,
        run_id=run_id,
        cfg=cfg,
        thresholds=load_thresholds(context.get("thresholds")),
        as_of=_as_of(context),
        options=context,
        workdir=workdir,
    )
    suite_module = import_module(f"expectations.suites.{gate}")
    northstar.warehouse.release_dbt_handles()  # a dbt build in this process is over when a gate runs
    try:
        plan: Plan = suite_module.plan(ctx)
        plan.datasets = _split_row_queries(plan.datasets)
        outcomes, docs_index, dataset_seconds = _validate(ctx, plan, build_docs=context.get("build_docs", True))
        _attach_samples(plan, outcomes)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    validated_at = datetime.now(UTC).replace(tzinfo=None)
    report = GateReport(
        gate=gate,
        run_id=run_id,
        success=not any(not o.success and o.severity == CRITICAL for o in outcomes),
        validated_at=validated_at,
        duration_s=time.monotonic() - started,
        batch=ctx.batch,
        outcomes=outcomes,
        data_docs_index=docs_index,
        dataset_seconds=dataset_seconds,
    )
    store_results(report, cfg)
    if context.get("log_summary", True):
        if report.success:
            log.info(report.summary())
        else:
            log.error(report.summary())
    if not report.success and context.get("raise_on_failure", True):
        raise GateFailed(report)
    return report


# --- Great Expectations ----------------------------------------------------------------------


@contextlib.contextmanager
def _gx_lock(cfg: Settings):
    """One gate at a time mutates the GX file context (its YAML and stores)."""
    cfg.paths.gx_root.mkdir(parents=True, exist_ok=True)
    with open(cfg.paths.gx_root / ".gate.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def gx_context(cfg: Settings):
    """A GX context whose results and suites live under ``gx_root/gx`` and whose Data Docs site is
    ``gx_root/data_docs``; its datasources, validation definitions and checkpoints live in memory.

    Those three are rebuilt from code on every gate run, so nothing is lost by not storing them. A file
    context rewrote its whole ``great_expectations.yml`` (every datasource and query asset of the last
    run of each gate) on each asset and batch definition it added: about 60 YAML dumps per marts gate,
    a quarter of the gate's time.
    """
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    import great_expectations as gx
    from great_expectations.data_context.types.base import DataContextConfig, ProgressBarsConfig

    from expectations import gx_compat

    gx_compat.install()
    root = cfg.paths.gx_root / "gx"

    def on_disk(store: str, folder: str) -> dict:
        return {"class_name": store, "store_backend": {"class_name": "TupleFilesystemStoreBackend",
                                                        "base_directory": str(root / folder)}}

    def in_memory(store: str) -> dict:
        return {"class_name": store, "store_backend": {"class_name": "InMemoryStoreBackend"}}

    config = DataContextConfig(
        stores={
            "expectations_store": on_disk("ExpectationsStore", "expectations"),
            "validation_results_store": on_disk("ValidationResultsStore", "uncommitted/validations"),
            "checkpoint_store": in_memory("CheckpointStore"),
            "validation_definition_store": in_memory("ValidationDefinitionStore"),
        },
        expectations_store_name="expectations_store",
        validation_results_store_name="validation_results_store",
        checkpoint_store_name="checkpoint_store",
        data_docs_sites={DATA_DOCS_SITE: {
            "class_name": "SiteBuilder",
            "show_how_to_buttons": False,
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            "store_backend": {"class_name": "TupleFilesystemStoreBackend",
                              "base_directory": str(cfg.paths.gx_root / "data_docs")},
        }},
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False),
    )
    return gx.get_context(mode="ephemeral", project_config=config)


def build_data_docs(cfg: Settings | None = None) -> Path:
    """Rebuild the Data Docs HTML from the stored validation results; returns ``index.html``."""
    cfg = cfg or settings()
    with _gx_lock(cfg):
        context = gx_context(cfg)
        context.build_data_docs(site_names=[DATA_DOCS_SITE])
        make_offline(cfg.paths.gx_root / "data_docs")
    return cfg.paths.gx_root / "data_docs" / "index.html"


def _expectation(check: Check, dataset: Dataset, gate: str):
    import great_expectations.expectations as gxe

    cls = getattr(gxe, check.expectation)
    name = f"{gate}.{dataset.check_prefix}.{check.name}"
    # Data Docs show a failed expectation as failed whatever its severity; the description (shown in
    # place of GX's generated sentence) says whether it stops the DAG or only warns.
    stops = "stops the DAG" if check.severity == CRITICAL else "does not stop the DAG"
    description = f"Severity {check.severity} ({stops}): {check.description or check.name}"
    return cls(severity=check.severity, description=description, meta={"northstar_check": name}, **check.kwargs)


def _select(sql: str) -> str:
    """GX query assets must start with ``select``: wrap CTE queries."""
    sql = sql.strip()
    return sql if sql.lower().startswith("select ") else f"select * from ({sql}) as dataset"  # noqa: S608 - our own SQL


# Expectations that test each row (GX "map" expectations) and the row-returning query expectation:
# on a passing batch only their unexpected count matters, so the first pass asks for BOOLEAN_ONLY
# (one bundled count query); only a failed one is validated again for samples.
_ROW_LEVEL_PREFIXES = ("ExpectColumnValues", "ExpectColumnPairValues", "ExpectCompoundColumns", "ExpectMulticolumn",
                       "ExpectSelectColumnValues")
_ROWS = "UnexpectedRowsExpectation"


def _kind(check: Check) -> str:
    if check.expectation == _ROWS:
        return "rows"
    if check.expectation.startswith(_ROW_LEVEL_PREFIXES):
        return "map"
    return "aggregate"


def _result_format(dataset: Dataset, kind: str, samples: bool) -> dict:
    """GX honours result_format per validation run, not per expectation.

    Aggregates (row counts, max, null share, column sets) report their observed value at BASIC.
    Row-level checks run first at BOOLEAN_ONLY: on a passing batch that is one bundled count query
    instead of a sample query, a value-count query and an index query per expectation. A failed one
    runs again with samples: row-returning checks (UnexpectedRowsExpectation) at COMPLETE (GX caps
    the rows at 200), column checks at SUMMARY (five samples with the dataset's key columns and the
    query that lists every offending row), so a large failure never pulls millions of values.
    """
    if kind == "aggregate":
        return {"result_format": "BASIC"}
    if not samples:
        return {"result_format": "BOOLEAN_ONLY"}
    if kind == "rows":
        return {"result_format": "COMPLETE"}
    result_format: dict = {"result_format": "SUMMARY", "partial_unexpected_count": SAMPLE_ROWS}
    if dataset.key_columns:
        result_format["unexpected_index_column_names"] = list(dataset.key_columns)
        result_format["return_unexpected_index_query"] = True
    return result_format


def _validate(ctx: GateContext, plan: Plan, build_docs: bool) -> tuple[list[ExpectationOutcome], Path | None, dict]:
    import great_expectations as gx

    checks: dict[str, tuple[Check, Dataset]] = {}
    results: dict[str, object] = {}  # check name -> its (last) ExpectationValidationResult
    identifiers: list = []
    seconds: dict[str, float] = {}
    with _gx_lock(ctx.cfg):
        context = gx_context(ctx.cfg)
        _forget_previous_definitions(context, ctx.gate)
        source = _SOURCES[plan.engine](context, ctx, plan)
        run_id = gx.RunIdentifier(run_name=ctx.run_id, run_time=datetime.now(UTC))

        def validate(dataset: Dataset, batch, group: list[Check], name: str, result_format: dict) -> None:
            batch_definition, batch_parameters = batch
            expectations = []
            for check in group:
                expectation = _expectation(check, dataset, ctx.gate)
                checks[expectation.meta["northstar_check"]] = (check, dataset)
                expectations.append(expectation)
            suite = context.suites.add_or_update(
                gx.ExpectationSuite(name=name, expectations=expectations, meta={"gate": ctx.gate})
            )
            definition = context.validation_definitions.add_or_update(
                gx.ValidationDefinition(name=name, data=batch_definition, suite=suite)
            )
            checkpoint = context.checkpoints.add_or_update(
                gx.Checkpoint(name=name, validation_definitions=[definition], actions=[], result_format=result_format)
            )
            started = time.monotonic()
            result = checkpoint.run(run_id=run_id, batch_parameters=batch_parameters)
            seconds[name] = round(time.monotonic() - started, 2)
            for identifier, validation in result.run_results.items():
                identifiers.append(identifier)
                # the suite's own page, which every validation page links to ("Expectation Suite")
                identifiers.append(identifier.expectation_suite_identifier)
                for expectation_result in validation.results:
                    results[expectation_result.expectation_config.meta["northstar_check"]] = expectation_result

        try:
            for dataset in plan.datasets:
                batch_definition = source.batch(dataset)
                aggregate = [c for c in dataset.checks if _kind(c) == "aggregate"]
                row_level = [c for c in dataset.checks if _kind(c) != "aggregate"]
                if aggregate:
                    validate(dataset, batch_definition, aggregate, f"{ctx.gate}.{dataset.name}",
                             _result_format(dataset, "aggregate", samples=False))
                if row_level:
                    validate(dataset, batch_definition, row_level, f"{ctx.gate}.{dataset.name}.rows",
                             _result_format(dataset, "map", samples=False))
                failed = [c for c in row_level if not results[f"{ctx.gate}.{dataset.check_prefix}.{c.name}"].success]
                for kind in ("map", "rows"):
                    group = [c for c in failed if _kind(c) == kind]
                    if group:
                        validate(dataset, batch_definition, group, f"{ctx.gate}.{dataset.name}.{kind}_failures",
                                 _result_format(dataset, kind, samples=True))
                source.done(dataset)
        finally:
            source.close()
        _prune_history(ctx.cfg)
        if build_docs:
            # only this run's pages (and the index): re-rendering every stored result would grow with history
            context.build_data_docs(site_names=[DATA_DOCS_SITE], resource_identifiers=identifiers)
            make_offline(ctx.cfg.paths.gx_root / "data_docs")
    outcomes = [_outcome(result, checks) for result in results.values()]
    index = ctx.cfg.paths.gx_root / "data_docs" / "index.html"
    return outcomes, (index if build_docs and index.exists() else None), seconds


class _SqlSource:
    """GX's SQL datasource over a DuckDB file (read-only): each dataset a query asset."""

    def __init__(self, context, ctx: GateContext, plan: Plan):
        self.source = context.data_sources.add_or_update_sql(
            name=f"{ctx.gate}_duckdb",
            connection_string=f"duckdb:///{plan.database}",
            kwargs={"connect_args": {"read_only": True, "config": northstar.warehouse.engine_config(ctx.cfg)}},
            create_temp_table=False,
        )

    def batch(self, dataset: Dataset) -> tuple:
        asset = self.source.add_query_asset(name=dataset.name, query=_select(dataset.sql))
        return asset.add_batch_definition_whole_table("whole"), None

    def done(self, dataset: Dataset) -> None:
        pass

    def close(self) -> None:
        _dispose(self.source)


class _SparkSource:
    """GX's Spark datasource over the warehouse's Spark session: each dataset a DataFrame asset whose
    DataFrame is the dataset's SQL run by Spark (cached while its expectations run, then released)."""

    def __init__(self, context, ctx: GateContext, plan: Plan):
        self.session = northstar.warehouse.spark_session(ctx.cfg)
        self.source = context.data_sources.add_or_update_spark(name=f"{ctx.gate}_spark", persist=True)
        self.frames: dict[str, object] = {}

    def batch(self, dataset: Dataset) -> tuple:
        asset = self.source.add_dataframe_asset(name=dataset.name)
        frame = self.session.sql(dataset.sql)
        self.frames[dataset.name] = frame
        return asset.add_batch_definition_whole_dataframe("whole"), {"dataframe": frame}

    def done(self, dataset: Dataset) -> None:
        frame = self.frames.pop(dataset.name, None)
        if frame is not None:
            frame.unpersist()

    def close(self) -> None:
        for frame in self.frames.values():
            frame.unpersist()
        self.frames.clear()


_SOURCES = {"duckdb": _SqlSource, "spark": _SparkSource}


def _prune_history(cfg: Settings) -> None:
    """Keep GX's stored validation results and their Data Docs pages for ``NORTHSTAR_GX_RETENTION_DAYS``.

    The intraday gates run every 15 minutes; the long-term record is ``quality.gate_results``.
    """
    days = float(os.environ.get("NORTHSTAR_GX_RETENTION_DAYS", DEFAULT_RETENTION_DAYS))
    cutoff = time.time() - days * 86400
    for folder in (cfg.paths.gx_root / "gx" / "uncommitted" / "validations",
                   cfg.paths.gx_root / "data_docs" / "validations"):
        if not folder.is_dir():
            continue
        for path in folder.rglob("*"):
            if path.is_file() and path.stat().st_mtime < cutoff:
                path.unlink(missing_ok=True)


def _forget_previous_definitions(context, gate: str) -> None:
    """Drop the gate's checkpoint and validation definitions stored by the previous run.

    They are rebuilt from code on every run; the stored ones name the previous run's assets, which
    the datasource update below replaces (a stale checkpoint would no longer load).
    """
    for store in (context.checkpoints, context.validation_definitions):
        with contextlib.suppress(Exception):
            for stored in store.all():
                if stored.name.startswith(f"{gate}."):
                    with contextlib.suppress(Exception):
                        store.delete(stored.name)
    for name in (f"{gate}_duckdb", f"{gate}_spark"):
        with contextlib.suppress(Exception):
            context.data_sources.delete(name)


def _dispose(source) -> None:
    """Close GX's pooled read-only DuckDB connections before anyone opens the file for writing."""
    engine = getattr(source, "_execution_engine", None)
    with contextlib.suppress(Exception):
        if engine is not None:
            engine.engine.dispose()
    with contextlib.suppress(Exception):
        source.get_engine().dispose()


def _outcome(expectation_result, checks: dict[str, tuple[Check, Dataset]]) -> ExpectationOutcome:
    config = expectation_result.expectation_config
    name = (config.meta or {}).get("northstar_check") or config.type
    check, dataset = checks[name]
    result = expectation_result.result or {}
    exception = expectation_result.exception_info or {}
    error = None
    if exception.get("raised_exception"):
        error = exception.get("exception_message")
    else:
        for info in exception.values() if isinstance(exception, dict) else []:
            if isinstance(info, dict) and info.get("raised_exception"):
                error = info.get("exception_message")
                break
    observed = _observed(result, error, bool(expectation_result.success))
    if config.type == "expect_column_proportion_of_non_null_values_to_be_between" and error is None:
        share = result.get("observed_value")
        if isinstance(share, int | float):
            observed = f"null rate {1 - share:.1%} (non-null share {share:.4g})"
    if check.samples_sql and check.expectation == "ExpectTableRowCountToBeBetween" and error is None:
        observed = f"{result.get('observed_value')} offending rows"
    samples = result.get("partial_unexpected_index_list") or (result.get("details") or {}).get("unexpected_rows")
    if not samples:
        samples = [{"value": v} for v in result.get("partial_unexpected_list") or []]
    return ExpectationOutcome(
        expectation=name,
        severity=check.severity,
        success=bool(expectation_result.success) and error is None,
        observed_value=observed,
        description=check.description,
        sample_rows=list(samples)[:SAMPLE_ROWS],
        unexpected_query=_offending_rows_query(result.get("unexpected_index_query"), dataset)
        if not expectation_result.success else None,
        error=error,
    )


def _offending_rows_query(query: str | None, dataset: Dataset) -> str | None:
    """GX writes a query asset's offending-rows query as ``FROM <select ...> WHERE``; parenthesise it."""
    if not query:
        return None
    inner = _select(dataset.sql)
    return query.replace(f"FROM {inner}", f"FROM ({inner}) AS dataset", 1)


def _observed(result: dict, error: str | None, success: bool) -> str:
    if error:
        return f"error: {error}"
    if "observed_value" in result:
        value = result["observed_value"]
        if isinstance(value, float):
            return f"{value:.6g}"
        return json.dumps(value, default=str) if isinstance(value, list | dict) else str(value)
    if not result:
        return "0 rows unexpected" if success else "failed"
    if "unexpected_count" in result:
        count = result.get("unexpected_count") or 0
        total = result.get("element_count")
        percent = result.get("unexpected_percent") or 0.0
        return f"{count} of {total} rows unexpected ({percent:.2f}%)"
    return "n/a"


def _split_row_queries(datasets: list[Dataset]) -> list[Dataset]:
    """Run each ``UnexpectedRowsExpectation`` as a dataset of its offending rows expected to be empty.

    Same verdict, same name (``<gate>.<dataset>.<check>``), one query instead of two (GX evaluates
    the row query for its count and again for its rows); the rows are fetched only on failure.
    """
    out: list[Dataset] = []
    for dataset in datasets:
        kept = [c for c in dataset.checks if c.expectation != "UnexpectedRowsExpectation"]
        if kept or not dataset.checks:
            out.append(Dataset(dataset.name, dataset.sql, dataset.key_columns, kept, dataset.label))
        for check in dataset.checks:
            if check.expectation != "UnexpectedRowsExpectation":
                continue
            query = check.kwargs["unexpected_rows_query"].replace("{batch}", f"({_select(dataset.sql)}) as batch")
            out.append(Dataset(
                name=f"{dataset.name}__{check.name}", sql=query, label=dataset.check_prefix,
                checks=[Check(check.name, check.severity, "ExpectTableRowCountToBeBetween",
                              {"min_value": 0, "max_value": 0}, check.description, query)],
            ))
    return out


def _attach_samples(plan: Plan, outcomes: list[ExpectationOutcome]) -> None:
    """Sample rows for failed aggregate checks that name their offending-rows SQL (``Check.samples_sql``)."""
    wanted = {f"{d.check_prefix}.{c.name}": c.samples_sql for d in plan.datasets for c in d.checks if c.samples_sql}
    failed = [o for o in outcomes if not o.success and o.expectation.split(".", 1)[1] in wanted]
    if not failed:
        return
    engine = northstar.warehouse.WAREHOUSES[plan.engine]
    with engine(read_only=True, path=plan.database) as warehouse:
        for outcome in failed:
            sql = wanted[outcome.expectation.split(".", 1)[1]]
            try:
                outcome.sample_rows = warehouse.records(f"select * from ({sql}) as offending limit {SAMPLE_ROWS}")  # noqa: S608 - suite SQL
            except Exception as exc:  # noqa: BLE001 - samples are for the reader; the verdict stands without them
                outcome.sample_rows = [{"samples_unavailable": str(exc)}]
            outcome.unexpected_query = sql


# --- quality.gate_results ---------------------------------------------------------------------

RESULTS_DDL = f"""
create schema if not exists quality;
create table if not exists {RESULTS_TABLE} (
    run_id varchar,
    gate varchar,
    expectation varchar,
    severity varchar,
    success boolean,
    observed_value varchar,
    details varchar,
    validated_at timestamp,
)
"""


def store_results(report: GateReport, cfg: Settings) -> None:
    """Replace this (run, gate)'s rows in ``quality.gate_results`` in one short write transaction.

    A retried task overwrites its earlier attempt. The warehouse has one writer at a time: on a
    lock conflict this waits and retries (the gate tasks belong in the ``warehouse`` pool anyway).
    """

    rows = [
        (report.run_id, report.gate, o.expectation, o.severity, o.success, o.observed_value,
         o.details(report.batch), report.validated_at)
        for o in report.outcomes
    ]
    # the seam waits for another writer's lock (the gate tasks belong in the `warehouse` pool anyway)
    with northstar.warehouse.connect(cfg=cfg) as con:
        con.execute(RESULTS_DDL)
        con.execute("begin transaction")
        con.execute(f"delete from {RESULTS_TABLE} where run_id = ? and gate = ?", [report.run_id, report.gate])  # noqa: S608 - fixed table name
        if rows:
            con.executemany(f"insert into {RESULTS_TABLE} values (?, ?, ?, ?, ?, ?, ?, ?)", rows)  # noqa: S608 - fixed table name
        con.execute("commit")
