"""The KPI dashboard over the shared e2e world, in a real browser.

The demo's DAG runs end with ``refresh_dashboard``, so the snapshot must already be there (and the
reruns before this module refreshed it again). The dashboard is the one `make ui` serves (the
`ui_stack` launcher, shared with test_demo_ui_surfaces.py, which runs next); every page is opened in
Debian's Chromium, each chart must have data and no request may leave localhost, and three KPIs on
the page must equal the same figures computed straight from the warehouse.
"""

from __future__ import annotations

import pytest

import northstar.warehouse
from dashboard.snapshot import snapshot_path

pytestmark = pytest.mark.e2e

# page path -> (charts, KPI cards) it must show
PAGES = {
    "/": (7, 4),
    "/client-value": (8, 4),
    "/models-and-quality": (4, 0),
    "/gate-failures": (0, 0),
}
# the window height that shows a whole page in its screenshot (docs/screenshots)
PAGE_HEIGHTS = {"/": 2300, "/client-value": 2300, "/models-and-quality": 2000, "/gate-failures": 900}
# Charts whose data the small demo world does not produce: nobody resolves an incident by hand in the
# sandbox (the read-back lands none) and the demo's drop folder has no rejected record. Each may be
# empty only while its snapshot table is, and then says so on the chart.
MAY_BE_EMPTY = {"Time to resolve": "incident_resolutions", "Quarantined rows by reason": "quarantine"}


@pytest.fixture(scope="module")
def dashboard_url(ui_stack):
    """The dashboard as `make ui` serves it (the launcher shared with test_demo_ui_surfaces.py)."""
    return ui_stack.urls["KPI dashboard"].rstrip("/")


def test_each_dag_run_leaves_a_snapshot_the_dashboard_reads(demo_run):
    with northstar.warehouse.connect(path=snapshot_path(demo_run), read_only=True) as con:
        run_id = con.execute("select pipeline_run_id from snapshot_info").fetchone()[0]
        versions = con.execute("select count(*) from model_versions").fetchone()[0]
    # taken by a DAG task (the CLI's default id is "manual"), with the model registry copied along
    assert run_id and run_id != "manual"
    assert versions >= 3


def _points_per_chart(page) -> list[int]:
    """Data points per Plotly chart on the page, from Plotly's own parsed traces (``_fullData``: a
    bar/line/scatter/histogram trace's ``_length``, a heatmap's cells)."""
    return page.evaluate("""() => Array.from(document.querySelectorAll('.js-plotly-plot')).map(el =>
        (el._fullData || []).reduce((n, t) => n + (t._length || (Array.isArray(t.z) ? t.z.flat().length : 0)), 0))""")


def _chart_titles(page) -> list[str]:
    """Each chart's first line (an SVG text, so textContent), which states the as-of time of its data."""
    return page.locator(".js-plotly-plot .gtitle").evaluate_all("els => els.map(e => e.textContent)")


@pytest.mark.parametrize("path", list(PAGES))
def test_every_page_renders_its_charts_with_data_offline(demo_run, dashboard_url, offline_page, path, shoot):
    charts, kpis = PAGES[path]
    page = offline_page.page
    page.goto(dashboard_url + path, wait_until="networkidle", timeout=120_000)
    if charts:
        # a chart is drawn once its "As of" title line is there (it comes with the data)
        page.wait_for_function(f"document.querySelectorAll('.js-plotly-plot .gtitle').length >= {charts}",
                               timeout=120_000)
        titles = _chart_titles(page)
        assert len(titles) == charts and all(t.startswith("As of ") for t in titles), titles
        headings = page.evaluate("""() => Array.from(document.querySelectorAll('.js-plotly-plot')).map(el =>
            el.closest('.figure-container').querySelector('.figure-title').innerText)""")
        points = _points_per_chart(page)
        empty = []
        with northstar.warehouse.connect(path=snapshot_path(demo_run), read_only=True) as con:
            for heading, count in zip(headings, points, strict=True):
                if count:
                    continue
                table = next((t for title, t in MAY_BE_EMPTY.items() if title in heading), None)
                assert table, f"{path}: chart without data: {heading!r} (points per chart: {points})"
                assert con.execute(f"select count(*) from {table}").fetchone()[0] == 0, heading
                empty.append(heading)
        # an empty chart says so on its face
        notes = page.get_by_text("no data in this snapshot yet")
        assert notes.count() == len(empty), (empty, notes.count())
    if kpis:
        assert page.locator(".card-kpi").count() == kpis
    if path == "/gate-failures":
        page.wait_for_selector(".ag-row", timeout=120_000)
        assert page.locator(".ag-row").count() > 0
    shoot(page, f"dashboard-{path.strip('/') or 'trade-operations'}", height=PAGE_HEIGHTS[path])


def _kpi_text(page, title: str) -> str:
    card = page.locator(".card-kpi", has_text=title).first
    return card.locator(".card-body").inner_text().strip()


def test_three_kpis_equal_the_warehouse(demo_run, dashboard_url, offline_page):
    with northstar.warehouse.connect(path=demo_run.paths.warehouse, read_only=True) as con:
        match_rate = con.execute("""
            select sum(items_matched) / sum(items_compared) from main.fct_recon_summary
            where business_date = (select max(business_date) from main.fct_recon_summary)""").fetchone()[0]
        open_breaks = con.execute("select count(*) from main.fct_trade_breaks where cleared_at is null").fetchone()[0]
        total_clv = con.execute("select sum(clv) from main.fct_household_scores").fetchone()[0]
    page = offline_page.page
    page.goto(dashboard_url + "/", wait_until="networkidle", timeout=120_000)
    page.wait_for_selector(".card-kpi", timeout=120_000)
    assert _kpi_text(page, "Match rate, latest business date") == f"{match_rate:.2%}"
    assert _kpi_text(page, "Open breaks") == f"{open_breaks:,.0f}"
    page.goto(dashboard_url + "/client-value", wait_until="networkidle", timeout=120_000)
    page.wait_for_selector(".card-kpi", timeout=120_000)
    assert _kpi_text(page, "Total CLV") == f"${total_clv:,.0f}"
