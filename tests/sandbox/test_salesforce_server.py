"""The sandbox Salesforce server driven by the real simple-salesforce client over HTTPS."""

from __future__ import annotations

import csv
import io

import pytest
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceAuthenticationFailed,
    SalesforceExpiredSession,
    SalesforceGeneralError,
    SalesforceMalformedRequest,
    SalesforceRefusedRequest,
    SalesforceResourceNotFound,
)

from tests.sandbox.conftest import N_ACCOUNTS, get_stats, set_faults

pytestmark = pytest.mark.integration
LIVE = N_ACCOUNTS - 2  # two accounts are soft-deleted by the seed


def _port(sandbox) -> str:
    return sandbox.salesforce_url.rsplit(":", 1)[1]


@pytest.fixture
def sf(sandbox, tls_session) -> Salesforce:
    """A password (SOAP) session: it refreshes itself on INVALID_SESSION_ID."""
    creds = sandbox.credentials["salesforce"]
    return Salesforce(
        username=creds["username"], password=creds["password"], security_token=creds["security_token"],
        domain=f"127.0.0.1:{_port(sandbox)}/services/Soap/u/59.0?", session=tls_session,
    )


@pytest.fixture
def oauth_sf(sandbox, tls_session) -> Salesforce:
    """A direct session from the OAuth2 client-credentials token call (never refreshes)."""
    creds = sandbox.credentials["salesforce"]
    token = tls_session.post(
        f"{sandbox.salesforce_url}/services/oauth2/token",
        data={"grant_type": "client_credentials"}, auth=(creds["client_id"], creds["client_secret"]),
    ).json()
    return Salesforce(session_id=token["access_token"], instance_url=token["instance_url"], session=tls_session)


def test_soap_login_rejects_a_bad_password(sandbox, tls_session):
    creds = sandbox.credentials["salesforce"]
    with pytest.raises(SalesforceAuthenticationFailed) as info:
        Salesforce(username=creds["username"], password="wrong", security_token=creds["security_token"],
                   domain=f"127.0.0.1:{_port(sandbox)}/services/Soap/u/59.0?", session=tls_session)
    assert "INVALID_LOGIN" in str(info.value)


def test_oauth_password_grant(sandbox, tls_session):
    creds = sandbox.credentials["salesforce"]
    form = {"grant_type": "password", "client_id": creds["client_id"], "client_secret": creds["client_secret"],
            "username": creds["username"], "password": creds["password"] + creds["security_token"]}
    ok = tls_session.post(f"{sandbox.salesforce_url}/services/oauth2/token", data=form)
    assert ok.status_code == 200 and ok.json()["instance_url"] == sandbox.salesforce_url
    bad = tls_session.post(f"{sandbox.salesforce_url}/services/oauth2/token", data={**form, "password": "x"})
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_grant"


def test_query_pages_and_query_all(sf):
    headers = {"Sforce-Query-Options": "batchSize=200"}
    first = sf.query("SELECT Id, Name FROM Account ORDER BY Name", headers=headers)
    assert first["totalSize"] == LIVE and not first["done"] and len(first["records"]) == 200
    assert first["nextRecordsUrl"].startswith("/services/data/v59.0/query/01g")
    second = sf.query_more(first["nextRecordsUrl"], identifier_is_url=True, headers=headers)
    assert second["records"][0]["Name"] > first["records"][-1]["Name"]
    everything = sf.query_all("SELECT Id, Name FROM Account", headers=headers)
    assert everything["totalSize"] == LIVE
    assert len({r["Id"] for r in everything["records"]}) == LIVE
    assert sf.api_usage["api-usage"].used >= 3


def test_where_clause_subset(sf):
    soql = ("SELECT Id, Household_Id__c, Fee_Schedule_Bps__c, Marketing_Consent__c, Client_Since__c "
            "FROM Account WHERE (BillingState = 'ca' OR BillingState IN ('TX')) AND Marketing_Consent__c = TRUE "
            "AND Client_Since__c >= 2015-01-01 AND SystemModstamp > 2024-01-15T00:00:00Z "
            "AND Household_Id__c LIKE 'HH00%' AND Segment__c = NULL ORDER BY Household_Id__c DESC LIMIT 5 OFFSET 1")
    rows = sf.query(soql)["records"]
    assert 0 < len(rows) <= 5
    assert all(r["Marketing_Consent__c"] is True and r["Client_Since__c"] >= "2015-01-01" for r in rows)
    assert [r["Household_Id__c"] for r in rows] == sorted((r["Household_Id__c"] for r in rows), reverse=True)
    assert isinstance(rows[0]["Fee_Schedule_Bps__c"], float)
    assert sf.query("SELECT COUNT() FROM Account WHERE Name != 'nobody'")["totalSize"] == LIVE
    not_in = sf.query("SELECT Id FROM Account WHERE Household_Id__c NOT IN ('HH0000010', 'HH0000011')")
    assert not_in["totalSize"] == LIVE - 2


def test_query_all_returns_soft_deleted_rows(sf):
    assert sf.query("SELECT Id FROM Account WHERE IsDeleted = TRUE")["totalSize"] == 0
    deleted = sf.query_all("SELECT Id, IsDeleted FROM Account WHERE IsDeleted = TRUE", include_deleted=True)
    assert deleted["totalSize"] >= 2 and all(r["IsDeleted"] for r in deleted["records"])


def test_query_errors_map_to_client_exceptions(sf, tls_session, sandbox):
    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.query("SELECT Id FROMM Account")
    assert info.value.content[0]["errorCode"] == "MALFORMED_QUERY"
    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.query("SELECT Nope__c FROM Account")
    assert info.value.content[0]["errorCode"] == "INVALID_FIELD"
    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.query("SELECT Id FROM Nope__c")
    assert info.value.content[0]["errorCode"] == "INVALID_TYPE"
    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.query("SELECT Id FROM Account WHERE SystemModstamp > '2024-01-01T00:00:00Z'")
    assert info.value.content[0]["errorCode"] == "INVALID_FIELD"
    # Injection attempts are just bad SOQL or a harmless string value.
    assert sf.query("SELECT Id FROM Account WHERE Name = 'x\\' OR 1=1 --'")["totalSize"] == 0
    with pytest.raises(SalesforceMalformedRequest):
        sf.query('SELECT Id FROM Account; DROP TABLE "obj_Account"')
    no_slash = tls_session.get(f"{sandbox.salesforce_url}/services/data/v61.0/query",
                               params={"q": "SELECT Id FROM Account LIMIT 1"},
                               headers={"Authorization": f"Bearer {sf.session_id}"})
    assert no_slash.status_code == 200 and no_slash.json()["totalSize"] == 1
    unauth = tls_session.get(f"{sandbox.salesforce_url}/services/data/v59.0/query/", params={"q": "x"},
                             headers={"Authorization": "Bearer nope"})
    assert unauth.status_code == 401 and unauth.json()[0]["errorCode"] == "INVALID_SESSION_ID"
    assert "api-usage=" in unauth.headers["Sforce-Limit-Info"]


def test_describe_and_sobjects(sf):
    describe = sf.Account.describe()
    fields = {f["name"]: f for f in describe["fields"]}
    assert fields["Household_Id__c"]["externalId"] is True and fields["Household_Id__c"]["custom"] is True
    assert {"Id", "SystemModstamp", "IsDeleted", "CLV__c"} <= set(fields)
    assert "Account" in {o["name"] for o in sf.describe()["sobjects"]}
    assert sf.limits()["DailyApiRequests"]["Max"] == 15000


def test_rest_upsert_create_get_update_delete(sf, sandbox, tls_session):
    assert sf.Account.upsert("Household_Id__c/HH-NEW-1", {"Name": "New household"}) == 201
    assert sf.Account.upsert("Household_Id__c/HH-NEW-1", {"CLV__c": 1234.5}) == 200
    raw = sf.Account.upsert("Household_Id__c/HH-NEW-1", {"Segment__c": "A"}, raw_response=True)
    assert raw.json()["created"] is False
    record = sf.Account.get_by_custom_id("Household_Id__c", "HH-NEW-1")
    assert record["CLV__c"] == 1234.5 and record["Name"] == "New household"
    assert record["SystemModstamp"] >= record["CreatedDate"]
    created = sf.Account.create({"Name": "Made by create", "Household_Id__c": "HH-CREATE"})
    assert created["success"] and len(created["id"]) == 18
    assert sf.Account.update(created["id"], {"Segment__c": "B"}) == 204
    assert sf.Account.get(created["id"])["Segment__c"] == "B"
    assert sf.Account.delete(created["id"]) == 204
    with pytest.raises(SalesforceResourceNotFound):
        sf.Account.get(created["id"])
    with pytest.raises(SalesforceResourceNotFound):
        sf.Account.upsert("Name/x", {"Segment__c": "A"})
    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.Account.create({"Name": "dup", "Household_Id__c": "HH0000100"})
    assert info.value.content[0]["errorCode"] == "DUPLICATE_VALUE"
    stats = get_stats(sandbox, "salesforce", tls_session)
    assert stats["total_writes"] == 6


def test_collections_upsert(sf, sandbox, tls_session):
    set_faults(sandbox, "salesforce", {"fail_records": {"values": ["HH0000021"], "code": "UNABLE_TO_LOCK_ROW"}},
               tls_session)
    body = {"allOrNone": False, "records": [
        {"attributes": {"type": "Account"}, "Household_Id__c": "HH0000020", "CLV__c": 10.0},
        {"attributes": {"type": "Account"}, "Household_Id__c": "HH0000021", "CLV__c": 11.0},
        {"attributes": {"type": "Account"}, "Household_Id__c": "HH-COLL-1", "CLV__c": 12.0, "Name": "coll"},
    ]}
    results = sf.restful("composite/sobjects/Account/Household_Id__c", method="PATCH", json=body)
    assert [r["success"] for r in results] == [True, False, True]
    assert results[0]["created"] is False and results[2]["created"] is True
    assert results[1]["errors"][0]["statusCode"] == "UNABLE_TO_LOCK_ROW"
    body["allOrNone"] = True
    rolled = sf.restful("composite/sobjects/Account/Household_Id__c", method="PATCH", json=body)
    assert [r["success"] for r in rolled] == [False, False, False]
    assert rolled[0]["errors"][0]["statusCode"] == "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    too_many = {"records": [{"Household_Id__c": f"X{i}"} for i in range(201)]}
    with pytest.raises(SalesforceMalformedRequest):
        sf.restful("composite/sobjects/Account/Household_Id__c", method="PATCH", json=too_many)
    assert get_stats(sandbox, "salesforce", tls_session)["total_records_written"] == 2


def test_bulk2_upsert_with_failures_and_polls(sf, sandbox, tls_session):
    set_faults(sandbox, "salesforce", {"in_progress_polls": 2,
                                      "fail_records": {"values": ["HH0000031"], "code": "DUPLICATE_VALUE"}},
               tls_session)
    records = [
        {"Household_Id__c": "HH0000030", "Segment__c": "Gold", "CLV__c": 1e7},
        {"Household_Id__c": "HH0000031", "Segment__c": "Gold"},
        {"Household_Id__c": "HH-BULK-1", "Segment__c": "Silver", "Name": "bulk new"},
        {"Household_Id__c": "HH0000032", "Segment__c": None, "CLV__c": "#N/A"},
    ]
    result = sf.bulk2.Account.upsert(records=records, external_id_field="Household_Id__c", wait=0)
    assert result[0]["numberRecordsProcessed"] == 4 and result[0]["numberRecordsFailed"] == 1
    job_id = result[0]["job_id"]
    ok = list(csv.DictReader(io.StringIO(sf.bulk2.Account.get_successful_records(job_id))))
    assert {r["Household_Id__c"]: r["sf__Created"] for r in ok} == {
        "HH0000030": "false", "HH-BULK-1": "true", "HH0000032": "false"}
    failed = list(csv.DictReader(io.StringIO(sf.bulk2.Account.get_failed_records(job_id))))
    assert failed[0]["sf__Error"].startswith("DUPLICATE_VALUE:") and failed[0]["Household_Id__c"] == "HH0000031"
    assert sf.bulk2.Account.get_unprocessed_records(job_id).strip() != ""  # the header row only
    row = sf.query("SELECT Segment__c, CLV__c, Name FROM Account WHERE Household_Id__c = 'HH0000030'")["records"][0]
    assert row["Segment__c"] == "Gold" and row["CLV__c"] == 1e7 and row["Name"] == "Household 0030"
    cleared = sf.query("SELECT Segment__c, CLV__c FROM Account WHERE Household_Id__c = 'HH0000032'")["records"][0]
    assert cleared["CLV__c"] is None


def test_bulk2_query_pages_with_locator(sf):
    pages = list(sf.bulk2.Account.query("SELECT Id, Name, Marketing_Consent__c FROM Account", max_records=200,
                                        wait=0))
    assert len(pages) >= 3
    rows = [row for page in pages for row in csv.DictReader(io.StringIO(page))]
    assert len(rows) == sf.query("SELECT COUNT() FROM Account")["totalSize"]
    assert pages[0].startswith('"Id","Name","Marketing_Consent__c"')
    assert {r["Marketing_Consent__c"] for r in rows} == {"true", "false"}
    deleted = list(sf.bulk2.Account.query_all("SELECT Id FROM Account WHERE IsDeleted = TRUE", wait=0))
    assert len(list(csv.DictReader(io.StringIO(deleted[0])))) >= 2


def test_expired_session_refreshes_once(sf, oauth_sf, sandbox, tls_session):
    set_faults(sandbox, "salesforce", {"expire_session": 1}, tls_session)
    old = sf.session_id
    assert sf.query("SELECT Id FROM Account LIMIT 1")["totalSize"] == 1
    assert sf.session_id != old
    set_faults(sandbox, "salesforce", {"expire_session": 1}, tls_session)
    with pytest.raises(SalesforceExpiredSession):
        oauth_sf.query("SELECT Id FROM Account LIMIT 1")
    assert oauth_sf.query("SELECT Id FROM Account LIMIT 1")["totalSize"] == 1


def test_limit_and_unavailable_faults(sf, sandbox, tls_session):
    set_faults(sandbox, "salesforce", {"api_limit_after": 1}, tls_session)
    sf.query("SELECT Id FROM Account LIMIT 1")
    with pytest.raises(SalesforceRefusedRequest) as info:
        sf.query("SELECT Id FROM Account LIMIT 1")
    assert info.value.content[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"
    set_faults(sandbox, "salesforce", {"reset": True, "unavailable": 1}, tls_session)
    with pytest.raises(SalesforceGeneralError) as info:
        sf.query("SELECT Id FROM Account LIMIT 1")
    assert info.value.status == 503
    assert sf.query("SELECT Id FROM Account LIMIT 1")["totalSize"] == 1


def test_admin_endpoints_need_credentials(sandbox, tls_session):
    assert tls_session.get(f"{sandbox.salesforce_url}/__sandbox/stats").status_code == 401
    assert isinstance(requests.codes.ok, int)
