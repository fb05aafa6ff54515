"""FIX files shaped like brokers' real logs: prefixes, printable delimiters, several messages per line,
session messages, FIXT.1.1 / FIX 5.0 SP2; and values that must land exactly or be quarantined."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from ingest.fix.message import encode
from ingest.fix.parser import parse_fix

pytestmark = pytest.mark.unit

SOH = b"\x01"


def execution_44(**override: str) -> bytes:
    fields = [(35, "8"), (49, "BRKA"), (56, "NORTHSTAR"), (34, "7"), (52, "20261030-14:31:05.123456"),
              (37, "B1"), (11, "ORD1"), (17, "EX1"), (150, "F"), (39, "2"), (55, "AAPL"), (54, "1"),
              (38, "100"), (32, "100"), (31, "187.25"), (151, "0"), (14, "100"), (6, "187.25"),
              (60, "20261030-14:31:05.123"), (75, "20261030")]
    return encode("FIX.4.4", [(t, override.get(f"t{t}", v)) for t, v in fields if override.get(f"t{t}") != "-"])


def execution_42() -> bytes:
    return encode("FIX.4.2", [(35, "8"), (49, "BRKC"), (56, "NORTHSTAR"), (34, "9"), (52, "20261030-14:31:06"),
                              (37, "C1"), (11, "ORD2"), (17, "EX2"), (20, "0"), (150, "2"), (39, "2"), (55, "MSFT"),
                              (54, "2"), (38, "50"), (32, "50"), (31, "410.5"), (151, "0"), (14, "50"), (6, "410.5")])


def execution_50sp2(appl_ver_id: str | None = "9") -> bytes:
    fields = [(35, "8")] + ([(1128, appl_ver_id)] if appl_ver_id else []) + [
        (49, "BRKD"), (56, "NORTHSTAR"), (34, "4"), (52, "20261030-14:31:07.000"), (37, "D1"), (11, "ORD3"),
        (17, "EX3"), (150, "F"), (39, "1"), (55, "IBM"), (54, "1"), (32, "10"), (31, "250"), (151, "5"), (14, "10")]
    return encode("FIXT.1.1", fields)


def heartbeat(seq: int = 1) -> bytes:
    return encode("FIX.4.4", [(35, "0"), (49, "BRKA"), (56, "NORTHSTAR"), (34, str(seq)), (52, "20261030-14:30:00")])


def logon() -> bytes:
    return encode("FIX.4.4", [(35, "A"), (49, "BRKA"), (56, "NORTHSTAR"), (34, "1"), (52, "20261030-14:29:59"),
                              (98, "0"), (108, "30")])


def with_delimiter(message: bytes, delimiter: bytes) -> bytes:
    return message.replace(SOH, delimiter)


def test_log_prefixes_text_delimiters_and_several_messages_per_line():
    er44, er42, er50 = execution_44(), execution_42(), execution_50sp2()
    for delimiter in (SOH, b"|", b";", b"^A"):
        data = b"\n".join([
            b"2026-10-30 14:29:59,001 INFO session BRKA->NORTHSTAR created",  # log text: not a record
            b"20261030-14:29:59.999 : " + with_delimiter(logon(), delimiter),
            b"<incoming> " + with_delimiter(er44, delimiter) + b"  " + with_delimiter(heartbeat(2), delimiter),
            b"20261030-14:31:06.000 : " + with_delimiter(er42, delimiter) + with_delimiter(er50, delimiter),
            b"",
        ])
        result = parse_fix(data)
        assert result.rejects == [], delimiter
        assert result.rows_landed == 3 and result.skipped == {"A": 1, "0": 1} and result.lines_in == 5
        assert result.log_lines == 1
        rows = result.executions.to_dicts()
        assert [(r["_source_line"], r["_message_in_line"]) for r in rows] == [(3, 1), (4, 1), (4, 2)]
        assert [r["begin_string"] for r in rows] == ["FIX.4.4", "FIX.4.2", "FIXT.1.1"]
        assert [r["exec_id"] for r in rows] == ["EX1", "EX2", "EX3"]
        assert rows[0]["sending_time"] == dt.datetime(2026, 10, 30, 14, 31, 5, 123456, tzinfo=dt.UTC)
        assert rows[1]["last_px"] == Decimal("410.5") and rows[1]["exec_trans_type"] == "0"
        assert rows[2]["appl_ver_id"] == "9" and rows[2]["avg_px"] is None  # AvgPx is optional in 5.0 SP2


def test_clean_file_with_one_prefixed_line_is_framed_whole():
    data = execution_44() + b"\n" + b"12:00:01 " + execution_44(t17="EX9") + b"\n"
    result = parse_fix(data)
    assert result.rejects == [] and result.executions["exec_id"].to_list() == ["EX1", "EX9"]


def test_a_message_with_another_delimiter_than_its_file_is_garbled_and_named():
    for file_delimiter, other in ((SOH, b"|"), (b"|", b";")):
        data = b"\n".join([with_delimiter(execution_44(), file_delimiter),
                           b"x " + with_delimiter(execution_44(t17="EX2"), other), b""])
        result = parse_fix(data)
        assert result.executions["exec_id"].to_list() == ["EX1"]
        assert [(r.line_number, r.reason_code) for r in result.rejects] == [(2, "fix_garbled")]
        assert repr(other) in result.rejects[0].reason_detail and "truncated" not in result.rejects[0].reason_detail


def test_checksum_and_body_length_are_checked_on_the_soh_bytes():
    good = with_delimiter(execution_44(), b"|")
    bad_sum = good[:-4] + (b"%03d|" % ((int(good[-4:-1]) + 1) % 256))
    result = parse_fix(good + b"\n" + bad_sum + b"\n")
    assert [(r.line_number, r.reason_code) for r in result.rejects] == [(2, "fix_bad_checksum")]
    assert result.rejects[0].raw == bad_sum  # quarantined as delivered


def test_truncated_message_on_a_log_line_is_garbled_and_the_next_one_lands():
    er = with_delimiter(execution_44(), b"|")
    data = b"x : " + er[:60] + er + b"\n" + b"35=8|49=BRKA|10=123|\n"
    result = parse_fix(data)
    assert result.rows_landed == 1
    assert [(r.line_number, r.reason_code) for r in result.rejects] == [(1, "fix_garbled"), (2, "fix_garbled")]
    assert result.lines_in == 3


def test_session_messages_are_skipped_and_counted_not_quarantined():
    data = b"\n".join([logon(), heartbeat(2), heartbeat(3), execution_44(), b""])
    result = parse_fix(data)
    assert result.rejects == [] and result.rows_landed == 1 and result.skipped == {"A": 1, "0": 2}
    assert result.rows_landed + len(result.rejects) + result.rows_skipped == result.lines_in == 4


def test_a_corrupt_session_message_is_quarantined_not_skipped():
    hb = heartbeat()
    result = parse_fix(hb[:-4] + b"000\x01\n")
    assert [r.reason_code for r in result.rejects] == ["fix_bad_checksum"] and result.skipped == {}


def test_fixt_other_application_versions_are_not_read_as_50sp2():
    assert [r.reason_code for r in parse_fix(execution_50sp2("6") + b"\n").rejects] == ["fix_bad_enum"]
    assert parse_fix(execution_50sp2(None) + b"\n").rows_landed == 1  # the session's default ApplVerID


def test_byte_order_mark_is_tolerated():
    result = parse_fix(b"\xef\xbb\xbf" + execution_44() + b"\n" + execution_44(t17="EX2") + b"\n")
    assert result.rejects == [] and result.executions["_source_line"].to_list() == [1, 2]


@pytest.mark.parametrize(("code", "direction", "name"), [
    ("1", "BUY", "BUY"), ("2", "SELL", "SELL"), ("5", "SELL", "SELL_SHORT"), ("6", "SELL", "SELL_SHORT_EXEMPT"),
    ("7", "UNDISCLOSED", "UNDISCLOSED"), ("8", "CROSS", "CROSS"), ("B", "AS_DEFINED", "AS_DEFINED"),
    ("D", "BUY", "SUBSCRIBE"), ("E", "SELL", "REDEEM"), ("G", "BORROW", "BORROW"),
])
def test_every_side_code_lands_with_a_readable_name(code, direction, name):
    row = parse_fix(execution_44(t54=code) + b"\n").executions.to_dicts()[0]
    assert (row["side_code"], row["side"], row["side_name"]) == (code, direction, name)


@pytest.mark.parametrize(("override", "detail"), [
    ({"t75": "20260231"}, "trade_date(75)"),
    ({"t75": "20250229"}, "trade_date(75)"),
    ({"t60": "20260431-10:00:00"}, "transact_time(60)"),
    ({"t38": "-100"}, "order_qty(38)"),
    ({"t32": "1e3"}, "last_qty(32)"),
    ({"t31": "187.12345678901"}, "last_px(31)"),
    ({"t31": "+187"}, "last_px(31)"),
])
def test_values_that_would_not_land_exactly_are_quarantined(override, detail):
    result = parse_fix(execution_44(**override) + b"\n")
    assert result.rows_landed == 0 and [r.reason_code for r in result.rejects] == ["fix_garbled"]
    assert result.rejects[0].reason_detail.startswith(detail)


def test_exact_values_at_the_edges_land():
    row = parse_fix(execution_44(t31="0.1234567891", t75="20240229", t6="-0.5") + b"\n").executions.to_dicts()[0]
    assert row["last_px"] == Decimal("0.1234567891") and row["trade_date"] == dt.date(2024, 2, 29)
    assert row["avg_px"] == Decimal("-0.5")
