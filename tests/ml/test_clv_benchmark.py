"""``python -m ml clv-benchmark`` on CDNOW: XGBoost beats BG/NBD + Gamma-Gamma; the CSV recomputes the table."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from ml.__main__ import main
from ml.clv_benchmark import METHODS
from ml.metrics import normalized_gini, value_metrics
from ml.transactions import CDNOW_CALIBRATION_END, CDNOW_HOLDOUT_END, holdout_actuals, load_cdnow

pytestmark = pytest.mark.integration


def test_clv_benchmark_cli_on_cdnow(tmp_path, capsys):
    days = load_cdnow()
    log_path = tmp_path / "cdnow.parquet"
    days.to_parquet(log_path)
    out = tmp_path / "predictions.csv"
    code = main(["clv-benchmark", "--transactions", str(log_path), "--calibration-end", CDNOW_CALIBRATION_END,
                 "--holdout-end", CDNOW_HOLDOUT_END, "--predictions-out", str(out)])
    assert code == 0
    printed = capsys.readouterr().out

    predictions = pd.read_csv(out, dtype={"customer_id": str})
    expected_columns = (["customer_id"] + [f"{m}_{t}" for m in METHODS for t in ("spend", "transactions")]
                        + ["actual_spend", "actual_transactions"])
    assert list(predictions.columns) == expected_columns
    assert predictions["customer_id"].is_unique and len(predictions) == 23_570
    assert predictions.drop(columns="customer_id").ge(0).all().all()

    # Recompute the metrics from the CSV and the raw log alone, and find them in the printed table.
    actual = holdout_actuals(days, pd.Index(predictions["customer_id"]), CDNOW_CALIBRATION_END, CDNOW_HOLDOUT_END)
    np.testing.assert_allclose(predictions["actual_spend"], actual["spend"])
    np.testing.assert_allclose(predictions["actual_transactions"], actual["transactions"])
    recomputed = {}
    for target in ("spend", "transactions"):
        for method in METHODS:
            m = value_metrics(actual[target].to_numpy(), predictions[f"{method}_{target}"].to_numpy())
            recomputed[(target, method)] = m
            line = next(ln for ln in printed.splitlines() if re.match(rf"{target}\s+{method}\s", ln))
            gini, spearman, agg, rmse, mae, top = line.split()[2:]
            assert float(gini) == pytest.approx(m["gini"], abs=6e-4)
            assert float(spearman) == pytest.approx(m["spearman"], abs=6e-4)
            assert float(agg.rstrip("%")) / 100 == pytest.approx(m["aggregate_error"], abs=6e-4)
            assert float(rmse) == pytest.approx(m["rmse"], abs=6e-3)
            assert float(mae) == pytest.approx(m["mae"], abs=6e-3)
            assert float(top) == pytest.approx(m["top_decile_capture"], abs=6e-4)

    xgb_spend, bg_spend = recomputed[("spend", "xgboost")], recomputed[("spend", "bgnbd_gg")]
    assert xgb_spend["gini"] > bg_spend["gini"]
    assert xgb_spend["spearman"] > bg_spend["spearman"]
    # The reference figures for BG/NBD + Gamma-Gamma on CDNOW (measured independently).
    assert bg_spend["gini"] == pytest.approx(0.672, abs=0.002)
    assert bg_spend["spearman"] == pytest.approx(0.421, abs=0.002)
    assert bg_spend["aggregate_error"] == pytest.approx(-0.173, abs=0.005)
    # The targets of the issue that this model meets on CDNOW.
    assert xgb_spend["gini"] >= 0.71
    assert abs(xgb_spend["aggregate_error"]) <= 0.10
    assert xgb_spend["rmse"] <= 93.0
    assert np.isclose(normalized_gini(actual["spend"], actual["spend"]), 1.0)


def test_clv_benchmark_rejects_a_log_without_the_columns(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("customer,when,value\n1,2020-01-01,3\n")
    code = main(["clv-benchmark", "--transactions", str(bad), "--calibration-end", "2020-06-30",
                 "--holdout-end", "2020-12-31"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and "missing columns customer_id, date, amount" in err[0]
