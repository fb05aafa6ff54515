"""ServiceNow activation: one incident per trade break, kept in step with the break register.

``plan_servicenow`` compares ``main.fct_trade_breaks`` (left-joined to ``main.fct_break_scores``
when it exists) with what ServiceNow was last told (``activation.pushed_state``) and enqueues
create / update / resolve / reopen rows. ``send_servicenow`` drains them. Every write is preceded
by a lookup by ``correlation_id`` (batched, ``lookup_chunk`` ids per query) and decided against the
incident as it is on the server, so a crash between a write and its acknowledgement, or any number
of reruns, never makes a second incident: the rerun finds the one it made and adopts it.
The HTTP client (auth, TLS, retries) is :mod:`connectors.servicenow`; reading back the incidents people
resolved is an extraction and lives in :mod:`ingest.servicenow`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

import duckdb
import polars as pl

from activate import outbox
from activate.common import (
    AfterWrite,
    PlanReport,
    PushIncomplete,
    SendReport,
    left_work_undone,
    new_send_run_id,
)
from activate.config import SendLimits
from activate.priority import assignment_group, impact_urgency
from connectors.retry import RetryPolicy
from connectors.servicenow import (
    AUTO_RESOLVE_MARKER,
    CANCELED,
    CLOSED,
    CORRELATION_DISPLAY,
    OPEN_STATES,
    RESOLVED,
    ServiceNowClient,
    ServiceNowError,
    Transient,
)
from northstar.pii import mask_account_number
from northstar.settings import Endpoint, Settings, kill_switch, servicenow_endpoint, settings

log = logging.getLogger(__name__)

TARGET = "servicenow"
OBJECT = "incident"
AUTO_CLOSE_CODE = "Resolved by change"
COMPARED_FIELDS = ("short_description", "description", "impact", "urgency", "assignment_group")


# --- plan --------------------------------------------------------------------------------------


def _fmt(value) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, float):
        return f"{value:,.6g}"
    return str(value)


def incident_fields(b: dict, show_account_numbers: bool = False) -> dict:
    """What a person needs to act on the break: both sides, the difference, type, age, score.

    The brokerage account is named in masked form (``BA****0001``) unless the installation allows
    full account numbers in ServiceNow (``NORTHSTAR_INCIDENT_ACCOUNT_NUMBERS=full``): an incident
    queue is read more widely than the ops-only marts.
    """
    impact, urgency = impact_urgency(b)
    account = b.get("account_number") if show_account_numbers else mask_account_number(b.get("account_number"))
    internal_value, broker_value = b.get("internal_value"), b.get("broker_value")
    if b["break_type"] == "account" and not show_account_numbers:  # the compared values are account numbers
        internal_value, broker_value = mask_account_number(internal_value), mask_account_number(broker_value)
    ref = b.get("trade_id") or b.get("order_id")
    score = b.get("anomaly_score")
    scored = (f"{score:.3f} (rank {b.get('anomaly_rank')}, model {b.get('model_version')})"
              if score is not None and score == score else "not scored (priority from break type and amount)")
    short = (f"Trade break {b['break_type']}: {b.get('asset_class') or ''} {b.get('instrument_id') or ''} "
             f"{ref} vs {b.get('broker')} on {b.get('business_date')}")
    description = "\n".join([
        f"Reconciliation break '{b['break_type']}' ({b.get('break_level')} level) found by Northstar.",
        f"Business date: {b.get('business_date')}   Age: {b.get('age_business_days')} business day(s)",
        f"Order: {b.get('order_id') or '-'}   Trade: {b.get('trade_id') or '-'}   Account: {account or '-'}",
        f"Instrument: {b.get('instrument_id') or '-'} ({b.get('asset_class') or '-'})   Counterparty: {b.get('broker')}",
        f"Internal book value: {_fmt(internal_value)}",
        f"Counterparty value:  {_fmt(broker_value)}",
        f"Difference (counterparty - internal): {_fmt(b.get('difference'))}",
        f"Anomaly score: {scored}",
        f"First seen: {b.get('first_seen_at')}   Last seen: {b.get('last_seen_at')}",
        f"Break key: {b['break_key']}",
        "Action: confirm both sides with the counterparty, correct the wrong side, and resolve with a close code;"
        " Northstar resolves the incident by itself when the break clears.",
    ])
    return {
        "short_description": short[:160],
        "description": description,
        "correlation_id": b["incident_correlation_id"],
        "correlation_display": CORRELATION_DISPLAY,
        "category": "Trade Reconciliation",
        "subcategory": b["break_type"],
        "impact": str(impact),
        "urgency": str(urgency),
        "assignment_group": assignment_group(b),
    }


def _material(fields: dict, b: dict) -> str:
    """What makes a break 'changed' (not its age or last-seen time)."""
    score = b.get("anomaly_score")
    keyed = {
        "values": [b.get("internal_value"), b.get("broker_value"), b.get("difference")],
        "type": b.get("break_type"),
        "score": None if score is None or score != score else round(float(score), 2),
        "impact": fields["impact"], "urgency": fields["urgency"], "group": fields["assignment_group"],
    }
    return hashlib.sha256(outbox.canonical_json(keyed).encode()).hexdigest()[:16]


def _breaks(con: duckdb.DuckDBPyConnection) -> list[dict]:
    if not outbox.table_exists(con, "main", "fct_trade_breaks"):
        raise RuntimeError("main.fct_trade_breaks does not exist: run the intraday_trading dbt build first")
    if outbox.table_exists(con, "main", "fct_break_scores"):
        sql = """
            select b.*, s.anomaly_score, s.anomaly_rank, s.model_version, s.mlflow_run_id, s.notional_usd,
                   s.scoring_run_id as anomaly_scoring_run_id
            from main.fct_trade_breaks as b left join main.fct_break_scores as s using (break_key)
        """
    else:
        sql = """
            select b.*, null::double as anomaly_score, null::integer as anomaly_rank,
                   null::varchar as model_version, null::varchar as mlflow_run_id,
                   null::varchar as anomaly_scoring_run_id
            from main.fct_trade_breaks as b
        """
    return outbox.frame(con, sql + " order by break_key").to_dicts()


def _known(con: duckdb.DuckDBPyConnection) -> dict[str, dict]:
    """Per break key: the newest intended payload (an open outbox row) else the last acknowledged one."""
    known = {r["record_key"]: json.loads(r["payload"]) for r in outbox.pushed_state(con, TARGET, OBJECT).to_dicts()}
    pending = outbox.frame(con, """
        select record_key, payload from activation.outbox
        where target = ? and object = ? and status in ('pending', 'sending', 'failed')
        order by created_at
    """, [TARGET, OBJECT])
    for r in pending.to_dicts():
        known[r["record_key"]] = json.loads(r["payload"])
    return known


def plan_servicenow(run_id: str, cfg: Settings | None = None) -> PlanReport:
    """Enqueue the incident changes the break register implies (idempotent per run_id)."""
    cfg = cfg or settings()
    con = outbox.connect(cfg)
    report = PlanReport(target=TARGET, run_id=run_id)
    try:
        breaks = _breaks(con)
        known = _known(con)
        dbt_invocation = _dbt_invocation(con)
        candidates = []
        for b in breaks:
            key = b["break_key"]
            last = known.get(key)
            is_open = b["status"] == "open"
            if is_open:
                fields = incident_fields(b, show_account_numbers=cfg.incident_account_numbers == "full")
                material = _material(fields, b)
                if last is None:
                    op = "create"
                elif last["phase"] == "resolved":
                    op = "reopen"
                elif last.get("material") != material:
                    op = "update"
                else:
                    continue
                payload = {"phase": "open", "op": op, "correlation_id": b["incident_correlation_id"],
                           "fields": fields, "material": material}
            else:
                if last is None or last["phase"] == "resolved":
                    continue
                payload = {"phase": "resolved", "op": "resolve", "correlation_id": b["incident_correlation_id"],
                           "fields": {"state": RESOLVED, "close_code": AUTO_CLOSE_CODE,
                                      "close_notes": f"{AUTO_RESOLVE_MARKER} The break cleared in the reconciliation "
                                                     f"at {b.get('cleared_at')} (break key {key})."},
                           "material": last.get("material")}
            text = outbox.canonical_json(payload)
            digest = outbox.payload_hash(text)
            candidates.append({
                "outbox_id": outbox.outbox_id(run_id, TARGET, OBJECT, key, digest),
                "target": TARGET, "object": OBJECT, "operation": payload["op"], "record_key": key,
                "payload": text, "payload_hash": digest, "run_id": run_id, "source_ref": key,
                "effective_at": b.get("cleared_at") if not is_open else b.get("last_seen_at"),
                "model_version": b.get("model_version"), "mlflow_run_id": b.get("mlflow_run_id"),
                "scoring_run_id": b.get("anomaly_scoring_run_id"), "dbt_invocation_id": dbt_invocation,
            })
        report.considered = len(breaks)
        frame = pl.DataFrame(candidates, schema={
            **dict.fromkeys(outbox.CANDIDATE_COLUMNS, pl.String), "effective_at": pl.Datetime("us")})
        con.register("_sn_candidates", frame)
        con.execute("begin")
        added = outbox.enqueue(con, "_sn_candidates")
        con.execute("commit")
        con.unregister("_sn_candidates")
        ops: dict[str, int] = {}
        for c in candidates:
            ops[c["operation"]] = ops.get(c["operation"], 0) + 1
        report.enqueued = {"incident": added, **{f"planned_{k}": v for k, v in sorted(ops.items())}}
        report.unchanged = len(breaks) - len(candidates)
        log.info("servicenow plan %s: %s", run_id, report.as_dict())
        return report
    finally:
        con.close()


def _dbt_invocation(con: duckdb.DuckDBPyConnection) -> str | None:
    """The dbt invocation that built the break register, when dbt recorded it (scores.scoring_runs)."""
    if outbox.table_exists(con, "scores", "scoring_runs"):
        rows = outbox.frame(con, "select dbt_invocation_id from scores.scoring_runs where kind = 'break' "
                                 "order by scored_at desc limit 1")
        if rows.height:
            return rows["dbt_invocation_id"][0]
    return None


# --- lookups ------------------------------------------------------------------------------------


def incidents_by_correlation(client: ServiceNowClient, correlation_ids: list[str]) -> dict[str, dict]:
    """The newest incident per correlation id (one query for the whole list)."""
    if not correlation_ids:
        return {}
    fields = ",".join(("sys_id", "number", "state", "correlation_id", "close_code", "sys_created_on",
                       *COMPARED_FIELDS))
    response = client.request("GET", "/api/now/table/incident", params={
        "sysparm_query": f"correlation_idIN{','.join(correlation_ids)}^ORDERBYDESCsys_created_on",
        "sysparm_fields": fields, "sysparm_exclude_reference_link": "true",
        "sysparm_limit": str(10 * len(correlation_ids) + 10),
    })
    newest: dict[str, dict] = {}
    for record in response.json()["result"]:
        newest.setdefault(record["correlation_id"], record)
    return newest


def group_ids(client: ServiceNowClient) -> dict[str, str]:
    """Assignment group name -> sys_id (the Table API takes a reference field as a sys_id)."""
    response = client.request("GET", "/api/now/table/sys_user_group",
                              params={"sysparm_fields": "sys_id,name", "sysparm_limit": "10000"})
    return {g["name"]: g["sys_id"] for g in response.json()["result"]}


# --- send --------------------------------------------------------------------------------------


def _decide(payload: dict, existing: dict | None, groups: dict[str, str]) -> tuple[str, dict | None]:
    """(action, body) for one outbox row given the incident as it is now on the server.

    Actions: 'create', 'patch' (sys_id of existing), 'none' (the server already matches)."""
    fields = dict(payload["fields"])
    if "assignment_group" in fields:
        fields["assignment_group"] = groups.get(fields["assignment_group"], fields["assignment_group"])
    if payload["phase"] == "resolved":
        if existing is None or existing["state"] not in OPEN_STATES:
            return "none", None  # never raised, or already resolved/closed (by us or a person)
        return "patch", fields
    if existing is None:
        return "create", {**fields, "state": "1"}
    if existing["state"] in {CLOSED, CANCELED}:  # closed for good: re-raise as a successor incident
        return "create", {**fields, "state": "1", "parent_incident": existing["sys_id"]}
    changes = {k: v for k, v in fields.items() if k in COMPARED_FIELDS and str(existing.get(k, "")) != str(v)}
    if existing["state"] == RESOLVED:  # the break came back (or is still there): reopen
        return "patch", {**changes, "state": "2",
                         "work_notes": "Northstar: the break is present again in the reconciliation; reopened."}
    if changes:
        return "patch", {**changes, "work_notes": "Northstar: the break changed; description updated."}
    return "none", None


def send_servicenow(
    run_id: str | None = None,
    cfg: Settings | None = None,
    endpoint: Endpoint | None = None,
    limits: SendLimits | None = None,
    retry: RetryPolicy | None = None,
    sleep: Callable[[float], None] = time.sleep,
    after_write: AfterWrite | None = None,
    raise_on_incomplete: bool = False,
) -> SendReport:
    """Drain the open incident rows; zero API calls when there is nothing to send.

    With ``raise_on_incomplete`` (the DAG task) a send that leaves rows open or is interrupted
    raises ``PushIncomplete`` once the outbox and the send run are recorded (see send_salesforce).
    """
    cfg = cfg or settings()
    limits = limits or SendLimits()
    send_run_id = run_id or new_send_run_id(TARGET)
    report = SendReport(target=TARGET, send_run_id=send_run_id, started_at=datetime.now(UTC))
    switch = kill_switch(cfg)  # read before taking the warehouse: it may ask Airflow's metadata DB
    con = outbox.connect(cfg)
    try:
        if switch.engaged:
            report.kill_switch = True
            report.detail["kill_switch"] = switch.source
        else:
            rows = outbox.open_rows(con, TARGET, OBJECT)
            if rows.height:
                client = ServiceNowClient(endpoint or servicenow_endpoint(cfg), retry=retry, sleep=sleep)
                try:
                    _drain(con, client, rows, send_run_id, limits, report, after_write)
                finally:
                    report.api_calls = client.counter.calls
        report.open_rows = int(con.execute(
            "select count(*) from activation.outbox where target = ? and status in ('pending','sending','failed')",
            [TARGET]).fetchall()[0][0])
        outbox.record_send_run(con, report)
        log.info("servicenow send %s: %s", send_run_id, report.as_dict())
    finally:
        con.close()
    if raise_on_incomplete and left_work_undone(report):
        raise PushIncomplete(report)
    return report


def _drain(con, client: ServiceNowClient, rows: pl.DataFrame, send_run_id: str, limits: SendLimits,
           report: SendReport, after_write: AfterWrite | None) -> None:
    records = rows.to_dicts()
    try:
        groups = group_ids(client)
    except (Transient, ServiceNowError) as exc:  # unreachable, or refusing us as a whole (401, 403)
        report.interrupted, report.detail["interrupted_by"] = True, str(exc)
        return
    actions: dict[str, int] = {}
    for start in range(0, len(records), limits.lookup_chunk):
        chunk = records[start:start + limits.lookup_chunk]
        ids = [r["outbox_id"] for r in chunk]
        outbox.mark_sending(con, ids, send_run_id)  # the intent, committed before any write
        # Acknowledged once per chunk, not per record (one warehouse transaction instead of hundreds): a
        # crash before the ack leaves the rows 'sending', and the next run's correlation-id lookup adopts
        # what was already written instead of writing it again.
        successes: list[tuple[str, str | None, str | None]] = []
        failures: list[tuple[str, str]] = []
        try:
            payloads = [json.loads(r["payload"]) for r in chunk]
            existing = incidents_by_correlation(client, sorted({p["correlation_id"] for p in payloads}))
            for row, payload in zip(chunk, payloads, strict=True):
                current = existing.get(payload["correlation_id"])
                action, body = _decide(payload, current, groups)
                actions[action] = actions.get(action, 0) + 1
                try:
                    if action == "create":
                        response = client.request("POST", "/api/now/table/incident", body=body)
                        current = response.json()["result"]
                    elif action == "patch":
                        response = client.request("PATCH", f"/api/now/table/incident/{current['sys_id']}", body=body)
                        current = response.json()["result"]
                except ServiceNowError as exc:  # refused for this record (400 data policy, 403, 404...)
                    failures.append((row["outbox_id"], str(exc)))
                    continue
                if action != "none" and after_write is not None:
                    after_write(TARGET, OBJECT, [row["outbox_id"]])
                if current is not None:
                    existing[payload["correlation_id"]] = current
                successes.append((row["outbox_id"], (current or {}).get("sys_id"), (current or {}).get("number")))
        except (Transient, ServiceNowError) as exc:  # a per-record refusal is caught above: this is the lookup
            _ack_chunk(con, successes, failures, limits, report)
            handled = {i for i, *_ in successes} | {i for i, _ in failures}
            rest = [i for i in ids if i not in handled]
            outbox.release(con, rest, str(exc))
            report.released += len(rest)
            report.interrupted, report.detail["interrupted_by"] = True, str(exc)
            break
        _ack_chunk(con, successes, failures, limits, report)
    report.detail["actions"] = actions


def _ack_chunk(con, successes: list, failures: list, limits: SendLimits, report: SendReport) -> None:
    if successes:
        sent, _, _ = outbox.ack(con, successes=successes)
        report.sent += sent
    if failures:
        _, failed, dead = outbox.ack(con, failures=failures, max_attempts=limits.max_attempts)
        report.failed += failed
        report.dead += dead
