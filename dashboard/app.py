"""The KPI dashboard as code: three Vizro pages over the warehouse snapshot, never the warehouse.

Every dataset is a SQL query over ``<var>/dashboard/snapshot.duckdb`` registered with Vizro's data
manager as a *dynamic* source: it is re-read on each page load, so the page shows the snapshot the
last DAG run took (``dashboard.snapshot`` swaps the file atomically) without a restart. The server
holds no lock on the warehouse, so the pipeline's writers are never blocked by a reader.

Every chart says what it shows (its header) and the as-of time of its data (its own title line,
computed from the snapshot with the data). ``python -m dashboard serve`` runs it on 127.0.0.1.
"""

from __future__ import annotations

import logging

import pandas as pd
import plotly.graph_objects as go
import vizro.models as vm
import vizro.plotly.express as px
from vizro import Vizro
from vizro.figures import kpi_card
from vizro.managers import data_manager
from vizro.models.types import capture
from vizro.tables import dash_ag_grid

from dashboard.snapshot import snapshot_path
from northstar.settings import Settings, settings

log = logging.getLogger(__name__)

# --- data: one query per chart over the snapshot --------------------------------------------------

AS_OF = {
    "trades": "coalesce('business date ' || strftime(trades_as_of, '%Y-%m-%d'), 'no reconciliation yet')",
    "scores": "coalesce('scoring run ' || strftime(scores_as_of, '%Y-%m-%d %H:%M UTC'), 'no scoring run yet')",
    "gates": "coalesce('gate run ' || strftime(gates_as_of, '%Y-%m-%d %H:%M UTC'), 'no gate run yet')",
    "pushes": "coalesce('push ' || strftime(pushes_as_of, '%Y-%m-%d %H:%M UTC'), 'no push yet')",
    "snapshot": "'snapshot ' || strftime(snapshot_taken_at, '%Y-%m-%d %H:%M UTC')",
}

DATASETS: dict[str, tuple[str, str]] = {
    # name: (as-of kind, SQL over the snapshot)
    "trade_kpis": ("trades", """
        select
            (select sum(items_matched) / nullif(sum(items_compared), 0) from recon_daily
                where business_date = (select max(business_date) from recon_daily)) as latest_match_rate,
            (select count(*) from open_breaks) as open_breaks,
            (select count(*) from open_breaks where age_business_days > 5) as open_breaks_over_5_days,
            (select coalesce(sum(rows_quarantined), 0) from quarantine) as rows_quarantined
    """),
    "match_rate": ("trades", """
        select business_date, broker, match_rate, items_compared, items_matched
        from recon_daily order by business_date, broker
    """),
    "breaks_by_type": ("trades", """
        select break_type, broker, count(*) as open_breaks from open_breaks group by all order by break_type, broker
    """),
    "breaks_by_age": ("trades", """
        select age_bucket, broker, count(*) as open_breaks,
            case age_bucket when '0–1 days' then 1 when '1–3 days' then 2 when '3–5 days' then 3 else 4 end as bucket_order
        from open_breaks group by all order by bucket_order, broker
    """),
    "breaks_by_score": ("trades", """
        select anomaly_band, break_type, count(*) as open_breaks from open_breaks group by all
        order by anomaly_band, break_type
    """),
    "break_flow": ("trades", """
        select strftime(run_at, '%Y-%m-%d %H:%M') as run_time, breaks_opened, breaks_resolved
        from break_flow order by run_at
    """),
    "time_to_resolve": ("snapshot", """
        select r.incident_number, r.close_code, b.break_type,
            date_diff('minute', b.first_seen_at, r.resolved_at) / 60.0 as hours_to_resolve
        from incident_resolutions as r join break_register as b on b.break_key = r.break_key
        where r.resolved_at is not null
    """),
    "oldest_breaks": ("trades", """
        select incident_number, break_type, broker, business_date, age_business_days,
            round(anomaly_score, 3) as anomaly_score, round(notional_usd) as notional_usd, break_key
        from open_breaks order by age_business_days desc, business_date, break_key limit 20
    """),
    "quarantine": ("snapshot", """
        select reason_code, source, rows_quarantined from quarantine order by rows_quarantined desc
    """),
    "client_kpis": ("scores", """
        select sum(clv) as total_clv, median(clv) as median_clv, count(*) as households,
            sum(clv * attrition_probability) as clv_at_risk
        from household_scores
    """),
    "clv_by_segment": ("scores", """
        select segment, sum(clv) as total_clv, median(clv) as median_clv, count(*) as households
        from household_scores group by all order by total_clv desc
    """),
    "segment_transitions": ("scores", """
        select previous_segment, current_segment, households from segment_transitions
        order by previous_segment, current_segment
    """),
    "attrition_risk": ("scores", "select attrition_probability, segment from household_scores"),
    "clv_at_risk": ("scores", """
        select
            case
                when attrition_probability < 0.1 then '0–10%'
                when attrition_probability < 0.25 then '10–25%'
                when attrition_probability < 0.5 then '25–50%'
                else '50% or more'
            end as attrition_band,
            min(attrition_probability) as band_order,
            sum(clv) as clv_of_band,
            sum(clv * attrition_probability) as expected_clv_lost
        from household_scores group by 1 order by band_order
    """),
    "top_drivers": ("scores", r"""
        with parts as (
            select trim(unnest(string_split(top_drivers, ';'))) as driver from household_scores
            where top_drivers is not null
        ),
        named as (
            -- a driver reads '<input> <value> raises|lowers ...': group on the input and the direction
            select trim(regexp_replace(regexp_replace(driver, '[0-9$][0-9$.,%]*[A-Za-z]?', '', 'g'), '\s+', ' ', 'g'))
                as driver_text
            from parts where driver <> ''
        )
        select driver_text, count(*) as households from named group by 1 order by households desc limit 15
    """),
    "push_coverage": ("pushes", """
        select 'consenting households' as measure,
            count(*) filter (where has_analytics_consent) as households, 1 as step
        from household_scores
        union all
        select 'pushed to Salesforce', coalesce(max(households), 0), 2 from salesforce_pushed_households
        union all
        select 'failed or dead in the outbox',
            coalesce(sum(households) filter (where status in ('failed', 'dead')), 0), 3
        from salesforce_push
        order by step
    """),
    "model_versions": ("snapshot", """
        select model, version, registered_at, coalesce(aliases, '—') as aliases,
            coalesce(promotion_decision, 'pending') as promotion_decision,
            coalesce(promotion_reasons, '') as promotion_reasons
        from model_versions order by model, version
    """),
    "model_metrics": ("snapshot", """
        select model || ' v' || version || ' · ' || metric as model_metric, method, value
        from model_metrics order by model, version, metric, method
    """),
    "model_drift": ("scores", """
        select model || ' · ' || name as model_input, strftime(scored_at, '%Y-%m-%d %H:%M') as scoring_run,
            psi, status
        from model_drift order by psi desc
    """),
    "gate_runs": ("gates", """
        select run_id || ' · ' || gate as run_gate, min(validated_at) as validated_at,
            count(*) filter (where success) as passed,
            count(*) filter (where not success and severity = 'critical') as failed_critical,
            count(*) filter (where not success and severity <> 'critical') as failed_warning
        from gate_results group by all order by validated_at
    """),
    "gate_failures": ("gates", """
        select strftime(validated_at, '%Y-%m-%d %H:%M') as validated_at, run_id, gate, severity, expectation,
            observed_value, details
        from gate_results where not success order by validated_at desc, gate, expectation
    """),
}


def query(name: str, cfg: Settings | None = None) -> pd.DataFrame:
    """One dataset, read from the current snapshot, with its ``as_of`` text in every row."""
    import northstar.warehouse

    as_of_kind, sql = DATASETS[name]
    path = snapshot_path(cfg)
    if not path.exists():
        raise FileNotFoundError(f"no dashboard snapshot at {path}: a DAG run or `python -m dashboard build` makes it")
    with northstar.warehouse.connect(read_only=True, cfg=cfg, path=path) as con:  # memory and temp from settings
        frame = con.execute(sql).df()
        as_of = con.execute(f"select {AS_OF[as_of_kind]} from snapshot_info").fetchone()[0]  # noqa: S608 - fixed SQL
    frame["as_of"] = as_of
    return frame


def register_data(cfg: Settings | None = None) -> None:
    for name in DATASETS:
        data_manager[name] = (lambda n: lambda: query(n, cfg))(name)


# --- charts: Plotly Express with the as-of line added from the data --------------------------------


def _as_of(data_frame: pd.DataFrame) -> str:
    return str(data_frame["as_of"].iloc[0]) if len(data_frame) else "no data in this snapshot"


def _titled(fig: go.Figure, data_frame: pd.DataFrame) -> go.Figure:
    fig.update_layout(title={"text": f"As of {_as_of(data_frame)}", "font": {"size": 13}},
                      margin={"t": 50}, legend_title_text="")
    if not len(data_frame):
        fig.add_annotation(text="no data in this snapshot yet", showarrow=False, xref="paper", yref="paper",
                           x=0.5, y=0.5)
    return fig


@capture("graph")
def bar(data_frame: pd.DataFrame, x: str, y: str | list[str], color: str | None = None, orientation: str = "v",
        barmode: str = "relative", y_format: str | None = None, category_orders: dict | None = None) -> go.Figure:
    fig = px.bar(data_frame, x=x, y=y, color=color, orientation=orientation, barmode=barmode,
                 category_orders=category_orders or {})
    if y_format:
        (fig.update_xaxes if orientation == "h" else fig.update_yaxes)(tickformat=y_format)
    return _titled(fig, data_frame)


@capture("graph")
def line(data_frame: pd.DataFrame, x: str, y: str, color: str | None = None, y_format: str | None = None) -> go.Figure:
    fig = px.line(data_frame, x=x, y=y, color=color, markers=True)
    if y_format:
        fig.update_yaxes(tickformat=y_format)
    return _titled(fig, data_frame)


@capture("graph")
def histogram(data_frame: pd.DataFrame, x: str, nbins: int = 30, x_format: str | None = None) -> go.Figure:
    fig = px.histogram(data_frame, x=x, nbins=nbins)
    if x_format:
        fig.update_xaxes(tickformat=x_format)
    return _titled(fig, data_frame)


@capture("graph")
def scatter(data_frame: pd.DataFrame, x: str, y: str, color: str | None = None, symbol: str | None = None,
            hover_data: list[str] | None = None) -> go.Figure:
    fig = px.scatter(data_frame, x=x, y=y, color=color, symbol=symbol, hover_data=hover_data)
    fig.update_traces(marker={"size": 12})
    return _titled(fig, data_frame)


@capture("graph")
def matrix(data_frame: pd.DataFrame, x: str, y: str, z: str) -> go.Figure:
    """A transition matrix: rows = where households were, columns = where they are now."""
    table = data_frame.pivot_table(index=y, columns=x, values=z, aggfunc="sum", fill_value=0)
    fig = px.imshow(table, text_auto=True, aspect="auto", labels={"x": x.replace("_", " "), "y": y.replace("_", " ")})
    return _titled(fig, data_frame)


# --- pages -----------------------------------------------------------------------------------------


def _graph(title: str, what: str, figure) -> vm.Graph:
    return vm.Graph(title=title, header=what, figure=figure)


def _kpi(data: str, column: str, title: str, value_format: str) -> vm.Figure:
    return vm.Figure(figure=kpi_card(data_frame=data, value_column=column, title=title, value_format=value_format))


AGE_ORDER = {"age_bucket": ["0–1 days", "1–3 days", "3–5 days", ">5 days"]}


def trade_operations_page() -> vm.Page:
    return vm.Page(
        title="Trade operations",
        layout=vm.Grid(grid=[[0, 1, 2, 3], [4, 4, 5, 5], [6, 6, 7, 7], [8, 8, 9, 9], [10, 10, 11, 11]],
                       row_min_height="380px"),
        components=[
            _kpi("trade_kpis", "latest_match_rate", "Match rate, latest business date", "{value:.2%}"),
            _kpi("trade_kpis", "open_breaks", "Open breaks", "{value:,.0f}"),
            _kpi("trade_kpis", "open_breaks_over_5_days", "Open breaks older than 5 business days", "{value:,.0f}"),
            _kpi("trade_kpis", "rows_quarantined", "Rows quarantined", "{value:,.0f}"),
            _graph("Match rate by business date and broker",
                   "Share of orders (internal book vs FIX, per executing broker) and allocations (internal book vs "
                   "confirm, per prime broker) that matched within tolerance.",
                   line("match_rate", x="business_date", y="match_rate", color="broker", y_format=".1%")),
            _graph("Open breaks by type and broker", "Breaks still open in the break register, by reason code.",
                   bar("breaks_by_type", x="open_breaks", y="break_type", color="broker", orientation="h")),
            _graph("Open breaks by age", "Open breaks by business days since their business date (0–1, 1–3, 3–5, "
                   "more than 5), per broker.",
                   bar("breaks_by_age", x="age_bucket", y="open_breaks", color="broker", category_orders=AGE_ORDER)),
            _graph("Open breaks by anomaly score", "Open breaks by band of the break-anomaly champion's score "
                   "('not scored' before it has one), per break type.",
                   bar("breaks_by_score", x="anomaly_band", y="open_breaks", color="break_type")),
            _graph("Breaks opened and resolved per run", "Breaks first found, and breaks no longer found, by the "
                   "reconciliation run (UTC) that saw it.",
                   bar("break_flow", x="run_time", y=["breaks_opened", "breaks_resolved"], barmode="group")),
            _graph("Time to resolve", "Hours from the run that first found a break to the resolution of its "
                   "ServiceNow incident, for incidents people resolved (ServiceNow read-back).",
                   histogram("time_to_resolve", x="hours_to_resolve")),
            vm.Table(title="The 20 oldest open breaks", header="Open breaks with the most business days since "
                     "their business date, with their ServiceNow incident number.",
                     figure=dash_ag_grid("oldest_breaks", id="oldest_breaks_grid")),
            _graph("Quarantined rows by reason", "Records or files that could not be landed, kept in the landing "
                   "quarantine, by reason code and source.",
                   bar("quarantine", x="rows_quarantined", y="reason_code", color="source", orientation="h")),
        ],
    )


def client_value_page() -> vm.Page:
    return vm.Page(
        title="Client value",
        layout=vm.Grid(grid=[[0, 1, 2, 3], [4, 4, 5, 5], [6, 6, 7, 7], [8, 8, 9, 9], [10, 10, 11, 11]],
                       row_min_height="380px"),
        components=[
            _kpi("client_kpis", "total_clv", "Total CLV", "${value:,.0f}"),
            _kpi("client_kpis", "median_clv", "Median CLV per household", "${value:,.0f}"),
            _kpi("client_kpis", "households", "Households scored", "{value:,.0f}"),
            _kpi("client_kpis", "clv_at_risk", "CLV at risk (CLV × attrition probability)", "${value:,.0f}"),
            _graph("Total CLV by segment", "Sum of household client lifetime value per segment, USD.",
                   bar("clv_by_segment", x="segment", y="total_clv", y_format="$,.0f")),
            _graph("Median CLV by segment", "Median household client lifetime value per segment, USD.",
                   bar("clv_by_segment", x="segment", y="median_clv", y_format="$,.0f")),
            _graph("Segment sizes", "Households per segment in the latest scoring run.",
                   bar("clv_by_segment", x="segment", y="households")),
            _graph("Segment transitions since the previous run", "Households by their segment in the previous "
                   "household scoring run (rows; 'not scored before' on a first run) and in this one (columns).",
                   matrix("segment_transitions", x="current_segment", y="previous_segment", z="households")),
            _graph("Attrition-risk distribution", "Households by probability of leaving within 12 months.",
                   histogram("attrition_risk", x="attrition_probability", x_format=".0%")),
            _graph("CLV at risk by attrition band", "CLV held by each attrition band, and CLV × attrition "
                   "probability (the expected loss), USD.",
                   bar("clv_at_risk", x="attrition_band", y=["clv_of_band", "expected_clv_lost"], barmode="group",
                       y_format="$,.0f")),
            _graph("Most common top drivers", "How many households have each input among their three top "
                   "drivers (the explanation advisors read in Salesforce), by direction.",
                   bar("top_drivers", x="households", y="driver_text", orientation="h")),
            _graph("Push coverage", "Households with analytics consent, those whose current scores Salesforce "
                   "holds, and those whose push failed (failed rows stay in the outbox).",
                   bar("push_coverage", x="measure", y="households")),
        ],
    )


def models_and_quality_page() -> vm.Page:
    return vm.Page(
        title="Models and quality",
        layout=vm.Grid(grid=[[0, 1], [2, 2], [3, 3], [4, 4]], row_min_height="420px"),
        components=[
            _graph("Versions over time", "Every registered version of the three models by registration time; the "
                   "symbol is the alias it holds now ('champion' serves, 'challenger' is the latest candidate).",
                   scatter("model_versions", x="registered_at", y="version", color="model", symbol="aliases",
                           hover_data=["promotion_decision"])),
            vm.Table(title="Versions, aliases and promotion decisions", header="From the MLflow registry.",
                     figure=dash_ag_grid("model_versions", id="model_versions_grid")),
            _graph("Holdout metrics against the baselines", "Each version's figures on its holdout next to the "
                   "baselines on the same holdout (carry-forward and BG/NBD + Gamma-Gamma for CLV, BG/NBD for "
                   "attrition, an isolation forest for break anomalies).",
                   bar("model_metrics", x="value", y="model_metric", color="method", orientation="h",
                       barmode="group")),
            _graph("PSI drift per scoring run", "Population stability index of each model's inputs and score "
                   "between training and the scoring run (above 0.25 marks the model for retraining).",
                   bar("model_drift", x="psi", y="model_input", color="scoring_run", orientation="h",
                       barmode="group")),
            _graph("Gate results per run", "Great Expectations expectations per pipeline run and gate: passed, "
                   "failed critical (stops the DAG) and failed warning.",
                   bar("gate_runs", x=["passed", "failed_critical", "failed_warning"], y="run_gate",
                       orientation="h")),
        ],
    )


def gate_failures_page() -> vm.Page:
    return vm.Page(
        title="Gate failures",
        components=[vm.Table(title="Failed expectations per run", header="Every expectation that failed, newest "
                             "first, with its severity and what was observed (from quality.gate_results).",
                             figure=dash_ag_grid("gate_failures", id="gate_failures_grid"))],
    )


def build_app(cfg: Settings | None = None):
    """The Dash app of the dashboard (Vizro builds it from the models above)."""
    cfg = cfg or settings()
    Vizro._reset()  # models and data live in global managers: a second build in one process starts clean
    register_data(cfg)
    dashboard = vm.Dashboard(
        title="Northstar KPIs",
        pages=[trade_operations_page(), client_value_page(), models_and_quality_page(), gate_failures_page()],
    )
    return Vizro().build(dashboard)


def serve(port: int, cfg: Settings | None = None) -> None:
    """Serve the dashboard on 127.0.0.1 only (Ctrl-C stops it)."""
    app = build_app(cfg)
    log.info("dashboard on http://127.0.0.1:%d (snapshot %s)", port, snapshot_path(cfg))
    app.run(host="127.0.0.1", port=port, debug=False)
