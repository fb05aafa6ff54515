"""A third-party contract check of the sandbox: the real clients only, used as their docs say.

simple-salesforce 1.12.x and pysnc 1.2.x against an org with the seeded world's schema
(``sandbox.world.crm.SCHEMA``: Account.Name required, Contact.AccountId a reference, ...). Nothing
here calls sandbox internals except to seed the org: every check goes over HTTPS as a client would,
so a pass means write-back code that passes here does what it would against a real org/instance.

Covered: logins (SOAP, OAuth password and client credentials, Basic; wrong credentials), paging
(REST query_all, Bulk 2.0 query locators, pysnc batches), soft deletes (queryAll, sobjects/deleted
and /updated), upserts across API versions (204 before v46.0), sObject Collections with per-record
errors, Bulk 2.0 ingest with failed records and query, required fields per record in all three write
paths, SOQL relationships, aggregates, date literals and 15-character ids, length and reference
validation, limits, and the ServiceNow Table and Batch APIs.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
import requests
from pysnc import ServiceNowClient
from pysnc.exceptions import AuthenticationException
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceAuthenticationFailed, SalesforceMalformedRequest

from sandbox.credentials import ensure_credentials
from sandbox.salesforce.store import SalesforceStore, new_id
from sandbox.server import start_in_thread
from sandbox.world.crm import KEY_PREFIX, SCHEMA

pytestmark = pytest.mark.integration

N_ACCOUNTS = 260
N_CONTACTS = 30
STAMP = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def org(tmp_path_factory):
    state = tmp_path_factory.mktemp("contract-sandbox")
    creds = ensure_credentials(SimpleNamespace(sandbox_secrets_file=state / "sandbox-credentials.json"))
    store = SalesforceStore(state / "salesforce.db")
    for name in ("User", "Account", "Contact", "Task"):
        store.define_object(name, SCHEMA[name], KEY_PREFIX[name])
    stamp = {"CreatedDate": STAMP, "LastModifiedDate": STAMP, "SystemModstamp": STAMP}
    store.insert_records("User", [{"Id": new_id("005", 1), "Username": "advisor@firm.example", "LastName": "Advisor",
                                   "IsActive": True, **stamp}])
    store.insert_records("Account", [{
        "Id": new_id("001", i + 1), "Name": f"Household {i:04d}", "Type": "Household", "OwnerId": new_id("005", 1),
        "Household_Id__c": f"HH{i:07d}", "AUM_Band__c": "1M-5M" if i % 2 else "<250K", **stamp,
    } for i in range(N_ACCOUNTS)])
    store.insert_records("Contact", [{
        "Id": new_id("003", i + 1), "AccountId": new_id("001", i % 10 + 1), "LastName": f"Client{i}", **stamp,
    } for i in range(N_CONTACTS)])
    store.close()
    handle = start_in_thread(state, credentials=creds)
    yield handle
    handle.stop()


def _session(org) -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # the machine-wide REQUESTS_CA_BUNDLE would override verify
    session.verify = str(org.ca_cert)
    return session


def _domain(org, path: str = "/services/Soap/u/59.0") -> str:
    """simple-salesforce builds https://{domain}.salesforce.com/...: the documented domain= hook."""
    return f"127.0.0.1:{org.salesforce_url.rsplit(':', 1)[1]}{path}?"


def sf_login(org, version: str = "59.0") -> Salesforce:
    creds = org.credentials["salesforce"]
    return Salesforce(username=creds["username"], password=creds["password"], security_token=creds["security_token"],
                      domain=_domain(org, f"/services/Soap/u/{version}"), version=version, session=_session(org))


@pytest.fixture
def sf(org):
    return sf_login(org)


@pytest.fixture
def snc(org):
    creds = org.credentials["servicenow"]
    session = _session(org)
    session.auth = (creds["username"], creds["password"])
    return ServiceNowClient(org.servicenow_url, session)


# --- logins ------------------------------------------------------------------------------------


def test_logins(org):
    creds = org.credentials["salesforce"]
    soap = sf_login(org)
    assert soap.query("SELECT COUNT() FROM Account")["totalSize"] == N_ACCOUNTS
    oauth = Salesforce(username=creds["username"], password=creds["password"] + creds["security_token"],
                       consumer_key=creds["client_id"], consumer_secret=creds["client_secret"],
                       domain=_domain(org, "/services/oauth2/token"), session=_session(org))
    assert oauth.query("SELECT Id FROM User")["totalSize"] == 1
    with pytest.raises(SalesforceAuthenticationFailed, match="INVALID_LOGIN"):
        Salesforce(username=creds["username"], password="wrong", security_token=creds["security_token"],
                   domain=_domain(org), session=_session(org))
    with pytest.raises(SalesforceAuthenticationFailed):
        Salesforce(username=creds["username"], password="wrong", consumer_key=creds["client_id"],
                   consumer_secret=creds["client_secret"], domain=_domain(org, "/services/oauth2/token"),
                   session=_session(org))
    bad = _session(org)
    bad.auth = (org.credentials["servicenow"]["username"], "wrong")
    with pytest.raises(AuthenticationException):
        gr = ServiceNowClient(org.servicenow_url, bad).GlideRecord("incident")
        gr.query()


# --- Salesforce REST ---------------------------------------------------------------------------


def test_paging_and_limits(sf):
    pages = []
    first = sf.query("SELECT Id, Name FROM Account ORDER BY Name", headers={"Sforce-Query-Options": "batchSize=200"})
    pages.append(len(first["records"]))
    assert first["totalSize"] == N_ACCOUNTS and not first["done"] and first["nextRecordsUrl"].startswith("/services")
    more = sf.query_more(first["nextRecordsUrl"], identifier_is_url=True)
    assert more["done"] and len(first["records"]) + len(more["records"]) == N_ACCOUNTS
    assert len(sf.query_all("SELECT Id FROM Account")["records"]) == N_ACCOUNTS
    limits = sf.limits()
    assert limits["DailyApiRequests"]["Max"] > limits["DailyApiRequests"]["Remaining"] > 0
    assert sf.api_usage["api-usage"].used > 0


def test_soft_deletes_updated_and_deleted(sf):
    start = datetime.now(UTC) - timedelta(minutes=1)
    created = sf.Account.create({"Name": "Soon gone", "Household_Id__c": "HHDEL0001"})
    assert sf.Account.delete(created["id"]) == 204
    assert sf.query("SELECT Id FROM Account WHERE Household_Id__c = 'HHDEL0001'")["totalSize"] == 0
    deleted = sf.query_all("SELECT Id, IsDeleted FROM Account WHERE Household_Id__c = 'HHDEL0001'",
                           include_deleted=True)["records"]
    assert [(r["Id"], r["IsDeleted"]) for r in deleted] == [(created["id"], True)]
    end = datetime.now(UTC) + timedelta(minutes=2)
    assert created["id"] in {r["id"] for r in sf.Account.deleted(start, end)["deletedRecords"]}
    touched = sf.Account.create({"Name": "Fresh", "Household_Id__c": "HHUPD0001"})
    assert touched["id"] in sf.Account.updated(start, end)["ids"]


@pytest.mark.parametrize(("version", "update_status"), [("45.0", 204), ("59.0", 200)])
def test_upsert_by_external_id_across_api_versions(org, version, update_status):
    sf = sf_login(org, version)
    key = f"HHV{version[:2]}0001"
    assert sf.Account.upsert(f"Household_Id__c/{key}", {"Name": "Versioned"}) == 201
    response = sf.Account.upsert(f"Household_Id__c/{key}", {"Name": "Versioned 2"}, raw_response=True)
    assert response.status_code == update_status
    if update_status == 204:
        assert response.content == b""  # before v46.0: no body at all
    else:
        assert response.json()["created"] is False
    assert sf.Account.get_by_custom_id("Household_Id__c", key)["Name"] == "Versioned 2"


def test_required_field_missing_is_reported_per_record(sf):
    # single create
    with pytest.raises(SalesforceMalformedRequest) as single:
        sf.Account.create({"Household_Id__c": "HHREQ0001"})
    assert single.value.content[0]["errorCode"] == "REQUIRED_FIELD_MISSING"
    assert single.value.content[0]["fields"] == ["Name"]
    # upsert that would create
    with pytest.raises(SalesforceMalformedRequest, match="REQUIRED_FIELD_MISSING"):
        sf.Account.upsert("Household_Id__c/HHREQ0002", {"Type": "Household"})
    # sObject Collections: one result per record, the bad ones name the field
    results = sf.restful("composite/sobjects/Account/Household_Id__c", method="PATCH", json={
        "allOrNone": False, "records": [
            {"attributes": {"type": "Account"}, "Household_Id__c": "HHREQ0003", "Name": "Has a name"},
            {"attributes": {"type": "Account"}, "Household_Id__c": "HHREQ0004"},
            {"attributes": {"type": "Account"}, "Household_Id__c": "HH0000001", "Name": None},
        ]})
    assert results[0]["success"] and results[0]["created"]
    for bad in results[1:]:
        assert not bad["success"]
        assert bad["errors"][0]["statusCode"] == "REQUIRED_FIELD_MISSING" and bad["errors"][0]["fields"] == ["Name"]
    # Bulk API 2.0: failedResults carries the error and the field per record
    jobs = sf.bulk2.Account.upsert(records=[
        {"Household_Id__c": "HHREQ0005", "Name": "Fine"},
        {"Household_Id__c": "HHREQ0006", "Type": "Household"},
        {"Household_Id__c": "HHREQ0007", "Type": "Household"},
    ], external_id_field="Household_Id__c", wait=0)
    assert jobs[0]["numberRecordsFailed"] == 2 and jobs[0]["numberRecordsProcessed"] == 3
    failed = list(csv.DictReader(io.StringIO(sf.bulk2.Account.get_failed_records(jobs[0]["job_id"]))))
    assert sorted(r["Household_Id__c"] for r in failed) == ["HHREQ0006", "HHREQ0007"]
    for row in failed:
        assert row["sf__Error"] == "REQUIRED_FIELD_MISSING:Required fields are missing: [Name]:Name --"
    names = {r["Household_Id__c"] for r in sf.query_all(
        "SELECT Household_Id__c FROM Account WHERE Household_Id__c LIKE 'HHREQ%'")["records"]}
    assert names == {"HHREQ0003", "HHREQ0005"}


def test_length_and_reference_validation_on_writes(sf):
    with pytest.raises(SalesforceMalformedRequest) as long_name:
        sf.Account.create({"Name": "x" * 300, "Household_Id__c": "HHLEN0001"})
    assert long_name.value.content[0]["errorCode"] == "STRING_TOO_LONG"
    with pytest.raises(SalesforceMalformedRequest) as garbage:
        sf.Account.create({"Name": "Owner test", "OwnerId": "garbage"})
    assert garbage.value.content[0]["errorCode"] == "MALFORMED_ID"
    with pytest.raises(SalesforceMalformedRequest) as missing:
        sf.Contact.create({"LastName": "Orphan", "AccountId": new_id("001", 999_999)})
    assert missing.value.content[0]["errorCode"] == "INVALID_CROSS_REFERENCE_KEY"
    owner15 = new_id("005", 1)[:15]  # a 15-character id is the same record
    made = sf.Account.create({"Name": "Owned", "OwnerId": owner15})
    assert sf.Account.get(made["id"][:15])["OwnerId"] == new_id("005", 1)


def test_soql_relationships_aggregates_and_date_literals(sf):
    rows = sf.query("SELECT Id, LastName, Account.Name, Account.Owner.LastName FROM Contact "
                    "WHERE Account.Name = 'Household 0001' ORDER BY LastName")["records"]
    assert rows and all(r["Account"]["Name"] == "Household 0001" for r in rows)
    assert rows[0]["Account"]["Owner"]["LastName"] == "Advisor"
    counted = sf.query("SELECT COUNT(Id) FROM Account WHERE Household_Id__c LIKE 'HH00%'")["records"]
    assert counted == [{"attributes": {"type": "AggregateResult"}, "expr0": N_ACCOUNTS}]
    bands = sf.query("SELECT AUM_Band__c, COUNT(Id) n FROM Account WHERE Household_Id__c LIKE 'HH00%' "
                     "GROUP BY AUM_Band__c ORDER BY AUM_Band__c")["records"]
    assert [(b["AUM_Band__c"], b["n"]) for b in bands] == [("1M-5M", N_ACCOUNTS // 2), ("<250K", N_ACCOUNTS // 2)]
    recent = sf.Account.create({"Name": "Made today", "Household_Id__c": "HHDAY0001"})
    today = {r["Id"] for r in sf.query_all("SELECT Id FROM Account WHERE CreatedDate = TODAY")["records"]}
    assert recent["id"] in today and new_id("001", 1) not in today
    week = sf.query("SELECT COUNT() FROM Account WHERE CreatedDate = LAST_N_DAYS:7")["totalSize"]
    assert week >= 1 and week < N_ACCOUNTS
    by_short_id = sf.query(f"SELECT Name FROM Account WHERE Id = '{new_id('001', 3)[:15]}'")["records"]
    assert [r["Name"] for r in by_short_id] == ["Household 0002"]
    with pytest.raises(SalesforceMalformedRequest) as bad:
        sf.query("SELECT Id FROM Account WHERE CreatedDate = NOT_A_LITERAL")
    assert bad.value.content[0]["errorCode"] == "MALFORMED_QUERY"


def test_bulk2_ingest_and_query(sf):
    jobs = sf.bulk2.Contact.insert(records=[{"LastName": f"Bulk{i}", "AccountId": new_id("001", 2)}
                                            for i in range(5)] + [{"LastName": "Dangling", "AccountId": "nope"}],
                                   wait=0)
    assert jobs[0]["numberRecordsProcessed"] == 6 and jobs[0]["numberRecordsFailed"] == 1
    failed = list(csv.DictReader(io.StringIO(sf.bulk2.Contact.get_failed_records(jobs[0]["job_id"]))))
    assert failed[0]["LastName"] == "Dangling" and failed[0]["sf__Error"].startswith("MALFORMED_ID:")
    pages = list(sf.bulk2.Contact.query("SELECT Id, LastName, Account.Name FROM Contact WHERE LastName LIKE 'Bulk%'",
                                        max_records=2, wait=0))
    assert len(pages) == 3
    rows = [r for page in pages for r in csv.DictReader(io.StringIO(page))]
    assert {r["Account.Name"] for r in rows} == {"Household 0001"} and len(rows) == 5


# --- ServiceNow --------------------------------------------------------------------------------


def test_servicenow_table_api(snc):
    for i in range(5):
        gr = snc.GlideRecord("incident")
        gr.initialize()
        gr.short_description = f"Contract {i}"
        gr.correlation_id = f"CONTRACT-{i}"
        gr.urgency = 1
        gr.impact = 2
        assert gr.insert()
    gr = snc.GlideRecord("incident", batch_size=2)
    gr.add_query("correlation_id", "STARTSWITH", "CONTRACT-")
    gr.query()
    assert len(gr) == 5 and sorted(r.correlation_id for r in gr) == [f"CONTRACT-{i}" for i in range(5)]
    one = snc.GlideRecord("incident")
    assert one.get("correlation_id", "CONTRACT-0")
    assert one.priority == "2"
    one.state = 6
    one.close_code = "Solution provided"
    one.close_notes = "fixed"
    one.update()
    check = snc.GlideRecord("incident")
    assert check.get(one.sys_id) and check.state == "6" and check.resolved_at != ""
    assert check.delete()
    assert not snc.GlideRecord("incident").get(one.sys_id)


def test_servicenow_batch_api(snc):
    for i in range(4):
        gr = snc.GlideRecord("incident")
        gr.initialize()
        gr.short_description = f"Batch {i}"
        gr.correlation_id = f"BATCH-{i}"
        gr.insert()
    many = snc.GlideRecord("incident")
    many.add_query("correlation_id", "STARTSWITH", "BATCH-")
    many.query()
    for record in many:
        record.urgency = 1
    assert many.update_multiple()
    again = snc.GlideRecord("incident")
    again.add_query("correlation_id", "STARTSWITH", "BATCH-")
    again.query()
    assert sorted(r.urgency for r in again) == ["1"] * 4
    gone = snc.GlideRecord("incident")
    gone.add_query("correlation_id", "STARTSWITH", "BATCH-")
    assert gone.delete_multiple()
    left = snc.GlideRecord("incident")
    left.add_query("correlation_id", "STARTSWITH", "BATCH-")
    left.query()
    assert len(left) == 0
