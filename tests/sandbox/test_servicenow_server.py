"""The sandbox ServiceNow server driven by the real pysnc client and plain requests over HTTPS."""

from __future__ import annotations

import pytest
from pysnc import ServiceNowClient
from pysnc.exceptions import RequestException, UpdateException

from tests.sandbox.conftest import get_stats, set_faults

pytestmark = pytest.mark.integration


@pytest.fixture
def client(sandbox, tls_session) -> ServiceNowClient:
    creds = sandbox.credentials["servicenow"]
    tls_session.auth = (creds["username"], creds["password"])
    return ServiceNowClient(sandbox.servicenow_url, tls_session)


@pytest.fixture
def api(sandbox, tls_session):
    creds = sandbox.credentials["servicenow"]
    tls_session.auth = (creds["username"], creds["password"])
    tls_session.headers["Accept"] = "application/json"
    return tls_session


def _insert(client, correlation_id: str, **fields) -> str:
    gr = client.GlideRecord("incident")
    gr.initialize()
    gr.short_description = f"Break {correlation_id}"
    gr.correlation_id = correlation_id
    gr.correlation_display = "TRADE_RECON"
    for name, value in fields.items():
        setattr(gr, name, value)
    return gr.insert()


def test_insert_returns_a_full_record(client, sandbox):
    sys_id = _insert(client, "BRK-INS", urgency=1, impact=2, assignment_group="Trade Support - FX")
    gr = client.GlideRecord("incident")
    assert gr.get(sys_id)
    assert len(sys_id) == 32 and gr.get_value("number").startswith("INC")
    assert gr.priority == "2" and gr.state == "1" and gr.active == "true"
    assert gr.assignment_group.get_display_value() == "Trade Support - FX"
    assert gr.close_code == "" and gr.sys_created_on != ""


def test_query_iterates_past_a_page(client):
    for i in range(5):
        _insert(client, f"BRK-PAGE-{i}")
    gr = client.GlideRecord("incident", batch_size=2)
    gr.add_query("correlation_id", "STARTSWITH", "BRK-PAGE-")
    gr.query()
    assert len(gr) == 5
    assert sorted(r.correlation_id for r in gr) == [f"BRK-PAGE-{i}" for i in range(5)]


def test_update_resolve_requires_close_info(client, sandbox, tls_session):
    sys_id = _insert(client, "BRK-RESOLVE")
    gr = client.GlideRecord("incident")
    assert gr.get(sys_id)
    gr.state = 6
    with pytest.raises((RequestException, UpdateException)) as info:
        gr.update()
    assert "mandatory" in str(info.value)
    gr = client.GlideRecord("incident")
    gr.get(sys_id)
    gr.state = 6
    gr.close_code = "Solution provided"
    gr.close_notes = "auto-resolved: break cleared"
    gr.update()
    again = client.GlideRecord("incident")
    again.get(sys_id)
    assert again.state == "6" and again.resolved_at != "" and again.active == "true"
    again.state = 2
    again.update()
    reopened = client.GlideRecord("incident")
    reopened.get(sys_id)
    assert reopened.reopen_count == "1" and reopened.resolved_at == ""
    reopened.state = 7
    reopened.update()
    closed = client.GlideRecord("incident")
    closed.get(sys_id)
    assert closed.active == "false" and closed.closed_at != ""
    assert get_stats(sandbox, "servicenow", tls_session)["writes"]["POST table/incident"] == 1


def test_plain_requests_list_headers_and_query(api, sandbox):
    url = f"{sandbox.servicenow_url}/api/now/v2/table/incident"
    for i in range(3):
        assert api.post(url, json={"short_description": f"q{i}", "correlation_id": f"BRK-Q-{i}",
                                   "urgency": "2", "impact": "2"}).status_code == 201
    response = api.get(url, params={
        "sysparm_query": "correlation_idSTARTSWITHBRK-Q-^stateNOT IN7,8^ORDERBYDESCcorrelation_id^bogus_partXX",
        "sysparm_limit": 2, "sysparm_fields": "sys_id,number,correlation_id,priority"})
    assert response.status_code == 200
    assert response.headers["X-Total-Count"] == "3"
    assert 'rel="next"' in response.headers["Link"] and "sysparm_offset=2" in response.headers["Link"]
    rows = response.json()["result"]
    assert [r["correlation_id"] for r in rows] == ["BRK-Q-2", "BRK-Q-1"]
    assert set(rows[0]) == {"sys_id", "number", "correlation_id", "priority"} and rows[0]["priority"] == "3"
    either = api.get(url, params={"sysparm_query": "correlation_id=BRK-Q-0^ORcorrelation_id=BRK-Q-1",
                                  "sysparm_display_value": "all"}).json()["result"]
    assert len(either) == 2 and either[0]["state"] == {"display_value": "New", "value": "1"}
    created = api.post(url, json={"short_description": "x"})
    assert created.headers["Location"].endswith(created.json()["result"]["sys_id"])
    sys_id = created.json()["result"]["sys_id"]
    assert api.put(f"{url}/{sys_id}", json={"description": "d"}).json()["result"]["description"] == "d"
    assert api.delete(f"{url}/{sys_id}").status_code == 204
    missing = api.get(f"{url}/{sys_id}")
    assert missing.status_code == 404 and missing.json()["status"] == "failure"
    groups = api.get(f"{sandbox.servicenow_url}/api/now/table/sys_user_group").json()["result"]
    assert "Trade Support - Equities" in {g["name"] for g in groups}
    assert api.post(f"{sandbox.servicenow_url}/api/now/table/sys_user_group", json={"name": "x"}).status_code == 403


def test_auth_faults_and_batch(api, sandbox, tls_session):
    url = f"{sandbox.servicenow_url}/api/now/table/incident"
    assert tls_session.get(url, auth=("nobody", "wrong")).status_code == 401
    set_faults(sandbox, "servicenow", {"api_limit_after": 0}, tls_session)
    assert api.get(url).status_code == 429
    set_faults(sandbox, "servicenow", {"reset": True, "unavailable": 1}, tls_session)
    assert api.get(url).status_code == 503
    assert api.get(url, params={"sysparm_limit": 1}).status_code == 200
    import base64
    import json

    body = {"batch_request_id": 7, "rest_requests": [{
        "id": "a", "method": "POST", "url": "/api/now/table/incident",
        "headers": [{"name": "Content-Type", "value": "application/json"}],
        "body": base64.b64encode(json.dumps({"short_description": "from batch"}).encode()).decode()}]}
    result = api.post(f"{sandbox.servicenow_url}/api/now/v1/batch", json=body).json()
    assert result["batch_request_id"] == "7"
    assert result["serviced_requests"][0]["status_code"] == 201
    inner = json.loads(base64.b64decode(result["serviced_requests"][0]["body"]))
    assert inner["result"]["short_description"] == "from batch"


def _batch(api, sandbox, items, path="/api/now/v1/batch"):
    import base64
    import json

    rest = []
    for n, (method, url, body) in enumerate(items):
        item = {"id": f"r{n}", "method": method, "url": url, "exclude_response_headers": n % 2 == 0,
                "headers": [{"name": "Content-Type", "value": "application/json"},
                            {"name": "Accept", "value": "application/json"}]}
        if body is not None:
            item["body"] = base64.b64encode(json.dumps(body).encode()).decode()
        rest.append(item)
    return api.post(f"{sandbox.servicenow_url}{path}", json={"batch_request_id": "b1", "rest_requests": rest})


def test_batch_api_as_the_docs_describe_it(api, sandbox, tls_session):
    """POST /api/now/v1/batch only; each sub-request answered on its own; limits leave requests unserviced."""
    import base64
    import json

    create = ("POST", "/api/now/table/incident?sysparm_fields=sys_id,correlation_id", {"correlation_id": "BRK-B-1"})
    missing = ("PATCH", "/api/now/table/incident/" + "0" * 32, {"description": "x"})
    for path in ("/api/now/batch", "/api/now/v2/batch"):  # only the v1 path exists on an instance
        wrong = _batch(api, sandbox, [create], path)
        assert wrong.status_code == 400 and wrong.json()["error"]["message"] == \
            "Requested URI does not represent any resource"
    assert api.post(f"{sandbox.servicenow_url}/api/now/v1/batch", json={"batch_request_id": "x"}).status_code == 400

    answer = _batch(api, sandbox, [create, missing, ("GET", "/api/now/table/incident?correlation_id=BRK-B-1", None)])
    assert answer.status_code == 200
    data = answer.json()
    assert data["batch_request_id"] == "b1" and data["unserviced_requests"] == []
    created, refused, listed = data["serviced_requests"]
    assert (created["id"], created["status_code"], created["status_text"]) == ("r0", 201, "Created")
    assert "headers" not in created and {"name": "Content-Type", "value": "application/json"} in refused["headers"]
    assert json.loads(base64.b64decode(created["body"]))["result"]["correlation_id"] == "BRK-B-1"
    assert (refused["status_code"], refused["status_text"], refused["error_message"]) == (
        404, "Not Found", "No Record found")
    assert json.loads(base64.b64decode(listed["body"]))["result"][0]["correlation_id"] == "BRK-B-1"

    # a batch that reaches the instance's limit services what it can and lists the rest
    set_faults(sandbox, "servicenow", {"batch_serve_limit": 1}, tls_session)
    data = _batch(api, sandbox, [create, create, create]).json()
    assert [s["id"] for s in data["serviced_requests"]] == ["r0"] and data["unserviced_requests"] == ["r1", "r2"]
    # an instance without the Batch API; the Table API still answers
    set_faults(sandbox, "servicenow", {"reset": True, "batch_unavailable": True}, tls_session)
    assert _batch(api, sandbox, [create]).status_code == 404
    assert api.get(f"{sandbox.servicenow_url}/api/now/table/incident", params={"sysparm_limit": 1}).status_code == 200
    assert get_stats(sandbox, "servicenow", tls_session)["writes"]["POST table/incident"] == 2


def test_lost_answer_and_per_record_faults(api, sandbox, tls_session):
    import requests

    url = f"{sandbox.servicenow_url}/api/now/table/incident"
    set_faults(sandbox, "servicenow", {"lose_responses": 1}, tls_session)
    assert api.get(url, params={"sysparm_limit": 1}).status_code == 200  # reads are answered
    with pytest.raises(requests.ConnectionError):  # applied, then the connection closes unanswered
        api.post(url, json={"correlation_id": "BRK-LOST"})
    assert api.post(url, json={"correlation_id": "BRK-LOST-2"}).status_code == 201  # one-shot
    found = api.get(url, params={"sysparm_query": "correlation_idSTARTSWITHBRK-LOST"}).json()["result"]
    assert sorted(r["correlation_id"] for r in found) == ["BRK-LOST", "BRK-LOST-2"]

    set_faults(sandbox, "servicenow", {"fail_records": {"values": ["BRK-LOST", "BRK-NEW"], "status": 503}},
               tls_session)
    assert api.post(url, json={"correlation_id": "BRK-NEW"}).status_code == 503
    lost = next(r for r in found if r["correlation_id"] == "BRK-LOST")
    assert api.patch(f"{url}/{lost['sys_id']}", json={"description": "d"}).status_code == 503
    answer = _batch(api, sandbox, [("POST", "/api/now/table/incident", {"correlation_id": "BRK-NEW"}),
                                   ("POST", "/api/now/table/incident", {"correlation_id": "BRK-OTHER"})]).json()
    assert [s["status_code"] for s in answer["serviced_requests"]] == [503, 201]
    set_faults(sandbox, "servicenow", {"fail_records": {"values": ["BRK-NEW"], "message": "Data Policy Exception: x"}},
               tls_session)
    refused = api.post(url, json={"correlation_id": "BRK-NEW"})
    assert refused.status_code == 400 and refused.json()["error"]["detail"] == "Data Policy Exception: x"
    with pytest.raises(ValueError, match="status"):
        sandbox.servicenow_app.faults.configure({"fail_records": {"values": ["x"], "status": 200}})
