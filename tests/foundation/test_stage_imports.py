"""Stages never import each other; they share ``connectors/`` and ``northstar/`` (settings, the warehouse seam).

An AST scan of every Python file in the stage folders, the shared layers and the stand-ins, counting every
import wherever it is written (module level, inside a function, under ``TYPE_CHECKING``) and every string
naming a repository module (what ``importlib.import_module`` is given). The rules (the ``northstar``
package docstring says why):

* a stage (``ingest``, ``expectations``, ``ml``, ``activate``, ``dashboard``, ``identity`` when it comes,
  ``dbt_project`` if it ever grows Python) imports no other stage and not ``sandbox/``;
* ``connectors/`` imports no stage and not ``sandbox/``; ``sandbox/`` (the stand-in servers and the synthetic
  world) imports no stage;
* ``northstar/`` imports a stage or ``sandbox/`` only in the modules that wire them (:data:`WIRING`), and
  only the ones listed there.

``dags/``, ``tests/`` and ``bench/`` wire or exercise everything and are not scanned.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
STAGES = ("ingest", "expectations", "ml", "activate", "dashboard", "identity", "dbt_project")
STAND_INS = ("sandbox",)
SHARED = ("connectors", "northstar")
# northstar modules that wire stages together, and what each may import: the demo starts the sandbox and runs
# the DAGs, setup writes the sandbox's credentials into Airflow connections, the UI launcher serves the dashboard.
WIRING = {
    "northstar/demo.py": {"sandbox"},
    "northstar/bootstrap.py": {"sandbox"},
    "northstar/ui.py": {"dashboard"},
}


@dataclass(frozen=True)
class Import:
    file: str  # relative to the repository root
    line: int
    module: str  # the dotted name imported

    @property
    def package(self) -> str:
        return self.module.split(".")[0]

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.file.split('/')[0]} imports {self.module}"


def _is_module(root: Path, dotted: str) -> bool:
    path = root.joinpath(*dotted.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def imports(root: Path, folder: str) -> list[Import]:
    """Every import of a top-level package of the repository in ``root/folder``, wherever it is written."""
    found: list[Import] = []
    packages = set(STAGES + STAND_INS + SHARED)
    for path in sorted((root / folder).rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        for node in ast.walk(ast.parse(path.read_text(), filename=rel)):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            elif (isinstance(node, ast.Constant) and isinstance(node.value, str) and "." in node.value
                  and node.value.split(".")[0] in packages and _is_module(root, node.value)):
                names = [node.value]  # a module named as a string, e.g. for importlib.import_module
            else:
                continue
            found += [Import(rel, node.lineno, name) for name in names if name.split(".")[0] in packages]
    return found


def violations(root: Path) -> list[str]:
    """What breaks the rules in the module docstring, as ``file:line: <folder> imports <module>``."""
    bad: list[Import] = []
    for folder in STAGES + STAND_INS + ("connectors",):
        forbidden = set(STAGES + STAND_INS) - {folder}
        bad += [i for i in imports(root, folder) if i.package in forbidden]
    bad += [i for i in imports(root, "northstar")
            if i.package in STAGES + STAND_INS and i.package not in WIRING.get(i.file, set())]
    return [str(i) for i in bad]


def test_no_stage_imports_another_and_northstar_imports_stages_only_where_it_wires_them():
    assert violations(REPO) == []


def test_every_wiring_exception_is_still_needed():
    """An allow-list entry nobody uses any more is removed, so the list stays the truth."""
    used = {(i.file, i.package) for i in imports(REPO, "northstar")}
    stale = [(file, stage) for file, stages in WIRING.items() for stage in stages if (file, stage) not in used]
    assert stale == []


def test_the_scan_sees_imports_inside_functions_and_modules_named_as_strings(tmp_path):
    (tmp_path / "ml").mkdir()
    (tmp_path / "ml" / "__init__.py").write_text("")
    (tmp_path / "ml" / "registry.py").write_text("")
    (tmp_path / "activate").mkdir()
    (tmp_path / "activate" / "push.py").write_text(
        "import json\n"
        "def later():\n"
        "    from ml.registry import alias_version\n"
        "    import importlib\n"
        "    return importlib.import_module('ml.registry')\n"
        "LOG = 'ml.log'  # a file name, not a module\n"
    )
    (tmp_path / "northstar").mkdir()
    (tmp_path / "northstar" / "recon.py").write_text("import ml\n")
    assert violations(tmp_path) == [
        "activate/push.py:3: activate imports ml.registry",
        "activate/push.py:5: activate imports ml.registry",
        "northstar/recon.py:1: northstar imports ml",
    ]
