"""fct_household_features builds incrementally: after nights with a changing world, the table equals a
full rebuild row for row, and each incremental night rebuilt only part of it.

On a copy of the session's small ml world (its night 1, the full build, is the fixture's own), two
more nights each advance the sandbox one business day (a CRM day with new, updated and deleted
households, contacts, opportunities, cases and tasks; the next billing month; broker files), extract
the Salesforce delta, land the new billing month and build the customer side incrementally. Then the
nightly DAG's full refresh (``northstar.dbt.build_nightly(full_refresh=True)``) rebuilds the customer
side from scratch over the same warehouse.

The memory discipline of `large` is exercised at this size: the incremental nights build the household
x cutoff tables in batches of 3,000 grid rows (about a dozen statements each, as `large` builds its
33M rows in batches of 1M), the full refresh in one statement, and the two must agree.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

import northstar.warehouse

pytestmark = pytest.mark.integration

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "dbt"))


def _features(cfg) -> pl.DataFrame:
    with northstar.warehouse.connect(read_only=True, cfg=cfg) as con:
        frame = con.execute(northstar.warehouse.render("select * from {fct_household_features}")).df()
    return pl.from_pandas(frame).sort("household_id", "cutoff_on")


def _mark(cfg, sql: str) -> int:
    """Mark or unmark the rows in place (feature_key: the incremental logic never reads it)."""
    with northstar.warehouse.connect(cfg=cfg) as con:
        con.execute(northstar.warehouse.render(sql))
        return con.execute(northstar.warehouse.render(
            "select count(*) from {fct_household_features} where feature_key like 'kept:%'")).fetchone()[0]


def test_incremental_nights_equal_a_full_rebuild(ml_world, tmp_path, monkeypatch):
    from nights import night

    from northstar import settings as settings_module
    from northstar.dbt import build_nightly

    root = tmp_path / "world"
    for name in ("state", "drop", "truth", "landing"):
        shutil.copytree(ml_world.root / name, root / name)
    shutil.copytree(ml_world.root / "var" / "warehouse", root / "var" / "warehouse",
                    ignore=shutil.ignore_patterns("duckdb-tmp"))
    monkeypatch.setenv("NORTHSTAR_HOME", str(root / "var"))
    monkeypatch.setenv("NORTHSTAR_LANDING", str(root / "landing"))
    monkeypatch.setenv("NORTHSTAR_TRUTH", str(root / "truth"))
    monkeypatch.setenv("NORTHSTAR_HOUSEHOLD_BATCH_ROWS", "3000")
    settings_module.reset_cache()
    cfg = settings_module.settings()
    assert cfg.household_batch_rows == 3000
    try:
        before = _features(cfg)
        for number in (2, 3):
            _mark(cfg, "update {fct_household_features} set feature_key = 'kept:' || feature_key")
            night(root, number, cfg)
            kept = _mark(cfg, "select 1")
            # unmarked, the surviving rows are again exactly what the night left
            assert _mark(cfg, "update {fct_household_features} set feature_key = substr(feature_key, 6) "
                              "where feature_key like 'kept:%'") == 0
            after = _features(cfg)
            # incremental: most rows (closed label windows of unchanged households) were left in place,
            # the rest rebuilt: the open windows, the new cutoff, the changed households
            assert 0.5 * after.height < kept < after.height, (kept, after.height)
            assert after["cutoff_on"].max() > before["cutoff_on"].max()  # the new billing month's cutoff
            before = after
        incremental = before
        # the nightly DAG's full_refresh param: the customer side rebuilt from scratch, one statement per
        # table, the trade side built
        monkeypatch.delenv("NORTHSTAR_HOUSEHOLD_BATCH_ROWS")
        settings_module.reset_cache()
        cfg = settings_module.settings()
        build_nightly(full_refresh=True, cfg=cfg)
        northstar.warehouse.release_dbt_handles()
        full = _features(cfg)
        assert_frame_equal(incremental, full, check_exact=False, rel_tol=1e-9)
        # the nights changed what the features see: households arrived and left
        seeded = {f"HH{n:07d}" for n in range(1, 1001)}
        households = set(full["household_id"])
        assert households - seeded and seeded - households
    finally:
        northstar.warehouse.release_dbt_handles()
        settings_module.reset_cache()

