"""Train the break-anomaly model, log everything to MLflow, register it and decide on promotion.

One call, :func:`train_break_anomaly`, is what ``python -m ml anomaly-train`` and the DAG task run:

1. features from the warehouse (:mod:`ml.anomaly.features`, read-only), labels from the chosen
   :mod:`ml.anomaly.labels` provider;
2. the latest business date(s) held out; XGBoost and the IsolationForest baseline fitted on the earlier dates;
3. one MLflow run in the experiment ``northstar-break-anomaly`` (via :mod:`ml.registry`): parameters, holdout
   metrics of the model and (``baseline_`` prefix) of IsolationForest, lineage tags (dbt invocation id,
   feature snapshot hash, label source, warehouse), the model with signature and input example, the feature
   importance and PR-curve plots, the holdout scores and a model card;
4. the new version is registered as ``challenger``; :func:`ml.registry.promote_if_better` scores it and the
   current ``@champion`` on the *same* holdout and moves ``champion`` only if the challenger's PR-AUC beats the
   champion's by :data:`PROMOTION_MARGIN` and beats IsolationForest; the decision and reasons are logged.
"""

from __future__ import annotations

import logging
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ml.anomaly import model as anomaly_model
from ml.anomaly.features import FEATURE_COLUMNS, compute_trade_features, feature_matrix
from ml.anomaly.labels import select_label_provider
from ml.anomaly.lineage import dbt_invocation_id
from northstar.settings import Settings, settings

log = logging.getLogger(__name__)

PROMOTION_MARGIN = 0.005  # PR-AUC points the challenger must gain over the champion on the same holdout
PROMOTION_METRIC = "pr_auc"


@dataclass
class TrainResult:
    mlflow_run_id: str
    model_version: str
    model_label: str  # 'northstar-break-anomaly/3'
    promoted: bool
    decision: str
    label_source: str
    holdout_dates: list[str]
    metrics: dict[str, float]
    baseline_metrics: dict[str, float]
    feature_snapshot_hash: str
    dbt_invocation_id: str | None
    rows_train: int
    rows_holdout: int
    seconds: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


def _plots(folder: Path, importance: pd.Series, holdout_labels: np.ndarray, scores: dict[str, np.ndarray]) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import precision_recall_curve

    top = importance.head(20)[::-1]
    fig, ax = plt.subplots(figsize=(7, 6))
    ax.barh(top.index, top.to_numpy())
    ax.set_xlabel("total gain")
    ax.set_title("Break anomaly: feature importance (top 20)")
    fig.tight_layout()
    importance_png = folder / "feature_importance.png"
    fig.savefig(importance_png, dpi=100)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 5))
    for name, score in scores.items():
        precision, recall, _ = precision_recall_curve(holdout_labels, score)
        ax.plot(recall, precision, label=name)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_title("Holdout precision-recall")
    ax.legend()
    fig.tight_layout()
    pr_png = folder / "pr_curve.png"
    fig.savefig(pr_png, dpi=100)
    plt.close(fig)
    return [importance_png, pr_png]


def _fmt(value: float) -> str:
    return "n/a" if value != value else f"{value:.4f}"


def model_card(*, label_source: str, split: anomaly_model.Split, train_positives: int, holdout_positives: int,
               metrics: dict, baseline: dict, snapshot_hash: str, dbt_invocation: str | None,
               importance: pd.Series) -> str:
    rows = []
    for name in ("pr_auc", "precision_at_50", "precision_at_100", "unflagged_pr_auc",
                 "unflagged_precision_at_50", "unflagged_precision_at_100"):
        rows.append(f"| {name} | {_fmt(metrics[name])} | {_fmt(baseline[name])} |")
    table = "\n".join(rows)
    drivers = ", ".join(importance.head(8).index)
    return f"""# Model card: northstar-break-anomaly

## Intended use
Ranks every trade (allocation) of a business date, and through them every reconciliation break, by how likely
it is a real problem, so operations look at the worst first. The score (0..1) sets the ServiceNow incident's
impact/urgency downstream (`activate.priority.priority_for`). It complements the matching rules (which find
breaks) by also ranking trades that agree on every side but look wrong (price far from the instrument's range,
size far from the account's habit, a closed account). Not for automatic cancellation or client-facing use.

## Data
- Features: {len(FEATURE_COLUMNS)} columns computed in SQL in the DuckDB warehouse (`ml/anomaly/features.py`):
  price vs the other orders in the instrument that day and earlier days, notional vs the account's earlier
  days, account status at the trade date, New York time of day, brokers, asset class, break types and amounts.
- Labels: `{label_source}` (`ml/anomaly/labels.py`); 1 = real problem.
- Split: training dates {split.describe()['train_dates']}; holdout (latest) {split.describe()['holdout_dates']}.
  Training rows {len(split.train)} ({train_positives} positive), holdout rows {len(split.holdout)}
  ({holdout_positives} positive).
- Lineage: feature snapshot `{snapshot_hash}`, dbt invocation `{dbt_invocation}`.

## Metrics (holdout)
| metric | XGBoost | IsolationForest baseline |
|---|---|---|
{table}

`unflagged_` = trades with no break on them or their order: the ones only this model can surface.
Strongest features: {drivers}.

## Limitations
- Trained on the sandbox's ground truth when ServiceNow has too few closed incidents; synthetic anomalies are
  cleaner than real ones, so the figures are optimistic.
- A price outlier in an instrument with no other order that day and no earlier trades has nothing to be
  compared with; such trades rank low.
- The account habit needs earlier business dates; an account's first day relies on the same-day comparison.
- ServiceNow labels treat trades without a closed incident as "no problem" (positive-unlabelled assumption).
- Close codes are mapped to labels by a fixed list (`NOT_A_PROBLEM_CLOSE_CODES`); review it per instance.
"""


def train_break_anomaly(
    cfg: Settings | None = None,
    labels: str = "auto",
    truth_dir: str | Path | None = None,
    incidents_dir: str | Path | None = None,
    holdout_days: int = 1,
    dbt_invocation: str | None = None,
    params: dict | None = None,
    force: bool = False,
    margin: float = PROMOTION_MARGIN,
    max_training_rows: int | None = anomaly_model.MAX_TRAINING_ROWS,
) -> TrainResult:
    """Train, log, register as ``challenger`` and promote to ``champion`` if it wins. See the module doc."""
    import mlflow
    from mlflow.models import infer_signature

    from ml import registry

    cfg = cfg or settings()
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    snapshot = compute_trade_features(cfg.paths.warehouse)
    seconds["features"] = time.perf_counter() - started
    incidents_dir = incidents_dir if incidents_dir is not None else cfg.paths.landing / "servicenow" / "incidents"
    provider = select_label_provider(labels, truth_dir=truth_dir, incidents_dir=incidents_dir)
    frame = snapshot.frame.assign(label=provider.trade_labels(snapshot.frame, cfg.paths.warehouse).to_numpy())
    frame = frame[frame["label"].notna()].reset_index(drop=True)
    split = anomaly_model.holdout_split(frame, holdout_days)
    y_train, y_holdout = split.train["label"], split.holdout["label"]
    if y_train.sum() == 0:
        raise ValueError("no positive label in the training dates: nothing to learn from")

    started = time.perf_counter()
    classifier = anomaly_model.fit_classifier(split.train, y_train, params, max_rows=max_training_rows)
    seconds["fit_xgboost"] = time.perf_counter() - started
    started = time.perf_counter()
    baseline = anomaly_model.fit_isolation_forest(split.train, max_rows=max_training_rows)
    seconds["fit_isolation_forest"] = time.perf_counter() - started

    holdout_x = feature_matrix(split.holdout)
    xgb_scores = classifier.predict_proba(holdout_x)[:, 1]
    iso_scores = baseline.score(split.holdout)
    metrics = anomaly_model.evaluate_scores(split.holdout, y_holdout, xgb_scores)
    baseline_metrics = anomaly_model.evaluate_scores(split.holdout, y_holdout, iso_scores)
    importance = anomaly_model.feature_importance(classifier)
    dbt_invocation = dbt_invocation or dbt_invocation_id(cfg)
    lineage = {
        "dbt_invocation_id": dbt_invocation or "unknown",
        "feature_snapshot_hash": snapshot.snapshot_hash,
        "label_source": provider.name,
        "warehouse": str(cfg.paths.warehouse),
        **split.describe(),
    }

    started = time.perf_counter()
    with registry.start_training_run(registry.BREAK_ANOMALY_MODEL, run_name="anomaly-train", tags=lineage, cfg=cfg) as run:
        mlflow.log_params({f"xgb_{k}": v for k, v in classifier.get_params().items()
                           if k in {**anomaly_model.XGB_PARAMS, **(params or {}), "scale_pos_weight": 0}})
        mlflow.log_params({f"iforest_{k}": v for k, v in baseline.params.items()})
        mlflow.log_params({"holdout_days": holdout_days, "label_source": provider.name,
                           "feature_count": len(FEATURE_COLUMNS), "promotion_metric": PROMOTION_METRIC,
                           "promotion_margin": margin, "rows_train": len(split.train),
                           "negative_sample_rate": anomaly_model.negative_sample(y_train, max_training_rows)[2],
                           "rows_holdout": len(split.holdout), "positives_train": int(y_train.sum()),
                           "positives_holdout": int(y_holdout.sum())})
        mlflow.log_metrics({k: v for k, v in metrics.items() if v == v})
        mlflow.log_metrics({f"baseline_{k}": v for k, v in baseline_metrics.items() if v == v})
        mlflow.log_metrics({f"seconds_{k}": v for k, v in seconds.items()})
        signature = infer_signature(holdout_x.head(200), xgb_scores[:200])
        model_info = mlflow.xgboost.log_model(
            classifier, name="model", signature=signature, input_example=holdout_x.head(5),
            pip_requirements=registry.pip_requirements("mlflow", "xgboost", "numpy", "pandas", "scikit-learn"),
            model_format="ubj",
        )
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            for png in _plots(folder, importance, y_holdout.to_numpy(),
                              {"xgboost": xgb_scores, "isolation_forest": iso_scores}):
                mlflow.log_artifact(str(png), artifact_path="plots")
            card = folder / "model_card.md"
            card.write_text(model_card(
                label_source=provider.name, split=split, train_positives=int(y_train.sum()),
                holdout_positives=int(y_holdout.sum()), metrics=metrics, baseline=baseline_metrics,
                snapshot_hash=snapshot.snapshot_hash, dbt_invocation=dbt_invocation, importance=importance,
            ))
            mlflow.log_artifact(str(card))
            importance.rename("total_gain").to_frame().to_csv(folder / "feature_importance.csv")
            mlflow.log_artifact(str(folder / "feature_importance.csv"))
            holdout_scores = split.holdout[["trade_id", "business_date"]].assign(
                label=y_holdout.to_numpy(), xgboost=xgb_scores, isolation_forest=iso_scores)
            holdout_scores.to_parquet(folder / "holdout_scores.parquet", index=False)
            mlflow.log_artifact(str(folder / "holdout_scores.parquet"))
        run_id = run.info.run_id
    seconds["mlflow_logging"] = time.perf_counter() - started

    version = registry.register_challenger(model_info.model_uri, registry.BREAK_ANOMALY_MODEL, run_id=run_id,
                                           tags={k: lineage[k] for k in ("dbt_invocation_id", "feature_snapshot_hash",
                                                                           "label_source")}, cfg=cfg)

    def evaluate(uri: str) -> dict[str, float]:
        candidate = mlflow.xgboost.load_model(uri)
        return anomaly_model.evaluate_scores(split.holdout, y_holdout, candidate.predict_proba(holdout_x)[:, 1])

    beats_baseline = metrics["pr_auc"] > baseline_metrics["pr_auc"]
    decision = registry.promote_if_better(
        registry.BREAK_ANOMALY_MODEL, version.version, evaluate,
        thresholds={PROMOTION_METRIC: registry.MetricThreshold(min_absolute_change=margin, greater_is_better=True)},
        checks=[registry.PromotionCheck(
            "beats_isolation_forest", beats_baseline,
            f"pr_auc {metrics['pr_auc']:.4f} vs IsolationForest {baseline_metrics['pr_auc']:.4f}")],
        force=force, run_id=run_id, cfg=cfg,
    )
    seconds["total"] = sum(seconds.values())
    result = TrainResult(
        mlflow_run_id=run_id, model_version=str(version.version),
        model_label=registry.version_label(registry.BREAK_ANOMALY_MODEL, version.version),
        promoted=decision.promoted, decision=decision.summary(), label_source=provider.name,
        holdout_dates=[str(d) for d in split.holdout_dates], metrics=metrics, baseline_metrics=baseline_metrics,
        feature_snapshot_hash=snapshot.snapshot_hash, dbt_invocation_id=dbt_invocation,
        rows_train=len(split.train), rows_holdout=len(split.holdout), seconds=seconds,
    )
    log.info("%s", decision.summary())
    return result
