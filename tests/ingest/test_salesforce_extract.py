"""Salesforce extraction: pure parts (unit) and the whole run against the sandbox server (integration)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import requests
from simple_salesforce.exceptions import (
    SalesforceExpiredSession,
    SalesforceGeneralError,
    SalesforceMalformedRequest,
    SalesforceRefusedRequest,
)

from connectors.retry import RetryPolicy
from connectors.salesforce import SalesforceConnection, soap_domain
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


# --- integration: against the sandbox Salesforce server ---------------------------------------

SEED = 11
FAST_RETRY = RetryPolicy(max_attempts=6, base_delay=0.05, max_delay=0.4)


@pytest.fixture(scope="module")
def sf_sandbox(tmp_path_factory):
    """A seeded small world served over HTTPS on a free port (one per test module)."""
    import subprocess
    import sys

    from sandbox.credentials import _random_credentials
    from sandbox.server import start_in_thread

    root = tmp_path_factory.mktemp("sf_world")
    state = root / "state"
    env = {**__import__("os").environ, "NORTHSTAR_HOME": str(root / "var")}
    subprocess.run(
        [sys.executable, "-m", "sandbox", "seed", "--scale", "small", "--seed", str(SEED),
         "--state", str(state), "--drop", str(root / "drop"), "--truth", str(root / "truth")],
        check=True, env=env, capture_output=True, timeout=120,
    )
    handle = start_in_thread(state, credentials=_random_credentials())
    yield handle
    handle.stop()


@pytest.fixture
def sf_store(sf_sandbox):
    from sandbox.salesforce.store import SalesforceStore

    store = SalesforceStore(sf_sandbox.state_dir / "salesforce.db")
    yield store
    store.close()


@pytest.fixture
def sf_faults(sf_sandbox):
    faults = sf_sandbox.salesforce_app.faults
    faults.configure({"reset": True})
    yield faults
    faults.configure({"reset": True})


@pytest.fixture
def sf_extract(sf_sandbox, sf_faults, tmp_path):
    """Run extract_salesforce against the sandbox into this test's landing folder."""
    from connectors.salesforce import login
    from ingest.salesforce import ExtractConfig, extract_salesforce

    creds = sf_sandbox.credentials["salesforce"]
    from northstar.settings import Secret

    endpoint = Endpoint(
        url=sf_sandbox.salesforce_url,
        username=creds["username"],
        password=Secret(creds["password"]),
        security_token=Secret(creds["security_token"]),
        ca_bundle=sf_sandbox.ca_cert,
    )
    landing = tmp_path / "landing"

    def run(objects=None, full_refresh=False, run_id=None, **config):
        config.setdefault("retry", FAST_RETRY)
        config.setdefault("bulk_poll_wait", 0.0)
        cfg = ExtractConfig(**config)
        return extract_salesforce(
            landing, objects=objects, run_id=run_id, full_refresh=full_refresh, config=cfg,
            connect=lambda: login(endpoint),
        )

    run.landing = landing
    return run


def _landed(landing, report, name) -> pa.Table:
    path = report.objects[name].path
    return pq.read_table(landing / path)


def _store_objects(store):
    from ingest.salesforce import DEFAULT_OBJECTS

    return [name for name in DEFAULT_OBJECTS if name in store.objects()]


@pytest.mark.integration
def test_first_run_lands_every_record_including_deleted(sf_extract, sf_store):
    objects = _store_objects(sf_store)
    assert set(objects) == {"User", "Account", "Contact", "Case", "Task", "Event", "Opportunity",
                            "Brokerage_Account__c"}
    # A low threshold sends the big objects through Bulk API 2.0 and the small ones through REST.
    report = sf_extract(bulk_threshold=3_000, bulk_page_size=1_500, rest_batch_rows=700)
    assert report.ok, report.as_dict()
    apis = {name: r.api for name, r in report.objects.items()}
    assert "bulk2" in apis.values() and "rest" in apis.values()
    for name in objects:
        table = _landed(sf_extract.landing, report, name)
        expected = sf_store.count(name, include_deleted=True)
        assert table.num_rows == expected == report.objects[name].rows, name
        assert len(set(table["Id"].to_pylist())) == expected, name
        assert report.objects[name].deleted_rows == expected - sf_store.count(name), name
        assert report.objects[name].mode == "full"
    account = _landed(sf_extract.landing, report, "Account")
    assert account.schema.field("SystemModstamp").type == TIMESTAMP
    assert account.schema.field("Fee_Schedule_Bps__c").type == pa.float64()
    assert account.schema.field("Client_Since__c").type == pa.date32()
    assert account.schema.field("Analytics_Consent__c").type == pa.bool_()
    manifest = pq.read_table(report.manifest_path)
    assert sorted(manifest["object"].to_pylist()) == sorted(objects)
    assert set(manifest["status"].to_pylist()) == {"ok"}


@pytest.mark.integration
def test_bulk_and_rest_land_identical_values(sf_extract):
    via_rest = sf_extract(objects=["Account", "Task"], bulk_threshold=0, full_refresh=True)
    via_bulk = sf_extract(objects=["Account", "Task"], bulk_objects=frozenset({"Account", "Task"}),
                          bulk_page_size=400, full_refresh=True)
    for name in ("Account", "Task"):
        assert via_rest.objects[name].api == "rest" and via_bulk.objects[name].api == "bulk2"
        rest = _landed(sf_extract.landing, via_rest, name).drop_columns(["_run_id", "_extracted_at"]).sort_by("Id")
        bulk = _landed(sf_extract.landing, via_bulk, name).drop_columns(["_run_id", "_extracted_at"]).sort_by("Id")
        assert rest.equals(bulk), name


@pytest.mark.integration
def test_incremental_runs_pick_up_exactly_the_changes(sf_extract, sf_store):
    objects = ["Account", "Contact", "Case"]
    first = sf_extract(objects=objects)
    assert first.ok
    accounts = [r["Id"] for r in sf_store.select("Account", ["Id"], limit=5)]
    contacts = [r["Id"] for r in sf_store.select("Contact", ["Id"], limit=4)]
    sf_store.update_records("Account", [{"Id": i, "Risk_Profile__c": "Growth"} for i in accounts[:3]])
    sf_store.delete_records("Account", accounts[3:5])
    sf_store.delete_records("Contact", contacts)

    second = sf_extract(objects=objects)
    assert second.ok
    assert all(r.mode == "incremental" for r in second.objects.values())
    account = _landed(sf_extract.landing, second, "Account")
    assert sorted(account["Id"].to_pylist()) == sorted(accounts)
    deleted = dict(zip(account["Id"].to_pylist(), account["_is_deleted"].to_pylist(), strict=True))
    assert [deleted[i] for i in accounts] == [False, False, False, True, True]
    assert second.objects["Account"].deleted_rows == 2
    contact = _landed(sf_extract.landing, second, "Contact")
    assert sorted(contact["Id"].to_pylist()) == sorted(contacts)
    assert all(contact["_is_deleted"].to_pylist())
    assert second.objects["Case"].rows == 0
    assert second.objects["Account"].watermark_after > first.objects["Account"].watermark_after

    third = sf_extract(objects=objects, run_id="scheduled__2026-10-30T01:30:00+00:00")
    assert third.ok
    assert {name: r.rows for name, r in third.objects.items()} == dict.fromkeys(objects, 0)
    manifest = pq.read_table(third.manifest_path).to_pylist()
    assert {row["object"] for row in manifest} == set(objects)
    assert all(row["watermark_after"] == row["watermark_before"] for row in manifest)

    # A retried task keeps its run id: its files go beside the first attempt's, never over them.
    retried = sf_extract(objects=objects, run_id="scheduled__2026-10-30T01:30:00+00:00")
    assert retried.objects["Account"].path.endswith("scheduled__2026-10-30T01_30_00_00_00__2.parquet")
    assert retried.manifest_path.endswith("__2.parquet")
    assert (sf_extract.landing / third.objects["Account"].path).exists()


@pytest.mark.integration
def test_watermark_stays_when_writing_fails(sf_extract, sf_store, monkeypatch):
    from ingest.salesforce import extract as extract_module

    first = sf_extract(objects=["Opportunity"])
    before = json.loads(watermark_file(sf_extract.landing).read_text())
    ids = [r["Id"] for r in sf_store.select("Opportunity", ["Id"], limit=2)]
    sf_store.update_records("Opportunity", [{"Id": i, "StageName": "Closed Won"} for i in ids])

    def disk_full(self):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(extract_module.LandingFile, "commit", disk_full)
    failed = sf_extract(objects=["Opportunity"])
    assert not failed.ok and failed.failed == ["Opportunity"]
    assert "No space left" in failed.objects["Opportunity"].error
    assert json.loads(watermark_file(sf_extract.landing).read_text()) == before
    manifest = pq.read_table(failed.manifest_path).to_pylist()
    assert manifest[0]["status"] == "failed"
    assert manifest[0]["watermark_after"] == manifest[0]["watermark_before"]
    assert not list((sf_extract.landing / "salesforce" / "Opportunity").rglob("*.tmp"))

    # A crash after the data is written but before the manifest: the watermark does not move either.
    monkeypatch.undo()
    monkeypatch.setattr(extract_module, "_write_manifest", lambda *a, **k: (_ for _ in ()).throw(OSError("crash")))
    with pytest.raises(OSError, match="crash"):
        sf_extract(objects=["Opportunity"])
    assert json.loads(watermark_file(sf_extract.landing).read_text()) == before

    monkeypatch.undo()
    rerun = sf_extract(objects=["Opportunity"])
    assert rerun.ok
    assert sorted(_landed(sf_extract.landing, rerun, "Opportunity")["Id"].to_pylist()) == sorted(ids)
    assert rerun.objects["Opportunity"].watermark_after > first.objects["Opportunity"].watermark_after


@pytest.mark.integration
def test_extraction_survives_limits_503_and_an_expired_session(sf_extract, sf_faults, sf_store, monkeypatch):
    import threading

    # REST and Bulk both see: two 503s, then one expired session.
    sf_faults.configure({"unavailable": 2, "expire_session": 1, "in_progress_polls": 2})
    report = sf_extract(objects=["Account", "User"], bulk_objects=frozenset({"Account"}), bulk_page_size=300)
    assert report.ok, report.as_dict()
    assert report.objects["Account"].rows == sf_store.count("Account", include_deleted=True)

    assert report.retries >= 2

    # Faults aimed at the Bulk API 2.0 calls, which simple-salesforce never retries or refreshes:
    # armed right after the object's describe, they hit the job creation and polling.
    from ingest.salesforce import extract as extract_module

    choose_api = extract_module._choose_api

    def arm_then_choose(conn, name, since, cfg):
        sf_faults.configure({"expire_session": 1, "unavailable": 1})
        return choose_api(conn, name, since, cfg)

    monkeypatch.setattr(extract_module, "_choose_api", arm_then_choose)
    bulk = sf_extract(objects=["Task"], bulk_objects=frozenset({"Task"}), bulk_page_size=500)
    monkeypatch.undo()
    assert bulk.ok, bulk.as_dict()
    assert bulk.objects["Task"].api == "bulk2"
    assert bulk.objects["Task"].rows == sf_store.count("Task", include_deleted=True)
    assert bulk.relogins == 1 and bulk.retries == 1

    # The daily limit runs out mid-run and the window rolls over a moment later.
    sf_faults.configure({"reset": True, "api_limit_after": 4})
    timer = threading.Timer(0.6, lambda: sf_faults.configure({"reset": True}))
    timer.start()
    try:
        limited = sf_extract(objects=["Contact", "Case"], full_refresh=True)
    finally:
        timer.cancel()
    assert limited.ok, limited.as_dict()
    assert limited.objects["Contact"].rows == sf_store.count("Contact", include_deleted=True)
    assert limited.objects["Case"].rows == sf_store.count("Case", include_deleted=True)

    # A limit that never lifts fails the objects after the bounded retries, watermarks untouched.
    sf_faults.configure({"reset": True, "api_limit_after": 0})
    exhausted = sf_extract(objects=["Event"])
    assert exhausted.failed == ["Event"]
    assert "REQUEST_LIMIT_EXCEEDED" in exhausted.objects["Event"].error


@pytest.mark.integration
def test_new_custom_field_lands_and_is_recorded_as_drift(sf_extract, sf_store):
    from sandbox.salesforce.store import FieldSpec

    first = sf_extract(objects=["Account"])
    assert "Wallet_Share__c" not in _landed(sf_extract.landing, first, "Account").column_names
    sf_store.define_object("Account", [FieldSpec("Wallet_Share__c", "percent")], sf_store.key_prefix("Account"))
    some = [r["Id"] for r in sf_store.select("Account", ["Id"], limit=3)]
    sf_store.update_records("Account", [{"Id": i, "Wallet_Share__c": 42.5} for i in some])
    second = sf_extract(objects=["Account"])
    assert second.ok
    result = second.objects["Account"]
    assert result.fields_added == ["Wallet_Share__c"] and result.fields_removed == []
    table = _landed(sf_extract.landing, second, "Account")
    assert table.schema.field("Wallet_Share__c").type == pa.float64()
    assert sorted(table["Id"].to_pylist()) == sorted(some)
    assert set(table["Wallet_Share__c"].to_pylist()) == {42.5}
    manifest = pq.read_table(second.manifest_path).to_pylist()[0]
    assert manifest["fields_added"] == ["Wallet_Share__c"]


@pytest.mark.integration
def test_cli_logs_in_with_the_configured_endpoint(sf_sandbox, sf_store, tmp_path, monkeypatch, capsys):
    """``python -m ingest salesforce`` with credentials from NORTHSTAR_SALESFORCE_* (no code-side endpoint)."""
    from ingest.__main__ import main
    from northstar import settings as settings_module

    creds = sf_sandbox.credentials["salesforce"]
    monkeypatch.setenv("NORTHSTAR_HOME", str(tmp_path / "var"))
    monkeypatch.setenv("NORTHSTAR_NO_AIRFLOW_CONNECTIONS", "1")
    monkeypatch.setenv("NORTHSTAR_SALESFORCE_URL", sf_sandbox.salesforce_url)
    monkeypatch.setenv("NORTHSTAR_SALESFORCE_USERNAME", creds["username"])
    monkeypatch.setenv("NORTHSTAR_SALESFORCE_PASSWORD", creds["password"])
    monkeypatch.setenv("NORTHSTAR_SALESFORCE_SECURITY_TOKEN", creds["security_token"])
    monkeypatch.setenv("NORTHSTAR_SALESFORCE_CA_BUNDLE", str(sf_sandbox.ca_cert))
    settings_module.reset_cache()
    try:
        code = main(["salesforce", "--objects", "User,Brokerage_Account__c", "--run-id", "manual__1"])
    finally:
        settings_module.reset_cache()
    out = capsys.readouterr()
    assert code == 0, out.out
    summary = json.loads(out.out)
    assert summary["objects"]["User"]["rows"] == sf_store.count("User", include_deleted=True)
    landing = tmp_path / "var" / "landing"
    assert (landing / "_manifest" / "salesforce" / "manual__1.parquet").exists()
    assert watermark_file(landing).exists()
    for secret in (creds["password"], creds["security_token"]):
        assert secret not in out.out and secret not in out.err
