"""``python -m northstar ui``: every surface people work in, on 127.0.0.1, without Docker.

The Airflow UI (its API server, scheduler, DAG processor and triggerer run as separate processes),
the MLflow UI, dbt docs and Great Expectations Data Docs, each on the port its setting names
(``NORTHSTAR_AIRFLOW_PORT``, ``NORTHSTAR_MLFLOW_PORT``, ``NORTHSTAR_DBT_DOCS_PORT``,
``NORTHSTAR_DATA_DOCS_PORT``, ``NORTHSTAR_DASHBOARD_PORT``).

What the launcher promises:
- every listener binds 127.0.0.1 only; Airflow asks for a login (user ``admin``, a generated
  password kept in ``var/airflow-passwords.json``, mode 0600, printed at start);
- a URL is printed only once it answers; a port already taken is reported with the setting that
  moves it, and the other surfaces still start;
- a surface that dies is reported with the tail of its log (``var/ui/<name>.log``);
- Ctrl-C or SIGTERM stops every child and everything the children started (each runs in its own
  process group; descendants are collected before the stop and killed if they linger).

A new surface is one more ``Service`` in ``services()`` (see ``dashboard_service`` for the shape).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from northstar.airflow_env import airflow_environment
from northstar.dbt import dbt_environment
from northstar.settings import Settings, settings

BIN = Path(sys.executable).parent
HOST = "127.0.0.1"
STARTUP_TIMEOUT_S = float(os.environ.get("NORTHSTAR_UI_STARTUP_TIMEOUT", "300"))
STOP_TIMEOUT_S = 20.0


@dataclass(frozen=True)
class Service:
    """One process of a surface.

    ``port`` is None for background components (the Airflow scheduler): they are supervised and
    stopped like the others but have no URL. Services sharing a ``group`` start or are skipped
    together (the Airflow scheduler is useless without its API server).
    """

    name: str
    command: list[str]
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    port: int | None = None
    path: str = "/"
    group: str | None = None
    setting: str | None = None  # the variable that moves the port, for the clash message
    login: str | None = None  # how to log in, printed beside the URL
    available: Callable[[], str | None] | None = None  # returns why it cannot start, or None

    @property
    def url(self) -> str | None:
        return f"http://{HOST}:{self.port}{self.path}" if self.port else None

    @property
    def slug(self) -> str:
        return self.name.lower().replace(" ", "-")


# --- the surfaces ---------------------------------------------------------------------------------


def airflow_login(cfg: Settings) -> tuple[str, str]:
    """The Airflow UI user and its password, generated once and kept 0600 under var/."""
    path = cfg.airflow_passwords_file
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        os.chmod(path, 0o600)
        passwords = json.loads(path.read_text() or "{}")
        if passwords.get("admin"):
            return "admin", passwords["admin"]
    password = secrets.token_urlsafe(18)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        json.dump({"admin": password}, handle)
    return "admin", password


def airflow_services(cfg: Settings) -> list[Service]:
    """The Airflow components ``airflow standalone`` would run, started directly so that each binds
    where we say, uses the venv's ``airflow`` and can be supervised on its own."""
    env = airflow_environment(cfg)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"  # task runners call `airflow` by name
    airflow = str(BIN / "airflow")
    user, password = airflow_login(cfg)
    return [
        Service("Airflow", [airflow, "api-server", "--host", HOST, "--port", str(cfg.airflow_port)], env,
                port=cfg.airflow_port, group="airflow", setting="NORTHSTAR_AIRFLOW_PORT",
                login=f"user {user}, password {password}"),
        # Task logs are read from local files by the API server: no log-serving port is opened.
        Service("Airflow scheduler", [airflow, "scheduler", "--skip-serve-logs"], env, group="airflow"),
        Service("Airflow DAG processor", [airflow, "dag-processor"], env, group="airflow"),
        Service("Airflow triggerer", [airflow, "triggerer", "--skip-serve-logs"], env, group="airflow"),
    ]


def mlflow_service(cfg: Settings) -> Service:
    return Service(
        "MLflow",
        [str(BIN / "mlflow"), "server", "--backend-store-uri", cfg.mlflow_tracking_uri,
         "--default-artifact-root", cfg.mlflow_artifact_root, "--host", HOST, "--port", str(cfg.mlflow_port),
         "--workers", "1"],
        port=cfg.mlflow_port, setting="NORTHSTAR_MLFLOW_PORT",
    )


def dbt_docs_service(cfg: Settings) -> Service:
    """dbt docs regenerated from the warehouse at start (catalog of every model), then served."""
    return Service(
        "dbt docs", [sys.executable, "-m", "northstar.ui", "dbt-docs", "--port", str(cfg.dbt_docs_port)],
        env={**os.environ, **dbt_environment(cfg)}, port=cfg.dbt_docs_port, setting="NORTHSTAR_DBT_DOCS_PORT",
    )


def data_docs_service(cfg: Settings) -> Service:
    site = cfg.paths.gx_root / "data_docs"

    def available() -> str | None:
        return None if (site / "index.html").exists() else "not built yet (a quality gate builds them)"

    return Service("Data Docs", static_server_command(site, cfg.data_docs_port), port=cfg.data_docs_port,
                   path="/index.html", setting="NORTHSTAR_DATA_DOCS_PORT", available=available)


def static_server_command(directory: Path, port: int) -> list[str]:
    """A plain file server on 127.0.0.1 (dbt docs, Data Docs and the dashboard are static sites)."""
    return [sys.executable, "-m", "http.server", str(port), "--bind", HOST, "--directory", str(directory)]


def dashboard_service(cfg: Settings) -> Service:
    """The KPI dashboard (``dashboard/``): reads only its snapshot under var/dashboard, never the warehouse."""
    from dashboard.snapshot import snapshot_path

    def available() -> str | None:
        return None if snapshot_path(cfg).exists() else "no snapshot yet (the last task of a DAG run takes it)"

    return Service("KPI dashboard", [sys.executable, "-m", "dashboard", "serve", "--port", str(cfg.dashboard_port)],
                   port=cfg.dashboard_port, setting="NORTHSTAR_DASHBOARD_PORT", available=available)


def services(cfg: Settings | None = None) -> list[Service]:
    """Every surface ``make ui`` starts, in start order."""
    cfg = cfg or settings()
    return [*airflow_services(cfg), mlflow_service(cfg), dbt_docs_service(cfg), data_docs_service(cfg),
            dashboard_service(cfg)]


# --- running them ---------------------------------------------------------------------------------


def port_taken(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((HOST, port))
        except OSError:
            return True
    return False


def answers(url: str) -> bool:
    """True when something serves HTTP at ``url`` (any status below 500: a login redirect counts)."""
    host_port, _, path = url.removeprefix("http://").partition("/")
    host, _, port = host_port.partition(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=2)
    try:
        connection.request("GET", "/" + path)
        return connection.getresponse().status < 500
    except OSError:
        return False
    finally:
        connection.close()


def log_tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join("    " + line for line in text.splitlines()[-lines:])


class Stop(Exception):
    """SIGTERM arrived: stop everything, as Ctrl-C does."""


def _raise_stop(signum, frame) -> None:
    raise Stop


@dataclass
class Running:
    service: Service
    process: subprocess.Popen
    log: Path
    announced: bool = False
    reported: bool = False


def launch(service: Service, log_dir: Path) -> Running:
    """Start one service in its own process group (so a stop reaches everything it starts),
    its output appended to ``log_dir/<name>.log``."""
    log_path = log_dir / f"{service.slug}.log"
    with log_path.open("ab") as handle:
        process = subprocess.Popen(service.command, env=service.env, stdout=handle, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
    return Running(service, process, log_path)


def descendants(pids: list[int]) -> list[int]:
    """Every live process below ``pids`` (a LocalExecutor worker, a gunicorn/uvicorn worker)."""
    import psutil

    found: list[int] = []
    for pid in pids:
        try:
            found += [child.pid for child in psutil.Process(pid).children(recursive=True)]
        except psutil.NoSuchProcess:
            continue
    return found


@contextlib.contextmanager
def _signals_held():
    """Ignore Ctrl-C and SIGTERM for the length of the block (main thread only: elsewhere Python
    delivers no signals anyway). A second signal during a shutdown (an impatient user, a supervisor
    that signals the whole group, `timeout` forwarding its own) must not cut it short and orphan the
    children; the shutdown is bounded (SIGKILL after its timeout), so it runs to the end."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.signal(signum, signal.SIG_IGN) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def stop_all(running: list[Running], timeout_s: float = STOP_TIMEOUT_S) -> None:
    """SIGTERM every child's process group, wait, then SIGKILL whatever is left below them; signals
    that arrive meanwhile are ignored until it is done."""
    with _signals_held():
        _stop_all(running, timeout_s)


def _stop_all(running: list[Running], timeout_s: float) -> None:
    import psutil

    tree = [r.process.pid for r in running]
    tree += descendants(tree)
    for r in running:
        if r.process.poll() is None:
            try:
                os.killpg(r.process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    processes = []
    for pid in tree:
        try:
            processes.append(psutil.Process(pid))
        except psutil.NoSuchProcess:
            continue
    # A grandchild that left its group (a task runner's own session) still gets the signal.
    for process in processes:
        try:
            if os.getpgid(process.pid) not in tree:
                process.terminate()
        except (psutil.NoSuchProcess, ProcessLookupError):
            continue
    _, alive = psutil.wait_procs(processes, timeout=timeout_s)
    for process in alive:
        try:
            process.kill()
        except psutil.NoSuchProcess:
            continue
    psutil.wait_procs(alive, timeout=5)
    for r in running:
        try:
            r.process.wait(timeout=1)
        except subprocess.TimeoutExpired:
            pass


def serve_ui(cfg: Settings | None = None, out=None) -> int:
    """Start every surface and supervise it until Ctrl-C or SIGTERM; returns the exit code."""
    cfg = cfg or settings()
    out = out or sys.stdout
    cfg.paths.ensure()
    logs = cfg.paths.var / "ui"
    logs.mkdir(parents=True, exist_ok=True)

    def say(message: str) -> None:
        print(message, file=out, flush=True)

    previous = signal.signal(signal.SIGTERM, _raise_stop)
    running: list[Running] = []
    skipped_groups: set[str] = set()
    plan = services(cfg)
    for service in plan:
        if service.port and port_taken(service.port):
            say(f"{service.name}: port {service.port} on {HOST} is already in use; not started "
                f"(set {service.setting or 'its port setting'} to a free port)")
            if service.group:
                skipped_groups.add(service.group)
    try:
        for service in plan:
            if service.group in skipped_groups or (service.port and port_taken(service.port)):
                continue
            reason = service.available() if service.available else None
            if reason:
                say(f"{service.name}: {reason}; not started")
                continue
            running.append(launch(service, logs))
        if not running:
            say("nothing to start")
            return 1
        say(f"starting {len(running)} processes (logs in {logs}); Ctrl-C stops everything")
        started = time.monotonic()
        waiting_reported = False
        while True:
            for r in running:
                if r.reported:
                    continue
                code = r.process.poll()
                if code is not None:
                    r.reported = True
                    say(f"{r.service.name} stopped (exit code {code}); last lines of {r.log}:\n{log_tail(r.log)}")
                elif r.service.url and not r.announced and answers(r.service.url):
                    r.announced = True
                    login = f"  ({r.service.login})" if r.service.login else ""
                    say(f"{r.service.name:<10} {r.service.url}{login}")
            if all(r.reported for r in running):
                say("every surface has stopped")
                return 1
            pending = [r.service.name for r in running if r.service.url and not r.announced and not r.reported]
            if pending and not waiting_reported and time.monotonic() - started > STARTUP_TIMEOUT_S:
                waiting_reported = True
                say(f"still not answering after {STARTUP_TIMEOUT_S:.0f}s: {', '.join(pending)} (see {logs})")
            time.sleep(0.5)
    except (KeyboardInterrupt, Stop):
        say("stopping")
        return 0
    finally:
        stop_all(running)
        signal.signal(signal.SIGTERM, previous)
        if running:
            say(f"stopped {', '.join(r.service.name for r in running)}")


# --- the dbt docs child ---------------------------------------------------------------------------


def generate_dbt_docs(cfg: Settings) -> bool:
    """``dbt docs generate`` over every model (not only the default selector), so the catalog has
    the column types of the score marts too. False when dbt fails (the warehouse is being written,
    or has not been built): the last generated docs are then served."""
    dbt_args = ["--project-dir", str(cfg.paths.dbt_project), "--profiles-dir", str(cfg.paths.dbt_profiles),
                "--target-path", str(cfg.paths.dbt_target_dir)]
    completed = subprocess.run([str(BIN / "dbt"), "docs", "generate", "--select", "fqn:*", *dbt_args],
                               env={**os.environ, **dbt_environment(cfg)}, check=False)
    return completed.returncode == 0


def _dbt_docs_main(port: int) -> int:
    cfg = settings()
    target = cfg.paths.dbt_target_dir
    if not generate_dbt_docs(cfg):
        print("dbt docs generate failed; serving the last generated docs", file=sys.stderr)
    if not (target / "index.html").exists():
        print(f"no dbt docs in {target}: build the warehouse first (make demo)", file=sys.stderr)
        return 1
    os.execv(sys.executable, static_server_command(target, port))
    return 0  # not reached


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m northstar.ui")
    sub = parser.add_subparsers(dest="command", required=True)
    docs = sub.add_parser("dbt-docs", help="generate dbt docs, then serve them on 127.0.0.1")
    docs.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    return _dbt_docs_main(args.port)


if __name__ == "__main__":
    sys.exit(main())
