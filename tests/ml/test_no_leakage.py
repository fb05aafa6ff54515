"""No leakage: the features of a cutoff are the same whether or not the data after it exists.

Copy the small world's landing, delete everything dated after cutoff C (billing statements of later
periods; tasks, events, cases and opportunities dated after C),
rebuild ``fct_household_features`` for C alone in a fresh warehouse, and compare every model input
with the same rows of the full build. Only the labels (which look ahead by design) may differ.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pandas as pd
import pytest

import northstar.warehouse
from ml.client_value.features import FEATURE_COLUMNS, load_features, model_matrix

pytestmark = pytest.mark.integration

CUTOFF = pd.Timestamp("2024-06-30")
DATE_COLUMNS = {"Task": ["ActivityDate", "CreatedDate"], "Event": ["StartDateTime", "CreatedDate"],
                "Case": ["CreatedDate"], "Opportunity": ["CreatedDate"]}
# Brokerage accounts stay: they map billing rows to households (Salesforce's current state), and the mart
# already counts them as open only between their opened and closed dates.


def _truncate_landing(source: Path, target: Path) -> None:
    shutil.copytree(source, target)
    for partition in (target / "broker" / "billing").iterdir():
        if partition.name.removeprefix("period=") > CUTOFF.strftime("%Y-%m"):
            shutil.rmtree(partition)
    for obj, columns in DATE_COLUMNS.items():
        for path in (target / "salesforce" / obj).rglob("*.parquet"):
            frame = pd.read_parquet(path)
            keep = pd.Series(True, index=frame.index)
            for column in columns:
                when = pd.to_datetime(frame[column], errors="coerce", utc=True).dt.tz_localize(None)
                keep &= when.isna() | (when.dt.normalize() <= CUTOFF)
            assert (~keep).any(), f"{obj}: nothing after the cutoff to remove"
            frame.loc[keep].to_parquet(path, index=False)


def test_features_for_a_cutoff_never_read_later_data(ml_world, tmp_path, helpers):
    _activate, _release_warehouse = helpers.activate, helpers.release_warehouse
    _activate(ml_world.env)
    full = load_features([CUTOFF])
    assert len(full) > 500

    truncated_landing = tmp_path / "landing"
    _truncate_landing(ml_world.landing, truncated_landing)
    env = {**ml_world.env, "NORTHSTAR_LANDING": str(truncated_landing),
           "NORTHSTAR_WAREHOUSE": str(tmp_path / "warehouse.duckdb")}
    saved = {k: os.environ.get(k) for k in env}
    _activate(env)
    try:
        from northstar.dbt import run_dbt

        run_dbt("build", ["--select", "+fct_household_features", "+dim_households", "--exclude", "test_type:data"],
                dbt_vars={"feature_cutoffs": [str(CUTOFF.date())]})
        _release_warehouse()
        with northstar.warehouse.connect(path=tmp_path / "warehouse.duckdb", read_only=True) as con:
            assert con.execute("select count(distinct cutoff_on) from main.fct_household_features").fetchone()[0] == 1
        cut = load_features([CUTOFF])
    finally:
        for k, v in saved.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
        _activate(ml_world.env)

    full = full.set_index("household_id").sort_index()
    cut = cut.set_index("household_id").sort_index()
    assert list(cut.index) == list(full.index)
    pd.testing.assert_frame_equal(model_matrix(cut), model_matrix(full), check_exact=False, rtol=1e-9)
    assert set(FEATURE_COLUMNS) == set(model_matrix(cut).columns)
    # The labels did look ahead: without the future they are unknown.
    assert full["revenue_next_12m"].notna().all() and cut["revenue_next_12m"].isna().all()
