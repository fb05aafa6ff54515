"""The landing gate checks FIX drop copies against the standard, per version, not against the demo world.

Each batch is a broker file written as brokers send them (tag=value, correct BodyLength and CheckSum),
dropped and landed by the real ingest under its own run id, then gated alone (as in the DAGs). Brokers
BRKX (FIX 4.4), BRKY (FIX 4.2) and BRKZ (FIXT.1.1 / FIX 5.0 SP2) have no rules of engagement in
``ingest/dialects/fix.yaml``, so what lands is exactly what the standard allows.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from gate_helpers import failed_names, make_cfg

import northstar.warehouse
from expectations import GateFailed, run_gate
from ingest.fix.message import encode

pytestmark = pytest.mark.integration

DAY = "20261030"


def _report(version: str, seq: int, exec_id: str, exec_type: str, ord_status: str, *, side: str = "1",
            last_qty: str | None = "0", last_px: str | None = "0", cum_qty: str = "0", leaves_qty: str = "100",
            order_qty: str | None = "100", cl_ord_id: str | None = "ORD1", symbol: str = "AAPL",
            security_type: str | None = "CS", exec_trans_type: str = "0") -> bytes:
    sender = {"FIX.4.4": "BRKX", "FIX.4.2": "BRKY", "FIXT.1.1": "BRKZ"}[version]
    fields = [(35, "8")] + ([(1128, "9")] if version == "FIXT.1.1" else []) + [
        (49, sender), (56, "NORTHSTAR"), (34, str(seq)), (52, f"{DAY}-14:31:05.123"), (37, "B" + exec_id[:3])]
    fields += [(11, cl_ord_id)] if cl_ord_id else []
    fields += [(17, exec_id)] + ([(20, exec_trans_type)] if version == "FIX.4.2" else [])
    fields += [(150, exec_type), (39, ord_status), (55, symbol)]
    fields += [(167, security_type)] if security_type else []
    fields += [(54, side)]
    fields += [(38, order_qty)] if order_qty is not None else []
    fields += [(32, last_qty)] if last_qty is not None else []
    fields += [(31, last_px)] if last_px is not None else []
    fields += [(151, leaves_qty), (14, cum_qty)]
    fields += [(6, "0" if cum_qty == "0" else last_px or "0")] if version != "FIXT.1.1" else []
    fields += [(15, "USD"), (60, f"{DAY}-14:31:05")]
    return encode(version, fields)


def _heartbeat(sender: str, seq: int) -> bytes:
    return encode("FIX.4.4", [(35, "0"), (49, sender), (56, "NORTHSTAR"), (34, str(seq)), (52, f"{DAY}-14:30:00")])


def standard_batch() -> dict[str, list[bytes]]:
    """Standard-valid reports that Northstar's demo world never sends, per broker file."""
    fix44 = [
        _heartbeat("BRKX", 1),  # a session message: skipped, and counted in the manifest's rows_skipped
        _report("FIX.4.4", 2, "X1", "0", "0"),  # New: LastQty 0, LastPx 0
        _report("FIX.4.4", 3, "X2", "F", "1", last_qty="60", last_px="187.25", cum_qty="60", leaves_qty="40"),
        _report("FIX.4.4", 4, "X3", "4", "4", cum_qty="60", leaves_qty="0"),  # Canceled, LastQty 0
        # Order Status: no ClOrdID, LastQty or LastPx (the standard requires none of them here)
        _report("FIX.4.4", 5, "X4", "I", "4", cl_ord_id=None, last_qty=None, last_px=None, cum_qty="60",
                leaves_qty="0"),
        # fills with a standard side the recon cannot match by direction: 8 Cross, 7 Undisclosed
        _report("FIX.4.4", 6, "X5", "F", "2", side="8", last_qty="100", last_px="50", cum_qty="100", leaves_qty="0"),
        _report("FIX.4.4", 7, "X6", "F", "2", side="7", last_qty="10", last_px="50", cum_qty="10", leaves_qty="0",
                order_qty="10"),
        # a fill of a security type the dialect does not price (a future)
        _report("FIX.4.4", 8, "X7", "F", "2", symbol="ESZ6", security_type="FUT", last_qty="2", last_px="5900.25",
                cum_qty="2", leaves_qty="0", order_qty="2"),
    ]
    fix42 = [
        _report("FIX.4.2", 1, "Y1", "0", "0"),  # New
        _report("FIX.4.2", 2, "Y2", "2", "2", side="2", last_qty="100", last_px="410.5", cum_qty="100",
                leaves_qty="0"),
        # two status reports: ExecTransType 3 and ExecID 0, as the standard sets it (not a repeated key)
        _report("FIX.4.2", 3, "0", "2", "2", side="2", last_qty="0", last_px="0", cum_qty="100", leaves_qty="0",
                exec_trans_type="3"),
        _report("FIX.4.2", 4, "0", "2", "2", side="2", last_qty="0", last_px="0", cum_qty="100", leaves_qty="0",
                exec_trans_type="3"),
    ]
    fixt = [
        # FIX 5.0 SP2 codes FIX 4.4 does not have: L Triggered by the system, then J Trade in a clearing hold
        _report("FIXT.1.1", 1, "Z1", "L", "0", last_qty=None, last_px=None, order_qty=None),
        _report("FIXT.1.1", 2, "Z2", "F", "2", last_qty="100", last_px="250", cum_qty="100", leaves_qty="0"),
        _report("FIXT.1.1", 3, "Z3", "J", "2", last_qty=None, last_px=None, cum_qty="100", leaves_qty="0"),
    ]
    return {"BRKX": fix44, "BRKY": fix42, "BRKZ": fixt}


def _drop(drop, broker: str, day: str, messages: list[bytes]) -> None:
    folder = drop / "fix"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{broker}_{day}.fix").write_bytes(b"\n".join(messages) + b"\n")


@pytest.fixture(scope="module")
def fix_landing(tmp_path_factory):
    """One landing, three ingest runs: the standard batch, a fill priced 0, a landed Side outside the standard."""

    from ingest.broker_files import land_broker_files

    root = tmp_path_factory.mktemp("landing_fix")
    drop, landing = root / "drop", root / "landing"
    for broker, messages in standard_batch().items():
        _drop(drop, broker, DAY, messages)
    report = land_broker_files(drop, landing, run_id="fix_standard")
    assert report.rows_quarantined == 0 and report.rows_skipped == 1, report.as_dict()

    _drop(drop, "BRKX", "20261102", [
        _report("FIX.4.4", 1, "P1", "F", "2", last_qty="100", last_px="0", cum_qty="100", leaves_qty="0")])
    assert land_broker_files(drop, landing, run_id="fix_zero_price").rows_landed == 1

    # The parser quarantines a Side outside the standard (fix_bad_enum), so such a row can only reach the
    # landing some other way (an older ingest, a hand-made file): the gate is the second line. Land a valid
    # fill, then rewrite its landed Parquet with Side(54) 'Z', row count unchanged.
    _drop(drop, "BRKX", "20261103", [
        _report("FIX.4.4", 1, "S1", "F", "2", last_qty="100", last_px="10", cum_qty="100", leaves_qty="0")])
    assert land_broker_files(drop, landing, run_id="fix_bad_side").rows_landed == 1
    with northstar.warehouse.scratch() as con:
        (data_path,) = con.execute(
            f"select data_path from read_parquet('{landing}/_manifest/broker_files/*.parquet', union_by_name = true) "
            "where run_id = 'fix_bad_side' and status = 'landed'").fetchone()
    table = pq.read_table(landing / data_path)
    column = table.schema.get_field_index("side_code")
    field = table.schema.field(column)
    table = table.set_column(column, field, pa.array(["Z"] * table.num_rows, field.type))
    pq.write_table(table, landing / data_path)

    return make_cfg(root / "var", landing=landing, warehouse=root / "warehouse.duckdb")


def _fix(outcomes) -> dict:
    return {o.expectation: o for o in outcomes if o.expectation.startswith("landing.fix_executions")}


def test_standard_valid_fix_passes_with_warnings_for_what_the_recon_cannot_match(fix_landing):
    report = run_gate("landing", "gate__fix_standard", cfg=fix_landing, ingest_run_ids=["fix_standard"],
                      build_docs=False)
    assert report.success and not report.critical_failures
    # the manifest accounts for the skipped heartbeat; the FIX checks all ran
    names = {o.expectation for o in report.outcomes}
    for name in ("landing.broker_manifest.records_conserved", "landing.fix_executions.side_code_enum",
                 "landing.fix_executions.exec_type_enum", "landing.fix_executions.last_qty_positive",
                 "landing.fix_executions.last_px_positive", "landing.fix_executions.exec_trans_type_not_null",
                 "landing.fix_executions_keys.exec_id_unique_per_broker"):
        assert name in names
    warnings = _fix(report.warnings)
    assert set(warnings) == {"landing.fix_executions.side_has_direction",
                             "landing.fix_executions.security_type_priced"}
    side = warnings["landing.fix_executions.side_has_direction"]
    assert side.observed_value.startswith("2 of 14 ")  # 7 + 4 + 3 reports landed
    assert {row["offending_side_has_direction"] for row in side.sample_rows} == {"CROSS", "UNDISCLOSED"}
    security = warnings["landing.fix_executions.security_type_priced"]
    assert [row["offending_security_type_priced"] for row in security.sample_rows] == ["FUT"]
    assert "the FIX dialect has a price convention for" in security.description


def test_a_fill_priced_zero_fails_the_landing_gate(fix_landing):
    with pytest.raises(GateFailed) as failed:
        run_gate("landing", "gate__fix_zero_price", cfg=fix_landing, ingest_run_ids=["fix_zero_price"],
                 build_docs=False)
    critical = _fix(failed.value.report.critical_failures)
    assert set(critical) == {"landing.fix_executions.last_px_positive"}
    assert failed_names(failed.value.report) - set(_fix(failed.value.report.warnings)) == set(critical)
    message = str(failed.value)
    assert "CRITICAL landing.fix_executions.last_px_positive: observed 1 of 1 rows" in message
    assert "every fill has a LastPx(31) above zero" in message
    assert "BRKX_20261102.fix" in message


def test_a_side_outside_the_standard_fails_the_landing_gate(fix_landing):
    with pytest.raises(GateFailed) as failed:
        run_gate("landing", "gate__fix_bad_side", cfg=fix_landing, ingest_run_ids=["fix_bad_side"],
                 build_docs=False)
    critical = _fix(failed.value.report.critical_failures)
    assert set(critical) == {"landing.fix_executions.side_code_enum"}
    outcome = critical["landing.fix_executions.side_code_enum"]
    assert [row["offending_side_code_enum"] for row in outcome.sample_rows] == ["Z"]
    assert "Side(54) is a code the FIX standard defines for the message's version" in str(failed.value)
