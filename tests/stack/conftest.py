"""One local production stack for the whole stack suite: a small seeded world, then `stack up`.

Postgres runs as the `postgres` user when the suite runs as root, so the stack's home is a /tmp
folder that user may enter (pytest's own tmp folders are private to root).
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
from pathlib import Path

import pytest

from northstar import settings as settings_module
from northstar.demo import seed_world
from northstar.stack import Stack

AS_OF = "2026-10-30"


def pytest_collection_modifyitems(config, items):
    # Part of `make test` (CI runs it); NORTHSTAR_STACK_SUITE=0 leaves it out of a quick local run.
    if os.environ.get("NORTHSTAR_STACK_SUITE", "1") != "0":
        return
    skip = pytest.mark.skip(reason="NORTHSTAR_STACK_SUITE=0: the stack suite is left out (`make test-stack` runs it alone)")
    for item in items:
        if "stack" in item.keywords:
            item.add_marker(skip)


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


@pytest.fixture(scope="module")  # down as soon as the suite's module is done, not at the worker's exit
def stack():
    root = Path(tempfile.mkdtemp(prefix="northstar-stack-"))
    root.chmod(0o711)
    patch = pytest.MonkeyPatch()
    patch.setenv("NORTHSTAR_HOME", str(root / "var"))
    patch.delenv("AIRFLOW_HOME", raising=False)
    patch.delenv("NORTHSTAR_KILL_SWITCH", raising=False)
    # A killed worker's task is noticed after this long (compose's default is 300 s).
    patch.setenv("NORTHSTAR_STACK_HEARTBEAT_TIMEOUT", "45")
    # Only the runs the suite triggers: unpausing must not add scheduled runs for today's ticks.
    patch.setenv("NORTHSTAR_STACK_USE_JOB_SCHEDULE", "False")
    settings_module.reset_cache()
    cfg = settings_module.settings()
    cfg.paths.ensure()
    # As in the demo, the sandbox's truth stands in for the close codes an ops team would record.
    patch.setenv("NORTHSTAR_ANOMALY_TRUTH_LABELS", str(cfg.paths.truth))
    seed_world("small", 7, AS_OF, cfg)
    running = Stack(cfg)
    # A CI job that times out sends SIGTERM, which would end pytest without its teardown and leave
    # the stack (its own sessions) running: make it an interrupt, as Ctrl-C is, so `down` runs.
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        running.up()
        yield running
    finally:
        running.down()
        signal.signal(signal.SIGTERM, previous)
        patch.undo()
        settings_module.reset_cache()
        if not os.environ.get("NORTHSTAR_KEEP_STACK"):
            shutil.rmtree(root, ignore_errors=True)
