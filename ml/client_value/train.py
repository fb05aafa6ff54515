"""Training a client-value model, step by step: fit on the rolling-origin training cutoffs
(``model``), judge on the holdout next to the baselines (``evaluate``), log the run to MLflow (params,
metrics, lineage, plots, model card, drift references, the model), register it as ``challenger`` and let
``promote`` decide whether it becomes ``champion``. ``train_if_due`` is the nightly DAG's entry point.

Both models learn from the rolling-origin training cutoffs of ``features.plan_cutoffs`` and are judged on the
holdout cutoff (the latest one with a complete outcome window) next to the baselines: last-12-months
carry-forward and BG/NBD + Gamma-Gamma fitted on the monthly fee billings up to the holdout cutoff
(1 - P(alive) is the BG/NBD attrition score).
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import xgboost as xgb
from mlflow.models import infer_signature

from ml import drift, registry
from ml.client_value.evaluate import (
    HoldoutEvaluation,
    evaluate_holdout,
    group_metrics,
    model_card,
    plots,
    score_metrics,
)
from ml.client_value.features import FEATURE_COLUMNS, TrainingData, load_features, model_matrix, training_data
from ml.client_value.model import (
    MODELS,
    ClvSelection,
    TrainingConfig,
    fit,
    fit_clv,
    model_rows,
    predict,
    select_clv,
)
from ml.client_value.promote import baseline_check, drift_check, judge, thresholds
from ml.metrics import decile_table, reliability_table
from northstar.settings import Settings, settings

log = logging.getLogger(__name__)


@dataclass
class TrainingResult:
    model: str
    registered_name: str
    run_id: str
    version: str
    metrics: dict[str, float]
    baseline_metrics: dict[str, dict[str, float]]
    decision: registry.PromotionDecision
    lineage: dict
    seconds: float
    extra: dict = field(default_factory=dict)

    def summary(self) -> dict:
        return {"model": self.model, "version": registry.version_label(self.registered_name, self.version),
                "run_id": self.run_id, "promoted": self.decision.promoted, "reasons": self.decision.reasons,
                "metrics": self.metrics, "baselines": self.baseline_metrics, "seconds": round(self.seconds, 1)}


def train_model(kind: str, data: TrainingData, config: TrainingConfig | None = None, force: bool = False,
                cfg: Settings | None = None, scoring_frame: pd.DataFrame | None = None) -> TrainingResult:
    """Fit one model, evaluate it and the baselines on the holdout, log everything, register, judge."""
    if kind not in MODELS:
        raise ValueError(f"unknown model {kind!r}; expected one of {sorted(MODELS)}")
    config = config or TrainingConfig()
    cfg = cfg or settings()
    name = MODELS[kind]
    started = time.perf_counter()

    fit_started = time.perf_counter()
    selection = None
    if kind == "clv":  # depth, rounds and booster-or-carry-forward chosen inside the training cutoffs
        selection = select_clv(data.validation_train, data.validation, config, data.plan.validation,
                               data.plan.validation_gap_months)
        log.info("clv selection: %s", selection.reason)
        booster = fit_clv(data.train, selection, config)
    else:
        booster = fit(kind, data.train, config)
    fit_seconds = time.perf_counter() - fit_started
    evaluation = evaluate_holdout(kind, booster, data, config, cfg)

    train_rows = model_rows(kind, data.train)
    profile = drift.reference_profile(model_matrix(train_rows), {"score": predict(booster, train_rows)})
    if scoring_frame is None:
        scoring_frame = load_features([data.plan.scoring], cfg)
    population = scoring_frame if kind == "clv" else scoring_frame.loc[
        scoring_frame["is_active_at_cutoff"].fillna(False).astype(bool)]
    # The nightly monitor's reference: the population this model was trained *for* (the latest billed
    # cutoff at training time). Training cutoffs are a year or more old by construction (their labels
    # must be complete), so against them every night would "drift" and retraining could never reset it.
    deployment_profile = drift.reference_profile(model_matrix(population),
                                                 {"score": predict(booster, population)}) if len(population) else profile

    run_id, model_uri, lineage = _log_run(kind, name, booster, data, evaluation, train_rows, profile,
                                          deployment_profile, fit_seconds, config, cfg, selection)
    version = registry.register_challenger(
        model_uri, name, run_id=run_id,
        tags={"holdout_cutoff": lineage["holdout_cutoff"], "feature_snapshot_hash": data.snapshot_hash,
              "dbt_invocation_id": lineage["dbt_invocation_id"]},
        description=f"{kind} model trained to holdout {lineage['holdout_cutoff']}", cfg=cfg)

    evaluate, champion = _on_holdout(kind, evaluation)
    drift_result, drift_table = drift_check(profile, population, booster, config.score_psi_ceiling)
    checks = [drift_result, baseline_check(kind, evaluation.metrics, evaluation.baselines, evaluation.y)]
    decision = judge(name, str(version.version), evaluate, thresholds(kind, config), evaluation.groups, champion,
                     kind, config, checks, force, run_id, cfg, challenger_metrics=evaluation.metrics)
    if not drift_table.empty:
        registry.configure(cfg).log_dict(run_id, drift_table.to_dict(orient="records"),
                                         "evaluation/drift_training_vs_scoring.json")
    extra = {"fit_seconds": fit_seconds} | ({"selection": selection} if selection is not None else {})
    return TrainingResult(kind, name, run_id, str(version.version), evaluation.metrics, evaluation.baselines,
                          decision, lineage, time.perf_counter() - started, extra)


def _log_run(kind: str, name: str, booster: xgb.Booster, data: TrainingData, evaluation: HoldoutEvaluation,
             train_rows: pd.DataFrame, profile: dict, deployment_profile: dict, fit_seconds: float,
             config: TrainingConfig, cfg: Settings,
             selection: ClvSelection | None = None) -> tuple[str, str, dict]:
    """The model's MLflow run: params, metrics, lineage, drift references, plots, model card and the model.
    Returns the run id, the logged model's URI and the lineage."""
    metrics, baselines, groups = evaluation.metrics, evaluation.baselines, evaluation.groups
    y, prediction, holdout = evaluation.y, evaluation.prediction, evaluation.holdout
    with registry.start_training_run(name, run_name=f"{kind}-{data.plan.holdout.date()}", cfg=cfg) as run:
        lineage = data.lineage()
        params = config.xgb_params(kind)
        if selection is not None:
            params = {"booster": "gblinear (carry-forward)"} if selection.is_fallback else (
                params | {"max_depth": selection.max_depth})
            mlflow.log_params({"selected": selection.chosen, "selected_rounds": selection.rounds,
                               "validation_cutoff": str(lineage["validation_cutoff"]),
                               "validation_gap_months": str(selection.gap_months)})
            mlflow.log_dict(selection.as_dict(), "evaluation/selection.json")
        mlflow.log_params({**{f"xgb_{k}": v for k, v in params.items()},
                           "n_estimators": config.n_estimators, "features": len(FEATURE_COLUMNS),
                           "holdout_cutoff": lineage["holdout_cutoff"],
                           "train_cutoffs": ",".join(lineage["train_cutoffs"])[:6000],
                           "scoring_cutoff": lineage["scoring_cutoff"],
                           "feature_snapshot_hash": data.snapshot_hash,
                           "dbt_invocation_id": lineage["dbt_invocation_id"]})
        mlflow.set_tags({"dbt_invocation_id": lineage["dbt_invocation_id"],
                         "feature_snapshot_hash": data.snapshot_hash, "northstar.kind": kind})
        mlflow.log_metrics({f"holdout_{k}": v for k, v in metrics.items() if np.isfinite(v)})
        for baseline, values in baselines.items():
            mlflow.log_metrics({f"baseline_{baseline}_{k}": v for k, v in values.items() if np.isfinite(v)})
        mlflow.log_metrics({"fit_seconds": fit_seconds, "train_rows": float(len(train_rows)),
                            "holdout_rows": float(len(holdout))})
        mlflow.log_dict(lineage, "lineage.json")
        mlflow.log_dict(deployment_profile, "drift_reference.json")
        mlflow.log_dict(profile, "drift_reference_training.json")
        mlflow.log_dict({"metrics": metrics, "baselines": baselines}, "evaluation/holdout_metrics.json")
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            for path in plots(kind, booster, holdout, y, prediction, folder):
                mlflow.log_artifact(str(path), "plots")
            if kind == "clv":
                decile_table(y, prediction).to_csv(folder / "decile_calibration.csv")
                mlflow.log_artifact(str(folder / "decile_calibration.csv"), "evaluation")
            else:
                reliability_table(y, prediction).to_csv(folder / "reliability.csv", index=False)
                mlflow.log_artifact(str(folder / "reliability.csv"), "evaluation")
            groups.to_csv(folder / "metrics_by_segment.csv", index=False)
            mlflow.log_artifact(str(folder / "metrics_by_segment.csv"), "evaluation")
        mlflow.log_text(model_card(kind, name, data, metrics, baselines, groups, config, selection), "model_card.md")

        example = model_matrix(train_rows).head(5)
        signature = infer_signature(example, booster.predict(xgb.DMatrix(example, feature_names=FEATURE_COLUMNS)))
        info = mlflow.xgboost.log_model(booster, name="model", signature=signature, input_example=example,
                                        pip_requirements=registry.pip_requirements())
        return run.info.run_id, info.model_uri, lineage


def _on_holdout(kind: str, evaluation: HoldoutEvaluation) -> tuple:
    """``evaluate(uri)`` for the promotion: a registered model's metrics on this holdout. The champion's
    metrics and group metrics are kept (``champion``) for the fairness and error checks, and it is scored
    once, however often the judge asks."""
    champion: dict = {}

    def evaluate(uri: str) -> dict[str, float]:
        is_champion = uri.endswith(f"@{registry.CHAMPION}")
        if is_champion and "metrics" in champion:
            return champion["metrics"]
        values = predict(mlflow.xgboost.load_model(uri), evaluation.holdout)
        scored = score_metrics(kind, evaluation.y, values)
        if is_champion:
            champion["groups"] = group_metrics(kind, evaluation.holdout, values)
            champion["metrics"] = scored
        return scored

    return evaluate, champion


def train(models: str = "all", force: bool = False, config: TrainingConfig | None = None,
          dbt_invocation_id: str | None = None, cfg: Settings | None = None) -> dict[str, TrainingResult]:
    """Train ``clv``, ``churn`` or ``all`` on the feature mart; returns one result per model.

    The DAG calls ``ml.client_value.train.train(models="all", dbt_invocation_id=<from the dbt task>)``.
    """
    config = config or TrainingConfig()
    cfg = cfg or settings()
    kinds = list(MODELS) if models == "all" else [models]
    data = training_data(cfg, config.cutoff_step_months, config.max_train_cutoffs, dbt_invocation_id)
    scoring_frame = load_features([data.plan.scoring], cfg)
    return {kind: train_model(kind, data, config, force, cfg, scoring_frame) for kind in kinds}


def training_due(logical_date, retrain_weekday: int = 6, cfg: Settings | None = None) -> tuple[bool, str]:
    """Whether the nightly run for ``logical_date`` retrains, and why: on ``retrain_weekday`` (0 = Monday;
    default Sunday), or when the last scoring run marked a model for retraining (drift), or when a model
    has no champion yet."""
    from ml.client_value.score import needs_retraining

    flagged = [name for name, flag in needs_retraining(cfg).items() if flag]
    if pd.Timestamp(logical_date).weekday() == retrain_weekday:
        return True, "weekly retrain"
    if flagged:
        return True, f"marked for retraining or no champion: {', '.join(flagged)}"
    return False, "not the weekly retrain day and no drift or missing champion"


def train_if_due(logical_date, retrain_weekday: int = 6, models: str = "all", dbt_invocation_id: str | None = None,
                 config: TrainingConfig | None = None, cfg: Settings | None = None) -> dict:
    """Train when ``training_due`` says so (``python -m ml train`` trains unconditionally).

    Returns small metadata for XCom: ``{"trained": bool, "reason": str, "results": {kind: summary}}``.
    """
    due, reason = training_due(logical_date, retrain_weekday, cfg)
    if not due:
        return {"trained": False, "reason": reason, "results": {}}
    results = train(models, config=config, dbt_invocation_id=dbt_invocation_id, cfg=cfg)
    return {"trained": True, "reason": reason,
            "results": {kind: json.loads(json.dumps(r.summary(), default=str)) for kind, r in results.items()}}
