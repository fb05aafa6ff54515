"""dbt-project-evaluator's rules (those ``project_rules.py`` re-implements) hold over the project's manifest,
with only the exceptions documented in dbt_project/README.md."""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import project_rules  # noqa: E402

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    return project_rules.parse_manifest(tmp_path_factory.mktemp("dbt-rules"))


def test_the_project_breaks_no_rule_beyond_its_documented_exceptions(manifest):
    assert project_rules.violations(manifest) == []
    assert project_rules.stale_exceptions(manifest) == [], "remove them from EXCEPTIONS and dbt_project/README.md"
    readme = (project_rules.REPO_ROOT / "dbt_project" / "README.md").read_text()
    for rule, node in project_rules.EXCEPTIONS:
        assert f"`{node}`" in readme and f"`{rule}`" in readme, (rule, node)


def test_the_checks_find_what_they_look_for(manifest):
    broken = copy.deepcopy(manifest)
    # the primary-key test of int_orders_matched gone, a mart reading a source, an unused source
    broken["nodes"] = {uid: n for uid, n in broken["nodes"].items()
                       if not (n["resource_type"] == "test" and n.get("attached_node") == "model.northstar.int_orders_matched")}
    broken["nodes"]["model.northstar.fct_recon_summary"]["depends_on"]["nodes"].append(
        "source.northstar.broker.pb_confirms")
    broken["nodes"]["model.northstar.stg_broker__billing_statements"]["depends_on"]["nodes"] = []
    found = {(rule, node) for rule, node, _ in project_rules.violations(broken)}
    assert {("fct_missing_primary_key_tests", "int_orders_matched"),
            ("fct_direct_join_to_source", "fct_recon_summary"),
            ("fct_downstream_models_dependent_on_source", "fct_recon_summary"),
            ("fct_unused_sources", "billing"),
            ("fct_root_models", "stg_broker__billing_statements")} <= found


def constrained_columns_without_a_not_null_test(manifest) -> list[str]:
    """``model.column`` of every contract not_null constraint with no not_null data test on the column:
    Spark's Parquet tables do not enforce the constraint (no Delta here), so the test is what holds it."""
    tests = project_rules._tests_by_model(manifest)
    missing = []
    for uid, model in project_rules._models(manifest).items():
        tested = {(t.get("column_name") or ((t.get("test_metadata") or {}).get("kwargs") or {}).get("column_name"))
                  for t in tests.get(uid, []) if (t.get("test_metadata") or {}).get("name") == "not_null"}
        for column, spec in (model.get("columns") or {}).items():
            if any(c.get("type") == "not_null" for c in spec.get("constraints") or []) and column not in tested:
                missing.append(f"{model['name']}.{column}")
    return missing


def test_every_not_null_constraint_has_a_not_null_test_for_spark(manifest):
    assert constrained_columns_without_a_not_null_test(manifest) == []
    broken = copy.deepcopy(manifest)
    broken["nodes"] = {uid: n for uid, n in broken["nodes"].items()
                       if not ((n.get("test_metadata") or {}).get("name") == "not_null"
                               and n.get("attached_node") == "model.northstar.fct_trade_breaks")}
    assert "fct_trade_breaks.break_key" in constrained_columns_without_a_not_null_test(broken)
