"""One demo world for the end-to-end tests: seeded, served and run through every DAG once.

`test_demo_flow.py` reads what the demo left behind; `test_demo_ui_surfaces.py` opens every `make ui`
surface over it in a browser; `test_gates_stop_the_dags.py` then feeds bad batches into the same world
(it runs after, by file order) and checks each gate stops its DAG.

The world's three runs go through `airflow dags test` (`run_demo(runner="dags-test")`): one process
per run, the heavy imports (dbt, Great Expectations, MLflow, XGBoost) paid once per run instead of once
per task. `make demo` makes its runs the way production does (`--runner scheduler`, the default):
through a running scheduler and the REST API; the suite covers that path with one scheduler-driven
run over `make ui`'s own Airflow in `test_demo_ui_surfaces.py` (task log, true duration).
`NORTHSTAR_E2E_RUNNER=scheduler` builds the whole world through the scheduler instead.
"""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

import pytest

from northstar import settings as settings_module
from northstar.demo import run_demo

sys.path.insert(0, str(Path(__file__).resolve().parent))  # e2e_helpers


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory):
    """The world's settings (its NORTHSTAR_HOME under the session's tmp folder).

    ``NORTHSTAR_E2E_WORLD=<a var/ folder a demo has run in>`` reuses that world instead of building
    one: for iterating on tests that only read it (the browser tests); the others change it."""
    reuse = os.environ.get("NORTHSTAR_E2E_WORLD")
    home = Path(reuse).resolve() if reuse else tmp_path_factory.mktemp("demo") / "var"
    patch = pytest.MonkeyPatch()
    patch.setenv("NORTHSTAR_HOME", str(home))
    patch.setenv("NORTHSTAR_SALESFORCE_PORT", str(_free_port()))
    patch.setenv("NORTHSTAR_SERVICENOW_PORT", str(_free_port()))
    patch.delenv("AIRFLOW_HOME", raising=False)
    patch.delenv("NORTHSTAR_KILL_SWITCH", raising=False)
    settings_module.reset_cache()
    cfg = settings_module.settings()
    if not reuse:
        run_demo(scale="small", seed=7, cfg=cfg, runner=os.environ.get("NORTHSTAR_E2E_RUNNER", "dags-test"))
    yield cfg
    patch.undo()
    settings_module.reset_cache()


# --- the `make ui` surfaces over the demo world ----------------------------------------------------

SURFACE_NAMES = ("Airflow", "MLflow", "dbt docs", "Data Docs", "KPI dashboard")


class UiStack:
    """`python -m northstar ui` running over the demo world on free ports, as a person starts it."""

    def __init__(self, cfg, env: dict[str, str], log_path):
        import subprocess
        import sys

        self.cfg = cfg
        self.log_path = log_path
        self.urls: dict[str, str] = {}
        self.lines: list[str] = []
        self._log = open(log_path, "w")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen([sys.executable, "-m", "northstar", "ui"], env=env, text=True,
                                        stdout=subprocess.PIPE, stderr=self._log, start_new_session=True)

    def wait_for(self, names, timeout_s: float = 600.0) -> None:
        """Read the launcher's output until each surface in ``names`` has printed its URL."""
        import re
        import selectors
        import time

        pattern = re.compile(r"^(?P<name>.+?)\s+(?P<url>http://127\.0\.0\.1:\d+\S*)")
        selector = selectors.DefaultSelector()
        selector.register(self.process.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout_s
        while not set(names) <= set(self.urls):
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise AssertionError(f"make ui announced {sorted(self.urls)} of {list(names)}; output:\n"
                                     + "\n".join(self.lines))
            if selector.select(timeout=1):
                line = self.process.stdout.readline()
                if not line:
                    continue
                line = line.rstrip("\n")
                self.lines.append(line.replace(self.password, "****") if self.password in line else line)
                match = pattern.match(line)
                if match:
                    self.urls[match["name"].strip()] = match["url"]

    @property
    def password(self) -> str:
        import json

        path = self.cfg.airflow_passwords_file
        return json.loads(path.read_text())["admin"] if path.exists() else "\0"

    def stop(self, timeout_s: float = 60.0) -> list[str]:
        """SIGTERM the launcher as a service manager would; returns what is still alive after it exits."""
        import signal

        import psutil

        if self.process.poll() is not None:
            return []
        tree = [psutil.Process(self.process.pid), *psutil.Process(self.process.pid).children(recursive=True)]
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=timeout_s)
        self._log.close()
        _, alive = psutil.wait_procs(tree, timeout=5)
        leftovers = []
        for process in alive:
            try:
                leftovers.append(" ".join(process.cmdline())[:200])
                process.kill()
            except psutil.NoSuchProcess:
                continue
        return leftovers


@pytest.fixture(scope="session")
def ui_stack(demo_run, tmp_path_factory):
    """One `make ui` for the browser tests (Airflow's start costs minutes on a loaded 2-core machine),
    shared by test_demo_ui_dashboard.py and test_demo_ui_surfaces.py, which run one after the other
    (file order); the last test of the latter stops it, before test_gates_stop_the_dags.py.

    Cron and drop-folder scheduling are off (`AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE=False`): the test
    decides which runs happen, even when a DAG is unpaused during market hours."""
    env = {**os.environ, "NORTHSTAR_HOME": str(demo_run.paths.var),
           "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
           "NORTHSTAR_SALESFORCE_PORT": str(demo_run.salesforce_port),
           "NORTHSTAR_SERVICENOW_PORT": str(demo_run.servicenow_port)}
    ports = {}
    for setting in ("AIRFLOW_PORT", "MLFLOW_PORT", "DBT_DOCS_PORT", "DATA_DOCS_PORT", "DASHBOARD_PORT"):
        ports[setting] = _free_port()
        env[f"NORTHSTAR_{setting}"] = str(ports[setting])
    env.pop("AIRFLOW_HOME", None)
    patch = pytest.MonkeyPatch()
    for key, value in env.items():
        if key.startswith("NORTHSTAR_"):
            patch.setenv(key, value)
    settings_module.reset_cache()
    cfg = settings_module.settings()
    stack = UiStack(cfg, env, tmp_path_factory.mktemp("ui") / "ui.stderr.log")
    try:
        stack.wait_for(SURFACE_NAMES)
        yield stack
    finally:
        leftovers = stack.stop()
        patch.undo()
        settings_module.reset_cache()
        assert not leftovers, f"processes left after SIGTERM: {leftovers}"


@pytest.fixture
def shoot():
    """``shoot(page, name)`` keeps a screenshot when ``NORTHSTAR_SCREENSHOTS`` names a folder (that is how
    docs/screenshots/ is refreshed), as a 256-colour PNG to keep the repository small; else does nothing."""
    folder = os.environ.get("NORTHSTAR_SCREENSHOTS")

    def take(page, name: str, height: int | None = None) -> None:
        """``height``: a taller window for this one picture (pages that scroll inside a container)."""
        if not folder:
            return
        from PIL import Image

        path = Path(folder) / f"{name}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        size = page.viewport_size
        if height:
            page.set_viewport_size({"width": size["width"], "height": height})
            page.wait_for_timeout(3000)  # charts re-lay themselves out
        page.screenshot(path=str(path))
        if height:
            page.set_viewport_size(size)
        with Image.open(path) as image:
            small = image.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
        small.save(path, optimize=True)

    return take


# --- time limits -----------------------------------------------------------------------------------

# The shared world is built inside whichever test asks for it first (file order, or the one test run
# alone): seeding and three DAG runs took over 30 minutes on a loaded 2-core machine, so every test
# that uses it gets an hour on top of its own limit (pytest-timeout counts fixture setup; CI allows 90
# minutes in all).
WORLD_BUILD_ALLOWANCE_S = 3600


def pytest_collection_modifyitems(config, items):
    default = float(config.getini("timeout") or 0)
    for item in items:
        if "demo_run" not in getattr(item, "fixturenames", ()):
            continue
        marker = item.get_closest_marker("timeout")
        own = float(marker.args[0]) if marker and marker.args else default
        item.add_marker(pytest.mark.timeout(own + WORLD_BUILD_ALLOWANCE_S))
