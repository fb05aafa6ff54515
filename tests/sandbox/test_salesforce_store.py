"""Unit tests for the sandbox Salesforce org store (sandbox/salesforce/store.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from sandbox.salesforce.store import FieldSpec, SalesforceStore, UnknownObject, new_id

ACCOUNT_FIELDS = [
    FieldSpec("Name", "string"),
    FieldSpec("Household_Id__c", "string", external_id=True, unique=True),
    FieldSpec("Fee_Schedule_Bps__c", "double"),
    FieldSpec("Marketing_Consent__c", "boolean"),
    FieldSpec("Client_Since__c", "date"),
    FieldSpec("Risk_Profile__c", "picklist", picklist_values=("Conservative", "Growth")),
]


@pytest.fixture
def store(tmp_path):
    org = SalesforceStore(tmp_path / "salesforce.db")
    org.define_object("Account", ACCOUNT_FIELDS, "001")
    return org


def test_new_id_is_deterministic_18_chars():
    assert new_id("001", 1) == new_id("001", 1)
    assert len(new_id("001", 123456)) == 18
    assert new_id("001", 1).startswith("001")
    assert new_id("001", 1) != new_id("001", 2)


def test_insert_generates_ids_and_stamps(store):
    stamp = datetime(2024, 1, 15, 10, 30, tzinfo=UTC)
    n = store.insert_records(
        "Account",
        [
            {"Name": "A", "Household_Id__c": "HH1", "CreatedDate": stamp, "LastModifiedDate": stamp,
             "SystemModstamp": "2024-01-15T10:30:00.000+0000", "Marketing_Consent__c": True},
            {"Id": new_id("001", 999), "Name": "B", "Household_Id__c": "HH2",
             "CreatedDate": "2024-01-15T10:30:00Z", "LastModifiedDate": stamp, "SystemModstamp": stamp},
        ],
    )
    assert n == 2
    assert store.count("Account") == 2
    rows = store.select("Account", None, order_sql='"Name"')
    assert len(rows[0]["Id"]) == 18 and rows[0]["Id"].startswith("001")
    assert rows[0]["SystemModstamp"] == "2024-01-15T10:30:00.000+0000"
    assert rows[1]["CreatedDate"] == "2024-01-15T10:30:00.000+0000"
    assert rows[0]["Marketing_Consent__c"] is True
    assert rows[0]["IsDeleted"] is False


def test_update_and_soft_delete(store):
    store.insert_records("Account", [{"Id": new_id("001", 1), "Name": "A", "Household_Id__c": "HH1"}])
    later = datetime(2030, 1, 1, tzinfo=UTC)
    assert store.update_records("Account", [{"Id": new_id("001", 1), "Name": "A2"}], stamp=later) == 1
    row = store.get_record("Account", new_id("001", 1))
    assert row["Name"] == "A2" and row["SystemModstamp"] == "2030-01-01T00:00:00.000+0000"
    assert store.delete_records("Account", [new_id("001", 1)]) == 1
    assert store.count("Account") == 0
    assert store.count("Account", include_deleted=True) == 1
    assert store.get_record("Account", new_id("001", 1), include_deleted=True)["IsDeleted"] is True


def test_schema_drift_and_describe(store):
    store.insert_records("Account", [{"Name": "A"}])
    store.define_object("Account", [*ACCOUNT_FIELDS, FieldSpec("CLV__c", "currency")], "001")
    store.update_records("Account", [{"Id": store.select("Account", ["Id"])[0]["Id"], "CLV__c": 12.5}])
    assert store.select("Account", ["CLV__c"])[0]["CLV__c"] == 12.5
    describe = store.describe("Account")
    by_name = {f["name"]: f for f in describe["fields"]}
    assert {"Id", "CreatedDate", "LastModifiedDate", "SystemModstamp", "IsDeleted", "CLV__c"} <= set(by_name)
    assert by_name["Household_Id__c"]["externalId"] is True
    assert by_name["Household_Id__c"]["custom"] is True
    assert by_name["Name"]["custom"] is False
    assert by_name["Risk_Profile__c"]["picklistValues"][0]["value"] == "Conservative"
    assert describe["keyPrefix"] == "001"
    assert store.objects() == ["Account"]
    with pytest.raises(UnknownObject):
        store.describe("Nope")


def test_reopen_keeps_schema(tmp_path, store):
    store.insert_records("Account", [{"Name": "A"}, {"Name": "B"}])
    again = SalesforceStore(store.path)
    assert again.count("Account") == 2
    again.insert_records("Account", [{"Name": "C"}])
    ids = {r["Id"] for r in again.select("Account", ["Id"])}
    assert len(ids) == 3


def test_bulk_insert_of_many_rows(tmp_path):
    """100,000 rows in one streamed insert land whole (speed is measured by bench/, not asserted here)."""
    org = SalesforceStore(tmp_path / "big.db")
    org.define_object("Account", ACCOUNT_FIELDS, "001")
    stamp = "2024-01-15T10:30:00.000+0000"
    org.insert_records(
        "Account",
        ({"Id": new_id("001", i), "Name": f"N{i}", "Household_Id__c": f"HH{i:07d}", "Fee_Schedule_Bps__c": 80.0,
          "CreatedDate": stamp, "LastModifiedDate": stamp, "SystemModstamp": stamp} for i in range(100_000)),
    )
    assert org.count("Account") == 100_000
    assert org.get_record("Account", new_id("001", 99_999))["Household_Id__c"] == "HH0099999"
