"""The `make ui` launcher's promises, on stand-in services (the real surfaces are checked in a browser
by tests/e2e/test_demo_ui_surfaces.py): a taken port is reported with the setting that moves it and the
rest still start; a URL is printed once it answers; a child that dies is reported; SIGTERM stops the
children and everything they started, even when more signals arrive while it stops them.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import psutil
import pytest

pytestmark = pytest.mark.unit

LAUNCH = """
import sys
from pathlib import Path

from northstar import ui

taken, free, folder = int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])


def stand_ins(cfg=None):
    return [
        ui.Service("Busy", ui.static_server_command(folder, taken), port=taken, setting="NORTHSTAR_BUSY_PORT"),
        # a server that starts a grandchild of its own, as the Airflow scheduler starts workers
        ui.Service("Files", ["sh", "-c", f"sleep 300 & exec {sys.executable} -m http.server {free} "
                                         f"--bind 127.0.0.1 --directory {folder}"], port=free),
        ui.Service("Crasher", [sys.executable, "-c", "import sys; print('boom'); sys.exit(3)"]),
    ]


ui.services = stand_ins
sys.exit(ui.serve_ui())
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_launcher_reports_clashes_and_deaths_and_sigterm_stops_the_whole_tree(tmp_path):
    script = tmp_path / "launch.py"
    script.write_text(LAUNCH)
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen()
    taken, free = blocker.getsockname()[1], _free_port()
    env = {**os.environ, "NORTHSTAR_HOME": str(tmp_path / "var")}
    launcher = subprocess.Popen([sys.executable, str(script), str(taken), str(free), str(tmp_path)], env=env,
                                stdout=subprocess.PIPE, text=True, start_new_session=True)
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            lines.append(launcher.stdout.readline().rstrip())
            # the death report is several lines (the tail of the log follows it): read up to "boom"
            if any(line.startswith("Files") for line in lines) and any(x.strip() == "boom" for x in lines):
                break
        text = "\n".join(lines)
        assert f"Busy: port {taken} on 127.0.0.1 is already in use" in text
        assert "NORTHSTAR_BUSY_PORT" in text
        assert f"Files      http://127.0.0.1:{free}/" in text
        assert "Crasher stopped (exit code 3)" in text and "boom" in text
        tree = psutil.Process(launcher.pid).children(recursive=True)
        assert any(p.name() == "sleep" for p in tree)
    finally:
        launcher.send_signal(signal.SIGTERM)
        code = launcher.wait(timeout=60)
        blocker.close()
    assert code == 0
    _, alive = psutil.wait_procs(tree, timeout=5)
    assert not alive, [p.cmdline() for p in alive]
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", free)) != 0


SLOW_TO_STOP = """
import sys
from pathlib import Path

from northstar import ui

port, folder = int(sys.argv[1]), Path(sys.argv[2])


def stand_ins(cfg=None):
    return [
        ui.Service("Files", ui.static_server_command(folder, port), port=port),
        # takes a few seconds to stop, as the Airflow scheduler and MLflow's job runners do
        ui.Service("Slow", ["sh", "-c", "trap 'sleep 4; exit 0' TERM; while :; do sleep 0.2; done"]),
    ]


ui.services = stand_ins
sys.exit(ui.serve_ui())
"""


def test_more_signals_while_stopping_do_not_orphan_the_children(tmp_path):
    """Seen with `timeout 600 python -m northstar ui` and a SIGTERM to both: the second SIGTERM arrived
    while the launcher was stopping its children, interrupted the shutdown, and left the scheduler,
    MLflow and the static servers running with nobody to stop them."""
    script = tmp_path / "launch.py"
    script.write_text(SLOW_TO_STOP)
    port = _free_port()
    env = {**os.environ, "NORTHSTAR_HOME": str(tmp_path / "var")}
    launcher = subprocess.Popen([sys.executable, str(script), str(port), str(tmp_path)], env=env,
                                stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not launcher.stdout.readline().startswith("Files"):
            pass
        tree = psutil.Process(launcher.pid).children(recursive=True)
        assert len(tree) >= 3, [p.cmdline() for p in tree]
        launcher.send_signal(signal.SIGTERM)
        time.sleep(1.0)  # the launcher is now waiting for "Slow" to stop
        for again in (signal.SIGTERM, signal.SIGINT, signal.SIGTERM):
            launcher.send_signal(again)
            time.sleep(0.2)
        code = launcher.wait(timeout=60)
    finally:
        if launcher.poll() is None:
            launcher.kill()
    assert code == 0
    _, alive = psutil.wait_procs(tree, timeout=5)
    assert not alive, [p.cmdline() for p in alive]
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0
