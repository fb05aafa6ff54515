"""``python -m northstar stack up|down|status``: the production topology as local processes.

The same stack docker-compose.yml describes — Airflow 3 (API server, scheduler, DAG processor,
triggerer, two Celery workers) on Postgres and Redis, an MLflow tracking server on Postgres with
basic auth, and the sandbox — run without Docker, under ``var/stack/``:

- Postgres is a cluster made with Debian's ``initdb`` and run by ``postgres`` itself (as the
  ``postgres`` user when started by root, which Postgres refuses to run as); Redis is Debian's
  ``redis-server``. Both listen on 127.0.0.1 only, on free ports, with generated passwords.
- Every Northstar-image service is rendered from docker-compose.yml: its ``command`` and
  ``environment``, with ``${VAR}`` interpolated from ``var/stack/.env`` (the same variables a firm
  puts in its .env; generated here) and the container paths mapped to local folders
  (``CONTAINER_PATHS``). The only differences from compose are ``LOCAL_OVERRIDES``: two workers on
  one host need different names.

Every process gets ``NORTHSTAR_STACK_ID`` in its environment; ``down`` (and a failed ``up``)
stops each service's process group and then any process still carrying that id, so nothing is
left running — Airflow's task processes run in process groups of their own.
"""

from __future__ import annotations

import json
import logging
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from northstar.settings import REPO_ROOT, Settings, settings

log = logging.getLogger(__name__)

COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
BIN = Path(sys.executable).parent

# Northstar-image services the local stack runs, in start order, as (local name, compose service).
# Two workers from the one compose service, as `docker compose up --scale airflow-worker=2` would.
LOCAL_SERVICES = (
    ("mlflow", "mlflow"),
    ("sandbox", "sandbox"),
    ("airflow-apiserver", "airflow-apiserver"),
    ("airflow-scheduler", "airflow-scheduler"),
    ("airflow-dag-processor", "airflow-dag-processor"),
    ("airflow-triggerer", "airflow-triggerer"),
    ("airflow-worker-1", "airflow-worker"),
    ("airflow-worker-2", "airflow-worker"),
)
WORKERS = ("airflow-worker-1", "airflow-worker-2")

# What one host needs beyond compose: in containers each worker has its own hostname, here the
# two share one, so each names itself (the task instances' `hostname` shows which worker ran them).
LOCAL_OVERRIDES = {
    worker: {
        "AIRFLOW__CORE__HOSTNAME_CALLABLE": "northstar.stack.worker_hostname",
        "NORTHSTAR_WORKER_NAME": worker.removeprefix("airflow-"),
    }
    for worker in WORKERS
}

# The variables a firm's .env holds (see .env.example) that the stack generates.
SECRET_VARIABLES = (
    "POSTGRES_PASSWORD", "AIRFLOW_DB_PASSWORD", "MLFLOW_DB_PASSWORD", "REDIS_PASSWORD",
    "AIRFLOW_FERNET_KEY", "AIRFLOW_JWT_SECRET", "AIRFLOW_API_SECRET_KEY",
    "AIRFLOW_OPS_PASSWORD", "AIRFLOW_REVIEWER_PASSWORD", "MLFLOW_ADMIN_PASSWORD", "MLFLOW_SECRET_KEY",
    "NORTHSTAR_PII_SALT",  # hash_pii's secret: fixed for the life of the stack's warehouse (join keys)
)


class StackError(RuntimeError):
    pass


def worker_hostname() -> str:
    """Airflow's ``hostname_callable`` for a worker on a shared host: its own name, else the host's."""
    return os.environ.get("NORTHSTAR_WORKER_NAME") or socket.getfqdn()


# --- docker-compose.yml, rendered ------------------------------------------------------------------

_VARIABLE = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")


def interpolate(text: str, values: dict[str, str]) -> str:
    """Compose's variable substitution: ``${V}``, ``${V:-default}``, ``${V-default}``, ``${V:?err}``, ``$$``."""

    def replace(match: re.Match) -> str:
        if match.group(0) == "$$":
            return "$"
        name, op, arg = match.group(1), match.group(2), match.group(3)
        value = values.get(name)
        if op in (":-", ":?"):
            missing = not value
        else:
            missing = value is None
        if op and op.endswith("?") and missing:
            raise StackError(f"{name} is not set: {arg}")
        if op and op.endswith("-") and missing:
            return arg
        return value or ""

    return _VARIABLE.sub(replace, text)


def load_compose(path: Path = COMPOSE_FILE) -> dict:
    return yaml.safe_load(path.read_text())


@dataclass(frozen=True)
class ServiceCommand:
    """One compose service as a local process: argv, environment (compose's only) and working dir."""

    name: str
    argv: list[str]
    environment: dict[str, str]
    cwd: Path


def container_paths(cfg: Settings) -> dict[str, Path]:
    """Where each path inside the image lives on this machine."""
    return {
        "/opt/northstar": REPO_ROOT,
        "/opt/airflow": cfg.stack_dir / "airflow",
        "/var/lib/northstar": cfg.paths.var,
    }


def _map_paths(value: str, paths: dict[str, Path]) -> str:
    for inside, outside in paths.items():
        value = re.sub(rf"(?<![\w/]){re.escape(inside)}(?=/|$|\s|,)", str(outside), value)
    return value


def render_service(compose: dict, service: str, values: dict[str, str], cfg: Settings) -> ServiceCommand:
    """A compose service's command and environment with ``values`` interpolated and paths mapped."""
    spec = compose["services"][service]
    paths = container_paths(cfg)
    argv = [_map_paths(interpolate(str(arg), values), paths) for arg in spec["command"]]
    environment = {
        key: _map_paths(interpolate(str(value), values), paths)
        for key, value in (spec.get("environment") or {}).items()
    }
    cwd = Path(_map_paths(spec.get("working_dir", "/opt/northstar"), paths))
    return ServiceCommand(service, argv, environment, cwd)


def _executable(argv: list[str]) -> list[str]:
    """The image has the venv first on PATH; here the same programs come from this venv."""
    program = argv[0]
    if program == "python":
        return [sys.executable, *argv[1:]]
    if (BIN / program).exists():
        return [str(BIN / program), *argv[1:]]
    return argv


# --- state under var/stack -----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)


def _read_env_file(path: Path) -> dict[str, str]:
    values = {}
    if path.exists():
        for line in path.read_text().splitlines():
            if line.strip() and not line.lstrip().startswith("#") and "=" in line:
                key, value = line.split("=", 1)
                values[key.strip()] = value.strip()
    return values


def ensure_secrets(cfg: Settings) -> dict[str, str]:
    """The stack's generated credentials (``var/stack/.env``, 0600), made once and reused."""
    from cryptography.fernet import Fernet

    path = cfg.stack_dir / ".env"
    values = _read_env_file(path)
    if all(values.get(name) for name in SECRET_VARIABLES):
        return values
    for name in SECRET_VARIABLES:
        if not values.get(name):
            values[name] = Fernet.generate_key().decode() if name == "AIRFLOW_FERNET_KEY" else secrets.token_urlsafe(24)
    _write_private(path, "# Generated by `python -m northstar stack up`: this stack's .env (see .env.example)\n"
                   + "".join(f"{k}={v}\n" for k, v in values.items()))
    return values


@dataclass
class StackState:
    stack_id: str
    ports: dict[str, int]
    pids: dict[str, int] = field(default_factory=dict)
    argv: dict[str, list[str]] = field(default_factory=dict)  # as launched (Airflow rewrites its proctitle)
    started_s: float = 0.0

    def save(self, path: Path) -> None:
        _write_private(path, json.dumps(self.__dict__, indent=2))

    @classmethod
    def load(cls, path: Path) -> StackState | None:
        if not path.exists():
            return None
        return cls(**json.loads(path.read_text()))


def stack_values(cfg: Settings, ports: dict[str, int]) -> dict[str, str]:
    """What the local stack puts where a firm's .env would: secrets, hosts and ports, bind address."""
    values = dict(ensure_secrets(cfg))
    values.update({
        "BIND_HOST": "127.0.0.1",
        "POSTGRES_HOST": "127.0.0.1", "POSTGRES_PORT": str(ports["postgres"]),
        "REDIS_HOST": "127.0.0.1", "REDIS_PORT": str(ports["redis"]),
        "MLFLOW_HOST": "127.0.0.1", "MLFLOW_PORT": str(ports["mlflow"]), "MLFLOW_WORKERS": "1",
        "AIRFLOW_API_HOST": "127.0.0.1", "AIRFLOW_API_PORT": str(ports["airflow"]), "AIRFLOW_API_WORKERS": "1",
        "SANDBOX_HOST": "127.0.0.1",
        "SANDBOX_SALESFORCE_PORT": str(ports["salesforce"]), "SANDBOX_SERVICENOW_PORT": str(ports["servicenow"]),
        "AIRFLOW_WORKER_CONCURRENCY": os.environ.get("NORTHSTAR_STACK_WORKER_CONCURRENCY", "2"),
        "AIRFLOW_TASK_HEARTBEAT_TIMEOUT": os.environ.get("NORTHSTAR_STACK_HEARTBEAT_TIMEOUT", "300"),
        "AIRFLOW_USE_JOB_SCHEDULE": os.environ.get("NORTHSTAR_STACK_USE_JOB_SCHEDULE", "True"),
    })
    for passthrough in ("NORTHSTAR_ANOMALY_TRUTH_LABELS", "NORTHSTAR_DEADLINE_ALERTS", "NORTHSTAR_SLACK_WEBHOOK_URL", "NORTHSTAR_ALERT_EMAIL_TO",
                        "NORTHSTAR_SMTP_HOST", "NORTHSTAR_SMTP_PORT",
                        "AIRFLOW_CONN_SALESFORCE_DEFAULT", "AIRFLOW_CONN_SERVICENOW_DEFAULT"):
        if os.environ.get(passthrough):
            values[passthrough] = os.environ[passthrough]
    return values


# --- the stack -----------------------------------------------------------------------------------


def _postgres_bin() -> Path:
    """Debian's PostgreSQL server programs (not on PATH: /usr/lib/postgresql/<version>/bin)."""
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name))
    if candidates:
        return candidates[-1].parent
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    raise StackError("PostgreSQL is not installed: `make system-deps` installs Debian's postgresql package")


def _base_environment() -> dict[str, str]:
    """The caller's environment minus every setting compose owns (those come from the rendered file)."""
    owned = ("AIRFLOW", "NORTHSTAR_", "MLFLOW_", "PG")
    return {k: v for k, v in os.environ.items() if not k.startswith(owned)}


class Stack:
    def __init__(self, cfg: Settings | None = None):
        self.cfg = cfg or settings()
        self.dir = self.cfg.stack_dir
        self.state_file = self.dir / "state.json"
        self.logs = self.dir / "logs"
        self.state: StackState | None = StackState.load(self.state_file)
        self._as_postgres = os.geteuid() == 0

    # -- public --

    @property
    def values(self) -> dict[str, str]:
        if not self.state:
            raise StackError("the stack is not up")
        return stack_values(self.cfg, self.state.ports)

    def airflow_url(self) -> str:
        return f"http://127.0.0.1:{self.state.ports['airflow']}"

    def mlflow_url(self) -> str:
        return f"http://127.0.0.1:{self.state.ports['mlflow']}"

    def up(self, sandbox: bool = True, timeout_s: float = 1800.0) -> float:
        """Start everything and wait until it serves; returns the seconds it took. Stops all on failure."""
        if self.state and any(self._alive(pid) for pid in self.state.pids.values()):
            raise StackError(f"a stack is already running under {self.dir} (python -m northstar stack down)")
        started = time.monotonic()
        self.dir.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(parents=True, exist_ok=True)
        ports = {name: free_port() for name in ("postgres", "redis", "mlflow", "airflow", "salesforce", "servicenow")}
        self.state = StackState(stack_id=uuid.uuid4().hex, ports=ports)
        self.state.save(self.state_file)
        deadline = started + timeout_s
        try:
            self._start_postgres(deadline)
            self._start_redis(deadline)
            compose = load_compose()
            for name, service in LOCAL_SERVICES:
                if name == "sandbox" and not sandbox:
                    continue
                if name == "airflow-apiserver":
                    # MLflow and the sandbox do not wait for Airflow's metadata; the Airflow services
                    # start after airflow-init, as compose's `service_completed_successfully` orders them.
                    self._run_init()
                self._start_service(name, render_service(compose, service, self.values, self.cfg))
            self._wait_ready(sandbox, deadline)
        except BaseException:
            log.error("stack up failed; stopping what started (logs in %s)", self.logs)
            self.down()
            raise
        self.state.started_s = round(time.monotonic() - started, 1)
        self.state.save(self.state_file)
        log.info("stack up in %.1fs: Airflow %s, MLflow %s", self.state.started_s, self.airflow_url(), self.mlflow_url())
        return self.state.started_s

    def down(self, timeout_s: float = 30.0) -> list[str]:
        """Stop every service and any process still carrying this stack's id.

        Airflow, MLflow and the sandbox stop together (each may take seconds to drain; one after the
        other they took over a minute), then Redis and Postgres, which they use while stopping. A
        service is signalled through its process group only while a process of this stack is in it:
        on a busy host a dead service's pid, and so its group id, can be reused by anyone.
        """
        if not self.state:
            return []
        ours = set(self._stack_processes())
        groups = {name: pid for name, pid in self.state.pids.items() if ours & _group_members(pid)}
        stores = ("redis", "postgres")
        stopped = []
        for batch in ([n for n in groups if n not in stores], [n for n in groups if n in stores]):
            for name in batch:
                _killpg(groups[name], signal.SIGINT if name == "postgres" else signal.SIGTERM)  # SIGINT: fast shutdown
            pending = list(batch)
            deadline = time.monotonic() + timeout_s
            while pending and time.monotonic() < deadline:
                for name in list(pending):
                    try:
                        os.waitpid(groups[name], os.WNOHANG)
                    except ChildProcessError:
                        pass
                    if not _group_members(groups[name]):
                        pending.remove(name)
                time.sleep(0.3)
            for name in pending:
                log.info("%s did not stop in %.0fs: killed", name, timeout_s)
                _killpg(groups[name], signal.SIGKILL)
            stopped += batch
        leftovers = self._stack_processes()
        for pid in leftovers:
            _signal(pid, signal.SIGKILL)
        self.state.pids = {}
        self.state.save(self.state_file)
        if leftovers:
            log.info("killed %d leftover process(es) of the stack", len(leftovers))
        return stopped

    def status(self) -> dict[str, bool]:
        if not self.state:
            return {}
        return {name: self._alive(pid) for name, pid in self.state.pids.items()}

    def kill(self, name: str) -> int:
        """SIGKILL one service and every process it started (a worker and its running tasks), as a crash would.

        Returns how many processes were killed.
        """
        pid = self.state.pids[name]
        victims = {pid, *self._stack_processes(service=name)}
        for victim in victims:
            _signal(victim, signal.SIGKILL)
        _killpg(pid, signal.SIGKILL)
        return len(victims)

    # -- Postgres and Redis --

    def _start_postgres(self, deadline: float) -> None:
        bin_dir = _postgres_bin()
        home = self.dir / "postgres"
        data = home / "data"
        values = stack_values(self.cfg, self.state.ports)
        user = self._postgres_user()
        if not (data / "PG_VERSION").exists():
            home.mkdir(parents=True, exist_ok=True)
            if user:
                self._check_reachable(home, user)
                shutil.chown(home, user.pw_name, user.pw_gid)
            pwfile = home / "superuser-password"
            _write_private(pwfile, values["POSTGRES_PASSWORD"] + "\n")
            if user:
                shutil.chown(pwfile, user.pw_name, user.pw_gid)
            try:
                self._check_call([str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=scram-sha-256",
                                  f"--pwfile={pwfile}", "-E", "UTF8", "--locale=C", "--no-instructions"],
                                 "postgres-initdb", user)
            finally:
                pwfile.unlink(missing_ok=True)
        port = self.state.ports["postgres"]
        self._start_process("postgres", [
            str(bin_dir / "postgres"), "-D", str(data), "-c", "listen_addresses=127.0.0.1", "-c", f"port={port}",
            "-c", "unix_socket_directories=", "-c", "max_connections=200",
            # a throw-away local cluster: durability is not worth the disk flushes on a shared machine
            "-c", "fsync=off",
        ], _base_environment(), home, user=user)
        self._wait(lambda: self._pg_connect(values["POSTGRES_PASSWORD"], "postgres"), "postgres", deadline)
        if not (home / "northstar-databases").exists():
            env = {**_base_environment(), "PGHOST": "127.0.0.1", "PGPORT": str(port), "PGUSER": "postgres",
                   "PGPASSWORD": values["POSTGRES_PASSWORD"], "PGDATABASE": "postgres",
                   "AIRFLOW_DB_PASSWORD": values["AIRFLOW_DB_PASSWORD"], "MLFLOW_DB_PASSWORD": values["MLFLOW_DB_PASSWORD"]}
            # The very script the postgres image runs on its first start.
            with (self.logs / "postgres-init.log").open("ab") as out:
                subprocess.run(["sh", str(REPO_ROOT / "deploy" / "postgres-init.sh")], env=env, check=True,
                               stdout=out, stderr=subprocess.STDOUT)
            (home / "northstar-databases").touch()

    def _pg_connect(self, password: str, database: str) -> bool:
        import psycopg2

        try:
            psycopg2.connect(host="127.0.0.1", port=self.state.ports["postgres"], user="postgres",
                             password=password, dbname=database, connect_timeout=3).close()
            return True
        except psycopg2.OperationalError:
            return False

    def _postgres_user(self) -> pwd.struct_passwd | None:
        if not self._as_postgres:
            return None
        try:
            return pwd.getpwnam("postgres")
        except KeyError as exc:
            raise StackError("running as root needs the `postgres` user (Debian's postgresql package makes it)") from exc

    @staticmethod
    def _check_reachable(folder: Path, user: pwd.struct_passwd) -> None:
        """Postgres runs as `postgres`: every folder above its data must let that user pass."""
        for parent in folder.resolve().parents:
            st = parent.stat()
            if st.st_uid != user.pw_uid and not st.st_mode & 0o001:
                raise StackError(f"the postgres user cannot enter {parent} (mode {oct(st.st_mode & 0o777)}): "
                                 f"put NORTHSTAR_HOME somewhere it can reach, or `chmod o+x {parent}`")

    def _start_redis(self, deadline: float) -> None:
        redis_server = shutil.which("redis-server")
        if not redis_server:
            raise StackError("redis-server is not installed: `make system-deps` installs Debian's redis-server")
        home = self.dir / "redis"
        home.mkdir(parents=True, exist_ok=True)
        values = stack_values(self.cfg, self.state.ports)
        conf = home / "redis.conf"
        # A 0600 file, not arguments: the password must not show in `ps`.
        _write_private(conf, "\n".join([
            "bind 127.0.0.1", f"port {self.state.ports['redis']}", "protected-mode yes",
            f"requirepass {values['REDIS_PASSWORD']}", 'save ""', "appendonly no", f"dir {home}",
            # its own process title would overwrite /proc/<pid>/environ, where the stack finds its processes
            "daemonize no", "set-proc-title no", "",
        ]))
        self._start_process("redis", [redis_server, str(conf)], _base_environment(), home)

        def redis_ready() -> bool:
            import redis

            try:
                return bool(redis.Redis(host="127.0.0.1", port=self.state.ports["redis"],
                                        password=values["REDIS_PASSWORD"], socket_timeout=2).ping())
            except redis.RedisError:
                return False

        self._wait(redis_ready, "redis", deadline)

    # -- Northstar-image services --

    def _run_init(self) -> None:
        """airflow-init as compose runs it: `python -m northstar setup` (migrate, pool, connections, users)."""
        init = render_service(load_compose(), "airflow-init", self.values, self.cfg)
        Path(init.environment["AIRFLOW_HOME"]).mkdir(parents=True, exist_ok=True)
        self._check_call(_executable(init.argv), "airflow-init", None,
                         env={**_base_environment(), **init.environment, "NORTHSTAR_STACK_ID": self.state.stack_id,
                              "SPT_NOENV": "1"},
                         cwd=init.cwd)

    def _start_service(self, name: str, service: ServiceCommand) -> None:
        env = {**_base_environment(), **service.environment, **LOCAL_OVERRIDES.get(name, {})}
        service.cwd.mkdir(parents=True, exist_ok=True)
        self._start_process(name, _executable(service.argv), env, service.cwd)

    def _wait_ready(self, sandbox: bool, deadline: float) -> None:
        import requests

        from northstar.airflow_api import AirflowApi

        def http_ok(url: str) -> bool:
            try:
                return requests.get(url, timeout=3).status_code == 200
            except requests.RequestException:
                return False

        def port_open(port: int) -> bool:
            with socket.socket() as sock:
                sock.settimeout(1)
                return sock.connect_ex(("127.0.0.1", port)) == 0

        self._wait(lambda: http_ok(f"{self.mlflow_url()}/health"), "mlflow", deadline)
        if sandbox:
            self._wait(lambda: port_open(self.state.ports["salesforce"]) and port_open(self.state.ports["servicenow"]),
                       "sandbox", deadline)
        values = self.values
        api = AirflowApi(self.airflow_url(), "ops", values["AIRFLOW_OPS_PASSWORD"])
        self._wait(api.healthy, "airflow-apiserver", deadline)
        for worker in WORKERS:
            self._wait(lambda w=worker: " ready." in (self.logs / f"{w}.log").read_text(errors="replace"),
                       worker, deadline)

    # -- processes --

    def _start_process(self, name: str, argv: list[str], env: dict[str, str], cwd: Path,
                       user: pwd.struct_passwd | None = None) -> None:
        # SPT_NOENV: Airflow, Celery and gunicorn retitle their processes with setproctitle, which by
        # default overwrites the memory /proc/<pid>/environ reads; with it set the environment stays
        # readable, so `down` and `kill` still find every process (forked task runners included) by
        # the stack's id, and the compose test can read what each service really runs with.
        env = {**env, "NORTHSTAR_STACK_ID": self.state.stack_id, "NORTHSTAR_STACK_SERVICE": name, "SPT_NOENV": "1"}
        out = (self.logs / f"{name}.log").open("ab")
        kwargs = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []} if user else {}
        process = subprocess.Popen(argv, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True, **kwargs)
        out.close()
        self.state.pids[name] = process.pid
        self.state.argv[name] = argv
        self.state.save(self.state_file)
        log.info("started %s (pid %d, log %s)", name, process.pid, self.logs / f"{name}.log")

    def _check_call(self, argv: list[str], name: str, user: pwd.struct_passwd | None, env: dict | None = None,
                    cwd: Path | None = None) -> None:
        kwargs = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []} if user else {}
        log_path = self.logs / f"{name}.log"
        with log_path.open("ab") as out:
            completed = subprocess.run(argv, env=env if env is not None else _base_environment(), cwd=cwd,
                                       stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, **kwargs)
        if completed.returncode != 0:
            tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-25:])
            raise StackError(f"{name} failed (exit {completed.returncode}); last lines of {log_path}:\n{tail}")

    def _wait(self, ready, name: str, deadline: float, poll_s: float = 1.0) -> None:
        while not ready():
            pid = self.state.pids.get(name)
            if pid and not self._alive(pid):
                raise StackError(f"{name} exited during start-up; see {self.logs / (name + '.log')}")
            if time.monotonic() > deadline:
                raise StackError(f"{name} not ready in time; see {self.logs / (name + '.log')}")
            time.sleep(poll_s)

    @staticmethod
    def _alive(pid: int) -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        try:  # a zombie child of this process counts as gone
            return Path(f"/proc/{pid}/stat").read_text().split(") ")[-1].split()[0] != "Z"
        except OSError:
            return False

    def _stack_processes(self, service: str | None = None) -> list[int]:
        """Live processes of this stack (or of one service): those whose environment carries its id, and
        their descendants (in case a program rewrote the memory its environment is read from)."""
        marker = f"NORTHSTAR_STACK_ID={self.state.stack_id}".encode()
        wanted = f"NORTHSTAR_STACK_SERVICE={service}".encode() if service else None
        found, children = set(), {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            pid = int(entry.name)
            try:
                children.setdefault(int((entry / "stat").read_text().rsplit(") ", 1)[1].split()[1]), []).append(pid)
                environ = (entry / "environ").read_bytes().split(b"\0")
            except (OSError, IndexError, ValueError):
                continue
            if marker in environ and (wanted is None or wanted in environ):
                found.add(pid)
        pending = list(found)
        while pending:
            pid = pending.pop()
            for child in children.get(pid, []):
                if child not in found:
                    found.add(child)
                    pending.append(child)
        return sorted(pid for pid in found if pid != os.getpid() and self._alive(pid))


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _killpg(pgid: int, sig: int) -> bool:
    try:
        os.killpg(pgid, sig)
        return True
    except ProcessLookupError:
        return False


def _group_members(pgid: int) -> set[int]:
    """The live processes of a process group (zombies not yet reaped count as gone)."""
    members = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(") ", 1)[1].split()
            except (OSError, IndexError):
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                members.add(int(entry.name))
    return members


def main(action: str, sandbox: bool = True) -> int:
    stack = Stack()
    if action == "up":
        seconds = stack.up(sandbox=sandbox)
        print(f"stack up in {seconds:.1f}s under {stack.dir}")
        print(f"  Airflow  {stack.airflow_url()}  (users ops, reviewer; passwords in {stack.dir / '.env'})")
        print(f"  MLflow   {stack.mlflow_url()}  (user admin; MLFLOW_ADMIN_PASSWORD in {stack.dir / '.env'})")
        print(f"  logs     {stack.logs}")
        return 0
    if action == "down":
        stopped = stack.down()
        print(f"stopped {', '.join(stopped) or 'nothing (no stack running)'}")
        return 0
    status = stack.status()
    if not status:
        print("no stack under", stack.dir)
        return 1
    for name, alive in status.items():
        print(f"  {name:24} {'running' if alive else 'stopped'}")
    print(f"  ports: {json.dumps(stack.state.ports)}")
    return 0 if all(status.values()) else 1
