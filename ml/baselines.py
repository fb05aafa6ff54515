"""CLV baselines: BG/NBD + Gamma-Gamma (fitted here with scipy) and carry-forward of the last 12 months
(or of the history that exists, when shorter).

BG/NBD (Fader, Hardie & Lee 2005, "Counting your customers the easy way"): while alive a customer buys
at Poisson rate lambda ~ Gamma(r, alpha); after every purchase they drop out with probability
p ~ Beta(a, b). Inputs per customer: ``frequency`` x (repeat purchase days), ``recency`` t_x and age
``T`` (days). Gamma-Gamma (Fader & Hardie 2013, "The Gamma-Gamma model of monetary value"): a
customer's spend per transaction is Gamma(p, nu) with nu ~ Gamma(q, gamma), fitted on repeaters'
mean repeat spend. Expected holdout spend = E[transactions in (T, T+t]] x E[mean spend].

Both likelihoods are maximised over log-parameters with L-BFGS-B, so every parameter stays positive.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize
from scipy.special import gammaln, hyp2f1

from ml.transactions import rfm_summary, window_totals


def _fit_log_params(neg_ll, start: np.ndarray) -> tuple[np.ndarray, float]:
    result = optimize.minimize(neg_ll, np.log(start), method="L-BFGS-B",
                               options={"maxiter": 2000, "gtol": 1e-8, "ftol": 1e-12})
    if not np.isfinite(result.fun):
        raise RuntimeError(f"likelihood maximisation failed: {result.message}")
    return np.exp(result.x), float(result.fun)


@dataclass
class BGNBD:
    r: float = np.nan
    alpha: float = np.nan
    a: float = np.nan
    b: float = np.nan
    log_likelihood: float = np.nan

    @staticmethod
    def log_likelihood_terms(params, x, t_x, T) -> np.ndarray:
        r, alpha, a, b = params
        ln_a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
        ln_a2 = gammaln(a + b) + gammaln(b + x) - gammaln(b) - gammaln(a + b + x)
        ln_a3 = -(r + x) * np.log(alpha + T)
        with np.errstate(divide="ignore", invalid="ignore"):
            ln_a4 = np.where(x > 0, np.log(a) - np.log(np.maximum(b + x - 1, 1e-300))
                             - (r + x) * np.log(alpha + t_x), -np.inf)
        return ln_a1 + ln_a2 + np.logaddexp(ln_a3, ln_a4)

    def fit(self, frequency, recency, T) -> BGNBD:
        x, t_x, age = (np.asarray(v, dtype=float) for v in (frequency, recency, T))
        # Customers with the same (x, t_x, T) share a likelihood term: fit on the unique rows.
        unique, counts = np.unique(np.column_stack([x, t_x, age]), axis=0, return_counts=True)
        ux, ut, uT = unique.T
        scale = max(float(np.mean(age)), 1.0)

        def neg_ll(log_params):
            params = np.exp(log_params)
            ll = self.log_likelihood_terms(params, ux, ut, uT)
            value = -(counts * ll).sum() / counts.sum()
            return value if np.isfinite(value) else 1e10

        (self.r, self.alpha, self.a, self.b), nll = _fit_log_params(
            neg_ll, np.array([1.0, scale, 1.0, 1.0]))
        self.log_likelihood = -nll * counts.sum()
        return self

    @property
    def params(self) -> dict[str, float]:
        return {"r": self.r, "alpha": self.alpha, "a": self.a, "b": self.b}

    def expected_transactions(self, t, frequency, recency, T) -> np.ndarray:
        """E[number of purchases in (T, T + t]] given (x, t_x, T): FHL 2005 eq. (10)."""
        x, t_x, age = (np.asarray(v, dtype=float) for v in (frequency, recency, T))
        r, alpha, a, b = self.r, self.alpha, self.a, self.b
        # (a - 1) and the bracket change sign together, so the ratio holds for a < 1 too (CDNOW fits a < 1).
        hyp = hyp2f1(r + x, b + x, a + b + x - 1, t / (alpha + age + t))
        head = (a + b + x - 1) / (a - 1) * (1 - ((alpha + age) / (alpha + age + t)) ** (r + x) * hyp)
        with np.errstate(divide="ignore", invalid="ignore"):
            odds = np.where(x > 0, a / np.maximum(b + x - 1, 1e-300)
                            * ((alpha + age) / (alpha + t_x)) ** (r + x), 0.0)
        exact = head / (1 + odds)
        # Very regular buyers (monthly fee billings) fit r, alpha in the tens of thousands, where hyp2f1
        # overflows. There the Gamma prior is nearly a point mass, and E[X(t)] ~ P(alive) * rate * t with
        # the posterior mean rate (r + x) / (alpha + T); dropout inside the window is then ignored.
        with np.errstate(all="ignore"):
            approx = self.probability_alive(x, t_x, age) * (r + x) / (alpha + age) * t
        return np.where(np.isfinite(exact), exact, approx)

    def probability_alive(self, frequency, recency, T) -> np.ndarray:
        x, t_x, age = (np.asarray(v, dtype=float) for v in (frequency, recency, T))
        with np.errstate(divide="ignore", invalid="ignore"):
            odds = np.where(x > 0, self.a / np.maximum(self.b + x - 1, 1e-300)
                            * ((self.alpha + age) / (self.alpha + t_x)) ** (self.r + x), 0.0)
        return 1.0 / (1.0 + odds)


@dataclass
class GammaGamma:
    p: float = np.nan
    q: float = np.nan
    v: float = np.nan  # the paper's gamma (scale of the Gamma prior on nu)
    log_likelihood: float = np.nan

    @staticmethod
    def log_likelihood_terms(params, x, m) -> np.ndarray:
        p, q, v = params
        return (gammaln(p * x + q) - gammaln(p * x) - gammaln(q) + q * np.log(v)
                + (p * x - 1) * np.log(m) + p * x * np.log(x) - (p * x + q) * np.log(v + m * x))

    def fit(self, frequency, monetary) -> GammaGamma:
        """Fit on repeaters only (``frequency > 0``, ``monetary`` = mean repeat spend > 0)."""
        x = np.asarray(frequency, dtype=float)
        m = np.asarray(monetary, dtype=float)
        keep = (x > 0) & (m > 0)
        x, m = x[keep], m[keep]
        if x.size < 3:
            raise ValueError("Gamma-Gamma needs at least three repeat customers with positive spend")

        def neg_ll(log_params):
            value = -self.log_likelihood_terms(np.exp(log_params), x, m).mean()
            return value if np.isfinite(value) else 1e10

        (self.p, self.q, self.v), nll = _fit_log_params(neg_ll, np.array([1.0, 2.0, float(np.mean(m))]))
        self.log_likelihood = -nll * x.size
        return self

    @property
    def params(self) -> dict[str, float]:
        return {"p": self.p, "q": self.q, "gamma": self.v}

    def population_mean(self) -> float:
        if self.q <= 1:
            raise ValueError(f"Gamma-Gamma mean needs q > 1, fitted q = {self.q:.3f}")
        return self.p * self.v / (self.q - 1)

    def expected_average_value(self, frequency, monetary) -> np.ndarray:
        """E[mean spend per transaction | x, m]: a weighted mix of the population mean and m (eq. 5)."""
        x = np.asarray(frequency, dtype=float)
        m = np.asarray(monetary, dtype=float)
        weight = self.p * x / (self.p * x + self.q - 1)
        return (1 - weight) * self.population_mean() + weight * np.where(x > 0, m, 0.0)


@dataclass
class BaselineForecast:
    """Per-customer holdout forecasts: ``spend`` and ``transactions`` (purchase days), indexed by customer."""
    forecast: pd.DataFrame
    details: dict


@dataclass
class BGNBDGammaGamma:
    """Both models fitted on one calibration period; forecasts any horizon from that fit."""
    rfm: pd.DataFrame
    transactions_model: BGNBD
    spend_model: GammaGamma

    @classmethod
    def fit(cls, days: pd.DataFrame, calibration_end) -> BGNBDGammaGamma:
        rfm = rfm_summary(days, calibration_end)
        return cls(rfm, BGNBD().fit(rfm["frequency"], rfm["recency"], rfm["T"]),
                   GammaGamma().fit(rfm["frequency"], rfm["monetary"]))

    def forecast(self, horizon_days: float) -> pd.DataFrame:
        """Per customer: ``spend``, ``transactions``, ``average_value``, ``p_alive`` over the next ``horizon_days``."""
        rfm = self.rfm
        expected_days = self.transactions_model.expected_transactions(
            horizon_days, rfm["frequency"], rfm["recency"], rfm["T"])
        average_value = self.spend_model.expected_average_value(rfm["frequency"], rfm["monetary"])
        return pd.DataFrame({
            "spend": expected_days * average_value,
            "transactions": expected_days,
            "average_value": average_value,
            "p_alive": self.transactions_model.probability_alive(rfm["frequency"], rfm["recency"], rfm["T"]),
        }, index=rfm.index)

    @property
    def details(self) -> dict:
        return {"bgnbd": self.transactions_model.params, "gamma_gamma": self.spend_model.params}


def bgnbd_gamma_gamma_forecast(days: pd.DataFrame, calibration_end, holdout_days: float) -> BaselineForecast:
    """Fit BG/NBD and Gamma-Gamma on the calibration period and forecast the next ``holdout_days``."""
    fitted = BGNBDGammaGamma.fit(days, calibration_end)
    forecast = fitted.forecast(holdout_days)[["spend", "transactions"]]
    return BaselineForecast(forecast, fitted.details)


def carry_forward_forecast(days: pd.DataFrame, calibration_end, holdout_days: float,
                           lookback_days: int | None = None) -> BaselineForecast:
    """Recent history carried forward: spend and purchase days in the ``lookback_days`` up to the cut, scaled
    to the holdout length (x ``holdout_days / lookback_days``).

    ``lookback_days`` defaults to the last 12 months or, when the log holds less history than that, the
    history that exists (log start to the cut, both days included): a log with 9 months of calibration is
    scaled by holdout / 9 months, not by holdout / 12 months with three empty months counted in.
    """
    cut = pd.Timestamp(calibration_end)
    if lookback_days is None:
        history_days = int((cut - days["date"].min()).days) + 1
        lookback_days = max(1, min(365, history_days))
    customers = rfm_summary(days, cut).index
    recent = window_totals(days, cut - pd.Timedelta(days=lookback_days), cut).reindex(customers, fill_value=0.0)
    factor = holdout_days / lookback_days
    forecast = pd.DataFrame({"spend": recent["spend"] * factor, "transactions": recent["transactions"] * factor},
                            index=customers)
    return BaselineForecast(forecast, {"lookback_days": lookback_days, "scale": factor})
