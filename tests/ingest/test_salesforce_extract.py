"""Salesforce extraction: pure parts (unit) and the whole run against the sandbox server (integration)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest
import requests
from simple_salesforce.exceptions import (
    SalesforceExpiredSession,
    SalesforceGeneralError,
    SalesforceMalformedRequest,
    SalesforceRefusedRequest,
)

from ingest.salesforce.client import RetryPolicy, SalesforceConnection, soap_domain
from ingest.salesforce.extract import build_count_soql, build_soql, landing_path
from ingest.salesforce.schema import (
    TIMESTAMP,
    SalesforceField,
    add_run_columns,
    csv_to_table,
    fields_from_describe,
    records_to_table,
    schema_drift,
)
from ingest.salesforce.watermarks import (
    KEY_SCHEMA,
    ObjectState,
    WatermarkStore,
    key_strings,
    merge_boundary,
    watermark_file,
    window_start,
)
from northstar.settings import Endpoint

FIELDS = [
    SalesforceField("Id", "id"),
    SalesforceField("IsDeleted", "boolean"),
    SalesforceField("SystemModstamp", "datetime"),
    SalesforceField("Name", "string"),
    SalesforceField("Fee_Schedule_Bps__c", "double"),
    SalesforceField("CallDurationInSeconds", "int"),
    SalesforceField("Client_Since__c", "date"),
    SalesforceField("OwnerId", "reference"),
]


def _utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


# --- unit: describe → fields → Arrow ------------------------------------------------------------


@pytest.mark.unit
def test_describe_drops_compound_and_binary_fields():
    describe = {
        "name": "Account",
        "fields": [
            {"name": "Id", "type": "id"},
            {"name": "SystemModstamp", "type": "datetime"},
            {"name": "BillingAddress", "type": "address"},
            {"name": "Geo__c", "type": "location"},
            {"name": "Logo__c", "type": "base64"},
            {"name": "Old__c", "type": "string", "deprecatedAndHidden": True},
            {"name": "Segment__c", "type": "picklist"},
            {"name": "Odd__c", "type": "anyType"},
        ],
    }
    fields = fields_from_describe(describe)
    assert [f.name for f in fields] == ["Id", "SystemModstamp", "Segment__c", "Odd__c"]
    assert [f.arrow_type for f in fields] == [pa.string(), TIMESTAMP, pa.string(), pa.string()]


@pytest.mark.unit
def test_describe_without_systemmodstamp_is_refused():
    with pytest.raises(ValueError, match="SystemModstamp"):
        fields_from_describe({"name": "X", "fields": [{"name": "Id", "type": "id"}]})


@pytest.mark.unit
@pytest.mark.parametrize(
    ("sf_type", "arrow_type"),
    [
        ("id", pa.string()), ("string", pa.string()), ("picklist", pa.string()), ("reference", pa.string()),
        ("email", pa.string()), ("phone", pa.string()), ("textarea", pa.string()), ("boolean", pa.bool_()),
        ("double", pa.float64()), ("currency", pa.float64()), ("percent", pa.float64()),
        ("int", pa.int64()), ("date", pa.date32()), ("datetime", pa.timestamp("ms", tz="UTC")),
    ],
)
def test_type_mapping(sf_type, arrow_type):
    assert SalesforceField("X", sf_type).arrow_type == arrow_type


@pytest.mark.unit
def test_rest_json_and_bulk_csv_convert_to_the_same_values():
    rest = [
        {"attributes": {"type": "Account"}, "Id": "001A", "IsDeleted": False,
         "SystemModstamp": "2026-10-30T10:30:00.123+0000", "Name": "Smith, \"Jo\"",
         "Fee_Schedule_Bps__c": 85, "CallDurationInSeconds": 30, "Client_Since__c": "2012-03-04",
         "OwnerId": None},
        {"attributes": {"type": "Account"}, "Id": "001B", "IsDeleted": True,
         "SystemModstamp": "2026-10-30T11:00:00.000+0000", "Name": None,
         "Fee_Schedule_Bps__c": None, "CallDurationInSeconds": None, "Client_Since__c": None,
         "OwnerId": "005X"},
    ]
    csv = (
        '"Id","IsDeleted","SystemModstamp","Name","Fee_Schedule_Bps__c","CallDurationInSeconds",'
        '"Client_Since__c","OwnerId"\n'
        '"001A","false","2026-10-30T10:30:00.123Z","Smith, ""Jo""","8.5E1","30","2012-03-04",""\n'
        '"001B","true","2026-10-30T11:00:00.000Z","","","","","005X"\n'
    )
    from_rest = records_to_table(rest, FIELDS)
    from_csv = csv_to_table(csv, FIELDS)
    assert from_rest.equals(from_csv)
    row = from_csv.to_pylist()[0]
    assert row["SystemModstamp"] == _utc(2026, 10, 30, 10, 30, 0, 123000)
    assert row["Fee_Schedule_Bps__c"] == 85.0 and row["CallDurationInSeconds"] == 30
    assert row["Name"] == 'Smith, "Jo"' and row["OwnerId"] is None
    assert from_csv.to_pylist()[1]["Name"] is None  # empty cell = null in Bulk CSV


@pytest.mark.unit
def test_csv_columns_matched_by_name_and_empty_page():
    csv = '"OwnerId","Id","SystemModstamp","IsDeleted","Name","Fee_Schedule_Bps__c","CallDurationInSeconds","Client_Since__c"\n'
    csv += '"005X","001A","2026-01-01T00:00:00.000Z","false","n","","",""\n'
    table = csv_to_table(csv, FIELDS)
    assert table.column_names == [f.name for f in FIELDS]
    assert table.to_pylist()[0]["OwnerId"] == "005X"
    assert csv_to_table("", FIELDS).num_rows == 0


@pytest.mark.unit
def test_run_columns_mark_tombstones():
    table = records_to_table(
        [{"Id": "1", "IsDeleted": True, "SystemModstamp": "2026-01-01T00:00:00.000+0000"},
         {"Id": "2", "IsDeleted": False, "SystemModstamp": "2026-01-01T00:00:00.000+0000"}],
        FIELDS,
    )
    out = add_run_columns(table, "run-1", 1_700_000_000_000)
    assert out.column("_is_deleted").to_pylist() == [True, False]
    assert out.column("_run_id").to_pylist() == ["run-1", "run-1"]
    assert out.schema.field("_extracted_at").type == TIMESTAMP


@pytest.mark.unit
def test_schema_drift():
    assert schema_drift(None, ["Id", "A"]) == ([], [])
    assert schema_drift(["Id", "A", "B"], ["Id", "A", "C__c"]) == (["C__c"], ["B"])


# --- unit: SOQL, paths, login domain ----------------------------------------------------------


@pytest.mark.unit
def test_soql_full_and_incremental():
    fields = FIELDS[:3]
    assert build_soql("Account", fields, None) == "SELECT Id, IsDeleted, SystemModstamp FROM Account"
    since = window_start(_utc(2026, 10, 30, 1, 30, 0, 500000), timedelta(minutes=5))
    assert build_soql("Account", fields, since).endswith("WHERE SystemModstamp > 2026-10-30T01:25:00Z")
    assert build_count_soql("Case", since) == "SELECT COUNT() FROM Case WHERE SystemModstamp > 2026-10-30T01:25:00Z"
    with pytest.raises(ValueError):
        build_soql("Account; DELETE", fields, None)


@pytest.mark.unit
def test_landing_path_is_partitioned_and_file_safe(tmp_path):
    path = landing_path(tmp_path, "Account", _utc(2026, 10, 30).date(), "scheduled__2026-10-30T01:30:00+00:00")
    assert path.relative_to(tmp_path).as_posix() == (
        "salesforce/Account/extracted_date=2026-10-30/scheduled__2026-10-30T01_30_00_00_00.parquet"
    )


@pytest.mark.unit
def test_soap_domain_for_real_org_and_sandbox():
    sandbox = Endpoint(url="https://127.0.0.1:8443", username="u", password=None)
    assert soap_domain(sandbox, "59.0") == "127.0.0.1:8443/services/Soap/u/59.0?"
    org = Endpoint(url="https://acme.my.salesforce.com", username="u", password=None)
    assert soap_domain(org, "59.0") == "acme.my"
    explicit = Endpoint(url="https://acme.my.salesforce.com", username="u", password=None, extra={"domain": "test"})
    assert soap_domain(explicit, "59.0") == "test"


# --- unit: watermark and overlap keys ---------------------------------------------------------


@pytest.mark.unit
def test_boundary_keys_keep_only_the_next_window():
    keys = pa.table(
        {"Id": ["a", "b", "c"],
         "SystemModstamp": pa.array([_utc(2026, 1, 1, 0, 0), _utc(2026, 1, 1, 0, 58), _utc(2026, 1, 1, 1, 0)],
                                    TIMESTAMP)},
        schema=KEY_SCHEMA,
    )
    lower = window_start(_utc(2026, 1, 1, 1, 0), timedelta(minutes=5))
    kept = merge_boundary(KEY_SCHEMA.empty_table(), keys, lower)
    assert sorted(kept["Id"].to_pylist()) == ["b", "c"]
    # The same key twice (overlap re-read) is kept once.
    again = merge_boundary(kept, keys, lower)
    assert again.num_rows == 2
    assert key_strings(pa.array(["a"]), pa.array([_utc(2026, 1, 1)], TIMESTAMP)).to_pylist() == [
        f"a|{int(_utc(2026, 1, 1).timestamp() * 1000)}"
    ]


@pytest.mark.unit
def test_watermark_commit_is_atomic_and_keeps_other_objects(tmp_path):
    store = WatermarkStore.load(tmp_path)
    assert store.get("Account").watermark is None
    store.commit({"Account": ObjectState(watermark=_utc(2026, 1, 1), fields=["Id"], last_run_id="r1")})
    store.commit({"Contact": ObjectState(watermark=_utc(2026, 1, 2), fields=["Id"], last_run_id="r2")})
    again = WatermarkStore.load(tmp_path)
    assert again.get("Account").watermark == _utc(2026, 1, 1)
    assert again.get("Contact").last_run_id == "r2"
    data = json.loads(watermark_file(tmp_path).read_text())
    assert data["objects"]["Account"]["watermark"] == "2026-01-01T00:00:00.000Z"
    assert not list(watermark_file(tmp_path).parent.glob(".*tmp"))


# --- unit: retries and re-login ---------------------------------------------------------------


def _refused():
    return SalesforceRefusedRequest(
        "u", 403, "query", [{"errorCode": "REQUEST_LIMIT_EXCEEDED", "message": "TotalRequests Limit exceeded."}]
    )


@pytest.mark.unit
def test_transient_faults_are_retried_with_backoff_then_succeed():
    faults = [_refused(), SalesforceGeneralError("u", 503, "query", "unavailable"),
              requests.ConnectionError("reset")]
    sleeps: list[float] = []

    def operation(sf):
        if faults:
            raise faults.pop(0)
        return "ok"

    conn = SalesforceConnection(lambda: object(), RetryPolicy(max_attempts=5, base_delay=0.5, max_delay=1.0),
                                sleep=sleeps.append)
    assert conn.call(operation) == "ok"
    assert sleeps == [0.5, 1.0, 1.0]


@pytest.mark.unit
def test_retries_are_bounded_and_other_errors_fail_at_once():
    conn = SalesforceConnection(lambda: object(), RetryPolicy(max_attempts=3, base_delay=0), sleep=lambda s: None)
    with pytest.raises(SalesforceRefusedRequest):
        conn.call(lambda sf: (_ for _ in ()).throw(_refused()))
    assert conn.retries == 2
    calls = []

    def malformed(sf):
        calls.append(1)
        raise SalesforceMalformedRequest("u", 400, "query", [{"errorCode": "INVALID_FIELD"}])

    with pytest.raises(SalesforceMalformedRequest):
        conn.call(malformed)
    assert len(calls) == 1
    other_403 = SalesforceRefusedRequest("u", 403, "q", [{"errorCode": "INSUFFICIENT_ACCESS"}])
    with pytest.raises(SalesforceRefusedRequest):
        conn.call(lambda sf: (_ for _ in ()).throw(other_403))


@pytest.mark.unit
def test_expired_session_relogs_in_once():
    clients = iter(["first", "second", "third"])
    conn = SalesforceConnection(lambda: next(clients), RetryPolicy(base_delay=0), sleep=lambda s: None)
    seen = []

    def operation(sf):
        seen.append(sf)
        if sf == "first":
            raise SalesforceExpiredSession("u", 401, "q", [{"errorCode": "INVALID_SESSION_ID"}])
        return sf

    assert conn.call(operation) == "second"
    assert seen == ["first", "second"] and conn.relogins == 1

    def always_expired(sf):
        raise SalesforceExpiredSession("u", 401, "q", [{"errorCode": "INVALID_SESSION_ID"}])

    with pytest.raises(SalesforceExpiredSession):
        conn.call(always_expired)
