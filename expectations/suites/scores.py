# ruff: noqa: S608 - this module is SQL text over fixed identifiers; values go through sql_literal / sql_list
"""The ``scores`` gate: after scoring, before any push to Salesforce or ServiceNow.

On ``scores.household_scores`` for one scoring run (``scoring_run_id``, default the latest by
``scored_at``): no nulls in any contract column, one row per household, every household known,
ranges (``value_percentile`` 0..100, ``attrition_probability`` 0..1, non-negative revenue and CLV),
the four segments only; and against the **last pushed run** — the latest earlier scoring run
(by ``scored_at``) whose scores gate passed, read from ``quality.gate_results`` — the change in
households scored, each segment's share, and the population stability index (PSI) of ``clv`` and
``attrition_probability`` over the baseline's deciles. The first run has no baseline: the shift
checks are skipped and ``batch.baseline_scoring_run_id`` is null.

On ``scores.break_scores`` (when the table exists, or ``kinds`` asks for it): ranges of
``anomaly_score`` (0..1) and ``anomaly_rank`` (>= 1), no nulls, one row per break.
"""

from __future__ import annotations

import northstar.warehouse
from expectations.checks import Dataset, critical, duplicate_keys, pct, sql_literal, warning
from expectations.runner import GateContext, Plan
from northstar.errors import WarehouseMissing
from northstar.warehouse import relation

SEGMENTS = ["High-Value Growth Potential", "At-Risk Retention Priority", "Core - Maintain", "Service Efficiently"]
HOUSEHOLD_COLUMNS = ["scoring_run_id", "as_of_date", "scored_at", "household_id", "predicted_revenue_12m", "clv",
                     "value_percentile", "attrition_probability", "segment", "top_drivers", "clv_model_version",
                     "churn_model_version", "clv_mlflow_run_id", "churn_mlflow_run_id", "dbt_invocation_id",
                     "feature_snapshot_hash"]
BREAK_COLUMNS = ["scoring_run_id", "scored_at", "break_key", "anomaly_score", "anomaly_rank", "model_version",
                 "mlflow_run_id"]
# lineage columns: a missing one is recorded (warning), it does not make a score wrong
LINEAGE_COLUMNS = {"clv_mlflow_run_id", "churn_mlflow_run_id", "dbt_invocation_id", "feature_snapshot_hash",
                   "mlflow_run_id"}
SHIFTED_SCORES = ("clv", "attrition_probability")


def _latest_run(engine, table: str) -> str | None:
    found = engine.rows(f"select scoring_run_id from {{{table}}} order by scored_at desc, scoring_run_id desc limit 1")
    return found[0][0] if found else None


def _passed_scores_gates(cfg) -> set[str]:
    """The scoring runs whose scores gate passed (no critical failure), from the control store's
    ``quality.gate_results`` (the DuckDB file on either engine)."""
    if not cfg.paths.warehouse.exists():
        return set()
    with northstar.warehouse.connect(read_only=True, cfg=cfg) as con:
        present = {f"{s}.{n}" for s, n in con.execute(
            "select table_schema, table_name from information_schema.tables").fetchall()}
        if "quality.gate_results" not in present:
            return set()
        return {row[0] for row in con.execute("""
            select scoring_run_id from (
                select
                    run_id,
                    max(json_extract_string(details, '$.batch.scoring_run_id')) as scoring_run_id,
                    bool_and(success or severity <> 'critical') as passed
                from quality.gate_results
                where gate = 'scores'
                group by run_id
            ) as gate_runs
            where passed and scoring_run_id is not null
        """).fetchall()}


def last_pushed_run(engine, current_run: str, passed: set[str]) -> str | None:
    """The latest scoring run scored before ``current_run`` whose scores gate passed (``passed``)."""
    if not passed:
        return None
    runs = engine.rows("select scoring_run_id, max(scored_at) from {household_scores} group by scoring_run_id")
    current = max((at for run, at in runs if run == current_run and at is not None), default=None)
    if current is None:
        return None
    earlier = [(at, run) for run, at in runs if run in passed and run != current_run and at is not None and at < current]
    return max(earlier)[1] if earlier else None


def plan(ctx: GateContext) -> Plan:
    database = ctx.cfg.paths.warehouse
    if not northstar.warehouse.warehouse_built(ctx.cfg):  # nothing built yet: one line for the operator
        raise WarehouseMissing(f"no warehouse at {database}: run the pipeline (or `python -m northstar demo`) first")
    household_run = break_run = baseline = None
    with northstar.warehouse.open_warehouse(read_only=True, cfg=ctx.cfg) as engine:
        tables = engine.present()
        location = engine.location
        if "household_scores" in tables:
            household_run = ctx.options.get("scoring_run_id") or _latest_run(engine, "household_scores")
            if household_run:
                baseline = ctx.options.get("baseline_scoring_run_id") or last_pushed_run(
                    engine, household_run, _passed_scores_gates(ctx.cfg))
        if "break_scores" in tables:
            break_run = ctx.options.get("break_scoring_run_id") or _latest_run(engine, "break_scores")
    kinds = list(ctx.options.get("kinds") or (["household"] + (["break"] if "break_scores" in tables else [])))
    ctx.batch.update({
        "warehouse": str(location),
        "kinds": kinds,
        "scoring_run_id": household_run if "household" in kinds else None,
        "baseline_scoring_run_id": baseline if "household" in kinds else None,
        "break_scoring_run_id": break_run if "break" in kinds else None,
    })
    required = [(relation("household_scores"), household_run) for _ in [0] if "household" in kinds]
    required += [(relation("break_scores"), break_run) for _ in [0] if "break" in kinds]
    presence = " union all ".join(
        f"select {sql_literal(name)} as table_name, {str(run is not None).lower()} as has_scoring_run"
        for name, run in required
    ) or "select 'none' as table_name, true as has_scoring_run"
    datasets = [Dataset(
        name="scoring_runs_present", sql=presence, key_columns=("table_name",),
        checks=[critical("scoring_run_present", "ExpectColumnValuesToBeInSet",
                         "the scores table exists and holds the scoring run to validate",
                         column="has_scoring_run", value_set=[True])],
    )]
    if "household" in kinds and household_run:
        datasets.append(_household_scores(ctx, household_run, tables))
        run = sql_literal(household_run)
        datasets.append(duplicate_keys(
            "household_scores_keys", f"(select * from {relation('household_scores')} where scoring_run_id = {run}) as scored",
            ["household_id"], "household_id_unique", "one score per household in the run",
        ))
        if baseline:
            datasets.extend(_shift(ctx, household_run, baseline))
    if "break" in kinds and break_run:
        datasets.append(_break_scores(ctx, break_run, tables))
        scored = f"(select * from {relation('break_scores')} where scoring_run_id = {sql_literal(break_run)}) as scored"
        datasets.append(duplicate_keys("break_scores_keys", scored, ["break_key"], "break_key_unique",
                                       "one score per break in the run"))
        datasets.append(duplicate_keys("break_scores_ranks", scored, ["anomaly_rank"], "anomaly_rank_unique",
                                       "ranks are not shared"))
    return Plan(database=database, datasets=datasets, engine=ctx.cfg.engine)


def _household_scores(ctx: GateContext, run: str, tables: set[str]) -> Dataset:
    checks = [
        critical("has_rows", "ExpectTableRowCountToBeBetween", "the scoring run scored at least one household",
                 min_value=1),
        critical("schema", "ExpectTableColumnsToMatchSet", "household_scores has every contract column",
                 column_set=HOUSEHOLD_COLUMNS, exact_match=False),
        *[(warning if column in LINEAGE_COLUMNS else critical)(
            f"{column}_not_null", "ExpectColumnValuesToNotBeNull", f"{column} is never null (null rate zero)",
            column=column) for column in HOUSEHOLD_COLUMNS],
        critical("predicted_revenue_12m_non_negative", "ExpectColumnValuesToBeBetween",
                 "predicted 12-month revenue >= 0", column="predicted_revenue_12m", min_value=0),
        critical("clv_non_negative", "ExpectColumnValuesToBeBetween", "CLV >= 0", column="clv", min_value=0),
        critical("value_percentile_range", "ExpectColumnValuesToBeBetween", "value percentile between 0 and 100",
                 column="value_percentile", min_value=0, max_value=100),
        critical("attrition_probability_range", "ExpectColumnValuesToBeBetween",
                 "attrition probability between 0 and 1", column="attrition_probability", min_value=0, max_value=1),
        critical("segment_enum", "ExpectColumnValuesToBeInSet", f"segment is one of {SEGMENTS}",
                 column="segment", value_set=SEGMENTS),
        warning("three_top_drivers", "UnexpectedRowsExpectation", "top_drivers holds three drivers joined by '; '",
                unexpected_rows_query="select household_id, top_drivers from {batch} "
                f"where {northstar.warehouse.split_count('top_drivers', chr(39) + '; ' + chr(39))} <> 3"),
        critical("one_feature_cutoff", "ExpectColumnUniqueValueCountToBeBetween",
                 "the run scored one feature cutoff (as_of_date)", column="as_of_date", min_value=1, max_value=1),
    ]
    if "dim_households" in tables:
        checks.append(critical(
            "household_id_in_dim_households", "UnexpectedRowsExpectation",
            "every scored household exists in dim_households",
            unexpected_rows_query="select household_id from {batch} where household_id not in "
            f"(select household_id from {relation('dim_households')} where household_id is not null)",
        ))
    return Dataset(
        name="household_scores",
        sql=f"select * from {relation('household_scores')} where scoring_run_id = {sql_literal(run)}",
        key_columns=("household_id", "segment"),
        checks=checks,
    )


def _shift(ctx: GateContext, run: str, baseline: str) -> list[Dataset]:
    t = ctx.thresholds
    cur, base = sql_literal(run), sql_literal(baseline)
    segment_sql = f"""
        with shares as (
            select
                segment,
                count(*) filter (where scoring_run_id = {cur}) / nullif(sum(count(*) filter (where scoring_run_id = {cur})) over (), 0)
                    as current_share,
                count(*) filter (where scoring_run_id = {base}) / nullif(sum(count(*) filter (where scoring_run_id = {base})) over (), 0)
                    as baseline_share
            from {relation('household_scores')}
            where scoring_run_id in ({cur}, {base})
            group by segment
        )
        select segment, current_share, baseline_share, abs(current_share - baseline_share) as share_shift from shares
    """
    edges = ", ".join(f"{i / t.scores_psi_bins:g}" for i in range(1, t.scores_psi_bins))
    psi_parts = [f"""
        select * from (
            with edges as (
                select {northstar.warehouse.quantiles(score, edges)} as q
                from {relation('household_scores')} where scoring_run_id = {base}
            ),
            binned as (
                select scoring_run_id = {cur} as is_current, {northstar.warehouse.count_below('edges.q', score)} as bin
                from {relation('household_scores')} cross join edges
                where scoring_run_id in ({cur}, {base})
            ),
            bins as ({northstar.warehouse.numbers(t.scores_psi_bins, 'bin')}),
            counts as (
                select
                    bins.bin,
                    count(binned.bin) filter (where binned.is_current) as current_n,
                    count(binned.bin) filter (where not binned.is_current) as baseline_n
                from bins left join binned on binned.bin = bins.bin
                group by bins.bin
            ),
            shares as (
                select
                    greatest(current_n / sum(current_n) over (), 1e-4) as current_p,
                    greatest(baseline_n / sum(baseline_n) over (), 1e-4) as baseline_p
                from counts
            )
            select '{score}' as score, sum((current_p - baseline_p) * ln(current_p / baseline_p)) as psi from shares
        )
    """ for score in SHIFTED_SCORES]
    count_sql = f"""
        select
            count(*) filter (where scoring_run_id = {cur}) as households_scored,
            count(*) filter (where scoring_run_id = {base}) as households_scored_baseline,
            abs(count(*) filter (where scoring_run_id = {cur}) / nullif(count(*) filter (where scoring_run_id = {base}), 0) - 1)
                as row_count_change
        from {relation('household_scores')}
        where scoring_run_id in ({cur}, {base})
    """
    psi_sql = " union all ".join(psi_parts)
    # the largest shift is the observed value (a number to trend in quality.gate_results); on
    # failure the runner lists every segment / score with its own value
    segment_rows = f"select * from ({segment_sql}) as shares order by share_shift desc"
    psi_rows = f"select * from ({psi_sql}) as distances order by psi desc"
    return [
        Dataset(
            name="segment_shares_vs_last_pushed", sql=segment_sql,
            checks=[
                critical("segment_share_shift", "ExpectColumnMaxToBeBetween",
                         f"no segment's share moved more than {pct(t.scores_max_segment_share_shift)} (absolute) "
                         f"from the last pushed run {baseline}",
                         column="share_shift", min_value=0, max_value=t.scores_max_segment_share_shift,
                         samples_sql=segment_rows),
                warning("segment_share_shift_warn", "ExpectColumnMaxToBeBetween",
                        f"no segment's share moved more than {pct(t.scores_warn_segment_share_shift)} (absolute)",
                        column="share_shift", min_value=0, max_value=t.scores_warn_segment_share_shift,
                        samples_sql=segment_rows),
            ],
        ),
        Dataset(
            name="score_distribution_vs_last_pushed", sql=psi_sql,
            checks=[
                critical("psi", "ExpectColumnMaxToBeBetween",
                         f"PSI of each score against the last pushed run {baseline} is at most {t.scores_max_psi:g}",
                         column="psi", min_value=0, max_value=t.scores_max_psi, samples_sql=psi_rows),
                warning("psi_warn", "ExpectColumnMaxToBeBetween",
                        f"PSI of each score against the last pushed run is at most {t.scores_warn_psi:g}",
                        column="psi", min_value=0, max_value=t.scores_warn_psi, samples_sql=psi_rows),
            ],
        ),
        Dataset(
            name="households_scored_vs_last_pushed", sql=count_sql,
            key_columns=("households_scored", "households_scored_baseline"),
            checks=[critical("row_count_change", "ExpectColumnMaxToBeBetween",
                             f"households scored within {pct(t.scores_max_row_count_change)} of the last pushed run",
                             column="row_count_change", min_value=0, max_value=t.scores_max_row_count_change)],
        ),
    ]


def _break_scores(ctx: GateContext, run: str, tables: set[str]) -> Dataset:
    checks = [
        # a day without open breaks scores none; the push must still resolve cleared incidents
        warning("has_rows", "ExpectTableRowCountToBeBetween", "the break scoring run scored at least one break",
                min_value=1),
        *[(warning if column in LINEAGE_COLUMNS else critical)(f"{column}_not_null", "ExpectColumnValuesToNotBeNull",
                                                                 f"{column} is never null", column=column)
          for column in BREAK_COLUMNS],
        critical("anomaly_score_range", "ExpectColumnValuesToBeBetween", "anomaly score between 0 and 1",
                 column="anomaly_score", min_value=0, max_value=1),
        critical("anomaly_rank_positive", "ExpectColumnValuesToBeBetween", "anomaly rank >= 1 (1 = most suspicious)",
                 column="anomaly_rank", min_value=1),
    ]
    if "fct_trade_breaks" in tables:
        checks.append(warning(
            "break_key_in_register", "UnexpectedRowsExpectation", "every scored break is in fct_trade_breaks",
            unexpected_rows_query="select break_key from {batch} where break_key not in "
            f"(select break_key from {relation('fct_trade_breaks')} where break_key is not null)",
        ))
    return Dataset(
        name="break_scores",
        sql=f"select * from {relation('break_scores')} where scoring_run_id = {sql_literal(run)}",
        key_columns=("break_key", "anomaly_rank"),
        checks=checks,
    )
