"""Salesforce activation: household scores onto Account fields, retention Tasks for advisors.

``plan_salesforce`` diffs the ``fct_household_scores`` mart (consented households only: consent is bound
to identity through ``dim_resolved_households``, so an opt-out on any record of any person of the
resolved household stops every push to its Accounts) against the
last acknowledged push (``activation.pushed_state``) and enqueues an Account upsert only where a
value changed materially, plus an advisor Task when a household enters 'At-Risk Retention
Priority' (at most one per household per 30 days of scoring time). ``send_salesforce`` drains the
open outbox rows: sObject Collections (200 per call) for small batches, Bulk API 2.0 upsert by
external id for large ones; per-record failures go back to their rows, transient faults back off
and resume, an expired session re-authenticates once (``connectors.salesforce``).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

import duckdb
import polars as pl
from simple_salesforce import Salesforce
from simple_salesforce.bulk2 import Operation, _Bulk2Client
from simple_salesforce.exceptions import SalesforceError, SalesforceExpiredSession

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
from connectors.retry import CallCounter, RetryPolicy
from connectors.salesforce import SalesforceConnection, is_retryable, login
from northstar.settings import Settings, kill_switch, salesforce_endpoint, settings
from northstar.warehouse import relation, table_exists, warehouse_tables_in

log = logging.getLogger(__name__)

TARGET = "salesforce"
AT_RISK = "At-Risk Retention Priority"
TASK_WINDOW_DAYS = 30
EXTERNAL_IDS = {"Account": "Household_Id__c", "Task": "Northstar_Key__c"}

# What counts as a material change against the last successful push, per field (anything else is
# not sent; the numbers Salesforce holds then follow along with the next material change):
# - Segment__c, Model_Version__c: any change;
# - Value_12M__c, CLV__c: more than 1 % and more than $10;
# - Value_Percentile__c, Attrition_Risk__c: at least one point;
# - Top_Drivers__c: a different driver or direction, i.e. a change in the text with its figures
#   left out ("fees billed, last 12 months: $749" -> "$748" alone is not material).
MATERIAL = {
    "money_relative": 0.01,  # Value_12M__c / CLV__c: more than 1 % ...
    "money_absolute": 10.0,  # ... and more than $10
    "points": 1.0,  # Value_Percentile__c / Attrition_Risk__c: at least one point
}
DRIVER_FIGURES = r"[-+]?\$?[0-9][0-9,]*(\.[0-9]+)?%?"  # the figures dropped when comparing drivers


def _desired_sql(database: str | None = None) -> str:
    # Consent is bound to identity: an Account is pushed to only when its resolved household consents
    # (dim_resolved_households: every Account's analytics consent, and no opt-out on any record of any
    # person in it). An Account identity has not placed (no row) is not pushed to.
    return f"""
        select
            s.household_id,
            s.account_id,
            s.advisor_id,
            coalesce(s.has_analytics_consent, false) and coalesce(r.has_push_consent, false) as has_consent,
            -- DECIMAL at the scale Salesforce shows: the same score always gives the same text in
            -- the payload (a rounded double could print as 948.50000000000011 one build and 948.5 the next)
            cast(round(predicted_revenue_12m, 2) as decimal(18, 2)) as value_12m,
            cast(round(clv, 2) as decimal(18, 2)) as clv,
            cast(round(value_percentile, 1) as decimal(4, 1)) as value_percentile,
            segment,
            cast(round(attrition_probability * 100, 1) as decimal(4, 1)) as attrition_risk,
            top_drivers,
            concat_ws(' + ', clv_model_version, churn_model_version) as model_version,
            concat_ws(',', clv_mlflow_run_id, churn_mlflow_run_id) as mlflow_run_id,
            scoring_run_id,
            dbt_invocation_id,
            scored_at,
            strftime(scored_at, '%Y-%m-%dT%H:%M:%S.000Z') as scored_at_text
        from {relation("fct_household_scores", database)} as s
        left join {relation("dim_resolved_households", database)} as r on s.household_id = r.household_id
    """  # noqa: S608 - fixed identifiers, values bound as parameters


def _payload_sql(alias: str = "d") -> str:
    return f"""json_object(
        'Household_Id__c', {alias}.household_id,
        'Value_12M__c', {alias}.value_12m,
        'CLV__c', {alias}.clv,
        'Value_Percentile__c', {alias}.value_percentile,
        'Segment__c', {alias}.segment,
        'Attrition_Risk__c', {alias}.attrition_risk,
        'Top_Drivers__c', {alias}.top_drivers,
        'Model_Version__c', {alias}.model_version,
        'Scored_At__c', {alias}.scored_at_text
    )::varchar"""


def _changed(new: str, old: str, kind: str) -> str:
    """SQL: the new value differs materially from the last pushed one (a null on one side only counts)."""
    old_num = f"try_cast(json_extract_string(s.payload, '$.{old}') as double)"
    if kind == "text":
        return f"({new} is distinct from json_extract_string(s.payload, '$.{old}'))"
    if kind == "drivers":
        pushed = f"json_extract_string(s.payload, '$.{old}')"
        return (f"(regexp_replace({new}, '{DRIVER_FIGURES}', '#', 'g') is distinct from "
                f"regexp_replace({pushed}, '{DRIVER_FIGURES}', '#', 'g'))")
    if kind == "money":
        test = (f"abs({new} - {old_num}) > greatest({MATERIAL['money_absolute']}, "
                f"{MATERIAL['money_relative']} * abs({old_num}))")
    else:
        test = f"abs({new} - {old_num}) >= {MATERIAL['points']}"
    return f"(({new} is null) <> ({old_num} is null) or coalesce({test}, false))"


def plan_salesforce(run_id: str, cfg: Settings | None = None,
                    con: duckdb.DuckDBPyConnection | None = None) -> PlanReport:
    """Enqueue the Account upserts and retention Tasks this run decides (idempotent per run_id)."""
    cfg = cfg or settings()
    own = con is None
    con = con or outbox.connect(cfg)
    report = PlanReport(target=TARGET, run_id=run_id)
    try:
        # the scores beside the outbox (on Spark copied into this connection; northstar.warehouse)
        database = warehouse_tables_in(con, ["fct_household_scores", "dim_resolved_households"], cfg)
        if not table_exists(con, "fct_household_scores", database=database):
            raise RuntimeError("fct_household_scores does not exist: run scoring and the scores_publish selector first")
        if not table_exists(con, "dim_resolved_households", database=database):
            # fail closed: without identity's consent binding an opted-out duplicate could be pushed to
            raise RuntimeError("dim_resolved_households does not exist: run python -m identity resolve and the "
                               "identity_publish selector first (the push's consent comes from it)")
        con.execute("begin")
        con.execute(f"create or replace temp table _sf_desired as {_desired_sql(database)}")
        total, consented = con.execute(
            "select count(*), count(*) filter (where has_consent) from _sf_desired").fetchall()[0]
        report.considered, report.skipped_no_consent = int(total), int(total - consented)
        material = " or ".join([
            "s.payload is null",
            _changed("d.segment", "Segment__c", "text"),
            _changed("d.top_drivers", "Top_Drivers__c", "drivers"),
            _changed("d.model_version", "Model_Version__c", "text"),
            _changed("d.value_12m", "Value_12M__c", "money"),
            _changed("d.clv", "CLV__c", "money"),
            _changed("d.value_percentile", "Value_Percentile__c", "points"),
            _changed("d.attrition_risk", "Attrition_Risk__c", "points"),
        ])
        con.execute(f"""
            create or replace temp table _sf_changes as
            select d.*, json_extract_string(s.payload, '$.Segment__c') as pushed_segment
            from _sf_desired as d
            left join activation.pushed_state as s
                on s.target = '{TARGET}' and s.object = 'Account' and s.record_key = d.household_id
            where d.has_consent and ({material})
        """)  # noqa: S608 - fixed identifiers, values bound as parameters
        con.execute(f"""
            create or replace temp table _sf_account_candidates as
            with p as (
                select c.*, {_payload_sql('c')} as payload from _sf_changes as c
            ),
            h as (select p.*, sha256(payload) as payload_hash from p)
            select
                left(sha256(concat_ws(chr(31), ?, '{TARGET}', 'Account', household_id, payload_hash)), 32)
                    as outbox_id,
                '{TARGET}' as target, 'Account' as object, 'upsert' as operation,
                household_id as record_key, payload, payload_hash, ?::varchar as run_id,
                household_id as source_ref, scored_at as effective_at, model_version, mlflow_run_id,
                scoring_run_id, dbt_invocation_id
            from h
        """, [run_id, run_id])  # noqa: S608 - fixed identifiers, values bound as parameters
        accounts = outbox.enqueue(con, "_sf_account_candidates")
        # Tasks: entering the at-risk segment (compared with what Salesforce was last told), at most
        # one per household within TASK_WINDOW_DAYS of scoring time, keyed by household + scoring day.
        con.execute(f"""
            create or replace temp table _sf_task_candidates as
            with entering as (
                select c.*,
                    'NS-RETENTION-' || c.household_id || '-' || strftime(c.scored_at, '%Y%m%d') as task_key
                from _sf_changes as c
                where c.segment = '{AT_RISK}' and coalesce(c.pushed_segment, '') <> '{AT_RISK}'
                  and c.account_id is not null
                  and not exists (
                      select 1 from activation.outbox as t
                      where t.target = '{TARGET}' and t.object = 'Task' and t.source_ref = c.household_id
                        and t.status <> 'superseded'
                        and t.effective_at > c.scored_at - interval {TASK_WINDOW_DAYS} day
                        and t.effective_at <= c.scored_at + interval {TASK_WINDOW_DAYS} day
                  )
            ),
            p as (
                select e.*, json_object(
                    'Northstar_Key__c', task_key,
                    'WhatId', account_id,
                    'OwnerId', advisor_id,
                    'Subject', 'Retention review: attrition risk ' || attrition_risk || '%',
                    'Description', 'Household ' || household_id || ' entered ''{AT_RISK}'' on '
                        || strftime(scored_at, '%Y-%m-%d') || '. Attrition risk ' || attrition_risk
                        || '%, 12-month value ' || value_12m || ', CLV ' || clv
                        || '. Top drivers: ' || coalesce(top_drivers, 'n/a') || '. Model ' || model_version || '.',
                    'ActivityDate', strftime(scored_at + interval 7 day, '%Y-%m-%d'),
                    'Status', 'Not Started',
                    'Type', 'Call',
                    'TaskSubtype', 'Task'
                )::varchar as payload
                from entering as e
            ),
            h as (select p.*, sha256(payload) as payload_hash from p)
            select
                left(sha256(concat_ws(chr(31), ?, '{TARGET}', 'Task', task_key, payload_hash)), 32) as outbox_id,
                '{TARGET}' as target, 'Task' as object, 'upsert' as operation, task_key as record_key,
                payload, payload_hash, ?::varchar as run_id, household_id as source_ref,
                scored_at as effective_at, model_version, mlflow_run_id, scoring_run_id, dbt_invocation_id
            from h
        """, [run_id, run_id])  # noqa: S608 - fixed identifiers, values bound as parameters
        tasks = outbox.enqueue(con, "_sf_task_candidates")
        con.execute("commit")
        report.enqueued = {"Account": accounts, "Task": tasks}
        report.unchanged = int(consented) - con.execute("select count(*) from _sf_changes").fetchall()[0][0]
        log.info("salesforce plan %s: %s", run_id, report.as_dict())
        return report
    except BaseException:
        try:
            con.execute("rollback")
        except duckdb.Error:
            pass  # no transaction open
        raise
    finally:
        if own:
            con.close()


# --- sending -----------------------------------------------------------------------------------


class _Interrupted(Exception):
    """A transient fault outlasted the back-off; the rows go back to pending."""


def _cancel_without_consent(con: duckdb.DuckDBPyConnection, cfg: Settings | None = None) -> int:
    """Consent may be withdrawn between plan and send (on the Account, or an opt-out on any record of a
    person of the resolved household): such rows are superseded, never sent."""
    # the households without consent, beside the outbox (on Spark copied into this connection)
    database = warehouse_tables_in(con, ["fct_household_scores", "dim_resolved_households"], cfg, where={
        "fct_household_scores": "not coalesce(has_analytics_consent, false)",
        "dim_resolved_households": "not coalesce(has_push_consent, false)"})
    withdrawn = []
    if table_exists(con, "fct_household_scores", database=database):
        withdrawn.append(  # fixed identifiers
            f"select household_id from {relation('fct_household_scores', database)} "  # noqa: S608
            "where not coalesce(has_analytics_consent, false)")
    if table_exists(con, "dim_resolved_households", database=database):
        withdrawn.append(  # fixed identifiers
            f"select household_id from {relation('dim_resolved_households', database)} "  # noqa: S608
            "where not coalesce(has_push_consent, false)")
    if not withdrawn:
        return 0
    con.execute("begin")
    n = con.execute(f"""
        update activation.outbox as o
        set status = 'superseded', last_error = 'consent withdrawn before send', updated_at = now()
        where o.target = '{TARGET}' and o.status in ('pending', 'sending', 'failed')
          and o.source_ref in ({' union '.join(withdrawn)})
    """).fetchall()[0][0]  # noqa: S608 - fixed identifiers, values bound as parameters
    con.execute("commit")
    return int(n)


def _records(rows: pl.DataFrame) -> list[dict]:
    return [json.loads(p) for p in rows["payload"]]


def _bulk_csv(records: list[dict]) -> str:
    """Bulk 2.0 CSV: a null is '#N/A' (set to null; an empty cell would mean 'leave unchanged')."""
    columns = sorted({k for r in records for k in r})
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for record in records:
        row = []
        for column in columns:
            value = record.get(column)
            if value is None:
                row.append("#N/A")
            elif isinstance(value, bool):
                row.append("true" if value else "false")
            elif isinstance(value, float):
                row.append(repr(value))
            else:
                row.append(str(value))
        writer.writerow(row)
    return buffer.getvalue()


def _bulk(sf: Salesforce, obj: str) -> _Bulk2Client:
    headers = {"Content-Type": "application/json", "Authorization": "Bearer " + sf.session_id,
               "X-PrettyPrint": "1"}
    return _Bulk2Client(obj, sf.bulk2_url, headers, sf.session)


class SalesforceSender:
    def __init__(self, con, conn: SalesforceConnection, send_run_id: str, limits: SendLimits,
                 report: SendReport, after_write: AfterWrite | None, sleep: Callable[[float], None]):
        self.con, self.conn, self.send_run_id = con, conn, send_run_id
        self.limits, self.report, self.after_write, self.sleep = limits, report, after_write, sleep

    def _call(self, operation, what: str):
        try:
            return self.conn.call(operation, what)
        except SalesforceExpiredSession as exc:
            raise _Interrupted(f"{what}: session expired again after re-login") from exc
        except Exception as exc:
            if is_retryable(exc):
                raise _Interrupted(f"{what}: {type(exc).__name__}: {getattr(exc, 'content', exc)}") from exc
            raise

    def _ack(self, successes, failures) -> None:
        sent, failed, dead = outbox.ack(self.con, successes, failures, self.limits.max_attempts)
        self.report.sent += sent
        self.report.failed += failed
        self.report.dead += dead

    def _written(self, obj: str, ids: list[str]) -> None:
        if self.after_write is not None:
            self.after_write(TARGET, obj, ids)

    def send_object(self, obj: str, rows: pl.DataFrame) -> None:
        size = self.limits.collection_size if rows.height <= self.limits.bulk_threshold else self.limits.bulk_job_rows
        send = self.send_collection if rows.height <= self.limits.bulk_threshold else self.send_bulk_job
        for start in range(0, rows.height, size):
            chunk = rows.slice(start, size)
            ids = chunk["outbox_id"].to_list()
            outbox.mark_sending(self.con, ids, self.send_run_id)
            try:
                send(obj, chunk)
            except SalesforceError as exc:  # the job or request refused as a whole: every row of it failed
                self._ack([], [(i, f"{type(exc).__name__}: {getattr(exc, 'content', exc)}") for i in ids])
            except _Interrupted as exc:
                log.warning("salesforce: %s; %d rows back to pending", exc, len(ids))
                outbox.release(self.con, ids, str(exc))
                self.report.released += len(ids)
                self.report.interrupted = True
                self.report.detail["interrupted_by"] = str(exc)
                return

    def send_collection(self, obj: str, chunk: pl.DataFrame) -> None:
        ext = EXTERNAL_IDS[obj]
        records = [{"attributes": {"type": obj}, **r} for r in _records(chunk)]
        ids = chunk["outbox_id"].to_list()
        try:
            results = self._call(
                lambda sf: sf.restful(f"composite/sobjects/{obj}/{ext}", method="PATCH",
                                      json={"allOrNone": False, "records": records}),
                f"{obj} collection upsert",
            )
        except SalesforceError as exc:  # the whole request refused (400...): every row failed
            self._ack([], [(i, f"{type(exc).__name__}: {exc.content}") for i in ids])
            return
        self._written(obj, ids)
        successes, failures = [], []
        for outbox_row_id, result in zip(ids, results or [], strict=False):
            if result.get("success"):
                successes.append((outbox_row_id, result.get("id"), None))
            else:
                errors = "; ".join(f"{e.get('statusCode')}: {e.get('message')}" for e in result.get("errors", []))
                failures.append((outbox_row_id, errors or "unknown error"))
        answered = len(results or [])
        failures += [(i, "no result returned for this record") for i in ids[answered:]]
        self._ack(successes, failures)

    def send_bulk_job(self, obj: str, chunk: pl.DataFrame) -> None:
        ext = EXTERNAL_IDS[obj]
        records = _records(chunk)
        data = _bulk_csv(records)
        ids = chunk["outbox_id"].to_list()
        by_key = dict(zip(chunk["record_key"].to_list(), ids, strict=True))
        job = self._call(lambda sf: _bulk(sf, obj).create_job(Operation.upsert, external_id_field=ext),
                         f"{obj} bulk create job")
        job_id = job["id"]
        self.report.detail.setdefault("bulk_jobs", []).append(job_id)
        self._call(lambda sf: _bulk(sf, obj).upload_job_data(job_id, data), f"{obj} bulk upload")
        self._call(lambda sf: _bulk(sf, obj).close_job(job_id), f"{obj} bulk close")
        while True:
            info = self._call(lambda sf: _bulk(sf, obj).get_job(job_id, False), f"{obj} bulk poll")
            if info["state"] in {"JobComplete", "Failed", "Aborted"}:
                break
            self.sleep(self.limits.bulk_poll_interval)
        self._written(obj, ids)
        if info["state"] != "JobComplete":
            message = f"bulk job {job_id} {info['state']}: {info.get('errorMessage') or ''}"
            self._ack([], [(i, message) for i in ids])
            return
        failed_csv = self._call(lambda sf: _bulk(sf, obj).get_ingest_results(job_id, "failedResults"),
                                f"{obj} bulk failed results")
        failures: dict[str, str] = {}
        for row in csv.DictReader(io.StringIO(failed_csv)):
            key = row.get(ext)
            if key in by_key:
                failures[by_key[key]] = row.get("sf__Error") or "failed"
        unprocessed: set[str] = set()
        if int(info.get("numberRecordsProcessed") or 0) < len(ids):
            text = self._call(lambda sf: _bulk(sf, obj).get_ingest_results(job_id, "unprocessedRecords"),
                              f"{obj} bulk unprocessed")
            unprocessed = {by_key[r[ext]] for r in csv.DictReader(io.StringIO(text)) if r.get(ext) in by_key}
        successes = [(i, None, None) for i in ids if i not in failures and i not in unprocessed]
        self._ack(successes, list(failures.items()))
        if unprocessed:
            outbox.release(self.con, sorted(unprocessed), f"unprocessed by bulk job {job_id}")
            self.report.released += len(unprocessed)


def send_salesforce(
    run_id: str | None = None,
    cfg: Settings | None = None,
    connect: Callable[[], Salesforce] | None = None,
    limits: SendLimits | None = None,
    retry: RetryPolicy | None = None,
    sleep: Callable[[float], None] = time.sleep,
    after_write: AfterWrite | None = None,
    raise_on_incomplete: bool = False,
) -> SendReport:
    """Drain the open Salesforce outbox rows; zero API calls when there is nothing to send.

    ``connect`` returns a logged-in client (default: ``login(salesforce_endpoint(cfg))``). With the
    kill switch on nothing is sent and no connection is made; the rows stay pending. With
    ``raise_on_incomplete`` (the DAG task) a send that leaves rows open or is interrupted raises
    ``PushIncomplete`` after the outbox and the send run are recorded, so the run goes red and the
    next one resumes.
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
            report.detail["cancelled_no_consent"] = _cancel_without_consent(con, cfg)
            rows = outbox.open_rows(con, TARGET)
            if rows.height:
                counter = CallCounter()
                endpoint = None if connect is not None else salesforce_endpoint(cfg)

                def connect_counted() -> Salesforce:
                    sf = connect() if connect is not None else login(endpoint)
                    counter.attach(sf.session)
                    return sf

                try:
                    conn = _connect_with_retry(connect_counted, retry or RetryPolicy(), sleep, report)
                    if conn is not None:
                        sender = SalesforceSender(con, conn, send_run_id, limits, report, after_write, sleep)
                        for obj in ("Account", "Task"):
                            part = rows.filter(pl.col("object") == obj)
                            if part.height and not report.interrupted:
                                sender.send_object(obj, part)
                finally:
                    report.api_calls = counter.calls
        report.open_rows = int(con.execute(
            "select count(*) from activation.outbox where target = ? and status in ('pending','sending','failed')",
            [TARGET]).fetchall()[0][0])
        outbox.record_send_run(con, report)
        log.info("salesforce send %s: %s", send_run_id, report.as_dict())
    finally:
        con.close()
    if raise_on_incomplete and left_work_undone(report):
        raise PushIncomplete(report)
    return report


def _connect_with_retry(connect: Callable[[], Salesforce], retry: RetryPolicy, sleep: Callable[[float], None],
                        report: SendReport) -> SalesforceConnection | None:
    """Log in under the retry policy; an unreachable org (or one that keeps refusing) interrupts the send.

    Nothing has been marked 'sending' yet, so the rows simply stay pending for the next run.
    """
    attempt = 0
    while True:
        try:
            return SalesforceConnection(connect, retry=retry, sleep=sleep)
        except Exception as exc:  # noqa: BLE001 - any login failure is recorded; the task then fails
            if not is_retryable(exc) or attempt + 1 >= retry.max_attempts:
                # Unreachable after the back-off, or refused (bad credentials, wrong server): record it.
                report.interrupted = True
                report.detail["interrupted_by"] = f"login: {type(exc).__name__}: {exc}"
                log.warning("salesforce: no session (%s); every row stays in the outbox", exc)
                return None
            sleep(retry.delay(attempt))
            attempt += 1
