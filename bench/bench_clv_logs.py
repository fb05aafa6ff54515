"""CLV on the public transaction logs besides CDNOW (``ml/datasets/README.md``): the shipped model against
its own baselines, over seeds 1-5.

For each log: the seed-7 selection (validation scores inside the calibration period) and metrics table,
then median [min, max] over the five seeds for every method. Exit code 1 if, on any log, the median of the
shipped model ("selected") is worse than the better of BG/NBD + Gamma-Gamma and carry-forward by more than
0.01 on normalized Gini or on Spearman, or its median aggregate error is outside +/-15%.
``python bench/bench_clv_logs.py [apparel] [online_retail] [cdnow]`` (default: the two non-CDNOW logs).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

RANK_SLACK = 0.01
TOTAL_TOLERANCE = 0.15


def logs() -> dict:
    from ml import transactions as t

    return {
        "apparel": (t.APPAREL_PATH, t.APPAREL_CALIBRATION_END, t.APPAREL_HOLDOUT_END),
        "online_retail": (t.ONLINE_RETAIL_PATH, t.ONLINE_RETAIL_CALIBRATION_END, t.ONLINE_RETAIL_HOLDOUT_END),
        "cdnow": (None, t.CDNOW_CALIBRATION_END, t.CDNOW_HOLDOUT_END),
    }


def judge(summary) -> list[str]:
    """The issue's rule for a log: never worse than the better baseline by more than 0.01 on Gini and
    Spearman, total within +/-15% (medians over seeds)."""
    missed = []
    selected = summary.loc["selected"]
    for metric in ("gini", "spearman"):
        best = max(summary.loc["bgnbd_gg", f"{metric}_median"], summary.loc["carry_forward", f"{metric}_median"])
        if selected[f"{metric}_median"] < best - RANK_SLACK:
            missed.append(f"{metric} {selected[f'{metric}_median']:.3f} < best baseline {best:.3f} - {RANK_SLACK}")
    if abs(selected["aggregate_error_median"]) > TOTAL_TOLERANCE:
        missed.append(f"aggregate error {selected['aggregate_error_median']:+.1%} outside +/-{TOTAL_TOLERANCE:.0%}")
    return missed


def main(argv: list[str]) -> int:
    import pandas as pd

    from ml.clv_benchmark import (
        REPORTED_SEEDS,
        format_seed_summary,
        report,
        run_benchmark,
        seed_metrics,
        seed_summary,
    )
    from ml.transactions import load_cdnow_with_counts, load_transactions_with_counts

    names = argv or ["apparel", "online_retail"]
    failed = False
    for name in names:
        path, cut, end = logs()[name]
        days, counts = load_transactions_with_counts(path) if path else load_cdnow_with_counts()
        started = time.perf_counter()
        result = run_benchmark(days, cut, end)
        print(f"==== {name}: calibration to {cut}, holdout to {end} (default seed, {time.perf_counter() - started:.0f}s)")
        report(result, counts, pd.Timestamp(cut), pd.Timestamp(end))
        per_seed = seed_metrics(days, cut, end, REPORTED_SEEDS)
        print(format_seed_summary(per_seed))
        missed = judge(seed_summary(per_seed))
        print(f"{name}: " + ("never worse than its baselines beyond the allowance" if not missed
                             else "MISSED " + "; ".join(missed)))
        failed |= bool(missed)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
