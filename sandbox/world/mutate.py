"""``python -m sandbox mutate``: the org keeps living after the seed, so incremental extraction has work.

One round changes a deterministic sample of records (which records, and how, depend only on the
seed and the round number): about 2 % of Accounts move one AUM band and/or one risk profile, a third
of the open Cases close, about 1 % of households get a new call Task, and about 0.5 % of Contacts and
Tasks are soft-deleted. Like a real org, the changes are stamped with the current clock (never
earlier than the newest stamp already in the org, so a SystemModstamp watermark always sees them).
What was done is appended to ``truth/crm_mutations.parquet``.

``full_day=True`` (what ``python -m sandbox advance`` runs) makes the round one business day of a
firm's CRM: on top of the above, about 0.2 % new households (an Account with a primary Contact and a
New Money Opportunity), about 1 % of Contacts updated (phone, mailing state), a third of the open
Opportunities decided (won or lost), and about 0.1 % of households deleted with their Contacts,
Opportunities, Cases, Tasks, Events and brokerage accounts (as Salesforce cascades an Account delete).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from sandbox.salesforce.store import SalesforceStore, format_datetime, parse_datetime, table_name
from sandbox.world.config import STREAM_MUTATE, rng
from sandbox.world.crm import FIRST_NAMES, LAST_NAMES, OPEN_STAGES, REGION_STATES, SCHEMA
from sandbox.world.households import AUM_BANDS, RISK_PROFILES

MUTATION_COLUMNS = {
    "mutation_round": pl.Int32, "stamp": pl.String, "object": pl.String, "record_id": pl.String,
    "change": pl.String, "detail": pl.String,
}


def _sample(r: np.random.Generator, ids: list[str], share: float) -> list[str]:
    if not ids:
        return []
    k = max(1, int(round(share * len(ids))))
    return [ids[i] for i in np.sort(r.choice(len(ids), min(k, len(ids)), replace=False))]


def _day_of_crm(store: SalesforceStore, conn, r: np.random.Generator, stamp: datetime, note,
                next_household: int) -> int:
    """The rest of a business day in the CRM (see the module docstring); returns the next household number."""
    stamp_text = format_datetime(stamp)
    day = stamp.date().isoformat()

    # contacts: a new phone number or a move
    contacts = [row[0] for row in conn.execute(
        'select "Id" from "obj_Contact" where "IsDeleted" = 0 order by "Id"').fetchall()]
    moving = _sample(r, contacts, 0.01)
    states = REGION_STATES.ravel()
    changes = []
    for record_id in moving:
        if r.random() < 0.5:
            changes.append({"Id": record_id, "Phone": f"+1 555 {int(r.integers(0, 10**7)):07d}"})
        else:
            changes.append({"Id": record_id, "MailingState": str(states[r.integers(0, len(states))])})
    store.update_records("Contact", changes, stamp=stamp)
    for change in changes:
        field = next(k for k in change if k != "Id")
        note("Contact", change["Id"], "update", field)

    # open opportunities: a third are decided today
    open_opps = [row[0] for row in conn.execute(
        'select "Id" from "obj_Opportunity" where "IsDeleted" = 0 and "IsClosed" = 0 order by "Id"').fetchall()]
    decided = _sample(r, open_opps, 1 / 3)
    won = r.random(len(decided)) < 0.55
    store.update_records("Opportunity", [
        {"Id": i, "StageName": "Closed Won" if w else "Closed Lost", "IsClosed": True, "IsWon": bool(w),
         "CloseDate": day} for i, w in zip(decided, won, strict=True)], stamp=stamp)
    for record_id, w in zip(decided, won, strict=True):
        note("Opportunity", record_id, "update", "Closed Won" if w else "Closed Lost")

    # households deleted, with what Salesforce deletes with an Account
    accounts = [row[0] for row in conn.execute(
        'select "Id" from "obj_Account" where "IsDeleted" = 0 order by "Id"').fetchall()]
    leaving = _sample(r, accounts, 0.001)
    children = {"Contact": "AccountId", "Opportunity": "AccountId", "Case": "AccountId", "Task": "WhatId",
                "Event": "WhatId", "Brokerage_Account__c": "Household__c"}
    for obj, field in children.items():
        ids = []  # one pass over each object per 500 households (a large org's Task table is tens of millions)
        for start in range(0, len(leaving), 500):
            part = leaving[start:start + 500]
            ids += [row[0] for row in conn.execute(
                f'select "Id" from {table_name(obj)} where "IsDeleted" = 0 and "{field}" in '  # noqa: S608 - fixed names
                f'({", ".join("?" * len(part))}) order by "Id"', part).fetchall()]
        store.delete_records(obj, ids, stamp=stamp)
        for record_id in ids:
            note(obj, record_id, "delete", "with its household")
    store.delete_records("Account", leaving, stamp=stamp)
    for record_id in leaving:
        note("Account", record_id, "delete", "household left")

    # new households: an Account, its primary Contact, a New Money opportunity
    n_new = max(1, int(round(0.002 * len(accounts))))
    owners = [row[0] for row in conn.execute(
        'select "Id" from "obj_User" where "IsDeleted" = 0 and "IsActive" = 1 order by "Id"').fetchall()]
    account_ids = store.allocate_ids("Account", n_new)
    contact_ids = store.allocate_ids("Contact", n_new)
    opportunity_ids = store.allocate_ids("Opportunity", n_new)
    standard = {"CreatedDate": stamp_text, "LastModifiedDate": stamp_text, "SystemModstamp": stamp_text}
    new_accounts, new_contacts, new_opportunities = [], [], []
    for k in range(n_new):
        last = str(LAST_NAMES[r.integers(0, len(LAST_NAMES))])
        owner = str(owners[r.integers(0, len(owners))])
        state = str(states[r.integers(0, len(states))])
        amount = round(float(10 ** r.uniform(5.0, 6.5)), 2)
        new_accounts.append({
            "Id": account_ids[k], **standard, "Name": f"{last} Household", "Type": "Household", "OwnerId": owner,
            "Household_Id__c": f"HH{next_household + k:07d}", "AUM_Band__c": str(AUM_BANDS[0]),
            "Fee_Schedule_Bps__c": 100.0, "Client_Since__c": day,
            "Risk_Profile__c": str(RISK_PROFILES[r.integers(0, len(RISK_PROFILES))]),
            "Marketing_Consent__c": bool(r.random() < 0.6), "Analytics_Consent__c": bool(r.random() < 0.8),
            "BillingState": state,
        })
        new_contacts.append({
            "Id": contact_ids[k], **standard, "AccountId": account_ids[k],
            "FirstName": str(FIRST_NAMES[r.integers(0, len(FIRST_NAMES))]), "LastName": last,
            "Email": f"{last.lower()}.{next_household + k}@example.com",
            "Phone": f"+1 555 {int(r.integers(0, 10**7)):07d}",
            "Birthdate": f"{int(r.integers(1945, 2000))}-{int(r.integers(1, 13)):02d}-{int(r.integers(1, 29)):02d}",
            "MailingState": state, "Is_Primary__c": True,
        })
        new_opportunities.append({
            "Id": opportunity_ids[k], **standard, "AccountId": account_ids[k], "OwnerId": owner,
            "Name": f"{last} - New Money", "Type": "New Money", "Amount": amount,
            "StageName": str(OPEN_STAGES[0]), "CloseDate": (stamp.date() + timedelta(days=60)).isoformat(),
            "IsClosed": False, "IsWon": False,
        })
    for obj, records in (("Account", new_accounts), ("Contact", new_contacts), ("Opportunity", new_opportunities)):
        store.insert_records(obj, records)
        for record in records:
            note(obj, record["Id"], "insert", "new household")
    return next_household + n_new


def mutate_world(state: Path, truth: Path | None = None, seed: int | None = None,
                 now: datetime | None = None, full_day: bool = False) -> dict:
    meta_path = state / "world.json"
    meta = json.loads(meta_path.read_text())
    truth = Path(truth or meta["truth"])
    seed = meta["seed"] if seed is None else seed
    round_no = int(meta.get("mutations", 0)) + 1
    r = rng(seed, STREAM_MUTATE, round_no)
    store = SalesforceStore(state / "salesforce.db")
    conn = store.connection()

    newest = max(
        conn.execute(f'select max("SystemModstamp") from {table_name(name)}').fetchone()[0] or ""  # noqa: S608 - fixed object names
        for name in SCHEMA
    )
    stamp = (now or datetime.now(UTC)).astimezone(UTC)
    if newest and parse_datetime(newest) >= stamp:
        stamp = parse_datetime(newest) + timedelta(seconds=1)
    stamp_text = format_datetime(stamp)
    log: list[dict] = []

    def note(obj: str, record_id: str, change: str, detail: str = "") -> None:
        log.append({"mutation_round": round_no, "stamp": stamp_text, "object": obj, "record_id": record_id,
                    "change": change, "detail": detail})

    # accounts: AUM band and risk profile drift by one step
    rows = conn.execute('select "Id", "AUM_Band__c", "Risk_Profile__c" from "obj_Account" '
                        'where "IsDeleted" = 0 order by "Id"').fetchall()
    current = {row[0]: row[1:] for row in rows}
    changes = []
    for record_id in _sample(r, list(current), 0.02):
        band, risk = current[record_id]
        change = {"Id": record_id}
        if r.random() < 0.6 and band in AUM_BANDS:
            i = int(np.clip(list(AUM_BANDS).index(band) + r.choice([-1, 1]), 0, len(AUM_BANDS) - 1))
            change["AUM_Band__c"] = str(AUM_BANDS[i])
        else:
            i = int(np.clip(list(RISK_PROFILES).index(risk) + r.choice([-1, 1]), 0, len(RISK_PROFILES) - 1))
            change["Risk_Profile__c"] = str(RISK_PROFILES[i])
        changes.append(change)
        field, value = next((k, v) for k, v in change.items() if k != "Id")
        old = band if field == "AUM_Band__c" else risk
        note("Account", record_id, "update", f"{field}: {old} -> {value}")
    store.update_records("Account", changes, stamp=stamp)

    # open cases: a third close
    open_cases = [row[0] for row in conn.execute(
        'select "Id" from "obj_Case" where "IsDeleted" = 0 and "IsClosed" = 0 order by "Id"').fetchall()]
    closing = _sample(r, open_cases, 1 / 3)
    store.update_records("Case", [{"Id": i, "Status": "Closed", "IsClosed": True, "ClosedDate": stamp_text}
                                  for i in closing], stamp=stamp)
    for record_id in closing:
        note("Case", record_id, "update", "Status -> Closed")

    # new call tasks for ~1 % of households (their primary contact, their advisor)
    primaries = conn.execute(
        'select c."AccountId", c."Id", a."OwnerId" from "obj_Contact" c join "obj_Account" a on a."Id" = c."AccountId" '
        'where c."Is_Primary__c" = 1 and c."IsDeleted" = 0 order by c."AccountId"').fetchall()
    picked = _sample(r, [row[0] for row in primaries], 0.01)
    by_account = {row[0]: row for row in primaries}
    new_ids = store.allocate_ids("Task", len(picked))
    tasks = [{
        "Id": new_id, "CreatedDate": stamp_text, "LastModifiedDate": stamp_text, "SystemModstamp": stamp_text,
        "WhatId": acc, "WhoId": by_account[acc][1], "OwnerId": by_account[acc][2], "Subject": "Call: check-in",
        "Type": "Call", "TaskSubtype": "Call", "ActivityDate": stamp.date().isoformat(), "Status": "Completed",
        "CallDurationInSeconds": int(r.integers(60, 1800)),
    } for new_id, acc in zip(new_ids, picked, strict=True)]
    store.insert_records("Task", tasks)
    for task in tasks:
        note("Task", task["Id"], "insert", f"new call for {task['WhatId']}")

    # soft deletes
    for obj in ("Contact", "Task"):
        ids = [row[0] for row in conn.execute(
            f'select "Id" from {table_name(obj)} where "IsDeleted" = 0 order by "Id"').fetchall()]  # noqa: S608 - fixed object names
        gone = _sample(r, ids, 0.005)
        store.delete_records(obj, gone, stamp=stamp)
        for record_id in gone:
            note(obj, record_id, "delete")
    if full_day:
        meta["next_household"] = _day_of_crm(store, conn, r, stamp, note,
                                             int(meta.get("next_household", meta["households"] + 1)))
    store.close()

    frame = pl.DataFrame(log, schema=MUTATION_COLUMNS)
    path = truth / "crm_mutations.parquet"
    truth.mkdir(parents=True, exist_ok=True)
    if path.exists():
        frame = pl.concat([pl.read_parquet(path), frame])
    frame.write_parquet(path)
    meta["mutations"] = round_no
    meta_path.write_text(json.dumps(meta, indent=2))
    summary = pl.DataFrame(log, schema=MUTATION_COLUMNS).group_by("object", "change").len().sort("object", "change")
    return {"round": round_no, "stamp": stamp_text,
            "changes": {f"{o}.{c}": n for o, c, n in summary.iter_rows()}}
