"""Never talk to the wrong server: a taken port stops the start at once, naming the port and its holder;
the launcher accepts only a server that presents our certificate and reports the pid we started."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from northstar.demo import DemoError, run_demo
from sandbox.launcher import SandboxStartError, start_sandbox_process, verify_sandbox
from sandbox.tls import ensure_certificate

pytestmark = pytest.mark.integration


@pytest.fixture
def held_port():
    """A port another process is listening on (here: this test process, as any foreign server would)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_demo_refuses_a_taken_port_naming_it_and_its_process(northstar_home, monkeypatch, held_port):
    from northstar import settings as settings_module

    monkeypatch.setenv("NORTHSTAR_SALESFORCE_PORT", str(held_port))
    monkeypatch.setenv("NORTHSTAR_SERVICENOW_PORT", str(free_port()))
    settings_module.reset_cache()
    cfg = settings_module.settings()
    with pytest.raises(DemoError) as raised:
        run_demo(scale="small", cfg=cfg)
    message = str(raised.value)
    assert f"127.0.0.1:{held_port}" in message and f"pid {os.getpid()}" in message
    assert "NORTHSTAR_SALESFORCE_PORT" in message
    assert not (cfg.paths.var / "demo" / "sandbox.log").exists()  # refused before seeding or starting


def test_sandbox_serve_exits_at_once_naming_the_holder(tmp_path, held_port):
    env = {**os.environ, "NORTHSTAR_HOME": str(tmp_path / "var")}
    done = subprocess.run(
        [sys.executable, "-m", "sandbox", "serve", "--state", str(tmp_path / "state"),
         "--salesforce-port", str(free_port()), "--servicenow-port", str(held_port)],
        env=env, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 2, done.stderr[-2000:]
    assert f"127.0.0.1:{held_port} is already taken by pid {os.getpid()}" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "state" / "server.ready").exists()


def test_launcher_starts_and_proves_its_own_sandbox(northstar_home, monkeypatch):
    from northstar import settings as settings_module

    monkeypatch.setenv("NORTHSTAR_SALESFORCE_PORT", str(free_port()))
    monkeypatch.setenv("NORTHSTAR_SERVICENOW_PORT", str(free_port()))
    settings_module.reset_cache()
    cfg = settings_module.settings()
    started = start_sandbox_process(cfg, cfg.paths.var / "demo" / "sandbox.log", timeout_s=60)
    try:
        assert started.salesforce_url == cfg.sandbox_salesforce_url
        assert started.ca_cert == cfg.sandbox_ca_cert
        with pytest.raises(SandboxStartError, match="not the salesforce sandbox pid"):
            verify_sandbox({"salesforce": started.salesforce_url}, started.ca_cert, expected_pid=os.getpid())
        # A server with another certificate (someone else's sandbox) is refused before any call.
        other = Path(ensure_certificate(cfg.paths.var / "other")[0])
        with pytest.raises(SandboxStartError, match="does not prove it is ours"):
            verify_sandbox({"servicenow": started.servicenow_url}, other, expected_pid=started.process.pid)
        # And a second start on the same ports is refused, naming the first sandbox.
        with pytest.raises(SandboxStartError, match=rf"taken by pid {started.process.pid}: .*sandbox serve"):
            start_sandbox_process(cfg, cfg.paths.var / "demo" / "second.log")
    finally:
        started.stop()
    assert started.process.returncode is not None
