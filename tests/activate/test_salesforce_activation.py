"""Salesforce activation through the outbox against the sandbox org, with its fault injection.

After every scenario (API limit mid-job, 503s, an expired session, per-record failures, a kill
between the send and the acknowledgement) and the reruns that follow, the org's Account output
fields equal the intended state exactly, households without analytics consent are untouched, and
a rerun with nothing new makes zero API calls.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta

import pytest
from activation_world import (
    AT_RISK_SEGMENT,
    FAST_RETRY,
    N_HOUSEHOLDS,
    OUTPUT_FIELDS,
    SCORED_AT,
    household_scores,
    write_household_scores,
)

from activate import outbox
from activate.config import SendLimits
from activate.salesforce import plan_salesforce, send_salesforce

pytestmark = pytest.mark.integration

SMALL = SendLimits(max_attempts=3, collection_size=25, bulk_threshold=2000, bulk_poll_interval=0.0)
BULK = replace(SMALL, bulk_threshold=10, bulk_job_rows=40)


class Crash(BaseException):
    """Stands in for the process being killed (not an Exception: nothing may catch it)."""


def send(env, limits=SMALL, **kw):
    return send_salesforce(cfg=env.cfg, connect=env.sf_connect(), limits=limits, retry=FAST_RETRY,
                           sleep=kw.pop("sleep", lambda s: None), **kw)


def intended(env) -> dict[str, dict]:
    con = env.db()
    try:
        rows = con.execute("select record_key, payload from activation.pushed_state "
                           "where target = 'salesforce' and object = 'Account'").fetchall()
    finally:
        con.close()
    return {key: json.loads(payload) for key, payload in rows}


def desired_from_marts(rows: list[dict]) -> dict[str, dict]:
    """What the org should show, computed from the mart rows independently of the planner."""
    out = {}
    for r in rows:
        if not r["has_analytics_consent"]:
            continue
        out[r["household_id"]] = {
            "Value_12M__c": round(r["predicted_revenue_12m"], 2),
            "CLV__c": round(r["clv"], 2),
            "Value_Percentile__c": round(r["value_percentile"], 1),
            "Segment__c": r["segment"],
            "Attrition_Risk__c": round(r["attrition_probability"] * 100, 1),
            "Top_Drivers__c": r["top_drivers"],
            "Model_Version__c": f"{r['clv_model_version']} + {r['churn_model_version']}",
            "Scored_At__c": r["scored_at"].strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        }
    return out


def assert_org_equals(env, expected: dict[str, dict]) -> None:
    """The org equals ``expected`` exactly, and equals the outbox's last acknowledged push exactly."""
    pushed = intended(env)
    assert set(pushed) == set(expected)
    for hh, want in expected.items():  # the planner's rounding (half away from zero) vs Python's
        for field, value in want.items():
            got = pushed[hh][field]
            assert got == (pytest.approx(value, abs=0.0501) if isinstance(value, float) else value), (hh, field)
    accounts = env.accounts()
    assert len(accounts) == N_HOUSEHOLDS  # upserts never created an Account
    for hh, account in accounts.items():
        want = pushed.get(hh)
        if want is None:
            assert all(account[f] is None for f in OUTPUT_FIELDS), f"{hh} must not be written"
            continue
        for field in OUTPUT_FIELDS:
            got = account[field]
            if field == "Scored_At__c":
                assert got is not None and got[:19] == want[field][:19], (hh, field, got)
            elif isinstance(want[field], float):
                assert got == pytest.approx(want[field], abs=1e-6), (hh, field, got)
            else:
                assert got == want[field], (hh, field, got)


def outbox_counts(env) -> dict[str, int]:
    con = env.db()
    try:
        return dict(con.execute("select status, count(*) from activation.outbox "
                                "where target = 'salesforce' group by 1").fetchall())
    finally:
        con.close()


def test_plan_send_and_rerun_is_zero_calls(env):
    rows = household_scores(seed=1)
    write_household_scores(env.warehouse, rows)
    first = plan_salesforce("run-1", cfg=env.cfg)
    consented = sum(r["has_analytics_consent"] for r in rows)
    at_risk = sum(r["has_analytics_consent"] and r["segment"] == AT_RISK_SEGMENT for r in rows)
    assert first.enqueued == {"Account": consented, "Task": at_risk}
    assert first.skipped_no_consent == N_HOUSEHOLDS - consented
    # re-planning the same run adds nothing
    assert plan_salesforce("run-1", cfg=env.cfg).enqueued == {"Account": 0, "Task": 0}

    report = send(env)
    assert report.sent == consented + at_risk and report.failed == report.dead == 0
    assert report.api_calls > 0
    assert_org_equals(env, desired_from_marts(rows))
    assert set(intended(env)) == set(desired_from_marts(rows))
    tasks = env.tasks()
    assert len(tasks) == at_risk
    at_risk_accounts = {r["account_id"] for r in rows if r["has_analytics_consent"] and r["segment"] == AT_RISK_SEGMENT}
    assert {t["WhatId"] for t in tasks} == at_risk_accounts

    # nothing new: a new run plans nothing and the send makes zero API calls
    env.reset_stats()
    assert plan_salesforce("run-2", cfg=env.cfg).enqueued == {"Account": 0, "Task": 0}
    again = send(env)
    assert again.api_calls == 0 and again.sent == 0
    stats = env.stats("salesforce")
    assert stats["total_requests"] == 0 and stats["total_writes"] == 0


def test_only_material_changes_are_sent_and_tasks_once_per_30_days(env):
    rows = household_scores(seed=2)
    write_household_scores(env.warehouse, rows)
    plan_salesforce("day-1", cfg=env.cfg)
    send(env)
    tasks_before = len(env.tasks())

    # next day: tiny drift everywhere (not material), five households move segment
    later = SCORED_AT + timedelta(days=1)
    moved = [r["household_id"] for r in rows if r["has_analytics_consent"] and r["segment"] != AT_RISK_SEGMENT][:5]
    day2 = []
    for r in rows:
        r2 = {**r, "scored_at": later, "scoring_run_id": "score-2",
              "predicted_revenue_12m": r["predicted_revenue_12m"] * 1.001,
              "value_percentile": r["value_percentile"] + 0.2}
        if r["household_id"] in moved:
            r2["segment"] = AT_RISK_SEGMENT
        day2.append(r2)
    write_household_scores(env.warehouse, day2)
    plan = plan_salesforce("day-2", cfg=env.cfg)
    assert plan.enqueued == {"Account": 5, "Task": 5}
    env.reset_stats()
    report = send(env)
    assert report.sent == 10
    assert len(env.tasks()) == tasks_before + 5
    accounts = env.accounts()
    assert all(accounts[h]["Segment__c"] == AT_RISK_SEGMENT for h in moved)

    # day 3: they leave the segment, day 4: they enter again -> no second Task within 30 days
    for day, segment in ((2, "Core - Maintain"), (3, AT_RISK_SEGMENT)):
        rows_n = [{**r, "scored_at": SCORED_AT + timedelta(days=day),
                   **({"segment": segment} if r["household_id"] in moved else {})} for r in day2]
        write_household_scores(env.warehouse, rows_n)
        plan = plan_salesforce(f"day-{day + 1}", cfg=env.cfg)
        assert plan.enqueued == {"Account": 5, "Task": 0}
        send(env)
    assert len(env.tasks()) == tasks_before + 5

    # 31 days later, entering again raises one new Task each
    rows_n = [{**r, "scored_at": SCORED_AT + timedelta(days=32),
               **({"segment": "Core - Maintain"} if r["household_id"] in moved else {})} for r in day2]
    write_household_scores(env.warehouse, rows_n)
    plan_salesforce("day-33", cfg=env.cfg)
    send(env)
    rows_n = [{**r, "scored_at": SCORED_AT + timedelta(days=33)} for r in day2]
    write_household_scores(env.warehouse, rows_n)
    assert plan_salesforce("day-34", cfg=env.cfg).enqueued["Task"] == 5
    send(env)
    assert len(env.tasks()) == tasks_before + 10
    # the org equals the last acknowledged push; immaterial drift (0.1 %) was never sent
    pushed = intended(env)
    assert_org_equals(env, {k: {f: v[f] for f in OUTPUT_FIELDS} for k, v in pushed.items()})
    assert all(pushed[h]["Segment__c"] == AT_RISK_SEGMENT for h in moved)
    assert all(pushed[r["household_id"]]["Value_12M__c"] == round(r["predicted_revenue_12m"], 2)
               for r in rows if r["has_analytics_consent"] and r["household_id"] not in moved)
    assert all(pushed[r["household_id"]]["Value_12M__c"] == round(r["predicted_revenue_12m"], 2)
               for r in day2 if r["household_id"] in moved)


def test_kill_switch_counts_zero_writes(env, monkeypatch):
    rows = household_scores(seed=3)
    write_household_scores(env.warehouse, rows)
    monkeypatch.setenv("NORTHSTAR_KILL_SWITCH", "true")
    from northstar import settings as settings_module

    settings_module.reset_cache()
    killed_cfg = settings_module.settings()
    plan = plan_salesforce("run-k", cfg=killed_cfg)  # planning still runs: the outbox keeps the intent
    assert plan.enqueued["Account"] > 0
    env.reset_stats()
    report = send_salesforce(cfg=killed_cfg, connect=env.sf_connect(), limits=SMALL, retry=FAST_RETRY)
    assert report.kill_switch and report.sent == 0 and report.api_calls == 0
    stats = env.stats("salesforce")
    assert stats["total_writes"] == 0 and stats["total_requests"] == 0
    assert outbox_counts(env) == {"pending": plan.enqueued["Account"] + plan.enqueued["Task"]}
    assert all(a["Segment__c"] is None for a in env.accounts().values())

    monkeypatch.delenv("NORTHSTAR_KILL_SWITCH")
    settings_module.reset_cache()
    report = send(env)
    assert report.sent == plan.enqueued["Account"] + plan.enqueued["Task"]
    assert_org_equals(env, desired_from_marts(rows))


@pytest.mark.parametrize("limits", [SMALL, BULK], ids=["collections", "bulk"])
def test_api_limit_mid_job_backs_off_and_resumes(env, limits):
    rows = household_scores(seed=4)
    write_household_scores(env.warehouse, rows)
    plan_salesforce("run-l", cfg=env.cfg)
    # the daily limit is hit after 3 calls; it "resets" while the sender backs off
    env.faults("salesforce", {"api_limit_after": 3})
    sleeps = []

    def sleep(seconds):
        sleeps.append(seconds)
        if len(sleeps) == 2:
            env.faults("salesforce", {"reset": True})

    report = send(env, limits=limits, sleep=sleep)
    assert not report.interrupted and report.failed == report.dead == 0
    assert len(sleeps) >= 2
    assert_org_equals(env, desired_from_marts(rows))


@pytest.mark.parametrize("limits", [SMALL, BULK], ids=["collections", "bulk"])
def test_api_limit_outlasting_backoff_resumes_next_run(env, limits):
    rows = household_scores(seed=5)
    write_household_scores(env.warehouse, rows)
    plan = plan_salesforce("run-m", cfg=env.cfg)
    total = plan.enqueued["Account"] + plan.enqueued["Task"]
    env.faults("salesforce", {"api_limit_after": 4})
    report = send(env, limits=limits)
    assert report.interrupted and report.sent < total and report.dead == 0
    counts = outbox_counts(env)
    assert counts.get("pending", 0) + counts.get("sent", 0) == total
    env.faults("salesforce", {"reset": True})
    resumed = send(env, limits=limits)
    assert resumed.sent == total - report.sent
    assert_org_equals(env, desired_from_marts(rows))


def test_503_and_expired_session(env):
    rows = household_scores(seed=6)
    write_household_scores(env.warehouse, rows)
    plan_salesforce("run-f", cfg=env.cfg)
    env.faults("salesforce", {"unavailable": 2})
    report = send(env)
    assert not report.interrupted and report.failed == 0
    # a new change, sent while the session expires mid-run: one re-login, nothing lost
    rows2 = [{**r, "segment": "Service Efficiently", "scored_at": SCORED_AT + timedelta(days=1)} for r in rows]
    write_household_scores(env.warehouse, rows2)
    plan_salesforce("run-g", cfg=env.cfg)
    env.reset_stats()
    env.faults("salesforce", {"expire_session": 1, "unavailable": 1})
    report = send(env, limits=BULK)
    assert not report.interrupted and report.failed == 0
    assert env.stats("salesforce")["requests"].get("POST soap-login") == 2  # the login and one re-login
    before, after = desired_from_marts(rows), desired_from_marts(rows2)
    assert_org_equals(env, {k: after[k] if before[k]["Segment__c"] != "Service Efficiently" else before[k]
                            for k in before})


@pytest.mark.parametrize("limits", [SMALL, BULK], ids=["collections", "bulk"])
def test_per_record_failures_retry_then_dead(env, limits):
    rows = household_scores(seed=7)
    write_household_scores(env.warehouse, rows)
    plan_salesforce("run-r", cfg=env.cfg)
    consented = [r["household_id"] for r in rows if r["has_analytics_consent"]]
    flaky, broken = consented[:2], consented[2:4]
    env.faults("salesforce", {"fail_records": {"values": flaky + broken, "code": "UNABLE_TO_LOCK_ROW",
                                               "field": "Household_Id__c"}})
    first = send(env, limits=limits)
    assert first.failed == 4 and first.dead == 0
    con = env.db()
    errors = con.execute("select record_key, status, attempts, last_error from activation.outbox "
                         "where status = 'failed' order by record_key").fetchall()
    con.close()
    assert [e[0] for e in errors] == sorted(flaky + broken)
    assert all(e[2] == 1 and "UNABLE_TO_LOCK_ROW" in e[3] for e in errors)

    # next run: the flaky ones succeed now, the broken ones fail again until the attempt limit
    env.faults("salesforce", {"fail_records": {"values": broken, "code": "DUPLICATE_VALUE",
                                               "field": "Household_Id__c"}})
    second = send(env, limits=limits)
    assert second.sent == 2 and second.failed == 2
    third = send(env, limits=limits)
    assert third.dead == 2 and third.failed == 0
    con = env.db()
    summary = outbox.status_summary(con)
    con.close()
    assert sorted(d["record_key"] for d in summary["dead"]) == sorted(broken)
    assert all(d["attempts"] == 3 and "DUPLICATE_VALUE" in d["last_error"] for d in summary["dead"])
    # dead rows are not retried, and nothing else is open: zero calls
    assert send(env, limits=limits).api_calls == 0
    expected = {k: v for k, v in desired_from_marts(rows).items() if k not in broken}
    assert_org_equals(env, expected)


@pytest.mark.parametrize("limits", [SMALL, BULK], ids=["collections", "bulk"])
def test_killed_between_send_and_ack_does_not_duplicate(env, limits):
    rows = household_scores(seed=8)
    write_household_scores(env.warehouse, rows)
    plan = plan_salesforce("run-c", cfg=env.cfg)
    calls = []

    def crash_second_account_write(target, obj, ids):
        calls.append(len(ids))
        if len(calls) == 2:
            raise Crash("killed after the write, before the ack")

    def crash_on_tasks(target, obj, ids):
        if obj == "Task":
            raise Crash("killed after the Task write, before the ack")

    with pytest.raises(Crash):
        send(env, limits=limits, after_write=crash_second_account_write)
    assert outbox_counts(env).get("sending", 0) > 0
    with pytest.raises(Crash):  # the rerun finishes the Accounts, then dies on the Tasks
        send(env, limits=limits, after_write=crash_on_tasks)
    counts = outbox_counts(env)
    assert counts["sending"] > 0 and counts["sending"] + counts.get("pending", 0) == plan.enqueued["Task"]
    report = send(env, limits=limits)
    assert report.failed == report.dead == 0 and report.sent == plan.enqueued["Task"]
    assert outbox_counts(env) == {"sent": plan.enqueued["Account"] + plan.enqueued["Task"]}
    assert_org_equals(env, desired_from_marts(rows))
    assert len(env.tasks()) == plan.enqueued["Task"]  # upsert by Northstar_Key__c: no duplicate Task


def test_consent_withdrawn_between_plan_and_send(env):
    rows = household_scores(seed=9)
    write_household_scores(env.warehouse, rows)
    plan_salesforce("run-w", cfg=env.cfg)
    withdrawn = [r["household_id"] for r in rows if r["has_analytics_consent"]][:3]
    write_household_scores(env.warehouse, [
        {**r, "has_analytics_consent": False} if r["household_id"] in withdrawn else r for r in rows])
    report = send(env)
    assert report.detail["cancelled_no_consent"] >= 3
    expected = {k: v for k, v in desired_from_marts(rows).items() if k not in withdrawn}
    assert_org_equals(env, expected)


def test_failed_bulk_job_is_retried_next_run(env):
    rows = household_scores(seed=10)
    write_household_scores(env.warehouse, rows)
    plan = plan_salesforce("run-b", cfg=env.cfg)
    env.faults("salesforce", {"fail_bulk_job": "InvalidBatch : sandbox says no", "in_progress_polls": 2})
    first = send(env, limits=BULK)
    assert first.failed > 0 and first.sent == plan.enqueued["Account"] + plan.enqueued["Task"] - first.failed
    con = env.db()
    errors = [e for (e,) in con.execute("select last_error from activation.outbox where status = 'failed'").fetchall()]
    con.close()
    assert errors and all("sandbox says no" in e for e in errors)
    second = send(env, limits=BULK)
    assert second.sent == first.failed and second.failed == 0
    assert_org_equals(env, desired_from_marts(rows))
