"""``python -m ml clv-benchmark``: the XGBoost CLV model against BG/NBD + Gamma-Gamma and carry-forward on
any transaction log (bring your own data), with the same metrics table for all three.

The XGBoost model never sees the holdout. It is trained at a *pseudo cut* earlier than the calibration
end: features from the log up to the pseudo cut, targets from ``(pseudo cut, calibration end]``; it is then
applied to features at the real calibration end. The pseudo cut is the calibration end moved back by the
holdout length when that leaves at least half of the calibration history before it; otherwise (CDNOW:
39 weeks of calibration, 39 of holdout) it is the middle of the calibration period and the pseudo
horizon is shorter than the holdout. Predictions are then stretched to the holdout length with the
horizon curve of BG/NBD fitted on the calibration data (sum of E[transactions over the holdout] /
sum of E[transactions over the pseudo horizon], both at the calibration end), which scales the total
without looking at the holdout.

Two boosters: a Poisson model of purchase days in the window (``<method>_transactions``) and a
squared-error model of spend per purchase day among buyers (weighted by purchase days); predicted spend is
their product. This decomposition suits zero-inflated, skewed money: the count model carries who comes
back and how often (a log link, totals preserved by the Poisson objective), the value model how much.
BG/NBD + Gamma-Gamma outputs at the pseudo horizon (p_alive, expected purchases and spend, expected
value per purchase) are features too.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import xgboost as xgb

from ml.baselines import BGNBDGammaGamma, carry_forward_forecast
from ml.metrics import value_metrics
from ml.transactions import (
    TransactionLogError,
    calibration_features,
    holdout_actuals,
    load_transactions_with_counts,
    window_totals,
)

NAME = "clv-benchmark"
METHODS = ("xgboost", "bgnbd_gg", "carry_forward")
TABLE_METRICS = ("gini", "spearman", "aggregate_error", "rmse", "mae", "top_decile_capture")
SEED = 7

COUNT_PARAMS = {
    "objective": "count:poisson", "eta": 0.05, "max_depth": 4, "min_child_weight": 100,
    "subsample": 0.8, "colsample_bytree": 0.8, "seed": SEED, "nthread": 1,
}
VALUE_PARAMS = {
    "objective": "reg:squarederror", "eta": 0.05, "max_depth": 4, "min_child_weight": 20,
    "subsample": 0.8, "colsample_bytree": 0.8, "seed": SEED, "nthread": 1,
}
COUNT_ROUNDS = 300
VALUE_ROUNDS = 200
# Absolute ages (T, recency) shift between the pseudo cut and the real one; the model reads relative ones.
ABSOLUTE_AGE_FEATURES = ("T", "recency")


def model_features(days: pd.DataFrame, cut: pd.Timestamp, probabilistic: BGNBDGammaGamma,
                   horizon_days: float) -> pd.DataFrame:
    features = calibration_features(days, cut).drop(columns=list(ABSOLUTE_AGE_FEATURES))
    prior = probabilistic.forecast(horizon_days).reindex(features.index)
    features["bg_p_alive"] = prior["p_alive"]
    features["bg_transactions"] = prior["transactions"]
    features["bg_spend"] = prior["spend"]
    features["gg_average_value"] = prior["average_value"]
    return features


def pseudo_horizon_days(days: pd.DataFrame, calibration_end: pd.Timestamp, holdout_days: int) -> int:
    """The holdout length, or half the calibration history when that is shorter (see module docstring)."""
    history = (calibration_end - days["date"].min()).days
    return int(min(holdout_days, history // 2))


@dataclass
class XGBoostCLV:
    """The count x value CLV model, trained at a pseudo cut before ``calibration_end``."""
    count_booster: xgb.Booster | None = None
    value_booster: xgb.Booster | None = None
    feature_names: list[str] = field(default_factory=list)
    pseudo_cut: pd.Timestamp | None = None
    pseudo_horizon: int = 0
    training_customers: int = 0

    def fit(self, days: pd.DataFrame, calibration_end: pd.Timestamp, holdout_days: int,
            seed: int = SEED) -> XGBoostCLV:
        self.pseudo_horizon = pseudo_horizon_days(days, calibration_end, holdout_days)
        if self.pseudo_horizon < 1:
            raise ValueError("the calibration period is too short to hold out a pseudo window")
        self.pseudo_cut = calibration_end - pd.Timedelta(days=self.pseudo_horizon)
        before = days.loc[days["date"] <= calibration_end]  # the holdout is never read
        prior = BGNBDGammaGamma.fit(before, self.pseudo_cut)
        features = model_features(before, self.pseudo_cut, prior, self.pseudo_horizon)
        target = window_totals(before, self.pseudo_cut, calibration_end).reindex(features.index, fill_value=0.0)
        self.feature_names = list(features.columns)
        self.training_customers = len(features)
        self.count_booster = xgb.train(COUNT_PARAMS | {"seed": seed},
                                       xgb.DMatrix(features, label=target["transactions"]),
                                       COUNT_ROUNDS)
        buyers = target["transactions"] > 0
        value = target.loc[buyers, "spend"] / target.loc[buyers, "transactions"]
        self.value_booster = xgb.train(
            VALUE_PARAMS | {"seed": seed},
            xgb.DMatrix(features.loc[buyers], label=value, weight=target.loc[buyers, "transactions"]),
            VALUE_ROUNDS)
        return self

    def predict(self, days: pd.DataFrame, calibration_end: pd.Timestamp, holdout_days: int,
                probabilistic: BGNBDGammaGamma) -> pd.DataFrame:
        """Holdout ``spend`` and ``transactions`` per customer from features at ``calibration_end``.

        ``probabilistic`` is BG/NBD + Gamma-Gamma fitted at ``calibration_end`` (features, horizon stretch).
        """
        features = model_features(days, calibration_end, probabilistic, self.pseudo_horizon)[self.feature_names]
        matrix = xgb.DMatrix(features)
        stretch = self.horizon_stretch(probabilistic, holdout_days)
        transactions = self.count_booster.predict(matrix) * stretch
        value = np.clip(self.value_booster.predict(matrix), 0.0, None)
        return pd.DataFrame({"spend": transactions * value, "transactions": transactions}, index=features.index)

    def horizon_stretch(self, probabilistic: BGNBDGammaGamma, holdout_days: int) -> float:
        if self.pseudo_horizon == holdout_days:
            return 1.0
        return float(probabilistic.forecast(holdout_days)["transactions"].sum()
                     / probabilistic.forecast(self.pseudo_horizon)["transactions"].sum())


@dataclass
class BenchmarkResult:
    predictions: pd.DataFrame  # customer_id, <method>_spend, <method>_transactions [, actual_spend, actual_transactions]
    actuals: pd.DataFrame | None  # spend, transactions per customer; None when the log stops at the calibration end
    metrics: pd.DataFrame | None  # index (target, method), columns TABLE_METRICS
    fit_seconds: dict[str, float]
    details: dict


def run_benchmark(days: pd.DataFrame, calibration_end, holdout_end, seed: int = SEED) -> BenchmarkResult:
    """Fit the three methods on ``days`` up to ``calibration_end`` and score ``(calibration_end, holdout_end]``
    when the log covers it (a log that stops at the calibration end gets predictions only)."""
    cut = pd.Timestamp(calibration_end)
    end = pd.Timestamp(holdout_end)
    if end <= cut:
        raise TransactionLogError(f"holdout end {end.date()} must be after the calibration end {cut.date()}")
    if days.empty or days["date"].min() > cut:
        raise TransactionLogError(f"no transactions on or before the calibration end {cut.date()}")
    last = days["date"].max()
    covers_holdout = last > cut
    if covers_holdout and last < end:
        raise TransactionLogError(f"the holdout runs to {end.date()} but the log ends on {last.date()}: "
                                  f"pass --holdout-end {last.date()} or a log that covers the holdout")
    holdout_days = (end - cut).days
    calibration = days.loc[days["date"] <= cut]
    fit_seconds: dict[str, float] = {}

    started = time.perf_counter()
    probabilistic = BGNBDGammaGamma.fit(calibration, cut)
    baseline = probabilistic.forecast(holdout_days)
    fit_seconds["bgnbd_gg"] = time.perf_counter() - started

    started = time.perf_counter()
    model = XGBoostCLV().fit(calibration, cut, holdout_days, seed=seed)
    xgboost = model.predict(calibration, cut, holdout_days, probabilistic)
    fit_seconds["xgboost"] = time.perf_counter() - started  # includes its own BG/NBD fit at the pseudo cut

    started = time.perf_counter()
    carry = carry_forward_forecast(calibration, cut, holdout_days).forecast
    fit_seconds["carry_forward"] = time.perf_counter() - started

    customers = baseline.index
    forecasts = {"xgboost": xgboost, "bgnbd_gg": baseline, "carry_forward": carry}
    predictions = pd.DataFrame({"customer_id": customers})
    for method in METHODS:
        aligned = forecasts[method].reindex(customers)
        predictions[f"{method}_spend"] = aligned["spend"].to_numpy()
        predictions[f"{method}_transactions"] = aligned["transactions"].to_numpy()
    actuals = metrics = None
    if covers_holdout:
        actuals = holdout_actuals(days, customers, cut, end)
        predictions["actual_spend"] = actuals["spend"].to_numpy()
        predictions["actual_transactions"] = actuals["transactions"].to_numpy()
        metrics = metrics_table(predictions, actuals)
    details = {
        "customers": len(customers), "holdout_days": holdout_days, "seed": seed, "covers_holdout": covers_holdout,
        "pseudo_cut": str(model.pseudo_cut.date()), "pseudo_horizon_days": model.pseudo_horizon,
        "horizon_stretch": model.horizon_stretch(probabilistic, holdout_days),
        **probabilistic.details,
    }
    return BenchmarkResult(predictions, actuals, metrics, fit_seconds, details)


def metrics_table(predictions: pd.DataFrame, actuals: pd.DataFrame) -> pd.DataFrame:
    """Rows (target, method) for target in spend/transactions; recomputable from the predictions CSV."""
    actuals = actuals.reindex(predictions["customer_id"].to_numpy())
    rows = {}
    for target in ("spend", "transactions"):
        for method in METHODS:
            rows[(target, method)] = value_metrics(actuals[target].to_numpy(),
                                                   predictions[f"{method}_{target}"].to_numpy())
    table = pd.DataFrame.from_dict(rows, orient="index")[list(TABLE_METRICS)]
    table.index = pd.MultiIndex.from_tuples(table.index, names=["target", "method"])
    return table


def format_table(metrics: pd.DataFrame) -> str:
    header = f"{'target':<13}{'method':<15}{'gini':>8}{'spearman':>10}{'agg_err':>9}{'rmse':>10}{'mae':>9}{'top10%':>8}"
    lines = [header, "-" * len(header)]
    for (target, method), row in metrics.iterrows():
        lines.append(f"{target:<13}{method:<15}{row['gini']:>8.3f}{row['spearman']:>10.3f}"
                     f"{row['aggregate_error']:>+9.1%}{row['rmse']:>10.2f}{row['mae']:>9.2f}"
                     f"{row['top_decile_capture']:>8.3f}")
    return "\n".join(lines)


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        NAME, help="XGBoost CLV vs BG/NBD+Gamma-Gamma vs carry-forward on a transaction log",
        description="Train on the log up to --calibration-end, forecast spend and purchase days in "
                    "(calibration end, holdout end], print the metrics table for every method.")
    parser.add_argument("--transactions", required=True, type=Path,
                        help="CSV or Parquet with columns customer_id, date, amount")
    parser.add_argument("--calibration-end", required=True, help="last day of the calibration period (YYYY-MM-DD)")
    parser.add_argument("--holdout-end", required=True, help="last day of the holdout period (YYYY-MM-DD)")
    parser.add_argument("--seed", type=int, default=SEED,
                        help="seed of the boosters' sampling (predictions are deterministic per seed)")
    parser.add_argument("--predictions-out", type=Path,
                        help="write customer_id and <method>_spend, <method>_transactions per customer, and "
                             "actual_spend, actual_transactions when the log covers the holdout (CSV)")
    parser.set_defaults(handler=handle)


def _date(text: str, flag: str) -> pd.Timestamp:
    try:
        return pd.Timestamp(text)
    except ValueError as exc:
        raise TransactionLogError(f"{flag} {text!r} is not a date (YYYY-MM-DD)") from exc


def handle(args: argparse.Namespace) -> int:
    """Bad input (missing file, empty log, missing column, unreadable value, holdout past the data): one
    line on stderr and exit code 2."""
    try:
        cut = _date(args.calibration_end, "--calibration-end")
        end = _date(args.holdout_end, "--holdout-end")
        days, counts = load_transactions_with_counts(args.transactions)
        result = run_benchmark(days, cut, end, seed=args.seed)
    except TransactionLogError as exc:
        print(f"clv-benchmark: error: {exc}", file=sys.stderr)
        return 2
    d = result.details
    print(counts.summary())
    print(f"{d['customers']} customers, calibration to {args.calibration_end}, holdout {d['holdout_days']} days "
          f"to {args.holdout_end}; xgboost trained at pseudo cut {d['pseudo_cut']} "
          f"({d['pseudo_horizon_days']}-day window, horizon stretch x{d['horizon_stretch']:.3f})")
    if result.metrics is None:
        print("the log stops at the calibration end: predictions only, no holdout metrics")
    else:
        print(format_table(result.metrics))
    print("fit seconds: " + ", ".join(f"{m} {s:.2f}" for m, s in result.fit_seconds.items()))
    if args.predictions_out:
        args.predictions_out.parent.mkdir(parents=True, exist_ok=True)
        result.predictions.to_csv(args.predictions_out, index=False)
        print(f"predictions: {args.predictions_out}")
    return 0
