"""Files that must never stop a run or land a wrong value: each hostile case lands what it can and
quarantines the rest with its reason; the manifest accounts for every record."""

from __future__ import annotations

import json
import os
from pathlib import Path

import polars as pl
import pytest

from ingest.broker_files import land_broker_files
from ingest.broker_files.csv_files import parse_csv
from ingest.broker_files.dialects import DialectError, load_dialect, load_dialects, load_dialects_reporting
from ingest.fix.message import encode
from ingest.manifest import read_manifest, run_file_name
from tests.ingest.test_broker_files import ATLAS, DIALECTS, fix_line, write

T0 = 1_790_000_000_000_000_000


def manifest(landing: Path) -> dict[str, dict]:
    rows = read_manifest(landing, "broker_files").sort("started_at").to_dicts()
    return {r["file_path"]: r for r in rows}


def quarantine(landing: Path) -> pl.DataFrame:
    return pl.read_parquet(landing / "quarantine" / "broker_files" / "*" / "*.parquet")


def q_reasons(landing: Path, file_path: str) -> set[str]:
    q = quarantine(landing).filter(pl.col("file_name") == Path(file_path).name)
    return set(q["reason_code"])


@pytest.mark.integration
def test_bad_files_are_quarantined_with_a_reason_and_the_others_land(tmp_path, monkeypatch):
    drop, landing = tmp_path / "drop", tmp_path / "landing"
    write(drop / "prime" / "atlas" / "ATLAS_CONF_20261345.csv", ATLAS, T0)  # month 13, day 45
    write(drop / "prime" / "atlas" / "ATLAS_CONF_20261030.csv", ATLAS.splitlines()[0] + "\n", T0 + 1)
    outside = write(tmp_path / "elsewhere" / "secret.csv", "do not copy me\n")
    (drop / "prime" / "atlas" / "ATLAS_CONF_20261029.csv").symlink_to(outside)
    unreadable = write(drop / "fix" / "BRKA_20261030.fix", fix_line(1), T0 + 2)
    unreadable.chmod(0)
    if os.geteuid() == 0:  # root reads a mode-000 file anyway: the one fault this machine cannot produce
        real_read = Path.read_bytes

        def read_bytes(self):
            if self.name == unreadable.name:
                raise PermissionError(13, "Permission denied")
            return real_read(self)

        monkeypatch.setattr(Path, "read_bytes", read_bytes)
    write(drop / "fix" / "BRKB_20261030.fix", b"2026-10-30 started\n2026-10-30 stopped\n", T0 + 3)
    write(drop / "fix" / "BRKC_20261030.fix", fix_line(2, "FIX.4.2"), T0 + 4)
    try:
        report = land_broker_files(drop, landing, run_id="hostile")
    finally:
        unreadable.chmod(0o644)
    rows = manifest(landing)
    expected = {
        "prime/atlas/ATLAS_CONF_20261345.csv": ("quarantined", "bad_file_name", 2),
        "prime/atlas/ATLAS_CONF_20261030.csv": ("quarantined", "header_only", 0),
        "prime/atlas/ATLAS_CONF_20261029.csv": ("quarantined", "symlink", 0),
        "fix/BRKB_20261030.fix": ("quarantined", None, 2),  # no FIX in it: every line garbled
        "fix/BRKC_20261030.fix": ("landed", None, 1),
        "fix/BRKA_20261030.fix": ("quarantined", "unreadable_file", 0),
    }
    for path, (status, reason, rows_in) in expected.items():
        row = rows[path]
        assert (row["status"], row["reason_code"], row["rows_in"]) == (status, reason, rows_in), path
        assert row["rows_in"] == row["rows_landed"] + row["rows_quarantined"] + row["rows_skipped"]
        if reason:
            assert row["reason_detail"], path
            assert q_reasons(landing, path) == {reason}, path
    q = quarantine(landing)
    assert "do not copy me" not in "".join(q["raw_content"].to_list())  # the link was not followed
    assert set(q["reason_code"]) >= {"bad_file_name", "header_only", "symlink", "fix_garbled"}
    assert report.files_landed == 1 and report.business_dates == ["2026-10-30"]
    # a second run sees nothing new and does not fail either
    again = land_broker_files(drop, landing, run_id="hostile-2")
    assert {f.status for f in again.files} <= {"skipped_duplicate", "quarantined"}


@pytest.mark.integration
def test_redelivery_of_earlier_content_is_the_current_version(tmp_path):
    drop, landing = tmp_path / "drop", tmp_path / "landing"
    path = drop / "prime" / "atlas" / "ATLAS_CONF_20261030.csv"
    corrected = ATLAS.replace("187.25", "187.26")
    outcomes = []
    for i, content in enumerate([ATLAS, corrected, ATLAS]):  # A, B, then A again
        write(path, content, T0 + i)
        (f,) = land_broker_files(drop, landing, run_id=f"run-{i}").files
        outcomes.append((f.status, f.version))
    assert outcomes == [("landed", 1), ("landed", 2), ("landed", 3)]
    landed = pl.read_parquet(landing / "broker" / "pb_confirms", hive_partitioning=True)
    current = landed.filter(pl.col("_file_version") == pl.col("_file_version").max().over("_source_file"))
    assert current["_file_version"].unique().to_list() == [3]
    assert str(current.filter(pl.col("trade_id") == "T1")["price"][0]) == "187.2500000000"
    # the same content again is a duplicate; the same content under another name is a copy
    write(path, ATLAS, T0 + 5)
    write(drop / "prime" / "atlas" / "ATLAS_CONF_20261030_copy.csv", ATLAS, T0 + 6)
    report = land_broker_files(drop, landing, run_id="run-again")
    assert [(f.status, f.reason_code) for f in report.files] == [("skipped_duplicate", "duplicate_file")] * 2


@pytest.mark.unit
def test_short_rows_and_multi_line_records_are_quarantined_whole():
    header, good = ATLAS.splitlines()[:2]
    text = "\n".join([
        header, good,
        "T5,10/30/2026,11/02/2026,BA00000001,AAPL,EQ,B,100",  # too few fields
        good.replace("T1,", 'T6,').replace(",BRKA", ',"BR\nKA"').replace("187.25", "1e3"),  # two lines, bad value
        good.replace("T1,", "T7,").replace(",100,", ",-100,"),
        good.replace("T1,", "T8,").replace("187.25", "187.12345678901"),
    ]) + "\n"
    parsed = parse_csv(text.encode(), DIALECTS["atlas"])
    assert parsed.rows["trade_id"].to_list() == ["T1"]
    assert [(r.line_number, r.reason_code) for r in parsed.rejected] == [
        (3, "csv_bad_value"), (4, "csv_bad_value"), (6, "csv_bad_value"), (7, "csv_bad_value")]
    assert parsed.rejected[0].reason_detail == "row has the wrong number of fields"
    assert parsed.rejected[1].raw.count(b"\n") == 1 and parsed.rejected[1].raw.endswith(b'KA"')
    assert "not negative" in parsed.rejected[2].reason_detail
    assert parsed.rows_in == 5


@pytest.mark.integration
def test_fix_log_in_the_drop_folder_counts_skipped_messages_by_type(tmp_path):
    drop, landing = tmp_path / "drop", tmp_path / "landing"
    logon = encode("FIX.4.4", [(35, "A"), (49, "BRKA"), (56, "NORTHSTAR"), (34, "1"), (52, "20261030-14:00:00"),
                               (98, "0"), (108, "30")])
    heartbeat = encode("FIX.4.4", [(35, "0"), (49, "BRKA"), (56, "NORTHSTAR"), (34, "2"), (52, "20261030-14:00:30")])
    execution = encode("FIX.4.4", [(35, "8"), (49, "BRKZ"), (56, "NORTHSTAR"), (34, "3"),
                                   (52, "20261031-02:00:00.000"), (37, "Z1"), (17, "EZ1"), (150, "F"), (39, "2"),
                                   (55, "AAPL"), (54, "1"), (32, "10"), (31, "100"), (151, "0"), (14, "10"), (6, "100"),
                                   (60, "20261031-02:00:00.000")])
    log = b"\n".join(b"20261030-14:00:00.000 : " + m.replace(b"\x01", b"|") for m in (logon, heartbeat, execution))
    write(drop / "fix" / "BRKZ_20261030.fix", log + b"\n", T0)
    land_broker_files(drop, landing, run_id="log")
    row = manifest(landing)["fix/BRKZ_20261030.fix"]
    assert (row["rows_in"], row["rows_landed"], row["rows_quarantined"], row["rows_skipped"]) == (3, 1, 0, 2)
    assert json.loads(row["skipped_by_msg_type"]) == {"0": 1, "A": 1}
    landed = pl.read_parquet(landing / "broker" / "fix_executions", hive_partitioning=True).to_dicts()[0]
    # no TradeDate: derived from TransactTime in the firm's time zone (02:00 UTC = 22:00 the day before in New York)
    assert str(landed["trade_date"]) == "2026-10-30" and landed["derived_columns"] == "trade_date"


@pytest.mark.unit
def test_run_ids_never_share_a_manifest_file():
    assert run_file_name("a:b") != run_file_name("a_b") and run_file_name("a_b") == "a_b.parquet"
    assert run_file_name("scheduled__2026-10-30T00:00:00+00:00") != run_file_name("scheduled__2026-10-30T00_00_00_00_00")


# --- dialects ---------------------------------------------------------------------------------


def dialect_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "broker.yaml"
    path.write_text(text)
    return path


GOOD = (Path(__file__).resolve().parents[2] / "ingest" / "dialects" / "atlas.yaml").read_text()


@pytest.mark.unit
@pytest.mark.parametrize(("change", "key"), [
    (lambda t: t.replace("  Qty: quantity\n", "  Qty: quantitty\n"), "columns.Qty"),
    (lambda t: t.replace("  Price: price\n", ""), "columns"),
    (lambda t: t.replace("business_date: {group: date, format: '%Y%m%d'}\n", ""), "business_date"),
    (lambda t: t + "colums: {}\n", "colums"),
    (lambda t: t.replace("contract_multiplier: {EQUITY: 1,", "contract_multiplier: {EQUITY: one,"),
     "contract_multiplier.EQUITY"),
    (lambda t: t.replace("(?P<date>", "(?P<day>"), "business_date.group"),
    (lambda t: t.replace("BOND: pct_of_par", "BOND: pct"), "price_convention.BOND"),
])
def test_invalid_dialects_are_one_line_errors_naming_file_and_key(tmp_path, change, key):
    path = dialect_file(tmp_path, change(GOOD))
    with pytest.raises(DialectError) as caught:
        load_dialect(path)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"{path}: {key}:"), message


@pytest.mark.integration
def test_a_firm_dialect_folder_adds_a_broker_and_a_bad_one_does_not_stop_the_others(
        tmp_path, monkeypatch, dbt_project_with_prime_broker):
    firm = tmp_path / "firm_dialects"
    firm.mkdir()
    (firm / "orion.yaml").write_text(GOOD.replace("source: atlas", "source: orion")
                                     .replace("folder: prime/atlas", "folder: prime/orion")
                                     .replace("ATLAS_CONF_", "ORION_")
                                     .replace("{prime_broker: atlas}", "{prime_broker: orion}"))
    (firm / "broken.yaml").write_text(GOOD.replace("source: atlas", "source: broken").replace("table:", "tabel:"))
    monkeypatch.setenv("NORTHSTAR_DIALECTS", str(firm))
    # without its row in the seed prime_brokers the new broker's dialect is refused, naming the seed
    dialects, errors = load_dialects_reporting()
    assert "orion" not in {d.source for d in dialects}
    assert any("orion.yaml: constants.prime_broker:" in e and "prime_brokers" in e for e in errors), errors
    dbt_project_with_prime_broker("orion", "Orion")
    dialects, errors = load_dialects_reporting()
    assert "orion" in {d.source for d in dialects} and len(errors) == 1 and "broken.yaml: tabel:" in errors[0]
    with pytest.raises(DialectError):
        load_dialects()
    drop, landing = tmp_path / "drop", tmp_path / "landing"
    write(drop / "prime" / "orion" / "ORION_20261030.csv", ATLAS, T0)
    report = land_broker_files(drop, landing, run_id="firm")
    assert [(f.source, f.status) for f in report.files] == [("orion", "landed")]
    assert report.dialect_errors == errors
