"""The XGBoost CLV configuration is chosen on the calibration period only: rows after the calibration end
never change the selection, the rolling-origin backtests or the fitted boosters."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ml.clv_benchmark import (
    CLVConfig,
    XGBoostCLV,
    backtest,
    backtest_origins,
    blend,
    select_config,
)
from ml.transactions import to_customer_days

pytestmark = pytest.mark.unit

START = pd.Timestamp("2020-01-01")
CALIBRATION_END = pd.Timestamp("2020-09-30")
HOLDOUT_DAYS = 180
# Two model fits (one per structure) x two blend weights: small enough for a unit test.
CANDIDATES = (CLVConfig("count_value", "relative", 1.0, 1), CLVConfig("count_value", "relative", 0.6, 1),
              CLVConfig("hurdle", "base", 1.0, 3), CLVConfig("hurdle", "base", 0.6, 3))


def simulated_log(n: int = 1500, seed: int = 3) -> pd.DataFrame:
    """BG/NBD-style buyers acquired over the first 90 days, Gamma spend, a log to the holdout end."""
    rng = np.random.default_rng(seed)
    end = (CALIBRATION_END - START).days + HOLDOUT_DAYS
    rows = []
    for c in range(n):
        rate = rng.gamma(0.6, 1 / 25.0)
        dropout = rng.beta(1.0, 3.0)
        scale = rng.gamma(4.0, 8.0)
        t = float(rng.integers(0, 90))
        while t <= end:
            rows.append((f"c{c}", START + pd.Timedelta(days=int(t)), float(rng.gamma(2.0, scale))))
            if rng.random() < dropout:
                break
            t += rng.exponential(1 / max(rate, 1e-3)) + 1.0
    return to_customer_days(pd.DataFrame(rows, columns=["customer_id", "date", "amount"]))


def with_a_different_holdout(log: pd.DataFrame, seed: int = 9) -> pd.DataFrame:
    """The same calibration rows; every later row replaced: amounts x 50, more rows, new customers."""
    rng = np.random.default_rng(seed)
    calibration = log.loc[log["date"] <= CALIBRATION_END]
    later = log.loc[log["date"] > CALIBRATION_END].copy()
    later["amount"] *= 50.0
    extra = pd.DataFrame({
        "customer_id": rng.choice(calibration["customer_id"].unique(), 3000).tolist() + [f"new{i}" for i in range(500)],
        "date": [CALIBRATION_END + pd.Timedelta(days=int(d)) for d in rng.integers(1, HOLDOUT_DAYS + 1, 3500)],
        "amount": rng.gamma(2.0, 500.0, 3500),
    })
    return to_customer_days(pd.concat([calibration, later, extra], ignore_index=True))


@pytest.fixture(scope="module")
def logs():
    log = simulated_log()
    return log, with_a_different_holdout(log)


def test_selection_never_reads_the_holdout(logs):
    log, changed = logs
    assert not log.equals(changed)
    first = select_config(log, CALIBRATION_END, HOLDOUT_DAYS, CANDIDATES)
    second = select_config(changed, CALIBRATION_END, HOLDOUT_DAYS, CANDIDATES)
    assert first.config == second.config
    pd.testing.assert_frame_equal(first.table, second.table)
    # Every backtest scores a window that ends at the calibration end, from an origin before it.
    assert first.origins and all(o < CALIBRATION_END for o in first.origins)
    assert set(first.table["origin"]) == {str(o.date()) for o in first.origins}
    assert len(first.table) == len(CANDIDATES) * len(first.origins)
    # The chosen candidate has the best mean score (normalized Gini + Spearman) over the origins.
    means = first.table.groupby("candidate")["score"].mean()
    assert means[first.config.label] == means.max()
    np.testing.assert_allclose(first.table["score"], first.table["gini"] + first.table["spearman"])


def test_backtest_scores_only_calibration_rows(logs):
    log, changed = logs
    origin = backtest_origins(log, CALIBRATION_END, HOLDOUT_DAYS)[0]
    calibration_only = log.loc[log["date"] <= CALIBRATION_END]
    a = backtest(log, CALIBRATION_END, origin, CANDIDATES[:2])
    b = backtest(changed, CALIBRATION_END, origin, CANDIDATES[:2])
    c = backtest(calibration_only, CALIBRATION_END, origin, CANDIDATES[:2])
    pd.testing.assert_frame_equal(a, b)
    pd.testing.assert_frame_equal(a, c)
    # Blend weight 1 is XGBoost alone, 0.6 mixes in BG/NBD-GG: different forecasts, same fit.
    assert a.loc[0, "rmse"] != a.loc[1, "rmse"]
    with pytest.raises(ValueError, match="before the calibration end"):
        backtest(log, CALIBRATION_END, CALIBRATION_END, CANDIDATES[:1])


@pytest.mark.parametrize("config", [CLVConfig("count_value", "relative", 1.0, 3), CLVConfig("hurdle", "base", 1.0, 1)])
def test_fit_ignores_rows_after_the_calibration_end(logs, config):
    log, changed = logs
    from ml.baselines import BGNBDGammaGamma

    calibration = log.loc[log["date"] <= CALIBRATION_END]
    probabilistic = BGNBDGammaGamma.fit(calibration, CALIBRATION_END)
    forecasts = []
    for source in (log, changed):
        model = XGBoostCLV(config).fit(source, CALIBRATION_END, HOLDOUT_DAYS)
        forecasts.append(model.predict(calibration, CALIBRATION_END, HOLDOUT_DAYS, probabilistic))
        cuts = model.training_cuts(calibration, CALIBRATION_END)
        assert len(cuts) == config.pseudo_cuts
        assert all(START < cut < CALIBRATION_END for cut in cuts) and model.pseudo_cut in cuts
    pd.testing.assert_frame_equal(forecasts[0], forecasts[1])
    assert (forecasts[0] >= 0).all().all() and forecasts[0]["spend"].sum() > 0


def test_backtest_origins_and_a_log_too_short_for_any():
    log = simulated_log(200)
    origins = backtest_origins(log, CALIBRATION_END, 273)
    assert origins == [CALIBRATION_END - pd.Timedelta(days=91), CALIBRATION_END - pd.Timedelta(days=136)]
    short = log.loc[log["date"] <= START + pd.Timedelta(days=20)]
    end = START + pd.Timedelta(days=20)
    assert backtest_origins(short, end, 273) == []
    selection = select_config(short, end, 273, CANDIDATES)
    assert selection.config == CANDIDATES[0] and selection.table.empty


def test_blend_weights():
    index = pd.Index(["a", "b"])
    boosters = pd.DataFrame({"spend": [10.0, 0.0], "transactions": [2.0, 0.0]}, index=index)
    # BG/NBD-GG's frame comes in another order and with more columns: blend aligns on the customer.
    probabilistic = pd.DataFrame({"spend": [30.0, 0.0], "transactions": [3.0, 1.0], "p_alive": [1.0, 1.0]},
                                 index=pd.Index(["b", "a"]))
    pd.testing.assert_frame_equal(blend(boosters, probabilistic, 1.0), boosters)
    half = blend(boosters, probabilistic, 0.5)
    assert half.loc["a"].tolist() == [5.0, 1.5] and half.loc["b"].tolist() == [15.0, 1.5]
    assert blend(boosters, probabilistic, 0.0).loc["b", "spend"] == 30.0


def test_config_rejects_unknown_choices():
    with pytest.raises(ValueError, match="structure"):
        CLVConfig("tweedie")
    with pytest.raises(ValueError, match="xgboost_weight"):
        CLVConfig(xgboost_weight=1.5)
    with pytest.raises(ValueError, match="pseudo_cuts"):
        CLVConfig(pseudo_cuts=2)
