"""ServiceNow activation: one incident per trade break, kept in step with the break register.

``plan_servicenow`` compares the break register ``fct_trade_breaks`` (left-joined to ``fct_break_scores``
when it exists) with what ServiceNow was last told (``activation.pushed_state``) and enqueues
create / update / resolve / reopen rows. ``send_servicenow`` drains them through the Batch API
(``POST /api/now/v1/batch``, 100 sub-requests a call by default; the Table API when the instance has
no Batch API). Every write is preceded by a lookup by ``correlation_id`` (``batch_lookup_chunk`` ids
per query, the queries themselves batched) and decided against the incident as it is on the server, so
a crash between a write and its acknowledgement, a write whose answer was lost, or any number of
reruns, never makes a second incident: the next look-up finds the one it made and adopts it.
A send of N changes makes ceil(N / batch_size) write calls and about N / (batch_size *
batch_lookup_chunk) look-up calls: 100 and 25,000 rows a call by default.
The HTTP client (auth, TLS, retries) is :mod:`connectors.servicenow`; reading back the incidents people
resolved is an extraction and lives in :mod:`ingest.servicenow`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
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
    BatchUnavailable,
    ServiceNowClient,
    ServiceNowError,
    SubRequest,
    Transient,
)
from northstar.pii import mask_account_number
from northstar.settings import Endpoint, Settings, kill_switch, servicenow_endpoint, settings
from northstar.warehouse import render, table_exists, warehouse_tables_in

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


def _breaks(con: duckdb.DuckDBPyConnection, database: str | None = None) -> list[dict]:
    if not table_exists(con, "fct_trade_breaks", database=database):
        raise RuntimeError("fct_trade_breaks does not exist: run the intraday_trading dbt build first")
    if table_exists(con, "fct_break_scores", database=database):
        sql = """
            select b.*, s.anomaly_score, s.anomaly_rank, s.model_version, s.mlflow_run_id, s.notional_usd,
                   s.scoring_run_id as anomaly_scoring_run_id
            from {fct_trade_breaks} as b left join {fct_break_scores} as s using (break_key)
        """
    else:
        sql = """
            select b.*, null::double as anomaly_score, null::integer as anomaly_rank,
                   null::varchar as model_version, null::varchar as mlflow_run_id,
                   null::varchar as anomaly_scoring_run_id
            from {fct_trade_breaks} as b
        """
    return outbox.frame(con, render(sql, database) + " order by break_key").to_dicts()


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
        # the break register beside the outbox (on Spark copied into this connection; northstar.warehouse)
        database = warehouse_tables_in(con, ["fct_trade_breaks", "fct_break_scores", "scoring_runs"], cfg,
                                       where={"scoring_runs": "kind = 'break'"})
        breaks = _breaks(con, database)
        known = _known(con)
        dbt_invocation = _dbt_invocation(con, database)
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


def _dbt_invocation(con: duckdb.DuckDBPyConnection, database: str | None = None) -> str | None:
    """The dbt invocation that built the break register, when dbt recorded it (scores.scoring_runs)."""
    if table_exists(con, "scoring_runs", database=database):
        rows = outbox.frame(con, render("select dbt_invocation_id from {scoring_runs} where kind = 'break' "
                                        "order by scored_at desc limit 1", database))
        if rows.height:
            return rows["dbt_invocation_id"][0]
    return None


# --- lookups ------------------------------------------------------------------------------------

LOOKUP_FIELDS = ",".join(("sys_id", "number", "state", "correlation_id", "close_code", "sys_created_on",
                          *COMPARED_FIELDS))
INCIDENTS = "/api/now/table/incident"
GROUPS = "/api/now/table/sys_user_group"
GROUP_PARAMS = {"sysparm_fields": "sys_id,name", "sysparm_limit": "10000"}
WRITE_PARAMS = {"sysparm_fields": LOOKUP_FIELDS, "sysparm_exclude_reference_link": "true"}  # a short answer


def _lookup_params(correlation_ids: list[str]) -> dict:
    return {
        "sysparm_query": f"correlation_idIN{','.join(correlation_ids)}^ORDERBYDESCsys_created_on",
        "sysparm_fields": LOOKUP_FIELDS, "sysparm_exclude_reference_link": "true",
        "sysparm_limit": str(10 * len(correlation_ids) + 10),
    }


def _newest(records: list[dict], into: dict[str, dict]) -> None:
    for record in records:  # newest first (ORDERBYDESCsys_created_on)
        into.setdefault(record["correlation_id"], record)


def incidents_by_correlation(client: ServiceNowClient, correlation_ids: list[str]) -> dict[str, dict]:
    """The newest incident per correlation id (one Table API query for the whole list)."""
    if not correlation_ids:
        return {}
    newest: dict[str, dict] = {}
    _newest(client.request("GET", INCIDENTS, params=_lookup_params(correlation_ids)).json()["result"], newest)
    return newest


def group_ids(client: ServiceNowClient) -> dict[str, str]:
    """Assignment group name -> sys_id (the Table API takes a reference field as a sys_id)."""
    response = client.request("GET", GROUPS, params=GROUP_PARAMS)
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
                batch_size = cfg.servicenow_batch_size if limits.batch_size is None else limits.batch_size
                try:
                    _IncidentSender(con, client, send_run_id, limits, batch_size, report, after_write).send(
                        rows.to_dicts())
                finally:
                    report.api_calls = client.calls  # answered, and sent but unanswered
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


@dataclass
class _Change:
    """One open outbox row on its way to the instance."""

    row: dict
    payload: dict

    @property
    def outbox_id(self) -> str:
        return self.row["outbox_id"]

    @property
    def correlation_id(self) -> str:
        return self.payload["correlation_id"]


@dataclass
class _Write:
    change: _Change
    method: str
    path: str
    body: dict


@dataclass
class _Pass:
    """What one look-up-decide-write pass left to do."""

    transient: list[_Change] = field(default_factory=list)  # failed or unknown outcome: back off, look again
    unserviced: list[_Change] = field(default_factory=list)  # the instance did not get to them: send again
    progressed: bool = False  # some row reached its outcome (sent, adopted, refused)
    error: str = ""


class _IncidentSender:
    """One send run's conversation with the instance: look up, decide, write, record each row's outcome.

    Rows go in groups of ``batch_size * batch_lookup_chunk`` (25,000 by default). Per group: the rows are
    marked ``sending``; one Batch API call looks their incidents up (``batch_lookup_chunk`` correlation ids
    per GET sub-request, the assignment groups with the first); each row is decided against the incident as
    it is on the server; the writes go ``batch_size`` per Batch API call, and each sub-request's own
    status decides its row (2xx sent, 429/5xx again after a back-off, other 4xx failed with the reason).
    A write call that fails as a whole (503, a dropped connection, an unreadable answer) may have been
    applied, so it is never resent as it was: its rows are looked up again and decided again, and an
    incident created by the lost call is adopted, not created twice. After ``RetryPolicy.max_attempts``
    passes without success the rows go back to ``pending`` and the send reports ``interrupted``.

    A Batch API that answers 404 switches this send to the Table API (look-ups as plain GETs of
    ``lookup_chunk`` ids, one call per write), logged once.
    """

    def __init__(self, con, client: ServiceNowClient, send_run_id: str, limits: SendLimits, batch_size: int,
                 report: SendReport, after_write: AfterWrite | None):
        self.con, self.client, self.send_run_id, self.limits = con, client, send_run_id, limits
        self.batch_size = batch_size
        self.use_batch = batch_size > 0
        self.report, self.after_write = report, after_write
        self.groups: dict[str, str] | None = None
        self.actions: dict[str, int] = {}
        self.calls = {"lookup": 0, "write": 0}
        report.detail["api"] = "batch" if self.use_batch else "table"

    # --- transport ------------------------------------------------------------------------------

    def _fall_back(self, exc: ServiceNowError) -> None:
        log.warning("servicenow: the Batch API is not available on this instance (%s); this send uses the "
                    "Table API, one call per write", exc)
        self.use_batch = False
        self.report.detail["api"] = "table"
        self.report.detail["batch_api_unavailable"] = str(exc)

    def _lookup(self, ids: list[str]) -> tuple[dict[str, dict], set[str], set[str]]:
        """(newest incident per correlation id, ids to look up again after a back-off, ids not serviced)."""
        if self.use_batch:
            size = self.limits.batch_lookup_chunk
            try:
                return self._lookup_batched([ids[i:i + size] for i in range(0, len(ids), size)])
            except BatchUnavailable as exc:
                self._fall_back(exc)
        chunks = [ids[i:i + self.limits.lookup_chunk] for i in range(0, len(ids), self.limits.lookup_chunk)]
        if self.groups is None:
            self.calls["lookup"] += 1
            self.groups = group_ids(self.client)
        newest: dict[str, dict] = {}
        for chunk in chunks:
            self.calls["lookup"] += 1
            newest.update(incidents_by_correlation(self.client, chunk))
        return newest, set(), set()

    def _lookup_batched(self, chunks: list[list[str]]) -> tuple[dict[str, dict], set[str], set[str]]:
        queries = {f"lookup-{n}": chunk for n, chunk in enumerate(chunks)}
        subs = [SubRequest(key, "GET", INCIDENTS, params=_lookup_params(chunk)) for key, chunk in queries.items()]
        if self.groups is None:
            subs.insert(0, SubRequest("groups", "GET", GROUPS, params=GROUP_PARAMS))
        newest: dict[str, dict] = {}
        again: set[str] = set()
        unserviced: set[str] = set()
        for start in range(0, len(subs), self.batch_size):
            self.calls["lookup"] += 1
            answer = self.client.batch(subs[start:start + self.batch_size])  # reads: retried as they are
            for key, response in answer.served.items():
                if not response.ok and not response.transient:  # refused (403 ACL...): not a blip
                    raise ServiceNowError(response.status, response.error or "look-up refused")
                if key == "groups":
                    if response.ok:
                        self.groups = {g["name"]: g["sys_id"] for g in response.body["result"]}
                elif response.ok:
                    _newest(response.body["result"], newest)
                else:
                    again.update(queries[key])
            for key in [*answer.unserviced, *answer.missing]:
                unserviced.update(queries.get(key, []))
        if self.groups is None:  # the group names could not be read: nothing can be decided this pass
            return {}, set(), {i for chunk in chunks for i in chunk}
        return newest, again, unserviced

    def _write_batched(self, writes: list[_Write]) -> tuple[list, list, _Pass]:
        """One Batch API call; (successes, failures, what is left) for the outbox."""
        subs = [SubRequest(w.change.outbox_id, w.method, w.path, params=WRITE_PARAMS, body=w.body) for w in writes]
        self.calls["write"] += 1
        answer = self.client.batch(subs, retry_transient=False)  # a lost answer may have been applied
        if self.after_write is not None:
            self.after_write(TARGET, OBJECT, [w.change.outbox_id for w in writes])
        successes, failures, left = [], [], _Pass()
        for w in writes:
            response = answer.served.get(w.change.outbox_id)
            if response is None:
                if w.change.outbox_id in answer.unserviced:
                    left.unserviced.append(w.change)
                else:  # neither serviced nor unserviced: whether it ran is unknown
                    left.transient.append(w.change)
                    left.error = "the batch answer did not mention a request"
            elif response.ok:
                record = (response.body or {}).get("result") or {}
                successes.append((w.change.outbox_id, record.get("sys_id"), record.get("number")))
            elif response.transient:
                left.transient.append(w.change)
                left.error = response.error or ""
            else:
                failures.append((w.change.outbox_id, response.error or f"HTTP {response.status}"))
        return successes, failures, left

    def _write_table(self, writes: list[_Write]) -> tuple[list, list, _Pass]:
        """The same writes one Table API call each; a transient fault stops here (the rest: look again)."""
        successes, failures, left = [], [], _Pass()
        for n, w in enumerate(writes):
            self.calls["write"] += 1
            try:
                response = self.client.request(w.method, w.path, params=WRITE_PARAMS, body=w.body,
                                               retry_transient=False)
            except Transient as exc:
                left.transient.extend(x.change for x in writes[n:])
                left.error = str(exc)
                break
            except ServiceNowError as exc:  # refused for this record (400 data policy, 403, 404...)
                failures.append((w.change.outbox_id, str(exc)))
                continue
            if self.after_write is not None:
                self.after_write(TARGET, OBJECT, [w.change.outbox_id])
            record = response.json()["result"]
            successes.append((w.change.outbox_id, record.get("sys_id"), record.get("number")))
        return successes, failures, left

    # --- the passes ----------------------------------------------------------------------------

    def send(self, rows: list[dict]) -> None:
        start = 0
        while start < len(rows):
            # As many rows as one look-up call covers (the first call also reads the assignment groups).
            queries = max(1, self.batch_size - (self.groups is None and self.batch_size > 1))
            per_query = self.limits.batch_lookup_chunk if self.use_batch else self.limits.lookup_chunk
            chunk = rows[start:start + queries * per_query]
            start += len(chunk)
            outbox.mark_sending(self.con, [r["outbox_id"] for r in chunk], self.send_run_id)  # intent first
            if not self._deliver([_Change(r, json.loads(r["payload"])) for r in chunk]):
                break
        self.report.detail["actions"] = self.actions
        self.report.detail["calls"] = {"lookup_calls": self.calls["lookup"], "write_calls": self.calls["write"],
                                       "unanswered": self.client.unanswered}

    def _deliver(self, pending: list[_Change]) -> bool:
        """Look up, decide and write until every row has its outcome; False when the send must stop."""
        attempt = 0
        while pending:
            try:
                left = self._pass(pending)
            except (Transient, ServiceNowError) as exc:  # a look-up failed after its own retries
                left = _Pass(transient=list(pending), error=str(exc))
                attempt = self.client.retry.max_attempts  # the look-up already backed off: stop now
            pending = left.transient + left.unserviced
            if not pending:
                return True
            if left.transient or not left.progressed:
                attempt += 1
                if attempt >= self.client.retry.max_attempts:
                    ids = [c.outbox_id for c in pending]
                    outbox.release(self.con, ids, left.error or "the instance did not process the request")
                    self.report.released += len(ids)
                    self.report.interrupted = True
                    self.report.detail["interrupted_by"] = left.error or "unserviced batch requests"
                    return False
                delay = self.client.retry.delay(attempt - 1)
                log.warning("servicenow: %d change(s) to send again (%s); retry %d in %.2fs", len(pending),
                            left.error or "unserviced", attempt, delay)
                self.client.sleep(delay)
        return True

    def _pass(self, pending: list[_Change]) -> _Pass:
        found, again, unserviced = self._lookup(sorted({c.correlation_id for c in pending}))
        left = _Pass(error="a look-up answered 429/5xx" if again else "")
        adopted: list[tuple[str, str | None, str | None]] = []
        writes: list[_Write] = []
        for change in pending:
            if change.correlation_id in again:
                left.transient.append(change)
                continue
            if change.correlation_id in unserviced:
                left.unserviced.append(change)
                continue
            current = found.get(change.correlation_id)
            action, body = _decide(change.payload, current, self.groups or {})
            self.actions[action] = self.actions.get(action, 0) + 1
            if action == "none":  # the server already says this (written by a run whose ack was lost)
                adopted.append((change.outbox_id, (current or {}).get("sys_id"), (current or {}).get("number")))
            elif action == "create":
                writes.append(_Write(change, "POST", INCIDENTS, body))
            else:
                writes.append(_Write(change, "PATCH", f"{INCIDENTS}/{current['sys_id']}", body))
        if adopted:
            self._ack(adopted, [], left)
        # Table API: acknowledged every lookup_chunk writes, so a crash leaves few rows to adopt.
        size = self.batch_size if self.use_batch else self.limits.lookup_chunk
        start = 0
        while start < len(writes):
            chunk = writes[start:start + size]
            try:
                if self.use_batch:
                    try:
                        successes, failures, rest = self._write_batched(chunk)
                    except BatchUnavailable as exc:  # nothing was applied: the same writes, one by one
                        self._fall_back(exc)
                        size = self.limits.lookup_chunk
                        continue
                else:
                    successes, failures, rest = self._write_table(chunk)
            except (Transient, ServiceNowError) as exc:  # the call as a whole: outcome unknown, look again
                left.transient.extend(w.change for w in writes[start:])
                left.error = str(exc)
                break
            self._ack(successes, failures, left)
            left.transient.extend(rest.transient)
            left.unserviced.extend(rest.unserviced)
            left.error = rest.error or left.error
            if rest.transient and not self.use_batch:  # the Table API stopped at a fault: so does this pass
                left.transient.extend(w.change for w in writes[start + len(chunk):])
                break
            start += len(chunk)
        return left

    def _ack(self, successes: list, failures: list, left: _Pass) -> None:
        if not successes and not failures:
            return
        sent, failed, dead = outbox.ack(self.con, successes=successes, failures=failures,
                                        max_attempts=self.limits.max_attempts)
        self.report.sent += sent
        self.report.failed += failed
        self.report.dead += dead
        left.progressed = True
