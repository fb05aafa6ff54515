"""``python -m ml anomaly-train`` and ``python -m ml anomaly-score --run-id X`` (registered in ml/__main__.py)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

TRAIN = "anomaly-train"
SCORE = "anomaly-score"


def add_parser(subparsers) -> None:
    train = subparsers.add_parser(
        TRAIN, help="train the break-anomaly model, log it to MLflow, register it, promote it if it wins",
        description="Features from the warehouse, labels from ServiceNow close codes (when enough are landed) or "
                    "an explicit ground-truth folder; latest business date held out; XGBoost vs IsolationForest.")
    train.add_argument("--labels", choices=["auto", "servicenow", "truth"], default="auto",
                       help="label source (auto: ServiceNow when it has enough closed incidents, else --truth-dir)")
    train.add_argument("--truth-dir", type=Path, help="sandbox ground-truth folder (anomalies.parquet, breaks.parquet)")
    train.add_argument("--incidents-dir", type=Path,
                       help="landed ServiceNow incidents (default <landing>/servicenow/incidents)")
    train.add_argument("--holdout-days", type=int, default=1, help="latest business dates held out (default 1)")
    train.add_argument("--dbt-invocation-id", help="lineage: the dbt invocation that built the warehouse")
    train.add_argument("--force", action="store_true", help="promote to champion even if the checks fail")
    train.set_defaults(handler=handle_train)

    score = subparsers.add_parser(
        SCORE, help="score trades and breaks with @champion into scores.trade_anomaly_scores / scores.break_scores",
        description="Idempotent: re-running a scoring run id replaces that run's rows.")
    score.add_argument("--run-id", required=True, help="scoring run id (the DAG passes its run id)")
    score.add_argument("--scored-at", help="the run's logical time (default: the break register's last_seen_at)")
    score.add_argument("--business-date", action="append", dest="business_dates",
                       help="score only this business date (repeatable; default every date)")
    score.add_argument("--dbt-invocation-id", help="lineage: the dbt invocation that built the warehouse")
    score.set_defaults(handler=handle_score)


def handle_train(args: argparse.Namespace) -> int:
    from ml.anomaly.train import train_break_anomaly

    result = train_break_anomaly(labels=args.labels, truth_dir=args.truth_dir, incidents_dir=args.incidents_dir,
                                 holdout_days=args.holdout_days, dbt_invocation=args.dbt_invocation_id,
                                 force=args.force)
    print(f"{result.model_label} (run {result.mlflow_run_id}), labels {result.label_source}, "
          f"holdout {','.join(result.holdout_dates)}")
    print(f"{'metric':<28}{'xgboost':>10}{'iforest':>10}")
    for name in ("pr_auc", "precision_at_50", "precision_at_100", "unflagged_pr_auc",
                 "unflagged_precision_at_50", "unflagged_precision_at_100"):
        print(f"{name:<28}{result.metrics[name]:>10.4f}{result.baseline_metrics[name]:>10.4f}")
    print(result.decision)
    print("seconds: " + json.dumps({k: round(v, 2) for k, v in result.seconds.items()}))
    return 0


def handle_score(args: argparse.Namespace) -> int:
    from ml.anomaly.score import score_break_anomalies

    result = score_break_anomalies(args.run_id, scored_at=args.scored_at, business_dates=args.business_dates,
                                   dbt_invocation=args.dbt_invocation_id)
    print(json.dumps(result.as_dict(), indent=2, default=str))
    return 0
