"""Landing the broker drop folder: dialects, conservation, exactly-once, versions, quarantine, hostile world."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from ingest.broker_files import land_broker_files
from ingest.broker_files.csv_files import parse_csv
from ingest.broker_files.dialects import load_dialects
from ingest.fix.message import encode
from ingest.manifest import read_manifest

REPO = Path(__file__).resolve().parents[2]
DIALECTS = {d.source: d for d in load_dialects()}

OMS = (
    "trade_id,order_id,trade_date,trade_time,account_number,instrument_id,asset_class,side,quantity,price,"
    "currency,settle_date,executing_broker,prime_broker,commission,fees\n"
    "T1,O1,2026-10-30,2026-10-30T14:31:05.123Z,BA00000001,AAPL,EQUITY,BUY,100,187.25,USD,2026-11-02,BRKA,atlas,1.00,0.05\n"
    "T2,O2,2026-10-30,2026-10-30T15:00:00.000Z,BA00000002,US912828XX,BOND,SELL,10000,98.125,USD,2026-11-02,BRKB,meridian,0,0\n"
)
ATLAS = (
    "Client Ref,Trade Dt,Settle Dt,Acct,Security ID,Sec Type,B/S,Qty,Price,Ccy,Gross Amt,Comm,Fees,Exec Broker\n"
    "T1,10/30/2026,11/02/2026,BA00000001,AAPL,EQ,B,100,187.25,USD,18725.00,1.00,0.05,BRKA\n"
    "T3,10/30/2026,11/02/2026,BA00000003,AAPL261120C00190000,OP,S,2,3.10,USD,620.00,1.30,0.02,BRKA\n"
)
MERIDIAN = (
    "ref;trade_date;value_date;account;instrument;product;direction;nominal;px;currency;commission;charges;broker\n"
    "T2;30.10.2026;02.11.2026;BA00000002;US912828XX;Bond;SELL;10000;0.98125;USD;0;0;BRKB\n"
    "T4;30.10.2026;03.11.2026;BA00000004;EURUSD-20261201;FX Forward;BUY;250000;1.0842;USD;0;0;BRKB\n"
)
BILLING = (
    "account_number,period_end,market_value,net_flows,fees_billed,currency,account_status\n"
    "BA00000001,2026-10-31,1250000.00,-5000.00,1041.67,USD,OPEN\n"
)


def fix_line(i: int, version: str = "FIX.4.4") -> bytes:
    fields = [(35, "8"), (49, "BRKA"), (56, "NORTHSTAR"), (34, str(i)), (52, "20261030-14:31:05.123"),
              (37, f"B{i}"), (11, "O1"), (17, f"E{i}")]
    fields += [(20, "0"), (150, "2")] if version == "FIX.4.2" else [(150, "F")]
    fields += [(39, "2"), (1, "BLOCK-ATLAS"), (55, "AAPL"), (167, "CS"), (54, "1"), (38, "100"), (32, "100"),
               (31, "187.25"), (151, "0"), (14, "100"), (6, "187.25"), (15, "USD"), (60, "20261030-14:31:05.123"),
               (75, "20261030"), (64, "20261102"), (12, "1.00"), (13, "3")]
    return encode(version, fields) + b"\n"


def write(path: Path, content: bytes | str, mtime: int | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    if mtime is not None:
        os.utime(path, ns=(mtime, mtime))
    return path


@pytest.fixture
def drop(tmp_path) -> Path:
    d = tmp_path / "drop"
    t0 = 1_790_000_000_000_000_000
    write(d / "oms" / "trade_book_20261030.csv", OMS, t0)
    write(d / "prime" / "atlas" / "ATLAS_CONF_20261030.csv", ATLAS, t0 + 1)
    write(d / "prime" / "meridian" / "meridian_confirms_2026-10-30.csv", MERIDIAN, t0 + 2)
    write(d / "billing" / "billing_202610.csv", BILLING, t0 + 3)
    fix = fix_line(1) + fix_line(2) + b"8=FIX.4.4\x019=5\x0135=8\x01\n" + fix_line(4, "FIX.4.2")
    write(d / "fix" / "BRKA_20261030.fix", fix, t0 + 4)
    return d


def manifest_of(landing: Path) -> pl.DataFrame:
    return read_manifest(landing, "broker_files")


# --- dialects ---------------------------------------------------------------------------------


@pytest.mark.unit
def test_atlas_dialect_maps_us_dates_codes_and_conventions():
    parsed = parse_csv(ATLAS.encode(), DIALECTS["atlas"])
    assert parsed.rejected == [] and parsed.rows_in == 2
    eq, opt = parsed.rows.to_dicts()
    assert eq["trade_id"] == "T1" and eq["prime_broker"] == "atlas"
    assert eq["trade_date"] == dt.date(2026, 10, 30) and eq["settle_date"] == dt.date(2026, 11, 2)
    assert (eq["side_code"], eq["side"], eq["asset_class_code"], eq["asset_class"]) == ("B", "BUY", "EQ", "EQUITY")
    assert eq["price"] == Decimal("187.25") and eq["gross_amount"] == Decimal("18725")
    assert (opt["asset_class"], opt["price_convention"], opt["contract_multiplier"]) == ("OPTION", "per_unit", 100)
    assert eq["_source_line"] == 2 and opt["_source_line"] == 3


@pytest.mark.unit
def test_meridian_dialect_semicolons_european_dates_fraction_of_par():
    parsed = parse_csv(MERIDIAN.encode(), DIALECTS["meridian"])
    assert parsed.rejected == []
    bond, fx = parsed.rows.to_dicts()
    assert bond["trade_date"] == dt.date(2026, 10, 30) and bond["settle_date"] == dt.date(2026, 11, 2)
    assert bond["price"] == Decimal("0.98125") and bond["price_convention"] == "fraction_of_par"
    assert bond["quantity"] == Decimal("10000") and bond["prime_broker"] == "meridian"
    assert bond["gross_amount"] is None  # meridian sends none
    assert (fx["asset_class_code"], fx["asset_class"], fx["side"]) == ("FX Forward", "FX_FWD", "BUY")


@pytest.mark.unit
def test_oms_dialect_timestamps_and_pct_of_par():
    parsed = parse_csv(OMS.encode(), DIALECTS["oms"])
    eq, bond = parsed.rows.to_dicts()
    assert eq["trade_time"] == dt.datetime(2026, 10, 30, 14, 31, 5, 123000, tzinfo=dt.UTC)
    assert bond["price_convention"] == "pct_of_par" and bond["price"] == Decimal("98.125")


@pytest.mark.unit
def test_csv_bad_values_are_rejected_row_by_row():
    text = OMS + OMS.splitlines()[1].replace("T1,", "T9,").replace(",100,", ",12O,") + "\n"
    text += OMS.splitlines()[1].replace("T1,", "T8,").replace("2026-10-30,2026", "2026-13-45,2026") + "\n"
    text += OMS.splitlines()[1].replace("T1,", "T7,").replace(",BUY,", ",HOLD,") + "\n"
    parsed = parse_csv(text.encode(), DIALECTS["oms"])
    assert parsed.rows_in == 5 and parsed.rows.height == 2
    assert [(r.line_number, r.reason_code) for r in parsed.rejected] == [(4, "csv_bad_value"), (5, "csv_bad_value"),
                                                                          (6, "csv_bad_value")]
    assert "quantity" in parsed.rejected[0].reason_detail and "side" in parsed.rejected[2].reason_detail


# --- folder level -----------------------------------------------------------------------------


@pytest.mark.integration
def test_lands_every_table_with_lineage_and_conservation(drop, tmp_path):
    landing = tmp_path / "landing"
    report = land_broker_files(drop, landing, run_id="run-1")
    assert report.files_seen == 5 and report.files_landed == 5
    assert report.business_dates == ["2026-10", "2026-10-30"]
    for f in report.files:
        assert f.rows_in == f.rows_landed + f.rows_quarantined
    m = manifest_of(landing)
    assert (m["rows_in"] == m["rows_landed"] + m["rows_quarantined"]).all()
    assert set(m["status"]) == {"landed"} and set(m["version"]) == {1}

    confirms = pl.read_parquet(landing / "broker" / "pb_confirms", hive_partitioning=True)
    assert sorted(confirms["prime_broker"].unique()) == ["atlas", "meridian"] and confirms.height == 4
    assert confirms["business_date"].unique().to_list() == [dt.date(2026, 10, 30)]
    for col in ["_source_file", "_source_line", "_file_sha256", "_file_version", "_run_id", "_landed_at"]:
        assert confirms[col].null_count() == 0
    assert (landing / "broker" / "billing" / "period=2026-10").is_dir()
    fix = pl.read_parquet(landing / "broker" / "fix_executions", hive_partitioning=True)
    assert fix.height == 3 and fix["price_convention"].to_list() == ["per_unit"] * 3
    q = pl.read_parquet(landing / "quarantine" / "broker_files" / "fix")
    assert q.select("line_number", "reason_code").rows() == [(3, "fix_garbled")]
    fix_row = m.filter(pl.col("source") == "fix").row(0, named=True)
    assert (fix_row["rows_in"], fix_row["rows_landed"], fix_row["rows_quarantined"]) == (4, 3, 1)


@pytest.mark.integration
def test_rerun_lands_nothing_new(drop, tmp_path):
    landing = tmp_path / "landing"
    land_broker_files(drop, landing, run_id="run-1")
    files_before = sorted(p.relative_to(landing) for p in (landing / "broker").rglob("*.parquet"))
    report = land_broker_files(drop, landing, run_id="run-2")
    assert report.files_landed == 0 and report.files_skipped == 5 and report.business_dates == []
    assert sorted(p.relative_to(landing) for p in (landing / "broker").rglob("*.parquet")) == files_before
    skipped = manifest_of(landing).filter(pl.col("run_id") == "run-2")
    assert set(skipped["status"]) == {"skipped_duplicate"} and set(skipped["reason_code"]) == {"duplicate_file"}


@pytest.mark.integration
def test_retry_of_same_run_reports_what_it_landed(drop, tmp_path):
    landing = tmp_path / "landing"
    first = land_broker_files(drop, landing, run_id="run-1")
    retry = land_broker_files(drop, landing, run_id="run-1")
    assert retry.files_landed == first.files_landed and retry.business_dates == first.business_dates
    assert manifest_of(landing).height == 5


@pytest.mark.integration
def test_duplicate_under_another_name_is_skipped(drop, tmp_path):
    landing = tmp_path / "landing"
    shutil.copyfile(drop / "prime/atlas/ATLAS_CONF_20261030.csv", drop / "prime/atlas/ATLAS_CONF_20261030_copy.csv")
    os.utime(drop / "prime/atlas/ATLAS_CONF_20261030_copy.csv", ns=(1_800_000_000_000_000_000,) * 2)
    report = land_broker_files(drop, landing, run_id="run-1")
    skipped = [f for f in report.files if f.status == "skipped_duplicate"]
    assert [f.file_name for f in skipped] == ["ATLAS_CONF_20261030_copy.csv"]
    row = manifest_of(landing).filter(pl.col("status") == "skipped_duplicate").row(0, named=True)
    assert row["duplicate_of"] == "ATLAS_CONF_20261030.csv" and row["reason_code"] == "duplicate_file"
    assert pl.read_parquet(landing / "broker" / "pb_confirms").height == 4


@pytest.mark.integration
def test_corrected_redelivery_lands_as_version_2(drop, tmp_path):
    landing = tmp_path / "landing"
    land_broker_files(drop, landing, run_id="run-1")
    path = drop / "prime/atlas/ATLAS_CONF_20261030.csv"
    old_sha = manifest_of(landing).filter(pl.col("file_name") == path.name)["sha256"][0]
    write(path, ATLAS.replace("187.25", "187.26"))
    report = land_broker_files(drop, landing, run_id="run-2")
    assert [(f.file_name, f.version, f.status) for f in report.files if f.status == "landed"] == [
        (path.name, 2, "landed")]
    assert report.business_dates == ["2026-10-30"]
    v2 = manifest_of(landing).filter((pl.col("file_name") == path.name) & (pl.col("version") == 2)).row(0, named=True)
    assert v2["supersedes_sha256"] == old_sha
    atlas = pl.read_parquet(landing / "broker" / "pb_confirms").filter(pl.col("prime_broker") == "atlas")
    latest = atlas.filter(pl.col("_file_version") == pl.col("_file_version").max().over("_source_file"))
    assert sorted(latest["price"].cast(pl.Float64).to_list()) == [3.10, 187.26]


@pytest.mark.integration
@pytest.mark.parametrize(
    ("content", "reason", "rows"),
    [
        (b"", "empty_file", 0),
        (MERIDIAN.replace("BRKB", "Soci\u00e9t\u00e9").encode("latin-1"), "not_utf8", 2),
        (MERIDIAN.replace("nominal", "quantity").encode(), "csv_missing_column", 2),
        (MERIDIAN.replace(";charges", "").encode(), "csv_missing_column", 2),
    ],
)
def test_unreadable_files_are_quarantined_whole(tmp_path, content, reason, rows):
    drop, landing = tmp_path / "drop", tmp_path / "landing"
    write(drop / "prime/meridian/meridian_confirms_2026-10-30.csv", content)
    report = land_broker_files(drop, landing, run_id="run-1")
    (f,) = report.files
    assert (f.status, f.reason_code, f.rows_in, f.rows_landed, f.rows_quarantined) == (
        "quarantined", reason, rows, 0, rows)
    q = pl.read_parquet(landing / "quarantine" / "broker_files" / "meridian")
    assert set(q["reason_code"]) == {reason}
    assert q.height == max(rows, 1)  # an empty file leaves one file-level row (line_number null)
    assert not (landing / "broker").exists()
    if reason == "not_utf8":
        assert "\\xe9" in q["raw_content"][0]


@pytest.mark.integration
def test_late_file_lands_in_its_own_business_date(drop, tmp_path):
    landing = tmp_path / "landing"
    land_broker_files(drop, landing, run_id="run-1")
    write(drop / "fix" / "BRKC_20261026.fix", fix_line(1, "FIX.4.2"))
    report = land_broker_files(drop, landing, run_id="run-2")
    assert report.business_dates == ["2026-10-26"]
    assert (landing / "broker" / "fix_executions" / "business_date=2026-10-26").is_dir()


@pytest.mark.integration
def test_cli_runs(drop, tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "ingest", "broker-files", "--drop", str(drop), "--landing", str(tmp_path / "l"),
         "--run-id", "cli-run", "--source", "pb_confirms"],
        cwd=REPO, capture_output=True, text=True, check=True)
    assert '"files_landed": 2' in out.stdout


@pytest.mark.integration
def test_hostile_small_world_lands_with_expected_quarantine(tmp_path):
    if not (REPO / "sandbox" / "world" / "seed.py").exists():
        pytest.skip("world generator not available")
    drop, truth, landing = tmp_path / "drop", tmp_path / "truth", tmp_path / "landing"
    subprocess.run(
        [sys.executable, "-m", "sandbox", "seed", "--scale", "small", "--seed", "7", "--hostile",
         "--drop", str(drop), "--truth", str(truth), "--state", str(tmp_path / "state")],
        cwd=REPO, check=True, capture_output=True)
    first = land_broker_files(drop, landing, run_id="first")
    by_path = {f.file_path: f for f in first.files}
    for f in first.files:
        assert f.rows_in == f.rows_landed + f.rows_quarantined, f
    quarantine = pl.read_parquet(landing / "quarantine" / "broker_files" / "*" / "*.parquet")
    expected = pl.read_csv(truth / "hostile_files.csv")
    for row in expected.filter(~pl.col("file").str.starts_with("_")).iter_rows(named=True):
        outcome = by_path[row["file"]]
        if row["expected_reason"] == "duplicate_file":
            assert outcome.status == "skipped_duplicate" and outcome.reason_code == "duplicate_file"
            continue
        assert outcome.rows_quarantined == row["expected_quarantined_rows"], row
        assert outcome.rows_landed == 0, row
        codes = quarantine.filter(pl.col("file_name") == Path(row["file"]).name)["reason_code"].unique().to_list()
        assert codes == [row["expected_reason"]], row

    # the later deliveries: a corrected redelivery (same name) and a late file for an earlier date
    staged = drop / "_redeliveries"
    moved = []
    for path in sorted(p for p in staged.rglob("*") if p.is_file()):
        target = drop / path.relative_to(staged)
        shutil.move(path, target)
        moved.append(target.relative_to(drop).as_posix())
    second = land_broker_files(drop, landing, run_id="second")
    landed = {f.file_path: f for f in second.files if f.status == "landed"}
    assert set(landed) == set(moved)
    assert landed["prime/atlas/ATLAS_CONF_20261029.csv"].version == 2
    assert landed["fix/BRKC_20261026.fix"].version == 1
    assert second.business_dates == ["2026-10-26", "2026-10-29"]


def _rewrite_manifest_until(stop, landing, run_id):
    """What a landing task does: replace its run's manifest after every file it lands."""
    from ingest.manifest import write_run_manifest

    rows = []
    while not stop.is_set():
        rows.append({"run_id": run_id, "source": "billing", "table_name": "billing",
                     "file_name": f"billing_{len(rows)}.csv", "file_path": f"billing/billing_{len(rows)}.csv",
                     "sha256": f"{len(rows):064x}", "version": 1, "status": "landed", "rows_in": len(rows),
                     "started_at": dt.datetime.now(dt.UTC)})
        write_run_manifest(landing, "broker_files", run_id, rows[-300:])


@pytest.mark.integration
def test_the_manifest_reads_whole_while_another_run_rewrites_it(tmp_path):
    """Two DAGs land at once on the stack: one reads the manifest while the other replaces its run's
    file. Read by path, Polars mixed two versions of a file (wrong page size) in 220 of 772 reads."""
    import multiprocessing
    import time

    landing = tmp_path / "landing"
    # Spawned, not forked: a child forked from a process whose Polars thread pool is running can
    # deadlock inside Polars and never see the stop event (it outlived a test run by two hours).
    context = multiprocessing.get_context("spawn")
    stop = context.Event()
    writers = [context.Process(target=_rewrite_manifest_until, args=(stop, landing, f"run-{n}"), daemon=True)
               for n in (1, 2)]
    for writer in writers:
        writer.start()
    try:
        started = time.monotonic() + 60
        while not (landing / "_manifest" / "broker_files").is_dir() and time.monotonic() < started:
            time.sleep(0.05)  # the spawned writers are importing Polars
        reads, deadline = 0, time.monotonic() + 6
        while time.monotonic() < deadline:
            if (landing / "_manifest" / "broker_files").is_dir():
                assert set(read_manifest(landing, "broker_files")["run_id"]) <= {"run-1", "run-2"}
                reads += 1
    finally:
        stop.set()
        for writer in writers:
            writer.join(30)
        hung = [writer.pid for writer in writers if writer.is_alive()]
        for writer in writers:
            writer.kill()
    assert not hung, f"manifest writers did not stop: {hung}"
    assert reads > 50
