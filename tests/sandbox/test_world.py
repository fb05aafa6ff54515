"""The synthetic world honours sandbox/README.md: files, columns, FIX framing, truth, signal, hostility."""

from __future__ import annotations

import csv
import hashlib
import re
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from sandbox.salesforce.store import SalesforceStore
from sandbox.world.config import SCALES
from sandbox.world.households import market_returns, simulate_chunk
from sandbox.world.mutate import mutate_world
from sandbox.world.seed import seed_world
from sandbox.world.trading import BENIGN_TYPES, BREAK_TYPES
from sandbox.world.truth import household_truth

pytestmark = pytest.mark.integration

AS_OF = date(2026, 10, 30)
DAYS = ["20261026", "20261027", "20261028", "20261029", "20261030"]
BOOK = ("trade_id,order_id,trade_date,trade_time,account_number,instrument_id,asset_class,side,quantity,price,"
        "currency,settle_date,executing_broker,prime_broker,commission,fees").split(",")
ATLAS = ["Client Ref", "Trade Dt", "Settle Dt", "Acct", "Security ID", "Sec Type", "B/S", "Qty", "Price", "Ccy",
         "Gross Amt", "Comm", "Fees", "Exec Broker"]
MERIDIAN = "ref;trade_date;value_date;account;instrument;product;direction;nominal;px;currency;commission;charges;broker".split(";")
BILLING = "account_number,period_end,market_value,net_flows,fees_billed,currency,account_status".split(",")
FIX_TAGS = ["8", "9", "35", "49", "56", "34", "52", "37", "11", "17", "150", "39", "1", "55", "167", "54", "38", "32",
            "31", "151", "14", "6", "15", "60", "75", "64", "12", "13", "10"]
SOH = b"\x01"


def _seed(base: Path, seed: int = 7, hostile: bool = False) -> dict[str, Path]:
    paths = {"drop": base / "drop", "truth": base / "truth", "state": base / "state"}
    seed_world("small", seed, AS_OF, paths["drop"], paths["truth"], paths["state"], hostile_inputs=hostile,
               log=lambda _msg: None)
    return paths


def _hashes(*folders: Path) -> dict[str, str]:
    out = {}
    for folder in folders:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                out[f"{folder.name}/{path.relative_to(folder)}"] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict[str, Path]:
    return _seed(tmp_path_factory.mktemp("world"), hostile=True)


@pytest.fixture(scope="module")
def clean_world(tmp_path_factory) -> dict[str, Path]:
    return _seed(tmp_path_factory.mktemp("clean"))


def _fix_problems(line: bytes) -> list[str]:
    """An independent FIX framing check: BodyLength and CheckSum."""
    body_start = line.index(SOH, line.index(b"9=")) + 1
    declared = int(line[line.index(b"9=") + 2 : body_start - 1])
    trailer = line.rindex(SOH + b"10=") + 1
    problems = []
    if trailer - body_start != declared:
        problems.append("body_length")
    if int(line[trailer + 3 : trailer + 6]) != sum(line[:trailer]) % 256:
        problems.append("checksum")
    return problems


def _fields(line: bytes) -> dict[str, str]:
    return dict(f.decode().split("=", 1) for f in line.rstrip(b"\n").split(SOH) if f)


# --- determinism and sizes --------------------------------------------------------------------------


def test_same_seed_gives_byte_identical_files(tmp_path, clean_world):
    again = _seed(tmp_path / "again")
    assert _hashes(clean_world["drop"], clean_world["truth"]) == _hashes(again["drop"], again["truth"])
    other = _seed(tmp_path / "other", seed=8)
    assert _hashes(clean_world["truth"]) != _hashes(other["truth"])


def test_scale_tiers():
    assert (SCALES["small"].households, SCALES["small"].trades_per_day) == (1_000, 5_000)
    assert (SCALES["demo"].households, SCALES["demo"].trades_per_day) == (20_000, 100_000)
    assert (SCALES["large"].households, SCALES["large"].trades_per_day) == (1_000_000, 5_000_000)


def test_row_counts_small(clean_world):
    truth = clean_world["truth"]
    assert pl.read_parquet(truth / "households.parquet").height == 1_000
    breaks = pl.read_parquet(truth / "breaks.parquet")
    for ymd in DAYS:
        book = pl.read_csv(clean_world["drop"] / "oms" / f"trade_book_{ymd}.csv", infer_schema=False)
        day = datetime.strptime(ymd, "%Y%m%d").date()
        missing = breaks.filter((pl.col("business_date") == day) & (pl.col("break_type") == "missing_internal")).height
        assert book.height + missing == 5_000
    store = SalesforceStore(clean_world["state"] / "salesforce.db")
    assert store.count("Account") == 1_000
    assert store.count("User") == SCALES["small"].advisors
    for name in ("Contact", "Case", "Task", "Event", "Opportunity", "Brokerage_Account__c"):
        assert store.count(name) > 0, name
    store.close()


# --- files and their dialects -------------------------------------------------------------------


def test_every_file_has_the_documented_columns(clean_world):
    drop = clean_world["drop"]
    for ymd in DAYS:
        iso = f"{ymd[:4]}-{ymd[4:6]}-{ymd[6:]}"
        book = pl.read_csv(drop / "oms" / f"trade_book_{ymd}.csv", infer_schema=False)
        assert book.columns == BOOK
        assert set(book["asset_class"].unique()) == {"EQUITY", "ETF", "BOND", "FX_FWD", "OPTION"}
        assert set(book["executing_broker"].unique()) == {"BRKA", "BRKB", "BRKC"}
        assert book["trade_time"].str.contains(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$").all()
        atlas = pl.read_csv(drop / "prime" / "atlas" / f"ATLAS_CONF_{ymd}.csv", infer_schema=False)
        assert atlas.columns == ATLAS
        assert atlas["Trade Dt"].str.contains(r"^\d\d/\d\d/\d{4}$").all()
        meridian = pl.read_csv(drop / "prime" / "meridian" / f"meridian_confirms_{iso}.csv", separator=";",
                               infer_schema=False)
        assert meridian.columns == MERIDIAN
        assert meridian["trade_date"].str.contains(r"^\d\d\.\d\d\.\d{4}$").all()
    billing = sorted((drop / "billing").glob("billing_*.csv"))
    assert len(billing) == 48
    assert billing[0].name == "billing_202211.csv" and billing[-1].name == "billing_202610.csv"
    for path in billing:
        assert pl.read_csv(path, n_rows=5).columns == BILLING


def test_broker_price_conventions(clean_world):
    drop = clean_world["drop"]
    book = pl.read_csv(drop / "oms" / "trade_book_20261030.csv", infer_schema=False)
    atlas = pl.read_csv(drop / "prime" / "atlas" / "ATLAS_CONF_20261030.csv", infer_schema=False)
    meridian = pl.read_csv(drop / "prime" / "meridian" / "meridian_confirms_2026-10-30.csv", separator=";",
                           infer_schema=False)
    breaks = pl.read_parquet(clean_world["truth"] / "breaks.parquet")
    dirty = breaks.filter(pl.col("trade_id").is_not_null())["trade_id"].implode()
    a = book.join(atlas, left_on="trade_id", right_on="Client Ref").filter(~pl.col("trade_id").is_in(dirty))
    assert a.height > 1000
    bond = a.filter(pl.col("asset_class") == "BOND")
    gross = bond["quantity"].cast(float) * bond["price"].cast(float) / 100
    assert np.allclose(gross, bond["Gross Amt"].cast(float), atol=0.01)
    opt = a.filter(pl.col("asset_class") == "OPTION")
    assert np.allclose(opt["quantity"].cast(float) * opt["price"].cast(float) * 100, opt["Gross Amt"].cast(float), atol=0.01)
    m = book.join(meridian, left_on="trade_id", right_on="ref").filter(~pl.col("trade_id").is_in(dirty))
    bond = m.filter(pl.col("asset_class") == "BOND")
    assert np.allclose(bond["price"].cast(float) / 100, bond["px"].cast(float), atol=1e-9)
    opt = m.filter(pl.col("asset_class") == "OPTION")
    assert np.allclose(opt["price"].cast(float) * 100, opt["px"].cast(float), atol=1e-6)


def test_clean_fix_files_are_well_framed_and_fills_sum_to_orders(clean_world):
    files = sorted((clean_world["drop"] / "fix").glob("*.fix"))
    assert len(files) == 15
    for path in files:
        version = "FIX.4.2" if path.name.startswith("BRKC") else "FIX.4.4"
        cum: dict[str, tuple[int, int, str]] = {}
        for seq, line in enumerate(path.read_bytes().splitlines(keepends=True), start=1):
            assert _fix_problems(line) == [], (path.name, seq)
            fields = _fields(line)
            assert [k for k in fields] == FIX_TAGS[:10] + (["20"] if version == "FIX.4.2" else []) + FIX_TAGS[10:]
            assert fields["8"] == version and fields["35"] == "8" and fields["34"] == str(seq)
            assert fields["49"] == path.name[:4] and fields["56"] == "NORTHSTAR"
            assert fields["1"] in {"BLOCK-ATLAS", "BLOCK-MERIDIAN"} and fields["13"] == "3"
            done, _, _ = cum.get(fields["11"], (0, 0, ""))
            done += int(fields["32"])
            assert int(fields["14"]) == done and int(fields["151"]) == int(fields["38"]) - done
            cum[fields["11"]] = (done, int(fields["38"]), fields["39"])
        assert all(done == qty and status == "2" for done, qty, status in cum.values()), path.name


# --- truth --------------------------------------------------------------------------------------


def test_every_break_and_benign_type_is_injected(clean_world):
    breaks = pl.read_parquet(clean_world["truth"] / "breaks.parquet")
    kinds = breaks.group_by("kind", "break_type").len()
    assert set(kinds.filter(pl.col("kind") == "break")["break_type"]) == set(BREAK_TYPES)
    assert set(kinds.filter(pl.col("kind") == "benign")["break_type"]) == set(BENIGN_TYPES)
    n_breaks = breaks.filter(pl.col("kind") == "break").height
    assert 0.005 * 25_000 < n_breaks < 0.03 * 25_000
    anomalies = pl.read_parquet(clean_world["truth"] / "anomalies.parquet")
    assert set(anomalies["anomaly_type"]) == {"price_outlier", "size_outlier", "closed_account"}


def test_confirms_match_the_book_except_where_truth_says_so(clean_world):
    """Apply the documented tolerances: every mismatch is a recorded break, every benign row matches."""
    drop, truth = clean_world["drop"], clean_world["truth"]
    book = pl.concat([pl.read_csv(drop / "oms" / f"trade_book_{d}.csv", infer_schema=False) for d in DAYS])
    atlas = pl.concat([pl.read_csv(drop / "prime" / "atlas" / f"ATLAS_CONF_{d}.csv", infer_schema=False) for d in DAYS])
    norm_atlas = atlas.select(
        pl.col("Client Ref").alias("trade_id"), pl.col("Qty").alias("c_qty"), pl.col("Price").cast(float).alias("c_px"),
        pl.col("B/S").replace({"B": "BUY", "S": "SELL"}).alias("c_side"), pl.col("Acct").alias("c_acct"),
        pl.col("Ccy").alias("c_ccy"), pl.col("Comm").cast(float).alias("c_comm"),
        pl.col("Settle Dt").str.to_date("%m/%d/%Y").alias("c_settle"))
    joined = book.join(norm_atlas, on="trade_id", how="inner").with_columns(
        pl.col("price").cast(float), pl.col("commission").cast(float), pl.col("settle_date").str.to_date())
    tol = pl.max_horizontal(pl.lit(0.0001), pl.col("price") * 1e-4)
    mismatch = joined.filter(
        (pl.col("quantity") != pl.col("c_qty")) | ((pl.col("price") - pl.col("c_px")).abs() > tol)
        | (pl.col("side") != pl.col("c_side")) | (pl.col("account_number") != pl.col("c_acct"))
        | (pl.col("currency") != pl.col("c_ccy")) | ((pl.col("commission") - pl.col("c_comm")).abs() > 0.011)
        | (pl.col("settle_date") != pl.col("c_settle")))
    breaks = pl.read_parquet(truth / "breaks.parquet")
    recorded = set(breaks.filter(pl.col("kind") == "break")["trade_id"].drop_nulls())
    assert mismatch.height > 0 and set(mismatch["trade_id"]) <= recorded
    benign = set(breaks.filter(pl.col("break_type").is_in(["rounding", "timezone"]))["trade_id"])
    assert not benign & set(mismatch["trade_id"])
    rounding = joined.filter(pl.col("trade_id").is_in(list(breaks.filter(pl.col("break_type") == "rounding")["trade_id"])))
    assert rounding.height > 0 and (rounding["price"] != rounding["c_px"]).all()
    late = book.filter(pl.col("trade_id").is_in(list(breaks.filter(pl.col("break_type") == "timezone")["trade_id"])))
    assert late.height > 0 and (late["trade_time"].str.slice(0, 10) != late["trade_date"]).all()


def test_truth_has_signal_but_is_not_a_formula(clean_world):
    households = pl.read_parquet(clean_world["truth"] / "households.parquet")
    assert {"household_id", "revenue_next_12m", "left_within_12m", "attrited_on"} <= set(households.columns)
    active = households.filter(~pl.col("left_before_as_of"))
    rho = active.select(pl.corr("fees_trailing_12m", "revenue_next_12m", method="spearman")).item()
    assert 0.3 < rho < 0.95, rho
    assert households["left_before_as_of"].sum() > 50  # history to learn attrition from

    # complaints raise attrition (a bigger simulated population for a stable rate)
    hh = household_truth(simulate_chunk(11, 0, 0, 20_000, 150, AS_OF, market_returns(11)))
    alive = hh.filter(~pl.col("left_before_as_of"))
    rate = alive.group_by(pl.col("complaints_trailing_12m") > 0).agg(pl.col("left_within_12m").mean())
    rates = dict(rate.iter_rows())
    assert rates[True] > 1.5 * rates[False], rates


def test_billing_closes_accounts_with_an_outflow_then_zeros(clean_world):
    billing = pl.concat([pl.read_csv(p, infer_schema=False) for p in sorted((clean_world["drop"] / "billing").glob("*.csv"))])
    billing = billing.with_columns(pl.col("market_value", "net_flows", "fees_billed").cast(float))
    closed = billing.filter(pl.col("account_status") == "CLOSED")
    assert closed.height > 0 and (closed["market_value"] == 0).all() and (closed["fees_billed"] == 0).all()
    first_closed = closed.sort("period_end").group_by("account_number").first()
    assert (first_closed["net_flows"] < 0).mean() > 0.95
    open_rows = billing.filter((pl.col("account_status") == "OPEN") & (pl.col("market_value") > 0))
    assert (open_rows["fees_billed"] > 0).mean() > 0.99


# --- CRM ----------------------------------------------------------------------------------------


def test_crm_schema_and_records(clean_world):
    store = SalesforceStore(clean_world["state"] / "salesforce.db")
    fields = store.fields("Account")
    for name in ("Value_12M__c", "CLV__c", "Value_Percentile__c", "Segment__c", "Attrition_Risk__c", "Top_Drivers__c",
                 "Model_Version__c", "Scored_At__c", "Household_Id__c", "Analytics_Consent__c"):
        assert name in fields, name
    assert fields["Household_Id__c"].external_id
    assert store.fields("Brokerage_Account__c")["Account_Number__c"].external_id
    assert len(fields["Segment__c"].picklist_values) == 4
    account = store.find_ids("Account", "Household_Id__c", "HH0000001")
    assert len(account) == 1 and account[0].startswith("001")
    closed = store.select("Brokerage_Account__c", ["Status__c", "Closed_Date__c"], '"Status__c" = ?', ["Closed"])
    assert closed and all(row["Closed_Date__c"] for row in closed)
    newest = store.connection().execute('select max("SystemModstamp") from "obj_Task"').fetchone()[0]
    assert newest <= "2026-10-30T23:59:59.999+0000"
    store.close()


def test_mutate_changes_and_deletes_with_fresh_stamps(world):
    before = SalesforceStore(world["state"] / "salesforce.db")
    contacts = before.count("Contact")
    before.close()
    result = mutate_world(world["state"], world["truth"], now=datetime(2026, 11, 2, 9, 0, tzinfo=UTC))
    log = pl.read_parquet(world["truth"] / "crm_mutations.parquet")
    assert result["round"] == 1 and log.height == sum(result["changes"].values())
    assert {"Account", "Contact", "Task"} <= set(log["object"])
    store = SalesforceStore(world["state"] / "salesforce.db")
    assert store.count("Contact") == contacts - log.filter((pl.col("object") == "Contact") & (pl.col("change") == "delete")).height
    changed = log.filter(pl.col("object") == "Account")["record_id"][0]
    assert store.get_record("Account", changed)["SystemModstamp"] == result["stamp"]
    store.close()
    again = mutate_world(world["state"], world["truth"], now=datetime(2026, 11, 2, 9, 0, tzinfo=UTC))
    assert again["round"] == 2 and again["stamp"] > result["stamp"]


# --- hostile ------------------------------------------------------------------------------------


def test_hostile_files_are_listed_and_really_bad(world):
    drop = world["drop"]
    rows = list(csv.DictReader((world["truth"] / "hostile_files.csv").open()))
    reasons = {row["expected_reason"] for row in rows}
    assert {"fix_bad_checksum", "fix_bad_body_length", "fix_missing_tag", "fix_bad_enum", "fix_garbled",
            "csv_missing_column", "csv_bad_value", "not_utf8", "empty_file", "duplicate_file"} <= reasons
    for row in rows:
        path = drop / row["file"]
        assert path.exists(), row["file"]
        data = path.read_bytes()
        reason = row["expected_reason"]
        if reason.startswith("fix_"):
            assert len(data.splitlines()) == int(row["expected_quarantined_rows"])
        if reason == "fix_bad_checksum":
            assert all("checksum" in _fix_problems(line) for line in data.splitlines(keepends=True))
        if reason == "fix_bad_body_length":
            assert all(_fix_problems(line) == ["body_length"] for line in data.splitlines(keepends=True))
        if reason == "fix_missing_tag":
            assert all(_fix_problems(line) == [] for line in data.splitlines(keepends=True))
            assert all(not {"11", "55", "31"} <= set(_fields(line)) for line in data.splitlines())
        if reason == "not_utf8":
            with pytest.raises(UnicodeDecodeError):
                data.decode("utf-8")
        if reason == "empty_file":
            assert data == b""
        if reason == "duplicate_file":
            original = path.with_name(path.name.replace("_copy", ""))
            assert original.read_bytes() == data
    staged = [row for row in rows if row["file"].startswith("_redeliveries/")]
    assert len(staged) == 2
    redelivery = drop / staged[0]["file"]
    assert redelivery.read_bytes() != (drop / staged[0]["file"].removeprefix("_redeliveries/")).read_bytes()
    assert not (drop / staged[1]["file"].removeprefix("_redeliveries/")).exists()  # the late file is not there yet


# --- advance: one more business day -----------------------------------------------------------


def test_advance_is_one_deterministic_business_day(tmp_path, clean_world):
    import shutil

    from sandbox.world.advance import advance_world

    copies = []
    for name in ("a", "b"):
        base = tmp_path / name
        for key in ("drop", "truth", "state"):
            shutil.copytree(clean_world[key], base / key)
        paths = {key: base / key for key in ("drop", "truth", "state")}
        before = _hashes(paths["drop"])
        result = advance_world(paths["state"], paths["drop"], paths["truth"],
                               now=datetime(2026, 11, 2, 22, 0, tzinfo=UTC), log=lambda _msg: None)
        copies.append((paths, before, result))
    (paths, before, result), (other, _, other_result) = copies
    after = _hashes(paths["drop"])
    # the seed's files are untouched; one billing month and one business date's files are new
    assert {k: after[k] for k in before} == before
    added = sorted(set(after) - set(before))
    assert added == sorted(["drop/billing/billing_202611.csv", "drop/oms/trade_book_20261102.csv",
                            "drop/prime/atlas/ATLAS_CONF_20261102.csv",
                            "drop/prime/meridian/meridian_confirms_2026-11-02.csv",
                            *(f"drop/fix/{b}_20261102.fix" for b in ("BRKA", "BRKB", "BRKC"))])
    assert result["business_date"] == "2026-11-02" and result["billing_month"] == "2026-11-30"
    # deterministic for the seed and round: the same files, the same CRM changes
    assert _hashes(other["drop"]) == after and other_result["crm"] == result["crm"]
    billed = pl.read_csv(paths["drop"] / "billing" / "billing_202611.csv")
    assert billed.columns == BILLING and set(billed["period_end"]) == {"2026-11-30"}
    book = pl.read_csv(paths["drop"] / "oms" / "trade_book_20261102.csv")
    assert book.columns == BOOK and 0.95 * SCALES["small"].trades_per_day < book.height <= SCALES["small"].trades_per_day
    assert set(book["trade_date"]) == {"2026-11-02"} and book["trade_id"].is_unique().all()
    breaks = pl.read_parquet(paths["truth"] / "breaks.parquet")
    assert breaks.filter(pl.col("business_date").cast(pl.String) == "2026-11-02").height > 0
    # a whole CRM day: households arrive and leave, contacts and opportunities change
    changes = result["crm"]["changes"]
    for kind in ("Account.insert", "Account.delete", "Account.update", "Contact.insert", "Contact.update",
                 "Contact.delete", "Opportunity.insert", "Opportunity.update", "Task.insert", "Task.delete"):
        assert changes.get(kind, 0) > 0, kind
    store = SalesforceStore(paths["state"] / "salesforce.db")
    left = pl.read_parquet(paths["truth"] / "crm_mutations.parquet").filter(
        (pl.col("object") == "Account") & (pl.col("change") == "delete"))["record_id"][0]
    assert store.get_record("Account", left) is None
    assert not store.find_ids("Contact", "AccountId", left)
    store.close()
    # round 2 is the next business day and the next month
    second = advance_world(paths["state"], paths["drop"], paths["truth"], log=lambda _msg: None)
    assert second["round"] == 2 and second["business_date"] == "2026-11-03"
    assert second["billing_month"] == "2026-12-31"
# --- people: duplicates, custodian owners, identity truth -------------------------------------------


def test_people_are_duplicated_with_truth_and_custodian_owners(clean_world):
    truth = pl.read_parquet(clean_world["truth"] / "identity.parquet")
    contacts = truth.filter(pl.col("record_type") == "contact")
    store = SalesforceStore(clean_world["state"] / "salesforce.db")
    assert contacts.height == store.count("Contact") and contacts["record_id"].is_unique().all()
    # 3-8 % of people appear as two or more Contacts, each variant kind the issue names among them
    per_person = contacts.group_by("person_id").len()
    share = per_person.filter(pl.col("len") > 1).height / per_person.height
    assert 0.03 <= share <= 0.08, share
    kinds = {kind for variant in contacts["variant"].to_list() for kind in variant.split("+")}
    assert kinds >= {"original", "nickname", "typo", "transposed_birth_date", "maiden_name", "old_address",
                     "email_alias", "missing_fields"}
    # a duplicate sits in its person's household Account, so truth's household is the Account's
    rows = store.select("Contact", ["Id", "AccountId", "MailingPostalCode", "Tax_Id__c", "HasOptedOutOfEmail"])
    by_id = {row["Id"]: row for row in rows}
    accounts = {row["Id"]: row["Household_Id__c"] for row in store.select("Account", ["Id", "Household_Id__c"])}
    assert all(accounts[by_id[rid]["AccountId"]] == household
               for rid, household in zip(contacts["record_id"].to_list(), contacts["household_id"].to_list(), strict=True))
    assert 0.4 < sum(row["Tax_Id__c"] is not None for row in rows) / len(rows) < 0.8
    assert any(row["HasOptedOutOfEmail"] for row in rows) and not all(row["HasOptedOutOfEmail"] for row in rows)
    # brokerage owners as the custodian spells them, one truth row per brokerage account
    owners = store.select("Brokerage_Account__c", ["Id", "Owner_Name__c", "Owner_Birthdate__c", "Owner_Tax_Id__c"])
    assert truth.filter(pl.col("record_type") == "brokerage_owner").height == len(owners)
    assert all(re.fullmatch(r"[A-Z' -]+, [A-Z' -]+ [A-Z]", row["Owner_Name__c"]) for row in owners)
    assert all(re.fullmatch(r"\d\d/\d\d/\d{4}", row["Owner_Birthdate__c"]) for row in owners)
    assert all(re.fullmatch(r"9\d\d-\d\d-\d{4}", row["Owner_Tax_Id__c"]) for row in owners)
    store.close()


def test_hostile_world_adds_twins_namesakes_and_almost_empty_records(world):
    truth = pl.read_parquet(world["truth"] / "identity.parquet")
    variants = set(truth["variant"].to_list())
    assert {"twin", "namesake", "almost_empty"} <= variants
    store = SalesforceStore(world["state"] / "salesforce.db")
    rows = {row["Id"]: row for row in store.select("Contact", ["Id", "FirstName", "Birthdate", "MailingStreet"])}
    store.close()
    twins = truth.filter(pl.col("variant") == "twin")
    siblings = truth.filter(pl.col("variant") == "original").select("record_id", "person_id")
    # a twin shares the address and the birth date of someone in their household, but is another person
    for twin in twins.head(10).iter_rows(named=True):
        row = rows[twin["record_id"]]
        same = [r for r in rows.values() if r["Birthdate"] == row["Birthdate"] and r["MailingStreet"] == row["MailingStreet"]
                and r["Id"] != row["Id"]]
        assert same and all(r["FirstName"] != row["FirstName"] for r in same)
    assert twins["person_id"].is_in(siblings["person_id"]).not_().all()
