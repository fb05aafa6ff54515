"""Thresholds, the DuckDB compatibility shim, the CLI and Data Docs: the plumbing around the suites."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from gate_helpers import make_cfg

import northstar.warehouse
from expectations.checks import Check
from expectations.thresholds import ENV_VAR, Thresholds, load_thresholds


@pytest.mark.unit
def test_thresholds_default_env_and_overrides(monkeypatch, tmp_path):
    assert load_thresholds() == Thresholds()
    monkeypatch.setenv(ENV_VAR, '{"scores_max_psi": 0.3}')
    assert load_thresholds().scores_max_psi == 0.3
    path = tmp_path / "thresholds.json"
    path.write_text(json.dumps({"marts_min_match_rate": 0.9}))
    monkeypatch.setenv(ENV_VAR, str(path))
    merged = load_thresholds({"scores_max_psi": 0.2})
    assert (merged.marts_min_match_rate, merged.scores_max_psi) == (0.9, 0.2)
    with pytest.raises(ValueError, match="unknown gate thresholds"):
        load_thresholds({"scores_max_pis": 0.2})


@pytest.mark.unit
def test_every_check_has_a_known_severity():
    with pytest.raises(ValueError, match="severity"):
        Check("x", "fatal", "ExpectColumnValuesToNotBeNull", {"column": "a"}, "a is never null")


@pytest.mark.unit
def test_duckdb_engine_still_discards_results_after_the_connection_closes(tmp_path):
    """Why expectations/gx_compat.py exists. When this fails upstream is fixed: drop the shim."""
    engine = sa.create_engine(f"duckdb:///{tmp_path / 'probe.duckdb'}")
    with engine.connect() as connection:
        result = connection.execute(sa.text("select 42"))
    assert result.fetchall() == []
    engine.dispose()


# A gate's validation in a fresh interpreter: what decides the exit is which objects are still alive
# when it finalizes, so it cannot run inside pytest's process.
_VALIDATE_AND_EXIT = """
import sys
from datetime import datetime
from pathlib import Path

from expectations.checks import CRITICAL, Check, Dataset
from expectations.runner import GateContext, Plan, _validate
from expectations.thresholds import load_thresholds
from northstar.settings import settings

cfg = settings()
workdir = cfg.paths.gx_root / "work"
workdir.mkdir(parents=True, exist_ok=True)
ctx = GateContext(gate="marts", run_id="exit_probe", cfg=cfg, thresholds=load_thresholds(None),
                  as_of=datetime(2026, 10, 31), options={}, workdir=workdir)
check = Check("has_rows", CRITICAL, "ExpectTableRowCountToBeBetween", {"min_value": 1}, "probe has rows")
plan = Plan(database=Path(sys.argv[1]), datasets=[Dataset("probe", "select * from probe", checks=[check])])
outcomes, _, _ = _validate(ctx, plan, build_docs=False)
assert [o.success for o in outcomes] == [True], outcomes
print("validated")
"""


@pytest.mark.integration
def test_a_gate_process_exits_without_nanobind_leak_warnings(tmp_path):
    """DuckDB's objects are freed before interpreter exit (nanobind reports any still alive, ~90 lines)."""

    warehouse = tmp_path / "tiny.duckdb"
    with northstar.warehouse.connect(path=warehouse) as con:
        con.execute("create table probe as select 1 as x")
    env = {**os.environ, "NORTHSTAR_HOME": str(tmp_path / "var"), "GX_ANALYTICS_ENABLED": "False"}
    for name in ("NORTHSTAR_WAREHOUSE", "NORTHSTAR_LANDING", "NORTHSTAR_GX_ROOT"):
        env.pop(name, None)
    done = subprocess.run([sys.executable, "-c", _VALIDATE_AND_EXIT, str(warehouse)], cwd=Path(__file__).parents[2],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "validated" in done.stdout
    assert "nanobind: leaked" not in done.stderr, done.stderr[:1500]


@pytest.mark.integration
def test_cli_runs_a_gate_and_builds_docs(world, tmp_path, monkeypatch, capsys):
    from expectations.__main__ import main
    from northstar import settings as settings_module

    cfg = make_cfg(tmp_path / "var", landing=world.landing, warehouse=tmp_path / "warehouse.duckdb")
    monkeypatch.setenv("NORTHSTAR_HOME", str(cfg.paths.var))
    monkeypatch.setenv("NORTHSTAR_LANDING", str(world.landing))
    monkeypatch.setenv("NORTHSTAR_WAREHOUSE", str(cfg.paths.warehouse))
    settings_module.reset_cache()
    try:
        code = main(["run", "--gate", "landing", "--run-id", "cli__run", "--ingest-run-id", "world_broker",
                     "--table", "billing", "--no-docs"])
        assert code == 0
        assert "landing gate PASSED for run cli__run" in capsys.readouterr().out
        # a required table the run did not land fails the gate: exit code 1 and the reason on stderr
        code = main(["run", "--gate", "landing", "--run-id", "cli__nothing", "--ingest-run-id", "world_full",
                     "--require-table", "internal_trades", "--no-docs"])
        assert code == 1
        assert "landing.required_tables.files_landed" in capsys.readouterr().err
        assert main(["docs"]) == 0
        index = cfg.paths.gx_root / "data_docs" / "index.html"
        assert capsys.readouterr().out.strip() == str(index)
        assert "landing" in index.read_text()
    finally:
        settings_module.reset_cache()


@pytest.mark.unit
def test_gx_history_is_pruned_after_the_retention(tmp_path, monkeypatch):
    import os

    from expectations.runner import _prune_history

    cfg = make_cfg(tmp_path / "var")
    old = cfg.paths.gx_root / "gx" / "uncommitted" / "validations" / "landing.x" / "old.json"
    new = cfg.paths.gx_root / "data_docs" / "validations" / "landing.x" / "new.html"
    for path in (old, new):
        path.parent.mkdir(parents=True)
        path.write_text("{}")
    os.utime(old, (0, 0))
    monkeypatch.setenv("NORTHSTAR_GX_RETENTION_DAYS", "1")
    _prune_history(cfg)
    assert not old.exists() and new.exists()
