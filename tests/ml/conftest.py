"""A small world landed, built by dbt and trained on once per session (fast settings), for tests/ml."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

import northstar.warehouse

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class MlWorld:
    root: Path
    landing: Path
    truth: Path
    env: dict


def _activate(env: dict) -> None:
    from northstar import settings as settings_module

    os.environ.update(env)
    settings_module.reset_cache()


def fast_config(**overrides):
    from ml.client_value.model import TrainingConfig

    # One thread: the machine is shared, and oversubscribed XGBoost threads run several times slower.
    values = {"n_estimators": 40, "max_depth": 4, "max_train_cutoffs": 6, "cutoff_step_months": 1, "n_jobs": 1} | overrides
    return TrainingConfig(**values)


@pytest.fixture(scope="session")
def ml_world(tmp_path_factory) -> MlWorld:
    sys.path.insert(0, str(REPO_ROOT / "tests" / "dbt"))
    from world_landing import build_world_landing

    root = tmp_path_factory.mktemp("ml_world")
    world = build_world_landing(root, scale="small", seed=7)
    env = {"NORTHSTAR_HOME": str(root / "var"), "NORTHSTAR_LANDING": str(world.landing),
           "NORTHSTAR_TRUTH": str(world.truth), "NORTHSTAR_NO_AIRFLOW_CONNECTIONS": "1"}
    saved = {k: os.environ.get(k) for k in env}
    _activate(env)
    from northstar.dbt import run_dbt
    from northstar.settings import settings

    cfg = settings()
    cfg.paths.ensure()
    run_dbt("build", ["--selector", "nightly_customer"], cfg=cfg)
    northstar.warehouse.release_dbt_handles()
    yield MlWorld(root, world.landing, world.truth, env)
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    from northstar import settings as settings_module

    settings_module.reset_cache()


@pytest.fixture(scope="session")
def trained(ml_world):
    """Both models trained once and promoted (the first version has no champion to beat)."""
    from ml.client_value.train import train

    _activate(ml_world.env)
    return train("all", config=fast_config())


@pytest.fixture
def world_env(ml_world):
    _activate(ml_world.env)
    return ml_world


@pytest.fixture(scope="session")
def helpers():
    """Plain helpers for the test modules (tests/ has no package to import them from)."""
    from types import SimpleNamespace

    return SimpleNamespace(fast_config=fast_config, activate=_activate, release_warehouse=northstar.warehouse.release_dbt_handles)
