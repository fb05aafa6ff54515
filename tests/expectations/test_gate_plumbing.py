"""Thresholds, the DuckDB compatibility shim, the CLI and Data Docs: the plumbing around the suites."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa
from gate_helpers import make_cfg

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
