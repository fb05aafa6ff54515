"""``python -m ml train|score|drift`` (registered in ml/__main__.py): the client-value steps from a shell."""

from __future__ import annotations

import json
from datetime import datetime

from ml import registry
from ml.client_value.model import TrainingConfig


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("train", help="train the CLV and/or churn model, evaluate, register, promote",
                                   description="Train on the point-in-time feature mart, evaluate against the "
                                               "baselines on the holdout cutoff, log to MLflow, register the "
                                               "version as challenger and promote it if it beats @champion.")
    parser.add_argument("--model", choices=["clv", "churn", "all"], default="all")
    parser.add_argument("--force", action="store_true", help="promote even if a threshold or check fails")
    parser.add_argument("--n-estimators", type=int, help=f"boosting rounds (default {TrainingConfig.n_estimators}; for CLV the cap of the rounds early stopping picks inside the training cutoffs)")
    parser.add_argument("--cutoff-step-months", type=int, help="use every n-th training cutoff (default 1)")
    parser.add_argument("--no-baselines", action="store_true", help="skip BG/NBD + carry-forward")
    parser.add_argument("--dbt-invocation-id", help="lineage: the dbt run that built the mart "
                                                    "(default: the last run_results.json)")
    parser.set_defaults(handler=handle_train)
    _add_score_parsers(subparsers)


def handle_train(args) -> int:
    from ml.client_value.train import train

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


def format_result(result) -> str:
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


def _add_score_parsers(subparsers) -> None:
    parser = subparsers.add_parser("score", help="score households with @champion into scores.household_scores",
                                   description="Score every household at the latest billed cutoff with the "
                                               "champion CLV and churn models; write scores, segments, drivers, "
                                               "model versions and drift (PSI) to the warehouse.")
    parser.add_argument("--run-id", help="scoring_run_id (default household-<cutoff>)")
    parser.add_argument("--scored-at", help="the run's logical time, ISO 8601 (default: midnight after the cutoff)")
    parser.add_argument("--dbt-invocation-id")
    parser.set_defaults(handler=handle_score)

    drift_parser = subparsers.add_parser("drift", help="print the drift (PSI) of the last scoring run and whether "
                                                       "each model is marked for retraining")
    drift_parser.add_argument("--run-id", help="scoring_run_id (default: the latest household run)")
    drift_parser.set_defaults(handler=handle_drift)


def handle_score(args) -> int:
    from ml.client_value.score import score, scoring_cutoff

    run_id = args.run_id or f"household-{scoring_cutoff().date()}"
    scored_at = datetime.fromisoformat(args.scored_at) if args.scored_at else None
    result = score(run_id, scored_at=scored_at, dbt_invocation_id=args.dbt_invocation_id)
    print(json.dumps(result.summary(), indent=2, default=str))
    return 0


def handle_drift(args) -> int:
    from ml.client_value.features import connect
    from ml.client_value.score import needs_retraining

    with connect() as warehouse:
        run_id = args.run_id or warehouse.scalar(
            "select scoring_run_id from {scoring_runs} where kind = 'household' order by scored_at desc limit 1")
        table = warehouse.frame("select model, kind, name, psi, status from {model_drift} "
                                "where scoring_run_id = ? order by psi desc", [run_id])
    print(f"scoring run {run_id}")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(json.dumps(needs_retraining(), indent=2))
    return 0
