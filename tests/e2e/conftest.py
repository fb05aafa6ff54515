"""One demo world for the end-to-end tests: seeded, served and run through every DAG once.

`test_demo_flow.py` reads what the demo left behind; `test_gates_stop_the_dags.py` then feeds bad
batches into the same world (it runs after, by file order) and checks each gate stops its DAG.
"""

from __future__ import annotations

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
    home = tmp_path_factory.mktemp("demo") / "var"
    patch = pytest.MonkeyPatch()
    patch.setenv("NORTHSTAR_HOME", str(home))
    patch.setenv("NORTHSTAR_SALESFORCE_PORT", str(_free_port()))
    patch.setenv("NORTHSTAR_SERVICENOW_PORT", str(_free_port()))
    patch.delenv("AIRFLOW_HOME", raising=False)
    patch.delenv("NORTHSTAR_KILL_SWITCH", raising=False)
    settings_module.reset_cache()
    cfg = settings_module.settings()
    run_demo(scale="small", seed=7, cfg=cfg)
    yield cfg
    patch.undo()
    settings_module.reset_cache()


def pytest_collection_modifyitems(config, items):
    """The first test to ask for the demo world builds it (three DAG runs) inside its own timeout, and
    on two busy cores that takes longer than the suite's default 600 s: such tests get an hour (CI allows 90 minutes in all)."""
    for item in items:
        if "demo_run" in getattr(item, "fixturenames", ()) and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(3600))
