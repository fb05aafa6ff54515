"""Start the sandbox servers as a child process and prove that the servers we reach are that process.

Used by ``python -m northstar demo`` (and anything else that runs the sandbox beside a pipeline).
On a shared machine another process may already hold the configured ports: then the child cannot
bind, while a port probe still succeeds against the foreign server, and every DAG would talk to
it. So, before anything runs against the sandbox:

1. the configured ports must be free, or we stop at once naming the port and the process holding it;
2. the child writes ``server.ready`` with its pid only after both servers answer (``sandbox.server.serve``);
3. each URL must present the certificate in our state folder (the one the child generated or
   reuses) and its health endpoint must report the child's pid.

Only then is the sandbox "up".
"""

from __future__ import annotations

import errno
import json
import logging
import os
import socket
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

log = logging.getLogger(__name__)


class SandboxStartError(RuntimeError):
    """The sandbox could not be started, or what answers on its ports is not the process we started."""


# --- who holds a port -------------------------------------------------------------------------


def _listening_inodes(port: int) -> set[str]:
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(fields[9])
    return inodes


def port_holder(port: int) -> str:
    """A readable description of the process listening on port ('pid 123: python -m http.server')."""
    inodes = _listening_inodes(port)
    if inodes:
        targets = {f"socket:[{inode}]" for inode in inodes}
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                for fd in (proc / "fd").iterdir():
                    if os.readlink(fd) in targets:
                        cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                        return f"pid {proc.name}: {cmdline.strip()[:160]}"
            except OSError:
                continue  # the process ended, or we may not look at it
    return "a process this user cannot inspect (see `ss -ltnp`)"


def port_in_use(host: str, port: int) -> bool:
    """True when nothing can listen on host:port now (the servers bind with SO_REUSEADDR too)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return True
            raise
    return False


def port_taken_message(name: str, host: str, port: int, env_var: str | None = None) -> str:
    hint = f"; stop it, or set {env_var} to a free port" if env_var else "; stop it, or choose another port"
    return f"the {name} sandbox port {host}:{port} is already taken by {port_holder(port)}{hint}"


def require_free_ports(host: str, ports: dict[str, tuple[int, str]]) -> None:
    """Raise SandboxStartError naming every taken port and its holder ({name: (port, env var)})."""
    taken = [port_taken_message(name, host, port, env_var)
             for name, (port, env_var) in ports.items() if port and port_in_use(host, port)]
    if taken:
        raise SandboxStartError("; ".join(taken))


# --- proving we reach our own process ---------------------------------------------------------


def _peer_certificate(url: str, ca: Path, timeout_s: float) -> bytes:
    parts = urlsplit(url)
    context = ssl.create_default_context(cafile=str(ca))
    with socket.create_connection((parts.hostname, parts.port), timeout=timeout_s) as raw:
        with context.wrap_socket(raw, server_hostname=parts.hostname) as tls:
            return tls.getpeercert(binary_form=True)


def _health(url: str, ca: Path, timeout_s: float) -> dict:
    import requests

    session = requests.Session()
    session.trust_env = False  # the machine-wide REQUESTS_CA_BUNDLE would replace our CA
    session.verify = str(ca)
    response = session.get(f"{url}/__sandbox/health", timeout=timeout_s)
    response.raise_for_status()
    return response.json()


def verify_sandbox(urls: dict[str, str], ca_cert: Path, expected_pid: int, timeout_s: float = 5.0) -> None:
    """Raise SandboxStartError unless every URL is served by pid expected_pid with our certificate."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    ours = x509.load_pem_x509_certificate(Path(ca_cert).read_bytes()).public_bytes(Encoding.DER)
    for name, url in urls.items():
        try:
            presented = _peer_certificate(url, ca_cert, timeout_s)
            health = _health(url, ca_cert, timeout_s)
        except (OSError, ssl.SSLError, ValueError) as exc:
            raise SandboxStartError(
                f"the {name} sandbox at {url} does not prove it is ours ({type(exc).__name__}: {exc}); "
                f"port {urlsplit(url).port} is held by {port_holder(urlsplit(url).port)}"
            ) from exc
        if presented != ours:
            raise SandboxStartError(f"the {name} server at {url} presents a certificate other than {ca_cert}")
        if health.get("pid") != expected_pid or health.get("app") != name:
            raise SandboxStartError(
                f"the server at {url} is {health.get('app')!r} pid {health.get('pid')}, not the {name} sandbox "
                f"pid {expected_pid} we started"
            )


# --- the child process ------------------------------------------------------------------------


@dataclass
class SandboxProcess:
    process: subprocess.Popen
    salesforce_url: str
    servicenow_url: str
    ca_cert: Path
    log_path: Path

    def stop(self, timeout_s: float = 20.0) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=timeout_s)


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def require_configured_ports_free(cfg) -> None:
    """Fail at once (before any slow setup) when a configured sandbox port is taken."""
    require_free_ports(cfg.sandbox_host, {
        "salesforce": (cfg.salesforce_port, "NORTHSTAR_SALESFORCE_PORT"),
        "servicenow": (cfg.servicenow_port, "NORTHSTAR_SERVICENOW_PORT"),
    })


def start_sandbox_process(cfg, log_path: Path, timeout_s: float = 60.0) -> SandboxProcess:
    """``python -m sandbox serve`` on the configured ports, verified to be ours before it is returned."""
    host = cfg.sandbox_host
    require_configured_ports_free(cfg)
    state = Path(cfg.paths.sandbox_state)
    state.mkdir(parents=True, exist_ok=True)
    ready_file = state / "server.ready"
    ready_file.unlink(missing_ok=True)  # a stale file from another run must not count as ready
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as handle:
        process = subprocess.Popen(
            [sys.executable, "-m", "sandbox", "serve", "--state", str(state),
             "--salesforce-port", str(cfg.salesforce_port), "--servicenow-port", str(cfg.servicenow_port),
             "--host", host],
            stdout=handle, stderr=subprocess.STDOUT,
        )
    try:
        ready = _wait_for_ready(process, ready_file, log_path, timeout_s)
        expected = {"salesforce": cfg.sandbox_salesforce_url, "servicenow": cfg.sandbox_servicenow_url}
        urls = {"salesforce": ready["salesforce_url"], "servicenow": ready["servicenow_url"]}
        for name, url in urls.items():
            if urlsplit(url).port != urlsplit(expected[name]).port:
                raise SandboxStartError(f"the {name} sandbox listens on {url}, not the configured {expected[name]}")
        # The pipeline connects to the configured URLs: those are what must prove to be ours.
        verify_sandbox(expected, Path(ready["ca_cert"]), process.pid)
    except BaseException:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        raise
    log.info("sandbox up (pid %s, certificate %s): %s and %s (log %s)", process.pid, ready["ca_cert"],
             expected["salesforce"], expected["servicenow"], log_path)
    return SandboxProcess(process, expected["salesforce"], expected["servicenow"], Path(ready["ca_cert"]), log_path)


def _wait_for_ready(process: subprocess.Popen, ready_file: Path, log_path: Path, timeout_s: float) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        code = process.poll()
        if code is not None:
            raise SandboxStartError(f"the sandbox exited with code {code} before it was ready; "
                                    f"last lines of {log_path}:\n{_tail(log_path)}")
        if ready_file.exists():
            try:
                ready = json.loads(ready_file.read_text())
            except ValueError:
                ready = {}  # being written: look again
            if ready.get("pid") == process.pid:
                return ready
        time.sleep(0.1)
    raise SandboxStartError(f"the sandbox (pid {process.pid}) did not report ready within {timeout_s:.0f}s; "
                            f"last lines of {log_path}:\n{_tail(log_path)}")


# --- what the servers saw, as an outside observer reads it --------------------------------------


def server_stats(url: str, credentials: dict, ca_cert: Path | str) -> dict:
    """One sandbox server's request and write counters (``GET /__sandbox/stats``), over HTTPS."""
    import requests

    session = requests.Session()
    session.trust_env = False  # the sandbox is on localhost: never through a proxy
    session.verify = str(ca_cert)
    response = session.get(f"{url}/__sandbox/stats", auth=(credentials["username"], credentials["password"]),
                           timeout=30)
    response.raise_for_status()
    return response.json()


def write_counts(cfg) -> dict[str, int]:
    """``{"salesforce": n, "servicenow": n}``: every write each configured sandbox server has taken."""
    from northstar.settings import sandbox_credentials

    creds = sandbox_credentials(cfg)
    return {system: server_stats(url, creds[system], cfg.sandbox_ca_cert)["total_writes"]
            for system, url in (("salesforce", cfg.sandbox_salesforce_url),
                                ("servicenow", cfg.sandbox_servicenow_url))}
