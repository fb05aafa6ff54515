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

from northstar.settings import Settings, settings

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
    """Close the DuckDB handle dbt-duckdb keeps open after an in-process run.

    dbt-duckdb holds its read-write connection in a class-level environment for the life of the
    process. Under ``airflow dags test`` (and in tests) the next task runs in the same process and
    opens the warehouse read-only, which DuckDB refuses while that handle exists; a task on a worker
    would merely hold the file lock longer than it needs to.
    """
    try:
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager
    except ImportError:  # another adapter: nothing process-wide to release
        return
    with DuckDBConnectionManager._LOCK:
        environment = DuckDBConnectionManager._ENV
        if environment is not None:
            try:
                environment.close()
            finally:
                DuckDBConnectionManager._ENV = None


def run_dbt(
    command: str,
    args: Iterable[str] = (),
    dbt_vars: dict | None = None,
    cfg: Settings | None = None,
) -> DbtResult:
    """Run ``dbt <command> <args>`` on the project and raise ``DbtBuildError`` when anything fails."""
    from dbt.cli.main import dbtRunner

    cfg = cfg or settings()
    cfg.paths.warehouse.parent.mkdir(parents=True, exist_ok=True)
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
    if dbt_vars:
        cli_args += ["--vars", json.dumps(dbt_vars)]
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
