"""CLV on the public transaction logs besides CDNOW (``ml/datasets/README.md``): the shipped model against
its own baselines, over seeds 1-5.

Per log: median [min, max] over seeds 1-5 of normalized Gini, Spearman, RMSE and aggregate error of holdout
spend for every method (the baselines do not depend on the seed). Exit code 1 if, on any log, the model's
median is worse than the better of BG/NBD + Gamma-Gamma and carry-forward by more than 0.01 on Gini or on
Spearman, or its median aggregate error is outside +/-15% (issue 18). ``python bench/bench_clv_logs.py``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

SEEDS = (1, 2, 3, 4, 5)
MODEL = "xgboost"
RANK_SLACK = 0.01
TOTAL_TOLERANCE = 0.15
METRICS = ("gini", "spearman", "rmse", "aggregate_error")


def main() -> int:
    import pandas as pd

    from ml import transactions as t
    from ml.clv_benchmark import run_benchmark

    logs = {"apparel": (t.APPAREL_PATH, t.APPAREL_CALIBRATION_END, t.APPAREL_HOLDOUT_END),
            "online_retail": (t.ONLINE_RETAIL_PATH, t.ONLINE_RETAIL_CALIBRATION_END, t.ONLINE_RETAIL_HOLDOUT_END)}
    failed = False
    for name, (path, cut, end) in logs.items():
        days, counts = t.load_transactions_with_counts(path)
        print(f"==== {name}: calibration to {cut}, holdout to {end}; {counts.summary()}")
        rows = []
        started = time.perf_counter()
        for seed in SEEDS:
            result = run_benchmark(days, cut, end, seed=seed)
            for method, values in result.metrics.xs("spend", level="target").iterrows():
                rows.append({"seed": seed, "method": method, **values.to_dict()})
        per_seed = pd.DataFrame(rows).groupby("method", sort=False)[list(METRICS)]
        median, low, high = per_seed.median(), per_seed.min(), per_seed.max()
        print(f"spend, median [min, max] over seeds {list(SEEDS)} ({time.perf_counter() - started:.0f}s)")
        for method in median.index:
            print(f"  {method:<14}" + "".join(
                f"  {metric} {median.loc[method, metric]:.3f} [{low.loc[method, metric]:.3f}, "
                f"{high.loc[method, metric]:.3f}]" for metric in METRICS))
        missed = []
        for metric in ("gini", "spearman"):
            best = max(median.loc["bgnbd_gg", metric], median.loc["carry_forward", metric])
            if median.loc[MODEL, metric] < best - RANK_SLACK:
                missed.append(f"{metric} {median.loc[MODEL, metric]:.3f} < best baseline {best:.3f} - {RANK_SLACK}")
        if abs(median.loc[MODEL, "aggregate_error"]) > TOTAL_TOLERANCE:
            missed.append(f"aggregate error {median.loc[MODEL, 'aggregate_error']:+.1%} outside "
                          f"+/-{TOTAL_TOLERANCE:.0%}")
        print(f"{name}: " + ("never worse than its baselines beyond the allowance" if not missed
                             else "MISSED " + "; ".join(missed)))
        failed |= bool(missed)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
