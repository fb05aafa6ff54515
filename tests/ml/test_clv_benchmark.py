"""``python -m ml clv-benchmark`` end to end on a small real log: the predictions CSV recomputes the printed
table and says what was shipped; BG/NBD + Gamma-Gamma reproduces the independently measured CDNOW figures.

The issue's accuracy targets (CDNOW median over five seeds, the two other public logs) are judged by
``bench/bench_clv_cdnow.py`` and ``bench/bench_clv_logs.py`` (``make bench``): they take minutes, not the
seconds a test may take, and the figures are in ``ml/README.md``.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from ml.__main__ import main
from ml.baselines import bgnbd_gamma_gamma_forecast
from ml.clv_benchmark import METHODS
from ml.metrics import value_metrics
from ml.transactions import (
    APPAREL_CALIBRATION_END,
    APPAREL_PATH,
    CDNOW_CALIBRATION_END,
    CDNOW_HOLDOUT_END,
    holdout_actuals,
    load_cdnow_with_counts,
    read_log,
    to_customer_days,
)

pytestmark = pytest.mark.unit

END = "2010-12-19"  # the last purchase day of the apparel log's first 200 customers


def test_clv_benchmark_cli_predictions_recompute_the_printed_table(tmp_path, capsys):
    raw = read_log(APPAREL_PATH)
    small = raw.loc[raw["customer_id"].astype(int) <= 200].reset_index(drop=True)
    log_path = tmp_path / "apparel_200.parquet"
    small.to_parquet(log_path)
    out = tmp_path / "predictions.csv"
    code = main(["clv-benchmark", "--transactions", str(log_path), "--calibration-end", APPAREL_CALIBRATION_END,
                 "--holdout-end", END, "--seed", "3", "--predictions-out", str(out)])
    assert code == 0
    printed = capsys.readouterr().out

    predictions = pd.read_csv(out, dtype={"customer_id": str})
    expected_columns = (["customer_id"] + [f"{m}_{t}" for m in METHODS for t in ("spend", "transactions")]
                        + ["actual_spend", "actual_transactions"])
    assert list(predictions.columns) == expected_columns
    assert predictions["customer_id"].is_unique and len(predictions) == 200
    assert predictions.drop(columns="customer_id").ge(0).all().all()

    # The output names the shipped candidate, and "selected" is that candidate's own forecast.
    chosen = next(ln.split()[0] for ln in printed.splitlines() if ln.rstrip().endswith("<- selected"))
    family = chosen.rsplit("_d", 1)[0] if chosen.startswith(("xgboost", "hybrid")) else chosen
    for target in ("spend", "transactions"):
        np.testing.assert_allclose(predictions[f"selected_{target}"], predictions[f"{family}_{target}"])

    # Recompute the metrics from the CSV and the raw log alone, and find them in the printed table.
    days = to_customer_days(small)
    actual = holdout_actuals(days, pd.Index(predictions["customer_id"]), APPAREL_CALIBRATION_END, END)
    np.testing.assert_allclose(predictions["actual_spend"], actual["spend"])
    np.testing.assert_allclose(predictions["actual_transactions"], actual["transactions"])
    for target in ("spend", "transactions"):
        for method in METHODS:
            m = value_metrics(actual[target].to_numpy(), predictions[f"{method}_{target}"].to_numpy())
            line = next(ln for ln in printed.splitlines() if re.match(rf"{target}\s+{method}\s", ln))
            gini, spearman, agg, rmse, mae, top = line.split()[2:]
            assert float(gini) == pytest.approx(m["gini"], abs=6e-4)
            assert float(spearman) == pytest.approx(m["spearman"], abs=6e-4)
            assert float(agg.rstrip("%")) / 100 == pytest.approx(m["aggregate_error"], abs=6e-4)
            assert float(rmse) == pytest.approx(m["rmse"], abs=6e-3)
            assert float(mae) == pytest.approx(m["mae"], abs=6e-3)
            assert float(top) == pytest.approx(m["top_decile_capture"], abs=6e-4)


def test_bgnbd_gamma_gamma_reproduces_the_reference_figures_on_cdnow():
    """The baseline every CLV method here is judged against, on the issue's CDNOW split (zero-value rows are
    not purchases), against figures measured independently with ``lifetimes``."""
    days, counts = load_cdnow_with_counts()
    assert counts.rows_non_positive_amount == 80 and counts.rows_without_customer == 0
    holdout_days = (pd.Timestamp(CDNOW_HOLDOUT_END) - pd.Timestamp(CDNOW_CALIBRATION_END)).days
    forecast = bgnbd_gamma_gamma_forecast(days, CDNOW_CALIBRATION_END, holdout_days).forecast
    assert len(forecast) == 23_500
    actual = holdout_actuals(days, forecast.index, CDNOW_CALIBRATION_END, CDNOW_HOLDOUT_END)
    spend = value_metrics(actual["spend"].to_numpy(), forecast["spend"].to_numpy())
    assert spend["gini"] == pytest.approx(0.672, abs=0.002)
    assert spend["spearman"] == pytest.approx(0.421, abs=0.002)
    assert spend["aggregate_error"] == pytest.approx(-0.173, abs=0.005)
