"""CLV on CDNOW: the XGBoost model against BG/NBD + Gamma-Gamma and last-12-months carry-forward.

Calibration to 1997-09-30, holdout 1997-10-01 .. 1998-06-30 (23,570 customers, a customer-day counts as one
transaction). Prints the metrics table (holdout spend and purchase days) and each method's fit time.
Exit code 1 if XGBoost misses any of the spend targets: normalized Gini >= 0.71, Spearman >= 0.45,
aggregate error within +/-10%, RMSE <= 93. ``python bench/bench_clv_cdnow.py``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

TARGETS = {"gini": (">=", 0.71), "spearman": (">=", 0.45), "aggregate_error": ("abs<=", 0.10), "rmse": ("<=", 93.0)}


def main() -> int:
    from ml.clv_benchmark import format_table, run_benchmark
    from ml.transactions import CDNOW_CALIBRATION_END, CDNOW_HOLDOUT_END, load_cdnow

    started = time.perf_counter()
    days = load_cdnow()
    load_seconds = time.perf_counter() - started
    result = run_benchmark(days, CDNOW_CALIBRATION_END, CDNOW_HOLDOUT_END)
    print(f"CDNOW: {len(days)} customer-days, {result.details['customers']} customers, loaded in {load_seconds:.2f}s; "
          f"xgboost pseudo cut {result.details['pseudo_cut']} ({result.details['pseudo_horizon_days']} days)")
    print(format_table(result.metrics))
    print("fit seconds: " + ", ".join(f"{m} {s:.2f}" for m, s in result.fit_seconds.items()))
    spend = result.metrics.loc[("spend", "xgboost")]
    missed = []
    for name, (rule, bound) in TARGETS.items():
        value = spend[name]
        ok = value >= bound if rule == ">=" else value <= bound if rule == "<=" else abs(value) <= bound
        if not ok:
            missed.append(f"{name} {value:.3f} (target {rule} {bound})")
    print("targets: " + ("all met" if not missed else "missed " + "; ".join(missed)))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
