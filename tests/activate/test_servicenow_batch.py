"""The ServiceNow push through the Batch API, against the sandbox instance over HTTPS.

A send of N changes makes at most ceil(N / 100) + 5 calls (the client's count and the server's agree);
each sub-request's own status decides its outbox row (sent, failed with its reason, or kept for a
retry); a Batch API answering 404 hands the rest of the send to the Table API, logged once; an answer
lost after the instance applied the batch, or a batch the instance serviced only in part, never
makes a second incident. Faults come from the sandbox (``sandbox/faults.py``), not from mocks.
"""

from __future__ import annotations

import logging
import math
from collections import Counter

import pytest
from activation_world import FAST_RETRY, break_scores, trade_breaks, write_breaks

from activate.common import PushIncomplete
from activate.config import SendLimits
from activate.servicenow import plan_servicenow, send_servicenow

pytestmark = pytest.mark.integration

PRODUCTION = SendLimits(max_attempts=3, batch_size=100)  # the default sizes


def send(env, limits=PRODUCTION, **kw):
    return send_servicenow(cfg=env.cfg, endpoint=env.sn_endpoint(), limits=limits, retry=FAST_RETRY,
                           sleep=kw.pop("sleep", lambda s: None), **kw)


def incidents(env) -> list[dict]:
    return env.handle.servicenow_app.store.rows("incident", "", [], "", None, 0)


def one_per_break(env, breaks: list[dict]) -> dict[str, dict]:
    counts = Counter(r["correlation_id"] for r in incidents(env))
    assert counts == Counter(b["incident_correlation_id"] for b in breaks), "exactly one incident per break"
    return {r["correlation_id"]: r for r in incidents(env)}


def outbox_rows(env) -> dict[str, dict]:
    con = env.db()
    try:
        rows = con.execute("select record_key, status, attempts, last_error from activation.outbox "
                           "where target = 'servicenow' and status <> 'superseded'").fetchall()
    finally:
        con.close()
    return {key: {"status": s, "attempts": a, "last_error": e} for key, s, a, e in rows}


def test_calls_stay_within_the_bound(env):
    breaks = trade_breaks(250)
    write_breaks(env.warehouse, breaks, break_scores(breaks))
    assert plan_servicenow("run-1", cfg=env.cfg).enqueued["incident"] == 250
    env.reset_stats()
    first = send(env)
    assert first.sent == 250 and first.failed == 0 and first.detail["api"] == "batch"
    # one look-up call (the groups + a query of 250 ids) and three write calls of at most 100
    assert first.api_calls == 4 <= math.ceil(250 / 100) + 5
    assert first.detail["calls"] == {"lookup_calls": 1, "write_calls": 3, "unanswered": 0}
    stats = env.stats("servicenow")
    assert stats["api_calls"] == first.api_calls  # what the instance counted
    assert stats["writes"] == {"POST table/incident": 250}
    found = one_per_break(env, breaks)
    assert {r["state"] for r in found.values()} == {"1"}

    # 100 breaks change, 50 clear: 150 changes
    changed = trade_breaks(250, cleared=tuple(range(200, 250)),
                           values={i: ("101.25", "104.50") for i in range(0, 200, 2)})
    write_breaks(env.warehouse, changed, break_scores(changed))
    plan = plan_servicenow("run-2", cfg=env.cfg)
    assert plan.enqueued == {"incident": 150, "planned_resolve": 50, "planned_update": 100}
    env.reset_stats()
    second = send(env)
    assert second.sent == 150 and second.api_calls == 3 <= math.ceil(150 / 100) + 5
    assert env.stats("servicenow")["writes"] == {"PATCH table/incident": 150}
    found = one_per_break(env, breaks)
    assert sum(r["state"] == "6" for r in found.values()) == 50
    assert all("104.5" in found[b["incident_correlation_id"]]["description"] for b in changed[0:200:2])

    env.reset_stats()
    assert plan_servicenow("run-3", cfg=env.cfg).enqueued["incident"] == 0
    assert send(env).api_calls == 0 and env.stats("servicenow")["total_requests"] == 0


def test_partial_batch_failure_keeps_the_rows_and_a_rerun_completes_them(env):
    breaks = trade_breaks(30)
    write_breaks(env.warehouse, breaks, break_scores(breaks))
    plan_servicenow("run-1", cfg=env.cfg)
    key = {i: b["incident_correlation_id"] for i, b in enumerate(breaks)}
    small = SendLimits(max_attempts=3, lookup_chunk=10, batch_lookup_chunk=10, batch_size=10)

    # a data policy refuses two records: the other 28 go through, the two fail with the instance's reason
    env.faults("servicenow", {"fail_records": {"values": [key[3], key[17]], "status": 400,
                                              "message": "Data Policy Exception: Assignment group is mandatory"}})
    first = send(env, limits=small)
    assert (first.sent, first.failed, first.dead, first.open_rows, first.interrupted) == (28, 2, 0, 2, False)
    rows = outbox_rows(env)
    for i in (3, 17):
        assert rows[breaks[i]["break_key"]]["status"] == "failed"
        assert "Data Policy Exception: Assignment group is mandatory" in rows[breaks[i]["break_key"]]["last_error"]
    assert len(incidents(env)) == 28

    # the instance is overloaded for one of them (503 inside the batch): retried after a back-off, in
    # the same send, until the policy gives up; the row stays in the outbox (pending), the task fails
    env.faults("servicenow", {"reset": True, "fail_records": {"values": [key[3]], "status": 503}})
    sleeps = []
    with pytest.raises(PushIncomplete) as info:
        send(env, limits=small, sleep=sleeps.append, raise_on_incomplete=True)
    second = info.value.report
    assert (second.sent, second.released, second.interrupted, second.open_rows) == (1, 1, True, 1)
    assert len(sleeps) == FAST_RETRY.max_attempts - 1  # passes under the client's retry policy
    row = outbox_rows(env)[breaks[3]["break_key"]]
    assert row["status"] == "pending" and "503" in row["last_error"]

    # the same fault, lifted while the sender backs off: delivered within the send
    env.faults("servicenow", {"fail_records": {"values": [key[3]], "status": 503}})
    sleeps.clear()
    third = send(env, limits=small, sleep=lambda s: (sleeps.append(s), env.faults("servicenow", {"reset": True})))
    assert (third.sent, third.open_rows, third.interrupted, len(sleeps)) == (1, 0, False, 1)
    one_per_break(env, breaks)
    assert {r["status"] for r in outbox_rows(env).values()} == {"sent"}
    assert send(env).api_calls == 0


def test_batch_api_404_falls_back_to_the_table_api(env, caplog):
    breaks = trade_breaks(12)
    write_breaks(env.warehouse, breaks, break_scores(breaks))
    plan_servicenow("run-1", cfg=env.cfg)
    env.faults("servicenow", {"batch_unavailable": True})
    env.reset_stats()
    with caplog.at_level(logging.WARNING, logger="activate.servicenow"):
        report = send(env)
    assert report.sent == 12 and report.detail["api"] == "table" and "404" in report.detail["batch_api_unavailable"]
    # the one 404, the groups, one look-up of 12 ids, then one call per write
    assert report.api_calls == 1 + 1 + 1 + 12 == env.stats("servicenow")["api_calls"]
    assert len([r for r in caplog.records if "Batch API is not available" in r.getMessage()]) == 1
    one_per_break(env, breaks)

    # the next send tries the Batch API again
    env.faults("servicenow", {"reset": True})
    cleared = trade_breaks(12, cleared=(0, 1, 2))
    write_breaks(env.warehouse, cleared, break_scores(cleared))
    plan_servicenow("run-2", cfg=env.cfg)
    again = send(env)
    assert again.sent == 3 and again.detail["api"] == "batch" and again.api_calls == 2


def test_a_lost_batch_answer_is_adopted_not_written_twice(env):
    breaks = trade_breaks(40)
    write_breaks(env.warehouse, breaks, break_scores(breaks))
    plan_servicenow("run-1", cfg=env.cfg)
    # the instance applies the write batch, and the answer never arrives
    env.faults("servicenow", {"lose_responses": 1})
    env.reset_stats()
    sleeps = []
    report = send(env, sleep=sleeps.append)
    assert report.sent == 40 and report.failed == 0 and not report.interrupted and len(sleeps) == 1
    assert report.detail["actions"] == {"create": 40, "none": 40}  # created once, then found and adopted
    assert report.detail["calls"] == {"lookup_calls": 2, "write_calls": 1, "unanswered": 1}
    stats = env.stats("servicenow")
    assert stats["writes"] == {"POST table/incident": 40}
    assert report.api_calls == 3 == stats["api_calls"]  # the unanswered call counts: the instance got it
    found = one_per_break(env, breaks)
    con = env.db()
    acked = dict(con.execute("select record_key, external_ref from activation.pushed_state").fetchall())
    con.close()
    assert acked == {b["break_key"]: found[b["incident_correlation_id"]]["sys_id"] for b in breaks}

    # the same for updates: ten breaks clear, the resolve batch's answer is lost
    cleared = trade_breaks(40, cleared=tuple(range(10)))
    write_breaks(env.warehouse, cleared, break_scores(cleared))
    plan_servicenow("run-2", cfg=env.cfg)
    env.faults("servicenow", {"lose_responses": 1})
    env.reset_stats()
    report = send(env)
    assert report.sent == 10 and report.detail["actions"] == {"patch": 10, "none": 10}
    assert env.stats("servicenow")["writes"] == {"PATCH table/incident": 10}
    assert sum(r["state"] == "6" for r in one_per_break(env, breaks).values()) == 10


def test_unserviced_requests_are_sent_again(env):
    breaks = trade_breaks(40)
    write_breaks(env.warehouse, breaks, break_scores(breaks))
    plan_servicenow("run-1", cfg=env.cfg)
    env.faults("servicenow", {"batch_serve_limit": 15})  # the instance's time limit, reached after 15
    sleeps = []
    report = send(env, sleep=sleeps.append)
    assert report.sent == 40 and not report.interrupted and sleeps == []  # progress each time: no back-off
    assert report.detail["calls"]["write_calls"] == 3  # 15 + 15 + 10
    one_per_break(env, breaks)
