# ruff: noqa: S608 - this module is SQL text over fixed identifiers; values go through sql_literal / sql_list
"""The ``landing`` gate: after ingest, before dbt.

Validates what the ingest run(s) landed (``ingest_run_ids``, default the gate's ``run_id``; ``"all"``
for everything ever landed): the broker-file manifest (quarantined share per file, conservation of
records, row counts of the landed and quarantine Parquet files against the manifest), the landed
broker tables (schema, required keys, FIX / canonical enumerations, positive quantities and
prices, plausible dates, unique trade ids in the trade book, non-negative market values in billing)
and the Salesforce extraction (manifest status and row counts, required keys).

The landing Parquet is exposed to GX through a throw-away DuckDB file of views over
``read_parquet`` (only the files of the runs in scope), so every expectation runs as SQL in DuckDB.
"""

from __future__ import annotations

from pathlib import Path

import northstar.warehouse
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

BROKER_TABLES = ("internal_trades", "fix_executions", "pb_confirms", "billing")
SALESFORCE_OBJECTS = {"Account": "salesforce_account", "Contact": "salesforce_contact",
                      "Brokerage_Account__c": "salesforce_brokerage_account"}
ASSET_CLASSES = ["EQUITY", "ETF", "BOND", "FX_FWD", "OPTION"]
SIDES = ["BUY", "SELL"]
# FIX Side(54) codes the ingest maps to BUY/SELL; OrdStatus(39) and ExecType(150) of FIX 4.4 and 4.2
FIX_SIDE_CODES = ["1", "2", "3", "4", "5", "6"]
FIX_ORD_STATUS = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "A", "B", "C", "D", "E"]
FIX_EXEC_TYPES = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "A", "B", "C", "D", "E", "F", "G", "H", "I"]
FIX_SECURITY_TYPES = ["CS", "CORP", "FXFWD", "OPT"]  # the ones ingest/dialects/fix.yaml prices
# the key of each landed table, checked over the latest version of each delivered file in scope
KEYS = {
    "internal_trades": (["trade_id"], "trade_id_unique",
                        "trade ids are unique in the trade book (latest version of each file)", CRITICAL),
    "fix_executions": (["sender_comp_id", "exec_id"], "exec_id_unique_per_broker",
                       "(sender_comp_id, exec_id) is unique", CRITICAL),
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
                       "trade_date", *LINEAGE],
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
        "null::varchar as data_path, null::varchar as quarantine_path where false",
    )
    salesforce_rows = _manifest_view(
        con, "salesforce_manifest", landing / "_manifest" / "salesforce", run_ids,
        "select null::varchar as run_id, null::varchar as object, null::bigint as rows, null::varchar as status, "
        "null::varchar as error, null::varchar as path where false",
    )
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
                    m.rows_in, m.rows_landed, m.rows_quarantined,
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
            key_columns=("file_path", "status", "rows_in", "rows_quarantined"),
            checks=[
                critical("quarantined_ratio", "ExpectColumnValuesToBeBetween",
                         f"each delivered file has at most {pct(t.landing_max_quarantined_ratio)} of its records quarantined",
                         column="quarantined_ratio", min_value=0, max_value=t.landing_max_quarantined_ratio),
                warning("quarantined_ratio_warn", "ExpectColumnValuesToBeBetween",
                        f"each delivered file has at most {pct(t.landing_warn_quarantined_ratio)} of its records quarantined",
                        column="quarantined_ratio", min_value=0, max_value=t.landing_warn_quarantined_ratio),
                critical("records_conserved", "UnexpectedRowsExpectation",
                         "rows_in = rows_landed + rows_quarantined for every file",
                         unexpected_rows_query="select * from {batch} where rows_in != rows_landed + rows_quarantined"),
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
        datasets.append(duplicate_keys(f"{table}_keys", table, keys, check, description, severity))
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


def _allocation_checks() -> list:
    """What the trade book and the prime brokers' confirms share: canonical enums, positive amounts."""
    return [
        critical("side_enum", "ExpectColumnValuesToBeInSet", f"side is one of {SIDES}", column="side", value_set=SIDES),
        critical("asset_class_enum", "ExpectColumnValuesToBeInSet", f"asset class is one of {ASSET_CLASSES}",
                 column="asset_class", value_set=ASSET_CLASSES),
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
            *_allocation_checks(),
            warning("settle_after_trade", "UnexpectedRowsExpectation",
                    f"settle date between trade date and {t.landing_max_settle_days} days after it",
                    unexpected_rows_query="select _source_file, _source_line, trade_id, trade_date, settle_date from {batch} "
                    f"where settle_date < trade_date or settle_date > trade_date + {t.landing_max_settle_days}"),
        ],
    )


def _fix_executions(ctx: GateContext, table: str) -> Dataset:
    return Dataset(
        name=table, sql=f"select * from {table}", key_columns=("_source_file", "_source_line", "exec_id"),
        checks=[
            *_common_trade_checks(ctx, table, "trade_date", ["exec_id", "cl_ord_id", "order_id", "sender_comp_id",
                                                             "symbol", "side", "last_qty", "last_px", "transact_time"]),
            critical("side_code_enum", "ExpectColumnValuesToBeInSet", f"FIX Side(54) is one of {FIX_SIDE_CODES}",
                     column="side_code", value_set=FIX_SIDE_CODES),
            critical("side_enum", "ExpectColumnValuesToBeInSet", f"side is one of {SIDES}", column="side", value_set=SIDES),
            critical("ord_status_enum", "ExpectColumnValuesToBeInSet", "FIX OrdStatus(39) is a FIX 4.2/4.4 code",
                     column="ord_status", value_set=FIX_ORD_STATUS),
            critical("exec_type_enum", "ExpectColumnValuesToBeInSet", "FIX ExecType(150) is a FIX 4.2/4.4 code",
                     column="exec_type", value_set=FIX_EXEC_TYPES),
            critical("security_type_enum", "ExpectColumnValuesToBeInSet",
                     f"FIX SecurityType(167) is one the dialect prices: {FIX_SECURITY_TYPES}",
                     column="security_type", value_set=FIX_SECURITY_TYPES),
            critical("last_qty_positive", "ExpectColumnValuesToBeBetween", "LastQty(32) > 0",
                     column="last_qty", min_value=0, strict_min=True),
            critical("last_px_positive", "ExpectColumnValuesToBeBetween", "LastPx(31) > 0",
                     column="last_px", min_value=0, strict_min=True),
            critical("order_qty_positive", "ExpectColumnValuesToBeBetween", "OrderQty(38) > 0",
                     column="order_qty", min_value=0, strict_min=True),
            critical("leaves_qty_non_negative", "ExpectColumnValuesToBeBetween", "LeavesQty(151) >= 0",
                     column="leaves_qty", min_value=0),
        ],
    )


def _pb_confirms(ctx: GateContext, table: str) -> Dataset:
    return Dataset(
        name=table, sql=f"select * from {table}", key_columns=("_source_file", "_source_line", "trade_id"),
        checks=[
            *_common_trade_checks(ctx, table, "trade_date", ["prime_broker", "trade_id", "trade_date", "account_number",
                                                             "instrument_id", "asset_class", "side", "quantity", "price"]),
            *_allocation_checks(),
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
