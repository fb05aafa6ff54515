"""Helpers for the quality-gate tests: one real small world (landed + dbt-built) per session, and helpers
that derive bad batches from it the way they would arrive (a broker file dropped and landed by the
real ingest, a mart row as dbt would have written it, a scoring run as ml/ writes it).

Every gate here runs with its own ``Settings`` (``cfg=``), so nothing touches the repo's ``var/``.
"""

from __future__ import annotations

import os
import shutil
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT / "tests" / "dbt"))

# the small world's last business date is 2026-10-30: its logical time for freshness
WORLD_AS_OF = "2026-10-31T06:00:00"


@contextmanager
def _env(**values: str):
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def make_cfg(home: Path, landing: Path | None = None, warehouse: Path | None = None):
    """Settings rooted at ``home`` (gx_root = home/gx), optionally with another landing / warehouse."""
    from northstar.settings import load_settings

    values = {"NORTHSTAR_HOME": str(home)}
    if landing is not None:
        values["NORTHSTAR_LANDING"] = str(landing)
    if warehouse is not None:
        values["NORTHSTAR_WAREHOUSE"] = str(warehouse)
    removed = {k: os.environ.pop(k) for k in ("NORTHSTAR_LANDING", "NORTHSTAR_WAREHOUSE", "NORTHSTAR_GX_ROOT")
               if k in os.environ}
    try:
        with _env(**values):
            cfg = load_settings()
    finally:
        os.environ.update(removed)
    cfg.paths.ensure()
    return cfg


def release_dbt_warehouse() -> None:
    """dbt-duckdb keeps its read-write DuckDB instance open in-process; close it before reading the file."""
    from dbt.adapters.duckdb.connections import DuckDBConnectionManager

    env = DuckDBConnectionManager._ENV
    if env is not None:
        try:
            env.close()
        finally:
            DuckDBConnectionManager.close_all_connections()


@dataclass(frozen=True)
class World:
    root: Path
    drop: Path
    landing: Path
    warehouse: Path  # pristine: copy it before changing anything


def copy_warehouse(world: World, target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(world.warehouse, target)
    return target


def failed_names(report) -> set[str]:
    return {o.expectation for o in report.outcomes if not o.success}
