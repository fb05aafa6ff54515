# ruff: noqa: S608 - this module is SQL text over fixed identifiers; values go through sql_literal / sql_dates
"""The ``marts`` gate: after dbt, before the models and the pushes.

Runs against the warehouse, read-only, on the marts the models and the pushes read: keys unique and
present, referential integrity to ``dim_households``, value ranges (no negative AUM, fees or
revenue; feature ranges), feature null rates (over all cutoffs: critical; at the latest cutoff, the
one scoring uses: warning), freshness of each source against the run's logical time, and per
business date the reconciliation match rate and the open-break volume. Domains: ``customer``
(nightly) and ``trading`` (intraday); default both; ``identity`` (the nightly, after identity
resolution): no person in two households, no giant person or household (critical), and the
person-size distribution against the previous resolution run (warning). The trading marts are checked for the run's
business dates (``business_dates``, e.g. the landing report's; default the latest business date in
``fct_recon_summary``: "the day"; ``"all"`` for every date), so the intraday gate costs one day of
trades, not the whole history. Surrogate keys (``household_month_id``, ``feature_key``) are left to
dbt's own ``unique`` tests, which ran in the build; the gate checks the natural keys the models use.
"""

from __future__ import annotations

import northstar.warehouse
from expectations.checks import Dataset, critical, duplicate_keys, offending_rows, pct, sql_dates, warning
from expectations.runner import GateContext, Plan
from northstar.errors import WarehouseMissing
from northstar.warehouse import relation

DOMAINS = ("customer", "trading", "identity")
DEFAULT_DOMAINS = ("customer", "trading")  # identity only where identity resolution ran (the nightly asks for it)
CUSTOMER_TABLES = ("dim_households", "dim_advisors", "fct_interactions", "fct_household_months", "fct_household_features")
IDENTITY_TABLES = ("dim_persons", "dim_resolved_households")
TRADING_TABLES = ("fct_internal_executions", "fct_broker_executions", "fct_prime_broker_confirms",
                  "fct_trade_matches", "fct_trade_breaks", "fct_recon_summary")
SEGMENT_FEATURES_COUNTS = ("calls_90d", "calls_365d", "emails_90d", "emails_365d", "meetings_90d", "meetings_365d",
                           "cases_90d", "cases_365d", "complaints_90d", "complaints_365d", "open_cases_at_cutoff")
CORE_FEATURES = ("tenure_years", "fee_schedule_bps", "open_account_count", "aum_at_cutoff", "aum_avg_12m", "fees_12m",
                 "calls_365d", "emails_365d", "meetings_365d")
SPARSE_FEATURES = ("aum_growth_12m", "fee_bps_trailing_12m", "days_since_last_interaction")


def plan(ctx: GateContext) -> Plan:
    database = ctx.cfg.paths.warehouse
    if not northstar.warehouse.warehouse_built(ctx.cfg):  # nothing built yet: one line for the operator
        raise WarehouseMissing(f"no warehouse at {database}: run the pipeline (or `python -m northstar demo`) first")
    domains = list(ctx.options.get("domains") or DEFAULT_DOMAINS)
    unknown = sorted(set(domains) - set(DOMAINS))
    if unknown:
        raise ValueError(f"unknown marts domains {unknown}; one of {DOMAINS}")
    wanted = [*(CUSTOMER_TABLES if "customer" in domains else ()), *(TRADING_TABLES if "trading" in domains else ()),
              *(IDENTITY_TABLES if "identity" in domains else ())]
    dates = ctx.options.get("business_dates")
    with northstar.warehouse.open_warehouse(read_only=True, cfg=ctx.cfg) as engine:
        present = engine.present()
        location = engine.location
        if dates in ("all", ["all"]):
            dates = "all"
        elif not dates and "trading" in domains and "fct_recon_summary" in present:
            # no dates given (or a run that landed nothing new): the latest business date, "the day"
            latest = engine.scalar("select max(business_date) from {fct_recon_summary}")
            dates = [latest.isoformat()] if latest else "all"
    ctx.options["business_dates"] = dates or "all"
    ctx.batch.update({"warehouse": str(location), "domains": domains, "as_of": ctx.as_of.isoformat(),
                      "missing_tables": sorted(set(wanted) - present),
                      "business_dates": ctx.options["business_dates"] if "trading" in domains else None})
    presence = " union all ".join(
        f"select '{name}' as table_name, {str(name in present).lower()} as is_built" for name in wanted
    )
    datasets = [Dataset(
        name="marts_built", sql=presence, key_columns=("table_name",),
        checks=[critical("tables_built", "ExpectColumnValuesToBeInSet", "every mart the gate covers exists",
                         column="is_built", value_set=[True])],
    )]
    builders = {**_CUSTOMER, **_TRADING, **_IDENTITY}
    for name in wanted:
        if name in present:
            datasets.extend(builders[name](ctx))
    if "customer" in domains:
        datasets.extend(_customer_freshness(ctx, present))
    if "trading" in domains:
        datasets.append(_trading_freshness(ctx, present))
    return Plan(database=database, datasets=datasets, engine=ctx.cfg.engine)


def _on_dates(ctx: GateContext, table: str) -> str:
    dates = ctx.options.get("business_dates")
    if not dates or dates == "all":
        return f"select * from {relation(table)}"
    return f"select * from {relation(table)} where business_date in {sql_dates(dates)}"


def _keys(name: str, source: str, keys: list[str], what: str, check: str,
          references_households: bool = False) -> list[Dataset]:
    """Key uniqueness (and household references) of a big mart, each as a dataset of offending rows
    (one query per check; see ``checks.offending_rows``)."""
    datasets = [duplicate_keys(name, source, keys, check, f"{what} is unique ({', '.join(keys)}): no key has two rows")]
    if references_households:
        shown = ", ".join(keys) if "household_id" in keys else ", ".join([*keys, "household_id"])
        datasets.append(offending_rows(
            name.removesuffix("_keys") + "_unknown_households",
            f"select {shown} from {source} where household_id is not null and household_id not in "
            f"(select household_id from {relation('dim_households')} where household_id is not null)",
            "household_id_in_dim_households", "every household_id exists in dim_households",
        ))
    return datasets


def _dated(ctx: GateContext, table: str) -> str:
    return f"({_on_dates(ctx, table)}) as dated"


def _unique(column: str, what: str):
    return critical(f"{column}_unique", "ExpectColumnValuesToBeUnique", f"{what} is unique", column=column)


def _not_null(column: str, severity=critical):
    return severity(f"{column}_not_null", "ExpectColumnValuesToNotBeNull", f"{column} is never null", column=column)


def _non_negative(column: str, severity=critical):
    return severity(f"{column}_non_negative", "ExpectColumnValuesToBeBetween", f"{column} >= 0", column=column, min_value=0)


def _dim_households(ctx: GateContext) -> list[Dataset]:
    return [*_keys("dim_households_keys", relation("dim_households"), ["household_id"], "the household key",
                  "household_id_unique"), Dataset(
        name="dim_households", sql=f"select * from {relation('dim_households')}", key_columns=("household_id",),
        checks=[
            _not_null("household_id"),
            critical("has_households", "ExpectTableRowCountToBeBetween", "at least one household", min_value=1),
            _not_null("has_analytics_consent", warning),
            warning("fee_schedule_bps_range", "ExpectColumnValuesToBeBetween", "fee schedule between 0 and 300 bps",
                    column="fee_schedule_bps", min_value=0, max_value=300),
        ],
    )]


def _dim_advisors(ctx: GateContext) -> list[Dataset]:
    return [Dataset(name="dim_advisors", sql=f"select * from {relation('dim_advisors')}", key_columns=("advisor_id",),
                    checks=[_unique("advisor_id", "the advisor key"), _not_null("advisor_id")])]


def _fct_interactions(ctx: GateContext) -> list[Dataset]:
    return [*_keys("fct_interactions_keys", relation("fct_interactions"), ["interaction_id"], "the interaction key",
                  "interaction_id_unique", references_households=True)]


def _fct_household_months(ctx: GateContext) -> list[Dataset]:
    keys = _keys("fct_household_months_keys", relation("fct_household_months"), ["household_id", "month_end_on"],
                 "one row per household and month", "household_month_unique", references_households=True)
    return [*keys, Dataset(
        name="fct_household_months", sql=f"select * from {relation('fct_household_months')}",
        key_columns=("household_id", "month_end_on"),
        checks=[
            _not_null("household_id"),
            critical("aum_non_negative", "ExpectColumnValuesToBeBetween", "AUM is never negative", column="aum", min_value=0),
            _non_negative("fees_billed"),
            _non_negative("revenue"),
        ],
    )]


def _fct_household_features(ctx: GateContext) -> list[Dataset]:
    t = ctx.thresholds
    keys = ("household_id", "cutoff_on")
    ranges = [
        _non_negative("tenure_years"),
        _non_negative("aum_at_cutoff"),
        _non_negative("aum_avg_3m"),
        _non_negative("aum_avg_12m"),
        _non_negative("fees_3m"),
        _non_negative("fees_12m"),
        _non_negative("open_account_count"),
        _non_negative("days_since_last_interaction"),
        *[_non_negative(column) for column in SEGMENT_FEATURES_COUNTS],
        critical("aum_growth_12m_range", "ExpectColumnValuesToBeBetween", "AUM growth over 12 months is at least -100%",
                 column="aum_growth_12m", min_value=-1),
        warning("fee_bps_trailing_12m_range", "ExpectColumnValuesToBeBetween", "trailing fees between 0 and 500 bps of AUM",
                column="fee_bps_trailing_12m", min_value=0, max_value=500),
    ]
    null_rates = [
        *[critical(f"{column}_null_rate", "ExpectColumnProportionOfNonNullValuesToBeBetween",
                   f"{column} is null in at most {pct(t.marts_max_core_feature_null_rate)} of rows",
                   column=column, min_value=1 - t.marts_max_core_feature_null_rate) for column in CORE_FEATURES],
        *[critical(f"{column}_null_rate", "ExpectColumnProportionOfNonNullValuesToBeBetween",
                   f"{column} is null in at most {pct(t.marts_max_feature_null_rate)} of rows",
                   column=column, min_value=1 - t.marts_max_feature_null_rate) for column in SPARSE_FEATURES],
    ]
    latest_null_rates = [
        warning(f"{column}_null_rate_latest_cutoff", "ExpectColumnProportionOfNonNullValuesToBeBetween",
                f"{column} is null in at most {pct(t.marts_max_core_feature_null_rate)} of rows at the latest cutoff",
                column=column, min_value=1 - t.marts_max_core_feature_null_rate) for column in CORE_FEATURES
    ]
    return [
        *_keys("fct_household_features_keys", relation("fct_household_features"), ["household_id", "cutoff_on"],
              "one row per household and cutoff", "household_cutoff_unique", references_households=True),
        Dataset(
            name="fct_household_features", sql=f"select * from {relation('fct_household_features')}", key_columns=keys,
            checks=[
                _not_null("household_id"),
                _not_null("cutoff_on"),
                *ranges,
                *null_rates,
            ],
        ),
        Dataset(
            name="fct_household_features_latest_cutoff",
            sql=f"select * from {relation('fct_household_features')} "
                f"where cutoff_on = (select max(cutoff_on) from {relation('fct_household_features')})",
            key_columns=keys,
            checks=latest_null_rates,
        ),
    ]


def _fct_internal_executions(ctx: GateContext) -> list[Dataset]:
    return [*_keys("fct_internal_executions_keys", _dated(ctx, "fct_internal_executions"), ["trade_record_id"],
                  "the trade record key (one per booked allocation)", "trade_record_id_unique"), Dataset(
        name="fct_internal_executions", sql=_on_dates(ctx, "fct_internal_executions"),
        key_columns=("trade_record_id", "trade_id"),
        checks=[
            _not_null("business_date"),
            critical("quantity_positive", "ExpectColumnValuesToBeBetween", "quantity > 0",
                     column="quantity", min_value=0, strict_min=True),
            critical("price_positive", "ExpectColumnValuesToBeBetween", "price > 0", column="price", min_value=0,
                     strict_min=True),
        ],
    )]


def _fct_broker_executions(ctx: GateContext) -> list[Dataset]:
    return [*_keys("fct_broker_executions_keys", _dated(ctx, "fct_broker_executions"), ["execution_id"],
                  "the execution key", "execution_id_unique"), Dataset(
        # order-state reports (New, Canceled, ...; is_fill false) carry a fill quantity of 0 or none
        name="fct_broker_executions",
        sql=f"select *, case when is_fill then fill_quantity end as fill_quantity_of_fills "
            f"from ({_on_dates(ctx, 'fct_broker_executions')}) as executions",
        key_columns=("execution_id",),
        checks=[
            critical("fill_quantity_positive", "ExpectColumnValuesToBeBetween",
                     "fill quantity > 0 on every fill (is_fill; other execution reports may carry 0)",
                     column="fill_quantity_of_fills", min_value=0, strict_min=True),
            critical("fill_quantity_non_negative", "ExpectColumnValuesToBeBetween",
                     "fill quantity is never negative, on any execution report", column="fill_quantity", min_value=0),
        ],
    )]


def _fct_prime_broker_confirms(ctx: GateContext) -> list[Dataset]:
    return [*_keys("fct_prime_broker_confirms_keys", _dated(ctx, "fct_prime_broker_confirms"), ["confirm_id"],
                  "the confirm key", "confirm_id_unique")]


def _fct_trade_matches(ctx: GateContext) -> list[Dataset]:
    return [*_keys("fct_trade_matches_keys", _dated(ctx, "fct_trade_matches"), ["match_key"], "the match key",
                  "match_key_unique"), Dataset(
        name="fct_trade_matches", sql=_on_dates(ctx, "fct_trade_matches"), key_columns=("match_key",),
        checks=[
            critical("match_status_enum", "ExpectColumnValuesToBeInSet", "match status is matched or break",
                     column="match_status", value_set=["matched", "break"]),
        ],
    )]


def _fct_trade_breaks(ctx: GateContext) -> list[Dataset]:
    return [*_keys("fct_trade_breaks_keys", relation("fct_trade_breaks"), ["break_key"],
                  "the break key (one ServiceNow incident each)", "break_key_unique"), Dataset(
        name="fct_trade_breaks", sql=f"select * from {relation('fct_trade_breaks')}", key_columns=("break_key", "business_date"),
        checks=[
            _not_null("break_type"),
            critical("status_enum", "ExpectColumnValuesToBeInSet", "break status is open or cleared",
                     column="status", value_set=["open", "cleared"]),
            critical("open_breaks_have_correlation_id", "UnexpectedRowsExpectation",
                     "every open break has the incident correlation id the ServiceNow push keys on",
                     unexpected_rows_query="select break_key, business_date, break_type from {batch} "
                     "where status = 'open' and incident_correlation_id is null"),
        ],
    )]


def _fct_recon_summary(ctx: GateContext) -> list[Dataset]:
    t = ctx.thresholds
    dates = ctx.options.get("business_dates")
    where = f"where business_date in {sql_dates(dates)}" if dates != "all" else ""
    return [Dataset(
        name="recon_by_business_date",
        sql=f"""
            select
                business_date,
                sum(items_compared) as items_compared,
                sum(items_matched) as items_matched,
                sum(open_breaks) as open_breaks,
                sum(items_matched) / nullif(sum(items_compared), 0) as match_rate,
                sum(open_breaks) / nullif(sum(items_compared), 0) as break_ratio
            from {relation('fct_recon_summary')}
            {where}
            group by business_date
        """,
        key_columns=("business_date", "items_compared", "open_breaks"),
        checks=[
            critical("match_rate", "ExpectColumnValuesToBeBetween",
                     f"at least {pct(t.marts_min_match_rate)} of items match on each business date",
                     column="match_rate", min_value=t.marts_min_match_rate, max_value=1),
            warning("match_rate_warn", "ExpectColumnValuesToBeBetween",
                    f"at least {pct(t.marts_warn_match_rate)} of items match on each business date",
                    column="match_rate", min_value=t.marts_warn_match_rate, max_value=1),
            critical("break_volume", "ExpectColumnValuesToBeBetween",
                     f"open breaks are at most {pct(t.marts_max_break_ratio)} of items compared on each business date",
                     column="break_ratio", min_value=0, max_value=t.marts_max_break_ratio),
            warning("break_volume_warn", "ExpectColumnValuesToBeBetween",
                    f"open breaks are at most {pct(t.marts_warn_break_ratio)} of items compared on each business date",
                    column="break_ratio", min_value=0, max_value=t.marts_warn_break_ratio),
        ],
    )]


def _freshness(name: str, sql: str, error_after: float, warn_after: float, unit: str) -> Dataset:
    return Dataset(
        name=name, sql=sql, key_columns=("source", "latest_at"),
        checks=[
            critical("age", "ExpectColumnMaxToBeBetween",
                     f"the newest data of each source is at most {error_after:g} {unit} old at the run's logical time",
                     column="age", max_value=error_after),
            warning("age_warn", "ExpectColumnMaxToBeBetween",
                    f"the newest data of each source is at most {warn_after:g} {unit} old at the run's logical time",
                    column="age", max_value=warn_after),
        ],
    )


def _age_hours(column: str, as_of: str) -> str:
    seconds = northstar.warehouse.seconds_between(f"max({column})", f"timestamp '{as_of}'")
    return f"coalesce({seconds} / 3600.0, 1e9)"


def _customer_freshness(ctx: GateContext, present: set[str]) -> list[Dataset]:
    t = ctx.thresholds
    as_of = ctx.as_of.isoformat(sep=" ")
    # billing arrives monthly: age in days of the newest statement month
    age_days = northstar.warehouse.days_between("max(month_end_on)", f"cast(timestamp '{as_of}' as date)")
    billing = (f"select 'billing' as source, cast(max(month_end_on) as string) as latest_at, "
               f"coalesce({age_days}, 1e9) as age "
               f"from {relation('fct_household_months')}") if "fct_household_months" in present else \
        "select 'billing' as source, null as latest_at, 1e9 as age"
    # Salesforce: when the newest extraction landed (the staging view reads the landing files)
    if "stg_salesforce__accounts" in present:
        salesforce = ("select 'salesforce' as source, cast(max(extracted_at) as string) as latest_at, "
                      f"{_age_hours('extracted_at', as_of)} as age from {relation('stg_salesforce__accounts')}")
    else:
        salesforce = "select 'salesforce' as source, null as latest_at, 1e9 as age"
    return [
        _freshness("freshness_billing", billing, t.marts_billing_error_after_days, t.marts_billing_warn_after_days,
                   "days"),
        _freshness("freshness_salesforce", salesforce, t.marts_salesforce_error_after_hours,
                   t.marts_salesforce_warn_after_hours, "hours"),
    ]


def _trading_freshness(ctx: GateContext, present: set[str]) -> Dataset:
    t = ctx.thresholds
    as_of = ctx.as_of.isoformat(sep=" ")
    parts = []
    for source, table in (("trade_book", "fct_internal_executions"), ("fix_drop_copies", "fct_broker_executions"),
                          ("prime_broker_confirms", "fct_prime_broker_confirms")):
        if table in present:
            parts.append(f"select '{source}' as source, cast(max(landed_at) as string) as latest_at, "
                         f"{_age_hours('landed_at', as_of)} as age from {relation(table)}")
        else:
            parts.append(f"select '{source}' as source, null as latest_at, 1e9 as age")
    return _freshness("freshness_trading", " union all ".join(parts), t.marts_trades_error_after_hours,
                      t.marts_trades_warn_after_hours, "hours")


_CUSTOMER = {
    "dim_households": _dim_households,
    "dim_advisors": _dim_advisors,
    "fct_interactions": _fct_interactions,
    "fct_household_months": _fct_household_months,
    "fct_household_features": _fct_household_features,
}
_TRADING = {
    "fct_internal_executions": _fct_internal_executions,
    "fct_broker_executions": _fct_broker_executions,
    "fct_prime_broker_confirms": _fct_prime_broker_confirms,
    "fct_trade_matches": _fct_trade_matches,
    "fct_trade_breaks": _fct_trade_breaks,
    "fct_recon_summary": _fct_recon_summary,
}


# --- identity (after python -m identity resolve and dbt's identity_publish) -------------------------


def _dim_persons(ctx: GateContext) -> list[Dataset]:
    t = ctx.thresholds
    records = relation("person_records")
    # a person placed through their records' Accounts into the resolved households the push reads:
    # more than one means the grouping the consent rule relies on is broken
    placed = (f"select p.person_id, r.resolved_household_id from {records} as p "
              f"join {relation('dim_households')} as h on p.account_id = h.account_id "
              f"join {relation('dim_resolved_households')} as r on r.household_id = h.household_id")
    return [
        duplicate_keys("dim_persons_keys", relation("dim_persons"), ["person_id"], "person_id_unique",
                       "the person key is unique: one row per person"),
        offending_rows(
            "identity_persons_in_two_households",
            f"select person_id, count(distinct resolved_household_id) as households from ({placed}) as placed "
            "group by person_id having count(distinct resolved_household_id) > 1",
            "no_person_in_two_households", "no person belongs to two (resolved) households"),
        offending_rows(
            "identity_giant_persons",
            f"select person_id, count(*) as records from {records} group by person_id "
            f"having count(*) > {int(t.marts_identity_giant_person_records)}",
            "no_giant_person",
            f"no person holds more than {t.marts_identity_giant_person_records} records (a giant cluster: "
            "the linker chained strangers)"),
    ]


def _dim_resolved_households(ctx: GateContext) -> list[Dataset]:
    t = ctx.thresholds
    runs = relation("resolution_runs")
    shares = ", ".join(f"persons_of_size_{k} * 1.0 / nullif(persons, 0) as share_{k}" for k in ("1", "2", "3", "4_plus"))
    shift = " + ".join(f"abs(latest.share_{k} - previous.share_{k})" for k in ("1", "2", "3", "4_plus"))
    return [
        duplicate_keys("dim_resolved_households_keys", relation("dim_resolved_households"), ["household_id"],
                       "household_id_unique", "one row per CRM household"),
        offending_rows(
            "identity_giant_households",
            f"select resolved_household_id, count(*) as accounts from {relation('dim_resolved_households')} "
            f"group by resolved_household_id having count(*) > {int(t.marts_identity_giant_household_accounts)}",
            "no_giant_household",
            f"no resolved household spans more than {t.marts_identity_giant_household_accounts} Accounts"),
        Dataset(
            name="identity_person_sizes",
            # the latest resolution run against the one before it (no row before a second run)
            sql=(f"with runs as (select resolution_run_id, {shares}, row_number() over "
                 "(order by resolved_at desc, resolution_run_id desc) as recency "
                 f"from {runs} where persons_of_size_1 is not null), "
                 "latest as (select * from runs where recency = 1), previous as (select * from runs where recency = 2) "
                 "select latest.resolution_run_id, previous.resolution_run_id as previous_run_id, "
                 f"({shift}) / 2 as size_shift from latest join previous on true"),
            key_columns=("resolution_run_id", "previous_run_id"),
            checks=[warning(
                "person_size_distribution_stable", "ExpectColumnValuesToBeBetween",
                f"the shares of persons with 1, 2, 3, 4+ records moved by at most "
                f"{pct(t.marts_identity_warn_size_shift)} (total variation) since the previous resolution run",
                column="size_shift", min_value=0, max_value=t.marts_identity_warn_size_shift)],
        ),
    ]


_IDENTITY = {
    "dim_persons": _dim_persons,
    "dim_resolved_households": _dim_resolved_households,
}
