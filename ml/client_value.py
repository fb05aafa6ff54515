"""Training, evaluation and promotion of the client-value models (``northstar-clv``, ``northstar-churn``).

* ``northstar-clv``: XGBoost regressor of ``revenue_next_12m`` (fees billed in the 12 months after the
  cutoff) with the Tweedie objective (log link, a point mass at zero plus a skewed positive part: the shape
  of fee revenue, where households that leave bill nothing). Trained on every household with a complete
  label window, active or not.
* ``northstar-churn``: XGBoost classifier of ``is_attrited_within_12m`` (a household active at the cutoff
  bills fewer than 12 of the next 12 months), logistic objective, trained on households active at the
  cutoff.

Both learn from the rolling-origin training cutoffs of ``ml.features.plan_cutoffs`` and are judged on the
holdout cutoff (the latest one with a complete outcome window) next to the baselines: last-12-months
carry-forward and BG/NBD + Gamma-Gamma fitted on the monthly fee billings up to the holdout cutoff
(1 - P(alive) is the BG/NBD attrition score). Every figure, the lineage, plots and a model card go to
the model's MLflow run; the model is registered as ``challenger`` and promoted by ``ml.registry``.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import mlflow  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import xgboost as xgb  # noqa: E402
from mlflow.models import infer_signature  # noqa: E402
from sklearn import metrics as skm  # noqa: E402

from ml import drift, registry  # noqa: E402
from ml.baselines import BGNBDGammaGamma  # noqa: E402
from ml.features import (  # noqa: E402
    FEATURE_COLUMNS,
    LABEL_ATTRITION,
    LABEL_REVENUE,
    SEGMENT_COLUMNS,
    TrainingData,
    household_months,
    load_features,
    model_matrix,
    training_data,
)
from ml.metrics import classifier_metrics, decile_table, reliability_table, value_metrics  # noqa: E402
from northstar.settings import Settings, settings  # noqa: E402

log = logging.getLogger(__name__)

MODELS = {"clv": registry.CLV_MODEL, "churn": registry.CHURN_MODEL}
MIN_GROUP = 50  # households a fairness group needs before its figures are judged
MIN_POSITIVES = 10  # and, for attrition, leavers (an AUC on 3 leavers is noise)


@dataclass
class TrainingConfig:
    """Hyper-parameters and promotion margins (tests pass a small one; the CLI takes --n-estimators)."""
    n_estimators: int = 400
    learning_rate: float = 0.05
    max_depth: int = 5
    min_child_weight: float = 10.0
    subsample: float = 0.8
    colsample_bytree: float = 0.8
    tweedie_variance_power: float = 1.2
    n_jobs: int = 2
    seed: int = 7
    cutoff_step_months: int = 1
    max_train_cutoffs: int | None = 12
    run_baselines: bool = True
    # Promotion: the challenger must beat the champion by these margins on the same holdout.
    clv_gini_margin: float = 0.005
    churn_auc_margin: float = 0.002
    clv_gini_floor: float = 0.30
    clv_abs_aggregate_error_ceiling: float = 0.20
    # Attrition within 12 months is a weak signal in a wealth book (holdout AUC 0.52-0.65 here): the
    # floor refuses a model no better than chance; beating every baseline on the same holdout and
    # the champion comparison do the rest.
    churn_auc_floor: float = 0.50
    churn_brier_ceiling: float = 0.20
    fairness_tolerance: float = 0.05  # worst group may be at most this much worse than the champion's
    # RMSE and MAE may not get worse than the champion's by more than this share (see CLV_GATE_POLICY).
    clv_error_regression_tolerance: float = 0.05
    # Promotion gate: a challenger whose training population is *severely* unlike tonight's (a broken
    # feature snapshot, a lost source) is not promoted. Moderate drift is the nightly monitor's job.
    score_psi_ceiling: float = 0.50

    def xgb_params(self, kind: str) -> dict:
        params = {"eta": self.learning_rate, "max_depth": self.max_depth, "min_child_weight": self.min_child_weight,
                  "subsample": self.subsample, "colsample_bytree": self.colsample_bytree, "seed": self.seed,
                  "nthread": self.n_jobs, "tree_method": "hist"}
        if kind == "clv":
            params |= {"objective": "reg:tweedie", "tweedie_variance_power": self.tweedie_variance_power,
                       "eval_metric": "tweedie-nloglik@1.2"}
        else:
            params |= {"objective": "binary:logistic", "eval_metric": "logloss"}
        return params


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


# ---------------------------------------------------------------- data per model

def _rows(kind: str, frame: pd.DataFrame) -> pd.DataFrame:
    if kind == "clv":
        return frame.loc[frame[LABEL_REVENUE].notna()].reset_index(drop=True)
    return frame.loc[frame[LABEL_ATTRITION].notna()].reset_index(drop=True)


def _label(kind: str, frame: pd.DataFrame) -> np.ndarray:
    if kind == "clv":
        return frame[LABEL_REVENUE].to_numpy(dtype=float)
    return frame[LABEL_ATTRITION].astype(bool).to_numpy(dtype=float)


def predict(booster: xgb.Booster, frame: pd.DataFrame) -> np.ndarray:
    """Predictions of a booster on mart rows, using the feature names it was trained with."""
    matrix = model_matrix(frame)
    names = booster.feature_names or FEATURE_COLUMNS
    return booster.predict(xgb.DMatrix(matrix[names], feature_names=names))


def fit(kind: str, frame: pd.DataFrame, config: TrainingConfig) -> xgb.Booster:
    rows = _rows(kind, frame)
    matrix = xgb.DMatrix(model_matrix(rows), label=_label(kind, rows), feature_names=FEATURE_COLUMNS)
    return xgb.train(config.xgb_params(kind), matrix, num_boost_round=config.n_estimators)


# ---------------------------------------------------------------- evaluation

def score_metrics(kind: str, y: np.ndarray, prediction: np.ndarray) -> dict[str, float]:
    if kind == "clv":
        m = value_metrics(y, prediction)
        m["abs_aggregate_error"] = abs(m["aggregate_error"])
        return m
    return classifier_metrics(y, prediction)


def group_metrics(kind: str, frame: pd.DataFrame, prediction: np.ndarray) -> pd.DataFrame:
    """The fairness view: metrics per AUM band, age band and advisor (groups with >= MIN_GROUP rows)."""
    y = _label(kind, frame)
    rows = []
    for column in SEGMENT_COLUMNS:
        for group, index in frame.groupby(frame[column].fillna("unknown")).indices.items():
            if len(index) < MIN_GROUP:
                continue
            yt, yp = y[index], prediction[index]
            row = {"dimension": column, "group": str(group), "households": len(index)}
            if kind == "clv":
                if yt.sum() <= 0:
                    continue
                row |= score_metrics(kind, yt, yp)
            else:
                if min(yt.sum(), (1 - yt).sum()) < MIN_POSITIVES:
                    continue
                row |= score_metrics(kind, yt, yp) | {"observed_rate": float(yt.mean()),
                                                      "positives": int(yt.sum()), "negatives": int((1 - yt).sum())}
            rows.append(row)
    return pd.DataFrame(rows)


def baseline_predictions(kind: str, holdout: pd.DataFrame, plan_holdout: pd.Timestamp,
                         cfg: Settings | None) -> dict[str, np.ndarray]:
    """Carry-forward (CLV only) and BG/NBD + Gamma-Gamma on the holdout households."""
    out: dict[str, np.ndarray] = {}
    if kind == "clv":
        out["carry_forward"] = holdout["fees_12m"].fillna(0.0).to_numpy(dtype=float)
    billing = household_months(plan_holdout, cfg)
    if billing.empty:
        return out
    fitted = BGNBDGammaGamma.fit(billing, plan_holdout)
    forecast = fitted.forecast(365.0).reindex(holdout["household_id"].to_numpy())
    if kind == "clv":
        out["bgnbd_gg"] = forecast["spend"].fillna(0.0).to_numpy(dtype=float)
    else:
        out["bgnbd"] = (1.0 - forecast["p_alive"].fillna(0.0)).to_numpy(dtype=float)
    return out


# ---------------------------------------------------------------- plots and card

def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def _plots(kind: str, booster: xgb.Booster, holdout: pd.DataFrame, y: np.ndarray, prediction: np.ndarray,
           folder: Path) -> list[Path]:
    paths = []
    gain = pd.Series(booster.get_score(importance_type="gain")).sort_values().tail(15)
    fig, ax = plt.subplots(figsize=(7, 5))
    ax.barh(gain.index, gain.to_numpy())
    ax.set_title(f"{kind}: feature importance (gain)")
    paths.append(_save(fig, folder / "feature_importance.png"))

    # Exact TreeSHAP costs ~1 ms per household at 400 trees: summarise a fixed sample of the holdout.
    sample = holdout.sample(n=min(len(holdout), 5000), random_state=7) if len(holdout) > 5000 else holdout
    matrix = model_matrix(sample)[booster.feature_names]
    contribs = booster.predict(xgb.DMatrix(matrix, feature_names=booster.feature_names), pred_contribs=True)
    mean_abs = pd.Series(np.abs(contribs[:, :-1]).mean(axis=0), index=booster.feature_names).sort_values().tail(15)
    fig, ax = plt.subplots(figsize=(7, 5))
    ax.barh(mean_abs.index, mean_abs.to_numpy())
    ax.set_title(f"{kind}: mean |contribution| per household (pred_contribs, margin units)")
    paths.append(_save(fig, folder / "contribution_summary.png"))

    if kind == "clv":
        table = decile_table(y, prediction)
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.plot(table.index, table["actual_mean"], "o-", label="actual")
        ax.plot(table.index, table["predicted_mean"], "s--", label="predicted")
        ax.set_xlabel("predicted decile (1 = highest)")
        ax.set_ylabel("mean revenue next 12 months")
        ax.set_yscale("symlog")
        ax.legend()
        ax.set_title("CLV: calibration by decile (holdout)")
        paths.append(_save(fig, folder / "decile_calibration.png"))
    else:
        precision, recall, _ = skm.precision_recall_curve(y, prediction)
        fig, ax = plt.subplots(figsize=(5, 4))
        ax.plot(recall, precision)
        ax.set_xlabel("recall")
        ax.set_ylabel("precision")
        ax.set_title("attrition: precision-recall (holdout)")
        paths.append(_save(fig, folder / "pr_curve.png"))
        table = reliability_table(y, prediction)
        fig, ax = plt.subplots(figsize=(5, 4))
        ax.plot([0, 1], [0, 1], ":", color="grey")
        ax.plot(table["predicted"], table["observed"], "o-")
        ax.set_xlabel("predicted probability")
        ax.set_ylabel("observed rate")
        ax.set_title("attrition: reliability (holdout)")
        paths.append(_save(fig, folder / "reliability.png"))
    return paths


def model_card(kind: str, name: str, data: TrainingData, metrics: dict, baselines: dict,
               groups: pd.DataFrame, config: TrainingConfig) -> str:
    target = ("revenue_next_12m: fees billed to the household in the 12 months after the cutoff"
              if kind == "clv" else
              "is_attrited_within_12m: a household active at the cutoff bills fewer than 12 of the next 12 months")
    lines = [
        f"# Model card: {name}", "",
        "## Intended use",
        ("Rank and size households by expected fee revenue so advisors prioritise outreach; feeds CLV and the "
         "value x risk segment written to Salesforce." if kind == "clv" else
         "Estimate each active household's probability of leaving within 12 months; feeds CLV retention and "
         "the 'At-Risk Retention Priority' segment."),
        "Not for: pricing, credit or suitability decisions, or any decision about an individual without an "
        "advisor's review. Households without analytics consent are scored but not pushed to Salesforce.", "",
        "## Data",
        f"- Target: {target}.",
        f"- Source: `fct_household_features` (point-in-time), dbt invocation `{data.dbt_invocation_id}`, "
        f"feature snapshot `{data.snapshot_hash}`.",
        f"- Training cutoffs ({len(data.plan.train)}): {', '.join(str(c.date()) for c in data.plan.train)}; "
        f"{len(data.train):,} rows.",
        f"- Holdout cutoff: {data.plan.holdout.date()} ({len(data.holdout):,} households), the latest cutoff "
        "whose outcome window is complete; no training label window overlaps it.",
        f"- Features ({len(FEATURE_COLUMNS)}): billing (AUM, fees, flows), CRM interactions, cases and complaints, "
        "opportunities, tenure, bands. Advisor id is used only for the fairness view, not as an input.", "",
        "## Metrics on the holdout", "",
        "| model | " + " | ".join(metrics) + " |",
        "|---|" + "---|" * len(metrics),
        f"| {name} | " + " | ".join(f"{v:.4f}" for v in metrics.values()) + " |",
    ]
    for baseline, values in baselines.items():
        lines.append(f"| {baseline} | " + " | ".join(f"{values.get(k, float('nan')):.4f}" for k in metrics) + " |")
    if baselines:
        lines += ["", "## Against the baselines (same holdout)", "", *baseline_comparison(metrics, baselines)]
    if kind == "clv":
        lines += ["", "## How the promotion gate weighs each metric", ""]
        lines += [f"- {metric}: {rule}" for metric, rule in CLV_GATE_POLICY.items()]
    lines += ["", "## Metrics by segment (fairness view; groups with at least "
              f"{MIN_GROUP} households)", ""]
    if not groups.empty:
        show = [c for c in groups.columns if c in {"dimension", "group", "households", "gini", "spearman",
                                                    "aggregate_error", "auc", "brier", "observed_rate"}]
        lines.append("| " + " | ".join(show) + " |")
        lines.append("|---" * len(show) + "|")
        for _, row in groups[show].iterrows():
            lines.append("| " + " | ".join(f"{v:.3f}" if isinstance(v, float) else str(v) for v in row) + " |")
    lines += ["", "## Limitations",
              "- Labels are billing outcomes only: a household that moves assets away but keeps one account "
              "open is not counted as attrited.",
              "- Trained on the firm's own history; a change in fee schedules or markets shifts revenue. Drift "
              "(PSI per feature and on the score) is checked every scoring run.",
              "- Rolling origins are a year or more old by construction (the label window): the model learns "
              "last year's relationships.",
              "- CLV beyond 12 months assumes constant retention and flat fees (see ml/README.md).",
              "", "## Training configuration", "", "```json", json.dumps(asdict(config), indent=2), "```"]
    return "\n".join(lines)


# ---------------------------------------------------------------- promotion gates

def _fairness_check(kind: str, groups: pd.DataFrame, champion_groups: pd.DataFrame | None,
                    tolerance: float) -> registry.PromotionCheck:
    metric = "spearman" if kind == "clv" else "auc"
    if groups.empty:
        return registry.PromotionCheck("fairness", True, "no group large enough to judge")
    worst = groups.groupby("dimension")[metric].min()
    if champion_groups is None or champion_groups.empty:
        # No champion to compare with: no group may be worse than random by more than chance allows
        # (two standard errors of the metric under "no skill"; an AUC over 10 leavers moves by ~0.1
        # from noise alone, so the bare worst group would fail a sound model on a small book).
        if kind == "clv":
            null_se = 1.0 / np.sqrt(np.maximum(groups["households"] - 1, 1))
            floor = 0.0 - 2 * null_se
        else:
            pos, neg = groups["positives"], groups["negatives"]
            null_se = np.sqrt((pos + neg + 1) / (12.0 * pos * neg))
            floor = 0.5 - 2 * null_se
        failing = groups[groups[metric] < floor]
        detail = ", ".join(f"{d} worst {metric} {v:.3f}" for d, v in worst.items())
        if not failing.empty:
            detail += "; below chance: " + ", ".join(
                f"{r.dimension}={r.group} {getattr(r, metric):.3f} < {f:.3f}"
                for r, f in zip(failing.itertuples(), floor[failing.index], strict=True))
        return registry.PromotionCheck("fairness", failing.empty,
                                       detail + " (no champion: no group significantly worse than random)")
    champion_worst = champion_groups.groupby("dimension")[metric].min()
    gaps = (worst - champion_worst.reindex(worst.index)).dropna()
    failing = gaps[gaps < -tolerance]
    detail = ", ".join(f"{d} worst {metric} {worst[d]:.3f} vs champion {champion_worst.get(d, np.nan):.3f}"
                       for d in worst.index)
    return registry.PromotionCheck("fairness", failing.empty, detail + f" (tolerance {tolerance})")


def _drift_check(profile: dict, scoring_frame: pd.DataFrame, booster: xgb.Booster,
                 ceiling: float) -> tuple[registry.PromotionCheck, pd.DataFrame]:
    if scoring_frame.empty:
        return registry.PromotionCheck("drift", True, "no scoring population yet"), pd.DataFrame()
    report = drift.drift_report(profile, model_matrix(scoring_frame), {"score": predict(booster, scoring_frame)})
    score_psi = float(report.loc[report["kind"] == "score", "psi"].iloc[0])
    drifted = report.loc[(report["kind"] == "feature") & (report["status"] == "retrain"), "name"].tolist()
    detail = f"score PSI training vs scoring population {score_psi:.3f} (ceiling {ceiling})"
    if drifted:
        detail += f"; features beyond {drift.RETRAIN_PSI}: {', '.join(drifted)}"
    return registry.PromotionCheck("drift", score_psi < ceiling, detail), report


def thresholds(kind: str, config: TrainingConfig) -> dict[str, registry.MetricThreshold]:
    if kind == "clv":
        return {
            "gini": registry.MetricThreshold(threshold=config.clv_gini_floor,
                                             min_absolute_change=config.clv_gini_margin, greater_is_better=True),
            "abs_aggregate_error": registry.MetricThreshold(threshold=config.clv_abs_aggregate_error_ceiling,
                                                            greater_is_better=False),
        }
    return {
        "auc": registry.MetricThreshold(threshold=config.churn_auc_floor,
                                        min_absolute_change=config.churn_auc_margin, greater_is_better=True),
        "brier": registry.MetricThreshold(threshold=config.churn_brier_ceiling, greater_is_better=False),
    }


# ---------------------------------------------------------------- the training run

def train_model(kind: str, data: TrainingData, config: TrainingConfig | None = None, force: bool = False,
                cfg: Settings | None = None, scoring_frame: pd.DataFrame | None = None) -> TrainingResult:
    """Fit one model, evaluate it and the baselines on the holdout, log everything, register, judge."""
    if kind not in MODELS:
        raise ValueError(f"unknown model {kind!r}; expected one of {sorted(MODELS)}")
    config = config or TrainingConfig()
    cfg = cfg or settings()
    name = MODELS[kind]
    started = time.perf_counter()
    holdout = _rows(kind, data.holdout)
    y = _label(kind, holdout)

    fit_started = time.perf_counter()
    booster = fit(kind, data.train, config)
    fit_seconds = time.perf_counter() - fit_started
    prediction = predict(booster, holdout)
    metrics = score_metrics(kind, y, prediction)
    groups = group_metrics(kind, holdout, prediction)

    baselines: dict[str, dict[str, float]] = {}
    if config.run_baselines:
        for baseline, values in baseline_predictions(kind, holdout, data.plan.holdout, cfg).items():
            baselines[baseline] = score_metrics(kind, y, values)

    train_rows = _rows(kind, data.train)
    train_matrix = model_matrix(train_rows)
    profile = drift.reference_profile(train_matrix, {"score": predict(booster, train_rows)})
    if scoring_frame is None:
        scoring_frame = load_features([data.plan.scoring], cfg)
    population = scoring_frame if kind == "clv" else scoring_frame.loc[
        scoring_frame["is_active_at_cutoff"].fillna(False).astype(bool)]
    # The nightly monitor's reference: the population this model was trained *for* (the latest billed
    # cutoff at training time). Training cutoffs are a year or more old by construction (their labels
    # must be complete), so against them every night would "drift" and retraining could never reset it.
    deployment_profile = drift.reference_profile(model_matrix(population),
                                                 {"score": predict(booster, population)}) if len(population) else profile

    with registry.start_training_run(name, run_name=f"{kind}-{data.plan.holdout.date()}", cfg=cfg) as run:
        lineage = data.lineage()
        mlflow.log_params({**{f"xgb_{k}": v for k, v in config.xgb_params(kind).items()},
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
            for path in _plots(kind, booster, holdout, y, prediction, folder):
                mlflow.log_artifact(str(path), "plots")
            if kind == "clv":
                decile_table(y, prediction).to_csv(folder / "decile_calibration.csv")
                mlflow.log_artifact(str(folder / "decile_calibration.csv"), "evaluation")
            else:
                reliability_table(y, prediction).to_csv(folder / "reliability.csv", index=False)
                mlflow.log_artifact(str(folder / "reliability.csv"), "evaluation")
            groups.to_csv(folder / "metrics_by_segment.csv", index=False)
            mlflow.log_artifact(str(folder / "metrics_by_segment.csv"), "evaluation")
        mlflow.log_text(model_card(kind, name, data, metrics, baselines, groups, config), "model_card.md")

        example = train_matrix.head(5)
        signature = infer_signature(example, booster.predict(xgb.DMatrix(example, feature_names=FEATURE_COLUMNS)))
        info = mlflow.xgboost.log_model(booster, name="model", signature=signature, input_example=example,
                                        pip_requirements=registry.pip_requirements())
        run_id = run.info.run_id

    version = registry.register_challenger(
        info.model_uri, name, run_id=run_id,
        tags={"holdout_cutoff": lineage["holdout_cutoff"], "feature_snapshot_hash": data.snapshot_hash,
              "dbt_invocation_id": lineage["dbt_invocation_id"]},
        description=f"{kind} model trained to holdout {lineage['holdout_cutoff']}", cfg=cfg)

    champion_groups: dict[str, pd.DataFrame] = {}

    def evaluate(uri: str) -> dict[str, float]:
        model = mlflow.xgboost.load_model(uri)
        values = predict(model, holdout)
        scored = score_metrics(kind, y, values)
        if uri.endswith(f"@{registry.CHAMPION}"):
            champion_groups["groups"] = group_metrics(kind, holdout, values)
            champion_groups["metrics"] = scored
        return scored

    drift_check, drift_table = _drift_check(profile, population, booster, config.score_psi_ceiling)
    # The champion's group metrics are filled by ``evaluate`` before the checks are read, so the fairness
    # gate is computed lazily inside a wrapper.
    checks = [drift_check, _baseline_check(kind, metrics, baselines, y)]
    decision = _judge(name, str(version.version), evaluate, thresholds(kind, config), groups, champion_groups,
                      kind, config, checks, force, run_id, cfg, challenger_metrics=metrics)
    if not drift_table.empty:
        registry.configure(cfg).log_dict(run_id, drift_table.to_dict(orient="records"),
                                         "evaluation/drift_training_vs_scoring.json")
    return TrainingResult(kind, name, run_id, str(version.version), metrics, baselines, decision, lineage,
                          time.perf_counter() - started, {"fit_seconds": fit_seconds})


def _baseline_check(kind: str, metrics: dict, baselines: dict, y: np.ndarray) -> registry.PromotionCheck:
    """A model is only worth its complexity if it is no worse than every baseline on the same holdout.

    For attrition "worse" means by more than chance: two standard errors of an AUC on this holdout's
    leavers and stayers (a few dozen leavers move an AUC by several points by noise alone).
    """
    if not baselines:
        return registry.PromotionCheck("baselines", True, "no baseline evaluated (--no-baselines)")
    slack = 0.0
    if kind == "churn":
        positives, negatives = float(np.sum(y)), float(len(y) - np.sum(y))
        slack = 2 * float(np.sqrt((positives + negatives + 1) / (12.0 * max(positives, 1) * max(negatives, 1))))
    passed, details = True, []
    # CLV: both ranking metrics must beat every baseline (what the model is for: who to call first).
    for metric in (("gini", "spearman") if kind == "clv" else ("auc",)):
        best_name, best = max(((n, v.get(metric, float("nan"))) for n, v in baselines.items()),
                              key=lambda item: item[1] if np.isfinite(item[1]) else -np.inf)
        value = metrics.get(metric, float("nan"))
        passed &= bool(not np.isfinite(best) or value > best - slack)
        details.append(f"{metric} {value:.4f} vs best baseline {best_name} {best:.4f}")
    detail = "; ".join(details)
    return registry.PromotionCheck("baselines", bool(passed), detail + (f" (chance allowance {slack:.3f})" if slack else ""))


# How the CLV promotion gate weighs every metric the model card reports (the card prints this table).
CLV_GATE_POLICY = {
    "gini": "gated: >= floor, above every baseline on the same holdout, >= champion + margin",
    "spearman": "gated: above every baseline on the same holdout",
    "abs_aggregate_error": "gated: <= ceiling",
    "aggregate_error": "gated through abs_aggregate_error",
    "rmse": "gated: no worse than the champion's by more than the tolerance. Not held against carry-forward: "
            "squared error is dominated by a few households with one-off liquidity events that no billing "
            "history predicts, and carry-forward's lower RMSE comes from not chasing them; the card states the gap",
    "mae": "gated like rmse (no worse than the champion's by more than the tolerance)",
    "top_decile_capture": "waived as a gate: one point of the gain curve that the gated Gini integrates whole; "
                          "reported against the baselines",
}


def _error_check(metrics: dict, champion_metrics: dict | None, tolerance: float) -> registry.PromotionCheck:
    """RMSE and MAE may not regress against the champion (see ``CLV_GATE_POLICY`` for why not the baselines)."""
    if not champion_metrics:
        return registry.PromotionCheck("errors", True, "no champion: rmse/mae have no regression reference "
                                                       "(the card compares them with the baselines)")
    failing, details = [], []
    for metric in ("rmse", "mae"):
        value, reference = metrics.get(metric, np.nan), champion_metrics.get(metric, np.nan)
        limit = reference * (1 + tolerance)
        details.append(f"{metric} {value:.2f} vs champion {reference:.2f} (limit {limit:.2f})")
        if np.isfinite(reference) and not value <= limit:
            failing.append(metric)
    return registry.PromotionCheck("errors", not failing, "; ".join(details))


def baseline_comparison(metrics: dict, baselines: dict) -> list[str]:
    """One line per metric and baseline: where the model wins and where it loses, in plain words."""
    lower_is_better = {"rmse", "mae", "abs_aggregate_error", "brier"}
    lines = []
    for metric, value in metrics.items():
        if metric == "aggregate_error":
            continue  # its size is abs_aggregate_error
        for baseline, values in baselines.items():
            other = values.get(metric, float("nan"))
            if not (np.isfinite(value) and np.isfinite(other)):
                continue
            better = value < other if metric in lower_is_better else value > other
            relative = f" ({(value - other) / abs(other):+.1%})" if other else ""
            lines.append(f"- {metric}: {'wins' if better else '**loses**'} against {baseline}, "
                         f"{value:,.4f} vs {other:,.4f}{relative}")
    return lines


def _judge(name, version, evaluate, metric_thresholds, groups, champion_groups, kind, config, extra_checks,
           force, run_id, cfg, challenger_metrics=None) -> registry.PromotionDecision:
    champion = registry.alias_version(name, registry.CHAMPION, cfg)
    if champion is not None and str(champion.version) != version:
        try:
            evaluate(registry.model_uri(name, registry.CHAMPION))
        except Exception:  # noqa: BLE001 - promote_if_better reports the failure itself
            pass
    fairness = _fairness_check(kind, groups, champion_groups.get("groups"), config.fairness_tolerance)
    checks = [fairness, *extra_checks]
    if kind == "clv":
        checks.append(_error_check(challenger_metrics or {}, champion_groups.get("metrics"),
                                   config.clv_error_regression_tolerance))
        checks.append(registry.PromotionCheck("waived", True, "; ".join(
            f"{metric}: {rule.split(':', 1)[1].strip()}" for metric, rule in CLV_GATE_POLICY.items()
            if rule.startswith("waived"))))
    return registry.promote_if_better(name, version, evaluate, metric_thresholds, checks=checks,
                                      force=force, run_id=run_id, cfg=cfg)


def train(models: str = "all", force: bool = False, config: TrainingConfig | None = None,
          dbt_invocation_id: str | None = None, cfg: Settings | None = None) -> dict[str, TrainingResult]:
    """Train ``clv``, ``churn`` or ``all`` on the feature mart; returns one result per model.

    The DAG calls ``ml.client_value.train(models="all", dbt_invocation_id=<from the dbt task>)``.
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
    from ml.scoring import needs_retraining

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


# ---------------------------------------------------------------- CLI: python -m ml train

NAME = "train"


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(NAME, help="train the CLV and/or churn model, evaluate, register, promote",
                                   description="Train on the point-in-time feature mart, evaluate against the "
                                               "baselines on the holdout cutoff, log to MLflow, register the "
                                               "version as challenger and promote it if it beats @champion.")
    parser.add_argument("--model", choices=["clv", "churn", "all"], default="all")
    parser.add_argument("--force", action="store_true", help="promote even if a threshold or check fails")
    parser.add_argument("--n-estimators", type=int, help=f"boosting rounds (default {TrainingConfig.n_estimators})")
    parser.add_argument("--cutoff-step-months", type=int, help="use every n-th training cutoff (default 1)")
    parser.add_argument("--no-baselines", action="store_true", help="skip BG/NBD + carry-forward")
    parser.add_argument("--dbt-invocation-id", help="lineage: the dbt run that built the mart "
                                                    "(default: the last run_results.json)")
    parser.set_defaults(handler=handle)


def handle(args) -> int:
    config = TrainingConfig()
    if args.n_estimators:
        config.n_estimators = args.n_estimators
    if args.cutoff_step_months:
        config.cutoff_step_months = args.cutoff_step_months
    if args.no_baselines:
        config.run_baselines = False
    results = train(args.model, force=args.force, config=config, dbt_invocation_id=args.dbt_invocation_id)
    for result in results.values():
        print(format_result(result))
    return 0


def format_result(result: TrainingResult) -> str:
    keys = ["gini", "spearman", "aggregate_error", "rmse", "mae", "top_decile_capture"] \
        if result.model == "clv" else ["auc", "pr_auc", "brier"]
    lines = [f"{registry.version_label(result.registered_name, result.version)}  run {result.run_id}  "
             f"holdout {result.lineage['holdout_cutoff']}  ({result.lineage['holdout_rows']} households, "
             f"{result.lineage['train_rows']} training rows, {result.seconds:.1f} s)",
             f"{'method':<16}" + "".join(f"{k:>20}" for k in keys)]
    for method, values in {"xgboost": result.metrics, **result.baseline_metrics}.items():
        lines.append(f"{method:<16}" + "".join(f"{values.get(k, float('nan')):>20.4f}" for k in keys))
    lines.append(result.decision.summary())
    return "\n".join(lines)
