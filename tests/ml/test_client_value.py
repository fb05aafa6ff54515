"""Client-value training, promotion, MLflow lineage and batch scoring on the small world."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

import northstar.warehouse
from ml import registry
from ml.client_value import segments
from ml.client_value.score import score
from ml.client_value.train import train
from northstar.settings import settings

pytestmark = pytest.mark.integration


def test_first_versions_are_evaluated_logged_and_promoted(trained, world_env):
    clv, churn = trained["clv"], trained["churn"]
    assert clv.decision.promoted, clv.decision.reasons
    assert churn.decision.promoted, churn.decision.reasons
    # The model beats both baselines on the holdout ranking metrics (small world, fast settings).
    for baseline in ("carry_forward", "bgnbd_gg"):
        assert clv.metrics["spearman"] > clv.baseline_metrics[baseline]["spearman"]
        assert clv.metrics["gini"] > clv.baseline_metrics[baseline]["gini"]
    assert churn.metrics["auc"] > 0.5
    lineage = clv.lineage
    assert lineage["holdout_cutoff"] > max(lineage["train_cutoffs"])
    assert lineage["dbt_invocation_id"] not in (None, "unknown")

    client = MlflowClient()
    run = client.get_run(clv.run_id)
    assert run.data.tags["dbt_invocation_id"] == lineage["dbt_invocation_id"]
    assert "baseline_bgnbd_gg_gini" in run.data.metrics and "holdout_spearman" in run.data.metrics
    names = {a.path for a in client.list_artifacts(clv.run_id)}
    assert {"model_card.md", "lineage.json", "drift_reference.json", "plots", "evaluation"} <= names
    plots = {a.path for a in client.list_artifacts(clv.run_id, "plots")}
    assert {"plots/feature_importance.png", "plots/contribution_summary.png", "plots/decile_calibration.png"} <= plots
    churn_plots = {a.path for a in client.list_artifacts(churn.run_id, "plots")}
    assert "plots/pr_curve.png" in churn_plots
    card = client.download_artifacts(clv.run_id, "model_card.md")
    text = open(card).read()
    assert "## Intended use" in text and "## Limitations" in text and "aum_band" in text
    # The model was chosen inside the training cutoffs (never at the holdout), and the card says how and
    # states carry-forward's RMSE next to the model's.
    selection = clv.extra["selection"]
    assert selection.validation_cutoff == pd.Timestamp(lineage["validation_cutoff"]) < pd.Timestamp(lineage["holdout_cutoff"])
    assert selection.validation_cutoff == pd.Timestamp(max(lineage["train_cutoffs"]))
    assert "## Model selection (inside the training cutoffs" in text and f"Chosen: **{selection.chosen}**" in text
    assert "**RMSE against carry-forward:**" in text
    assert f"{clv.baseline_metrics['carry_forward']['rmse']:,.2f}" in text
    assert "evaluation" in names and run.data.params["selected"] == selection.chosen
    experiment = client.get_experiment(run.info.experiment_id)
    assert experiment.name == registry.CLV_MODEL
    assert str(registry.alias_version(registry.CLV_MODEL).version) == clv.version


def test_worse_challenger_is_not_promoted(trained, world_env, helpers):
    champion_before = str(registry.alias_version(registry.CLV_MODEL).version)
    worse = train("clv", config=helpers.fast_config(n_estimators=3, max_depth=1, run_baselines=False))["clv"]
    assert not worse.decision.promoted
    assert worse.decision.champion_version == champion_before
    assert worse.decision.champion_metrics["gini"] > worse.decision.challenger_metrics["gini"]
    assert any(r.startswith("FAILED") and "gini" in r for r in worse.decision.reasons)
    assert str(registry.alias_version(registry.CLV_MODEL).version) == champion_before
    assert str(registry.alias_version(registry.CLV_MODEL, registry.CHALLENGER).version) == worse.version
    version = MlflowClient().get_model_version(registry.CLV_MODEL, worse.version)
    assert version.tags["promotion_decision"] == "rejected"


def _scores(run_id: str) -> pd.DataFrame:
    with northstar.warehouse.connect(path=settings().paths.warehouse, read_only=True) as con:
        return con.execute("select * from scores.household_scores where scoring_run_id = ?", [run_id]).df()


def test_scoring_loads_champion_and_writes_sane_scores(trained, world_env):
    champion = registry.alias_version(registry.CLV_MODEL)
    result = score("test-run-1")
    frame = _scores("test-run-1")
    assert len(frame) == result.rows > 900 and frame["household_id"].is_unique
    assert set(frame["clv_model_version"]) == {f"{registry.CLV_MODEL}/{champion.version}"}
    assert set(frame["clv_mlflow_run_id"]) == {champion.run_id}
    assert set(frame["segment"]) <= set(segments.SEGMENTS) and frame["segment"].nunique() >= 3
    assert frame["value_percentile"].between(0, 100).all()
    assert frame["attrition_probability"].between(0, 1).all()
    np.testing.assert_allclose(frame["clv"], segments.clv(frame["predicted_revenue_12m"],
                                                          frame["attrition_probability"]), rtol=1e-9)
    policy = segments.DEFAULT_POLICY
    at_risk = frame["segment"] == segments.AT_RISK
    assert (frame.loc[at_risk, "attrition_probability"] >= policy.risk_threshold).all()
    assert (frame.loc[frame["segment"] == segments.SERVICE_EFFICIENTLY, "value_percentile"]
            < policy.core_percentile).all()
    high = frame.loc[frame["segment"] == segments.HIGH_VALUE_GROWTH]
    assert (high["value_percentile"] >= policy.high_value_percentile).all()
    # Higher CLV households sit higher in the ranking; drivers are three readable phrases.
    assert frame.sort_values("clv")["value_percentile"].is_monotonic_increasing
    active_drivers = frame.loc[~frame["top_drivers"].str.startswith("no open accounts"), "top_drivers"]
    parts = active_drivers.str.split("; ")
    assert (parts.str.len() == 3).mean() > 0.95
    assert active_drivers.str.contains(r"\((raises|lowers) (value|risk)\)").all()
    assert frame.loc[at_risk, "top_drivers"].str.contains("risk").all()

    # Rolling back is moving the alias: the next run is stamped with the version the alias points at.
    other = trained["clv"].version
    worse = registry.alias_version(registry.CLV_MODEL, registry.CHALLENGER)
    if worse is not None:
        registry.promote(registry.CLV_MODEL, worse.version)
        score("test-run-2")
        assert set(_scores("test-run-2")["clv_model_version"]) == {f"{registry.CLV_MODEL}/{worse.version}"}
        registry.rollback(registry.CLV_MODEL, other)
    score("test-run-3")
    with northstar.warehouse.connect(path=settings().paths.warehouse, read_only=True) as con:
        run = con.execute("select * from scores.scoring_runs where scoring_run_id = 'test-run-3'").df().iloc[0]
        drift_rows = con.execute("select count(*) from scores.model_drift where scoring_run_id = 'test-run-3'").fetchone()
    transitions = json.loads(run["segment_transitions"])
    assert transitions["previous_scoring_run_id"] in {"test-run-1", "test-run-2"}
    assert sum(m["households"] for m in transitions["moves"]) == run["rows"]
    assert drift_rows[0] > 30
    # Idempotent per run id.
    score("test-run-3")
    assert len(_scores("test-run-3")) == run["rows"]


def test_scores_publish_builds_the_score_marts(trained, world_env, helpers):
    from northstar.dbt import run_dbt

    result = score("publish-run", scored_at=pd.Timestamp("2030-01-01 06:00").to_pydatetime())
    run_dbt("build", ["--selector", "scores_publish"])
    helpers.release_warehouse()
    with northstar.warehouse.connect(path=settings().paths.warehouse, read_only=True) as con:
        published = con.execute("select * from main.fct_household_scores").df()
        breaks = con.execute("select count(*) from main.fct_break_scores").fetchone()[0]
    assert len(published) == result.rows and set(published["scoring_run_id"]) == {"publish-run"}
    assert published["account_id"].notna().all() and published["has_analytics_consent"].notna().all()
    assert breaks >= 0


def test_carry_forward_fallback_is_logged_registered_and_loads_as_carry_forward(trained, world_env, helpers):
    import mlflow

    from ml.client_value.features import load_features
    from ml.client_value.model import predict
    from ml.client_value.score import scoring_cutoff

    # A 0.1 % ceiling on the validation total leaves no booster eligible, so the validation ships carry-forward.
    config = helpers.fast_config(clv_abs_aggregate_error_ceiling=0.001, run_baselines=False)
    result = train("clv", config=config)["clv"]
    selection = result.extra["selection"]
    assert selection.is_fallback and "carry-forward shipped" in selection.reason
    client = MlflowClient()
    assert client.get_run(result.run_id).data.params["selected"] == "carry_forward"
    card = open(client.download_artifacts(result.run_id, "model_card.md")).read()
    assert "The shipped model IS carry-forward" in card and "Chosen: **carry_forward**" in card
    model = mlflow.xgboost.load_model(f"models:/{registry.CLV_MODEL}/{result.version}")
    frame = load_features([scoring_cutoff()])
    np.testing.assert_allclose(predict(model, frame), frame["fees_12m"].fillna(0.0), rtol=1e-5)
    # Its holdout total is outside the same 0.1 % ceiling: the gate keeps the champion.
    assert not result.decision.promoted
