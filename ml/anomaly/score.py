"""Batch scoring with ``models:/northstar-break-anomaly@champion``, written back into the warehouse.

:func:`score_break_anomalies` (``python -m ml anomaly-score --run-id X``, and the DAG task):

1. loads the champion by alias (:func:`ml.registry.load_model`), never a version number;
2. computes the trade features for the requested business dates (default: every date in the warehouse);
3. writes, in one transaction, ``scores.trade_anomaly_scores`` (one row per scoring run x trade),
   ``scores.break_scores`` (one row per scoring run x break_key: the columns ml/score_tables.py fixes, plus
   ``notional_usd``, the money at stake that ``activate.priority`` takes as ``amount``) and the run's
   row in ``scores.scoring_runs`` (kind ``break``). A re-run with the same scoring run id replaces that run's
   rows (delete + insert), so retries never duplicate.

A break takes the score of its trade (allocation-level breaks, including a confirm with no book row) or the
highest score among its order's trades (order-level breaks). A break whose trade could not be scored (no
feature row) gets 1.0: unknown is treated as most suspicious so it is never buried. ``scored_at`` is the run's
logical time: the caller passes it (the DAG: its data interval end); without it, the latest
``last_seen_at`` in the break register (the reconciliation's own observation time), never the wall clock.

This module never reads labels or the sandbox's truth folder.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime

import numpy as np
import pandas as pd

import northstar.warehouse
from ml import score_tables
from ml.anomaly.features import FEATURE_COLUMNS, FEATURE_LABELS, compute_trade_features
from northstar.pii import mask_account_number
from northstar.settings import Settings, settings

log = logging.getLogger(__name__)

UNSCORED_BREAK_SCORE = 1.0
REASON_MIN_SCORE = 0.1  # trades scoring at least this get their top reasons
REASON_CHUNK = 200_000
KIND = "break"

# what a break scoring run writes (ml/score_tables.py)
TABLES = (score_tables.TRADE_ANOMALY_SCORES, score_tables.BREAK_SCORES, score_tables.SCORING_RUNS)


@dataclass
class ScoreResult:
    scoring_run_id: str
    scored_at: str
    model_version: str
    mlflow_run_id: str | None
    trades_scored: int
    breaks_scored: int
    breaks_without_trade_score: int
    feature_snapshot_hash: str
    seconds: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


def _default_scored_at(warehouse) -> datetime:
    with northstar.warehouse.open_warehouse(read_only=True, path=warehouse) as engine:
        value = engine.scalar("select max(last_seen_at) from {fct_trade_breaks}")
    if value is None:
        raise ValueError("no scored_at given and the break register is empty: pass scored_at")
    return value


def rank_descending(scores: pd.Series, keys: pd.Series) -> np.ndarray:
    """1 = highest score; ties broken by key so the ranking is deterministic."""
    order = pd.DataFrame({"score": scores.to_numpy(), "key": keys.to_numpy()}).sort_values(
        ["score", "key"], ascending=[False, True], kind="mergesort")
    ranks = np.empty(len(order), dtype=np.int32)
    ranks[order.index.to_numpy()] = np.arange(1, len(order) + 1, dtype=np.int32)
    return ranks


def model_input(model, frame: pd.DataFrame) -> pd.DataFrame:
    """The frame's columns in the order the model was trained on (a champion trained before a feature was added
    still scores); a feature the model needs and the frame lacks is an error worth stopping for."""
    names = model.get_booster().feature_names or list(FEATURE_COLUMNS)
    missing = [n for n in names if n not in frame.columns]
    if missing:
        raise ValueError(f"the champion needs features this code no longer computes: {missing}; retrain")
    return frame.loc[:, names].astype("float64")


def top_reasons(model, frame: pd.DataFrame, probabilities: np.ndarray, count: int = 3) -> list[str | None]:
    """The ``count`` features that pushed each flagged trade's score up most (XGBoost SHAP contributions),
    in words, joined by '; '; None for trades scoring below ``REASON_MIN_SCORE``."""
    import xgboost as xgb

    reasons: list[str | None] = [None] * len(frame)
    flagged = np.flatnonzero(probabilities >= REASON_MIN_SCORE)
    booster = model.get_booster()
    names = [FEATURE_LABELS.get(c, c.replace("_", " ")) for c in booster.feature_names or FEATURE_COLUMNS]
    for start in range(0, len(flagged), REASON_CHUNK):
        rows = flagged[start:start + REASON_CHUNK]
        matrix = model_input(model, frame.iloc[rows])
        contributions = booster.predict(xgb.DMatrix(matrix), pred_contribs=True)[:, :-1]
        order = np.argsort(-contributions, axis=1)
        for i, row in enumerate(rows):
            picked: list[str] = []
            strongest = contributions[i, order[i][0]]
            for j in order[i]:
                # only reasons that carry real weight: positive and at least a quarter of the strongest
                if contributions[i, j] <= max(0.0, 0.25 * strongest) and picked or len(picked) == count:
                    break
                if contributions[i, j] <= 0:
                    break
                if names[j] not in picked:
                    picked.append(names[j])
            reasons[row] = "; ".join(picked) or None
    return reasons


def break_scores_from_trades(breaks: pd.DataFrame, trade_scores: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """break_key -> anomaly_score from the trade scores (see the module doc), and how many had no trade score."""
    is_order = (breaks["break_level"].eq("order") | breaks["trade_id"].isna()).to_numpy()
    trades_by_id = trade_scores.set_index("trade_id")
    orders = trade_scores.dropna(subset=["order_id"]).groupby("order_id")

    def pick(trade_level: pd.Series, order_level: pd.Series) -> pd.Series:
        chosen = pd.Series(np.where(is_order, order_level, trade_level), index=breaks.index, dtype="float64")
        return chosen.fillna(trade_level).fillna(order_level)

    score = pick(breaks["trade_id"].map(trades_by_id["anomaly_score"]),
                 breaks["order_id"].map(orders["anomaly_score"].max()))
    missing = int(score.isna().sum())
    frame = pd.DataFrame({"break_key": breaks["break_key"], "anomaly_score": score.fillna(UNSCORED_BREAK_SCORE)})
    if "notional_usd" in trade_scores:
        # the money at stake: the trade's notional, or the whole order's for an order-level break
        frame["notional_usd"] = pick(breaks["trade_id"].map(trades_by_id["notional_usd"]),
                                     breaks["order_id"].map(orders["notional_usd"].sum()))
    return frame, missing


def score_break_anomalies(
    scoring_run_id: str,
    scored_at: datetime | str | None = None,
    cfg: Settings | None = None,
    business_dates: list | None = None,
    dbt_invocation: str | None = None,
    alias: str = "champion",
) -> ScoreResult:
    """Score every trade and break of ``business_dates`` (default all) with ``@champion``; write the scores."""
    from ml import registry
    from ml.anomaly.lineage import dbt_invocation_id

    cfg = cfg or settings()
    if business_dates is not None and not list(business_dates):
        # an empty list once meant "every date" here and re-scored (and appended) the whole book
        raise ValueError("no business dates to score: pass the dates, or None for every date")
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    model, version = registry.load_model(registry.BREAK_ANOMALY_MODEL, alias, flavor="xgboost", cfg=cfg)
    model_version = registry.version_label(registry.BREAK_ANOMALY_MODEL, version.version)
    seconds["load_model"] = time.perf_counter() - started

    started = time.perf_counter()
    snapshot = compute_trade_features(cfg.paths.warehouse, business_dates)
    seconds["features"] = time.perf_counter() - started
    scored_at = pd.Timestamp(scored_at).to_pydatetime() if scored_at is not None else _default_scored_at(
        cfg.paths.warehouse)
    if getattr(scored_at, "tzinfo", None) is not None:
        scored_at = pd.Timestamp(scored_at).tz_convert("UTC").tz_localize(None).to_pydatetime()

    started = time.perf_counter()
    frame = snapshot.frame
    probabilities = model.predict_proba(model_input(model, frame))[:, 1] if len(frame) else np.array([])
    trades = pd.DataFrame({
        "scoring_run_id": scoring_run_id,
        "scored_at": scored_at,
        "business_date": frame["business_date"],
        "trade_id": frame["trade_id"],
        "order_id": frame["order_id"],
        # a score table is read beyond trade ops: the account only in masked form (northstar.pii)
        "account_number_masked": frame["account_number"].map(mask_account_number),
        "instrument_id": frame["instrument_id"],
        "asset_class": frame["asset_class"],
        "notional_usd": frame["notional_usd"],
        "anomaly_score": probabilities.astype("float64"),
    })
    trades["top_reasons"] = top_reasons(model, frame, probabilities)
    trades["anomaly_rank"] = rank_descending(trades["anomaly_score"], trades["trade_id"])
    trades["model_version"] = model_version
    trades["mlflow_run_id"] = version.run_id
    trades["feature_snapshot_hash"] = snapshot.snapshot_hash
    seconds["predict"] = time.perf_counter() - started

    with northstar.warehouse.open_warehouse(read_only=True, cfg=cfg) as engine:
        breaks = engine.frame("select break_key, business_date, break_level, trade_id, order_id from {fct_trade_breaks}")
    if business_dates:
        wanted = {pd.Timestamp(d).date() for d in business_dates}
        breaks = breaks[pd.to_datetime(breaks["business_date"]).dt.date.isin(wanted)].reset_index(drop=True)
    break_scores, missing = break_scores_from_trades(breaks, trades)
    if missing:
        log.warning("%d breaks had no scored trade; scored %.1f", missing, UNSCORED_BREAK_SCORE)
    break_scores.insert(0, "scored_at", scored_at)
    break_scores.insert(0, "scoring_run_id", scoring_run_id)
    break_scores["anomaly_rank"] = rank_descending(break_scores["anomaly_score"], break_scores["break_key"])
    break_scores["model_version"] = model_version
    break_scores["mlflow_run_id"] = version.run_id
    dbt_invocation = dbt_invocation or dbt_invocation_id(cfg)
    run_row = pd.DataFrame([{
        "scoring_run_id": scoring_run_id, "kind": KIND, "scored_at": scored_at,
        "as_of_date": max(frame["business_date"]) if len(frame) else None, "rows": len(break_scores),
        "model_versions": model_version, "mlflow_run_ids": version.run_id, "dbt_invocation_id": dbt_invocation,
        "feature_snapshot_hash": snapshot.snapshot_hash,
    }])

    started = time.perf_counter()
    write_scores(cfg.paths.warehouse, scoring_run_id, trades, break_scores, run_row)
    seconds["write"] = time.perf_counter() - started
    log.info("scoring run %s: %d trades, %d breaks with %s", scoring_run_id, len(trades), len(break_scores),
             model_version)
    return ScoreResult(scoring_run_id, str(scored_at), model_version, version.run_id, len(trades),
                       len(break_scores), missing, snapshot.snapshot_hash, seconds)


def write_scores(warehouse, scoring_run_id: str, trades: pd.DataFrame, break_scores: pd.DataFrame,
                 run_row: pd.DataFrame) -> None:
    """Replace the scoring run's rows in the three tables (on DuckDB atomically; ``northstar.warehouse``)."""
    with northstar.warehouse.open_warehouse(read_only=False, path=warehouse) as engine:
        engine.ensure(*TABLES)
        other_kind = engine.scalar("select kind from {scoring_runs} where scoring_run_id = ? and kind <> ?",
                                   [scoring_run_id, KIND])
        if other_kind is not None:
            raise ValueError(f"scoring run id {scoring_run_id!r} is already a {other_kind!r} run in "
                             "scores.scoring_runs (one id per run across kinds): pass another run id")
        run = {"scoring_run_id": scoring_run_id}
        engine.replace(
            northstar.warehouse.Replacement(score_tables.TRADE_ANOMALY_SCORES, trades, run),
            northstar.warehouse.Replacement(score_tables.BREAK_SCORES, break_scores, run),
            northstar.warehouse.Replacement(score_tables.SCORING_RUNS, run_row, {**run, "kind": KIND}),
        )
