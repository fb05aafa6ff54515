"""ml.registry on a real MLflow sqlite store: a better challenger is promoted, a worse one is not,
the decision is logged, loading goes through @champion and rollback moves the alias back."""

from __future__ import annotations

import mlflow
import numpy as np
import pytest
import xgboost as xgb
from mlflow import MlflowClient

from ml import registry
from ml.metrics import spearman

pytestmark = pytest.mark.integration

NAME = "northstar-test-model"


def _holdout():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(400, 3))
    y = x[:, 0] * 2 + rng.normal(scale=0.3, size=400)
    return x, y


def _train_and_register(x, y, noise: float) -> str:
    rng = np.random.default_rng(int(noise * 100))
    label = y + rng.normal(scale=noise, size=y.size)
    booster = xgb.train({"max_depth": 2, "nthread": 1}, xgb.DMatrix(x, label=label), 20)
    with registry.start_training_run(NAME) as run:
        info = mlflow.xgboost.log_model(booster, name="model", pip_requirements=registry.pip_requirements())
    return str(registry.register_challenger(info.model_uri, NAME, run_id=run.info.run_id).version)


def _evaluate(x, y):
    def evaluate(uri: str) -> dict[str, float]:
        model = mlflow.xgboost.load_model(uri)
        return {"spearman": spearman(y, model.predict(xgb.DMatrix(x)))}
    return evaluate


def test_the_logged_model_id_goes_with_its_source():
    """A tracking server refuses a `models:/m-<id>` source without the model's id; a local store keeps
    no model id on a version, so registering through the server is the stack suite's to show."""
    assert registry.logged_model_id("models:/m-0123abcd") == "m-0123abcd"
    assert registry.logged_model_id("models:/northstar-clv@champion") is None
    assert registry.logged_model_id("models:/northstar-clv/3") is None
    assert registry.logged_model_id("runs:/abc/model") is None


def test_experiment_artifacts_go_where_the_root_says(northstar_home, monkeypatch):
    from northstar import settings as settings_module

    for root, expected in (("mlflow-artifacts:/", "mlflow-artifacts:/northstar-clv"),
                           ("s3://bucket/mlflow/", "s3://bucket/mlflow/northstar-clv")):
        monkeypatch.setenv("NORTHSTAR_MLFLOW_ARTIFACT_ROOT", root)
        settings_module.reset_cache()
        assert registry._artifact_location(settings_module.settings(), "northstar-clv") == expected
    folder = northstar_home.paths.var / "artifacts"
    monkeypatch.setenv("NORTHSTAR_MLFLOW_ARTIFACT_ROOT", str(folder))
    settings_module.reset_cache()
    assert registry._artifact_location(settings_module.settings(), "northstar-clv") == (folder / "northstar-clv").as_uri()


def test_promotion_keeps_the_better_champion(northstar_home):
    x, y = _holdout()
    thresholds = {"spearman": registry.MetricThreshold(threshold=0.2, min_absolute_change=0.01,
                                                       greater_is_better=True)}
    good = _train_and_register(x, y, noise=0.1)
    first = registry.promote_if_better(NAME, good, _evaluate(x, y), thresholds)
    assert first.promoted and first.champion_version is None
    assert str(registry.alias_version(NAME, registry.CHAMPION).version) == good

    worse = _train_and_register(x, y, noise=8.0)
    decision = registry.promote_if_better(
        NAME, worse, _evaluate(x, y), thresholds,
        checks=[registry.PromotionCheck("fairness", True, "ok")])
    assert not decision.promoted
    assert decision.challenger_metrics["spearman"] < decision.champion_metrics["spearman"]
    assert any("spearman" in r and "FAILED" in r for r in decision.reasons)
    assert str(registry.alias_version(NAME, registry.CHAMPION).version) == good
    assert str(registry.alias_version(NAME, registry.CHALLENGER).version) == worse

    client = MlflowClient()
    version = client.get_model_version(NAME, worse)
    assert version.tags["promotion_decision"] == "rejected"
    artifacts = [a.path for a in client.list_artifacts(version.run_id, "promotion")]
    assert f"promotion/decision-v{worse}.json" in artifacts

    # A failing extra gate blocks even a better model.
    better = _train_and_register(x, y, noise=0.0)
    blocked = registry.promote_if_better(NAME, better, _evaluate(x, y), {
        "spearman": registry.MetricThreshold(threshold=0.0, greater_is_better=True)},
        checks=[registry.PromotionCheck("drift", False, "psi 0.4 > 0.25")])
    assert not blocked.promoted and str(registry.alias_version(NAME, registry.CHAMPION).version) == good

    forced = registry.promote_if_better(NAME, better, _evaluate(x, y), thresholds, force=True)
    assert forced.promoted
    model, loaded = registry.load_model(NAME, flavor="xgboost")
    assert str(loaded.version) == better and isinstance(model, xgb.Booster)

    assert registry.rollback(NAME) == good
    assert str(registry.alias_version(NAME, registry.CHAMPION).version) == good
    experiment = client.get_experiment_by_name(NAME)
    assert experiment.artifact_location.endswith(NAME)


def test_load_model_without_champion_raises(northstar_home):
    with pytest.raises(LookupError):
        registry.load_model("northstar-missing")
