"""Break anomaly: training and scoring time on a synthetic world, with the holdout figures of both models.

Seeds the world at ``--scale`` (default ``small``), lands it with the real ingest stage (Salesforce over
HTTPS from the sandbox, broker files), builds the trading marts with dbt (these three steps are timed but
are not this benchmark's targets), then times ``train_break_anomaly`` (features in DuckDB, XGBoost,
IsolationForest, MLflow logging, registration and promotion) and ``score_break_anomalies`` (load
``@champion``, features, predict, write the scores) with MLflow on a fresh sqlite store. Prints rows, seconds,
rows per second, CPU seconds, the load average and PR-AUC / precision@50/100 of XGBoost and IsolationForest on
the latest business date. Exit code 1 if training or scoring exceeds its budget for the scale or XGBoost does
not beat IsolationForest on PR-AUC.

``python bench/bench_anomaly.py [--scale small|demo|large] [--seed 7] [--dir DIR] [--keep]``: with ``--dir``,
an existing ``DIR/world`` (landing + truth) and ``DIR/warehouse/northstar.duckdb`` are reused, so a world
built once can be measured again.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import northstar.warehouse

REPO = Path(__file__).resolve().parent.parent
for folder in (REPO, REPO / "tests" / "dbt"):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

TRAIN_BUDGET_S = {"small": 120.0, "demo": 600.0, "large": 3600.0}
SCORE_BUDGET_S = {"small": 30.0, "demo": 120.0, "large": 1200.0}
DBT_SELECTION = ["--select", "group:trading", "stg_salesforce__brokerage_accounts",
                 "--exclude-resource-type", "test", "--exclude-resource-type", "unit_test"]


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="small", choices=sorted(TRAIN_BUDGET_S))
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--dir", type=Path, help="work folder (default: a temporary one, removed afterwards)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary work folder")
    args = parser.parse_args(argv)

    base = args.dir or Path(tempfile.mkdtemp(prefix="northstar-anomaly-"))
    mlflow_dir = Path(tempfile.mkdtemp(prefix="northstar-anomaly-mlflow-"))
    world_dir, warehouse = base / "world", base / "warehouse" / "northstar.duckdb"
    os.environ.update({
        "NORTHSTAR_HOME": str(base / "var"),
        "NORTHSTAR_LANDING": str(world_dir / "landing"),
        "NORTHSTAR_WAREHOUSE": str(warehouse),
        "NORTHSTAR_MLFLOW_DIR": str(mlflow_dir),
        "NORTHSTAR_MLFLOW_TRACKING_URI": f"sqlite:///{mlflow_dir / 'mlflow.db'}",
        "NORTHSTAR_MLFLOW_ARTIFACT_ROOT": str(mlflow_dir / "artifacts"),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "False",
    })
    from northstar.settings import reset_cache, settings

    reset_cache()
    cfg = settings()
    cfg.paths.ensure()
    figures: dict[str, object] = {"scale": args.scale}
    try:
        started = time.monotonic()
        if not (world_dir / "truth" / "anomalies.parquet").exists():
            from world_landing import build_world_landing

            build_world_landing(world_dir, scale=args.scale, seed=args.seed)
            figures["world_and_landing_s"] = round(time.monotonic() - started, 1)
        if not warehouse.exists():
            from northstar.dbt import run_dbt

            started = time.monotonic()
            run_dbt("build", DBT_SELECTION, cfg=cfg)
            figures["dbt_trading_marts_s"] = round(time.monotonic() - started, 1)
            northstar.warehouse.release_dbt_handles()

        from ml.anomaly.score import score_break_anomalies
        from ml.anomaly.train import train_break_anomaly

        cpu, started = _cpu_seconds(), time.monotonic()
        trained = train_break_anomaly(cfg, labels="truth", truth_dir=world_dir / "truth")
        train_s, train_cpu = time.monotonic() - started, _cpu_seconds() - cpu
        cpu, started = _cpu_seconds(), time.monotonic()
        scored = score_break_anomalies("bench-anomaly", cfg=cfg)
        score_s, score_cpu = time.monotonic() - started, _cpu_seconds() - cpu
    finally:
        shutil.rmtree(mlflow_dir, ignore_errors=True)
        if args.dir is None and not args.keep:
            shutil.rmtree(base, ignore_errors=True)
        elif args.keep:
            print(f"kept {base}")

    rows = trained.rows_train + trained.rows_holdout
    figures.update({
        "train_rows": trained.rows_train, "holdout_rows": trained.rows_holdout,
        "train_s": round(train_s, 2), "train_cpu_s": round(train_cpu, 2),
        "train_phases_s": {k: round(v, 2) for k, v in trained.seconds.items()},
        "train_rows_per_s": round(rows / train_s),
        "score_trades": scored.trades_scored, "score_breaks": scored.breaks_scored,
        "score_s": round(score_s, 2), "score_cpu_s": round(score_cpu, 2),
        "score_phases_s": {k: round(v, 2) for k, v in scored.seconds.items()},
        "score_trades_per_s": round(scored.trades_scored / score_s),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    })
    print(json.dumps(figures, indent=2))
    print(f"holdout {','.join(trained.holdout_dates)}: {int(trained.metrics['positives'])} positives in "
          f"{int(trained.metrics['rows'])} trades ({int(trained.metrics['unflagged_positives'])} among trades "
          "without a break)")
    print(f"{'metric':<28}{'xgboost':>10}{'iforest':>10}")
    for name in ("pr_auc", "precision_at_50", "precision_at_100", "unflagged_pr_auc",
                 "unflagged_precision_at_50", "unflagged_precision_at_100"):
        print(f"{name:<28}{trained.metrics[name]:>10.4f}{trained.baseline_metrics[name]:>10.4f}")

    missed = []
    if train_s > TRAIN_BUDGET_S[args.scale]:
        missed.append(f"training {train_s:.1f}s > {TRAIN_BUDGET_S[args.scale]}s")
    if score_s > SCORE_BUDGET_S[args.scale]:
        missed.append(f"scoring {score_s:.1f}s > {SCORE_BUDGET_S[args.scale]}s")
    if not trained.metrics["pr_auc"] > trained.baseline_metrics["pr_auc"]:
        missed.append("XGBoost does not beat IsolationForest on PR-AUC")
    print("targets: " + ("met" if not missed else "MISSED: " + "; ".join(missed)))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
