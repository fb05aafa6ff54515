"""ServiceNow incidents from the break register through the outbox, against the sandbox instance.

Exactly one incident per break whatever the reruns, faults (429 limit, 503) or a kill between the
write and its acknowledgement; updated when the break changes, resolved with close info when it
clears, reopened (or re-raised after a close) when it comes back; people's resolutions land as
labels (the round trip: activate raises, people resolve, ``ingest.servicenow.read_back`` lands them);
the kill switch makes zero requests. Every test runs twice: through the Batch API (two sub-requests a
call, so a handful of rows spans several calls) and through the Table API alone (batch size 0).
The Batch API's own cases (call bound, partial failures, 404 fallback, lost answers) are in
``test_servicenow_batch.py``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

import polars as pl
import pytest
import requests
from activation_world import FAST_RETRY, break_scores, trade_breaks, write_breaks

from activate.config import SendLimits
from activate.priority import impact_urgency
from activate.servicenow import AUTO_CLOSE_CODE, plan_servicenow, send_servicenow
from ingest.servicenow import read_back
from sandbox.servicenow.store import group_sys_id

pytestmark = pytest.mark.integration

LIMITS = SendLimits(max_attempts=3, lookup_chunk=3, batch_lookup_chunk=3)


class Crash(BaseException):
    pass


@pytest.fixture(autouse=True, params=["batch", "table"])
def servicenow_api(request, monkeypatch):
    """The setting the sender reads (set before ``env`` loads the settings)."""
    monkeypatch.setenv("NORTHSTAR_SERVICENOW_BATCH_SIZE", "2" if request.param == "batch" else "0")
    return request.param


def send(env, **kw):
    return send_servicenow(cfg=env.cfg, endpoint=env.sn_endpoint(), limits=kw.pop("limits", LIMITS),
                           retry=FAST_RETRY, sleep=kw.pop("sleep", lambda s: None), **kw)


def incidents(env) -> list[dict]:
    return env.handle.servicenow_app.store.rows("incident", "", [], "", None, 0)


def by_correlation(env) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for row in incidents(env):
        out.setdefault(row["correlation_id"], []).append(row)
    return out


def assert_one_active_per_open_break(env, breaks: list[dict]) -> None:
    found = by_correlation(env)
    for b in breaks:
        rows = found.get(b["incident_correlation_id"], [])
        active = [r for r in rows if r["state"] in {"1", "2", "3"}]
        if b["status"] == "open":
            assert len(active) == 1, (b["break_key"], rows)
        else:
            assert not active, (b["break_key"], rows)
    assert set(found) <= {b["incident_correlation_id"] for b in breaks}


def person(env):
    """A person working incidents in the ServiceNow UI (the same API underneath)."""
    creds = env.handle.credentials["servicenow"]
    session = requests.Session()
    session.trust_env = False
    session.verify = str(env.handle.ca_cert)
    session.auth = (creds["username"], creds["password"])
    return session


def test_one_incident_per_break_and_rerun_zero_calls(env, servicenow_api):
    breaks = trade_breaks(8)
    write_breaks(env.warehouse, breaks, break_scores(breaks))
    plan = plan_servicenow("run-1", cfg=env.cfg)
    assert plan.enqueued["incident"] == 8
    assert plan_servicenow("run-1", cfg=env.cfg).enqueued["incident"] == 0
    report = send(env)
    assert report.sent == 8 and report.failed == 0 and report.detail["api"] == servicenow_api
    found = by_correlation(env)
    assert len(incidents(env)) == 8
    scores = {s["break_key"]: s for s in break_scores(breaks)}
    for b in breaks:
        (incident,) = found[b["incident_correlation_id"]]
        impact, urgency = impact_urgency({**b, **scores[b["break_key"]]})
        assert (incident["impact"], incident["urgency"]) == (str(impact), str(urgency))
        assert incident["state"] == "1" and incident["correlation_display"] == "NORTHSTAR_RECON"
        text = incident["description"]
        for needle in (b["internal_value"], b["broker_value"], b["break_type"], f"Age: {b['age_business_days']}",
                       f"{scores[b['break_key']]['anomaly_score']:.3f}"):
            assert str(needle) in text
        assert incident["assignment_group"] in {group_sys_id(n) for n in (
            "Trade Support - Equities", "Trade Support - Fixed Income", "Trade Support - FX",
            "Trade Support - Derivatives", "Middle Office")}
    equity = next(b for b in breaks if b["asset_class"] == "EQUITY" and b["break_type"] == "price")
    assert found[equity["incident_correlation_id"]][0]["assignment_group"] == group_sys_id("Trade Support - Equities")

    env.reset_stats()
    assert plan_servicenow("run-2", cfg=env.cfg).enqueued["incident"] == 0
    assert send(env).api_calls == 0
    assert env.stats("servicenow")["total_requests"] == 0


def test_without_scores_priority_from_type_and_amount(env):
    breaks = trade_breaks(4)
    write_breaks(env.warehouse, breaks)  # no fct_break_scores yet
    plan_servicenow("run-1", cfg=env.cfg)
    send(env)
    found = by_correlation(env)
    for b in breaks:
        (incident,) = found[b["incident_correlation_id"]]
        impact, urgency = impact_urgency({**b, "anomaly_score": None})
        assert (incident["impact"], incident["urgency"]) == (str(impact), str(urgency))
        assert "not scored" in incident["description"]


def test_update_resolve_reopen_and_reraise(env):
    breaks = trade_breaks(6)
    write_breaks(env.warehouse, breaks, break_scores(breaks))
    plan_servicenow("r1", cfg=env.cfg)
    send(env)

    # break 0 changes (a corrected value), break 1 clears
    changed = trade_breaks(6, cleared=(1,), values={0: ("101.25", "103.00")})
    write_breaks(env.warehouse, changed, break_scores(changed))
    plan = plan_servicenow("r2", cfg=env.cfg)
    assert plan.enqueued == {"incident": 2, "planned_resolve": 1, "planned_update": 1}
    send(env)
    found = by_correlation(env)
    (updated,) = found[changed[0]["incident_correlation_id"]]
    assert "103.00" in updated["description"] and int(updated["sys_mod_count"]) >= 1
    (resolved,) = found[changed[1]["incident_correlation_id"]]
    assert resolved["state"] == "6" and resolved["close_code"] == AUTO_CLOSE_CODE and resolved["close_notes"]
    assert_one_active_per_open_break(env, changed)

    # break 1 comes back: reopened, not duplicated
    write_breaks(env.warehouse, breaks, break_scores(breaks))
    assert plan_servicenow("r3", cfg=env.cfg).enqueued == {"incident": 2, "planned_reopen": 1, "planned_update": 1}
    send(env)
    found = by_correlation(env)
    (reopened,) = found[breaks[1]["incident_correlation_id"]]
    assert reopened["state"] == "2" and reopened["reopen_count"] == "1"

    # a person closes break 2's incident for good (state 7); the break clears and comes back: re-raised
    session = person(env)
    closed = found[breaks[2]["incident_correlation_id"]][0]
    session.patch(f"{env.handle.servicenow_url}/api/now/table/incident/{closed['sys_id']}",
                  json={"state": "7", "close_code": "Solution provided", "close_notes": "fixed by hand"}
                  ).raise_for_status()
    write_breaks(env.warehouse, trade_breaks(6, cleared=(2,)), None)
    plan_servicenow("r4", cfg=env.cfg)
    send(env)
    write_breaks(env.warehouse, breaks, None)
    plan_servicenow("r5", cfg=env.cfg)
    send(env)
    rows = by_correlation(env)[breaks[2]["incident_correlation_id"]]
    assert sorted(r["state"] for r in rows) == ["1", "7"]
    successor = next(r for r in rows if r["state"] == "1")
    assert successor["parent_incident"] == closed["sys_id"]
    assert_one_active_per_open_break(env, breaks)
    assert len(incidents(env)) == 7  # six breaks, one re-raised once


def test_faults_and_crash_never_duplicate(env):
    breaks = trade_breaks(9)
    write_breaks(env.warehouse, breaks, break_scores(breaks))
    plan_servicenow("run-1", cfg=env.cfg)
    # 503s then the rate limit mid-run; the limit lifts while the sender backs off
    env.faults("servicenow", {"unavailable": 2})
    sleeps = []

    def sleep(seconds):
        sleeps.append(seconds)
        if len(sleeps) == 4:
            env.faults("servicenow", {"reset": True})

    first = send(env, after_write=None, sleep=sleep)
    assert not first.interrupted and first.sent == 9
    assert len(incidents(env)) == 9

    # clears everything; the limit is hit after 4 calls and outlasts the back-off
    cleared = trade_breaks(9, cleared=tuple(range(9)))
    write_breaks(env.warehouse, cleared, break_scores(cleared))
    plan_servicenow("run-2", cfg=env.cfg)
    env.faults("servicenow", {"api_limit_after": 4})
    second = send(env)
    assert second.interrupted and 0 < second.sent < 9
    env.faults("servicenow", {"reset": True})
    third = send(env)
    assert second.sent + third.sent == 9
    assert all(r["state"] == "6" for r in incidents(env))

    # comes back; the process dies right after each write, before recording it
    write_breaks(env.warehouse, breaks, break_scores(breaks))
    plan_servicenow("run-3", cfg=env.cfg)
    writes = []

    def crash(target, obj, ids):
        writes.append(ids)
        if len(writes) in {2, 5}:
            raise Crash("killed between the write and the ack")

    for _ in range(2):
        with pytest.raises(Crash):
            send(env, after_write=crash)
    final = send(env, after_write=crash)
    assert final.failed == 0
    assert send(env).api_calls == 0
    counts = Counter(r["correlation_id"] for r in incidents(env))
    assert len(counts) == 9 and set(counts.values()) == {1}  # exactly one incident per break
    assert_one_active_per_open_break(env, breaks)


def test_kill_switch_zero_requests(env, monkeypatch):
    from northstar import settings as settings_module

    breaks = trade_breaks(5)
    write_breaks(env.warehouse, breaks, None)
    monkeypatch.setenv("NORTHSTAR_KILL_SWITCH", "1")
    settings_module.reset_cache()
    cfg = settings_module.settings()
    assert plan_servicenow("k", cfg=cfg).enqueued["incident"] == 5
    env.reset_stats()
    report = send_servicenow(cfg=cfg, endpoint=env.sn_endpoint(), limits=LIMITS, retry=FAST_RETRY)
    assert report.kill_switch and report.api_calls == 0 and report.open_rows == 5
    stats = env.stats("servicenow")
    assert stats["total_requests"] == 0 and stats["total_writes"] == 0
    assert incidents(env) == []


def test_read_back_lands_peoples_resolutions_incrementally(env):
    breaks = trade_breaks(6)
    write_breaks(env.warehouse, breaks, break_scores(breaks))
    plan_servicenow("r1", cfg=env.cfg)
    send(env)
    # Northstar resolves break 0 itself (it cleared); people resolve breaks 2 and 3
    write_breaks(env.warehouse, trade_breaks(6, cleared=(0,)), None)
    plan_servicenow("r2", cfg=env.cfg)
    send(env)
    session = person(env)
    found = by_correlation(env)
    codes = {2: "Solution provided", 3: "Duplicate"}
    for i, code in codes.items():
        sys_id = found[breaks[i]["incident_correlation_id"]][0]["sys_id"]
        session.patch(f"{env.handle.servicenow_url}/api/now/table/incident/{sys_id}",
                      json={"state": "6", "close_code": code, "close_notes": f"checked by ops ({code})"}
                      ).raise_for_status()
    first = read_back("rb-1", cfg=env.cfg, endpoint=env.sn_endpoint(), retry=FAST_RETRY)
    assert first["landed"] == 2
    landed = pl.read_parquet(first["path"])
    assert dict(zip(landed["break_key"], landed["close_code"], strict=True)) == {
        breaks[i]["break_key"]: code for i, code in codes.items()}
    assert landed["resolved_at"].null_count() == 0 and set(landed["state"]) == {"6"}
    manifest = pl.read_parquet(env.cfg.paths.landing / "_manifest" / "servicenow" / "rb-1.parquet")
    assert manifest["rows_landed"].to_list() == [2] and manifest["status"].to_list() == ["landed"]

    assert read_back("rb-2", cfg=env.cfg, endpoint=env.sn_endpoint(), retry=FAST_RETRY)["landed"] == 0
    sys_id = found[breaks[4]["incident_correlation_id"]][0]["sys_id"]
    session.patch(f"{env.handle.servicenow_url}/api/now/table/incident/{sys_id}",
                  json={"state": "7", "close_code": "Known error", "close_notes": "benign"}).raise_for_status()
    third = read_back("rb-3", cfg=env.cfg, endpoint=env.sn_endpoint(), retry=FAST_RETRY)
    assert third["landed"] == 1
    assert pl.read_parquet(third["path"])["close_code"].to_list() == ["Known error"]


def test_break_cleared_before_its_incident_was_sent_is_never_raised(env):
    breaks = trade_breaks(3)
    write_breaks(env.warehouse, breaks, None)
    plan_servicenow("p1", cfg=env.cfg)
    write_breaks(env.warehouse, trade_breaks(3, cleared=(0,)), None)
    plan = plan_servicenow("p2", cfg=env.cfg)
    assert plan.enqueued == {"incident": 1, "planned_resolve": 1}
    send(env, limits=replace(LIMITS, lookup_chunk=50, batch_lookup_chunk=50))
    assert breaks[0]["incident_correlation_id"] not in by_correlation(env)
    assert len(incidents(env)) == 2
