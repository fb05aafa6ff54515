"""Session fixture: one real small world (seeded, landed by the real ingest, built by the real dbt)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gate_helpers import World, make_cfg  # noqa: E402

import northstar.warehouse


@pytest.fixture(scope="session")
def world(tmp_path_factory) -> World:
    from world_landing import build_world_landing

    from northstar.dbt import run_dbt

    root = tmp_path_factory.mktemp("gates_world")
    built = build_world_landing(root, scale="small", seed=7)
    cfg = make_cfg(root / "var", landing=built.landing, warehouse=root / "warehouse" / "northstar.duckdb")
    saved = os.environ.get("NORTHSTAR_LANDING")
    try:
        run_dbt("build", ["--selector", "nightly_all"], cfg=cfg)
    finally:
        northstar.warehouse.release_dbt_handles()
        if saved is None:
            os.environ.pop("NORTHSTAR_LANDING", None)
        else:
            os.environ["NORTHSTAR_LANDING"] = saved
    return World(root=root, drop=built.drop, landing=built.landing, warehouse=cfg.paths.warehouse)
