"""Shared test plumbing: every test runs against its own NORTHSTAR_HOME (never the repo's var/)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent

# Quiet, offline defaults for every tool the suite touches.
os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "False")
os.environ.setdefault("AIRFLOW__COSMOS__ENABLE_TELEMETRY", "False")
os.environ.setdefault("SCARF_ANALYTICS", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
# as ml/__init__.py does, before a test module imports xgboost ahead of ml (two workers share two cores)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups off the markers
def pytest_collection_modifyitems(config, items):
    """Keep each expensive shared fixture on one pytest-xdist worker (`make test` runs `-n 2 --dist loadgroup`).

    Tests that share one of the project's session-scoped fixtures (the demo world the e2e tests share,
    the trained models, the sandbox servers), directly or through another test, form one group; every
    other test groups with its module, so module-scoped fixtures are built once too. Without xdist
    this is inert.
    """
    parent: dict[str, str] = {}

    def find(key: str) -> str:
        while parent.setdefault(key, key) != key:
            key = parent[key]
        return key

    shared_by_item = {}
    for item in items:
        info = getattr(item, "_fixtureinfo", None)
        shared = sorted(
            f"{defs[-1].baseid or '.'}::{name}" for name, defs in (info.name2fixturedefs.items() if info else [])
            if defs and defs[-1].scope == "session" and defs[-1].baseid.startswith("tests")
        )
        shared_by_item[item.nodeid] = shared
        for other in shared[1:]:
            parent[find(other)] = find(shared[0])
    group_of = {}
    for item in items:
        shared = shared_by_item[item.nodeid]
        group_of[item.nodeid] = find(shared[0]) if shared else item.nodeid.split("::", 1)[0]
        item.add_marker(pytest.mark.xdist_group(group_of[item.nodeid]))
    # Longest first (`make test` passes --no-loadscope-reorder so xdist keeps this order): the demo
    # world's group is the critical path and starts at once on one worker, the stack suite on the other,
    # then the Spark build (tests/dbt/test_spark_equivalence.py: minutes of one JVM) as soon as a worker
    # frees (xdist hands a worker its next group only when the current one is nearly done), and the many
    # short groups fill in behind. Within a group the file order stays (the e2e files depend on it).
    size = {}
    for group in group_of.values():
        size[group] = size.get(group, 0) + 1
    heavy = {group_of[item.nodeid]: rank for rank, marker in ((0, "e2e"), (1, "stack"), (2, "spark"))
             for item in items if item.get_closest_marker(marker)}
    position = {item.nodeid: index for index, item in enumerate(items)}
    items.sort(key=lambda item: (heavy.get(group_of[item.nodeid], 3), -size[group_of[item.nodeid]],
                                 group_of[item.nodeid], position[item.nodeid]))


VAR_PATH_OVERRIDES = tuple("NORTHSTAR_" + name for name in (
    "WAREHOUSE", "LANDING", "DROP", "TRUTH", "SANDBOX_STATE", "MLFLOW_DIR", "DBT_TARGET_PATH", "GX_ROOT",
    "DUCKDB_TEMP_DIR", "STACK_DIR", "NO_AIRFLOW_CONNECTIONS"))


@pytest.fixture
def northstar_home(tmp_path, monkeypatch):
    """A private var/ for one test: settings() resolves every path under it."""
    from northstar import settings as settings_module

    home = tmp_path / "var"
    monkeypatch.setenv("NORTHSTAR_HOME", str(home))
    # A session fixture elsewhere in this worker (tests/ml's world) may point the landing, truth or
    # warehouse at its own world for the whole session: every path under var/ must follow this home.
    for name in VAR_PATH_OVERRIDES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("AIRFLOW_HOME", raising=False)
    settings_module.reset_cache()
    cfg = settings_module.settings()
    cfg.paths.ensure()
    yield cfg
    settings_module.reset_cache()


@pytest.fixture
def dbt_project_with_prime_broker(tmp_path, monkeypatch):
    """Factory: a private copy of ``dbt_project/`` with one more row in the seed ``prime_brokers``, and the
    settings pointed at it (``NORTHSTAR_DBT_PROJECT`` / ``NORTHSTAR_DBT_PROFILES``). The seeds are the one owner
    of the reference data for dbt and for Python (``northstar.reference``), so the landing code and dbt both
    see the new broker while the repository's seeds stay untouched."""
    import shutil

    from northstar import settings as settings_module

    def make(prime_broker: str, name: str) -> Path:
        copy = tmp_path / f"dbt_project_{prime_broker}"
        shutil.copytree(REPO_ROOT / "dbt_project", copy,
                        ignore=shutil.ignore_patterns("target", "logs", "dbt_packages", ".user.yml"))
        seed = copy / "seeds" / "prime_brokers.csv"
        text = seed.read_text()
        seed.write_text(text + ("" if text.endswith("\n") else "\n") + f"{prime_broker},{name}\n")
        monkeypatch.setenv("NORTHSTAR_DBT_PROJECT", str(copy))
        monkeypatch.setenv("NORTHSTAR_DBT_PROFILES", str(copy))
        settings_module.reset_cache()
        return copy

    yield make
    settings_module.reset_cache()


# --- browser tests -------------------------------------------------------------------------------
# Debian's Chromium driven by the `playwright` package (no browser download: `make system-deps`
# installs `chromium`). Every page a test opens records its network requests; the test fails if any
# request leaves localhost, because every surface must work inside a bank's network with no internet.

LOCAL_HOSTS = {"127.0.0.1", "localhost", "[::1]", "::1"}


def chromium_path() -> str:
    import shutil

    path = os.environ.get("NORTHSTAR_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        pytest.fail("Chromium is not installed: `make system-deps` installs Debian's `chromium` package")
    return path


@pytest.fixture(scope="module")
def browser():
    """One headless Chromium per test module (launching costs ~1 s; pages are cheap).

    Not per session: Playwright's sync API marks its event loop as running in the main thread while it
    is open, so any later test that calls ``asyncio.run`` in-process would fail."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium_path(), headless=True,
                                              args=["--no-sandbox", "--disable-dev-shm-usage"])
        yield launched
        launched.close()


class OfflinePage:
    """A browser page plus the URLs it requested; `assert_offline()` fails on any non-local request."""

    def __init__(self, context):
        self.context = context
        self.page = context.new_page()
        self.requests: list[str] = []
        self.page.on("request", lambda request: self.requests.append(request.url))

    def external_requests(self) -> list[str]:
        from urllib.parse import urlparse

        external = []
        for url in self.requests:
            parsed = urlparse(url)
            if parsed.scheme in ("data", "blob", "about", "chrome-extension"):
                continue
            if parsed.hostname not in LOCAL_HOSTS:
                external.append(url)
        return external

    def assert_offline(self) -> None:
        external = self.external_requests()
        assert not external, f"page requested {len(external)} URL(s) outside localhost: {external[:5]}"


@pytest.fixture
def offline_page_factory(browser):
    """Pages in fresh contexts, closed after the test (for tests that check the guard itself)."""
    contexts = []

    def make(**context_args) -> OfflinePage:
        context = browser.new_context(**{"viewport": {"width": 1440, "height": 900}, **context_args})
        contexts.append(context)
        return OfflinePage(context)

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def offline_page(offline_page_factory):
    """A fresh browser page; after the test, no request may have left localhost."""
    wrapped = offline_page_factory()
    yield wrapped
    wrapped.assert_offline()
