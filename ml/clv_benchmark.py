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
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import xgboost as xgb

from ml.baselines import BGNBDGammaGamma, carry_forward_forecast
from ml.metrics import value_metrics
from ml.transactions import calibration_features, holdout_actuals, load_transactions, window_totals

NAME = "clv-benchmark"
METHODS = ("xgboost", "bgnbd_gg", "carry_forward")
TABLE_METRICS = ("gini", "spearman", "aggregate_error", "rmse", "mae", "top_decile_capture")
SEED = 7

COUNT_PARAMS = {
    "objective": "count:poisson", "eta": 0.05, "max_depth": 4, "min_child_weight": 100,
    "subsample": 0.8, "colsample_bytree": 0.8, "seed": SEED, "nthread": 1,
}
BUYER_PARAMS = {
    "objective": "binary:logistic", "eta": 0.05, "max_depth": 4, "min_child_weight": 50,
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
STRUCTURES = ("count_value", "hurdle")
FEATURE_SETS = ("base", "relative")


@dataclass(frozen=True)
class CLVConfig:
    """One candidate of the XGBoost CLV model; ``select_config`` picks one on calibration data only.

    ``structure``: ``count_value`` = Poisson purchase days x spend per purchase day; ``hurdle`` = a two-part
    model, P(buys in the window) x (1 + E[further purchase days | buys]) x spend per purchase day.
    ``features``: ``base`` = ``calibration_features`` + BG/NBD-GG outputs; ``relative`` also swaps days since
    the last purchase (which at the real cut runs past anything seen at the pseudo cut) for its share of the
    customer's age, and adds recency / age, median spend and BG/NBD expected purchases over 1/4 and 1/2 of
    the window. ``xgboost_weight``: the forecast is ``w x XGBoost + (1 - w) x BG/NBD-GG`` (both at the
    calibration end, both for the holdout), for spend and purchase days alike.
    """
    structure: str = "count_value"
    features: str = "base"
    xgboost_weight: float = 1.0

    def __post_init__(self):
        if self.structure not in STRUCTURES or self.features not in FEATURE_SETS:
            raise ValueError(f"unknown structure/features {self.structure!r}/{self.features!r}")
        if not 0.0 <= self.xgboost_weight <= 1.0:
            raise ValueError(f"xgboost_weight must be in [0, 1], got {self.xgboost_weight}")

    @property
    def model_key(self) -> tuple[str, str]:
        """What the boosters depend on (the blend weight does not: one fit serves every weight)."""
        return self.structure, self.features

    @property
    def label(self) -> str:
        return f"{self.structure}/{self.features} w={self.xgboost_weight:.1f}"


def model_features(days: pd.DataFrame, cut: pd.Timestamp, probabilistic: BGNBDGammaGamma,
                   horizon_days: float, feature_set: str = "base") -> pd.DataFrame:
    raw = calibration_features(days, cut)
    features = raw.drop(columns=list(ABSOLUTE_AGE_FEATURES))
    prior = probabilistic.forecast(horizon_days).reindex(features.index)
    features["bg_p_alive"] = prior["p_alive"]
    features["bg_transactions"] = prior["transactions"]
    features["bg_spend"] = prior["spend"]
    features["gg_average_value"] = prior["average_value"]
    if feature_set == "relative":
        age = raw["T"].clip(lower=1.0)
        features = features.drop(columns=["days_since_last"])
        features["recency_share"] = raw["recency"] / age
        features["idle_share"] = raw["days_since_last"] / age
        features["median_spend"] = days.loc[days["date"] <= cut].groupby("customer_id")["amount"].median()
        for share in (0.25, 0.5):
            features[f"bg_transactions_{share:g}h"] = probabilistic.forecast(
                max(1.0, share * horizon_days))["transactions"].reindex(features.index)
    return features


def pseudo_horizon_days(days: pd.DataFrame, calibration_end: pd.Timestamp, holdout_days: int) -> int:
    """The holdout length, or half the calibration history when that is shorter (see module docstring)."""
    history = (calibration_end - days["date"].min()).days
    return int(min(holdout_days, history // 2))


@dataclass
class XGBoostCLV:
    """The CLV boosters (``CLVConfig``), trained at a pseudo cut before ``calibration_end``."""
    config: CLVConfig = field(default_factory=CLVConfig)
    count_booster: xgb.Booster | None = None
    buyer_booster: xgb.Booster | None = None
    value_booster: xgb.Booster | None = None
    feature_names: list[str] = field(default_factory=list)
    pseudo_cut: pd.Timestamp | None = None
    pseudo_horizon: int = 0
    training_customers: int = 0

    def fit(self, days: pd.DataFrame, calibration_end: pd.Timestamp, holdout_days: int) -> XGBoostCLV:
        self.pseudo_horizon = pseudo_horizon_days(days, calibration_end, holdout_days)
        if self.pseudo_horizon < 1:
            raise ValueError("the calibration period is too short to hold out a pseudo window")
        self.pseudo_cut = calibration_end - pd.Timedelta(days=self.pseudo_horizon)
        before = days.loc[days["date"] <= calibration_end]  # the holdout is never read
        prior = BGNBDGammaGamma.fit(before, self.pseudo_cut)
        features = model_features(before, self.pseudo_cut, prior, self.pseudo_horizon, self.config.features)
        target = window_totals(before, self.pseudo_cut, calibration_end).reindex(features.index, fill_value=0.0)
        self.feature_names = list(features.columns)
        self.training_customers = len(features)
        buyers = target["transactions"] > 0
        if self.config.structure == "count_value":
            self.count_booster = xgb.train(COUNT_PARAMS, xgb.DMatrix(features, label=target["transactions"]),
                                           COUNT_ROUNDS)
        else:
            self.buyer_booster = xgb.train(BUYER_PARAMS, xgb.DMatrix(features, label=buyers.astype(float)),
                                           COUNT_ROUNDS)
            # Purchase days beyond the first, among buyers: Poisson on (days - 1).
            self.count_booster = xgb.train(
                {**COUNT_PARAMS, "min_child_weight": 20},
                xgb.DMatrix(features.loc[buyers], label=target.loc[buyers, "transactions"] - 1.0), VALUE_ROUNDS)
        value = target.loc[buyers, "spend"] / target.loc[buyers, "transactions"]
        self.value_booster = xgb.train(
            VALUE_PARAMS, xgb.DMatrix(features.loc[buyers], label=value, weight=target.loc[buyers, "transactions"]),
            VALUE_ROUNDS)
        return self

    def predict_boosters(self, days: pd.DataFrame, calibration_end: pd.Timestamp, holdout_days: int,
                         probabilistic: BGNBDGammaGamma) -> pd.DataFrame:
        """The boosters' own holdout ``spend`` and ``transactions`` (no blend) from features at ``calibration_end``.

        ``probabilistic`` is BG/NBD + Gamma-Gamma fitted at ``calibration_end`` (features, horizon stretch).
        """
        features = model_features(days, calibration_end, probabilistic, self.pseudo_horizon,
                                  self.config.features)[self.feature_names]
        matrix = xgb.DMatrix(features)
        if self.config.structure == "hurdle":
            window = self.buyer_booster.predict(matrix) * (1.0 + self.count_booster.predict(matrix))
        else:
            window = self.count_booster.predict(matrix)
        transactions = window * self.horizon_stretch(probabilistic, holdout_days)
        value = np.clip(self.value_booster.predict(matrix), 0.0, None)
        return pd.DataFrame({"spend": transactions * value, "transactions": transactions}, index=features.index)

    def predict(self, days: pd.DataFrame, calibration_end: pd.Timestamp, holdout_days: int,
                probabilistic: BGNBDGammaGamma) -> pd.DataFrame:
        """Holdout ``spend`` and ``transactions``: the boosters blended with BG/NBD-GG by ``xgboost_weight``."""
        own = self.predict_boosters(days, calibration_end, holdout_days, probabilistic)
        return blend(own, probabilistic.forecast(holdout_days), self.config.xgboost_weight)

    def horizon_stretch(self, probabilistic: BGNBDGammaGamma, holdout_days: int) -> float:
        if self.pseudo_horizon == holdout_days:
            return 1.0
        return float(probabilistic.forecast(holdout_days)["transactions"].sum()
                     / probabilistic.forecast(self.pseudo_horizon)["transactions"].sum())


def blend(boosters: pd.DataFrame, probabilistic: pd.DataFrame, weight: float) -> pd.DataFrame:
    """``weight x boosters + (1 - weight) x probabilistic`` for ``spend`` and ``transactions``."""
    other = probabilistic.reindex(boosters.index)[["spend", "transactions"]]
    return weight * boosters[["spend", "transactions"]] + (1.0 - weight) * other


# Every structure x feature set, each blended with BG/NBD-GG at weights 1.0 (XGBoost alone) .. 0.3.
BLEND_WEIGHTS = (1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3)
CANDIDATES = tuple(CLVConfig(structure, features, weight) for structure in STRUCTURES
                   for features in FEATURE_SETS for weight in BLEND_WEIGHTS)
MIN_WINDOW_DAYS = 14


def backtest_origins(days: pd.DataFrame, calibration_end, holdout_days: int) -> list[pd.Timestamp]:
    """Earlier origins for the rolling-origin validation: the calibration end moved back by a third and by
    half of the holdout length, kept when both the history before an origin and the window after it hold at
    least ``MIN_WINDOW_DAYS`` (the history needs twice that: the procedure hides a pseudo window in it)."""
    cut = pd.Timestamp(calibration_end)
    first = days["date"].min()
    origins = []
    for share in (1 / 3, 1 / 2):
        origin = cut - pd.Timedelta(days=int(round(holdout_days * share)))
        if (cut - origin).days >= MIN_WINDOW_DAYS and (origin - first).days >= 2 * MIN_WINDOW_DAYS:
            origins.append(origin)
    return origins


def backtest(days: pd.DataFrame, calibration_end, origin,
             candidates: tuple[CLVConfig, ...] = CANDIDATES) -> pd.DataFrame:
    """The whole XGBoost procedure run at ``origin`` on the log up to it, scored on spend in
    ``(origin, calibration_end]``: one row of ``value_metrics`` per candidate. Rows after
    ``calibration_end`` are dropped first and never read; candidates that differ only in the blend weight
    share one fit."""
    cut = pd.Timestamp(calibration_end)
    origin = pd.Timestamp(origin)
    if origin >= cut:
        raise ValueError(f"origin {origin.date()} must be before the calibration end {cut.date()}")
    visible = days.loc[days["date"] <= cut]
    before = visible.loc[visible["date"] <= origin]
    window = (cut - origin).days
    probabilistic = BGNBDGammaGamma.fit(before, origin)
    reference = probabilistic.forecast(window)
    actual = holdout_actuals(visible, reference.index, origin, cut)["spend"].to_numpy()
    fitted: dict[tuple[str, str], pd.DataFrame] = {}
    rows = []
    for config in candidates:
        if config.model_key not in fitted:
            model = XGBoostCLV(config).fit(before, origin, window)
            fitted[config.model_key] = model.predict_boosters(before, origin, window, probabilistic)
        forecast = blend(fitted[config.model_key], reference, config.xgboost_weight).reindex(reference.index)
        rows.append({"candidate": config.label, "origin": str(origin.date()),
                     **value_metrics(actual, forecast["spend"].to_numpy())})
    return pd.DataFrame(rows)


@dataclass
class Selection:
    config: CLVConfig
    table: pd.DataFrame  # one row per (candidate, origin): value_metrics and score
    origins: list[pd.Timestamp]


def select_config(days: pd.DataFrame, calibration_end, holdout_days: int,
                  candidates: tuple[CLVConfig, ...] = CANDIDATES) -> Selection:
    """The candidate with the best mean (normalized Gini + Spearman) on spend over the rolling origins.

    Uses only rows on or before ``calibration_end``. Ties keep the earlier candidate; a log too short for
    any origin keeps the first one.
    """
    cut = pd.Timestamp(calibration_end)
    visible = days.loc[days["date"] <= cut]
    origins = backtest_origins(visible, cut, holdout_days)
    if not origins:
        return Selection(candidates[0], pd.DataFrame(), origins)
    table = pd.concat([backtest(visible, cut, origin, candidates) for origin in origins], ignore_index=True)
    table["score"] = table["gini"] + table["spearman"]
    mean_score = table.groupby("candidate", sort=False)["score"].mean().reindex([c.label for c in candidates])
    return Selection(candidates[int(np.argmax(mean_score.to_numpy()))], table, origins)


@dataclass
class BenchmarkResult:
    predictions: pd.DataFrame  # customer_id, <method>_spend, <method>_transactions
    actuals: pd.DataFrame  # spend, transactions per customer
    metrics: pd.DataFrame  # index (target, method), columns TABLE_METRICS
    fit_seconds: dict[str, float]
    details: dict


def run_benchmark(days: pd.DataFrame, calibration_end, holdout_end,
                  candidates: tuple[CLVConfig, ...] = CANDIDATES) -> BenchmarkResult:
    """Fit the three methods on ``days`` up to ``calibration_end`` and score ``(calibration_end, holdout_end]``.

    The XGBoost configuration is chosen among ``candidates`` by ``select_config`` on the calibration
    period alone; a single candidate skips the search."""
    cut = pd.Timestamp(calibration_end)
    end = pd.Timestamp(holdout_end)
    if end <= cut:
        raise ValueError(f"holdout end {end.date()} must be after calibration end {cut.date()}")
    if days["date"].min() > cut:
        raise ValueError(f"no transactions on or before the calibration end {cut.date()}")
    holdout_days = (end - cut).days
    calibration = days.loc[days["date"] <= cut]
    fit_seconds: dict[str, float] = {}

    started = time.perf_counter()
    probabilistic = BGNBDGammaGamma.fit(calibration, cut)
    baseline = probabilistic.forecast(holdout_days)
    fit_seconds["bgnbd_gg"] = time.perf_counter() - started

    started = time.perf_counter()
    if len(candidates) > 1:
        selection = select_config(calibration, cut, holdout_days, candidates)
    else:
        selection = Selection(candidates[0], pd.DataFrame(), [])
    fit_seconds["xgboost_selection"] = time.perf_counter() - started

    started = time.perf_counter()
    model = XGBoostCLV(selection.config).fit(calibration, cut, holdout_days)
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
    actuals = holdout_actuals(days, customers, cut, end)
    metrics = metrics_table(predictions, actuals)
    details = {
        "customers": len(customers), "holdout_days": holdout_days,
        "pseudo_cut": str(model.pseudo_cut.date()), "pseudo_horizon_days": model.pseudo_horizon,
        "horizon_stretch": model.horizon_stretch(probabilistic, holdout_days),
        "config": selection.config.label, "selection": selection.table,
        "selection_origins": [str(o.date()) for o in selection.origins],
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


def format_selection(details: dict) -> str:
    """The rolling-origin validation: mean spend metrics per candidate over the origins, chosen one marked."""
    table = details.get("selection")
    if table is None or table.empty:
        return f"xgboost config: {details['config']} (no search)"
    means = table.groupby("candidate", sort=False)[["gini", "spearman", "aggregate_error", "rmse", "score"]].mean()
    width = max(len(c) for c in means.index) + 2
    header = f"  {'candidate':<{width}}{'gini':>8}{'spearman':>10}{'agg_err':>9}{'rmse':>9}{'score':>8}"
    lines = [f"xgboost config selected on calibration data (spend in (origin, calibration end], origins "
             f"{', '.join(details['selection_origins'])}; score = gini + spearman, mean over origins):", header]
    for candidate, row in means.iterrows():
        mark = " <- selected" if candidate == details["config"] else ""
        lines.append(f"  {candidate:<{width}}{row['gini']:>8.3f}{row['spearman']:>10.3f}"
                     f"{row['aggregate_error']:>+9.1%}{row['rmse']:>9.2f}{row['score']:>8.4f}{mark}")
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
    parser.add_argument("--predictions-out", type=Path,
                        help="write customer_id and <method>_spend, <method>_transactions per customer (CSV)")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    days = load_transactions(args.transactions)
    result = run_benchmark(days, args.calibration_end, args.holdout_end)
    d = result.details
    print(f"{d['customers']} customers, calibration to {args.calibration_end}, holdout {d['holdout_days']} days "
          f"to {args.holdout_end}; xgboost trained at pseudo cut {d['pseudo_cut']} "
          f"({d['pseudo_horizon_days']}-day window, horizon stretch x{d['horizon_stretch']:.3f})")
    print(format_selection(d))
    print(format_table(result.metrics))
    print("fit seconds: " + ", ".join(f"{m} {s:.2f}" for m, s in result.fit_seconds.items()))
    if args.predictions_out:
        args.predictions_out.parent.mkdir(parents=True, exist_ok=True)
        result.predictions.to_csv(args.predictions_out, index=False)
        print(f"predictions: {args.predictions_out}")
    return 0
