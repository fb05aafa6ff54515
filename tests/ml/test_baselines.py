"""BG/NBD and Gamma-Gamma recover known parameters from simulated customers; carry-forward by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ml.baselines import BGNBD, GammaGamma, bgnbd_gamma_gamma_forecast, carry_forward_forecast
from ml.transactions import rfm_summary, to_customer_days

pytestmark = pytest.mark.unit


def simulate_bgnbd(n, r, alpha, a, b, T, rng):
    """FHL 2005 generative story: Poisson purchases at rate lambda, drop out after each with prob p."""
    lam = rng.gamma(r, 1 / alpha, n)
    p = rng.beta(a, b, n)
    x = np.zeros(n)
    t_x = np.zeros(n)
    for i in range(n):
        t = 0.0
        while True:
            t += rng.exponential(1 / lam[i])
            if t > T[i]:
                break
            x[i] += 1
            t_x[i] = t
            if rng.random() < p[i]:
                break
    return x, t_x


def test_bgnbd_recovers_parameters_and_predicts_holdout():
    rng = np.random.default_rng(11)
    n = 4000
    truth = {"r": 0.5, "alpha": 10.0, "a": 0.8, "b": 2.5}
    T = rng.uniform(150, 300, n)
    # Purchases up to T are calibration, those in (T, T+200] the holdout to predict.
    lam = rng.gamma(truth["r"], 1 / truth["alpha"], n)
    p = rng.beta(truth["a"], truth["b"], n)
    cal_x, cal_tx, hold = np.zeros(n), np.zeros(n), np.zeros(n)
    for i in range(n):
        t = 0.0
        while True:
            t += rng.exponential(1 / lam[i])
            if t > T[i] + 200:
                break
            if t <= T[i]:
                cal_x[i] += 1
                cal_tx[i] = t
            else:
                hold[i] += 1
            if rng.random() < p[i]:
                break
    model = BGNBD().fit(cal_x, cal_tx, T)
    fitted = model.params
    assert fitted["r"] == pytest.approx(truth["r"], rel=0.2)
    assert fitted["alpha"] == pytest.approx(truth["alpha"], rel=0.3)
    assert fitted["a"] == pytest.approx(truth["a"], rel=0.35)
    assert fitted["b"] == pytest.approx(truth["b"], rel=0.5)
    expected = model.expected_transactions(200, cal_x, cal_tx, T)
    assert expected.sum() == pytest.approx(hold.sum(), rel=0.1)
    assert np.corrcoef(expected, hold)[0, 1] > 0.5
    alive = model.probability_alive(cal_x, cal_tx, T)
    assert np.all((alive > 0) & (alive <= 1))
    assert np.all(alive[cal_x == 0] == 1.0)


def test_bgnbd_likelihood_is_higher_at_the_truth_than_far_from_it():
    rng = np.random.default_rng(3)
    T = np.full(2000, 250.0)
    x, t_x = simulate_bgnbd(2000, 0.5, 10.0, 0.8, 2.5, T, rng)
    at_truth = BGNBD.log_likelihood_terms((0.5, 10.0, 0.8, 2.5), x, t_x, T).sum()
    far = BGNBD.log_likelihood_terms((2.0, 3.0, 3.0, 1.0), x, t_x, T).sum()
    assert at_truth > far
    assert BGNBD().fit(x, t_x, T).log_likelihood >= at_truth - 1e-6


def test_gamma_gamma_recovers_parameters():
    rng = np.random.default_rng(5)
    n = 5000
    p, q, v = 6.0, 4.0, 15.0
    nu = rng.gamma(q, 1 / v, n)
    x = rng.integers(1, 8, n).astype(float)
    m = np.array([rng.gamma(p, 1 / nu[i], int(x[i])).mean() for i in range(n)])
    model = GammaGamma().fit(x, m)
    assert model.p == pytest.approx(p, rel=0.2)
    assert model.q == pytest.approx(q, rel=0.25)
    assert model.v == pytest.approx(v, rel=0.35)
    assert model.population_mean() == pytest.approx(p * v / (q - 1), rel=0.05)
    # Shrinkage: a one-purchase customer is pulled towards the population mean more than a heavy one.
    one, many = model.expected_average_value([1, 20], [200.0, 200.0])
    assert model.population_mean() < one < many < 200.0
    assert model.expected_average_value([0], [0.0])[0] == pytest.approx(model.population_mean())


def _log():
    return to_customer_days(pd.DataFrame({
        "customer_id": ["a", "a", "a", "b", "b", "c", "a"],
        "date": ["2020-01-01", "2020-01-01", "2020-03-01", "2020-02-01", "2020-06-30", "2020-06-01", "2020-08-01"],
        "amount": [10.0, 5.0, 20.0, 7.0, 3.0, 100.0, 50.0],
    }))


def test_rfm_counts_customer_days():
    rfm = rfm_summary(_log(), "2020-06-30")
    assert rfm.loc["a"].to_dict() == {"frequency": 1.0, "recency": 60.0, "T": 181.0, "monetary": 20.0}
    assert rfm.loc["b", "frequency"] == 1.0 and rfm.loc["b", "monetary"] == 3.0
    assert rfm.loc["c", "frequency"] == 0.0 and rfm.loc["c", "monetary"] == 0.0


def test_carry_forward_by_hand():
    forecast = carry_forward_forecast(_log(), "2020-06-30", holdout_days=73, lookback_days=365).forecast
    assert forecast.loc["a", "spend"] == pytest.approx(35.0 * 73 / 365)
    assert forecast.loc["a", "transactions"] == pytest.approx(2 * 73 / 365)
    assert forecast.loc["c", "spend"] == pytest.approx(100.0 * 0.2)


def test_bgnbd_gamma_gamma_forecast_shapes():
    rng = np.random.default_rng(2)
    rows = []
    for c in range(300):
        n = rng.integers(1, 6)
        for d in rng.choice(200, n, replace=False):
            rows.append((f"c{c}", pd.Timestamp("2020-01-01") + pd.Timedelta(days=int(d)), rng.gamma(5, 4)))
    log = to_customer_days(pd.DataFrame(rows, columns=["customer_id", "date", "amount"]))
    result = bgnbd_gamma_gamma_forecast(log, "2020-07-31", 90)
    assert list(result.forecast.columns) == ["spend", "transactions"]
    assert len(result.forecast) == 300
    assert (result.forecast > 0).all().all()


def test_carry_forward_uses_the_history_that_exists():
    log = to_customer_days(pd.DataFrame({"customer_id": ["a", "a", "b"],
                                         "date": ["2020-01-01", "2020-03-01", "2020-04-09"],
                                         "amount": [30.0, 70.0, 10.0]}))
    # 100 days of history (2020-01-01 .. 2020-04-09): scaled by 50 / 100, not by 50 / 365 with 265 empty days.
    result = carry_forward_forecast(log, "2020-04-09", holdout_days=50)
    assert result.details["lookback_days"] == 100
    assert result.forecast.loc["a", "spend"] == pytest.approx(100.0 * 0.5)
    assert result.forecast.loc["b", "transactions"] == pytest.approx(0.5)
    # With more than a year of history the last 365 days are used, as before.
    longer = to_customer_days(pd.DataFrame({"customer_id": ["a", "a"], "date": ["2018-01-01", "2020-04-09"],
                                            "amount": [30.0, 70.0]}))
    assert carry_forward_forecast(longer, "2020-04-09", holdout_days=365).details["lookback_days"] == 365
