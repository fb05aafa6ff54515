"""The sandbox servers hold up against hostile or unusual clients (issue 16, "Sandbox robustness").

An oversized body is refused (413) before it is read; a body without credentials is never read (401
at once); idle connections are closed after the server's timeout; chunked request bodies are read;
fault settings of the wrong type are refused and change nothing; a login with any credential shape
(non-ASCII, bytes) is a login error, never a 500.
"""

from __future__ import annotations

import base64
import json
import socket
import ssl
import threading
import time
from urllib.parse import urlsplit

import pytest
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceAuthenticationFailed

from sandbox.server import make_server
from tests.sandbox.conftest import set_faults

pytestmark = pytest.mark.integration

HUGE = 200 * 1024 * 1024


def tls_connect(url: str, ca) -> ssl.SSLSocket:
    parts = urlsplit(url)
    context = ssl.create_default_context(cafile=str(ca))
    raw = socket.create_connection((parts.hostname, parts.port), timeout=5)
    return context.wrap_socket(raw, server_hostname=parts.hostname)


def read_response(sock: ssl.SSLSocket) -> tuple[int, dict, bytes]:
    """One HTTP/1.1 response; raises socket.timeout if the server is still waiting for our body."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines[1:] if ":" in ln)}
    length = int(headers.get("content-length", 0))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return int(lines[0].split()[1]), headers, body


def basic(user: str, password: str | bytes) -> str:
    raw = user.encode() + b":" + (password if isinstance(password, bytes) else password.encode())
    return "Basic " + base64.b64encode(raw).decode()


def test_body_without_credentials_is_not_read(sandbox):
    for url, path in ((sandbox.salesforce_url, "/services/data/v59.0/jobs/ingest/750x/batches"),
                      (sandbox.servicenow_url, "/api/now/table/incident")):
        with tls_connect(url, sandbox.ca_cert) as sock:
            sock.sendall(f"PUT {path} HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n"
                         f"Content-Length: {HUGE}\r\n\r\n".encode() + b"a" * 1000)
            status, headers, body = read_response(sock)  # answered with 1 kB of 200 MB sent
        assert status == 401 and headers["connection"] == "close", (url, status, body)


def test_oversized_body_is_refused_before_it_is_read(sandbox):
    creds = sandbox.credentials["servicenow"]
    with tls_connect(sandbox.servicenow_url, sandbox.ca_cert) as sock:
        sock.sendall(f"POST /api/now/table/incident HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     f"Authorization: {basic(creds['username'], creds['password'])}\r\n"
                     f"Content-Length: {HUGE}\r\n\r\n".encode() + b"{")
        status, headers, body = read_response(sock)
        assert status == 413 and headers["connection"] == "close"
        assert json.loads(body)["status"] == "failure"
        assert sock.recv(1) == b""  # and the connection is closed: nothing more is read
    creds = sandbox.credentials["salesforce"]
    token = _oauth_token(sandbox)
    with tls_connect(sandbox.salesforce_url, sandbox.ca_cert) as sock:
        sock.sendall(f"POST /services/data/v59.0/sobjects/Account HTTP/1.1\r\nHost: x\r\n"
                     f"Authorization: Bearer {token}\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
                     + f"{HUGE:x}\r\n".encode() + b"a" * 1000)
        status, _, body = read_response(sock)
        assert status == 413 and json.loads(body)[0]["errorCode"] == "REQUEST_TOO_LARGE"
    assert creds  # the same servers keep answering afterwards
    assert _oauth_token(sandbox)


def _oauth_token(sandbox) -> str:
    import requests

    creds = sandbox.credentials["salesforce"]
    session = requests.Session()
    session.trust_env = False
    session.verify = str(sandbox.ca_cert)
    response = session.post(f"{sandbox.salesforce_url}/services/oauth2/token",
                            data={"grant_type": "client_credentials"}, auth=(creds["client_id"], creds["client_secret"]))
    response.raise_for_status()
    return response.json()["access_token"]


def test_idle_connections_are_closed_after_the_timeout(sandbox):
    server = make_server(sandbox.servicenow_app, "127.0.0.1", 0, sandbox.ca_cert, sandbox.state_dir / "key.pem",
                         idle_timeout_s=0.3)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        url = f"https://127.0.0.1:{server.server_address[1]}"
        idle = [tls_connect(url, sandbox.ca_cert) for _ in range(5)]
        half_open = socket.create_connection(("127.0.0.1", server.server_address[1]), timeout=5)  # no handshake
        started = time.monotonic()
        for sock in idle:
            assert sock.recv(1) == b""  # the server hung up; before the fix this blocked for ever
        assert half_open.recv(1) == b""
        assert time.monotonic() - started < 4
        for sock in [*idle, half_open]:
            sock.close()
    finally:
        server.shutdown()
        server.server_close()


def test_chunked_request_body_creates_the_incident_it_describes(sandbox, tls_session):
    creds = sandbox.credentials["servicenow"]
    payload = json.dumps({"short_description": "chunked break", "correlation_id": "BRK-CHUNKED"}).encode()

    def pieces():  # a generator body makes requests send Transfer-Encoding: chunked
        yield payload[:7]
        yield payload[7:]

    response = tls_session.post(f"{sandbox.servicenow_url}/api/now/table/incident", data=pieces(),
                                auth=(creds["username"], creds["password"]),
                                headers={"Content-Type": "application/json", "Accept": "application/json"})
    assert response.request.headers.get("Transfer-Encoding") == "chunked"
    assert response.status_code == 201
    assert response.json()["result"]["short_description"] == "chunked break"


@pytest.mark.parametrize(("system", "body"), [
    ("servicenow", {"unavailable": "2"}),
    ("servicenow", {"strict_close_info": "no"}),
    ("servicenow", {"batch_serve_limit": -1}),
    ("servicenow", {"lose_responses": True}),
    ("servicenow", {"batch_unavailable": 1}),
    ("salesforce", {"api_limit_after": -1}),
    ("salesforce", {"fail_records": ["HH1"]}),
    ("salesforce", {"delay_ms": 10**9}),
])
def test_fault_settings_of_the_wrong_type_are_refused_and_change_nothing(sandbox, tls_session, system, body):
    creds = sandbox.credentials[system]
    url = sandbox.salesforce_url if system == "salesforce" else sandbox.servicenow_url
    response = tls_session.post(f"{url}/__sandbox/faults", json={"expire_session": 1, **body},
                                auth=(creds["username"], creds["password"]))
    assert response.status_code == 400 and list(body)[0] in response.json()["error"]
    before = set_faults(sandbox, system, {}, tls_session)
    assert before["expire_session"] == 0 and before["unavailable"] == 0  # nothing applied
    health = tls_session.get(f"{sandbox.servicenow_url}/api/now/table/incident?sysparm_limit=1",
                             auth=tuple(sandbox.credentials["servicenow"].values()))
    assert health.status_code == 200


@pytest.mark.parametrize("password", ["pässwörd€", "密码", "\U0001f512", "", "x" * 5000])
def test_any_credential_shape_is_a_login_error(sandbox, tls_session, password):
    sf_creds = sandbox.credentials["salesforce"]
    port = sandbox.salesforce_url.rsplit(":", 1)[1]
    with pytest.raises(SalesforceAuthenticationFailed):
        Salesforce(username=sf_creds["username"], password=password, security_token="",
                   domain=f"127.0.0.1:{port}/services/Soap/u/59.0?", session=tls_session)
    token = tls_session.post(f"{sandbox.salesforce_url}/services/oauth2/token", data={
        "grant_type": "password", "client_id": sf_creds["client_id"], "client_secret": password,
        "username": sf_creds["username"], "password": password})
    assert token.status_code == 400
    sn_user = sandbox.credentials["servicenow"]["username"]
    for header in (basic(sn_user, password), basic(sn_user, password.encode("utf-8")),
                   "Basic " + base64.b64encode(b"\xff\xfe:\xff").decode(), "Basic !!notbase64", "Bearer x"):
        response = tls_session.get(f"{sandbox.servicenow_url}/api/now/table/incident",
                                   headers={"Authorization": header.encode("utf-8").decode("latin-1")})
        assert response.status_code == 401, header
