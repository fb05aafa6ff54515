"""CLV on CDNOW: the model selected inside the calibration period against BG/NBD + Gamma-Gamma and carry-forward.

Calibration to 1997-09-30, holdout 1997-10-01 .. 1998-06-30 (a customer-day counts as one transaction;
zero-value rows are not purchases). Runs seeds 1-5 (the seed drives the boosters' sampling, and through
it the validation's choice), prints the seed-7 selection and table, then median [min, max] over the five
seeds for every method. Exit code 1 if the *median* of the shipped model ("selected") misses any spend
target: normalized Gini >= 0.71, Spearman >= 0.45, RMSE <= 93, aggregate error within +/-10%.
``python bench/bench_clv_cdnow.py``.
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
    import pandas as pd

    from ml.clv_benchmark import (
        REPORTED_SEEDS,
        format_seed_summary,
        report,
        run_benchmark,
        seed_metrics,
        seed_summary,
    )
    from ml.transactions import CDNOW_CALIBRATION_END, CDNOW_HOLDOUT_END, load_cdnow_with_counts

    started = time.perf_counter()
    days, counts = load_cdnow_with_counts()
    print(f"CDNOW loaded in {time.perf_counter() - started:.2f}s")
    started = time.perf_counter()
    result = run_benchmark(days, CDNOW_CALIBRATION_END, CDNOW_HOLDOUT_END)
    print(f"== default seed ({time.perf_counter() - started:.0f}s)")
    report(result, counts, pd.Timestamp(CDNOW_CALIBRATION_END), pd.Timestamp(CDNOW_HOLDOUT_END))
    started = time.perf_counter()
    per_seed = seed_metrics(days, CDNOW_CALIBRATION_END, CDNOW_HOLDOUT_END, REPORTED_SEEDS)
    print(f"== seeds {list(REPORTED_SEEDS)} ({time.perf_counter() - started:.0f}s)")
    print(format_seed_summary(per_seed))
    median = seed_summary(per_seed).loc["selected"]
    missed = []
    for name, (rule, bound) in TARGETS.items():
        value = median[f"{name}_median"]
        ok = value >= bound if rule == ">=" else value <= bound if rule == "<=" else abs(value) <= bound
        if not ok:
            missed.append(f"{name} {value:.3f} (target {rule} {bound})")
    print("targets (median over seeds): " + ("all met" if not missed else "missed " + "; ".join(missed)))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
