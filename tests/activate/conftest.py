"""pytest fixtures for tests/activate (helpers in activation_world.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from activation_world import Env, seed_org  # noqa: E402

from sandbox.credentials import _random_credentials  # noqa: E402
from sandbox.server import start_in_thread  # noqa: E402


@pytest.fixture
def env(tmp_path, monkeypatch):
    from northstar import settings as settings_module

    home = tmp_path / "var"
    monkeypatch.setenv("NORTHSTAR_HOME", str(home))
    monkeypatch.setenv("NORTHSTAR_NO_AIRFLOW_CONNECTIONS", "1")
    monkeypatch.delenv("NORTHSTAR_KILL_SWITCH", raising=False)
    monkeypatch.delenv("AIRFLOW_HOME", raising=False)
    settings_module.reset_cache()
    cfg = settings_module.settings()
    cfg.paths.ensure()
    state = tmp_path / "sandbox"
    state.mkdir()
    seed_org(state)
    handle = start_in_thread(state, credentials=_random_credentials())
    yield Env(handle=handle, cfg=cfg, warehouse=cfg.paths.warehouse)
    handle.stop()
    settings_module.reset_cache()


