"""The browser harness itself: Debian's Chromium starts offline and the external-request guard bites."""

from __future__ import annotations

import http.server
import threading
from functools import partial

import pytest


@pytest.fixture
def local_site(tmp_path):
    (tmp_path / "index.html").write_text(
        "<html><head><title>northstar harness</title>"
        '<link rel="stylesheet" href="style.css"></head><body><h1>local</h1></body></html>'
    )
    (tmp_path / "style.css").write_text("h1 { color: rgb(1, 2, 3); }")
    (tmp_path / "external.html").write_text(
        '<html><head><script src="https://cdn.example.invalid/lib.js"></script></head><body>x</body></html>'
    )
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_local_page_renders_with_its_stylesheet(offline_page, local_site):
    offline_page.page.goto(f"{local_site}/index.html")
    assert offline_page.page.title() == "northstar harness"
    color = offline_page.page.eval_on_selector("h1", "el => getComputedStyle(el).color")
    assert color == "rgb(1, 2, 3)"
    assert offline_page.external_requests() == []


def test_a_cdn_request_is_caught(offline_page_factory, local_site):
    wrapped = offline_page_factory()
    wrapped.page.goto(f"{local_site}/external.html")
    assert wrapped.external_requests() == ["https://cdn.example.invalid/lib.js"]
    with pytest.raises(AssertionError, match="outside localhost"):
        wrapped.assert_offline()
