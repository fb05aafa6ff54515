"""Client-value training and batch scoring time at a scale tier (default ``large``: 1,000,000 households).

Builds a warehouse for the tier (seed the world, land it through the real ingest, ``dbt build --selector
nightly_customer``) in ``--dir`` (kept, so a second run reuses it with ``--reuse``), then in a private
MLflow store times

* ``northstar-clv`` training (fit + holdout evaluation + MLflow logging + registration + promotion),
* ``northstar-churn`` training (needed for scoring),
* ``ml.client_value.score.score`` of every household at the scoring cutoff (load @champion, predict, CLV, segments,
  drivers, drift, write ``scores.*``).

Bench configuration: every 3rd training cutoff, at most 4 (4 x households rows), at most 400 rounds (the CLV
model's depth and rounds are selected inside the training cutoffs on a sample of at most 200,000 rows), no
BG/NBD baseline (its fit is evaluation, not training). Exit 1 at ``large`` if CLV training takes 5 minutes or
more, or scoring 1,000,000 households 60 seconds or more. Other tiers print the figures only.
``python bench/bench_clv_train.py [--scale large] [--dir DIR] [--reuse]``

``--replicate-from WAREHOUSE --households N`` skips the world build: it copies the cutoffs the bench
trains and scores on from an existing warehouse's ``fct_household_features`` (and ``dim_households``),
replicated with suffixed household ids up to N households. The ML cost (rows x features x rounds) is the
same as a real tier of N households; the data is the smaller world's, repeated.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import northstar.warehouse
from northstar.warehouse import relation, render

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests" / "dbt"))

def cpu_seconds() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


TRAIN_BUDGET_S = 300.0
SCORE_BUDGET_S = 60.0


def build(root: Path, scale: str) -> None:
    from world_landing import build_world_landing

    from northstar.dbt import run_dbt
    from northstar.settings import reset_cache, settings

    started = time.perf_counter()
    world = build_world_landing(root, scale=scale, seed=7)
    os.environ["NORTHSTAR_LANDING"] = str(world.landing)
    reset_cache()
    cfg = settings()
    cfg.paths.ensure()
    run_dbt("build", ["--selector", "nightly_customer"], cfg=cfg)
    print(f"built the {scale} warehouse in {time.perf_counter() - started:.0f}s", flush=True)


def replicate(source: Path, target: Path, households: int, train_cutoffs: int = 4, step: int = 3) -> None:
    """A warehouse holding only the bench's cutoffs, ``households`` households made of copies of ``source``'s."""
    import pandas as pd

    from ml.client_value.features import plan_cutoffs

    target.parent.mkdir(parents=True, exist_ok=True)
    target.unlink(missing_ok=True)
    with northstar.warehouse.connect(read_only=True, path=source) as con:
        cutoffs = con.sql(render("""
            select cutoff_on, count(*) as households, bool_and(is_label_window_complete) as complete,
                count(aum_at_cutoff) > 0 as has_billing
            from {fct_household_features} group by cutoff_on order by cutoff_on
        """)).df()
        base = int(con.execute(render("select count(*) from {dim_households}")).fetchone()[0])
    plan = plan_cutoffs(cutoffs, step, train_cutoffs)
    keep = [pd.Timestamp(c).date() for c in sorted({*plan.validation_train, *plan.train, plan.holdout, plan.scoring})]
    copies = -(-households // base)
    households_table, features_table = relation("dim_households"), relation("fct_household_features")
    with northstar.warehouse.connect(path=target) as con:
        con.execute(f"attach '{source}' as source (read_only)")  # noqa: S608 - a path we were given
        for table in (households_table, features_table):
            con.execute(f"create schema if not exists {table.split('.')[0]}")
        con.execute("create temp table copies as select range as copy from range(?)", [copies])
        con.execute(f"""
            create table {households_table} as
            select * replace (h.household_id || '-' || lpad(c.copy::varchar, 3, '0') as household_id)
            from {relation("dim_households", database="source")} as h cross join copies as c
        """)  # noqa: S608 - registered names
        con.execute(f"""
            delete from {households_table} where household_id not in (
                select household_id from {households_table} order by household_id limit ?)
        """, [households])  # noqa: S608 - registered names
        con.execute(f"""
            create table {features_table} as
            select f.* replace (f.household_id || '-' || lpad(c.copy::varchar, 3, '0') as household_id)
            from {relation("fct_household_features", database="source")} as f cross join copies as c
            where list_contains(?::date[], f.cutoff_on)
        """, [keep])  # noqa: S608 - registered names
        con.execute(f"""
            delete from {features_table}
            where household_id not in (select household_id from {households_table})
        """)  # noqa: S608 - registered names
        con.execute("drop table copies")
        con.execute("detach source")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", default="large")
    parser.add_argument("--dir", type=Path, help="work folder (default var/bench/clv-<scale>)")
    parser.add_argument("--reuse", action="store_true", help="reuse the warehouse already built in --dir")
    parser.add_argument("--n-estimators", type=int, default=400)
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--replicate-from", type=Path, help="build from copies of this warehouse's feature mart")
    parser.add_argument("--households", type=int, default=1_000_000, help="with --replicate-from")
    parser.add_argument("--score-only", action="store_true", help="reuse the champions of the last bench run")
    args = parser.parse_args()
    root = (args.dir or REPO / "var" / "bench" / f"clv-{args.scale}").resolve()
    os.environ.update({"NORTHSTAR_HOME": str(root / "var"), "NORTHSTAR_LANDING": str(root / "landing"),
                       "NORTHSTAR_NO_AIRFLOW_CONNECTIONS": "1",
                       "NORTHSTAR_MLFLOW_TRACKING_URI": f"sqlite:///{root / 'var' / 'mlflow' / 'bench.db'}"})
    if not args.score_only:  # a fresh registry: the first versions become champions
        (root / "var" / "mlflow" / "bench.db").unlink(missing_ok=True)
    from northstar.settings import reset_cache, settings

    reset_cache()
    replicated = args.replicate_from is not None
    if not (args.reuse and settings().paths.warehouse.exists()):
        if replicated:
            started = time.perf_counter()
            replicate(args.replicate_from.resolve(), settings().paths.warehouse, args.households)
            print(f"replicated {args.replicate_from} to {args.households:,} households in "
                  f"{time.perf_counter() - started:.0f}s", flush=True)
        else:
            build(root, args.scale)
    reset_cache()

    from ml.client_value.model import TrainingConfig
    from ml.client_value.score import score
    from ml.client_value.train import train

    # The replicated warehouse holds only the bench's cutoffs, already 3 months apart.
    config = TrainingConfig(n_estimators=args.n_estimators, cutoff_step_months=1 if replicated else 3,
                            max_train_cutoffs=4, run_baselines=False, n_jobs=args.n_jobs)
    if args.score_only:
        started, cpu = time.perf_counter(), cpu_seconds()
        result = score(f"bench-{args.scale}")
        score_seconds = time.perf_counter() - started
        print(f"scoring {result.rows:,} households {score_seconds:.1f} s wall, {cpu_seconds() - cpu:.1f} s CPU  "
              + ", ".join(f"{k} {v:.1f}" for k, v in result.seconds.items()))
        print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        return 1 if (replicated and args.households >= 1_000_000 or args.scale == "large") \
            and score_seconds >= SCORE_BUDGET_S else 0
    started, cpu = time.perf_counter(), cpu_seconds()
    clv = train("clv", config=config, force=True)["clv"]
    clv_seconds, clv_cpu = time.perf_counter() - started, cpu_seconds() - cpu
    started, cpu = time.perf_counter(), cpu_seconds()
    churn = train("churn", config=config, force=True)["churn"]
    churn_seconds, churn_cpu = time.perf_counter() - started, cpu_seconds() - cpu
    started, cpu = time.perf_counter(), cpu_seconds()
    result = score(f"bench-{args.scale}")
    score_seconds, score_cpu = time.perf_counter() - started, cpu_seconds() - cpu

    print(f"scale {args.scale}: {clv.lineage['train_rows']:,} training rows ({len(clv.lineage['train_cutoffs'])} "
          f"cutoffs), {clv.lineage['holdout_rows']:,} holdout households, {result.rows:,} scored")
    print(f"clv training   {clv_seconds:8.1f} s wall {clv_cpu:8.1f} s CPU  (xgboost fit {clv.extra['fit_seconds']:.1f} s; holdout gini "
          f"{clv.metrics['gini']:.3f}, spearman {clv.metrics['spearman']:.3f})")
    print(f"churn training {churn_seconds:8.1f} s wall {churn_cpu:8.1f} s CPU  (xgboost fit {churn.extra['fit_seconds']:.1f} s; holdout auc "
          f"{churn.metrics['auc']:.3f})")
    print(f"scoring        {score_seconds:8.1f} s wall {score_cpu:8.1f} s CPU  " + ", ".join(f"{k} {v:.1f}" for k, v in result.seconds.items()))
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    if args.scale != "large" and not (replicated and args.households >= 1_000_000):
        print("targets apply at the large tier only (CLV training < 300 s, scoring 1,000,000 households < 60 s)")
        return 0
    missed = []
    if clv_seconds >= TRAIN_BUDGET_S:
        missed.append(f"CLV training {clv_seconds:.0f} s >= {TRAIN_BUDGET_S:.0f} s")
    if score_seconds >= SCORE_BUDGET_S:
        missed.append(f"scoring {score_seconds:.0f} s >= {SCORE_BUDGET_S:.0f} s")
    print("MISSED: " + "; ".join(missed) if missed else "targets met")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
