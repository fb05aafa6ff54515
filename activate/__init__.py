"""Activation: scores to Salesforce, breaks to ServiceNow, through a durable outbox in the warehouse.

Functions the DAGs call (each opens and closes the warehouse itself; all settings via settings()):

* ``plan_salesforce(run_id)`` / ``send_salesforce(run_id)``
* ``plan_servicenow(run_id)`` / ``send_servicenow(run_id)``
* ``outbox_status()``: counts, dead rows, recent sends

Reading back the incidents people resolved (labels for the anomaly model) is an extraction:
``ingest.servicenow.read_back``. The clients are in ``connectors/``.
"""

from activate.common import PushIncomplete
from activate.config import kill_switch_active
from activate.salesforce import plan_salesforce, send_salesforce
from activate.servicenow import plan_servicenow, send_servicenow


def outbox_status(cfg=None) -> dict:
    from activate import outbox

    con = outbox.connect(cfg, read_only=True)
    try:
        return outbox.status_summary(con)
    finally:
        con.close()


def trace(outbox_id: str, cfg=None) -> dict:
    """Audit: outbox row -> model version / MLflow run -> dbt invocation -> scoring run -> landing manifests."""
    from activate import outbox
    from northstar.warehouse import render, table_exists, warehouse_tables_in

    con = outbox.connect(cfg, read_only=True)
    try:
        if not outbox.table_exists(con, "activation", "outbox"):
            raise KeyError(f"no outbox row {outbox_id}: nothing has been planned yet")
        row = outbox.frame(con, "select * from activation.outbox where outbox_id = ?", [outbox_id]).to_dicts()
        if not row:
            raise KeyError(f"no outbox row {outbox_id}")
        result = {"outbox": row[0]}
        database = warehouse_tables_in(con, ["scoring_runs"], cfg) if row[0].get("scoring_run_id") else None
        if row[0].get("scoring_run_id") and table_exists(con, "scoring_runs", database=database):
            result["scoring_run"] = outbox.frame(
                con, render("select * from {scoring_runs} where scoring_run_id = ?", database),
                [row[0]["scoring_run_id"]]).to_dicts()
        return result
    finally:
        con.close()


__all__ = [
    "PushIncomplete", "kill_switch_active", "outbox_status", "plan_salesforce", "plan_servicenow",
    "send_salesforce", "send_servicenow", "trace",
]
