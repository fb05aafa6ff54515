"""A small, hand-written landing folder with one example of every reconciliation case.

It follows the layout the ingest stage writes (``landing/salesforce/<Object>/extracted_date=...``,
``landing/broker/<source>/business_date=...`` with the lineage columns) so the dbt project can be
built and tested before, and independently of, the synthetic world. ``EXPECTED_BREAKS`` lists what
the reconciliation must find: each break type once, and nothing for the benign cases
(``O01`` split fills, ``O15`` rounding, ``O16`` a fill reported on the next UTC day).

Run ``python tests/dbt/landing_fixtures.py <dir>`` to write one by hand.
"""

from __future__ import annotations

import hashlib
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

TS = pa.timestamp("ms", tz="UTC")
LANDED_AT = datetime(2026, 10, 30, 21, 0, tzinfo=UTC)

# (business_date, break_type, order_id, trade_id): what the recon must report, nothing more.
EXPECTED_BREAKS = {
    ("2026-10-29", "quantity", "O04", None),
    ("2026-10-29", "price", "O05", None),
    ("2026-10-29", "side", "O06", None),
    ("2026-10-29", "missing_broker", "O07", None),
    ("2026-10-29", "missing_internal", "O08", None),
    ("2026-10-29", "missing_confirm", "O09", "T09"),
    ("2026-10-29", "settlement_date", "O10", "T10"),
    ("2026-10-29", "account", "O11", "T11"),
    ("2026-10-29", "commission", "O12", "T12"),
    ("2026-10-29", "currency", "O13", "T13"),
    ("2026-10-29", "duplicate", "O14", "T14"),
}


def _write(table: pa.Table, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)


# --- broker files -------------------------------------------------------------------------------

INTERNAL_COLUMNS = [
    ("trade_id", pa.string()),
    ("order_id", pa.string()),
    ("trade_date", pa.date32()),
    ("trade_time", TS),
    ("account_number", pa.string()),
    ("instrument_id", pa.string()),
    ("asset_class", pa.string()),
    ("side", pa.string()),
    ("quantity", pa.float64()),
    ("price", pa.float64()),
    ("currency", pa.string()),
    ("settle_date", pa.date32()),
    ("executing_broker", pa.string()),
    ("prime_broker", pa.string()),
    ("commission", pa.float64()),
    ("fees", pa.float64()),
]

FIX_COLUMNS = [
    ("begin_string", pa.string()),
    ("sender_comp_id", pa.string()),
    ("msg_seq_num", pa.int64()),
    ("sending_time", TS),
    ("order_id", pa.string()),
    ("cl_ord_id", pa.string()),
    ("exec_id", pa.string()),
    ("exec_trans_type", pa.string()),
    ("exec_type", pa.string()),
    ("ord_status", pa.string()),
    ("account", pa.string()),
    ("symbol", pa.string()),
    ("security_type", pa.string()),
    ("side", pa.string()),
    ("order_qty", pa.float64()),
    ("last_qty", pa.float64()),
    ("last_px", pa.float64()),
    ("leaves_qty", pa.float64()),
    ("cum_qty", pa.float64()),
    ("avg_px", pa.float64()),
    ("currency", pa.string()),
    ("transact_time", TS),
    ("trade_date", pa.date32()),
    ("settl_date", pa.date32()),
    ("commission", pa.float64()),
    ("comm_type", pa.string()),
    ("price_convention", pa.string()),
    ("contract_multiplier", pa.int64()),
]

CONFIRM_COLUMNS = [
    ("prime_broker", pa.string()),
    ("trade_id", pa.string()),
    ("trade_date", pa.date32()),
    ("settle_date", pa.date32()),
    ("account_number", pa.string()),
    ("instrument_id", pa.string()),
    ("asset_class", pa.string()),
    ("side", pa.string()),
    ("quantity", pa.float64()),
    ("price", pa.float64()),
    ("currency", pa.string()),
    ("gross_amount", pa.float64()),
    ("commission", pa.float64()),
    ("fees", pa.float64()),
    ("executing_broker", pa.string()),
    ("price_convention", pa.string()),
    ("contract_multiplier", pa.float64()),
    ("asset_class_code", pa.string()),
    ("side_code", pa.string()),
]

BILLING_COLUMNS = [
    ("account_number", pa.string()),
    ("period_end", pa.date32()),
    ("market_value", pa.float64()),
    ("net_flows", pa.float64()),
    ("fees_billed", pa.float64()),
    ("currency", pa.string()),
    ("account_status", pa.string()),
]


def _lineage_table(columns, rows, source_file: str, version: int, run_id: str) -> pa.Table:
    payload = repr(rows).encode()
    sha = hashlib.sha256(payload + source_file.encode() + str(version).encode()).hexdigest()
    data = {name: [r[i] for r in rows] for i, (name, _) in enumerate(columns)}
    data["_source_file"] = [source_file] * len(rows)
    data["_source_line"] = list(range(2, len(rows) + 2))
    data["_file_sha256"] = [sha] * len(rows)
    data["_file_version"] = [version] * len(rows)
    data["_run_id"] = [run_id] * len(rows)
    data["_landed_at"] = [LANDED_AT + timedelta(minutes=version)] * len(rows)
    schema = pa.schema(
        [pa.field(n, t) for n, t in columns]
        + [
            pa.field("_source_file", pa.string()),
            pa.field("_source_line", pa.int64()),
            pa.field("_file_sha256", pa.string()),
            pa.field("_file_version", pa.int64()),
            pa.field("_run_id", pa.string()),
            pa.field("_landed_at", TS),
        ]
    )
    return pa.Table.from_pydict(data, schema=schema)


def _t(day: date, hh: int, mm: int) -> datetime:
    return datetime(day.year, day.month, day.day, hh, mm, tzinfo=UTC)


# order_id, trade_id, account, instrument, asset_class, side, qty, price, ccy, exec broker, prime broker
D28, D29, D30 = date(2026, 10, 28), date(2026, 10, 29), date(2026, 10, 30)


def _internal_rows(day: date) -> list[tuple]:
    def row(trade_id, order_id, account, instrument, asset_class, side, qty, price, ccy, ebk, pbk, comm, t=(14, 30)):
        return (trade_id, order_id, day, _t(day, *t), account, instrument, asset_class, side, qty, price, ccy,
                day + timedelta(days=1 if asset_class != "BOND" else 2), ebk, pbk, comm, 0.5)

    if day == D28:
        return [row("T00", "O00", "BA00000001", "MSFT", "EQUITY", "BUY", 10, 400.0, "USD", "BRKA", "atlas", 1.0)]
    if day == D30:
        return [row("T20", "O20", "BA00000002", "AMZN", "EQUITY", "SELL", 5, 190.0, "USD", "BRKB", "atlas", 0.05)]
    return [
        row("T01a", "O01", "BA00000001", "AAPL", "EQUITY", "BUY", 100, 150.0, "USD", "BRKA", "atlas", 1.0),
        row("T01b", "O01", "BA00000002", "AAPL", "EQUITY", "BUY", 200, 150.0, "USD", "BRKA", "atlas", 2.0),
        row("T02", "O02", "BA00000003", "US912828XX", "BOND", "SELL", 100000, 98.125, "USD", "BRKB", "meridian", 25.0),
        row("T03", "O03", "BA00000001", "AAPL  261218C00150000", "OPTION", "BUY", 10, 2.5, "USD", "BRKA", "meridian", 6.5),
        row("T04", "O04", "BA00000002", "IBM", "EQUITY", "BUY", 500, 200.0, "USD", "BRKB", "atlas", 5.0),
        row("T05", "O05", "BA00000002", "KO", "EQUITY", "BUY", 300, 50.0, "USD", "BRKA", "atlas", 3.0),
        row("T06", "O06", "BA00000003", "SPY", "ETF", "BUY", 40, 560.0, "USD", "BRKC", "meridian", 0.4),
        row("T07", "O07", "BA00000003", "QQQ", "ETF", "SELL", 25, 480.0, "USD", "BRKC", "atlas", 0.25),
        row("T09", "O09", "BA00000001", "JPM", "EQUITY", "BUY", 60, 210.0, "USD", "BRKA", "atlas", 0.6),
        row("T10", "O10", "BA00000001", "XOM", "EQUITY", "SELL", 70, 110.0, "USD", "BRKA", "atlas", 0.7),
        row("T11", "O11", "BA00000002", "PFE", "EQUITY", "BUY", 80, 30.0, "USD", "BRKB", "meridian", 0.8),
        row("T12", "O12", "BA00000002", "GE", "EQUITY", "BUY", 90, 170.0, "USD", "BRKB", "atlas", 0.9),
        row("T13", "O13", "BA00000003", "EURUSD-20261201", "FX_FWD", "BUY", 1000000, 1.0875, "USD", "BRKA", "meridian", 0.0),
        row("T14", "O14", "BA00000003", "T", "EQUITY", "SELL", 100, 22.0, "USD", "BRKA", "atlas", 1.0),
        row("T15", "O15", "BA00000001", "US037833AX", "BOND", "BUY", 50000, 100.1234, "USD", "BRKB", "meridian", 10.0),
        row("T16", "O16", "BA00000001", "NVDA", "EQUITY", "BUY", 30, 140.0, "USD", "BRKA", "atlas", 0.3, t=(23, 50)),
    ]


def _fix_rows(day: date) -> dict[str, list[tuple]]:
    """FIX execution reports per executing broker for a business date (block accounts): fills (FIX 4.4
    ExecType F for BRKA/BRKB, FIX 4.2 ExecType 1/2 with ExecTransType 0 for BRKC) and, on the 29th, the
    order-state reports brokers send around them (New, Canceled, Rejected, a 4.2 status report), which
    the recon must not count as fills: O07 stays missing_broker, O04 a quantity break, O06 a side break."""
    seq = iter(range(1, 1000))

    def report(order_id, exec_id, broker, pb, instrument, sectype, side, order_qty, last_qty, last_px, cum, ccy,
               comm, when=None, settle=None, trade_day=None, exec_type=None, ord_status=None, trans_type=None,
               leaves=None):
        when = when or _t(day, 14, 31)
        v42 = broker == "BRKC"
        if exec_type is None:  # a fill
            exec_type = ("2" if cum == order_qty else "1") if v42 else "F"
        return ("FIX.4.2" if v42 else "FIX.4.4", broker, next(seq), when, "B" + order_id, order_id, exec_id,
                trans_type or ("0" if v42 else None), exec_type, ord_status or ("2" if cum == order_qty else "1"),
                f"BLOCK-{pb.upper()}", instrument, sectype, side, order_qty, last_qty, last_px,
                order_qty - cum if leaves is None else leaves, cum,
                last_px, ccy, when, trade_day or day, settle or day + timedelta(days=1), comm, "3",
                "pct_of_par" if sectype == "CORP" else "per_unit", 100 if sectype == "OPT" else 1)

    fill = report

    if day == D28:
        return {"BRKA": [fill("O00", "E00", "BRKA", "atlas", "MSFT", "CS", "BUY", 10, 10, 400.0, 10, "USD", 1.0)]}
    if day == D30:
        # O16 was booked at 23:50 UTC on the 29th; the broker's file carries it under the 30th
        return {"BRKA": [fill("O16", "E16", "BRKA", "atlas", "NVDA", "CS", "BUY", 30, 30, 140.0, 30, "USD", 0.3,
                              when=_t(D29, 23, 50), settle=D30, trade_day=D29)],
                "BRKB": [fill("O20", "E20", "BRKB", "atlas", "AMZN", "CS", "SELL", 5, 5, 190.0, 5, "USD", 0.05)]}
    brka = [
        # order-state report: the order is accepted (LastQty 0, LastPx 0)
        report("O01", "E01n", "BRKA", "atlas", "AAPL", "CS", "BUY", 300, 0, 0.0, 0, "USD", 0.0, exec_type="0",
               ord_status="0", when=_t(day, 14, 29)),
        fill("O01", "E01a", "BRKA", "atlas", "AAPL", "CS", "BUY", 300, 120, 149.99, 120, "USD", 1.2),
        fill("O01", "E01b", "BRKA", "atlas", "AAPL", "CS", "BUY", 300, 180, 150.0067, 300, "USD", 1.8),
        fill("O03", "E03", "BRKA", "meridian", "AAPL  261218C00150000", "OPT", "BUY", 10, 10, 2.5, 10, "USD", 6.5),
        fill("O05", "E05", "BRKA", "atlas", "KO", "CS", "BUY", 300, 300, 50.5, 300, "USD", 3.0),
        fill("O08", "E08", "BRKA", "atlas", "WMT", "CS", "BUY", 15, 15, 90.0, 15, "USD", 0.15),
        fill("O09", "E09", "BRKA", "atlas", "JPM", "CS", "BUY", 60, 60, 210.0, 60, "USD", 0.6),
        fill("O10", "E10", "BRKA", "atlas", "XOM", "CS", "SELL", 70, 70, 110.0, 70, "USD", 0.7),
        fill("O13", "E13", "BRKA", "meridian", "EURUSD-20261201", "FXFWD", "BUY", 1000000, 1000000, 1.0875, 1000000,
             "USD", 0.0),
        fill("O14", "E14", "BRKA", "atlas", "T", "CS", "SELL", 100, 100, 22.0, 100, "USD", 1.0),
    ]
    brkb = [
        fill("O02", "E02", "BRKB", "meridian", "US912828XX", "CORP", "SELL", 100000, 100000, 98.125, 100000, "USD",
             25.0, settle=D29 + timedelta(days=2)),
        fill("O04", "E04", "BRKB", "atlas", "IBM", "CS", "BUY", 500, 450, 200.0, 450, "USD", 4.5),
        # the unfilled 50 are canceled: an order-state report with LastQty 0 (CumQty stays 450)
        report("O04", "E04c", "BRKB", "atlas", "IBM", "CS", "BUY", 500, 0, 0.0, 450, "USD", 0.0, exec_type="4",
               ord_status="4", leaves=0, when=_t(day, 15, 0)),
        fill("O11", "E11", "BRKB", "meridian", "PFE", "CS", "BUY", 80, 80, 30.0, 80, "USD", 0.8),
        fill("O12", "E12", "BRKB", "atlas", "GE", "CS", "BUY", 90, 90, 170.0, 90, "USD", 0.9),
        fill("O15", "E15", "BRKB", "meridian", "US037833AX", "CORP", "BUY", 50000, 50000, 100.1234, 50000, "USD",
             10.0, settle=D29 + timedelta(days=2)),
    ]
    brkc = [
        report("O06", "E06n", "BRKC", "meridian", "SPY", "CS", "SELL", 40, 0, 0.0, 0, "USD", 0.0, exec_type="0",
               ord_status="0", when=_t(day, 14, 30)),
        fill("O06", "E06", "BRKC", "meridian", "SPY", "CS", "SELL", 40, 40, 560.0, 40, "USD", 0.4),
        # a FIX 4.2 status report (ExecTransType 3, ExecID 0) restating the fill: counted, it would double O06
        report("O06", "0", "BRKC", "meridian", "SPY", "CS", "SELL", 40, 40, 560.0, 40, "USD", 0.0, exec_type="2",
               trans_type="3", when=_t(day, 16, 0)),
        # O07's order is rejected (no fill at all): counted, it would turn missing_broker into a quantity break
        report("O07", "E07r", "BRKC", "atlas", "QQQ", "CS", "SELL", 25, 0, 0.0, 0, "USD", 0.0, exec_type="8",
               ord_status="8", leaves=0, when=_t(day, 14, 32)),
    ]
    return {"BRKA": brka, "BRKB": brkb, "BRKC": brkc}


def _landed_codes(broker: str, asset_class_code: str, side_code: str) -> tuple[str, str, str, str]:
    """What ingest lands for a broker's codes: the canonical asset class and side, mapped by the broker's dialect
    (``ingest/dialects/<broker>.yaml``, the codes' one owner), and the codes as delivered."""
    from ingest.broker_files.dialects import load_dialects

    enums = {d.source: d.enums for d in load_dialects()}[broker]
    return enums["asset_class"][asset_class_code], enums["side"][side_code], asset_class_code, side_code


def _confirm_rows(day: date) -> dict[str, list[tuple]]:
    """Prime-broker confirms, values as each broker delivers them, codes mapped as ingest lands them
    (canonical column names and codes; the delivered codes in ``asset_class_code`` / ``side_code``)."""
    s1 = day + timedelta(days=1)

    def atlas(trade_id, account, instrument, sec, bs, qty, px, ccy, comm, ebk, settle=None, mult=1.0, conv="per_unit"):
        gross = qty * px * (mult if sec == "OP" else 1) / (100 if sec == "BD" else 1)
        asset_class, side, *codes = _landed_codes("atlas", sec, bs)
        return ("atlas", trade_id, day, settle or s1, account, instrument, asset_class, side, qty, px, ccy, gross, comm,
                0.5, ebk, "pct_of_par" if sec == "BD" else conv, mult, *codes)

    def meridian(trade_id, account, instrument, product, direction, qty, px, ccy, comm, ebk, settle=None, mult=1.0):
        conv = {"Bond": "fraction_of_par", "Option": "per_contract"}.get(product, "per_unit")
        gross = qty * px * (1 if product != "Option" else 1)
        asset_class, side, *codes = _landed_codes("meridian", product, direction)
        return ("meridian", trade_id, day, settle or s1, account, instrument, asset_class, side, qty, px, ccy, gross,
                comm, 0.5, ebk, conv, mult, *codes)

    if day == D28:
        return {"atlas": [atlas("T00", "BA00000001", "MSFT", "EQ", "B", 10, 400.0, "USD", 1.0, "BRKA")]}
    if day == D30:
        return {"atlas": [atlas("T20", "BA00000002", "AMZN", "EQ", "S", 5, 190.0, "USD", 0.05, "BRKB")]}
    a = [
        atlas("T01a", "BA00000001", "AAPL", "EQ", "B", 100, 150.0, "USD", 1.0, "BRKA"),
        atlas("T01b", "BA00000002", "AAPL", "EQ", "B", 200, 150.0, "USD", 2.0, "BRKA"),
        atlas("T04", "BA00000002", "IBM", "EQ", "B", 500, 200.0, "USD", 5.0, "BRKB"),
        atlas("T05", "BA00000002", "KO", "EQ", "B", 300, 50.0, "USD", 3.0, "BRKA"),
        atlas("T07", "BA00000003", "QQQ", "ETF", "S", 25, 480.0, "USD", 0.25, "BRKC"),
        atlas("T10", "BA00000001", "XOM", "EQ", "S", 70, 110.0, "USD", 0.7, "BRKA", settle=day + timedelta(days=3)),
        atlas("T12", "BA00000002", "GE", "EQ", "B", 90, 170.0, "USD", 5.9, "BRKB"),
        atlas("T14", "BA00000003", "T", "EQ", "S", 100, 22.0, "USD", 1.0, "BRKA"),
        atlas("T14", "BA00000003", "T", "EQ", "S", 100, 22.0, "USD", 1.0, "BRKA"),
        atlas("T16", "BA00000001", "NVDA", "EQ", "B", 30, 140.0, "USD", 0.3, "BRKA"),
    ]
    m = [
        meridian("T02", "BA00000003", "US912828XX", "Bond", "SELL", 100000, 0.98125, "USD", 25.0, "BRKB",
                 settle=day + timedelta(days=2)),
        meridian("T03", "BA00000001", "AAPL  261218C00150000", "Option", "BUY", 10, 250.0, "USD", 6.5, "BRKA",
                 mult=100.0),
        meridian("T06", "BA00000003", "SPY", "ETF", "BUY", 40, 560.0, "USD", 0.4, "BRKC"),
        meridian("T11", "BA00000009", "PFE", "Equity", "BUY", 80, 30.0, "USD", 0.8, "BRKB"),
        meridian("T13", "BA00000003", "EURUSD-20261201", "FX Forward", "BUY", 1000000, 1.0875, "EUR", 0.0, "BRKA"),
        meridian("T15", "BA00000001", "US037833AX", "Bond", "BUY", 50000, 1.00123, "USD", 10.0, "BRKB",
                 settle=day + timedelta(days=2)),
    ]
    return {"atlas": a, "meridian": m}


def write_broker(landing: Path) -> None:
    broker = landing / "broker"
    for day in (D28, D29, D30):
        ymd, iso = day.strftime("%Y%m%d"), day.isoformat()
        rows = _internal_rows(day)
        if day == D29:
            # a corrected redelivery: version 1 carried a wrong quantity for T01a, version 2 fixes it
            wrong = list(rows)
            wrong[0] = wrong[0][:8] + (999.0,) + wrong[0][9:]
            _write(_lineage_table(INTERNAL_COLUMNS, wrong, f"oms/trade_book_{ymd}.csv", 1, "run1"),
                   broker / "internal_trades" / f"business_date={iso}" / "v1.parquet")
            t = _lineage_table(INTERNAL_COLUMNS, rows, f"oms/trade_book_{ymd}.csv", 2, "run2")
            _write(t, broker / "internal_trades" / f"business_date={iso}" / "v2.parquet")
        else:
            _write(_lineage_table(INTERNAL_COLUMNS, rows, f"oms/trade_book_{ymd}.csv", 1, "run1"),
                   broker / "internal_trades" / f"business_date={iso}" / "v1.parquet")
        for bkr, fills in _fix_rows(day).items():
            table = _lineage_table(FIX_COLUMNS, fills, f"fix/{bkr}_{ymd}.fix", 1, "run1")
            # one message per line, as ingest records it (several can share a line of a broker's log)
            table = table.append_column("_message_in_line", pa.array([1] * table.num_rows, pa.int64()))
            _write(table, broker / "fix_executions" / f"business_date={iso}" / f"{bkr}.parquet")
        for pbk, confirms in _confirm_rows(day).items():
            name = f"prime/atlas/ATLAS_CONF_{ymd}.csv" if pbk == "atlas" else f"prime/meridian/meridian_confirms_{iso}.csv"
            _write(_lineage_table(CONFIRM_COLUMNS, confirms, name, 1, "run1"),
                   broker / "pb_confirms" / f"business_date={iso}" / f"{pbk}.parquet")
    write_billing(broker)


def _month_ends(last: date, n: int) -> list[date]:
    out, y, m = [], last.year, last.month
    for _ in range(n):
        nxt = date(y + (m == 12), m % 12 + 1, 1)
        out.append(nxt - timedelta(days=1))
        y, m = (y - 1, 12) if m == 1 else (y, m - 1)
    return sorted(out)


def write_billing(broker: Path) -> None:
    # BA00000001/2 belong to HH0000001/2 (open throughout); BA00000003 to HH0000003 closes in 2026-03
    months = _month_ends(date(2026, 10, 31), 40)
    by_period: dict[str, list[tuple]] = {}
    for i, pe in enumerate(months):
        rows = []
        for acct, base in (("BA00000001", 1_000_000.0), ("BA00000002", 2_500_000.0), ("BA00000004", 400_000.0)):
            mv = base * (1 + 0.005 * i)
            rows.append((acct, pe, mv, 1000.0 * (i % 3 - 1), round(mv * 0.0075 / 12, 2), "USD", "OPEN"))
        if pe < date(2026, 3, 31):
            rows.append(("BA00000003", pe, 800_000.0, 0.0, 500.0, "USD", "OPEN"))
        elif pe == date(2026, 3, 31):
            rows.append(("BA00000003", pe, 0.0, -800_000.0, 250.0, "USD", "CLOSED"))
        else:
            rows.append(("BA00000003", pe, 0.0, 0.0, 0.0, "USD", "CLOSED"))
        by_period[pe.strftime("%Y-%m")] = rows
    for period, rows in by_period.items():
        _write(_lineage_table(BILLING_COLUMNS, rows, f"billing/billing_{period.replace('-', '')}.csv", 1, "run1"),
               broker / "billing" / f"period={period}" / "billing.parquet")


# --- Salesforce ---------------------------------------------------------------------------------

def _sf_table(fields: list[tuple[str, pa.DataType]], rows: list[dict], run_id: str, extracted: datetime) -> pa.Table:
    std = [("Id", pa.string()), ("CreatedDate", TS), ("LastModifiedDate", TS), ("SystemModstamp", TS),
           ("IsDeleted", pa.bool_())]
    cols = std + fields
    data = {n: [r.get(n) for r in rows] for n, _ in cols}
    data["_run_id"] = [run_id] * len(rows)
    data["_extracted_at"] = [extracted] * len(rows)
    data["_is_deleted"] = [bool(r.get("IsDeleted")) for r in rows]
    schema = pa.schema([pa.field(n, t) for n, t in cols]
                       + [pa.field("_run_id", pa.string()), pa.field("_extracted_at", TS),
                          pa.field("_is_deleted", pa.bool_())])
    return pa.Table.from_pydict(data, schema=schema)


S, B, D, F, DT = pa.string(), pa.bool_(), pa.date32(), pa.float64(), TS
SF_FIELDS = {
    "User": [("Username", S), ("FirstName", S), ("LastName", S), ("Email", S), ("Title", S), ("IsActive", B),
             ("Region__c", S)],
    "Account": [("Name", S), ("Type", S), ("OwnerId", S), ("Household_Id__c", S), ("AUM_Band__c", S),
                ("Fee_Schedule_Bps__c", F), ("Client_Since__c", D), ("Risk_Profile__c", S),
                ("Marketing_Consent__c", B), ("Analytics_Consent__c", B), ("BillingState", S)],
    "Contact": [("AccountId", S), ("FirstName", S), ("LastName", S), ("Email", S), ("Phone", S), ("Birthdate", D),
                ("MailingState", S), ("Is_Primary__c", B), ("MailingStreet", S), ("MailingCity", S),
                ("MailingPostalCode", S), ("Tax_Id__c", S), ("HasOptedOutOfEmail", B)],
    "Case": [("AccountId", S), ("ContactId", S), ("Subject", S), ("Type", S), ("Priority", S), ("Status", S),
             ("Origin", S), ("IsClosed", B), ("ClosedDate", DT)],
    "Task": [("WhatId", S), ("WhoId", S), ("OwnerId", S), ("Subject", S), ("Type", S), ("TaskSubtype", S),
             ("ActivityDate", D), ("Status", S), ("CallDurationInSeconds", pa.int64()), ("Northstar_Key__c", S)],
    "Event": [("WhatId", S), ("WhoId", S), ("OwnerId", S), ("Subject", S), ("Type", S), ("StartDateTime", DT),
              ("EndDateTime", DT), ("DurationInMinutes", pa.int64())],
    "Opportunity": [("AccountId", S), ("OwnerId", S), ("Name", S), ("Type", S), ("Amount", F), ("StageName", S),
                    ("CloseDate", D), ("IsClosed", B), ("IsWon", B)],
    "Brokerage_Account__c": [("Name", S), ("Account_Number__c", S), ("Household__c", S), ("Custodian__c", S),
                             ("Account_Type__c", S), ("Status__c", S), ("Opened_Date__c", D),
                             ("Closed_Date__c", D), ("Owner_Name__c", S), ("Owner_Birthdate__c", S),
                             ("Owner_Street__c", S), ("Owner_Postal_Code__c", S), ("Owner_Tax_Id__c", S)],
}


def _std(sf_id: str, created: datetime, modified: datetime | None = None, deleted: bool = False) -> dict:
    modified = modified or created
    return {"Id": sf_id, "CreatedDate": created, "LastModifiedDate": modified, "SystemModstamp": modified,
            "IsDeleted": deleted}


def _salesforce_runs() -> list[tuple[str, datetime, dict[str, list[dict]]]]:
    t0 = datetime(2020, 1, 1, tzinfo=UTC)
    users = [
        {**_std(f"005U{i}", t0), "Username": f"adv{i}@northstar.example", "FirstName": f"Ada{i}",
         "LastName": f"Visor{i}", "Email": f"adv{i}@northstar.example", "Title": "Advisor", "IsActive": True,
         "Region__c": "East" if i == 1 else "West"}
        for i in (1, 2)
    ]
    accounts = []
    for i, (since, risk, band) in enumerate(
        [(date(2012, 5, 1), "Moderate", "1M-5M"), (date(2018, 3, 15), "Growth", "1M-5M"),
         (date(2015, 7, 1), "Conservative", "250K-1M"), (date(2021, 1, 10), "Balanced", "250K-1M")], start=1):
        accounts.append({**_std(f"001A{i}", t0), "Name": f"Family{i} Household", "Type": "Household",
                         "OwnerId": "005U1" if i % 2 else "005U2", "Household_Id__c": f"HH000000{i}",
                         "AUM_Band__c": band, "Fee_Schedule_Bps__c": 75.0, "Client_Since__c": since,
                         "Risk_Profile__c": risk, "Marketing_Consent__c": True, "Analytics_Consent__c": i != 4,
                         "BillingState": "NY"})
    contacts = [
        {**_std(f"003C{i}", t0), "AccountId": f"001A{i}", "FirstName": f"Pat{i}", "LastName": f"Family{i}",
         "Email": f"pat{i}@mail.example", "Phone": f"+1 212 555 010{i}", "Birthdate": date(1950 + 8 * i, 6, 1),
         "MailingState": "NY", "Is_Primary__c": True}
        for i in (1, 2, 3, 4)
    ]
    contacts.append({**_std("003C9", t0), "AccountId": "001A1", "FirstName": "Sam", "LastName": "Family1",
                     "Email": "sam@mail.example", "Phone": None, "Birthdate": None, "MailingState": "NY",
                     "Is_Primary__c": False})
    cases, tasks, events, opps = [], [], [], []
    for i in (1, 2, 3):
        opened = datetime(2026, 4 + i, 3, 15, tzinfo=UTC)
        cases.append({**_std(f"500K{i}", opened), "AccountId": f"001A{i}", "ContactId": f"003C{i}",
                      "Subject": "Fee question", "Type": "Complaint" if i == 3 else "Service Request",
                      "Priority": "High" if i == 3 else "Low", "Status": "Closed" if i == 1 else "Working",
                      "Origin": "Phone", "IsClosed": i == 1,
                      "ClosedDate": opened + timedelta(days=5) if i == 1 else None})
        for k in range(4):
            day = date(2026, 1 + 2 * k, 10 + i)
            tasks.append({**_std(f"00TT{i}{k}", datetime(day.year, day.month, day.day, 16, tzinfo=UTC)),
                          "WhatId": f"001A{i}", "WhoId": f"003C{i}", "OwnerId": "005U1",
                          "Subject": "Check-in", "Type": "Call" if k % 2 else "Email", "TaskSubtype":
                          "Call" if k % 2 else "Email", "ActivityDate": day, "Status": "Completed",
                          "CallDurationInSeconds": 600 if k % 2 else None})
        if i == 1:  # a retention Task Northstar itself created (activate/salesforce.py): not an advisor call
            created = datetime(2026, 9, 30, 22, tzinfo=UTC)
            tasks.append({**_std("00TNS1", created), "WhatId": "001A1", "OwnerId": "005U1",
                          "Subject": "Retention review: attrition risk 41.0%", "Status": "Not Started",
                          "ActivityDate": created.date(), "Northstar_Key__c": "NS-RETENTION-HH0000001-20260930"})
        start = datetime(2026, 6, 1 + i, 14, tzinfo=UTC)
        events.append({**_std(f"00UE{i}", start), "WhatId": f"001A{i}", "WhoId": f"003C{i}", "OwnerId": "005U2",
                       "Subject": "Annual review", "Type": "Meeting", "StartDateTime": start,
                       "EndDateTime": start + timedelta(hours=1), "DurationInMinutes": 60})
        opps.append({**_std(f"006O{i}", datetime(2025, 9, i, tzinfo=UTC)), "AccountId": f"001A{i}",
                     "OwnerId": "005U1", "Name": "Rollover", "Type": "New Money", "Amount": 250000.0 * i,
                     "StageName": "Closed Won" if i == 1 else "Prospecting", "CloseDate": date(2026, 2, i),
                     "IsClosed": i == 1, "IsWon": i == 1})
    brokerage = [
        {**_std(f"a01B{i}", t0), "Name": f"BA0000000{i}", "Account_Number__c": f"BA0000000{i}",
         "Household__c": f"001A{i}", "Custodian__c": "Schwab", "Account_Type__c": "IRA" if i == 2 else "Individual",
         "Status__c": "Closed" if i == 3 else "Open", "Opened_Date__c": date(2015, 1, i),
         "Closed_Date__c": date(2026, 3, 31) if i == 3 else None}
        for i in (1, 2, 3, 4)
    ]
    run1 = ("sfrun1", datetime(2026, 10, 29, 2, tzinfo=UTC),
            {"User": users, "Account": accounts, "Contact": contacts, "Case": cases, "Task": tasks,
             "Event": events, "Opportunity": opps, "Brokerage_Account__c": brokerage})
    # the incremental run: household 1 changes risk profile; contact 003C9 is deleted
    t1 = datetime(2026, 10, 29, 18, tzinfo=UTC)
    acct1 = {**accounts[0], "Risk_Profile__c": "Growth", "LastModifiedDate": t1, "SystemModstamp": t1}
    gone = {**contacts[-1], "IsDeleted": True, "LastModifiedDate": t1, "SystemModstamp": t1}
    run2 = ("sfrun2", datetime(2026, 10, 30, 2, tzinfo=UTC), {"Account": [acct1], "Contact": [gone]})
    return [run1, run2]


def write_salesforce(landing: Path) -> None:
    for run_id, extracted, objects in _salesforce_runs():
        write_salesforce_run(landing, run_id, extracted, objects)


def write_salesforce_run(landing: Path, run_id: str, extracted: datetime, objects: dict[str, list[dict]]) -> None:
    """One extraction run's files (every object, empty where the run saw no change)."""
    for obj, fields in SF_FIELDS.items():
        rows = objects.get(obj, [])
        table = _sf_table(fields, rows, run_id, extracted)
        _write(table, landing / "salesforce" / obj / f"extracted_date={extracted.date().isoformat()}"
               / f"{run_id}.parquet")


def account_version(number: int, modified: datetime, **changes) -> dict:
    """Household ``number``'s Account as the fixture's last run has it, modified at ``modified``."""
    latest = {}
    for _run_id, _extracted, objects in _salesforce_runs():
        latest.update({row["Id"]: row for row in objects.get("Account", [])})
    return {**latest[f"001A{number}"], "LastModifiedDate": modified, "SystemModstamp": modified, **changes}


BROKER_TABLE_SOURCES = {"internal_trades": "oms", "fix_executions": "fix", "pb_confirms": "prime", "billing": "billing"}


def write_manifests(landing: Path) -> None:
    """The manifests ingest would have written for the files under ``landing`` (rewritten from scratch:
    call it again after adding a file), so the sources' row-count tests have something to check."""
    broker_rows = []
    for table, source in BROKER_TABLE_SOURCES.items():
        for path in sorted((landing / "broker" / table).glob("*/*.parquet")):
            data = pq.read_table(path, columns=["_source_file", "_file_sha256", "_file_version", "_run_id"])
            broker_rows.append({
                "run_id": data["_run_id"][0].as_py(), "source": source, "table_name": table,
                "file_name": Path(data["_source_file"][0].as_py()).name, "sha256": data["_file_sha256"][0].as_py(),
                "version": data["_file_version"][0].as_py(), "status": "landed", "rows_in": data.num_rows,
                "rows_landed": data.num_rows, "rows_quarantined": 0,
                "data_path": str(path.relative_to(landing)),
            })
    salesforce_rows = []
    for path in sorted((landing / "salesforce").glob("*/*/*.parquet")):
        data = pq.read_table(path, columns=["_run_id"])
        salesforce_rows.append({
            "run_id": path.stem, "object": path.parent.parent.name, "mode": "full", "status": "ok",
            "rows": data.num_rows, "path": str(path.relative_to(landing)),
        })
    _write(pa.Table.from_pylist(broker_rows), landing / "_manifest" / "broker_files" / "fixture.parquet")
    _write(pa.Table.from_pylist(salesforce_rows), landing / "_manifest" / "salesforce" / "fixture.parquet")


def build_landing(landing: Path) -> Path:
    """Write the fixture landing folder under ``landing`` (data and manifests) and return it."""
    write_broker(landing)
    write_salesforce(landing)
    write_manifests(landing)
    return landing


if __name__ == "__main__":
    print(build_landing(Path(sys.argv[1])))
