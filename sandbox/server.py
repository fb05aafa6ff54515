"""Run the sandbox Salesforce and ServiceNow servers over HTTPS (stdlib ``http.server`` + ``ssl``).

``python -m sandbox serve`` runs both in the foreground; tests use ``start_in_thread``. Each
server is an app object (``sandbox.salesforce.app.SalesforceApp``, ``sandbox.servicenow.app.
ServiceNowApp``) that turns a ``Request`` into a ``Response``; this module owns sockets, TLS,
threads, logging (one line per request, never headers or bodies, so no credential is logged) and
the shared admin endpoints under ``/__sandbox/``.
"""

from __future__ import annotations

import base64
import errno
import json
import logging
import os
import secrets
import signal
import socket
import ssl
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

from sandbox.faults import Faults
from sandbox.tls import ensure_certificate, server_context

log = logging.getLogger("sandbox")


@dataclass
class Request:
    method: str
    path: str  # without the query string, still percent-encoded
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: bytes
    base_url: str  # https://host:port as the client addressed us

    @property
    def segments(self) -> list[str]:
        return [unquote(p) for p in self.path.strip("/").split("/") if p != ""]

    def header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name.lower(), default)

    def json(self):
        return json.loads(self.body.decode("utf-8") or "null")

    def basic_auth(self) -> tuple[str, str] | None:
        value = self.header("authorization") or ""
        if not value.lower().startswith("basic "):
            return None
        try:
            user, _, password = base64.b64decode(value[6:].strip()).decode("utf-8").partition(":")
        except (ValueError, UnicodeDecodeError):
            return None
        return user, password


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json;charset=UTF-8"
    headers: dict[str, str] = field(default_factory=dict)
    # The ``lose_responses`` fault: the request was applied, but the connection closes unanswered.
    lost: bool = False

    @classmethod
    def json(cls, data, status: int = 200, headers: dict | None = None) -> Response:
        return cls(status, json.dumps(data).encode("utf-8"), headers=dict(headers or {}))

    @classmethod
    def empty(cls, status: int = 204, headers: dict | None = None) -> Response:
        return cls(status, b"", content_type="", headers=dict(headers or {}))


def same_secret(given, expected) -> bool:
    """Constant-time comparison for any credential shape (non-ASCII text, bytes, None) without raising.

    ``secrets.compare_digest`` raises TypeError on non-ASCII str, which turned a wrong password
    into a 500 instead of a login error.
    """
    if given is None or expected is None:
        return False
    if isinstance(given, str):
        given = given.encode("utf-8", "surrogatepass")
    if isinstance(expected, str):
        expected = expected.encode("utf-8", "surrogatepass")
    if not isinstance(given, bytes) or not isinstance(expected, bytes):
        return False
    return secrets.compare_digest(given, expected)


class SandboxApp:
    """Shared behaviour of both emulated systems: admin endpoints and fault switches."""

    name = "sandbox"
    # The largest request body read; a bigger one is answered 413 before reading beyond the cap.
    max_body_bytes = 16 * 1024 * 1024

    def __init__(self, faults: Faults | None = None):
        self.faults = faults or Faults()

    def admin_credentials(self) -> tuple[str, str]:
        raise NotImplementedError

    def error(self, status: int, code: str, message: str) -> Response:
        """An error in the emulated system's own envelope (overridden per app)."""
        return Response.json({"error": {"message": message, "code": code}}, status)

    def authorized_before_body(self, request: Request) -> bool:
        """Whether the request's credentials (headers only) may have its body read at all.

        Checked before the body is read, so an unauthenticated client cannot make the server read
        (or wait for) a large upload. Login endpoints, whose credentials are in the body, say True.
        """
        if request.path.startswith("/__sandbox/"):
            return request.path.rstrip("/") == "/__sandbox/health" or self._admin_ok(request)
        return True

    def unauthenticated(self, request: Request) -> Response:
        """The 401 this system answers to missing or wrong credentials."""
        if request.path.startswith("/__sandbox/"):
            return Response.json({"error": "admin endpoints need the sandbox's Basic credentials"}, 401)
        return self.error(401, "UNAUTHORIZED", "authentication required")

    def _admin_ok(self, request: Request) -> bool:
        auth = request.basic_auth()
        if auth is None:
            return False
        user, password = self.admin_credentials()
        return auth[0] == user and same_secret(auth[1], password)

    def dispatch(self, request: Request) -> Response:
        raise NotImplementedError

    def handle(self, request: Request) -> Response:
        if request.path.startswith("/__sandbox/"):
            return self.admin(request)
        writes_before = self.faults.total_writes()
        response = self.dispatch(request)
        if self.faults.total_writes() > writes_before and self.faults.take_lost_response():
            response.lost = True
        return response

    def admin(self, request: Request) -> Response:
        if request.path.rstrip("/") == "/__sandbox/health":  # liveness only: no data, no auth
            # The pid lets a launcher prove it reaches the process it started, not a foreign server.
            return Response.json({"status": "ok", "app": self.name, "pid": os.getpid()})
        if not self._admin_ok(request):
            return Response.json({"error": "admin endpoints need the sandbox's Basic credentials"}, 401)
        route = request.path.rstrip("/")
        if route == "/__sandbox/faults" and request.method == "GET":
            return Response.json(self.faults.describe())
        if route == "/__sandbox/faults" and request.method in {"POST", "PUT", "PATCH"}:
            try:
                return Response.json(self.faults.configure(request.json() or {}))
            except (ValueError, TypeError) as exc:
                return Response.json({"error": str(exc)}, 400)
        if route == "/__sandbox/stats" and request.method == "GET":
            return Response.json(self.faults.stats.as_json())
        if route == "/__sandbox/reset-stats" and request.method == "POST":
            self.faults.reset_stats()
            return Response.json(self.faults.stats.as_json())
        return Response.json({"error": f"no admin endpoint {request.method} {route}"}, 404)


class _BodyRefused(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes: with Nagle's algorithm the body waits for the client's
    # delayed ACK of the headers, 40 ms on every keep-alive request (a real API answers in ~1 ms).
    disable_nagle_algorithm = True
    server_version = "NorthstarSandbox/1.0"
    sys_version = ""

    def setup(self) -> None:
        # An idle or stalled connection is closed after the server's timeout instead of holding a
        # thread for ever (StreamRequestHandler applies self.timeout to the socket).
        self.timeout = self.server.idle_timeout_s  # type: ignore[attr-defined]
        super().setup()

    def _read_body(self, limit: int) -> bytes:
        """The request body, Content-Length or chunked, never reading more than limit bytes."""
        encoding = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in encoding:
            return self._read_chunked(limit)
        if encoding and encoding != "identity":
            raise _BodyRefused(501, "NOT_IMPLEMENTED", f"Transfer-Encoding {encoding} is not supported")
        text = (self.headers.get("Content-Length") or "0").strip()
        if not text.isdigit():
            raise _BodyRefused(400, "BAD_REQUEST", f"invalid Content-Length: {text[:40]!r}")
        length = int(text)
        if length > limit:
            raise _BodyRefused(413, "REQUEST_TOO_LARGE",
                               f"request body of {length} bytes exceeds the limit of {limit} bytes")
        body = self.rfile.read(length) if length else b""
        if len(body) < length:
            raise _BodyRefused(400, "BAD_REQUEST", "request body shorter than its Content-Length")
        return body

    def _read_chunked(self, limit: int) -> bytes:
        parts, total = [], 0
        while True:
            line = self.rfile.readline(1026)
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise _BodyRefused(400, "BAD_REQUEST", "malformed chunked request body") from None
            if size == 0:
                while self.rfile.readline(8194) not in (b"\r\n", b"\n", b""):
                    pass  # trailer fields: ignored
                return b"".join(parts)
            total += size
            if total > limit:
                raise _BodyRefused(413, "REQUEST_TOO_LARGE",
                                   f"request body exceeds the limit of {limit} bytes")
            chunk = self.rfile.read(size)
            if len(chunk) < size or self.rfile.readline(3) not in (b"\r\n", b"\n"):
                raise _BodyRefused(400, "BAD_REQUEST", "malformed chunked request body")
            parts.append(chunk)

    def _serve(self) -> None:
        started = time.perf_counter()
        app: SandboxApp = self.server.app  # type: ignore[attr-defined]
        parts = urlsplit(self.path)
        host = self.headers.get("Host") or f"127.0.0.1:{self.server.server_address[1]}"
        request = Request(
            method=self.command,
            path=parts.path,
            query=dict(parse_qsl(parts.query, keep_blank_values=True)),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=b"",
            base_url=f"https://{host}",
        )
        try:
            if not app.authorized_before_body(request):
                # Unread body: answer at once and close, so nothing more is read from this client.
                raise _BodyRefused(401, "INVALID_SESSION_ID", "Session expired or invalid")
            request.body = self._read_body(app.max_body_bytes)
        except _BodyRefused as refused:
            self.close_connection = True
            response = (app.unauthenticated(request) if refused.status == 401
                        else app.error(refused.status, refused.code, refused.message))
            response.headers["Connection"] = "close"
        else:
            try:
                response = app.handle(request)
            except Exception:  # noqa: BLE001 - a server bug must answer 500, not kill the connection
                log.exception("%s %s %s failed", app.name, self.command, parts.path)
                response = Response.json([{"message": "internal sandbox error", "errorCode": "UNKNOWN_EXCEPTION"}],
                                         500)
        if response.lost:  # applied, but the client never hears of it
            self.close_connection = True
            log.info("%s %s %s applied, response lost (fault)", app.name, self.command, parts.path)
            return
        self.send_response(response.status)
        if response.content_type:
            self.send_header("Content-Type", response.content_type)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)
        elapsed = (time.perf_counter() - started) * 1000
        # Path only: query strings and headers may carry tokens; bodies carry passwords.
        log.info("%s %s %s %d %.0fms", app.name, self.command, parts.path, response.status, elapsed)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _serve

    def log_message(self, format, *args):  # noqa: A002 - http.server's signature
        pass  # replaced by the one line per request above


class _TLSServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address, app: SandboxApp, context: ssl.SSLContext, idle_timeout_s: float = 60.0):
        self.app = app
        self.ssl_context = context
        self.idle_timeout_s = idle_timeout_s
        super().__init__(address, _Handler)

    def finish_request(self, request, client_address):
        # The TLS handshake runs in the worker thread, so a slow client never blocks accept(); the
        # timeout bounds a client that connects and never completes it.
        request.settimeout(self.idle_timeout_s)
        try:
            request = self.ssl_context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return
        super().finish_request(request, client_address)

    def handle_error(self, request, client_address):
        log.debug("connection error from %s", client_address, exc_info=True)


DEFAULT_IDLE_TIMEOUT_S = 60.0


def make_server(app: SandboxApp, host: str, port: int, cert: Path, key: Path,
                idle_timeout_s: float = DEFAULT_IDLE_TIMEOUT_S) -> _TLSServer:
    return _TLSServer((host, port), app, server_context(cert, key), idle_timeout_s)


class PortTaken(OSError):
    """A configured sandbox port is held by another process (the message names it)."""


@dataclass
class SandboxHandle:
    salesforce_url: str
    servicenow_url: str
    ca_cert: Path
    state_dir: Path
    credentials: dict
    salesforce_app: SandboxApp
    servicenow_app: SandboxApp
    _servers: list = field(default_factory=list, repr=False)
    _threads: list = field(default_factory=list, repr=False)

    def stop(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        self._servers.clear()


def build_apps(state_dir: Path, credentials: dict):
    from sandbox.salesforce.app import SalesforceApp
    from sandbox.servicenow.app import ServiceNowApp

    state_dir = Path(state_dir)
    return (
        SalesforceApp(state_dir / "salesforce.db", credentials["salesforce"]),
        ServiceNowApp(state_dir / "servicenow.db", credentials["servicenow"]),
    )


def _load_credentials(credentials: dict | None) -> dict:
    if credentials is not None:
        return credentials
    from northstar.settings import settings
    from sandbox.credentials import ensure_credentials

    return ensure_credentials(settings())


def start_in_thread(
    state_dir: Path,
    sf_port: int = 0,
    sn_port: int = 0,
    credentials: dict | None = None,
    host: str = "127.0.0.1",
) -> SandboxHandle:
    """Start both servers on background threads (port 0 = a free port) and wait until they answer."""
    state_dir = Path(state_dir)
    credentials = _load_credentials(credentials)
    cert, key = ensure_certificate(state_dir)
    sf_app, sn_app = build_apps(state_dir, credentials)
    servers = []
    try:
        for name, app, port in (("salesforce", sf_app, sf_port), ("servicenow", sn_app, sn_port)):
            try:
                servers.append(make_server(app, host, port, cert, key))
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE:
                    raise
                from sandbox.launcher import port_taken_message

                env_var = f"NORTHSTAR_{name.upper()}_PORT"
                raise PortTaken(port_taken_message(name, host, port, env_var)) from exc
    except BaseException:
        for server in servers:  # never leave the first server bound when the second cannot start
            server.server_close()
        raise
    threads = []
    for server in servers:
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        thread.start()
        threads.append(thread)
    url_host = "127.0.0.1" if host in {"0.0.0.0", ""} else host  # noqa: S104 - comparing, not binding
    handle = SandboxHandle(
        salesforce_url=f"https://{url_host}:{servers[0].server_address[1]}",
        servicenow_url=f"https://{url_host}:{servers[1].server_address[1]}",
        ca_cert=cert,
        state_dir=state_dir,
        credentials=credentials,
        salesforce_app=sf_app,
        servicenow_app=sn_app,
        _servers=servers,
        _threads=threads,
    )
    wait_until_ready(handle.salesforce_url, cert)
    wait_until_ready(handle.servicenow_url, cert)
    return handle


def wait_until_ready(url: str, ca: Path | str, timeout_s: float = 30.0) -> None:
    """Block until the server at url completes a TLS handshake and answers /__sandbox/health."""
    parts = urlsplit(url)
    context = ssl.create_default_context(cafile=str(ca))
    deadline = time.monotonic() + timeout_s
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((parts.hostname, parts.port or 443), timeout=2) as raw:
                with context.wrap_socket(raw, server_hostname=parts.hostname) as tls:
                    tls.sendall(
                        f"GET /__sandbox/health HTTP/1.1\r\nHost: {parts.netloc}\r\nConnection: close\r\n\r\n".encode()
                    )
                    if tls.recv(12).startswith(b"HTTP/1."):
                        return
        except OSError as exc:
            last_error = exc
        time.sleep(0.05)
    raise TimeoutError(f"sandbox server {url} not ready after {timeout_s}s: {last_error}")


def serve(state_dir: Path, sf_port: int, sn_port: int, host: str = "127.0.0.1") -> int:
    """Run both servers in the foreground until SIGTERM/SIGINT; write server.pid and server.ready."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    state_dir = Path(state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    pid_file, ready_file = state_dir / "server.pid", state_dir / "server.ready"
    ready_file.unlink(missing_ok=True)
    try:
        handle = start_in_thread(state_dir, sf_port, sn_port, host=host)
    except PortTaken as exc:
        print(f"sandbox: {exc}", file=sys.stderr, flush=True)
        return 2
    stop = threading.Event()

    def _stop(signum, _frame):
        log.info("signal %s: stopping", signum)
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    pid_file.write_text(f"{os.getpid()}\n")
    # Written only once both servers answer, and atomically: a reader never sees half a file.
    tmp_ready = ready_file.with_suffix(".tmp")
    tmp_ready.write_text(
        json.dumps(
            {
                "pid": os.getpid(),
                "salesforce_url": handle.salesforce_url,
                "servicenow_url": handle.servicenow_url,
                "ca_cert": str(handle.ca_cert),
            }
        )
    )
    os.replace(tmp_ready, ready_file)
    print(f"salesforce  {handle.salesforce_url}", flush=True)
    print(f"servicenow  {handle.servicenow_url}", flush=True)
    print(f"ca cert     {handle.ca_cert}  (requests: verify=<cert> with trust_env=False)", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        handle.stop()
        pid_file.unlink(missing_ok=True)
        ready_file.unlink(missing_ok=True)
    return 0


def admin_call(system: str, method: str, endpoint: str, body: dict | None = None,
               state_dir: Path | None = None) -> dict:
    """Call a running server's admin endpoint (``faults``, ``stats``, ``reset-stats``) from Python/CLI."""
    import requests

    from northstar.settings import settings
    from sandbox.credentials import ensure_credentials

    cfg = settings()
    state_dir = Path(state_dir or cfg.paths.sandbox_state)
    ready = state_dir / "server.ready"
    urls = json.loads(ready.read_text()) if ready.exists() else {
        "salesforce_url": cfg.sandbox_salesforce_url, "servicenow_url": cfg.sandbox_servicenow_url,
    }
    creds = ensure_credentials(cfg)[system]
    session = requests.Session()
    session.trust_env = False  # the machine-wide REQUESTS_CA_BUNDLE would override verify=
    session.verify = str(state_dir / "cert.pem")
    response = session.request(
        method, f"{urls[f'{system}_url']}/__sandbox/{endpoint}", json=body,
        auth=(creds["username"], creds["password"]), timeout=30,
    )
    response.raise_for_status()
    return response.json()
