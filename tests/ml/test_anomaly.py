"""The break-anomaly model on a real small-world warehouse: features, labels, training, promotion, scoring.

One session-scoped world (seeded, served, extracted and landed by the real ingest stage; the trading marts
built by real dbt) and one trained champion; MLflow on a sqlite store in the session's tmp folder.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import northstar.warehouse

pytestmark = pytest.mark.integration

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "dbt"))


def _use_world_settings(patch: pytest.MonkeyPatch, root: Path, landing: Path) -> None:
    patch.setenv("NORTHSTAR_HOME", str(root / "var"))
    patch.setenv("NORTHSTAR_LANDING", str(landing))
    patch.setenv("NORTHSTAR_WAREHOUSE", str(root / "var" / "warehouse" / "northstar.duckdb"))
    patch.setenv("DBT_PROFILES_DIR", os.environ.get("DBT_PROFILES_DIR", ""))  # run_dbt sets it; undo restores
    patch.delenv("NORTHSTAR_TRUTH", raising=False)


@pytest.fixture(scope="session")
def anomaly_world(tmp_path_factory):
    """(settings, world, dbt invocation id). The environment is only changed while the world is built; every
    call below passes the settings object explicitly, so nothing leaks into other test modules."""
    world_landing = pytest.importorskip("world_landing")
    from northstar import settings as settings_module
    from northstar.dbt import run_dbt

    root = tmp_path_factory.mktemp("anomaly")
    world = world_landing.build_world_landing(root / "world", scale="small", seed=7)
    with pytest.MonkeyPatch.context() as patch:
        _use_world_settings(patch, root, world.landing)
        settings_module.reset_cache()
        cfg = settings_module.load_settings()
        cfg.paths.ensure()
        try:
            dbt = run_dbt("build", ["--select", "group:trading", "stg_salesforce__brokerage_accounts",
                                    "--exclude-resource-type", "test", "--exclude-resource-type", "unit_test"],
                          cfg=cfg)
        finally:
            northstar.warehouse.release_dbt_handles()
    settings_module.reset_cache()
    return cfg, world, dbt.invocation_id


@pytest.fixture(scope="session")
def champion(anomaly_world):
    from ml.anomaly.train import train_break_anomaly

    cfg, world, invocation = anomaly_world
    return train_break_anomaly(cfg, labels="truth", truth_dir=world.truth, dbt_invocation=invocation)


# ------------------------------------------------------------------------------------------- features

def test_features_cover_every_trade_and_are_reproducible(anomaly_world):
    from ml.anomaly.features import FEATURE_COLUMNS, compute_trade_features

    cfg, _, _ = anomaly_world
    first = compute_trade_features(cfg.paths.warehouse)
    again = compute_trade_features(cfg.paths.warehouse)
    assert first.snapshot_hash == again.snapshot_hash
    frame = first.frame
    assert frame["trade_id"].is_unique
    with northstar.warehouse.connect(path=cfg.paths.warehouse, read_only=True) as con:
        trade_ids = {r[0] for r in con.execute(
            "select trade_id from main.fct_internal_executions union select trade_id from main.fct_prime_broker_confirms"
        ).fetchall()}
        break_trades = {r[0] for r in con.execute(
            "select trade_id from main.fct_trade_breaks where trade_id is not null").fetchall()}
    assert set(frame["trade_id"]) == trade_ids
    assert break_trades <= set(frame["trade_id"])  # missing_internal breaks included (from the confirm)
    assert set(FEATURE_COLUMNS) <= set(frame.columns)
    assert np.isfinite(frame[list(FEATURE_COLUMNS)].fillna(0).to_numpy()).all()


def test_price_deviation_leaves_the_order_out_and_history_uses_only_earlier_days(anomaly_world):
    """Recompute the leave-one-out price deviation and the account history independently in pandas."""
    from ml.anomaly.features import compute_trade_features

    cfg, _, _ = anomaly_world
    frame = compute_trade_features(cfg.paths.warehouse).frame
    with northstar.warehouse.connect(path=cfg.paths.warehouse, read_only=True) as con:
        # the book, plus confirms with no book row (their own "order"): every priced trade is a peer
        book = con.execute(
            "select trade_id, coalesce(order_id, trade_id) as order_id, business_date, instrument_id, price "
            "from main.fct_internal_executions "
            "union all "
            "select trade_id, trade_id, business_date, instrument_id, price from main.fct_prime_broker_confirms "
            "where trade_id not in (select trade_id from main.fct_internal_executions)"
        ).df().drop_duplicates("trade_id")
    orders = book.groupby(["business_date", "instrument_id", "order_id"], as_index=False)["price"].first()
    orders["log_price"] = np.log(orders["price"])
    day = orders.groupby(["business_date", "instrument_id"])["log_price"]
    orders["n"] = day.transform("size")
    orders["expected"] = orders["log_price"] - (day.transform("sum") - orders["log_price"]) / (orders["n"] - 1)
    orders = orders[orders["n"] > 1]
    merged = book.merge(orders[["order_id", "expected"]], on="order_id").merge(
        frame[["trade_id", "price_dev_log_vs_peers"]], on="trade_id")
    assert len(merged) > 1000
    assert np.allclose(merged["expected"], merged["price_dev_log_vs_peers"], atol=1e-6)

    first_day = frame["business_date"].min()
    assert (frame.loc[frame["business_date"] == first_day, "account_history_trade_count"] == 0).all()
    assert frame.loc[frame["business_date"] == first_day, "size_dev_log_vs_account_history"].isna().all()
    # history on a later day counts exactly the account's trades on earlier days
    later = frame[frame["business_date"] == sorted(frame["business_date"].unique())[2]].head(50)
    for _, row in later.iterrows():
        earlier = ((frame["account_number"] == row["account_number"])
                   & (frame["business_date"] < row["business_date"])).sum()
        assert row["account_history_trade_count"] == earlier


# ------------------------------------------------------------------------------------------- labels

def test_ground_truth_labels_mark_anomalies_and_breaks_not_benign(anomaly_world):
    from ml.anomaly.features import compute_trade_features
    from ml.anomaly.labels import GroundTruthLabels

    cfg, world, _ = anomaly_world
    frame = compute_trade_features(cfg.paths.warehouse).frame
    labels = GroundTruthLabels(world.truth).trade_labels(frame)
    truth_anomalies = set(pd.read_parquet(world.truth / "anomalies.parquet")["trade_id"])
    breaks = pd.read_parquet(world.truth / "breaks.parquet")
    benign_only = set(breaks.loc[breaks["kind"] == "benign", "trade_id"].dropna()) - set(
        breaks.loc[breaks["kind"] == "break", "trade_id"].dropna())
    benign_only -= set(frame.loc[frame["order_id"].isin(
        breaks.loc[(breaks["kind"] == "break") & breaks["trade_id"].isna(), "order_id"]), "trade_id"])
    positive = set(frame.loc[labels == 1, "trade_id"])
    assert truth_anomalies <= positive
    assert positive.isdisjoint(benign_only - truth_anomalies)
    assert 0 < labels.mean() < 0.05


def test_servicenow_close_codes_become_labels_and_win_when_enough(anomaly_world, tmp_path):
    from ml.anomaly.features import compute_trade_features
    from ml.anomaly.labels import GroundTruthLabels, ServiceNowLabels, select_label_provider

    cfg, world, _ = anomaly_world
    with northstar.warehouse.connect(path=cfg.paths.warehouse, read_only=True) as con:
        allocation = con.execute(
            "select incident_correlation_id, trade_id from main.fct_trade_breaks where break_level = 'allocation' "
            "and trade_id is not null order by break_key limit 3").fetchall()
        order = con.execute(
            "select incident_correlation_id, order_id from main.fct_trade_breaks where break_level = 'order' "
            "order by break_key limit 1").fetchall()
    incidents = pa.table({
        "correlation_id": [allocation[0][0], allocation[1][0], allocation[2][0], order[0][0],
                           "northstar-trade-T-NOT-A-TRADE"],
        "close_code": ["Solution provided", "False positive", "Solution provided", "Workaround provided", "Duplicate"],
        "state": ["6", "7", "2", "7", "7"],  # the third is still in progress: no label
    })
    folder = tmp_path / "servicenow" / "incidents" / "run_id=r1"
    folder.mkdir(parents=True)
    pq.write_table(incidents, folder / "incidents.parquet")
    # a later read-back of the first incident, reopened (state 2): the latest update wins, no label any more
    reopened = pa.table({"correlation_id": [allocation[0][0]], "close_code": [None], "state": ["2"],
                         "sys_updated_on": ["2026-11-02 10:00:00"]})
    pq.write_table(reopened, folder / "reopened.parquet")
    first = pa.table({"correlation_id": [allocation[0][0]], "close_code": ["Solution provided"], "state": ["6"],
                      "sys_updated_on": ["2026-11-01 10:00:00"]})
    pq.write_table(first, folder / "z-earlier-update.parquet")  # sorts after by name, older by stamp
    provider = ServiceNowLabels(tmp_path / "servicenow" / "incidents")
    assert provider.label_count() == 3
    (folder / "reopened.parquet").unlink()
    assert provider.label_count() == 4

    frame = compute_trade_features(cfg.paths.warehouse).frame
    labels = provider.trade_labels(frame, cfg.paths.warehouse)
    by_trade = dict(zip(frame["trade_id"], labels, strict=True))
    assert by_trade[allocation[0][1]] == 1.0
    assert by_trade[allocation[1][1]] == 0.0
    assert by_trade[allocation[2][1]] == 0.0  # unresolved incident: unlabelled, counted as no problem
    order_trades = frame.loc[frame["order_id"] == order[0][1], "trade_id"]
    assert len(order_trades) > 0 and all(by_trade[t] == 1.0 for t in order_trades)
    assert ServiceNowLabels(folder.parent, unlabelled_as_negative=False).trade_labels(
        frame, cfg.paths.warehouse).isna().sum() == len(frame) - 2 - len(order_trades)

    chosen = select_label_provider("auto", truth_dir=world.truth, incidents_dir=folder.parent, min_servicenow_labels=4)
    assert isinstance(chosen, ServiceNowLabels)
    fallback = select_label_provider("auto", truth_dir=world.truth, incidents_dir=folder.parent,
                                     min_servicenow_labels=5)
    assert isinstance(fallback, GroundTruthLabels)
    with pytest.raises(LookupError):
        select_label_provider("auto", truth_dir=None, incidents_dir=folder.parent, min_servicenow_labels=5)
    with pytest.raises(ValueError):
        select_label_provider("truth", truth_dir=None)


# ------------------------------------------------------------------------------------------- training

def test_model_beats_isolation_forest_on_the_holdout(champion):
    assert champion.holdout_dates == ["2026-10-30"]
    assert champion.metrics["positives"] > 10
    assert champion.metrics["pr_auc"] > champion.baseline_metrics["pr_auc"]
    assert champion.metrics["unflagged_pr_auc"] > champion.baseline_metrics["unflagged_pr_auc"]
    assert champion.metrics["precision_at_50"] >= champion.baseline_metrics["precision_at_50"]
    print({k: round(v, 4) for k, v in champion.metrics.items()},
          {k: round(v, 4) for k, v in champion.baseline_metrics.items()})


def test_training_run_logs_lineage_baseline_model_card_and_plots(anomaly_world, champion):
    from ml import registry

    cfg, _, invocation = anomaly_world
    client = registry.configure(cfg)
    run = client.get_run(champion.mlflow_run_id)
    experiment = client.get_experiment(run.info.experiment_id)
    assert experiment.name == registry.BREAK_ANOMALY_MODEL
    assert run.data.tags["dbt_invocation_id"] == invocation and invocation
    assert run.data.tags["feature_snapshot_hash"] == champion.feature_snapshot_hash
    assert run.data.tags["label_source"] == "ground_truth"
    assert run.data.params["xgb_tree_method"] == "hist" and run.data.params["xgb_n_jobs"] == "2"
    for name in ("pr_auc", "precision_at_50", "precision_at_100", "baseline_pr_auc", "baseline_precision_at_100"):
        assert name in run.data.metrics
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"model_card.md", "plots", "promotion", "holdout_scores.parquet"} <= artifacts
    assert {a.path for a in client.list_artifacts(run.info.run_id, "plots")} == {
        "plots/feature_importance.png", "plots/pr_curve.png"}
    card = mlflow.artifacts.load_text(f"runs:/{run.info.run_id}/model_card.md")
    for section in ("## Intended use", "## Data", "## Metrics", "## Limitations"):
        assert section in card
    info = mlflow.models.get_model_info(f"models:/{registry.BREAK_ANOMALY_MODEL}/{champion.model_version}")
    assert info.signature is not None and info.saved_input_example_info is not None


def test_first_model_becomes_champion_and_a_worse_challenger_does_not_replace_it(anomaly_world, champion):
    from ml import registry
    from ml.anomaly.train import train_break_anomaly

    cfg, world, _ = anomaly_world
    assert champion.promoted, champion.decision
    champion_version = registry.alias_version(registry.BREAK_ANOMALY_MODEL, registry.CHAMPION, cfg).version
    worse = train_break_anomaly(cfg, labels="truth", truth_dir=world.truth,
                                params={"n_estimators": 2, "max_depth": 1, "learning_rate": 0.01})
    assert not worse.promoted, worse.decision
    assert worse.metrics["pr_auc"] < champion.metrics["pr_auc"]
    assert registry.alias_version(registry.BREAK_ANOMALY_MODEL, registry.CHAMPION, cfg).version == champion_version
    assert str(registry.alias_version(registry.BREAK_ANOMALY_MODEL, registry.CHALLENGER, cfg).version) == worse.model_version
    version = registry.configure(cfg).get_model_version(registry.BREAK_ANOMALY_MODEL, worse.model_version)
    assert version.tags["promotion_decision"] == "rejected"
    assert "pr_auc" in version.tags["promotion_reasons"]


# ------------------------------------------------------------------------------------------- scoring

def _count(cfg, sql: str, params=()) -> int:
    with northstar.warehouse.connect(path=cfg.paths.warehouse, read_only=True) as con:
        return con.execute(sql, list(params)).fetchone()[0]


def test_scoring_loads_champion_and_rescoring_the_same_run_does_not_duplicate(anomaly_world, champion):
    from ml import registry
    from ml.anomaly.score import REASON_MIN_SCORE, score_break_anomalies

    cfg, _, _ = anomaly_world
    champion_version = registry.alias_version(registry.BREAK_ANOMALY_MODEL, registry.CHAMPION, cfg)
    first = score_break_anomalies("anomaly-test-1", scored_at="2026-10-30 21:30:00", cfg=cfg)
    again = score_break_anomalies("anomaly-test-1", scored_at="2026-10-30 21:30:00", cfg=cfg)
    assert first.model_version == again.model_version == registry.version_label(
        registry.BREAK_ANOMALY_MODEL, champion_version.version)
    assert first.mlflow_run_id == champion_version.run_id

    breaks = _count(cfg, "select count(*) from main.fct_trade_breaks")
    assert first.breaks_scored == breaks > 0
    assert first.breaks_without_trade_score == 0
    run = ("anomaly-test-1",)
    assert _count(cfg, "select count(*) from scores.break_scores where scoring_run_id = ?", run) == breaks
    assert _count(cfg, "select count(distinct break_key) from scores.break_scores where scoring_run_id = ?", run) == breaks
    trades = _count(cfg, "select count(*) from scores.trade_anomaly_scores where scoring_run_id = ?", run)
    assert trades == first.trades_scored == _count(
        cfg, "select count(distinct trade_id) from scores.trade_anomaly_scores where scoring_run_id = ?", run)
    assert _count(cfg, "select count(*) from scores.scoring_runs where scoring_run_id = ? and kind = 'break'", run) == 1
    assert _count(cfg, "select count(*) from scores.break_scores where scoring_run_id = ? and notional_usd > 0", run) == breaks
    with northstar.warehouse.connect(path=cfg.paths.warehouse, read_only=True) as con:
        low, high, ranks, distinct_ranks, at = con.execute(
            "select min(anomaly_score), max(anomaly_score), max(anomaly_rank), count(distinct anomaly_rank), "
            "max(scored_at) from scores.break_scores where scoring_run_id = ?", list(run)).fetchone()
        # most break trades are real problems: the model ranks them high
        mean_break, mean_trade = con.execute(
            "select (select avg(anomaly_score) from scores.break_scores where scoring_run_id = $1), "
            "(select avg(anomaly_score) from scores.trade_anomaly_scores where scoring_run_id = $1)", list(run)).fetchone()
        flagged_without_reason, unflagged_with_reason, break_reason = con.execute(
            "select count(*) filter (where anomaly_score >= $2 and top_reasons is null), "
            "count(*) filter (where anomaly_score < $2 and top_reasons is not null), "
            "count(*) filter (where top_reasons like '%break%') "
            "from scores.trade_anomaly_scores where scoring_run_id = $1", [run[0], REASON_MIN_SCORE]).fetchone()
    assert flagged_without_reason == 0 and unflagged_with_reason == 0
    assert break_reason > 0  # break trades are explained by their break
    assert 0.0 <= low <= high <= 1.0
    assert ranks == distinct_ranks == breaks
    assert str(at) == "2026-10-30 21:30:00"
    assert mean_break > 0.5 > mean_trade


def test_scoring_one_business_date_and_the_cli(anomaly_world, champion, capsys, monkeypatch):
    from ml.anomaly import cli
    from northstar import settings as settings_module

    cfg, world, _ = anomaly_world
    _use_world_settings(monkeypatch, cfg.paths.var.parent, world.landing)  # the CLI reads settings()
    settings_module.reset_cache()
    assert settings_module.settings().paths.warehouse == cfg.paths.warehouse
    parser = argparse.ArgumentParser()
    cli.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["anomaly-score", "--run-id", "anomaly-cli-1", "--business-date", "2026-10-29",
                              "--scored-at", "2026-10-29T21:30:00"])
    assert args.handler(args) == 0
    assert "anomaly-cli-1" in capsys.readouterr().out
    expected = _count(cfg, "select count(*) from main.fct_trade_breaks where business_date = date '2026-10-29'")
    got = _count(cfg, "select count(*) from scores.break_scores where scoring_run_id = 'anomaly-cli-1'")
    assert got == expected > 0
    assert _count(cfg, "select count(distinct business_date) from scores.trade_anomaly_scores "
                       "where scoring_run_id = 'anomaly-cli-1'") == 1
    settings_module.reset_cache()


def test_a_run_id_already_used_by_a_household_run_is_refused(anomaly_world, champion):
    from ml.anomaly.score import score_break_anomalies

    cfg, _, _ = anomaly_world
    score_break_anomalies("anomaly-shared-id", scored_at="2026-10-30 21:30:00", cfg=cfg,
                          business_dates=["2026-10-30"])
    with northstar.warehouse.connect(path=cfg.paths.warehouse) as con:
        con.execute("update scores.scoring_runs set kind = 'household' where scoring_run_id = 'anomaly-shared-id'")
    with pytest.raises(ValueError, match="already a 'household' run"):
        score_break_anomalies("anomaly-shared-id", scored_at="2026-10-30 21:30:00", cfg=cfg,
                              business_dates=["2026-10-30"])
