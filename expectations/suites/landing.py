# ruff: noqa: S608 - this module is SQL text over fixed identifiers; values go through sql_literal / sql_list
"""The ``landing`` gate: after ingest, before dbt.

Validates what the ingest run(s) landed (``ingest_run_ids``, default the gate's ``run_id``; ``"all"``
for everything ever landed): the broker-file manifest (quarantined share per file, conservation of
records, row counts of the landed and quarantine Parquet files against the manifest), the landed
broker tables (schema, required keys, canonical enumerations, positive quantities and prices, plausible
dates, unique trade ids in the trade book, non-negative market values in billing; FIX drop copies against
the FIX standard of each message's version, with what only the recon needs as warnings) and the
Salesforce extraction (manifest status and row counts, required keys).

The landing Parquet is exposed to GX through a throw-away DuckDB file of views over
``read_parquet`` (only the files of the runs in scope), so every expectation runs as SQL in DuckDB.
"""

from __future__ import annotations

from pathlib import Path

import northstar.warehouse
from connectors.fix import dictionary as fix_dictionary
from expectations.checks import (
    CRITICAL,
    WARNING,
    Dataset,
    critical,
    duplicate_keys,
    offending_rows,
    pct,
    sql_list,
    sql_literal,
    warning,
)
from expectations.runner import GateContext, Plan
from northstar.reference import asset_class_names

BROKER_TABLES = ("internal_trades", "fix_executions", "pb_confirms", "billing")
SALESFORCE_OBJECTS = {"Account": "salesforce_account", "Contact": "salesforce_contact",
                      "Brokerage_Account__c": "salesforce_brokerage_account"}
SIDES = ["BUY", "SELL"]
# FIX: the standard's value sets, required fields and fill ExecTypes come from the same dictionaries the
# drop-copy parser validates against (connectors/fix/dictionaries, derived from QuickFIX's spec XML), per
# BeginString; see _fix_executions.
FIX_VERSION_LABELS = {"FIX.4.2": "FIX 4.2", "FIX.4.4": "FIX 4.4", "FIXT.1.1": "FIX 5.0 SP2"}
FIX_COLUMN_OF_TAG = {8: "begin_string", 54: "side_code"}  # the landed column where it is not the field's name
FIX_NOT_LANDED = {9, 10}  # BodyLength, CheckSum: checked by the parser, not landed
# ExecType(150) names that report a fill: FIX 4.2's Partial fill (1) and Fill (2), FIX 4.4's and 5.0's
# Trade (F, which replaced them). Trade Correct / Trade Cancel (G, H), ExecTransType(20) Cancel / Correct /
# Status in FIX 4.2, and every order-state report (New, Canceled, Replaced, Rejected, Pending ..., Order
# Status; 5.0's J/K, a trade held for or released to clearing, which reports a trade already reported as F)
# are not new fills: the standard lets them carry LastQty 0 or none.
FIX_FILL_EXEC_TYPE_NAMES = ("PARTIAL_FILL", "FILL", "TRADE")
FIX_NEW_EXEC_TRANS_TYPE = "NEW"  # FIX 4.2 ExecTransType(20) of a new execution (not a cancel, correct or status)
# the key of each landed table, checked over the latest version of each delivered file in scope
KEYS = {
    "internal_trades": (["trade_id"], "trade_id_unique",
                        "trade ids are unique in the trade book (latest version of each file)", CRITICAL),
    # the standard wants an ExecID unique per broker within a trading day, except on status reports (ExecID 0);
    # a repeat lands, and the recon counts its first delivery and raises a duplicate break, so only a warning
    "fix_executions": (["sender_comp_id", "exec_id"], "exec_id_unique_per_broker",
                       "each broker's ExecID(17) is unique, status reports (ExecID 0 by the standard) excepted; "
                       "the recon counts a repeated ExecID once and raises a duplicate break", WARNING),
    # a confirm delivered twice is a recon break (dbt raises it), so only a warning here
    "pb_confirms": (["prime_broker", "trade_id"], "trade_id_unique_per_broker",
                    "each prime broker confirms a trade once", WARNING),
    "billing": (["account_number", "period"], "one_statement_per_account_month",
                "one statement per account per period", CRITICAL),
}
LINEAGE = ["_source_file", "_source_line", "_file_sha256", "_file_version", "_run_id", "_landed_at"]
REQUIRED_COLUMNS = {
    "internal_trades": ["trade_id", "order_id", "trade_date", "trade_time", "account_number", "instrument_id",
                        "asset_class", "side", "quantity", "price", "currency", "settle_date", "executing_broker",
                        "prime_broker", "price_convention", "contract_multiplier", *LINEAGE],
    "fix_executions": ["begin_string", "msg_type", "sender_comp_id", "msg_seq_num", "order_id", "cl_ord_id", "exec_id",
                       "exec_type", "ord_status", "account", "symbol", "security_type", "side_code", "side",
                       "last_qty", "last_px", "order_qty", "cum_qty", "leaves_qty", "currency", "transact_time",
                       "trade_date", "exec_trans_type", "price_convention", *LINEAGE],
    "pb_confirms": ["prime_broker", "trade_id", "trade_date", "settle_date", "account_number", "instrument_id",
                    "asset_class", "side", "quantity", "price", "currency", "price_convention", "contract_multiplier",
                    *LINEAGE],
    "billing": ["account_number", "period_end", "market_value", "net_flows", "fees_billed", "currency",
                "account_status", *LINEAGE],
}


def plan(ctx: GateContext) -> Plan:
    landing = ctx.cfg.paths.landing.resolve()
    requested = ctx.options.get("ingest_run_ids") or [ctx.run_id]
    scope_all = requested == "all" or requested == ["all"]
    tables = ctx.options.get("tables")
    database = ctx.workdir / "landing.duckdb"
    con = northstar.warehouse.connect(path=database)
    try:
        datasets = _create_views(con, ctx, landing, None if scope_all else list(requested), tables)
    finally:
        con.close()
    return Plan(database=database, datasets=datasets)  # the file goes with the gate's work folder


def _manifest_view(con, name: str, folder: Path, run_ids: list[str] | None, empty_sql: str) -> int:
    files = sorted(str(p) for p in folder.glob("*.parquet"))
    if files:
        where = "" if run_ids is None else f"where run_id in (select unnest({sql_list(run_ids)}))"
        con.execute(f"create view {name} as select * from read_parquet({sql_list(files)}, union_by_name = true) {where}")
    else:
        con.execute(f"create view {name} as {empty_sql}")
    return con.execute(f"select count(*) from {name}").fetchone()[0]


def _create_views(con, ctx: GateContext, landing: Path, run_ids: list[str] | None, tables) -> list[Dataset]:
    t = ctx.thresholds
    broker_rows = _manifest_view(
        con, "broker_manifest", landing / "_manifest" / "broker_files", run_ids,
        "select null::varchar as run_id, null::varchar as source, null::varchar as table_name, "
        "null::varchar as file_path, null::varchar as sha256, null::varchar as status, null::varchar as reason_code, "
        "null::bigint as rows_in, null::bigint as rows_landed, null::bigint as rows_quarantined, "
        "null::bigint as rows_skipped, "
        "null::varchar as data_path, null::varchar as quarantine_path where false",
    )
    salesforce_rows = _manifest_view(
        con, "salesforce_manifest", landing / "_manifest" / "salesforce", run_ids,
        "select null::varchar as run_id, null::varchar as object, null::bigint as rows, null::varchar as status, "
        "null::varchar as error, null::varchar as path where false",
    )
    if broker_rows and "rows_skipped" not in {c for (c, *_) in con.execute("describe broker_manifest").fetchall()}:
        # manifests written before FIX session logs were read had no skipped messages
        con.execute("alter view broker_manifest rename to broker_manifest_raw")
        con.execute("create view broker_manifest as select *, 0::bigint as rows_skipped from broker_manifest_raw")
    datasets: list[Dataset] = []
    ctx.batch.update({
        "ingest_run_ids": "all" if run_ids is None else run_ids,
        "broker_manifest_rows": broker_rows,
        "salesforce_manifest_rows": salesforce_rows,
    })

    # --- the broker-file manifest: ratio, conservation, counts of what is on disk ---------------
    landed_files: dict[str, list[str]] = {}
    if broker_rows:
        paths = con.execute(
            "select distinct table_name, data_path from broker_manifest where status = 'landed' and data_path is not null"
        ).fetchall()
        for table_name, data_path in paths:
            landed_files.setdefault(table_name, []).append(str(landing / data_path))
        on_disk = [p for paths_ in landed_files.values() for p in paths_ if Path(p).exists()]
        on_disk += [
            str(landing / q) for (q,) in con.execute(
                "select distinct quarantine_path from broker_manifest where quarantine_path is not null"
            ).fetchall() if (landing / q).exists()
        ]
        if on_disk:
            con.execute(
                f"create view parquet_row_counts as select file_name, num_rows "
                f"from parquet_file_metadata({sql_list(sorted(set(on_disk)))})"
            )
        else:
            con.execute("create view parquet_row_counts as select null::varchar as file_name, null::bigint as num_rows where false")
        root = sql_literal(str(landing) + "/")
        datasets.append(Dataset(
            name="broker_manifest",
            sql=f"""
                select
                    m.run_id, m.source, m.table_name, m.file_path, m.status, m.reason_code,
                    m.rows_in, m.rows_landed, m.rows_quarantined, coalesce(m.rows_skipped, 0) as rows_skipped,
                    case when m.rows_in > 0 then m.rows_quarantined / m.rows_in else 0.0 end as quarantined_ratio,
                    case when m.data_path is null then 0 else coalesce(d.num_rows, -1) end as rows_found_landed,
                    case when m.quarantine_path is null then 0 else coalesce(q.num_rows, -1) end as rows_found_quarantined,
                    -- an empty file is quarantined as one file-level row (line_number null) with rows_in = 0
                    case when m.status = 'quarantined' and m.rows_in = 0 then 1 else m.rows_quarantined end
                        as rows_expected_in_quarantine,
                from broker_manifest as m
                left join parquet_row_counts as d on d.file_name = {root} || m.data_path
                left join parquet_row_counts as q on q.file_name = {root} || m.quarantine_path
            """,
            key_columns=("file_path", "status", "rows_in", "rows_quarantined", "rows_skipped"),
            checks=[
                critical("quarantined_ratio", "ExpectColumnValuesToBeBetween",
                         f"each delivered file has at most {pct(t.landing_max_quarantined_ratio)} of its records quarantined",
                         column="quarantined_ratio", min_value=0, max_value=t.landing_max_quarantined_ratio),
                warning("quarantined_ratio_warn", "ExpectColumnValuesToBeBetween",
                        f"each delivered file has at most {pct(t.landing_warn_quarantined_ratio)} of its records quarantined",
                        column="quarantined_ratio", min_value=0, max_value=t.landing_warn_quarantined_ratio),
                critical("records_conserved", "UnexpectedRowsExpectation",
                         "rows_in = rows_landed + rows_quarantined + rows_skipped for every file (skipped: FIX "
                         "messages other than execution reports, e.g. logons, heartbeats, orders)",
                         unexpected_rows_query="select * from {batch} "
                         "where rows_in != rows_landed + rows_quarantined + rows_skipped"),
                critical("landed_rows_match_manifest", "ExpectColumnPairValuesToBeEqual",
                         "the landed Parquet file holds exactly the manifest's rows_landed",
                         column_A="rows_landed", column_B="rows_found_landed"),
                critical("quarantined_rows_match_manifest", "ExpectColumnPairValuesToBeEqual",
                         "the quarantine Parquet file holds exactly the manifest's rows_quarantined "
                         "(one file-level row for an empty file)",
                         column_A="rows_expected_in_quarantine", column_B="rows_found_quarantined"),
                warning("no_whole_file_rejects", "ExpectColumnValuesToBeInSet",
                        "no file quarantined whole (empty, not decodable, missing a column)",
                        column="status", value_set=["landed", "skipped_duplicate"]),
            ],
        ))

    # --- the landed broker tables (latest version of each delivered file in scope) --------------
    wanted = [tb for tb in BROKER_TABLES if tables is None or tb in tables]
    for table in wanted:
        files = [p for p in landed_files.get(table, []) if Path(p).exists()]
        if not files:
            continue
        con.execute(
            f"create view {table} as select * from read_parquet({sql_list(sorted(files))}, hive_partitioning = true, "
            f"union_by_name = true) qualify _file_version = max(_file_version) over (partition by _source_file)"
        )
        datasets.append(_BROKER_DATASETS[table](ctx, table))
        keys, check, description, severity = KEYS[table]
        source = table if table != "fix_executions" else \
            f"(select * from {table} where not {fix_status_report_predicate()}) as reports"
        datasets.append(duplicate_keys(f"{table}_keys", source, keys, check, description, severity))
        if table == "internal_trades":
            # trade ids already booked by an earlier delivery (another file; a corrected redelivery of the
            # same file legitimately repeats them)
            in_scope = {str(Path(p).resolve()) for p in files}
            history = sorted(str(p) for p in (landing / "broker" / table).glob("*/*.parquet")
                             if str(p.resolve()) not in in_scope)
            if history:
                con.execute(f"create view {table}_history as select trade_id, _source_file "
                            f"from read_parquet({sql_list(history)}, union_by_name = true) "
                            f"where _source_file not in (select distinct _source_file from {table})")
                datasets.append(offending_rows(
                    f"{table}_already_booked",
                    f"select trade_id, _source_file, _source_line from {table} "
                    f"where trade_id in (select trade_id from {table}_history)",
                    "trade_id_not_already_booked",
                    "no trade id of this delivery was already booked by another trade-book file",
                ))
    ctx.batch["broker_tables"] = {tb: len(landed_files.get(tb, [])) for tb in wanted}
    required = [tb for tb in ctx.options.get("required_tables") or [] if tb in BROKER_TABLES]
    if required:
        rows = " union all ".join(
            f"select {sql_literal(tb)} as table_name, {len(landed_files.get(tb, []))} as files_landed" for tb in required
        )
        datasets.append(Dataset(
            name="required_tables", sql=rows, key_columns=("table_name",),
            checks=[critical("files_landed", "ExpectColumnValuesToBeBetween",
                             "every required landing table received at least one file in this run",
                             column="files_landed", min_value=1)],
        ))

    # --- Salesforce extraction -----------------------------------------------------------------
    if salesforce_rows and (tables is None or "salesforce" in tables):
        objects = con.execute("select object, path from salesforce_manifest where status = 'ok' and path is not null").fetchall()
        sf_files: dict[str, list[str]] = {}
        for obj, path in objects:
            if (landing / path).exists():
                sf_files.setdefault(obj, []).append(str(landing / path))
        all_files = sorted(p for ps in sf_files.values() for p in ps)
        if all_files:
            con.execute(f"create view salesforce_row_counts as select file_name, num_rows from parquet_file_metadata({sql_list(all_files)})")
        else:
            con.execute("create view salesforce_row_counts as select null::varchar as file_name, null::bigint as num_rows where false")
        root = sql_literal(str(landing) + "/")
        datasets.append(Dataset(
            name="salesforce_manifest",
            sql=f"""
                select m.run_id, m.object, m.status, m.error, m.rows,
                    case when m.status = 'ok' then coalesce(c.num_rows, -1) else m.rows end as rows_found,
                from salesforce_manifest as m
                left join salesforce_row_counts as c on c.file_name = {root} || m.path
            """,
            key_columns=("object", "status", "rows"),
            checks=[
                critical("objects_extracted", "ExpectColumnValuesToBeInSet",
                         "every Salesforce object of the run extracted without error", column="status", value_set=["ok"]),
                critical("rows_match_manifest", "ExpectColumnPairValuesToBeEqual",
                         "each landed Salesforce file holds exactly the manifest's rows",
                         column_A="rows", column_B="rows_found"),
            ],
        ))
        for obj, view in SALESFORCE_OBJECTS.items():
            if obj not in sf_files:
                continue
            con.execute(f"create view {view} as select * from read_parquet({sql_list(sorted(sf_files[obj]))}, union_by_name = true)")
            datasets.append(_salesforce_dataset(obj, view))
        ctx.batch["salesforce_objects"] = sorted(sf_files)
    return datasets


def _common_trade_checks(ctx: GateContext, table: str, date_column: str, keys: list[str]) -> list:
    t = ctx.thresholds
    return [
        critical("schema", "ExpectTableColumnsToMatchSet", f"the landed {table} has every canonical column",
                 column_set=REQUIRED_COLUMNS[table], exact_match=False),
        *[critical(f"{column}_not_null", "ExpectColumnValuesToNotBeNull", f"{column} is never null", column=column)
          for column in keys],
        critical(f"{date_column}_plausible", "UnexpectedRowsExpectation",
                 f"{date_column} is on or before the file's business date (+{t.landing_max_trade_date_lead_days} days), "
                 f"at most {t.landing_max_trade_date_lag_days} days before it, and not before {t.landing_min_plausible_date}",
                 unexpected_rows_query=(
                     "select _source_file, _source_line, " + date_column + ", business_date from {batch} where "
                     f"{date_column} > business_date + {t.landing_max_trade_date_lead_days} "
                     f"or {date_column} < business_date - {t.landing_max_trade_date_lag_days} "
                     f"or {date_column} < date '{t.landing_min_plausible_date}'"
                 )),
    ]


def _allocation_checks(ctx: GateContext) -> list:
    """What the trade book and the prime brokers' confirms share: canonical enums, positive amounts."""
    asset_classes = list(asset_class_names(ctx.cfg))  # the seed asset_classes, the canonical list's one owner
    return [
        critical("side_enum", "ExpectColumnValuesToBeInSet", f"side is one of {SIDES}", column="side", value_set=SIDES),
        critical("asset_class_enum", "ExpectColumnValuesToBeInSet", f"asset class is one of {asset_classes}",
                 column="asset_class", value_set=asset_classes),
        critical("quantity_positive", "ExpectColumnValuesToBeBetween", "quantity > 0",
                 column="quantity", min_value=0, strict_min=True),
        critical("price_positive", "ExpectColumnValuesToBeBetween", "price > 0", column="price", min_value=0, strict_min=True),
    ]


def _internal_trades(ctx: GateContext, table: str) -> Dataset:
    t = ctx.thresholds
    return Dataset(
        name=table, sql=f"select * from {table}", key_columns=("_source_file", "_source_line", "trade_id"),
        checks=[
            *_common_trade_checks(ctx, table, "trade_date", ["trade_id", "order_id", "trade_date", "account_number",
                                                             "instrument_id", "asset_class", "side", "quantity", "price"]),
            *_allocation_checks(ctx),
            warning("settle_after_trade", "UnexpectedRowsExpectation",
                    f"settle date between trade date and {t.landing_max_settle_days} days after it",
                    unexpected_rows_query="select _source_file, _source_line, trade_id, trade_date, settle_date from {batch} "
                    f"where settle_date < trade_date or settle_date > trade_date + {t.landing_max_settle_days}"),
        ],
    )


def _fix_column(tag: int) -> str:
    return FIX_COLUMN_OF_TAG.get(tag) or fix_dictionary.columns()[tag][0]


def _fix_field(tag: int) -> str:
    """``Side(54)``: the standard's field name and tag, as the descriptions name a field."""
    name = next(spec.name for v in fix_dictionary.supported_versions()
                if (spec := fix_dictionary.load(v).tags.get(tag)) is not None)
    return f"{name}({tag})"


def _versions_text(versions) -> str:
    labels = [FIX_VERSION_LABELS.get(v, v) for v in versions]
    return labels[0] if len(labels) == 1 else ", ".join(labels[:-1]) + " and " + labels[-1]


def _fix_enums(tag: int) -> dict[str, frozenset[str]]:
    """BeginString -> the codes the standard (the parser's dictionary of that version) allows for ``tag``."""
    enums = {}
    for version in fix_dictionary.supported_versions():
        spec = fix_dictionary.load(version).tags.get(tag)
        if spec is not None and spec.enums:
            enums[version] = spec.enums
    return enums


def _fix_required_columns() -> dict[str, list[str]]:
    """Landed column -> the versions whose standard requires the field on every ExecutionReport."""
    required: dict[str, list[str]] = {}
    for version in fix_dictionary.supported_versions():
        for tag in fix_dictionary.load(version).required_tags:
            if tag not in FIX_NOT_LANDED:
                required.setdefault(_fix_column(tag), []).append(version)
    return required


def _fix_tag_of_column(column: str) -> int:
    return next(t for t in fix_dictionary.columns() if t not in FIX_NOT_LANDED and _fix_column(t) == column)


def fix_fill_exec_types() -> dict[str, list[str]]:
    """BeginString -> the ExecType(150) codes of a fill in that version (by the standard's names)."""
    names = fix_dictionary.enum_names(150)
    return {version: sorted(c for c in codes if names.get(c) in FIX_FILL_EXEC_TYPE_NAMES)
            for version, codes in _fix_enums(150).items()}


def fix_fill_predicate() -> str:
    """SQL over a fix_executions row: the row reports a new fill (what the recon sums; see dbt's is_fill)."""
    new = [c for c, n in fix_dictionary.enum_names(20).items() if n == FIX_NEW_EXEC_TRANS_TYPE]
    parts = []
    for version, codes in fix_fill_exec_types().items():
        condition = f"begin_string = {sql_literal(version)} and exec_type in ({', '.join(map(sql_literal, codes))})"
        if 20 in fix_dictionary.load(version).tags:  # FIX 4.2: a cancel, correct or status is no new fill
            condition += f" and exec_trans_type in ({', '.join(map(sql_literal, new))})"
        parts.append(f"({condition})")
    return "coalesce(" + " or ".join(parts) + ", false)"


def fix_status_report_predicate() -> str:
    """SQL: the row is a status report, whose ExecID the standard sets to 0 (FIX 4.2 ExecTransType(20) Status,
    FIX 4.4 / 5.0 ExecType(150) Order Status)."""
    status = [c for c, n in fix_dictionary.enum_names(20).items() if n == "STATUS"]
    order_status = [c for c, n in fix_dictionary.enum_names(150).items() if n == "ORDER_STATUS"]
    parts = []
    for version in fix_dictionary.supported_versions():
        if 20 in fix_dictionary.load(version).tags:
            parts.append(f"(begin_string = {sql_literal(version)} and exec_trans_type in ({', '.join(map(sql_literal, status))}))")
        else:
            parts.append(f"(begin_string = {sql_literal(version)} and exec_type in ({', '.join(map(sql_literal, order_status))}))")
    return "coalesce(" + " or ".join(parts) + ", false)"


def _fills_text() -> str:
    names = fix_dictionary.enum_names(150)
    by_codes: dict[tuple[str, ...], list[str]] = {}
    for version, codes in fix_fill_exec_types().items():
        by_codes.setdefault(tuple(codes), []).append(version)
    parts = []
    for codes, versions in by_codes.items():
        words = " or ".join(f"{c} {names[c].replace('_', ' ').capitalize()}" for c in codes)
        extra = " with ExecTransType(20) 0 New" if any(20 in fix_dictionary.load(v).tags for v in versions) else ""
        parts.append(f"ExecType(150) {words}{extra} in {_versions_text(versions)}")
    return "; ".join(parts)


def _codes_text(codes) -> str:
    codes = sorted(codes)
    return " ".join(codes) if len(codes) <= 24 else f"the {len(codes)} codes of its dictionary"


def _in(column: str, values) -> str:
    return f"{column} in ({', '.join(map(sql_literal, sorted(values)))})"


class _Offences:
    """Checks over computed columns that hold a row's offending value (else NULL), one per check.

    Every check is then a row-level ``ExpectColumnValuesToBeNull`` on one dataset, so GX counts them all in
    one query (not one query per check, as ``UnexpectedRowsExpectation`` costs), and a failure's sample
    rows show the offending value beside the row's file, line and ExecID.
    """

    def __init__(self) -> None:
        self.columns: list[str] = []
        self.checks: list = []

    def add(self, severity, name: str, value_sql: str, description: str) -> None:
        column = f"offending_{name}"
        self.columns.append(f"{value_sql} as {column}")
        self.checks.append(severity(name, "ExpectColumnValuesToBeNull", description, column=column))


def _fix_enum_offence(offences: _Offences, column: str, tag: int) -> None:
    """Critical: the column holds a code the standard defines for the message's own version."""
    enums = _fix_enums(tag)
    cases = " ".join(f"when {sql_literal(v)} then {_in(column, codes)}" for v, codes in enums.items())
    undefined = [v for v in fix_dictionary.supported_versions() if v not in enums]
    cases += "".join(f" when {sql_literal(v)} then true" for v in undefined)  # the version has no such field
    allowed = "; ".join(f"{FIX_VERSION_LABELS[v]}: {_codes_text(codes)}" for v, codes in enums.items())
    only = f", which only {_versions_text(list(enums))} defines" if undefined else ""
    offences.add(critical, f"{column}_enum",
                 f"case when {column} is not null and not coalesce(case begin_string {cases} end, false) "
                 f"then {column} end",
                 f"{_fix_field(tag)} is a code the FIX standard defines for the message's version{only} ({allowed})")


def _fix_executions(ctx: GateContext, table: str) -> Dataset:
    """FIX drop copies checked against the standard, per version; what only Northstar needs is a warning.

    Critical: what the FIX standard requires (the parser's dictionaries, per BeginString): its required
    fields present, its codes only, LastQty and LastPx above zero on fills, no negative quantity. Warning:
    what the recon needs beyond the standard (a ClOrdID, instrument, currency and date on each fill, a
    buy/sell direction, a security type the dialect prices), so standard-valid data does not stop the DAG
    and the gate still says what the recon cannot match.
    """
    offences = _Offences()
    required = _fix_required_columns()
    every_version = len(fix_dictionary.supported_versions())
    not_null = [
        critical(f"{column}_not_null", "ExpectColumnValuesToNotBeNull",
                 f"{_fix_field(_fix_tag_of_column(column))} is present on every execution report "
                 f"(the FIX standard requires it in every version)", column=column)
        for column, versions in required.items() if len(versions) == every_version
    ]
    for column, versions in required.items():
        if len(versions) < every_version:
            offences.add(critical, f"{column}_not_null",
                         f"case when {column} is null and {_in('begin_string', versions)} then begin_string end",
                         f"{_fix_field(_fix_tag_of_column(column))} is present on every execution report of "
                         f"{_versions_text(versions)} (the standard of that version requires it)")
    for column, tag in (("side_code", 54), ("ord_status", 39), ("exec_type", 150), ("exec_trans_type", 20),
                        ("security_type", 167)):
        _fix_enum_offence(offences, column, tag)
    offences.add(critical, "last_qty_positive",
                 "case when is_fill and not coalesce(last_qty > 0, false) "
                 "then coalesce(cast(last_qty as varchar), 'missing') end",
                 f"every fill has a LastQty(32) above zero, as the standard requires of a fill (a fill is "
                 f"{_fills_text()}; other execution reports, e.g. New or Canceled, may carry 0 or none)")
    offences.add(critical, "last_px_positive",
                 "case when is_fill and not coalesce(last_px > 0, false) "
                 "then coalesce(cast(last_px as varchar), 'missing') end",
                 "every fill has a LastPx(31) above zero, as the standard requires of a fill (other execution "
                 "reports may carry 0 or none)")
    offences.add(critical, "order_qty_positive",
                 "case when is_fill and order_qty <= 0 then order_qty end",
                 "a fill's OrderQty(38), when given, is above zero")
    # what the recon needs of a fill where the standard does not require it
    for column, why in (
        ("cl_ord_id", "a ClOrdID(11): the recon matches fills to the trade book's order id by it"),
        ("symbol", "a Symbol(55): the recon names the instrument by it"),
        ("currency", "a Currency(15): the recon compares it with the trade book's"),
        ("trade_date", "a trade date (TradeDate(75), or TransactTime(60) to derive it): the recon dates the fill by it"),
    ):
        offences.add(warning, f"{column}_on_fills", f"case when is_fill and {column} is null then exec_type end",
                     f"every fill has {why}")
    offences.add(warning, "side_has_direction",
                 f"case when is_fill and not {_in('side', SIDES)} then side end",
                 "every fill's Side(54) is a buy or a sell, the direction the recon matches against the trade book "
                 "(a standard side without one, e.g. 7 Undisclosed or 8 Cross, lands but the recon reports it "
                 "as a side break)")
    offences.add(warning, "security_type_priced",
                 "case when is_fill and price_convention is null then coalesce(security_type, 'missing') end",
                 "every fill's SecurityType(167) is one the FIX dialect has a price convention for "
                 "(ingest/dialects/fix.yaml); the recon cannot tell whether another's price is per unit, per cent "
                 "of par or per contract")
    sql = (f"select *, {', '.join(offences.columns)} "
           f"from (select *, {fix_fill_predicate()} as is_fill from {table}) as reports")
    return Dataset(
        name=table, sql=sql, key_columns=("_source_file", "_source_line", "exec_id"),
        checks=[
            *_common_trade_checks(ctx, table, "trade_date", []),
            critical("begin_string_enum", "ExpectColumnValuesToBeInSet",
                     f"BeginString(8) is a FIX version the dictionaries cover: "
                     f"{_versions_text(fix_dictionary.supported_versions())}",
                     column="begin_string", value_set=fix_dictionary.supported_versions()),
            *not_null,
            *[critical(f"{column}_non_negative", "ExpectColumnValuesToBeBetween",
                       f"{_fix_field(tag)} is never negative, on any execution report", column=column, min_value=0)
              for column, tag in (("last_qty", 32), ("order_qty", 38), ("cum_qty", 14), ("leaves_qty", 151))],
            *offences.checks,
        ],
    )


def _pb_confirms(ctx: GateContext, table: str) -> Dataset:
    return Dataset(
        name=table, sql=f"select * from {table}", key_columns=("_source_file", "_source_line", "trade_id"),
        checks=[
            *_common_trade_checks(ctx, table, "trade_date", ["prime_broker", "trade_id", "trade_date", "account_number",
                                                             "instrument_id", "asset_class", "side", "quantity", "price"]),
            *_allocation_checks(ctx),
        ],
    )


def _billing(ctx: GateContext, table: str) -> Dataset:
    t = ctx.thresholds
    return Dataset(
        name=table, sql=f"select * from {table}", key_columns=("_source_file", "_source_line", "account_number"),
        checks=[
            critical("schema", "ExpectTableColumnsToMatchSet", "the landed billing has every canonical column",
                     column_set=REQUIRED_COLUMNS[table], exact_match=False),
            *[critical(f"{column}_not_null", "ExpectColumnValuesToNotBeNull", f"{column} is never null", column=column)
              for column in ("account_number", "period_end", "market_value", "fees_billed", "account_status")],
            critical("market_value_non_negative", "ExpectColumnValuesToBeBetween",
                     "market value (AUM) of an account is never negative", column="market_value", min_value=0),
            critical("fees_billed_non_negative", "ExpectColumnValuesToBeBetween", "fees billed are never negative",
                     column="fees_billed", min_value=0),
            critical("account_status_enum", "ExpectColumnValuesToBeInSet", "account status is OPEN or CLOSED",
                     column="account_status", value_set=["OPEN", "CLOSED"]),
            critical("period_end_in_period", "UnexpectedRowsExpectation",
                     f"period_end falls in the billing period of its file and not before {t.landing_min_plausible_date}",
                     unexpected_rows_query="select _source_file, _source_line, account_number, period_end, period from {batch} "
                     f"where strftime(period_end, '%Y-%m') != period or period_end < date '{t.landing_min_plausible_date}'"),
        ],
    )


_BROKER_DATASETS = {
    "internal_trades": _internal_trades,
    "fix_executions": _fix_executions,
    "pb_confirms": _pb_confirms,
    "billing": _billing,
}


def _salesforce_dataset(obj: str, view: str) -> Dataset:
    checks = [critical("id_not_null", "ExpectColumnValuesToNotBeNull", f"{obj}.Id is never null", column="Id")]
    if obj == "Account":
        checks += [
            critical("household_id_not_null", "UnexpectedRowsExpectation",
                     "every live household Account has a Household_Id__c",
                     unexpected_rows_query="select Id, Name, Type from {batch} "
                     "where Type = 'Household' and not _is_deleted and Household_Id__c is null"),
            warning("aum_band_enum", "ExpectColumnValuesToBeInSet", "AUM band is one of the five bands",
                    column="AUM_Band__c", value_set=["<250K", "250K-1M", "1M-5M", "5M-25M", "25M+"]),
        ]
    if obj == "Brokerage_Account__c":
        checks += [
            critical("account_number_not_null", "ExpectColumnValuesToNotBeNull",
                     "every brokerage account has an account number", column="Account_Number__c"),
            critical("household_not_null", "ExpectColumnValuesToNotBeNull",
                     "every brokerage account belongs to a household", column="Household__c"),
        ]
    if obj == "Contact":
        checks += [warning("account_not_null", "ExpectColumnValuesToNotBeNull", "every contact has an account",
                           column="AccountId")]
    return Dataset(name=view, sql=f"select * from {view}", key_columns=("Id",), checks=checks)
