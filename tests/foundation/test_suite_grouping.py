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


def test_the_longest_groups_are_handed_out_first(tmp_path):
    """`make test` keeps the collection order (--no-loadscope-reorder): the e2e world's group first, then
    the stack suite, then the rest by size, so the critical path starts at once on its own worker."""
    suite = tmp_path / "suite" / "tests"
    suite.mkdir(parents=True)
    shutil.copy(REPO_CONFTEST, suite / "conftest.py")
    with (suite / "conftest.py").open("a") as conftest:
        conftest.write(SHARED)
    (suite / "test_0_small.py").write_text("def test_small():\n    pass\n")
    (suite / "test_1_shared.py").write_text(TESTS.format(n=1))
    (suite / "test_2_stack.py").write_text("import pytest\n\npytestmark = pytest.mark.stack\n\n\ndef test_stack():\n    pass\n")
    (suite / "test_3_world.py").write_text("import pytest\n\npytestmark = pytest.mark.e2e\n\n\n"
                                           "def test_first(shared):\n    pass\n\n\ndef test_second():\n    pass\n")
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "--collect-only", "-p", "no:cacheprovider", str(suite)],
                            cwd=suite.parent, capture_output=True, text=True, timeout=300)
    order = [line.split("::")[-1] for line in result.stdout.splitlines() if "::" in line]
    # the e2e test that shares the world pulls the whole shared group to the front; test_second, alone
    # in its module, is an e2e group of one; groups of one size keep their name order
    assert order == ["test_a1", "test_b1", "test_first", "test_second", "test_stack", "test_small", "test_alone1"], result.stdout
