"""Running the dbt project (``dbt_project/``) in-process, the way DAG tasks and tests do.

dbt reads its paths from the same ``NORTHSTAR_*`` settings as every other stage, so a task, a test
and a person at a shell build the same warehouse. A failing model or test raises ``DbtBuildError``
carrying dbt's own messages, which is what the Airflow log shows.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass

from northstar.settings import Settings, pii_salt, settings
from northstar.warehouse import restrict, spark_environment

log = logging.getLogger(__name__)


class DbtBuildError(RuntimeError):
    """dbt reported a failure; the message lists each failed node and dbt's error."""


@dataclass(frozen=True)
class DbtResult:
    command: str
    invocation_id: str | None
    nodes: int
    failures: list[str]
    warnings: list[str]

    def as_dict(self) -> dict:
        return {
            "command": self.command,
            "invocation_id": self.invocation_id,
            "nodes": self.nodes,
            "failures": self.failures,
            "warnings": self.warnings,
        }


def dbt_environment(cfg: Settings) -> dict[str, str]:
    """The variables profiles.yml and the sources read."""
    return {
        "NORTHSTAR_WAREHOUSE": str(cfg.paths.warehouse),
        "NORTHSTAR_LANDING": str(cfg.paths.landing),
        "DBT_PROFILES_DIR": str(cfg.paths.dbt_profiles),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "False",
        # the same engine settings as every other connection (northstar.warehouse.engine_config)
        "NORTHSTAR_DUCKDB_MEMORY_LIMIT": cfg.duckdb_memory_limit,
        "NORTHSTAR_DUCKDB_TEMP_DIR": str(cfg.paths.duckdb_temp),
        # the installation's secret salt of hash_pii (macros/pii.sql has no default on purpose)
        "NORTHSTAR_PII_SALT": pii_salt(cfg).reveal(),
        # the engine's target (dev: DuckDB, spark: dbt-spark's session), and the Spark session's
        # settings, the same the Python engine layer uses (northstar.warehouse.spark_conf)
        "NORTHSTAR_DBT_TARGET": cfg.dbt_target,
        **spark_environment(cfg),
    }


@contextlib.contextmanager
def scoped_environment(values: dict[str, str]):
    """Environment variables set for the length of a block only: dbt's profile variables for one
    in-process run (a later task or test in the same process must see its own settings)."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def release_warehouse() -> None:
    """Close dbt-duckdb's process-wide handle (see ``northstar.warehouse.release_dbt_handles``)."""
    from northstar.warehouse import release_dbt_handles

    release_dbt_handles()


def observed_at_vars(logical_date) -> dict:
    """dbt vars that stamp a build with the run's logical time instead of the wall clock.

    ``recon_observed_at`` (macros/recon.sql) is when a reconciliation saw a break (``first_seen_at``,
    ``last_seen_at``, ``cleared_at``): from the Airflow run's logical time, a rerun or a retry of the
    same run writes the same stamps, so the warehouse it leaves is the same. Without it (a manual
    ``dbt build``), dbt's own ``run_started_at`` is used.
    """
    if logical_date is None:
        return {}
    if logical_date.tzinfo is not None:
        from datetime import UTC

        logical_date = logical_date.astimezone(UTC).replace(tzinfo=None)
    return {"recon_observed_at": logical_date.strftime("%Y-%m-%d %H:%M:%S")}


def run_dbt(
    command: str,
    args: Iterable[str] = (),
    dbt_vars: dict | None = None,
    cfg: Settings | None = None,
) -> DbtResult:
    """Run ``dbt <command> <args>`` on the project and raise ``DbtBuildError`` when anything fails."""
    from dbt.cli.main import dbtRunner

    cfg = cfg or settings()
    cfg.paths.warehouse.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    cfg.paths.duckdb_temp.mkdir(parents=True, exist_ok=True)
    cli_args = [
        command,
        "--project-dir",
        str(cfg.paths.dbt_project),
        "--profiles-dir",
        str(cfg.paths.dbt_profiles),
        "--target-path",
        str(cfg.paths.dbt_target_dir),
        *args,
    ]
    # the firm's timezone from settings, so dbt reads firm time the way every other stage does
    cli_args += ["--vars", json.dumps({"firm_timezone": cfg.timezone, "household_batch_rows": cfg.household_batch_rows,
                                       **(dbt_vars or {})})]
    warnings: list[str] = []

    def _collect(event) -> None:
        level = getattr(event.info, "level", "")
        if level == "warn":
            warnings.append(event.info.msg)

    log.info("dbt %s", " ".join(cli_args))
    try:
        with scoped_environment(dbt_environment(cfg)):
            result = dbtRunner(callbacks=[_collect]).invoke(cli_args)
    finally:
        release_warehouse()
        restrict(cfg.paths.warehouse)  # dbt may have created the file: client data, owner only
    failures: list[str] = []
    nodes = 0
    invocation_id = None
    run_results = getattr(result, "result", None)
    for node_result in getattr(run_results, "results", None) or []:
        nodes += 1
        status = str(getattr(node_result, "status", "")).lower()
        if status in {"error", "fail", "runtime error"}:
            failures.append(f"{node_result.node.unique_id}: {status}: {node_result.message}")
    args_obj = getattr(run_results, "args", None)
    if isinstance(args_obj, dict):
        invocation_id = args_obj.get("invocation_id")
    if invocation_id is None:
        try:
            from dbt_common.invocation import get_invocation_id

            invocation_id = get_invocation_id()
        except Exception:  # noqa: BLE001 - the id is lineage metadata, not a reason to fail
            invocation_id = None
    if not result.success:
        detail = "\n".join(failures) or str(result.exception or "dbt reported failure")
        raise DbtBuildError(f"dbt {command} failed:\n{detail}")
    return DbtResult(command, invocation_id, nodes, failures, warnings)


def build_nightly(logical_date=None, full_refresh: bool = False, cfg: Settings | None = None) -> DbtResult:
    """The nightly build: ``nightly_all``, or ``nightly_reconciled`` (no trade re-matching) when every landed
    trade file is reconciled already; incremental, or with ``full_refresh`` the customer side
    rebuilt from scratch (``--full-refresh`` on selector ``nightly_customer``, e.g. fct_household_features)
    and then the trade side built as every night. The trade side's incremental tables are not refreshed:
    the break register's ``first_seen_at`` history cannot be rebuilt from the landing. Returns the
    customer build's result (its invocation id is the features' lineage)."""
    from northstar.recon import trade_side_current

    dbt_vars = observed_at_vars(logical_date)
    if not full_refresh:
        # the intraday runs re-match every business date that gets files; when they have matched all
        # of them the night builds the customer side and the break-anomaly features only
        selector = "nightly_reconciled" if trade_side_current(cfg) else "nightly_all"
        log.info("nightly build: selector %s", selector)
        return run_dbt("build", ["--selector", selector], dbt_vars=dbt_vars, cfg=cfg)
    customer = run_dbt("build", ["--selector", "nightly_customer", "--full-refresh"], dbt_vars=dbt_vars, cfg=cfg)
    trading = run_dbt("build", ["--selector", "break_anomaly_features" if trade_side_current(cfg)
                                else "intraday_trading_scored"], dbt_vars=dbt_vars, cfg=cfg)
    return DbtResult(customer.command, customer.invocation_id, customer.nodes + trading.nodes,
                     customer.failures + trading.failures, customer.warnings + trading.warnings)
