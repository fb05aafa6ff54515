"""Bad batches through the real DAGs: the right gate fails, nothing after it runs, nothing is written.

Runs after `test_demo_flow.py` in the same demo world (the session fixture), so there is a last
pushed scoring run to compare with. Each case is `airflow dags test` of the real DAG file:

- a silently broken CLV champion (a model that predicts nonsense scale) -> the nightly's scores gate
  fails on the shifted distribution, and Salesforce receives no write;
- a billing redelivery with negative market values -> the nightly's landing gate fails before dbt;
- a mostly garbled FIX drop copy plus a trade book rebooking existing trade ids -> the intraday
  landing gate fails, naming both, and ServiceNow receives no write.

The sandbox servers are restarted for each case, so their write counters start at zero.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pytest
import xgboost as xgb
from e2e_helpers import served, task_states, writes

import northstar.warehouse
from northstar.demo import DEFAULT_AS_OF, DemoError, run_dag

pytestmark = pytest.mark.e2e


def failed_run(cfg, dag_id: str, name: str, logical_date: str = DEFAULT_AS_OF) -> tuple[dict[str, str], str]:
    with pytest.raises(DemoError):
        run_dag(dag_id, logical_date, cfg, log_name=name)
    text = (cfg.paths.var / "demo" / f"{name}.log").read_text()
    return task_states(text), text


def test_a_silently_broken_model_is_stopped_by_the_scores_gate(demo_run):
    import mlflow

    from ml import registry
    from ml.client_value.features import load_features, model_matrix
    from ml.client_value.score import scoring_cutoff

    cfg = demo_run
    client = registry.configure(cfg)
    matrix = model_matrix(load_features([scoring_cutoff(cfg)], cfg))
    rng = np.random.default_rng(0)
    # Trained on noise of the wrong scale: it scores every household, just wrongly.
    booster = xgb.train({"objective": "reg:tweedie", "max_depth": 2, "nthread": 1},
                        xgb.DMatrix(matrix, label=rng.uniform(0, 5, len(matrix))), num_boost_round=5)
    registry.use_experiment(registry.CLV_MODEL, cfg)
    with mlflow.start_run(run_name="silently-broken"):
        info = mlflow.xgboost.log_model(booster, name="model")
    version = mlflow.register_model(info.model_uri, registry.CLV_MODEL).version
    registry.promote(registry.CLV_MODEL, version, cfg)
    for name in (registry.CLV_MODEL, registry.CHURN_MODEL):  # no retraining tonight: score with what is there
        client.set_registered_model_tag(name, "needs_retraining", "false")

    with served(cfg):
        # the next night (a Saturday: no scheduled retraining), compared with the demo's pushed run
        states, text = failed_run(cfg, "nightly_client_value", "gate_scores_nightly", logical_date="2026-10-31")
        assert writes(cfg)["salesforce"] == 0
    assert states["score_households"] == "success"
    assert states["scores_gate"] == "failed"
    assert "plan_salesforce_push" not in states and "send_salesforce_push" not in states
    assert "scores gate FAILED" in text and "CRITICAL scores." in text and "observed" in text

    registry.rollback(registry.CLV_MODEL, cfg=cfg)  # the fix an operator makes: move the alias back


def _billing_redelivery(drop: Path) -> Path:
    path = sorted((drop / "billing").glob("billing_*.csv"))[-1]
    rows = list(csv.DictReader(io.StringIO(path.read_text())))
    for row in rows[::3]:
        row["market_value"] = f"-{row['market_value'].lstrip('-')}"
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    path.write_text(out.getvalue())  # a corrected redelivery: same name, new content
    return path


def test_negative_aum_is_stopped_by_the_landing_gate(demo_run):
    cfg = demo_run
    _billing_redelivery(cfg.paths.drop)
    with served(cfg):
        states, text = failed_run(cfg, "nightly_client_value", "gate_landing_nightly")
        assert writes(cfg) == {"salesforce": 0, "servicenow": 0}
    assert states["land_billing_files"] == "success"
    assert states["landing_gate"] == "failed"
    assert "build_warehouse" not in states and "score_households" not in states
    assert "market_value_non_negative" in text and "sample:" in text


def _garble(drop: Path) -> None:
    fix = sorted((drop / "fix").glob("BRKA_*.fix"))[-1]
    lines = fix.read_bytes().splitlines(keepends=True)
    # 60 % of the messages cut short: the broker sent garbage, not a footnote
    garbled = [line[: len(line) // 2] + b"\n" if i % 5 < 3 else line for i, line in enumerate(lines)]
    fix.with_name(fix.stem + "_resend9.fix").write_bytes(b"".join(garbled))
    book = sorted((drop / "oms").glob("trade_book_*.csv"))[-1]
    head, *rows = book.read_text().splitlines(keepends=True)
    book.with_name(book.stem + "_rebooked.csv").write_text(head + "".join(rows[:25]))  # the same trade ids again


def test_a_garbled_drop_and_duplicate_trades_are_stopped_by_the_landing_gate(demo_run):
    cfg = demo_run
    with northstar.warehouse.connect(path=cfg.paths.warehouse, read_only=True) as con:
        breaks_before = con.execute("select count(*) from fct_trade_breaks").fetchone()[0]
    _garble(cfg.paths.drop)
    with served(cfg):
        states, text = failed_run(cfg, "intraday_trade_recon", "gate_landing_intraday")
        assert writes(cfg) == {"salesforce": 0, "servicenow": 0}
    assert states["land_broker_files"] == "success"
    assert states["landing_gate"] == "failed"
    assert not {"reconcile_trades", "score_breaks", "plan_incidents", "send_incidents"} & set(states)
    assert "quarantined_ratio" in text
    assert "trade_id_not_already_booked" in text
    with northstar.warehouse.connect(path=cfg.paths.warehouse, read_only=True) as con:
        assert con.execute("select count(*) from fct_trade_breaks").fetchone()[0] == breaks_before
