"""`make test` runs on two pytest-xdist workers and relies on tests/conftest.py keeping every test that
shares a session fixture on one worker (the e2e demo world takes minutes to build). A pytest or
pytest-xdist upgrade once broke `--dist loadgroup` silently; this runs a tiny suite through the same
hook and fails if a shared fixture is built on more than one worker."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

REPO_CONFTEST = Path(__file__).resolve().parents[1] / "conftest.py"

TESTS = """
import os


def test_a{n}(shared):
    shared.joinpath(os.environ["PYTEST_XDIST_WORKER"]).touch()


def test_b{n}(shared):
    shared.joinpath(os.environ["PYTEST_XDIST_WORKER"]).touch()


def test_alone{n}():
    pass
"""

SHARED = """

@pytest.fixture(scope="session")
def shared(tmp_path_factory):
    folder = Path(os.environ["GROUPING_OUT"]) / os.environ["PYTEST_XDIST_WORKER"]
    folder.mkdir(parents=True)
    return folder
"""


def test_tests_sharing_a_session_fixture_run_on_one_worker(tmp_path):
    suite = tmp_path / "suite" / "tests"
    suite.mkdir(parents=True)
    shutil.copy(REPO_CONFTEST, suite / "conftest.py")
    with (suite / "conftest.py").open("a") as conftest:
        conftest.write(SHARED)
    for n in range(4):
        (suite / f"test_{n}.py").write_text(TESTS.format(n=n))
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "2", "--dist", "loadgroup", str(suite)],
        cwd=suite.parent, capture_output=True, text=True, timeout=300,
        env={**__import__("os").environ, "GROUPING_OUT": str(out)},
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "12 passed" in result.stdout, result.stdout[-2000:]
    built_on = sorted(p.name for p in out.iterdir())
    assert len(built_on) == 1, f"the session fixture was built on {built_on}"
