"""Adding a prime broker is a YAML dialect plus one seed row, and nothing else.

A new broker, Orion, with a dialect of its own (pipe-separated, yyyy/mm/dd dates, its own product codes,
bonds as a fraction of par, options per contract) in a firm dialect folder (``NORTHSTAR_DIALECTS``), and its
row in ``seeds/prime_brokers.csv`` of a private copy of the dbt project. Its confirms, the firm's trade book
for the same allocations, their FIX drop copy and a billing file go through the real landing code
(``ingest.broker_files``), and the real dbt build helper (``northstar.dbt.run_dbt``, selector
``intraday_trading``, every model and test of the trade side) reconciles them: the confirms reach
``fct_prime_broker_confirms`` with canonical asset classes and prices on the book's convention, and every
Orion allocation matches.
"""

from __future__ import annotations

import pytest

import northstar.warehouse

pytestmark = pytest.mark.integration

ORION_DIALECT = """\
# Orion prime brokerage confirms: pipe separated, yyyy/mm/dd dates, its own product codes.
source: orion
table: pb_confirms
format: csv
folder: prime/orion
file_pattern: 'orion_(?P<date>\\d{8}).*\\.txt'
business_date: {group: date, format: '%Y%m%d'}
constants: {prime_broker: orion}
csv: {delimiter: '|', decimal: '.', encoding: utf-8, quote: '"'}
date_format: '%Y/%m/%d'
columns:
  CLIENT_REF: trade_id
  TRD_DATE: trade_date
  SETL_DATE: settle_date
  ACCOUNT: account_number
  SECURITY: instrument_id
  PRODUCT: asset_class
  DIR: side
  AMOUNT: quantity
  PRICE: price
  CCY: currency
  COMMISSION: commission
  EXEC_BROKER: executing_broker
enums:
  side: {P: BUY, V: SELL}
  asset_class: {STK: EQUITY, FUND: ETF, GOVT: BOND, FWD: FX_FWD, OPTN: OPTION}
price_convention: {EQUITY: per_unit, ETF: per_unit, BOND: fraction_of_par, FX_FWD: per_unit, OPTION: per_contract}
contract_multiplier: {EQUITY: 1, ETF: 1, BOND: 1, FX_FWD: 1, OPTION: 100}
"""
ORION_CONFIRMS = (
    "CLIENT_REF|TRD_DATE|SETL_DATE|ACCOUNT|SECURITY|PRODUCT|DIR|AMOUNT|PRICE|CCY|COMMISSION|EXEC_BROKER\n"
    "T90|2026/10/30|2026/11/02|BA00000001|MSFT|STK|P|10|400.00|USD|1.00|BRKA\n"
    "T91|2026/10/30|2026/11/02|BA00000002|US912828ZZ|GOVT|V|100000|0.98125|USD|25.00|BRKB\n"
    "T92|2026/10/30|2026/11/02|BA00000003|AAPL  261218C00150000|OPTN|P|10|250.00|USD|6.50|BRKA\n"
)
TRADE_BOOK = (
    "trade_id,order_id,trade_date,trade_time,account_number,instrument_id,asset_class,side,quantity,price,"
    "currency,settle_date,executing_broker,prime_broker,commission,fees\n"
    "T90,O90,2026-10-30,2026-10-30T14:00:00.000Z,BA00000001,MSFT,EQUITY,BUY,10,400.00,USD,2026-11-02,BRKA,orion,1.00,0\n"
    "T91,O91,2026-10-30,2026-10-30T14:05:00.000Z,BA00000002,US912828ZZ,BOND,SELL,100000,98.125,USD,2026-11-02,BRKB,"
    "orion,25.00,0\n"
    "T92,O92,2026-10-30,2026-10-30T14:10:00.000Z,BA00000003,AAPL  261218C00150000,OPTION,BUY,10,2.50,USD,2026-11-02,"
    "BRKA,orion,6.50,0\n"
)

BILLING = (
    "account_number,period_end,market_value,net_flows,fees_billed,currency,account_status\n"
    "BA00000001,2026-10-31,1250000.00,-5000.00,1041.67,USD,OPEN\n"
)
# (order, broker, symbol, SecurityType, side, quantity, price): one fill per order, as the book has it
FILLS = [
    ("O90", "BRKA", "MSFT", "CS", "1", "10", "400.00"),
    ("O91", "BRKB", "US912828ZZ", "CORP", "2", "100000", "98.125"),
    ("O92", "BRKA", "AAPL  261218C00150000", "OPT", "1", "10", "2.50"),
]


def drop_copy(broker: str) -> bytes:
    from ingest.fix.message import encode

    lines = []
    for i, (order, exec_broker, symbol, security_type, side, qty, px) in enumerate(FILLS, start=1):
        if exec_broker != broker:
            continue
        stamp = f"20261030-14:0{i}:00.000"
        fields = [(35, "8"), (49, broker), (56, "NORTHSTAR"), (34, str(i)), (52, stamp), (37, f"B{i}"),
                  (11, order), (17, f"E{order}"), (150, "F"), (39, "2"), (1, "BLOCK-ORION"), (55, symbol),
                  (167, security_type), (54, side), (38, qty), (32, qty), (31, px), (151, "0"), (14, qty),
                  (6, px), (15, "USD"), (60, stamp), (75, "20261030"), (64, "20261102")]
        lines.append(encode("FIX.4.4", fields) + b"\n")
    return b"".join(lines)


def test_a_new_prime_broker_is_a_dialect_and_a_seed_row(tmp_path, monkeypatch, northstar_home,
                                                          dbt_project_with_prime_broker):
    from ingest.broker_files import land_broker_files
    from northstar import settings as settings_module
    from northstar.dbt import run_dbt

    firm = tmp_path / "firm_dialects"
    firm.mkdir()
    (firm / "orion.yaml").write_text(ORION_DIALECT)
    monkeypatch.setenv("NORTHSTAR_DIALECTS", str(firm))
    drop, landing = tmp_path / "drop", tmp_path / "landing"
    for folder in ("prime/orion", "oms", "fix", "billing"):
        (drop / folder).mkdir(parents=True)
    (drop / "prime" / "orion" / "orion_20261030.txt").write_text(ORION_CONFIRMS)
    (drop / "oms" / "trade_book_20261030.csv").write_text(TRADE_BOOK)
    for broker in ("BRKA", "BRKB"):
        (drop / "fix" / f"{broker}_20261030.fix").write_bytes(drop_copy(broker))
    (drop / "billing" / "billing_202610.csv").write_text(BILLING)

    # the shipped reference data does not know Orion: its dialect is refused, its file not landed
    refused = land_broker_files(drop, tmp_path / "refused_landing", run_id="no_seed_row")
    assert any("orion.yaml: constants.prime_broker:" in e for e in refused.dialect_errors), refused.dialect_errors
    assert "orion" not in {f.source for f in refused.files}

    # the one seed row (in a private copy of the project; the settings point dbt and Python at it)
    dbt_project_with_prime_broker("orion", "Orion")
    monkeypatch.setenv("NORTHSTAR_LANDING", str(landing))
    monkeypatch.setenv("NORTHSTAR_PII_SALT", "test-salt-add-broker")
    settings_module.reset_cache()
    report = land_broker_files(drop, landing, run_id="orion_first_day")
    assert report.dialect_errors == []
    assert sorted((f.source, f.status, f.rows_landed) for f in report.files) == [
        ("billing", "landed", 1), ("fix", "landed", 1), ("fix", "landed", 2), ("oms", "landed", 3),
        ("orion", "landed", 3)]

    cfg = settings_module.settings()
    result = run_dbt("build", ["--selector", "intraday_trading"],
                     {"recon_observed_at": "2026-10-30 21:30:00"}, cfg=cfg)
    assert result.failures == [] and result.warnings == []

    with northstar.warehouse.connect(path=cfg.paths.warehouse, read_only=True) as con:
        confirms = con.execute(
            "select trade_id, asset_class, side, price, price_as_delivered, contract_multiplier "
            "from main.fct_prime_broker_confirms where prime_broker = 'orion' order by trade_id").fetchall()
        matches = con.execute(
            "select trade_id, match_status from main.fct_trade_matches "
            "where match_level = 'allocation' and trade_id in ('T90', 'T91', 'T92') order by trade_id").fetchall()
        breaks = con.execute("select break_type, trade_id, order_id from main.fct_trade_breaks").fetchall()
    assert confirms == [
        ("T90", "EQUITY", "BUY", 400.0, 400.0, 1.0),
        ("T91", "BOND", "SELL", pytest.approx(98.125), 0.98125, 1.0),  # fraction of par -> % of par
        ("T92", "OPTION", "BUY", 2.5, 250.0, 100.0),  # per contract -> premium per share
    ]
    assert matches == [("T90", "matched"), ("T91", "matched"), ("T92", "matched")]
    assert breaks == []
