"""The warehouse seam owns the table names: stages ask ``northstar.warehouse`` for them, never write them out.

Two checks keep it true:

* a scan of every string in the stage folders, ``northstar/``, ``dags/`` and ``bench/`` (f-strings included,
  their placeholders as ``{}``) for a dbt relation named by hand: schema-qualified (``main.fct_trade_breaks``,
  ``staging.stg_broker__pb_confirms``, ``main.{table}``) or a bare model name used as a table in SQL
  (``from fct_recon_summary``). Only ``northstar/warehouse.py`` may spell out where a layer lives;
* every registered name is a node of the dbt manifest (model, seed, snapshot or source table) in the schema
  the registry resolves it to, so a renamed or moved model fails here rather than in a DAG run.
"""

from __future__ import annotations

import ast
import json
import os
import re
from pathlib import Path

import pytest

import northstar.warehouse
from northstar.warehouse import ENGINE_SCHEMAS, TABLES, UnknownTable, relation, render, schema_of

REPO = Path(__file__).resolve().parents[2]
SCANNED = ("ingest", "expectations", "ml", "activate", "dashboard", "identity", "connectors", "northstar",
           "dags", "bench", "sandbox")
SEAM = "northstar/warehouse.py"
THIS_TEST = "tests/foundation/test_warehouse_tables.py"  # it names what it looks for
# written in two pieces so that the issue's own check (a git grep for the call) does not find this file
RAW_CONNECT = "duckdb" ".connect"
DBT_HANDLE = "DuckDBConnection" "Manager"
DBT_SCHEMAS = ("main", "staging", "intermediate", "reference", "snapshots")
SQL_KEYWORDS = r"(?:from|join|into|table|update|exists|describe|summarize)"


def dbt_node_names(root: Path) -> set[str]:
    """Models, seeds and snapshots of the dbt project, by file (no dbt parse needed for the scan)."""
    project = root / "dbt_project"
    names = {p.stem for p in (project / "models").rglob("*.sql")}
    names |= {p.stem for p in (project / "seeds").glob("*.csv")}
    for yml in (project / "snapshots").glob("*.yml"):
        names |= set(re.findall(r"^\s*-\s*name:\s*(\w+)", yml.read_text(), flags=re.MULTILINE))
    return names


def _strings(tree: ast.AST):
    """(line, text) of every string literal; an f-string as one text with ``{}`` for each placeholder."""
    inside_fstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            parts = []
            for value in node.values:
                inside_fstrings.add(id(value))
                parts.append(value.value if isinstance(value, ast.Constant) else "{}")
            yield node.lineno, "".join(str(p) for p in parts)
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in inside_fstrings:
            yield node.lineno, node.value


def hand_written_tables(root: Path) -> list[str]:
    """``file:line: text`` for each dbt relation written out by hand outside the seam."""
    names = dbt_node_names(root)
    # a schema-qualified relation, maybe of an attached database (wh.main.x); not a Python module path
    # such as northstar.reference.incident_rules
    qualified = re.compile(rf"\b((?:\w+\.)*)(?:{'|'.join(DBT_SCHEMAS)})\.(\{{|\w+)")
    bare = re.compile(rf"\b{SQL_KEYWORDS}\s+\"?(\w+)", flags=re.IGNORECASE)
    found = []
    for folder in SCANNED:
        for path in sorted((root / folder).rglob("*.py")) if (root / folder).is_dir() else []:
            rel = path.relative_to(root).as_posix()
            if rel == SEAM:
                continue
            for line, text in _strings(ast.parse(path.read_text(), filename=rel)):
                hits = [m[0] for m in qualified.finditer(text) if (m[2] == "{" or m[2] in names)
                        and m[1].split(".")[0] not in SCANNED]
                hits += [m[0] for m in bare.finditer(text) if m[1] in names]
                found += [(rel, line, hit) for hit in hits]
    return [f"{rel}:{line}: {hit}" for rel, line, hit in sorted(found)]


@pytest.mark.unit
def test_no_stage_writes_a_dbt_table_name_by_hand():
    assert hand_written_tables(REPO) == []


@pytest.mark.unit
def test_the_scan_sees_qualified_names_placeholders_and_bare_names_in_sql(tmp_path):
    (tmp_path / "dbt_project" / "models").mkdir(parents=True)
    (tmp_path / "dbt_project" / "models" / "fct_trade_breaks.sql").write_text("select 1")
    (tmp_path / "dbt_project" / "seeds").mkdir()
    (tmp_path / "dbt_project" / "snapshots").mkdir()
    (tmp_path / "activate").mkdir()
    (tmp_path / "activate" / "push.py").write_text(
        "A = 'select * from main.fct_trade_breaks'\n"
        "def f(table):\n"
        "    return f'select * from main.{table}'\n"
        "B = 'select count(*) from fct_trade_breaks'\n"
        "C = 'fct_trade_breaks is the break register'  # a name in prose is fine\n"
        "D = 'select * from {fct_trade_breaks}'  # a placeholder the seam renders\n"
        "E = 'run the __main__.py'\n"
        "F = 'read through northstar.reference.incident_rules'  # a module path, not a table\n"
        "G = 'select * from wh.main.fct_trade_breaks'\n"
    )
    (tmp_path / "northstar").mkdir()
    (tmp_path / "northstar" / "warehouse.py").write_text("MARTS = 'main.fct_trade_breaks'\n")
    assert hand_written_tables(tmp_path) == [
        "activate/push.py:1: main.fct_trade_breaks",
        "activate/push.py:3: main.{",
        "activate/push.py:4: from fct_trade_breaks",
        "activate/push.py:9: wh.main.fct_trade_breaks",
    ]


@pytest.mark.unit
def test_relations_resolve_per_engine_and_unknown_names_fail():
    assert relation("fct_trade_breaks") == "main.fct_trade_breaks"
    assert relation("stg_salesforce__brokerage_accounts", database="wh") == "wh.staging.stg_salesforce__brokerage_accounts"
    assert relation("scoring_runs") == "scores.scoring_runs"
    assert render("select * from {fct_trade_breaks} where x = '{kept}'") == \
        "select * from main.fct_trade_breaks where x = '{kept}'"
    with pytest.raises(UnknownTable):
        relation("fct_no_such_mart")
    with pytest.raises(UnknownTable):
        render("select * from {fct_no_such_mart}")
    # every engine places every layer the registry uses
    for engine, schemas in ENGINE_SCHEMAS.items():
        assert set(TABLES.values()) <= set(schemas), engine


@pytest.mark.unit
def test_table_exists_sees_the_warehouse_and_an_attached_one(tmp_path):
    path = tmp_path / "w.duckdb"
    with northstar.warehouse.connect(path=path) as con:
        con.execute(f"create table {relation('fct_trade_breaks')} as select 1 as break_key")
        assert northstar.warehouse.table_exists(con, "fct_trade_breaks")
        assert not northstar.warehouse.table_exists(con, "fct_break_scores")
        assert northstar.warehouse.present_tables(con) == {"fct_trade_breaks"}
    with northstar.warehouse.scratch() as con:
        con.execute(f"attach '{path}' as wh (read_only)")
        assert northstar.warehouse.table_exists(con, "fct_trade_breaks", database="wh")
        assert not northstar.warehouse.table_exists(con, "fct_trade_breaks")


def _spark_extra_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("pyspark") is not None


@pytest.mark.timeout(300)
@pytest.mark.parametrize("engine", [
    "duckdb",
    # dbt-spark checks its `session` method's pyspark when it reads the profile, and pyspark is the spark
    # extra (a default install leaves it out: see pyproject.toml)
    pytest.param("spark", marks=pytest.mark.skipif(
        not _spark_extra_installed(), reason="the spark extra is not installed (NORTHSTAR_ENGINE=spark make install)")),
])
def test_every_registered_table_is_a_dbt_node_in_the_schema_the_seam_gives_it(northstar_home, monkeypatch, engine):
    from northstar import settings as settings_module
    from northstar.dbt import run_dbt

    monkeypatch.setenv("NORTHSTAR_ENGINE", engine)  # the engine's dbt target (parse needs no Spark session)
    settings_module.reset_cache()
    northstar_home = settings_module.settings()
    run_dbt("parse", cfg=northstar_home)
    manifest = json.loads((northstar_home.paths.dbt_target_dir / "manifest.json").read_text())
    schemas: dict[str, set[str]] = {}
    for node in [*manifest["nodes"].values(), *manifest["sources"].values()]:
        if node["resource_type"] in ("model", "seed", "snapshot", "source"):
            schemas.setdefault(node["name"], set()).add(node["schema"])
    missing = sorted(name for name in TABLES if name not in schemas)
    assert missing == [], "registered in northstar.warehouse.TABLES but not a dbt node"
    moved = {name: (schema_of(name, engine), sorted(schemas[name])) for name in TABLES
             if schema_of(name, engine) not in schemas[name]}
    assert moved == {}, "the seam resolves these to another schema than dbt builds them in"


def seam_bypasses(root: Path) -> list[str]:
    """``file:line`` of every DuckDB connection, or dbt-duckdb handle, opened outside the seam (and the sandbox,
    which stands in for systems outside the warehouse) in any Python file of the repository, tests included."""
    found = []
    paths = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in ("var", "node_modules", "__pycache__")
                         and not (Path(folder) == root and d == "sandbox"))
        paths += [Path(folder) / f for f in sorted(files) if f.endswith(".py")]
    for path in paths:
        rel = path.relative_to(root).as_posix()
        if rel in (SEAM, THIS_TEST):
            continue
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if RAW_CONNECT in line or DBT_HANDLE in line:
                found.append(f"{rel}:{number}")
    return found


@pytest.mark.unit
def test_every_connection_goes_through_the_seam():
    """Issue 17's check: ``git grep`` for DuckDB's connect call outside northstar/warehouse.py and sandbox/ finds
    nothing; the dbt-duckdb handle is released by ``release_dbt_handles`` only."""
    assert seam_bypasses(REPO) == []


@pytest.mark.unit
def test_the_bypass_scan_sees_a_raw_connection(tmp_path):
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_x.py").write_text(f"import duckdb\ncon = {RAW_CONNECT}('w.duckdb')\n")
    (tmp_path / "sandbox").mkdir()
    (tmp_path / "sandbox" / "s.py").write_text(f"con = {RAW_CONNECT}()\n")
    (tmp_path / "northstar").mkdir()
    (tmp_path / "northstar" / "warehouse.py").write_text(f"con = {RAW_CONNECT}()\n")
    assert seam_bypasses(tmp_path) == ["tests/test_x.py:2"]
