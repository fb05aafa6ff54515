"""Shared test plumbing: every test runs against its own NORTHSTAR_HOME (never the repo's var/)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent

# Quiet, offline defaults for every tool the suite touches.
os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "False")
os.environ.setdefault("AIRFLOW__COSMOS__ENABLE_TELEMETRY", "False")
os.environ.setdefault("SCARF_ANALYTICS", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")


@pytest.fixture
def northstar_home(tmp_path, monkeypatch):
    """A private var/ for one test: settings() resolves every path under it."""
    from northstar import settings as settings_module

    home = tmp_path / "var"
    monkeypatch.setenv("NORTHSTAR_HOME", str(home))
    monkeypatch.delenv("AIRFLOW_HOME", raising=False)
    settings_module.reset_cache()
    cfg = settings_module.settings()
    cfg.paths.ensure()
    yield cfg
    settings_module.reset_cache()
