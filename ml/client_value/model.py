"""The client-value models: which exist, their hyper-parameters, the rows and labels each learns from, fit
and predict (``northstar-clv``: Tweedie regression of ``revenue_next_12m``; ``northstar-churn``: logistic
classification of ``is_attrited_within_12m`` on households active at the cutoff)."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xgboost as xgb

from ml import registry
from ml.client_value.features import FEATURE_COLUMNS, LABEL_ATTRITION, LABEL_REVENUE, model_matrix
from ml.metrics import value_metrics

MODELS = {"clv": registry.CLV_MODEL, "churn": registry.CHURN_MODEL}


@dataclass
class TrainingConfig:
    """Hyper-parameters and promotion margins (tests pass a small one; the CLI takes --n-estimators)."""
    n_estimators: int = 400
    learning_rate: float = 0.05
    max_depth: int = 5
    min_child_weight: float = 10.0
    subsample: float = 0.8
    colsample_bytree: float = 0.8
    tweedie_variance_power: float = 1.2
    n_jobs: int = 2
    seed: int = 7
    cutoff_step_months: int = 1
    max_train_cutoffs: int | None = 12
    run_baselines: bool = True
    # Promotion: the challenger must beat the champion by these margins on the same holdout.
    clv_gini_margin: float = 0.005
    churn_auc_margin: float = 0.002
    clv_gini_floor: float = 0.30
    clv_abs_aggregate_error_ceiling: float = 0.20
    # Attrition within 12 months is a weak signal in a wealth book (holdout AUC 0.52-0.65 here): the
    # floor refuses a model no better than chance; beating every baseline on the same holdout and
    # the champion comparison do the rest.
    churn_auc_floor: float = 0.50
    churn_brier_ceiling: float = 0.20
    fairness_tolerance: float = 0.05  # worst group may be at most this much worse than the champion's
    # RMSE and MAE may not get worse than the champion's by more than this share (see CLV_GATE_POLICY).
    clv_error_regression_tolerance: float = 0.05
    # Promotion gate: a challenger whose training population is *severely* unlike tonight's (a broken
    # feature snapshot, a lost source) is not promoted. Moderate drift is the nightly monitor's job.
    score_psi_ceiling: float = 0.50
    # CLV selection fits its candidates on a seeded sample of at most this many rows (fit and validation each):
    # it compares candidates, so a sample serves, and it keeps training at 1,000,000 households in budget.
    clv_selection_max_rows: int = 200_000

    def xgb_params(self, kind: str) -> dict:
        params = {"eta": self.learning_rate, "max_depth": self.max_depth, "min_child_weight": self.min_child_weight,
                  "subsample": self.subsample, "colsample_bytree": self.colsample_bytree, "seed": self.seed,
                  "nthread": self.n_jobs, "tree_method": "hist"}
        if kind == "clv":
            params |= {"objective": "reg:tweedie", "tweedie_variance_power": self.tweedie_variance_power,
                       "eval_metric": "tweedie-nloglik@1.2"}
        else:
            params |= {"objective": "binary:logistic", "eval_metric": "logloss"}
        return params


def model_rows(kind: str, frame: pd.DataFrame) -> pd.DataFrame:
    if kind == "clv":
        return frame.loc[frame[LABEL_REVENUE].notna()].reset_index(drop=True)
    return frame.loc[frame[LABEL_ATTRITION].notna()].reset_index(drop=True)


def model_labels(kind: str, frame: pd.DataFrame) -> np.ndarray:
    if kind == "clv":
        return frame[LABEL_REVENUE].to_numpy(dtype=float)
    return frame[LABEL_ATTRITION].astype(bool).to_numpy(dtype=float)


def predict(booster: xgb.Booster, frame: pd.DataFrame) -> np.ndarray:
    """Predictions of a booster on mart rows, using the feature names it was trained with."""
    matrix = model_matrix(frame)
    names = booster.feature_names or FEATURE_COLUMNS
    return booster.predict(xgb.DMatrix(matrix[names], feature_names=names))


def fit(kind: str, frame: pd.DataFrame, config: TrainingConfig) -> xgb.Booster:
    rows = model_rows(kind, frame)
    matrix = xgb.DMatrix(model_matrix(rows), label=model_labels(kind, rows), feature_names=FEATURE_COLUMNS)
    return xgb.train(config.xgb_params(kind), matrix, num_boost_round=config.n_estimators)


# ---------------------------------------------------------------- CLV model selection inside the training cutoffs

# The candidates, in tie-break order (simpler first): a shallow tree depth and the configured one for the Tweedie
# booster; the carry-forward fallback is always a candidate. Rounds come from early stopping at the validation
# cutoff, capped by ``n_estimators``.
CLV_SHALLOW_DEPTH = 3
CARRY_FORWARD = "carry_forward"


@dataclass
class ClvSelection:
    """Which CLV model the validation inside the training cutoffs chose, and on what figures.

    ``scores`` has one row per candidate: the validation metrics, ``score`` (the worse of the Gini and Spearman
    margins over carry-forward at the validation cutoff) and, for boosters, the early-stopped ``rounds``.
    """
    validation_cutoff: pd.Timestamp | None
    fit_cutoffs: list[pd.Timestamp]
    gap_months: int | None
    scores: pd.DataFrame
    chosen: str  # "xgboost_d<depth>" or "carry_forward"
    max_depth: int
    rounds: int
    reason: str

    @property
    def is_fallback(self) -> bool:
        return self.chosen == CARRY_FORWARD

    def as_dict(self) -> dict:
        return {"validation_cutoff": str(self.validation_cutoff.date()) if self.validation_cutoff is not None else None,
                "fit_cutoffs": [str(c.date()) for c in self.fit_cutoffs], "gap_months": self.gap_months,
                "chosen": self.chosen, "max_depth": self.max_depth, "rounds": self.rounds, "reason": self.reason,
                "scores": json.loads(self.scores.to_json(orient="index"))}


def _sample(rows: pd.DataFrame, limit: int, seed: int) -> pd.DataFrame:
    return rows if len(rows) <= limit else rows.sample(n=limit, random_state=seed).reset_index(drop=True)


def _carry_forward(frame: pd.DataFrame) -> np.ndarray:
    return frame["fees_12m"].fillna(0.0).to_numpy(dtype=float)


def select_clv(validation_train: pd.DataFrame, validation: pd.DataFrame, config: TrainingConfig,
               validation_cutoff: pd.Timestamp | None = None, gap_months: int | None = None) -> ClvSelection:
    """Temporal validation inside the training cutoffs: each candidate depth is fitted on
    ``validation_train`` (cutoffs whose label windows end by the validation cutoff, or overlap it by
    ``12 - gap_months``), early-stopped on ``validation`` (the latest training cutoff) and scored there against
    carry-forward. The booster is kept only when its validation total is within the aggregate-error ceiling and
    it beats carry-forward on both Gini and Spearman; otherwise carry-forward is shipped. Nothing here reads the
    holdout cutoff."""
    train_rows, valid_rows = (_sample(model_rows("clv", rows), config.clv_selection_max_rows, config.seed)
                              for rows in (validation_train, validation))
    fit_cutoffs = sorted(pd.to_datetime(validation_train["cutoff_on"]).unique()) if len(validation_train) else []
    if train_rows.empty or valid_rows.empty or model_labels("clv", valid_rows).sum() <= 0:
        return ClvSelection(validation_cutoff, fit_cutoffs, gap_months, pd.DataFrame(),
                            f"xgboost_d{config.max_depth}", config.max_depth, config.n_estimators,
                            "no validation possible (the mart has too few cutoffs before the latest training cutoff): "
                            "the configured booster is shipped unselected")
    y = model_labels("clv", valid_rows)
    carry = value_metrics(y, _carry_forward(valid_rows))
    rows = {CARRY_FORWARD: {**{k: carry[k] for k in ("gini", "spearman", "rmse", "aggregate_error")},
                            "score": 0.0, "rounds": np.nan}}
    train_matrix = xgb.DMatrix(model_matrix(train_rows), label=model_labels("clv", train_rows),
                               feature_names=FEATURE_COLUMNS)
    valid_matrix = xgb.DMatrix(model_matrix(valid_rows), label=y, feature_names=FEATURE_COLUMNS)
    patience = max(10, config.n_estimators // 10)
    for depth in sorted({CLV_SHALLOW_DEPTH, config.max_depth}):
        params = config.xgb_params("clv") | {"max_depth": depth}
        booster = xgb.train(params, train_matrix, num_boost_round=config.n_estimators,
                            evals=[(valid_matrix, "validation")], early_stopping_rounds=patience, verbose_eval=False)
        rounds = booster.best_iteration + 1
        metrics = value_metrics(y, booster.predict(valid_matrix, iteration_range=(0, rounds)))
        rows[f"xgboost_d{depth}"] = {**{k: metrics[k] for k in ("gini", "spearman", "rmse", "aggregate_error")},
                                     "score": min(metrics["gini"] - carry["gini"],
                                                  metrics["spearman"] - carry["spearman"]),
                                     "rounds": float(rounds)}
    scores = pd.DataFrame.from_dict(rows, orient="index")
    boosters = scores.drop(index=CARRY_FORWARD)
    eligible = boosters.loc[boosters["aggregate_error"].abs() <= config.clv_abs_aggregate_error_ceiling]
    where = f"at {validation_cutoff.date()}" if validation_cutoff is not None else "at the validation cutoff"
    if eligible.empty:
        return ClvSelection(validation_cutoff, fit_cutoffs, gap_months, scores, CARRY_FORWARD, 0, 0,
                            f"carry-forward shipped: no booster's validation total {where} is within "
                            f"+/-{config.clv_abs_aggregate_error_ceiling:.0%}")
    best = eligible["score"].idxmax()  # first maximum: the shallower depth wins a tie
    depth, rounds = int(best.removeprefix("xgboost_d")), int(eligible.loc[best, "rounds"])
    if eligible.loc[best, "score"] <= 0:
        return ClvSelection(validation_cutoff, fit_cutoffs, gap_months, scores, CARRY_FORWARD, depth, rounds,
                            f"carry-forward shipped: the best booster ({best}) does not beat it on both Gini and "
                            f"Spearman {where} (worse margin {eligible.loc[best, 'score']:+.4f})")
    return ClvSelection(validation_cutoff, fit_cutoffs, gap_months, scores, best, depth, rounds,
                        f"{best} with {rounds} rounds: beats carry-forward {where} on Gini and Spearman by at least "
                        f"{eligible.loc[best, 'score']:+.4f}")


def carry_forward_booster() -> xgb.Booster:
    """Carry-forward as an XGBoost model: a linear booster whose only weight is 1 on ``fees_12m`` (missing
    counts as 0, like the baseline), so the fallback is registered, loaded by alias, scored and explained
    (``pred_contribs``) exactly like a tree model."""
    frame = pd.DataFrame(np.zeros((2, len(FEATURE_COLUMNS))), columns=FEATURE_COLUMNS)
    seed = xgb.train({"booster": "gblinear", "objective": "reg:squarederror", "base_score": 0.0, "nthread": 1},
                     xgb.DMatrix(frame, label=[0.0, 0.0], feature_names=FEATURE_COLUMNS), num_boost_round=1)
    model = json.loads(seed.save_raw("json"))
    weights = [0.0] * (len(FEATURE_COLUMNS) + 1)  # one per feature, then the bias
    weights[FEATURE_COLUMNS.index("fees_12m")] = 1.0
    model["learner"]["gradient_booster"]["model"]["weights"] = weights
    booster = xgb.Booster()
    booster.load_model(bytearray(json.dumps(model).encode()))
    return booster


def fit_clv(frame: pd.DataFrame, selection: ClvSelection, config: TrainingConfig) -> xgb.Booster:
    """The shipped CLV model: carry-forward when the validation chose it, else the chosen depth and rounds."""
    if selection.is_fallback:
        return carry_forward_booster()
    rows = model_rows("clv", frame)
    matrix = xgb.DMatrix(model_matrix(rows), label=model_labels("clv", rows), feature_names=FEATURE_COLUMNS)
    params = config.xgb_params("clv") | {"max_depth": selection.max_depth}
    return xgb.train(params, matrix, num_boost_round=selection.rounds)
