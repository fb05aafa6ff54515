"""`make ui` over the demo world, checked the way people use it: in a real browser.

The launcher (`python -m northstar ui`) runs once for this module on free ports (the `ui_stack`
fixture); each test opens a surface in Debian's Chromium and fails on any request that leaves
localhost. The last test stops the launcher with SIGTERM and checks nothing it started survives.

The shared world's runs went through `airflow dags test`, which leaves no task log where the UI
reads them. So before the Airflow checks, `scheduled_run` makes one run the way `make demo` makes
its runs (`northstar.airflow_runs.trigger_runs`: triggered through the REST API of the running
scheduler, here `make ui`'s own, with its own logical date and run id): the next intraday slot,
which finds nothing new in the drop folder and stops after two tasks, so it costs about a minute.
Its task log and its recorded duration are what the Airflow test reads.
"""

from __future__ import annotations

import json
import os
import re
import socket
import stat

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
from playwright.sync_api import expect

from ml.registry import REGISTERED_MODELS
from northstar.airflow_api import AirflowApi
from northstar.airflow_runs import Slot, trigger_runs
from northstar.dag_defaults import FIRM_TIMEZONE
from northstar.demo import DEFAULT_AS_OF

pytestmark = pytest.mark.e2e


def test_every_surface_answers_on_localhost_only(ui_stack):
    for name, url in ui_stack.urls.items():
        assert url.startswith("http://127.0.0.1:"), (name, url)
    # the Airflow login is generated, kept 0600 under var/, and printed (masked here) by the launcher
    path = ui_stack.cfg.airflow_passwords_file
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text())["admin"]
    assert any("user admin, password ****" in line for line in ui_stack.lines), ui_stack.lines
    # nothing listens on another interface: the Airflow port refuses a connection via a non-loopback address
    port = int(ui_stack.urls["Airflow"].rsplit(":", 1)[1].split("/")[0])
    address = _non_loopback_address()
    if address:
        with socket.socket() as sock:
            sock.settimeout(2)
            assert sock.connect_ex((address, port)) != 0, f"Airflow answers on {address}:{port}"


def _non_loopback_address() -> str | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(("10.255.255.255", 1))  # no packet is sent: only picks the outgoing interface
            address = sock.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") else address


def _next_intraday_slot() -> Slot:
    import pendulum

    when = pendulum.parse(DEFAULT_AS_OF, tz=FIRM_TIMEZONE).at(9, 45).isoformat()
    return Slot("intraday_trade_recon", when, f"scheduled_{when}")


@pytest.fixture(scope="module")
def scheduled_run(ui_stack):
    """One intraday run made by `make ui`'s scheduler, triggered through the REST API (see above)."""
    api = AirflowApi(ui_stack.urls["Airflow"], "admin", ui_stack.password, timeout_s=120.0)
    [result] = trigger_runs(api, [_next_intraday_slot()], progress=print, timeout_s=1200.0)
    return result


@pytest.fixture
def airflow_page(ui_stack, offline_page):
    """A browser page logged in to Airflow with the generated password."""
    page = offline_page.page
    page.goto(ui_stack.urls["Airflow"])
    page.wait_for_url(re.compile(r".*/auth/login.*"), timeout=60_000)
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", ui_stack.password)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r"^(?!.*/auth/login).*$"), timeout=60_000)
    return page


def test_airflow_lists_both_dags_with_a_successful_run_and_a_task_log(ui_stack, scheduled_run, airflow_page, shoot):
    # the scheduler-driven run: found nothing new, stopped after two tasks, with its true duration
    assert scheduled_run.state == "success", scheduled_run
    assert scheduled_run.tasks["land_broker_files"] == scheduled_run.tasks["anything_to_check"] == "success"
    assert 0 < scheduled_run.seconds < 900, scheduled_run.seconds

    page = airflow_page
    base = ui_stack.urls["Airflow"].rstrip("/")
    page.goto(f"{base}/dags")
    for dag_id in ("nightly_client_value", "intraday_trade_recon"):
        expect(page.get_by_text(dag_id).first).to_be_visible(timeout=60_000)
    shoot(page, "airflow-dags")
    for dag_id in ("nightly_client_value", "intraday_trade_recon"):
        page.goto(f"{base}/dags/{dag_id}/runs")
        expect(page.get_by_text("success").first).to_be_visible(timeout=60_000)
    slot = _next_intraday_slot()
    page.goto(f"{base}/dags/{slot.dag_id}/runs")
    expect(page.get_by_text(slot.run_id).first).to_be_visible(timeout=60_000)
    page.goto(f"{base}/dags/{slot.dag_id}")  # the grid: every run of the DAG, its tasks' states
    expect(page.get_by_role("link", name="land_broker_files").first).to_be_visible(timeout=60_000)
    shoot(page, "airflow-grid")
    page.goto(f"{base}/dags/{slot.dag_id}/runs/{slot.run_id}/tasks/land_broker_files")
    expect(page.get_by_text(re.compile(r"Task instance is in running state|Marking task as SUCCESS|"
                                       r"Done\. Returned value was")).first).to_be_visible(timeout=60_000)
    assert page.get_by_text("Log file not found").count() == 0
    assert page.get_by_text("Could not read served logs").count() == 0
    shoot(page, "airflow-task-log")


def test_airflow_dag_docs_render_their_flow_diagram(ui_stack, airflow_page, shoot):
    page = airflow_page
    page.goto(f"{ui_stack.urls['Airflow'].rstrip('/')}/dags/nightly_client_value")
    page.get_by_role("button", name="Dag Docs").click()
    dialog = page.get_by_role("dialog")
    # the docstring's fenced diagram renders as a code block, its box-drawing lines intact
    diagram = dialog.locator("code").filter(has_text="extract_salesforce")
    expect(diagram.first).to_be_visible(timeout=60_000)
    assert "land_billing_files ─┼─▶ landing_gate" in diagram.first.inner_text()
    shoot(page, "airflow-dag-docs")


def _stored_connection(cfg, conn_id: str) -> tuple[str, dict]:
    """(password ciphertext, decrypted extra) as the metadata database holds them."""
    import configparser
    import sqlite3

    from cryptography.fernet import Fernet

    parser = configparser.ConfigParser(interpolation=None)
    parser.read(cfg.paths.airflow_home / "airflow.cfg")
    key = os.environ.get("AIRFLOW__CORE__FERNET_KEY") or parser["core"]["fernet_key"]
    with sqlite3.connect(cfg.paths.airflow_home / "airflow.db") as con:
        password, extra = con.execute("select password, extra from connection where conn_id = ?", [conn_id]).fetchone()
    return password, json.loads(Fernet(key.encode()).decrypt(extra.encode()))


@pytest.mark.parametrize("conn_id, conn_type, extra_field", [("salesforce_default", "Salesforce", "Security Token"),
                                                             ("servicenow_default", "HTTP", "ca_bundle")])
def test_airflow_connection_form_edits(ui_stack, airflow_page, conn_id, conn_type, extra_field, shoot):
    """The provider's connection type opens in the form with its own fields; saving an edited
    description keeps the secrets (shown as *** and sent back unchanged) as they were."""
    page = airflow_page
    secrets_before = _stored_connection(ui_stack.cfg, conn_id)
    page.goto(f"{ui_stack.urls['Airflow'].rstrip('/')}/connections")
    row = page.get_by_role("row").filter(has_text=conn_id)
    expect(row).to_be_visible(timeout=60_000)
    row.get_by_role("button", name="Edit Connection").click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_text(conn_type, exact=True).first).to_be_visible(timeout=60_000)
    dialog.get_by_text("Extra Fields", exact=True).click()
    expect(dialog.get_by_text(extra_field, exact=True).first).to_be_visible(timeout=30_000)
    dialog.get_by_text("Standard Fields", exact=True).click()
    new_text = f"{conn_id} edited in the browser test"
    dialog.locator("textarea[name=description]").fill(new_text)
    shoot(page, f"airflow-connection-{conn_id}")
    dialog.get_by_role("button", name=re.compile("save", re.I)).click()
    expect(page.get_by_role("row").filter(has_text=conn_id).get_by_text(new_text)).to_be_visible(timeout=60_000)
    assert _stored_connection(ui_stack.cfg, conn_id) == secrets_before


def test_mlflow_models_have_champions_whose_versions_link_the_model_card(ui_stack, offline_page, shoot):
    from mlflow import MlflowClient

    page = offline_page.page
    base = ui_stack.urls["MLflow"].rstrip("/")
    page.goto(f"{base}/#/models")
    for name in REGISTERED_MODELS:
        expect(page.get_by_text(name, exact=True).first).to_be_visible(timeout=60_000)
    # MLflow 3.17 announces its new registry UI in a dialog over the list (it says "Champion" too)
    try:
        page.get_by_role("dialog").wait_for(timeout=10_000)
        page.keyboard.press("Escape")
    except PlaywrightTimeoutError:
        pass
    expect(page.get_by_role("dialog")).to_have_count(0)
    for name in REGISTERED_MODELS:  # each model's row, in its "Aliased versions" column
        expect(page.get_by_role("row").filter(has_text=name)).to_contain_text(re.compile(r"@\s*champion"))
    shoot(page, "mlflow-models")
    client = MlflowClient(tracking_uri=ui_stack.cfg.mlflow_tracking_uri)
    for name in REGISTERED_MODELS:
        version = client.get_model_version_by_alias(name, "champion")
        assert "/artifacts/model_card.md" in (version.description or ""), (name, version.description)
    version = client.get_model_version_by_alias("northstar-clv", "champion")
    page.goto(f"{base}/#/models/northstar-clv/versions/{version.version}")
    expect(page.get_by_text("@ champion").first).to_be_visible(timeout=60_000)
    link = page.get_by_role("link", name="Model card")
    expect(link.first).to_be_visible(timeout=60_000)
    href = link.first.get_attribute("href")  # opens in a new tab: follow it here
    assert href.startswith("#/experiments/") and href.endswith("/artifacts/model_card.md"), href
    page.goto(f"{base}/{href}")
    expect(page.get_by_text("Model card: northstar-clv").first).to_be_visible(timeout=60_000)
    expect(page.get_by_text("Intended use").first).to_be_visible()
    shoot(page, "mlflow-model-card")


def test_mlflow_experiments_open_on_their_runs(ui_stack, offline_page, shoot):
    """MLflow 3.17 starts a new browser in its GenAI view, where every experiment opens on a traces
    overview; in its "Model training" view (the sidebar switch, which the browser remembers) an
    experiment of the classic kind Northstar tags opens on its training runs."""
    from mlflow import MlflowClient

    page = offline_page.page
    client = MlflowClient(tracking_uri=ui_stack.cfg.mlflow_tracking_uri)
    experiment = client.get_experiment_by_name("northstar-clv")
    assert experiment.tags.get("mlflow.experimentKind") == "custom_model_development"
    run = client.search_runs([experiment.experiment_id], max_results=1)[0]
    assert "model card" in run.data.tags.get("mlflow.note.content", "")
    page.goto(f"{ui_stack.urls['MLflow'].rstrip('/')}/#/experiments")
    page.get_by_text("Model training", exact=True).first.click()
    page.get_by_role("link", name="northstar-clv").first.click()
    expect(page.get_by_text(run.info.run_name).first).to_be_visible(timeout=60_000)
    assert "/runs" in page.url, page.url
    shoot(page, "mlflow-experiment-runs")


def test_dbt_docs_show_a_marts_columns_lineage_and_every_models_catalog(ui_stack, offline_page, shoot):
    page = offline_page.page
    base = ui_stack.urls["dbt docs"].rstrip("/")
    manifest = page.request.get(f"{base}/manifest.json").json()
    catalog = page.request.get(f"{base}/catalog.json").json()
    models = {key for key, node in manifest["nodes"].items() if node["resource_type"] == "model"}
    missing = sorted(models - set(catalog["nodes"]))
    assert not missing, f"models without a catalog entry (no column types): {missing}"
    reads = {name: {ref.split(".")[-1] for ref in exposure["depends_on"]["nodes"]}
             for name, exposure in ((e["name"], e) for e in manifest["exposures"].values())}
    assert "fct_household_scores" in reads["salesforce_score_push"]
    assert {"fct_trade_breaks", "fct_break_scores"} <= reads["servicenow_break_incidents"]
    assert "Northstar warehouse" in manifest["docs"]["doc.northstar.__overview__"]["block_contents"]

    page.goto(f"{base}/#!/overview")
    expect(page.get_by_text("Northstar warehouse").first).to_be_visible(timeout=60_000)
    shoot(page, "dbt-docs-overview")
    page.goto(f"{base}/#!/exposure/exposure.northstar.salesforce_score_push")
    expect(page.get_by_text("fct_household_scores").first).to_be_visible(timeout=60_000)
    page.goto(f"{base}/#!/model/model.northstar.fct_trade_breaks")
    columns = page.locator("table").filter(has_text="break_key")
    expect(columns.first).to_be_visible(timeout=60_000)
    for column, data_type in (("break_key", "VARCHAR"), ("business_date", "DATE")):
        expect(columns.first.get_by_role("row").filter(has_text=column).first).to_contain_text(data_type)
    shoot(page, "dbt-docs-mart-columns")
    page.locator("a[title='View Lineage Graph']").click()
    expect(page.locator("#cy")).to_be_visible(timeout=60_000)
    page.wait_for_function("() => { const r = document.querySelector('#cy')._cyreg; "
                           "return r && r.cy && r.cy.nodes().length > 1 }", timeout=60_000)
    nodes = page.evaluate("() => document.querySelector('#cy')._cyreg.cy.nodes().map(n => n.data('label') || n.id())")
    # upstream (staging and the break identification) and downstream (a mart and the ServiceNow exposure)
    assert {"int_trade_breaks_identified", "stg_broker__internal_trades", "fct_recon_summary",
            "ServiceNow trade-break incidents"} <= set(nodes), nodes
    shoot(page, "dbt-docs-lineage")


def test_data_docs_list_the_gate_validations_styled(ui_stack, offline_page, shoot):
    page = offline_page.page
    page.goto(ui_stack.urls["Data Docs"])
    rows = page.locator("tr.clickable-row")
    expect(rows.first).to_be_visible(timeout=60_000)
    # bootstrap's stylesheet and font-awesome's icons are applied (served from the site itself, not a CDN)
    font = page.evaluate("getComputedStyle(document.body).fontFamily")
    assert "apple-system" in font or "Segoe UI" in font, font
    icon_font = page.evaluate("getComputedStyle(document.querySelector('.ge-success-icon, .fas'), '::before')"
                              ".fontFamily")
    assert "Font Awesome" in icon_font, icon_font
    shoot(page, "data-docs-index")
    search = page.get_by_placeholder("Search").first
    for gate in ("marts", "scores", "landing"):  # bootstrap-table's search: every gate has validations
        search.fill("")
        search.press_sequentially(f"{gate}.", delay=30)
        expect(page.locator(f"tr.clickable-row[data-href^='validations/{gate}/']").first).to_be_visible(
            timeout=30_000)
    page.locator("tr.clickable-row[data-href^='validations/landing/'] td").nth(1).click()
    expect(page.get_by_text(re.compile("Severity (critical|warning)")).first).to_be_visible(timeout=60_000)
    shoot(page, "data-docs-validation")
    page.get_by_role("link", name=re.compile(r"^landing\.")).first.click()  # the validation's suite
    expect(page.get_by_text("Expectation Suite").first).to_be_visible(timeout=60_000)
    expect(page.get_by_text(re.compile(r"Error response|404|not found", re.I))).to_have_count(0)


def test_zz_sigterm_stops_every_process(ui_stack):
    """Defined last, so it runs last in this module: SIGTERM to the launcher leaves no child or grandchild."""
    leftovers = ui_stack.stop()
    assert not leftovers, f"still running after SIGTERM: {leftovers}"
    for name, url in ui_stack.urls.items():
        port = int(url.split(":")[2].split("/")[0])
        with socket.socket() as sock:
            assert sock.connect_ex(("127.0.0.1", port)) != 0, f"{name} still listens on {port}"
