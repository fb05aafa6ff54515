"""The CRM side of the world: the Salesforce schema and the records a household's history leaves.

``SCHEMA`` declares every object and field of the contract (sandbox/README.md), including the
Account output fields the pipeline writes back. ``*_frame`` functions turn one simulated household
chunk into column-oriented record frames (polars), fully vectorised; ``CrmWriter`` loads them into
the sandbox org (``sandbox.salesforce.store``), replacing whatever was there.

Record ids are the store's own format (``new_id``: key prefix, ``5g``, a base62 counter and the
case-safe suffix), built vectorised; after seeding, each object's id counter is moved past the
ids the seed used so ids the server hands out later never collide.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import polars as pl

from sandbox.salesforce.store import FieldSpec, SalesforceStore, quote, table_name
from sandbox.world import persons
from sandbox.world.households import (
    ACCOUNT_TYPES,
    AUM_BAND_EDGES,
    AUM_BANDS,
    CUSTODIANS,
    RISK_PROFILES,
    T_HIST,
    HouseholdChunk,
)

SEGMENTS = ("High-Value Growth Potential", "At-Risk Retention Priority", "Core - Maintain", "Service Efficiently")
REGIONS = {
    "Northeast": ["NY", "MA", "CT", "NJ", "PA"],
    "Southeast": ["FL", "GA", "NC", "VA", "TN"],
    "Midwest": ["IL", "OH", "MI", "MN", "WI"],
    "Southwest": ["TX", "AZ", "NM", "OK", "CO"],
    "West": ["CA", "WA", "OR", "NV", "UT"],
}
REGION_NAMES = np.array(list(REGIONS))
REGION_STATES = np.array([REGIONS[r] for r in REGION_NAMES])
FIRST_NAMES = np.array(
    "James Mary Robert Patricia John Jennifer Michael Linda David Elizabeth William Barbara Richard "
    "Susan Joseph Jessica Thomas Sarah Charles Karen Christopher Lisa Daniel Nancy Matthew Betty "
    "Anthony Margaret Mark Sandra Donald Ashley Steven Kimberly Paul Emily Andrew Donna Joshua "
    "Michelle Kenneth Carol Kevin Amanda Brian Dorothy George Melissa Timothy Deborah Ronald "
    "Stephanie Edward Rebecca Jason Sharon Jeffrey Laura Ryan Cynthia Jacob Kathleen Gary Amy "
    "Nicholas Angela Eric Shirley Jonathan Anna Stephen Brenda Larry Pamela Justin Emma Scott "
    "Nicole Brandon Helen Benjamin Samantha Samuel Katherine Gregory Christine Alexander Debra "
    "Frank Rachel Patrick Carolyn Raymond Janet Jack Maria Dennis Olivia Jerry Heather Priya Wei "
    "Hiroshi Aisha Carlos Sofia Mateo Ingrid".split()
)
LAST_NAMES = np.array(
    "Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez Lopez "
    "Gonzalez Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson White Harris "
    "Sanchez Clark Ramirez Lewis Robinson Walker Young Allen King Wright Scott Torres Nguyen Hill "
    "Flores Green Adams Nelson Baker Hall Rivera Campbell Mitchell Carter Roberts Gomez Phillips "
    "Evans Turner Diaz Parker Cruz Edwards Collins Reyes Stewart Morris Morales Murphy Cook Rogers "
    "Gutierrez Ortiz Morgan Cooper Peterson Bailey Reed Kelly Howard Ramos Kim Cox Ward Richardson "
    "Watson Brooks Chavez Wood James Bennett Gray Mendoza Ruiz Hughes Price Alvarez Castillo "
    "Sanders Patel Myers Long Ross Foster Okafor Lindqvist Tanaka Chen Kowalski Haddad".split()
)
TITLES = np.array(["Wealth Advisor", "Senior Wealth Advisor", "Managing Director"])
CASE_SUBJECTS_SERVICE = np.array([
    "Address change", "Beneficiary update", "Wire transfer request", "Statement copy request",
    "Tax document question", "RMD distribution setup", "Online access reset", "Cost basis question",
])
CASE_SUBJECTS_COMPLAINT = np.array([
    "Complaint: fee charged incorrectly", "Complaint: delayed transfer", "Complaint: performance",
    "Complaint: advisor unresponsive", "Complaint: trade executed late", "Complaint: statement error",
])
CASE_ORIGINS = np.array(["Phone", "Email", "Web"])
CALL_SUBJECTS = np.array(["Call: portfolio review", "Call: market update", "Call: check-in", "Call: planning"])
EMAIL_SUBJECTS = np.array(["Email: quarterly letter", "Email: follow-up", "Email: documents", "Email: market note"])
MEETING_SUBJECTS = np.array(["Annual review", "Financial plan meeting", "Estate planning review", "Portfolio review"])
OPEN_STAGES = np.array(["Qualification", "Needs Analysis", "Proposal"])
IDENTITY_TRUTH = "_identity_truth"  # household_frames' key for who is who (goes to truth/, not the org)

KEY_PREFIX = {
    "User": "005", "Account": "001", "Contact": "003", "Case": "500", "Task": "00T", "Event": "00U",
    "Opportunity": "006", "Brokerage_Account__c": "a01",
}


def _f(name, type_, **kw) -> FieldSpec:
    return FieldSpec(name, type_, **kw)


SCHEMA: dict[str, list[FieldSpec]] = {
    "User": [
        _f("Username", "string", unique=True, nillable=False), _f("FirstName", "string"),
        _f("LastName", "string", nillable=False), _f("Email", "email"), _f("Title", "string"),
        _f("IsActive", "boolean"),
        _f("Region__c", "picklist", picklist_values=tuple(REGION_NAMES)),
    ],
    "Account": [
        _f("Name", "string", nillable=False),
        _f("Type", "picklist", picklist_values=("Household",)),
        _f("OwnerId", "reference", reference_to="User"),
        _f("Household_Id__c", "string", external_id=True, unique=True, length=9),
        _f("AUM_Band__c", "picklist", picklist_values=tuple(AUM_BANDS)),
        _f("Fee_Schedule_Bps__c", "double"),
        _f("Client_Since__c", "date"),
        _f("Risk_Profile__c", "picklist", picklist_values=tuple(RISK_PROFILES)),
        _f("Marketing_Consent__c", "boolean"),
        _f("Analytics_Consent__c", "boolean"),
        _f("BillingState", "string"),
        _f("Value_12M__c", "double"),
        _f("CLV__c", "currency"),
        _f("Value_Percentile__c", "percent"),
        _f("Segment__c", "picklist", picklist_values=SEGMENTS),
        _f("Attrition_Risk__c", "percent"),
        _f("Top_Drivers__c", "textarea"),
        _f("Model_Version__c", "string"),
        _f("Scored_At__c", "datetime"),
    ],
    "Contact": [
        _f("AccountId", "reference", reference_to="Account"), _f("FirstName", "string"),
        _f("LastName", "string", nillable=False), _f("Email", "email"), _f("Phone", "phone"),
        _f("Birthdate", "date"), _f("MailingState", "string"), _f("Is_Primary__c", "boolean"),
        _f("MailingStreet", "textarea"), _f("MailingCity", "string"), _f("MailingPostalCode", "string"),
        # the client's tax id as the advisor typed it (staging hashes it: it never reaches a mart)
        _f("Tax_Id__c", "string", length=11),
        _f("HasOptedOutOfEmail", "boolean"),
    ],
    "Case": [
        _f("AccountId", "reference", reference_to="Account"),
        _f("ContactId", "reference", reference_to="Contact"),
        _f("Subject", "string"),
        _f("Type", "picklist", picklist_values=("Service Request", "Complaint")),
        _f("Priority", "picklist", picklist_values=("Low", "Medium", "High")),
        _f("Status", "picklist", picklist_values=("New", "Working", "Escalated", "Closed")),
        _f("Origin", "picklist", picklist_values=tuple(CASE_ORIGINS)),
        _f("IsClosed", "boolean"),
        _f("ClosedDate", "datetime"),
    ],
    "Task": [
        _f("WhatId", "reference", reference_to="Account"),
        _f("WhoId", "reference", reference_to="Contact"),
        _f("OwnerId", "reference", reference_to="User"),
        _f("Subject", "string"),
        _f("Type", "picklist", picklist_values=("Call", "Email")),
        _f("TaskSubtype", "picklist", picklist_values=("Call", "Email", "Task")),
        _f("ActivityDate", "date"),
        _f("Status", "picklist", picklist_values=("Not Started", "In Progress", "Completed")),
        _f("CallDurationInSeconds", "int"),
        # written by activate/ (advisor retention Tasks): the idempotency key and the reasons
        _f("Description", "textarea"),
        _f("Northstar_Key__c", "string", external_id=True, unique=True, length=80),
    ],
    "Event": [
        _f("WhatId", "reference", reference_to="Account"),
        _f("WhoId", "reference", reference_to="Contact"),
        _f("OwnerId", "reference", reference_to="User"),
        _f("Subject", "string"),
        _f("Type", "picklist", picklist_values=("Meeting",)),
        _f("StartDateTime", "datetime"),
        _f("EndDateTime", "datetime"),
        _f("DurationInMinutes", "int"),
    ],
    "Opportunity": [
        _f("AccountId", "reference", reference_to="Account"),
        _f("OwnerId", "reference", reference_to="User"),
        _f("Name", "string", nillable=False),
        _f("Type", "picklist", picklist_values=("New Money", "Referral")),
        _f("Amount", "currency"),
        _f("StageName", "picklist", picklist_values=(*OPEN_STAGES, "Closed Won", "Closed Lost")),
        _f("CloseDate", "date"),
        _f("IsClosed", "boolean"),
        _f("IsWon", "boolean"),
    ],
    "Brokerage_Account__c": [
        _f("Name", "string", nillable=False),
        _f("Account_Number__c", "string", external_id=True, unique=True, length=10),
        _f("Household__c", "reference", reference_to="Account"),
        _f("Custodian__c", "picklist", picklist_values=tuple(CUSTODIANS)),
        _f("Account_Type__c", "picklist", picklist_values=tuple(ACCOUNT_TYPES)),
        _f("Status__c", "picklist", picklist_values=("Open", "Closed")),
        _f("Opened_Date__c", "date"),
        _f("Closed_Date__c", "date"),
        # the owner as the custodian's feed spells them ("SMITH, WILLIAM J", MM/DD/YYYY, upper-case street)
        _f("Owner_Name__c", "string"), _f("Owner_Birthdate__c", "string", length=10),
        _f("Owner_Street__c", "string"), _f("Owner_Postal_Code__c", "string", length=10),
        _f("Owner_Tax_Id__c", "string", length=11),
    ],
}

_BASE62 = np.frombuffer(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", dtype=np.uint8)
_SUFFIX = np.frombuffer(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345", dtype=np.uint8)


def sf_ids(prefix: str, counters: np.ndarray) -> pl.Series:
    """``sandbox.salesforce.store.new_id`` for a whole array of counters at once."""
    counters = np.asarray(counters, dtype=np.int64)
    out = np.empty((len(counters), 18), dtype=np.uint8)
    out[:, :5] = np.frombuffer((prefix + "5g").encode(), dtype=np.uint8)
    value = counters.copy()
    for pos in range(14, 4, -1):
        out[:, pos] = _BASE62[value % 62]
        value //= 62
    upper = (out[:, :15] >= ord("A")) & (out[:, :15] <= ord("Z"))
    weights = 1 << np.arange(5)
    for block in range(3):
        out[:, 15 + block] = _SUFFIX[(upper[:, block * 5 : block * 5 + 5] * weights).sum(axis=1)]
    return pl.Series(out.view("S18").ravel()).cast(pl.String)


def sf_datetime(ms: np.ndarray) -> pl.Series:
    """datetime64[ms] -> Salesforce's '2024-01-15T10:30:00.000+0000' text."""
    return pl.Series(np.asarray(ms, dtype="datetime64[ms]")).dt.strftime("%Y-%m-%dT%H:%M:%S%.3f+0000")


def sf_date(days: np.ndarray) -> pl.Series:
    return pl.Series(np.asarray(days, dtype="datetime64[D]")).dt.strftime("%Y-%m-%d")


def aum_band(mv: np.ndarray) -> np.ndarray:
    return AUM_BANDS[np.digitize(mv, AUM_BAND_EDGES)]


class IdCounter:
    """Per-object running counters so ids are unique across chunks (and deterministic)."""

    def __init__(self) -> None:
        self.next = dict.fromkeys(KEY_PREFIX, 1)

    def take(self, obj: str, n: int) -> pl.Series:
        start = self.next[obj]
        self.next[obj] = start + n
        return sf_ids(KEY_PREFIX[obj], np.arange(start, start + n))


class WorldClock:
    """Month boundaries of the history window, in numpy datetime64, and the as-of cut-off."""

    def __init__(self, as_of: date) -> None:
        first = np.datetime64(f"{as_of.year:04d}-{as_of.month:02d}", "M") - (T_HIST - 1)
        self.month_start = (first + np.arange(T_HIST + 1)).astype("datetime64[D]")
        days = np.diff(self.month_start).astype(np.int64)
        days[-1] = as_of.day  # nothing in the world happens after as-of
        self.month_days = days
        self.as_of = np.datetime64(as_of, "D")
        self.as_of_end_ms = (self.as_of + 1).astype("datetime64[ms]") - np.timedelta64(1, "s")

    def random_moment(self, r: np.random.Generator, t: np.ndarray, start_hour=13, end_hour=23) -> np.ndarray:
        """A datetime64[ms] inside month t (UTC business-ish hours), never after as-of."""
        day = (r.random(len(t)) * self.month_days[t]).astype(np.int64)
        secs = r.integers(start_hour * 3600, end_hour * 3600, len(t))
        ms = r.integers(0, 1000, len(t))
        base = self.month_start[t].astype("datetime64[ms]")
        return base + (day * 86_400_000 + secs * 1000 + ms).astype("timedelta64[ms]")


def _expand(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(household, month) pairs repeated by a count matrix (n, T_HIST)."""
    flat = np.flatnonzero(counts)
    rep = counts.ravel()[flat].astype(np.int64)
    flat = np.repeat(flat, rep)
    return flat // counts.shape[1], flat % counts.shape[1]


def _stamps(r, created_ms: np.ndarray, clock: WorldClock, touch_days: float = 30.0) -> tuple:
    """LastModified = created + a random touch, capped at as-of."""
    touch = (r.exponential(touch_days, len(created_ms)) * 86_400_000).astype(np.int64)
    modified = np.minimum(created_ms + touch.astype("timedelta64[ms]"), clock.as_of_end_ms)
    modified = np.maximum(modified, created_ms)
    return sf_datetime(created_ms), sf_datetime(modified)


def user_frame(r: np.random.Generator, n: int, ids: IdCounter, as_of: date) -> pl.DataFrame:
    first = FIRST_NAMES[r.integers(0, len(FIRST_NAMES), n)]
    last = LAST_NAMES[r.integers(0, len(LAST_NAMES), n)]
    seq = np.char.zfill(np.arange(1, n + 1).astype(str), 4)
    handle = np.char.add(np.char.add(np.char.lower(first), "."), np.char.lower(last))
    username = np.char.add(np.char.add(handle, seq), "@northstar-wealth.example")
    created = np.datetime64("2012-01-01", "ms") + (r.random(n) * 3650 * 86_400_000).astype("timedelta64[ms]")
    created_s, modified_s = _stamps(r, created, WorldClock(as_of), 900.0)
    return pl.DataFrame({
        "Id": ids.take("User", n),
        "CreatedDate": created_s, "LastModifiedDate": modified_s, "SystemModstamp": modified_s,
        "Username": username, "FirstName": first, "LastName": last, "Email": username,
        "Title": TITLES[r.choice(3, n, p=[0.6, 0.3, 0.1])], "IsActive": r.random(n) > 0.03,
        "Region__c": REGION_NAMES[np.arange(n) % len(REGION_NAMES)],
    })


def household_frames(
    r: np.random.Generator,
    hh: HouseholdChunk,
    ids: IdCounter,
    user_ids: np.ndarray,
    user_region: np.ndarray,
    acct_numbers: np.ndarray,
    clock: WorldClock,
    identity_rng: np.random.Generator | None = None,
    hostile: bool = False,
) -> dict[str, pl.DataFrame]:
    """Every CRM record one household chunk produces, as one frame per object.

    With ``identity_rng``, people also get addresses, tax ids and e-mail opt-outs, some get duplicate
    Contacts, brokerage accounts their custodian-formatted owner (``sandbox.world.persons``), and the
    truth of who is who comes back under ``IDENTITY_TRUTH`` (not an object: the caller writes it to truth/)."""
    n = hh.n
    frames: dict[str, pl.DataFrame] = {}
    owner = pl.Series(user_ids).gather(hh.advisor)
    state = REGION_STATES[user_region[hh.advisor], r.integers(0, REGION_STATES.shape[1], n)]
    last_name = LAST_NAMES[r.integers(0, len(LAST_NAMES), n)]
    account_ids = ids.take("Account", n)
    closed = hh.close_t < T_HIST
    last_mv = np.where(closed, hh.mv[np.arange(n), np.clip(hh.decide_t - 1, 0, T_HIST - 1)],
                       hh.mv[:, T_HIST - 1])
    created_ms = hh.client_since.astype("datetime64[ms]") + (
        r.integers(13 * 3600, 22 * 3600, n) * 1000).astype("timedelta64[ms]")
    created_s, modified_s = _stamps(r, created_ms, clock, 400.0)
    hh_ids = np.char.add("HH", np.char.zfill((hh.start + np.arange(n) + 1).astype(str), 7))
    frames["Account"] = pl.DataFrame({
        "Id": account_ids, "CreatedDate": created_s, "LastModifiedDate": modified_s,
        "SystemModstamp": modified_s,
        "Name": np.char.add(last_name, " Household"), "Type": np.full(n, "Household"),
        "OwnerId": owner, "Household_Id__c": hh_ids, "AUM_Band__c": aum_band(last_mv),
        "Fee_Schedule_Bps__c": hh.fee_bps, "Client_Since__c": sf_date(hh.client_since),
        "Risk_Profile__c": RISK_PROFILES[hh.risk_idx], "Marketing_Consent__c": hh.marketing_consent,
        "Analytics_Consent__c": hh.analytics_consent, "BillingState": state,
    })

    # contacts: the primary, often a spouse, sometimes an adult child
    spouse = r.random(n) < 0.55
    child = r.random(n) < 0.2
    kinds = np.stack([np.ones(n, bool), spouse, child], axis=1)
    c_hh, c_kind = np.nonzero(kinds)
    nc = len(c_hh)
    contact_ids = ids.take("Contact", nc)
    age = hh.age[c_hh] + np.select([c_kind == 1, c_kind == 2], [r.normal(-2, 4, nc), -r.uniform(24, 34, nc)], 0.0)
    age = np.clip(age, 19.0, 99.0)
    birth = clock.as_of - (age * 365.25).astype(np.int64).astype("timedelta64[D]")
    first = FIRST_NAMES[r.integers(0, len(FIRST_NAMES), nc)]
    c_last = last_name[c_hh]
    # one mailbox per person: a spouse or child who shares the primary's first name still has their own
    member = np.where(c_kind == 0, "", np.char.add("-", c_kind.astype(str)))
    email = np.char.add(np.char.add(np.char.add(np.char.lower(first), "."), np.char.lower(c_last)),
                        np.char.add(np.char.add(np.char.add(".", (hh.start + c_hh + 1).astype(str)), member),
                                    "@example.com"))
    phone = np.char.add("+1-555-01", np.char.zfill(r.integers(0, 100_000, nc).astype(str), 5))
    c_created = created_ms[c_hh] + (r.integers(0, 3_600_000, nc)).astype("timedelta64[ms]")
    c_created_s, c_modified_s = _stamps(r, c_created, clock, 600.0)
    frames["Contact"] = pl.DataFrame({
        "Id": contact_ids, "CreatedDate": c_created_s, "LastModifiedDate": c_modified_s,
        "SystemModstamp": c_modified_s, "AccountId": account_ids.gather(c_hh), "FirstName": first,
        "LastName": c_last, "Email": email, "Phone": phone, "Birthdate": sf_date(birth),
        "MailingState": state[c_hh], "Is_Primary__c": c_kind == 0,
    })
    primary_contact = contact_ids.gather(np.flatnonzero(c_kind == 0))  # one per household, in order
    contact_household, contact_kind = c_hh, c_kind

    # brokerage accounts
    a_hh = hh.acct_household
    na = len(a_hh)
    opened = hh.client_since[a_hh] + r.integers(0, 30, na).astype("timedelta64[D]")
    opened = np.minimum(opened, clock.as_of)
    a_closed = closed[a_hh]
    a_created = opened.astype("datetime64[ms]") + np.timedelta64(15, "h")
    close_ms = np.where(a_closed, hh.attrited_on[a_hh], opened).astype("datetime64[ms]") + np.timedelta64(16, "h")
    a_created_s, a_modified_s = _stamps(r, a_created, clock, 700.0)
    a_modified_s = pl.Series(np.where(a_closed, sf_datetime(close_ms).to_numpy(), a_modified_s.to_numpy()))
    frames["Brokerage_Account__c"] = pl.DataFrame({
        "Id": ids.take("Brokerage_Account__c", na), "CreatedDate": a_created_s,
        "LastModifiedDate": a_modified_s, "SystemModstamp": a_modified_s,
        "Name": acct_numbers, "Account_Number__c": acct_numbers, "Household__c": account_ids.gather(a_hh),
        "Custodian__c": CUSTODIANS[hh.acct_custodian], "Account_Type__c": ACCOUNT_TYPES[hh.acct_type],
        "Status__c": np.where(a_closed, "Closed", "Open"), "Opened_Date__c": sf_date(opened),
        "Closed_Date__c": pl.Series(np.where(a_closed, hh.attrited_on[a_hh], np.datetime64("NaT"))
                                    .astype("datetime64[D]")).dt.strftime("%Y-%m-%d"),
    })

    # tasks: calls then emails
    hist = slice(0, T_HIST)
    parts = []
    for kind, counts, subjects in (("Call", hh.calls[:, hist], CALL_SUBJECTS),
                                   ("Email", hh.emails[:, hist], EMAIL_SUBJECTS)):
        t_hh, t_m = _expand(counts)
        k = len(t_hh)
        when = clock.random_moment(r, t_m)
        duration = (pl.Series(np.clip(r.lognormal(5.7, 0.6, k), 30, 5400).astype(np.int64)) if kind == "Call"
                    else pl.repeat(None, k, dtype=pl.Int64, eager=True))
        parts.append(pl.DataFrame({
            "hh": t_hh, "when": when, "Subject": pl.Series(subjects).gather(r.integers(0, len(subjects), k)),
            "Type": pl.Series([kind]).gather(np.zeros(k, np.int64)), "CallDurationInSeconds": duration,
        }))
    tasks = pl.concat(parts)
    t_hh = tasks["hh"].to_numpy()
    when = tasks["when"].to_numpy()
    created_s, modified_s = _stamps(r, when, clock, 0.3)
    frames["Task"] = pl.DataFrame({
        "Id": ids.take("Task", len(tasks)), "CreatedDate": created_s, "LastModifiedDate": modified_s,
        "SystemModstamp": modified_s, "WhatId": account_ids.gather(t_hh), "WhoId": primary_contact.gather(t_hh),
        "OwnerId": owner.gather(t_hh), "Subject": tasks["Subject"], "Type": tasks["Type"],
        "TaskSubtype": tasks["Type"], "ActivityDate": sf_date(when.astype("datetime64[D]")),
        "Status": pl.Series(["Completed"]).gather(np.zeros(len(tasks), np.int64)), "CallDurationInSeconds": tasks["CallDurationInSeconds"],
    })

    # events: meetings
    e_hh, e_m = _expand(hh.meetings[:, hist])
    ne = len(e_hh)
    start = clock.random_moment(r, e_m, 13, 21)
    minutes = r.choice(np.array([30, 45, 60, 90]), ne, p=[0.2, 0.2, 0.45, 0.15])
    end = start + (minutes * 60_000).astype("timedelta64[ms]")
    created_ms_e = start - (r.integers(1, 21, ne) * 86_400_000).astype("timedelta64[ms]")
    created_s, modified_s = _stamps(r, created_ms_e, clock, 5.0)
    frames["Event"] = pl.DataFrame({
        "Id": ids.take("Event", ne), "CreatedDate": created_s, "LastModifiedDate": modified_s,
        "SystemModstamp": modified_s, "WhatId": account_ids.gather(e_hh), "WhoId": primary_contact.gather(e_hh),
        "OwnerId": owner.gather(e_hh), "Subject": MEETING_SUBJECTS[r.integers(0, len(MEETING_SUBJECTS), ne)],
        "Type": np.full(ne, "Meeting"), "StartDateTime": sf_datetime(start), "EndDateTime": sf_datetime(end),
        "DurationInMinutes": minutes.astype(np.int64),
    })

    # cases: per (household, month): the first `complaints` are complaints, `stalled` take months
    c_hh, c_m = _expand(hh.cases[:, hist])
    nk = len(c_hh)
    pair = c_hh * T_HIST + c_m
    first_of_pair = np.r_[True, pair[1:] != pair[:-1]]
    group_start = np.maximum.accumulate(np.where(first_of_pair, np.arange(nk), 0))
    rank = np.arange(nk) - group_start
    is_complaint = rank < hh.complaints[c_hh, c_m]
    is_stalled = (hh.cases[c_hh, c_m] - 1 - rank) < hh.stalled[c_hh, c_m]
    opened_ms = clock.random_moment(r, c_m, 12, 22)
    days_open = np.where(is_stalled, r.uniform(45, 240, nk), r.exponential(4.0, nk) + 0.05)
    closed_ms = opened_ms + (days_open * 86_400_000).astype(np.int64).astype("timedelta64[ms]")
    is_closed = closed_ms <= clock.as_of_end_ms
    age_days = (clock.as_of_end_ms - opened_ms).astype(np.int64) / 86_400_000
    status = np.where(is_closed, "Closed",
                      np.where(is_complaint, "Escalated", np.where(age_days < 3, "New", "Working")))
    priority = np.where(is_complaint, np.where(r.random(nk) < 0.6, "High", "Medium"),
                        np.where(r.random(nk) < 0.7, "Low", "Medium"))
    subject = np.where(is_complaint, CASE_SUBJECTS_COMPLAINT[r.integers(0, len(CASE_SUBJECTS_COMPLAINT), nk)],
                       CASE_SUBJECTS_SERVICE[r.integers(0, len(CASE_SUBJECTS_SERVICE), nk)])
    modified_ms = np.where(is_closed, closed_ms, np.minimum(
        opened_ms + (r.exponential(3.0, nk) * 86_400_000).astype(np.int64).astype("timedelta64[ms]"),
        clock.as_of_end_ms))
    frames["Case"] = pl.DataFrame({
        "Id": ids.take("Case", nk), "CreatedDate": sf_datetime(opened_ms),
        "LastModifiedDate": sf_datetime(modified_ms), "SystemModstamp": sf_datetime(modified_ms),
        "AccountId": account_ids.gather(c_hh), "ContactId": primary_contact.gather(c_hh), "Subject": subject,
        "Type": np.where(is_complaint, "Complaint", "Service Request"), "Priority": priority,
        "Status": status, "Origin": CASE_ORIGINS[r.integers(0, 3, nk)], "IsClosed": is_closed,
        "ClosedDate": pl.Series(np.where(is_closed, sf_datetime(closed_ms).to_numpy(), None)),
    })

    # opportunities: new money (won / lost / open) and referrals
    o_hh, o_m = np.nonzero(hh.opp_new_money[:, hist])
    r_hh, r_m = np.nonzero(hh.referrals[:, hist])
    oh = np.r_[o_hh, r_hh]
    om = np.r_[o_m, r_m]
    no = len(oh)
    referral = np.r_[np.zeros(len(o_hh), bool), np.ones(len(r_hh), bool)]
    outcome = np.r_[hh.opp_new_money[o_hh, o_m], r.choice(np.array([1, 2, 3]), len(r_hh), p=[0.4, 0.45, 0.15])]
    amount = np.r_[hh.opp_amount[o_hh, o_m], hh.mv[r_hh, r_m] * r.uniform(0.3, 1.5, len(r_hh))]
    amount = np.round(np.maximum(amount, 10_000.0), -3)
    close_ms = clock.random_moment(r, om)
    opened_ms = close_ms - (r.integers(10, 80, no) * 86_400_000).astype("timedelta64[ms]")
    is_open = outcome == 3
    close_date = np.where(is_open, clock.as_of + r.integers(15, 120, no).astype("timedelta64[D]"),
                          close_ms.astype("datetime64[D]"))
    stage = np.where(outcome == 1, "Closed Won", np.where(outcome == 2, "Closed Lost",
                                                           OPEN_STAGES[r.integers(0, 3, no)]))
    modified_ms = np.where(is_open, np.minimum(opened_ms + np.timedelta64(7, "D"), clock.as_of_end_ms), close_ms)
    kind = np.where(referral, "Referral", "New Money")
    frames["Opportunity"] = pl.DataFrame({
        "Id": ids.take("Opportunity", no), "CreatedDate": sf_datetime(opened_ms),
        "LastModifiedDate": sf_datetime(modified_ms), "SystemModstamp": sf_datetime(modified_ms),
        "AccountId": account_ids.gather(oh), "OwnerId": owner.gather(oh),
        "Name": np.char.add(np.char.add(last_name[oh], " - "), kind), "Type": kind, "Amount": amount,
        "StageName": stage, "CloseDate": sf_date(close_date), "IsClosed": ~is_open, "IsWon": outcome == 1,
    })
    if identity_rng is not None:
        frames[IDENTITY_TRUTH] = persons.add_identities(
            identity_rng, frames, hh_ids[contact_household], contact_kind, hh.marketing_consent[contact_household],
            lambda k: ids.take("Contact", k), LAST_NAMES, FIRST_NAMES, start_person=hh.start * 10, hostile=hostile)
    return frames


class CrmWriter:
    """Loads record frames into a fresh sandbox org.

    The frames already hold every value in the store's storage form (canonical datetime and date
    text, numbers, booleans as 0/1), so rows go straight to SQLite with ``executemany`` in the
    store's column order: the per-record conversion of ``insert_records`` would dominate the
    large tier (tens of millions of rows).
    """

    def __init__(self, db_path: Path) -> None:
        for suffix in ("", "-wal", "-shm"):
            Path(str(db_path) + suffix).unlink(missing_ok=True)  # a fresh org
        self.store = SalesforceStore(db_path)
        for name, fields in SCHEMA.items():
            self.store.define_object(name, fields, KEY_PREFIX[name])
        self.conn = self.store.connection()
        # a fresh org: a crash mid-seed means re-seed, so no journal while loading (WAL again in finish())
        self.conn.execute("pragma journal_mode=off")
        self.conn.execute("pragma synchronous=off")
        self.conn.execute("pragma cache_size=-262144")
        # bulk load: drop the store's secondary indexes now, rebuild them (sorted, fast) in finish()
        self.indexes = self.conn.execute(
            "select name, sql from sqlite_master where type = 'index' and sql is not null").fetchall()
        for index, _ in self.indexes:
            self.conn.execute(f'drop index "{index}"')
        self.rows: dict[str, int] = dict.fromkeys(SCHEMA, 0)

    def write(self, name: str, frame: pl.DataFrame) -> None:
        if not frame.height:
            return
        specs = self.store.fields(name)
        unknown = set(frame.columns) - set(specs)
        if unknown:
            raise KeyError(f"{name}: fields not in the schema: {sorted(unknown)}")
        frame = frame.with_columns(pl.lit(0).alias("IsDeleted")).with_columns(
            pl.col(c).cast(pl.Int8) for c, dtype in frame.schema.items() if dtype == pl.Boolean)
        columns = [c for c in specs if c in frame.columns]
        sql = (f"insert into {table_name(name)} ({', '.join(quote(c) for c in columns)}) "  # noqa: S608 - validated identifiers
               f"values ({', '.join('?' for _ in columns)})")
        self.conn.execute("begin immediate")
        try:
            self.conn.executemany(sql, frame.select(columns).iter_rows())
        except BaseException:
            self.conn.execute("rollback")
            raise
        self.conn.execute("commit")
        self.rows[name] += frame.height

    def finish(self, ids: IdCounter) -> None:
        """Move each object's id counter past the seed's ids (the server allocates after them)."""
        conn = self.store.connection()
        for _, sql in self.indexes:
            conn.execute(sql)
        conn.execute("pragma journal_mode=wal")
        for name, nxt in ids.next.items():
            conn.execute("update _objects set next_seq = max(next_seq, ?) where name = ?", (nxt, name))
        self.store.close()
