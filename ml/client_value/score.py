"""Batch scoring of households with the champion models, into the warehouse schema ``scores``.

``score(run_id)`` loads ``models:/northstar-clv@champion`` and ``models:/northstar-churn@champion`` (never a
version number), scores every household at the mart's latest billed cutoff, computes CLV, value
percentile, segment and three advisor-readable drivers, checks drift (PSI per feature and on each score
against the champion's training population, stored with its run as ``drift_reference.json``) and writes:

* ``scores.household_scores`` — one row per (scoring_run_id, household_id) (columns in ``DDL`` below; dbt reads
  it as the source ``scores``);
* ``scores.scoring_runs`` — one row per run (kind 'household'), with the segment transitions since the
  previous household run as JSON;
* ``scores.model_drift`` — one row per (scoring_run_id, model, kind, name): psi and status.

Writes are idempotent per ``scoring_run_id`` (its rows are replaced whole: on DuckDB deleted and rewritten
in one transaction, on Spark the run's partition of each table overwritten; ``northstar.warehouse``).
``household_scores`` has no primary-key index (it made writing 1,000,000 rows several times slower);
uniqueness of (scoring_run_id, household_id) is guaranteed by the delete + insert of whole runs and
tested by dbt on ``fct_household_scores``.
Households not active at the cutoff (no open billed account) get attrition probability 1 (they already
left); the churn model is only trained on, and meant for, active households.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import mlflow
import numpy as np
import pandas as pd
import xgboost as xgb

import northstar.warehouse
from ml import drift, registry, score_tables
from ml.client_value import segments
from ml.client_value.features import (
    FEATURE_COLUMNS,
    available_cutoffs,
    latest_dbt_invocation_id,
    load_features,
    model_matrix,
    snapshot_hash,
)
from northstar.settings import Settings, settings

log = logging.getLogger(__name__)

EXACT_CONTRIBUTIONS_MAX_ROWS = 50_000  # above this, Saabas (approx_contribs): exact TreeSHAP is ~1 ms a row
CHUNK_ROWS = 250_000

# what a household scoring run writes (ml/score_tables.py); break_scores too, created empty so the
# scores_publish selector builds before the first break scoring run
TABLES = (score_tables.SCORING_RUNS, score_tables.BREAK_SCORES, score_tables.HOUSEHOLD_SCORES,
          score_tables.MODEL_DRIFT)

HOUSEHOLD_COLUMNS = ["scoring_run_id", "as_of_date", "scored_at", "household_id", "predicted_revenue_12m", "clv",
                     "value_percentile", "attrition_probability", "segment", "top_drivers", "clv_model_version",
                     "churn_model_version", "clv_mlflow_run_id", "churn_mlflow_run_id", "dbt_invocation_id",
                     "feature_snapshot_hash"]


@dataclass
class ScoringResult:
    scoring_run_id: str
    as_of_date: str
    rows: int
    model_versions: dict[str, str]
    segment_counts: dict[str, int]
    drift: pd.DataFrame
    needs_retraining: dict[str, bool]
    transitions: pd.DataFrame
    seconds: dict[str, float] = field(default_factory=dict)

    def summary(self) -> dict:
        return {"scoring_run_id": self.scoring_run_id, "as_of_date": self.as_of_date, "rows": self.rows,
                "model_versions": self.model_versions, "segments": self.segment_counts,
                "needs_retraining": self.needs_retraining,
                "drift_worst": self.drift.head(5).to_dict(orient="records"), "seconds": self.seconds}


def ensure_scores_schema(cfg: Settings | None = None) -> None:
    """Create schema ``scores`` and its tables if missing (idempotent; every writer may call it)."""
    with northstar.warehouse.open_warehouse(read_only=False, cfg=cfg) as warehouse:
        warehouse.ensure(*TABLES)


def scoring_cutoff(cfg: Settings | None = None) -> pd.Timestamp:
    cutoffs = available_cutoffs(cfg)
    billed = cutoffs.loc[cutoffs["has_billing"].astype(bool), "cutoff_on"]
    if billed.empty:
        raise ValueError("the feature mart has no cutoff with billing data")
    return pd.Timestamp(billed.max())


def _contributions(booster: xgb.Booster, matrix: pd.DataFrame, exact: bool) -> np.ndarray:
    names = booster.feature_names
    parts = []
    for start in range(0, len(matrix), CHUNK_ROWS):
        chunk = xgb.DMatrix(matrix.iloc[start:start + CHUNK_ROWS][names], feature_names=names)
        parts.append(booster.predict(chunk, pred_contribs=True, approx_contribs=not exact))
    return np.vstack(parts) if parts else np.empty((0, len(names) + 1))


LOG_LINK_OBJECTIVES = {"reg:tweedie", "count:poisson", "reg:gamma"}


def _objective(booster: xgb.Booster) -> str:
    return json.loads(booster.save_config())["learner"]["objective"]["name"]


def household_scores(frame: pd.DataFrame, clv_booster: xgb.Booster, churn_booster: xgb.Booster,
                     policy: segments.ValuePolicy = segments.DEFAULT_POLICY,
                     exact_contributions: bool | None = None) -> pd.DataFrame:
    """Scores, segments and drivers for mart rows (pure: no I/O; the scoring tests call it directly)."""
    matrix = model_matrix(frame)
    exact = exact_contributions if exact_contributions is not None else len(frame) <= EXACT_CONTRIBUTIONS_MAX_ROWS
    names_clv, names_churn = clv_booster.feature_names, churn_booster.feature_names
    clv_contribs = _contributions(clv_booster, matrix, exact)
    if _objective(clv_booster) in LOG_LINK_OBJECTIVES:
        # Contributions sum to the margin (bias column included), so the prediction is exp(sum): one pass
        # over the trees instead of two (a third of the scoring time at 1,000,000 households).
        revenue = np.exp(clv_contribs.sum(axis=1, dtype=np.float64))
    else:
        revenue = clv_booster.predict(xgb.DMatrix(matrix[names_clv], feature_names=names_clv))
    risk = churn_booster.predict(xgb.DMatrix(matrix[names_churn], feature_names=names_churn))
    active = frame["is_active_at_cutoff"].fillna(False).astype(bool).to_numpy()
    risk = np.where(active, risk, 1.0)
    value = segments.clv(revenue, risk, policy)
    percentile = segments.value_percentile(value)
    segment = segments.assign_segments(percentile, risk, policy)

    drivers = np.array(segments.driver_texts(clv_contribs, matrix[names_clv], "raises value", "lowers value"),
                       dtype=object)
    at_risk = segment == segments.AT_RISK
    if at_risk.any():
        churn_contribs = _contributions(churn_booster, matrix.loc[at_risk], exact)
        drivers[at_risk] = segments.driver_texts(churn_contribs, matrix.loc[at_risk, names_churn],
                                                 "raises risk", "lowers risk")
    inactive = ~active
    drivers[inactive] = "no open accounts at the cutoff; " + drivers[inactive]
    return pd.DataFrame({"household_id": frame["household_id"].to_numpy(), "predicted_revenue_12m": revenue,
                         "clv": value, "value_percentile": percentile, "attrition_probability": risk,
                         "segment": segment, "top_drivers": drivers})


def _drift(version, frame: pd.DataFrame, scores: np.ndarray, model_name: str) -> pd.DataFrame:
    try:
        profile = mlflow.artifacts.load_dict(f"runs:/{version.run_id}/drift_reference.json")
    except Exception as error:  # noqa: BLE001 - a champion from before drift references existed
        log.warning("%s: no drift reference on run %s (%s)", model_name, version.run_id, error)
        return pd.DataFrame(columns=["model", "kind", "name", "psi", "status"])
    report = drift.drift_report(profile, model_matrix(frame)[FEATURE_COLUMNS], {"score": scores})
    report.insert(0, "model", model_name)
    return report


def _previous_run(warehouse, kind: str, before: str) -> str | None:
    return warehouse.scalar("""
        select scoring_run_id from {scoring_runs}
        where kind = ? and scoring_run_id <> ?
        order by scored_at desc, scoring_run_id desc limit 1
    """, [kind, before])


def score(run_id: str, scored_at: datetime | None = None, dbt_invocation_id: str | None = None,
          policy: segments.ValuePolicy = segments.DEFAULT_POLICY, exact_contributions: bool | None = None,
          cfg: Settings | None = None) -> ScoringResult:
    """Score every household at the latest billed cutoff with the two champions and write ``scores.*``.

    ``scored_at`` is the run's logical time (the DAG passes its logical date); default: midnight after
    the cutoff, so a re-run with the same ``run_id`` writes identical rows.
    """
    cfg = cfg or settings()
    timings: dict[str, float] = {}
    started = time.perf_counter()
    clv_booster, clv_version = registry.load_model(registry.CLV_MODEL, flavor="xgboost", cfg=cfg)
    churn_booster, churn_version = registry.load_model(registry.CHURN_MODEL, flavor="xgboost", cfg=cfg)
    timings["load_models"] = time.perf_counter() - started

    t = time.perf_counter()
    cutoff = scoring_cutoff(cfg)
    frame = load_features([cutoff], cfg)
    feature_hash = snapshot_hash(frame)
    timings["load_features"] = time.perf_counter() - t

    t = time.perf_counter()
    scored = household_scores(frame, clv_booster, churn_booster, policy, exact_contributions)
    timings["predict_and_explain"] = time.perf_counter() - t

    t = time.perf_counter()
    active = frame["is_active_at_cutoff"].fillna(False).astype(bool).to_numpy()
    drift_table = pd.concat([
        _drift(clv_version, frame, scored["predicted_revenue_12m"].to_numpy(), registry.CLV_MODEL),
        _drift(churn_version, frame.loc[active], scored.loc[active, "attrition_probability"].to_numpy(),
               registry.CHURN_MODEL),
    ], ignore_index=True)
    needs_retraining = {name: bool((drift_table.loc[drift_table["model"] == name, "status"] == "retrain").any())
                        for name in (registry.CLV_MODEL, registry.CHURN_MODEL)}
    client = registry.configure(cfg)
    for name, flag in needs_retraining.items():
        client.set_registered_model_tag(name, "needs_retraining", str(flag).lower())
        if flag:
            worst = drift_table.loc[(drift_table["model"] == name) & (drift_table["status"] == "retrain"), "name"]
            log.warning("%s: drift beyond PSI %.2f on %s — marked for retraining", name, drift.RETRAIN_PSI,
                        ", ".join(worst))
            client.set_registered_model_tag(name, "needs_retraining_reason",
                                            f"run {run_id}: PSI >= {drift.RETRAIN_PSI} on {', '.join(worst)}"[:4900])
    timings["drift"] = time.perf_counter() - t

    t = time.perf_counter()
    scored_at = scored_at or (cutoff + timedelta(days=1)).to_pydatetime()
    invocation = dbt_invocation_id or latest_dbt_invocation_id(cfg)
    clv_label = registry.version_label(registry.CLV_MODEL, clv_version.version)
    churn_label = registry.version_label(registry.CHURN_MODEL, churn_version.version)
    scored.insert(0, "scoring_run_id", run_id)
    scored.insert(1, "as_of_date", cutoff.date())
    scored.insert(2, "scored_at", pd.Timestamp(scored_at).tz_localize(None) if pd.Timestamp(scored_at).tzinfo is None
                  else pd.Timestamp(scored_at).tz_convert("UTC").tz_localize(None))
    scored["clv_model_version"] = clv_label
    scored["churn_model_version"] = churn_label
    scored["clv_mlflow_run_id"] = clv_version.run_id
    scored["churn_mlflow_run_id"] = churn_version.run_id
    scored["dbt_invocation_id"] = invocation
    scored["feature_snapshot_hash"] = feature_hash
    scored = scored[HOUSEHOLD_COLUMNS]
    drift_rows = drift_table.assign(scoring_run_id=run_id)[["scoring_run_id", "model", "kind", "name", "psi",
                                                            "status"]]

    with northstar.warehouse.open_warehouse(read_only=False, cfg=cfg) as warehouse:
        warehouse.ensure(*TABLES)
        previous_id = _previous_run(warehouse, "household", run_id)
        previous = (warehouse.frame("select household_id, segment from {household_scores} where scoring_run_id = ?",
                                    [previous_id]) if previous_id else pd.DataFrame(columns=["household_id",
                                                                                              "segment"]))
        moves = segments.transitions(previous, scored)
        changed = int(moves.loc[moves["previous_segment"] != moves["segment"], "households"].sum()) if previous_id else 0
        run_row = pd.DataFrame([{
            "scoring_run_id": run_id, "kind": "household", "scored_at": scored["scored_at"].iloc[0] if len(scored)
            else pd.Timestamp(scored_at), "as_of_date": cutoff.date(), "rows": len(scored),
            "model_versions": json.dumps({"clv": clv_label, "churn": churn_label}),
            "mlflow_run_ids": json.dumps({"clv": clv_version.run_id, "churn": churn_version.run_id}),
            "dbt_invocation_id": invocation, "feature_snapshot_hash": feature_hash,
            "needs_retraining": any(needs_retraining.values()),
            "segment_transitions": json.dumps({"previous_scoring_run_id": previous_id, "changed": changed,
                                               "moves": moves.to_dict(orient="records")}),
        }])
        # the run's rows replaced whole; scoring_run_id is unique across kinds: a break run that shares the id
        # is never replaced (the write fails loudly). The DAG passes distinct ids, e.g. household-<run_id>.
        warehouse.replace(
            northstar.warehouse.Replacement(score_tables.HOUSEHOLD_SCORES, scored, {"scoring_run_id": run_id}),
            northstar.warehouse.Replacement(score_tables.MODEL_DRIFT, drift_rows, {"scoring_run_id": run_id}),
            northstar.warehouse.Replacement(score_tables.SCORING_RUNS, run_row,
                                            {"scoring_run_id": run_id, "kind": "household"}),
        )
    timings["write"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - started
    counts = scored["segment"].value_counts().to_dict()
    return ScoringResult(run_id, str(cutoff.date()), len(scored), {"clv": clv_label, "churn": churn_label},
                         {k: int(v) for k, v in counts.items()}, drift_table, needs_retraining, moves, timings)


def needs_retraining(cfg: Settings | None = None) -> dict[str, bool]:
    """Whether the last scoring run marked each model for retraining (the DAG's train-or-skip branch)."""
    client = registry.configure(cfg)
    out = {}
    for name in (registry.CLV_MODEL, registry.CHURN_MODEL):
        try:
            tags = client.get_registered_model(name).tags or {}
        except Exception:  # noqa: BLE001 - not registered yet: it needs training
            out[name] = True
            continue
        out[name] = tags.get("needs_retraining", "false") == "true" or registry.alias_version(
            name, registry.CHAMPION, cfg) is None
    return out
