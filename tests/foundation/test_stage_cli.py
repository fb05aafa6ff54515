"""One command-line style for every stage: ``python -m <stage> <verb>`` through ``northstar.cli``.

Each stage's ``__main__`` has a ``VERBS`` table (verb -> owning module, help) and runs ``stage_main``; no stage
builds its own ``argparse`` parser. The table names exactly the verbs its modules define, and every verb has a
handler. (ml/'s table is checked the same way, and for lazy imports, in tests/ml/test_cli_lazy.py.)
"""

from __future__ import annotations

import argparse
import ast
import importlib
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
STAGES = ("ingest", "expectations", "ml", "activate", "dashboard", "identity")
LIGHT_STAGES = ("ingest", "expectations", "activate", "dashboard")  # ml's modules import XGBoost and MLflow


def _calls(tree: ast.AST) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            names.add(func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", ""))
    return names


@pytest.mark.parametrize("stage", [s for s in STAGES if (REPO / s / "__main__.py").exists()])
def test_the_stage_command_line_goes_through_northstar_cli(stage):
    tree = ast.parse((REPO / stage / "__main__.py").read_text())
    calls = _calls(tree)
    assert "stage_main" in calls, f"{stage}/__main__.py does not run northstar.cli.stage_main"
    assert "ArgumentParser" not in calls, f"{stage}/__main__.py builds its own parser"
    verbs = importlib.import_module(f"{stage}.__main__").VERBS
    assert verbs and all(isinstance(m, str) and isinstance(h, str) for m, h in verbs.values())


@pytest.mark.parametrize("stage", LIGHT_STAGES)
def test_the_verb_table_matches_the_modules_and_every_verb_has_a_handler(stage):
    verbs = importlib.import_module(f"{stage}.__main__").VERBS
    for module in sorted({m for m, _ in verbs.values()}):
        parser = argparse.ArgumentParser()
        sub = parser.add_subparsers()
        importlib.import_module(module).add_parser(sub)
        assert set(sub.choices) == {name for name, (m, _) in verbs.items() if m == module}, module
        for name, verb_parser in sub.choices.items():
            assert callable(verb_parser.get_default("handler")), f"{stage} {name}: no handler"


def test_a_verb_runs_its_handler_and_verbose_sets_info(monkeypatch):
    import logging

    from northstar import cli

    seen = {}

    def add_parser(subparsers):
        p = subparsers.add_parser("hello")
        p.add_argument("--name", default="world")
        p.set_defaults(handler=lambda args: seen.setdefault("name", args.name) and 3)

    module = type(cli)("northstar_cli_probe")
    module.add_parser = add_parser
    monkeypatch.setitem(__import__("sys").modules, "northstar_cli_probe", module)
    monkeypatch.setattr(logging, "basicConfig", lambda **kw: seen.setdefault("level", kw["level"]))
    verbs = {"hello": ("northstar_cli_probe", "say hello"), "other": ("no.such.module", "never imported")}
    assert cli.stage_main("python -m probe", "probe", verbs, ["-v", "hello", "--name", "x"]) == 3
    assert seen == {"name": "x", "level": logging.INFO}
    with pytest.raises(SystemExit):
        cli.stage_main("python -m probe", "probe", verbs, ["nope"])
