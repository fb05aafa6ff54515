"""dbt-project-evaluator's rules, the ones that matter here, checked over the dbt manifest.

The package itself (dbt-labs/dbt_project_evaluator) cannot be installed here (no dbt hub), so this module
re-implements the rules below from its documentation (https://dbt-labs.github.io/dbt-project-evaluator/,
rules pages, v1.x) over ``target/manifest.json``. Rules checked, by the package's model name:

* modeling: ``fct_direct_join_to_source`` (a model reading a source and another node),
  ``fct_downstream_models_dependent_on_source`` (a non-staging model reading a source),
  ``fct_rejoining_of_upstream_concepts`` (A → B → C and A → C where B has no other child),
  ``fct_staging_dependent_on_marts_or_intermediate``, ``fct_staging_dependent_on_staging``,
  ``fct_unused_sources`` (a source no node reads), ``fct_root_models`` (a model with no parent),
  ``fct_multiple_sources_joined``;
* testing: ``fct_missing_primary_key_tests`` (``unique`` + ``not_null`` test, or ``unique`` + a not_null
  constraint, on one column, or this project's ``unique_combination_of_columns`` test), and
  ``fct_sources_without_freshness``;
* documentation: ``fct_undocumented_models``, ``fct_undocumented_source_tables``;
* structure: ``fct_model_naming_conventions`` (``stg_`` in staging, ``int_`` in intermediate, ``fct_`` /
  ``dim_`` in marts) and ``fct_model_directories`` (a model sits in the folder of its layer);
* governance: ``fct_public_models_without_contract``, ``fct_exposures_dependent_on_private_models``;
* performance: ``fct_exposure_parents_materializations`` (an exposure reads tables, never a source or a view).

Not checked: the coverage percentages (``fct_test_coverage``, ``fct_documentation_coverage``), model fan-out,
``fct_too_many_joins``, ``fct_chained_views_dependencies``, ``fct_hard_coded_references`` (needs the SQL's
parse) and the test/source directory rules. Exceptions are listed in :data:`EXCEPTIONS` with their reason, and
in ``dbt_project/README.md`` ("dbt-project-evaluator's rules").

``python tests/dbt/project_rules.py [manifest.json]`` prints the violations (parses the project first when
no manifest is given).
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
PROJECT = "northstar"

# (rule, node name) -> why it is accepted. Keep in step with dbt_project/README.md.
_CUTOFF_SPLIT = ("the feature mart's household x cutoff aggregations are their own tables so each fits in memory at "
                 "1M households (dbt_project/README.md, Performance); the mart joins them back onto the grid they "
                 "were aggregated over, which is the rejoin")
EXCEPTIONS: dict[tuple[str, str], str] = {
    ("fct_rejoining_of_upstream_concepts", "int_household_cutoff_billing"): _CUTOFF_SPLIT,
    ("fct_rejoining_of_upstream_concepts", "int_household_cutoff_labels"): _CUTOFF_SPLIT,
    ("fct_rejoining_of_upstream_concepts", "int_household_cutoff_interactions"): _CUTOFF_SPLIT,
    ("fct_rejoining_of_upstream_concepts", "int_household_crm_states"): (
        "the feature mart reads its inputs and, beside them, one key per household for their state, so an "
        "incremental night rebuilds the households whose CRM records changed (issue 22); the key is a summary "
        "the mart cannot compute from the rows it reads for one cutoff"),
    ("fct_rejoining_of_upstream_concepts", "int_internal_orders_aggregated"): (
        "int_orders_matched reads the trade book again for the confirms whose allocation is missing from it "
        "(the FIX-surplus explanation), a question about single bookings that the per-order aggregate cannot answer"),
    ("fct_unused_sources", "broker_files"): (
        "the ingest manifest is read by the source tests row_counts_match_landing_manifest, not by a model"),
    ("fct_unused_sources", "salesforce_runs"): (
        "the ingest manifest is read by the source tests row_counts_match_landing_manifest, not by a model"),
    ("fct_unused_sources", "model_drift"): (
        "ml/ writes it and the dashboard snapshot reads it; a source so that northstar.warehouse names it on both "
        "engines (DuckDB schema scores, Spark database scores); no model reads the drift history"),
    ("fct_sources_without_freshness", "model_drift"): (
        "no time of its own: its scoring run's row in scoring_runs carries scored_at, whose freshness is checked"),
    ("fct_unused_sources", "trade_anomaly_scores"): (
        "the break scorer's per-trade scores and reasons, for people reviewing the anomaly model; a source so that "
        "northstar.warehouse names it on both engines; no model reads it"),
    ("fct_exposure_parents_materializations", "servicenow_break_incidents"): (
        "activate/servicenow.py records the dbt invocation of the latest break-scoring run on each outbox row "
        "(lineage), from the source scores.scoring_runs; no mart publishes the scoring-run history"),
    ("fct_exposure_parents_materializations", "kpi_dashboard"): (
        "the dashboard's models page reads the scoring-run history ml/ writes (sources scores.scoring_runs and "
        "household_scores); no mart publishes that history"),
}

LAYER_PREFIXES = {"staging": ("stg_",), "intermediate": ("int_",), "marts": ("fct_", "dim_")}


def _models(manifest: dict) -> dict[str, dict]:
    return {uid: n for uid, n in manifest["nodes"].items()
            if n["resource_type"] == "model" and n["package_name"] == PROJECT}


def _layer(node: dict) -> str | None:
    parts = Path(node["original_file_path"]).parts
    return parts[1] if len(parts) > 2 and parts[0] == "models" else None


def _parents(node: dict) -> list[str]:
    return list(dict.fromkeys(node["depends_on"]["nodes"]))


def _tests_by_model(manifest: dict) -> dict[str, list[dict]]:
    tests = defaultdict(list)
    for node in manifest["nodes"].values():
        if node["resource_type"] != "test":
            continue
        attached = node.get("attached_node") or (node["depends_on"]["nodes"] or [None])[0]
        if attached:
            tests[attached].append(node)
    return tests


def _has_primary_key_test(model: dict, tests: list[dict]) -> bool:
    by_column: dict[str, set[str]] = defaultdict(set)
    for test in tests:
        meta = test.get("test_metadata") or {}
        name = meta.get("name")
        if name == "unique_combination_of_columns":
            return True
        column = test.get("column_name") or (meta.get("kwargs") or {}).get("column_name")
        if column and name in {"unique", "not_null"}:
            by_column[column].add(name)
    for column, names in by_column.items():
        if {"unique", "not_null"} <= names:
            return True
        constrained = any(c.get("type") == "not_null" for c in
                          (model.get("columns", {}).get(column, {}) or {}).get("constraints", []))
        if "unique" in names and constrained:
            return True
    return False


def violations(manifest: dict) -> list[tuple[str, str, str]]:
    """``(rule, node, detail)`` for every violation, exceptions excluded."""
    models = _models(manifest)
    sources = {uid: s for uid, s in manifest["sources"].items() if s["package_name"] == PROJECT}
    nodes = {**manifest["nodes"], **sources}
    children: dict[str, set[str]] = defaultdict(set)
    for uid, node in {**models, **{u: n for u, n in manifest["nodes"].items() if n["resource_type"] == "snapshot"}}.items():
        for parent in _parents(node):
            children[parent].add(uid)
    tests = _tests_by_model(manifest)
    found: list[tuple[str, str, str]] = []

    def flag(rule: str, uid: str, detail: str) -> None:
        found.append((rule, nodes[uid]["name"] if uid in nodes else uid, detail))

    for uid, node in models.items():
        parents = _parents(node)
        source_parents = [p for p in parents if p.startswith("source.")]
        other_parents = [p for p in parents if not p.startswith("source.")]
        model_parents = [p for p in parents if p.startswith("model.")]  # the package counts models, not seeds
        layer = _layer(node)
        if source_parents and model_parents:
            flag("fct_direct_join_to_source", uid, f"reads {source_parents} and {model_parents}")
        if source_parents and layer != "staging":
            flag("fct_downstream_models_dependent_on_source", uid, f"{layer} model reads {source_parents}")
        if len(source_parents) > 1:
            flag("fct_multiple_sources_joined", uid, f"reads {source_parents}")
        if not parents:
            flag("fct_root_models", uid, "no parent")
        if layer == "staging":
            for parent in other_parents:
                parent_layer = _layer(nodes[parent]) if parent in models else None
                if parent_layer in {"intermediate", "marts"}:
                    flag("fct_staging_dependent_on_marts_or_intermediate", uid, parent)
                if parent_layer == "staging":
                    flag("fct_staging_dependent_on_staging", uid, parent)
        prefixes = LAYER_PREFIXES.get(layer or "")
        if prefixes is None:
            flag("fct_model_directories", uid, f"{node['original_file_path']} is in no layer folder")
        elif not node["name"].startswith(prefixes):
            flag("fct_model_naming_conventions", uid, f"a {layer} model's name starts with {' or '.join(prefixes)}")
        if not _has_primary_key_test(node, tests.get(uid, [])):
            flag("fct_missing_primary_key_tests", uid, "no unique + not_null (or combination) test on its grain")
        if not (node.get("description") or "").strip():
            flag("fct_undocumented_models", uid, "no description")
        if node.get("access") == "public" and not (node.get("config", {}).get("contract") or {}).get("enforced"):
            flag("fct_public_models_without_contract", uid, "public without an enforced contract")
        # rejoining: parent -> uid -> child, and parent -> child, where uid has no other child
        for child in children.get(uid, ()):
            if len(children[uid]) != 1:
                break
            for parent in parents:
                if child in children.get(parent, ()):
                    flag("fct_rejoining_of_upstream_concepts", uid,
                         f"{nodes[parent]['name']} -> {node['name']} -> {nodes[child]['name']} and "
                         f"{nodes[parent]['name']} -> {nodes[child]['name']}")

    for uid, source in sources.items():
        if not children.get(uid):
            flag("fct_unused_sources", uid, f"{source['source_name']}.{source['name']} is read by no model")
        freshness = source.get("freshness") or {}
        if not (freshness.get("warn_after", {}).get("count") or freshness.get("error_after", {}).get("count")):
            flag("fct_sources_without_freshness", uid, f"{source['source_name']}.{source['name']}")
        if not (source.get("description") or "").strip():
            flag("fct_undocumented_source_tables", uid, f"{source['source_name']}.{source['name']}")

    for exposure in manifest.get("exposures", {}).values():
        if exposure["package_name"] != PROJECT:
            continue
        for parent in _parents(exposure):
            if parent.startswith("source."):
                found.append(("fct_exposure_parents_materializations", exposure["name"], f"reads source {parent}"))
                continue
            node = nodes.get(parent, {})
            if node.get("resource_type") == "model":
                if node.get("access") == "private":
                    found.append(("fct_exposures_dependent_on_private_models", exposure["name"], node["name"]))
                if node["config"].get("materialized") not in {"table", "incremental"}:
                    found.append(("fct_exposure_parents_materializations", exposure["name"],
                                  f"{node['name']} is a {node['config'].get('materialized')}"))

    return [v for v in found if (v[0], v[1]) not in EXCEPTIONS]


def stale_exceptions(manifest: dict) -> list[tuple[str, str]]:
    """Exceptions whose violation no longer occurs (remove them here and in the README)."""
    saved = dict(EXCEPTIONS)
    EXCEPTIONS.clear()
    try:
        occurring = {(rule, node) for rule, node, _ in violations(manifest)}
    finally:
        EXCEPTIONS.update(saved)
    return sorted(set(EXCEPTIONS) - occurring)


def parse_manifest(target: Path) -> dict:
    """``dbt parse`` into ``target`` and return the manifest (needs no warehouse and no landing data)."""
    import os

    from dbt.cli.main import dbtRunner

    # only for the parse: left in os.environ, the placeholder salt reached later tests in the same
    # pytest worker (test_setup found NORTHSTAR_PII_SALT=parse-only written to the compose .env)
    defaults = {"NORTHSTAR_PII_SALT": "parse-only", "NORTHSTAR_WAREHOUSE": ":memory:",
                "DBT_SEND_ANONYMOUS_USAGE_STATS": "False"}
    added = [name for name in defaults if name not in os.environ]
    os.environ.update({name: defaults[name] for name in added})
    try:
        result = dbtRunner().invoke(["parse", "--project-dir", str(REPO_ROOT / "dbt_project"), "--profiles-dir",
                                     str(REPO_ROOT / "dbt_project"), "--target-path", str(target),
                                     "--log-path", str(target / "logs"), "--quiet"])
    finally:
        for name in added:
            os.environ.pop(name, None)
    if not result.success:
        raise RuntimeError(f"dbt parse failed: {result.exception}")
    return json.loads((target / "manifest.json").read_text())


if __name__ == "__main__":
    if len(sys.argv) > 1:
        manifest = json.loads(Path(sys.argv[1]).read_text())
    else:
        import tempfile

        manifest = parse_manifest(Path(tempfile.mkdtemp(prefix="dbt-rules-")))
    found = violations(manifest)
    for rule, node, detail in sorted(found):
        print(f"{rule}: {node}: {detail}")
    for rule, node in stale_exceptions(manifest):
        print(f"stale exception (no longer occurs): {rule}: {node}")
    print(f"{len(found)} violation(s); {len(EXCEPTIONS)} documented exception(s)")
    sys.exit(1 if found else 0)
