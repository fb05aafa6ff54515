"""FIX drop-copy parsing: each validation fault is caught with its reason, valid 4.4 and 4.2 land typed."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from connectors.fix import dictionary
from ingest.fix.message import encode
from ingest.fix.parser import parse_fix

pytestmark = pytest.mark.unit

SOH = b"\x01"


def execution(version: str = "FIX.4.4", drop: tuple[int, ...] = (), **override: str) -> list[tuple[int, str]]:
    fields = [
        (35, "8"), (49, "BRKA" if version == "FIX.4.4" else "BRKC"), (56, "NORTHSTAR"), (34, "12"),
        (52, "20261030-14:31:05.123"), (37, "B000123"), (11, "ORD0000042"), (17, "EX000777"),
    ]
    if version == "FIX.4.2":
        fields += [(20, "0"), (150, "2")]
    else:
        fields += [(150, "F")]
    fields += [
        (39, "2"), (1, "BLOCK-ATLAS"), (55, "AAPL"), (167, "CS"), (54, "2"), (38, "1500"), (32, "1500"),
        (31, "187.2500"), (151, "0"), (14, "1500"), (6, "187.2500"), (15, "USD"), (60, "20261030-14:31:05"),
        (75, "20261030"), (64, "20261102"), (12, "7.50"), (13, "3"),
    ]
    fields = [(t, override.get(f"t{t}", v)) for t, v in fields if t not in drop]
    return fields


def line(version: str = "FIX.4.4", **kw) -> bytes:
    return encode(version, execution(version, **kw)) + b"\n"


def reasons(data: bytes) -> list[str]:
    return [r.reason_code for r in parse_fix(data).rejects]


def test_valid_44_and_42_land_typed():
    result = parse_fix(line("FIX.4.4") + line("FIX.4.2"))
    assert result.rejects == []
    assert result.lines_in == 2 and result.rows_landed == 2
    first, second = result.executions.to_dicts()
    assert first["begin_string"] == "FIX.4.4" and second["begin_string"] == "FIX.4.2"
    assert first["cl_ord_id"] == "ORD0000042"
    assert first["last_qty"] == Decimal("1500") and first["last_px"] == Decimal("187.25")
    assert first["side_code"] == "2" and first["side"] == "SELL"
    assert first["trade_date"] == dt.date(2026, 10, 30) and first["settl_date"] == dt.date(2026, 11, 2)
    assert first["sending_time"] == dt.datetime(2026, 10, 30, 14, 31, 5, 123000, tzinfo=dt.UTC)
    assert first["transact_time"] == dt.datetime(2026, 10, 30, 14, 31, 5, tzinfo=dt.UTC)
    assert first["exec_trans_type"] is None and second["exec_trans_type"] == "0"
    assert first["_source_line"] == 1 and second["_source_line"] == 2


def test_bad_checksum():
    good = line()
    cs = int(good.rstrip(b"\n").split(SOH)[-2][3:])
    bad = good.replace(b"10=%03d" % cs, b"10=%03d" % ((cs + 1) % 256))
    result = parse_fix(bad)
    assert [r.reason_code for r in result.rejects] == ["fix_bad_checksum"]
    assert "CheckSum" in result.rejects[0].reason_detail


def test_bad_body_length_with_valid_checksum():
    fields = execution()
    body = b"".join(f"{t}={v}".encode() + SOH for t, v in fields)
    head = b"8=FIX.4.4" + SOH + f"9={len(body) + 3}".encode() + SOH
    msg = head + body
    data = msg + f"10={sum(msg) % 256:03d}".encode() + SOH + b"\n"
    assert reasons(data) == ["fix_bad_body_length"]


@pytest.mark.parametrize("tag", [37, 17, 150, 39, 54, 151, 14, 6])
def test_missing_tag_the_standard_requires(tag):
    result = parse_fix(line(drop=(tag,)))
    assert [r.reason_code for r in result.rejects] == ["fix_missing_tag"]
    assert f"({tag})" in result.rejects[0].reason_detail


@pytest.mark.parametrize("tag", [11, 55, 31, 75])
def test_a_tag_only_a_broker_requires_is_checked_only_for_that_broker(tag):
    assert reasons(line(drop=(tag,))) == []  # FIX 4.4 does not require it
    result = parse_fix(line(drop=(tag,)), extra_required=(1, 11, 15, 31, 32, 38, 55, 60, 75))
    assert [r.reason_code for r in result.rejects] == ["fix_missing_tag"]
    assert f"({tag})" in result.rejects[0].reason_detail


def test_42_requires_exec_trans_type():
    assert reasons(line("FIX.4.2", drop=(20,))) == ["fix_missing_tag"]


@pytest.mark.parametrize("override", [{"t54": "X"}, {"t39": "Z"}, {"t150": "Q"}, {"t167": "NOPE"}])
def test_bad_enum(override):
    assert reasons(line(**override)) == ["fix_bad_enum"]


def test_enum_sets_differ_by_version():
    # ExecType F (Trade) exists in FIX 4.4, not in FIX 4.2
    assert reasons(line("FIX.4.2", t150="F")) == ["fix_bad_enum"]


def test_garbled_lines():
    good = line()
    data = (
        good[: len(good) // 2] + b"\n"  # truncated
        + good[:-8] + b"\n"  # trailer cut
        + b"this is not fix at all\n"
        + good.replace(SOH, b"|")  # wrong delimiter
        + encode("FIX.4.3", execution()) + b"\n"  # unsupported BeginString
        + good.replace(b"\x0155=AAPL\x01", b"\x0155=AAPL\x0155=MSFT\x01")  # repeated tag
    )
    result = parse_fix(data)
    assert [r.reason_code for r in result.rejects] == ["fix_garbled"] * 6
    assert [r.line_number for r in result.rejects] == [1, 2, 3, 4, 5, 6]


def test_bad_value_type_is_garbled():
    assert reasons(line(t31="12.3.4")) == ["fix_garbled"]
    assert reasons(line(t75="20261399")) == ["fix_garbled"]


def test_text_that_is_not_utf8_is_read_as_latin1_and_flagged():
    bad = encode("FIX.4.4", [(t, "Soci\xe9t\xe9" if t == 1 else v) for t, v in execution()] + [(58, "d\xe9j\xe0 vu")],
                 encoding="latin-1")
    result = parse_fix(line() + bad + b"\n" + line())
    assert result.rejects == [] and result.rows_landed == 3
    rows = result.executions.to_dicts()
    assert [r["latin1_decoded"] for r in rows] == [False, True, False]
    assert rows[1]["account"] == "Société" and rows[1]["text"] == "déjà vu" and rows[0]["account"] == "BLOCK-ATLAS"


def test_conservation_and_line_numbers_across_chunks():
    lines = [line(t34=str(i)) for i in range(200)]
    lines[17] = lines[17].replace(b"35=8", b"35=9")
    lines[150] = b"garbage\n"
    data = b"".join(lines) + b"\n"  # trailing blank line is not a record
    result = parse_fix(data, chunk_bytes=4096)
    assert result.lines_in == 200
    assert result.rows_landed + len(result.rejects) == 200
    assert {r.line_number: r.reason_code for r in result.rejects} == {18: "fix_bad_checksum", 151: "fix_garbled"}
    assert sorted(result.executions["_source_line"].to_list()) == [i + 1 for i in range(200) if i not in (17, 150)]


def test_no_trailing_newline_and_crlf():
    result = parse_fix(line().rstrip(b"\n") + b"\r\n" + line().rstrip(b"\n"))
    assert result.rejects == [] and result.rows_landed == 2


def test_dictionary_from_quickfix():
    fix44, fix42 = dictionary.load("FIX.4.4"), dictionary.load("FIX.4.2")
    assert fix44.tags[150].enums >= {"F"} and "F" not in fix42.tags[150].enums
    assert 20 not in fix44.tags and fix42.tags[20].required
    assert fix42.tags[32].name == "LastShares" and dictionary.columns()[32][0] == "last_qty"
    assert "FXFWD" in fix44.tags[167].enums  # our extension, marked as such in the JSON
    assert dictionary.snake_case("ClOrdID") == "cl_ord_id"


def hostile_file() -> bytes:
    """~240 messages, every kind of fault, spread so that small chunks cut between and around them."""
    good = line()
    cs = int(good.rstrip(b"\n").split(SOH)[-2][3:])
    faults = [
        good.replace(b"10=%03d" % cs, b"10=%03d" % ((cs + 1) % 256)),  # checksum
        line(drop=(37,)),  # missing tag
        line(t54="X"),  # enum
        line("FIX.4.2", t150="F"),  # enum of the other version
        line(t31="12.3.4"),  # decimal that does not cast
        line(t75="20261399"),  # date
        line(t60="20261030-25:00:00"),  # timestamp
        line(t12="", t31="x"),  # empty value after a mistyped one: the first column names the fault
        line(t38="1.5.5", t75="2026"),  # a cast fault before a date fault
        line(t54="", t38="y"),  # enum beats type
        bad_body_length(),
        good[: len(good) // 2] + b"\n",  # truncated
        b"this is not fix at all\n",
        good.replace(b"\x0155=AAPL\x01", b"\x0155=AAPL\x0155=MSFT\x01"),  # repeated tag
        encode("FIX.4.3", execution()) + b"\n",
        bad_utf8(),
        b"\n",  # blank, not a record
        line().rstrip(b"\n") + b"\r\n",  # CRLF is fine
    ]
    lines = []
    for i in range(240):
        lines.append(faults[i % len(faults)] if i % 7 == 3 else line("FIX.4.2" if i % 3 == 2 else "FIX.4.4", t34=str(i)))
    return b"".join(lines).rstrip(b"\n")  # and no newline at the end


def bad_body_length() -> bytes:
    body = b"".join(f"{t}={v}".encode() + SOH for t, v in execution())
    msg = b"8=FIX.4.4" + SOH + f"9={len(body) + 3}".encode() + SOH + body
    return msg + f"10={sum(msg) % 256:03d}".encode() + SOH + b"\n"


def bad_utf8() -> bytes:
    return encode("FIX.4.4", [(t, "Soci\xe9t\xe9" if t == 1 else v) for t, v in execution()], encoding="latin-1") + b"\n"


def summary(result):
    return ([(r.line_number, r.raw, r.reason_code, r.reason_detail) for r in result.rejects], result.lines_in)


@pytest.mark.parametrize("chunk_bytes", [1500, 4096, 20_000])
def test_threads_and_chunks_give_the_same_table_and_rejects(chunk_bytes):
    data = hostile_file()
    one = parse_fix(data, chunk_bytes=chunk_bytes, workers=1)
    reasons_seen = {r.reason_code for r in one.rejects}
    assert reasons_seen == {"fix_garbled", "fix_bad_body_length", "fix_bad_checksum", "fix_missing_tag",
                            "fix_bad_enum"}
    assert one.executions["latin1_decoded"].sum() > 0
    assert one.rows_landed + len(one.rejects) == one.lines_in
    for workers in (2, 3):
        many = parse_fix(data, chunk_bytes=chunk_bytes, workers=workers)
        assert summary(many) == summary(one)
        assert many.executions.schema == one.executions.schema
        assert many.executions.equals(one.executions)


def test_first_faulty_column_names_a_type_fault():
    details = {r.line_number: r.reason_detail for r in parse_fix(hostile_file(), chunk_bytes=1500, workers=2).rejects}
    by_text = sorted(details.values())
    assert any(t.startswith("last_px(31)='x' is not an exact PRICE") for t in by_text)  # 31 comes before the empty 12
    assert any(t.startswith("order_qty(38)='1.5.5' is not an exact QTY") for t in by_text)  # 38 before the date 75
    assert any(t.startswith("side(54)='' is not a valid FIX.4.4") for t in by_text)


def test_large_files_are_scanned_by_two_threads(monkeypatch):
    import os
    import threading

    from ingest.fix import parser

    threads = []
    real_scan_segment = parser._scan_segment

    def recording_scan_segment(data, chunks, layout):
        threads.append(threading.current_thread().name)
        return real_scan_segment(data, chunks, layout)

    data = hostile_file()
    expected = parse_fix(data, workers=1)
    monkeypatch.setattr(parser, "_scan_segment", recording_scan_segment)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    monkeypatch.setattr(parser, "PARALLEL_MIN_BYTES", len(data))
    result = parse_fix(data, chunk_bytes=8192)
    assert len(threads) == 2 and all(name.startswith("fix-scan") for name in threads)
    assert summary(result) == summary(expected) and result.executions.equals(expected.executions)
    threads.clear()
    parse_fix(data[:-1], chunk_bytes=8192)  # under the threshold: one segment, in the calling thread
    assert threads == [threading.current_thread().name]


def test_segments_past_the_string_view_offset_limit(monkeypatch):
    """A file larger than a string view's 31-bit offset reaches is cut into more segments, each its own
    buffer (here the limit is lowered to a few kB)."""
    from ingest.fix import parser

    accounts = [f"ACCOUNT-LONGER-THAN-A-VIEW-INLINES-{i:04d}" for i in range(80)]  # views with offsets
    data = hostile_file() + b"\n" + b"".join(line(t1=account) for account in accounts)
    expected = parse_fix(data, chunk_bytes=4096, workers=1)
    assert expected.executions["account"].tail(80).to_list() == accounts
    monkeypatch.setattr(parser, "_MAX_SEGMENT_BYTES", 10_000)
    assert len(parser._segments(parser._chunks(data, 4096), len(data), 1)) >= len(data) // 10_000
    for workers in (1, 2):
        result = parse_fix(data, chunk_bytes=4096, workers=workers)
        assert summary(result) == summary(expected) and result.executions.equals(expected.executions)


def test_rows_beyond_the_first_estimate_are_kept(monkeypatch):
    from ingest.fix import parser

    data = hostile_file()
    expected = parse_fix(data, chunk_bytes=4096, workers=1)
    monkeypatch.setattr(parser, "_ROW_BYTES_GUESS", 10**9)  # room for 16 rows: the arrays grow, chunks are redone
    result = parse_fix(data, chunk_bytes=4096, workers=2)
    assert result.rows_landed > 16 * 2
    assert summary(result) == summary(expected) and result.executions.equals(expected.executions)
