"""The KPI dashboard over the shared e2e world, in a real browser.

The demo's DAG runs end with ``refresh_dashboard``, so the snapshot must already be there. The test
serves the dashboard the way ``make ui`` does (``python -m dashboard serve`` on a free port), opens
every page in Debian's Chromium, checks each chart has data and no request leaves localhost, and
compares three KPIs on the page with the same figures computed straight from the warehouse.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import duckdb
import pytest

from dashboard.snapshot import snapshot_path

pytestmark = pytest.mark.e2e

# page path -> (charts with data, KPI cards) it must show
PAGES = {
    "/": (8, 4),
    "/client-value": (8, 4),
    "/models-and-quality": (4, 0),
    "/gate-failures": (0, 0),
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def dashboard_url(demo_run):
    cfg = demo_run
    port = _free_port()
    log_path = cfg.paths.var / "dashboard" / "serve.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("w") as log:
        server = subprocess.Popen([sys.executable, "-m", "dashboard", "serve", "--port", str(port)],
                                  env={**os.environ, "NORTHSTAR_HOME": str(cfg.paths.var)},
                                  stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            if server.poll() is not None:
                pytest.fail(f"dashboard server exited: {log_path.read_text()[-2000:]}")
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.5)
        else:
            pytest.fail("dashboard server did not open its port within 240 s")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()


def test_each_dag_run_leaves_a_snapshot_the_dashboard_reads(demo_run):
    with duckdb.connect(str(snapshot_path(demo_run)), read_only=True) as con:
        run_id = con.execute("select pipeline_run_id from snapshot_info").fetchone()[0]
        versions = con.execute("select count(*) from model_versions").fetchone()[0]
    # taken by a DAG task (the CLI's default id is "manual"), with the model registry copied along
    assert run_id and run_id != "manual"
    assert versions >= 3


def _plots_with_data(page) -> list[int]:
    """Points per Plotly chart on the page (traces' x/y/z/values lengths added up)."""
    return page.evaluate("""() => Array.from(document.querySelectorAll('.js-plotly-plot')).map(el =>
        (el.data || []).reduce((n, t) => n + Math.max((t.x || []).length, (t.y || []).length,
                                                      (t.z || []).length, (t.values || []).length), 0))""")


@pytest.mark.parametrize("path", list(PAGES))
def test_every_page_renders_its_charts_with_data_offline(dashboard_url, offline_page, path):
    charts, kpis = PAGES[path]
    page = offline_page.page
    page.goto(dashboard_url + path, wait_until="networkidle", timeout=120_000)
    if charts:
        page.wait_for_function(f"document.querySelectorAll('.js-plotly-plot').length >= {charts}", timeout=120_000)
        page.wait_for_function("""() => Array.from(document.querySelectorAll('.js-plotly-plot'))
            .every(el => el.data && el.data.length > 0)""", timeout=120_000)
        points = _plots_with_data(page)
        assert len(points) == charts and all(points), f"{path}: charts without data: {points}"
        titles = page.locator(".js-plotly-plot .gtitle").all_inner_texts()
        assert len(titles) == charts and all(t.startswith("As of ") for t in titles), titles
    if kpis:
        assert page.locator(".card-kpi").count() == kpis
    if path == "/gate-failures":
        page.wait_for_selector(".ag-row", timeout=120_000)
        assert page.locator(".ag-row").count() > 0


def _kpi_text(page, title: str) -> str:
    card = page.locator(".card-kpi", has_text=title).first
    return card.locator(".card-body").inner_text().strip()


def test_three_kpis_equal_the_warehouse(demo_run, dashboard_url, offline_page):
    with duckdb.connect(str(demo_run.paths.warehouse), read_only=True) as con:
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
