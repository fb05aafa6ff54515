"""Fixtures: both sandbox servers on free ports over HTTPS, with a private state folder."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
import requests

from sandbox.credentials import ensure_credentials
from sandbox.salesforce.store import FieldSpec, SalesforceStore, new_id
from sandbox.server import start_in_thread

N_ACCOUNTS = 450
BASE_STAMP = datetime(2024, 1, 15, 10, 30, tzinfo=UTC)

ACCOUNT_FIELDS = [
    FieldSpec("Name", "string"),
    FieldSpec("Type", "picklist", picklist_values=("Household",)),
    FieldSpec("Household_Id__c", "string", external_id=True, unique=True, length=20),
    FieldSpec("AUM_Band__c", "picklist", picklist_values=("<250K", "250K-1M", "1M-5M", "5M-25M", "25M+")),
    FieldSpec("Fee_Schedule_Bps__c", "double"),
    FieldSpec("Client_Since__c", "date"),
    FieldSpec("Marketing_Consent__c", "boolean"),
    FieldSpec("BillingState", "string"),
    FieldSpec("CLV__c", "currency"),
    FieldSpec("Segment__c", "string"),
    FieldSpec("Scored_At__c", "datetime"),
]


def seed_org(store: SalesforceStore) -> None:
    store.define_object("Account", ACCOUNT_FIELDS, "001")
    records = []
    for i in range(N_ACCOUNTS):
        stamp = BASE_STAMP + timedelta(hours=i)
        records.append({
            "Id": new_id("001", i + 1), "Name": f"Household {i:04d}", "Type": "Household",
            "Household_Id__c": f"HH{i:07d}", "AUM_Band__c": "1M-5M" if i % 2 else "<250K",
            "Fee_Schedule_Bps__c": 50.0 + i % 50, "Client_Since__c": f"20{10 + i % 15:02d}-03-01",
            "Marketing_Consent__c": i % 3 == 0, "BillingState": "NY" if i % 4 else "CA",
            "CreatedDate": stamp, "LastModifiedDate": stamp, "SystemModstamp": stamp,
        })
    store.insert_records("Account", records)
    store.delete_records("Account", [new_id("001", 1), new_id("001", 2)], stamp=BASE_STAMP)


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory):
    state = tmp_path_factory.mktemp("sandbox-state")
    creds = ensure_credentials(SimpleNamespace(sandbox_secrets_file=state / "sandbox-credentials.json"))
    seed_org(SalesforceStore(state / "salesforce.db"))
    handle = start_in_thread(state, credentials=creds)
    yield handle
    handle.stop()


@pytest.fixture(autouse=True)
def _clean_faults(request):
    """Every test starts with no faults and zeroed counters."""
    if "sandbox" not in request.fixturenames:
        yield
        return
    handle = request.getfixturevalue("sandbox")
    for app in (handle.salesforce_app, handle.servicenow_app):
        app.faults.configure({"reset": True})
        app.faults.reset_stats()
    yield


@pytest.fixture
def tls_session(sandbox):
    """A requests Session that trusts the sandbox cert despite the machine-wide REQUESTS_CA_BUNDLE."""
    session = requests.Session()
    session.trust_env = False
    session.verify = str(sandbox.ca_cert)
    return session


def set_faults(sandbox, system: str, body: dict, session: requests.Session) -> dict:
    """Switch faults over the admin endpoint, as a test outside the process would."""
    url = sandbox.salesforce_url if system == "salesforce" else sandbox.servicenow_url
    creds = sandbox.credentials[system]
    response = session.post(f"{url}/__sandbox/faults", json=body, auth=(creds["username"], creds["password"]))
    response.raise_for_status()
    return response.json()


def get_stats(sandbox, system: str, session: requests.Session) -> dict:
    url = sandbox.salesforce_url if system == "salesforce" else sandbox.servicenow_url
    creds = sandbox.credentials[system]
    response = session.get(f"{url}/__sandbox/stats", auth=(creds["username"], creds["password"]))
    response.raise_for_status()
    return response.json()
