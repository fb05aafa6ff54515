"""The end-of-demo report: what each stage produced and where a person looks at it.

Everything is read, never written: the landing manifests, the warehouse on its engine
(``northstar.warehouse.open_warehouse``, read-only), the control store (gate results, outbox), the
MLflow store and the sandbox servers' own counters.
"""

from __future__ import annotations

import duckdb

import northstar.warehouse
from northstar.settings import Settings, settings


def _landing_section(cfg: Settings) -> list[str]:
    manifest_root = cfg.paths.landing / "_manifest"
    lines = ["Landing  (" + str(cfg.paths.landing) + ")"]
    if not manifest_root.exists():
        return [*lines, "  nothing landed yet"]
    con = northstar.warehouse.scratch()
    for source_dir in sorted(p for p in manifest_root.iterdir() if p.is_dir()):
        files = list(source_dir.glob("*.parquet"))
        if not files:
            continue
        relation = con.read_parquet([str(f) for f in files], union_by_name=True)
        columns = set(relation.columns)
        if {"rows_landed", "rows_quarantined"} <= columns:
            landed, quarantined, n = con.execute(
                "select sum(rows_landed), sum(rows_quarantined), count(*) from relation"
            ).fetchone()
            lines.append(f"  {source_dir.name:14} {n:6} manifest rows, {landed or 0:,} rows landed, "
                         f"{quarantined or 0:,} quarantined")
        elif "rows" in columns:
            rows, n = con.execute("select sum(rows), count(*) from relation").fetchone()
            lines.append(f"  {source_dir.name:14} {n:6} manifest rows, {rows or 0:,} rows extracted")
    quarantine = cfg.paths.landing / "quarantine"
    if quarantine.exists():
        files = list(quarantine.rglob("*.parquet"))
        if files:
            quarantined_rows = con.read_parquet([str(f) for f in files], union_by_name=True)  # noqa: F841
            n = con.execute("select count(*) from quarantined_rows").fetchone()[0]
            lines.append(f"  quarantine     {n:,} records with a reason code in {quarantine}")
    return lines


def _warehouse_section(cfg: Settings) -> list[str]:
    if not northstar.warehouse.warehouse_built(cfg):
        return [f"Warehouse  ({cfg.paths.warehouse if cfg.engine == 'duckdb' else cfg.paths.spark_warehouse})",
                "  not built yet"]
    with northstar.warehouse.open_warehouse(read_only=True, cfg=cfg) as engine:
        lines = [f"Warehouse  ({engine.location})"]
        by_schema: dict[str, list[str]] = {}
        for schema, table, kind in engine.catalog():
            if kind == "BASE TABLE" and (table.startswith(("fct_", "dim_")) or schema.endswith("marts")):
                # identifiers come from the catalog, quoted: not user input
                count = engine.scalar(f"select count(*) from {engine.quote(schema, table)}")  # noqa: S608
                by_schema.setdefault(schema, []).append(f"{table} ({count:,})")
            else:
                by_schema.setdefault(schema, [])
        for schema, tables in by_schema.items():
            shown = ", ".join(tables) if tables else "views and staging tables"
            lines.append(f"  {schema}: {shown}")
    return lines


def _recon_section(cfg: Settings) -> list[str]:
    lines = ["Trade reconciliation"]
    if not northstar.warehouse.warehouse_built(cfg):
        return [*lines, "  not built yet"]
    with northstar.warehouse.open_warehouse(read_only=True, cfg=cfg) as engine:
        present = engine.present()
        if not {"fct_recon_summary", "fct_trade_breaks"} <= present:
            return [*lines, "  not built yet"]
        for business_date, compared, matched, breaks in engine.rows(
            "select business_date, sum(items_compared), sum(items_matched), sum(open_breaks) "
            "from {fct_recon_summary} group by business_date order by business_date"
        ):
            rate = matched / compared if compared else 0.0
            lines.append(f"  {business_date}: {compared:,} items compared, match rate {rate:.2%}, {breaks} open breaks")
        by_type = engine.rows("select break_type, count(*) from {fct_trade_breaks} where status = 'open' "
                              "group by break_type order by 2 desc")
        if by_type:
            lines.append("  open breaks by type: " + ", ".join(f"{kind} {n}" for kind, n in by_type))
    return lines


def _tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {f"{schema}.{name}" for schema, name in con.execute(
        "select table_schema, table_name from information_schema.tables").fetchall()}


def _gates_section(cfg: Settings) -> list[str]:
    lines = ["Quality gates  (quality.gate_results; Data Docs in " + str(cfg.paths.gx_root / "data_docs") + ")"]
    if not cfg.paths.warehouse.exists():
        return [*lines, "  not run yet"]
    with northstar.warehouse.connect(read_only=True, path=cfg.paths.warehouse) as con:
        if "quality.gate_results" not in _tables(con):
            return [*lines, "  not run yet"]
        for gate, runs, checks, failed_critical, failed_warning in con.execute(
            "select gate, count(distinct run_id), count(*), "
            "count(*) filter (where not success and severity = 'critical'), "
            "count(*) filter (where not success and severity = 'warning') "
            "from quality.gate_results group by gate order by min(validated_at)"
        ).fetchall():
            lines.append(f"  {gate:8} {runs} run(s), {checks} expectations checked, "
                         f"{failed_critical} critical and {failed_warning} warning failures")
    return lines


def _models_section(cfg: Settings) -> list[str]:
    lines = [f"Models  (MLflow {cfg.mlflow_tracking_uri})"]
    db = cfg.paths.mlflow_dir / "mlflow.db"
    if cfg.mlflow_tracking_uri.startswith("sqlite:") and not db.exists():
        return [*lines, "  nothing trained yet"]
    try:
        from mlflow import MlflowClient

        client = MlflowClient(tracking_uri=cfg.mlflow_tracking_uri)
        models = client.search_registered_models()
    except Exception as exc:  # noqa: BLE001 - the summary reports, it never fails the demo
        return [*lines, f"  registry not readable: {type(exc).__name__}"]
    for model in sorted(models, key=lambda m: m.name):
        versions = client.search_model_versions(f"name = '{model.name}'")
        aliases = ", ".join(f"@{alias} -> v{version}" for alias, version in sorted((model.aliases or {}).items()))
        lines.append(f"  {model.name}: {len(versions)} version(s), {aliases or 'no alias'}")
    if not models:
        lines.append("  no registered model")
    return lines


def _scores_section(cfg: Settings) -> list[str]:
    lines = ["Scores  (scores.household_scores, scores.break_scores)"]
    if not northstar.warehouse.warehouse_built(cfg):
        return [*lines, "  not scored yet"]
    with northstar.warehouse.open_warehouse(read_only=True, cfg=cfg) as engine:
        present = engine.present()
        if "household_scores" in present:
            latest = engine.rows(
                "select scoring_run_id, count(*), sum(clv) from {household_scores} "
                "where scored_at = (select max(scored_at) from {household_scores}) group by scoring_run_id"
            )
            for run, households, clv in latest:
                lines.append(f"  households: {households:,} scored in {run}, total CLV {clv:,.0f}")
            segments = engine.rows(
                "select segment, count(*) from {household_scores} "
                "where scored_at = (select max(scored_at) from {household_scores}) group by segment order by 2 desc"
            )
            if segments:
                lines.append("  segments: " + ", ".join(f"{name} {n:,}" for name, n in segments))
        if "break_scores" in present:
            n, runs = engine.rows("select count(*), count(distinct scoring_run_id) from {break_scores}")[0]
            lines.append(f"  breaks: {n:,} anomaly scores over {runs} scoring run(s)")
        if len(lines) == 1:
            lines.append("  not scored yet")
    return lines


def _identity_section(cfg: Settings) -> list[str]:
    lines = ["Identity  (identity.resolution_runs; python -m identity resolve)"]
    if not northstar.warehouse.warehouse_built(cfg):
        return [*lines, "  not resolved yet"]
    with northstar.warehouse.open_warehouse(read_only=True, cfg=cfg) as engine:
        if not engine.exists("resolution_runs"):
            return [*lines, "  not resolved yet (python -m identity resolve; dbt build --selector identity_publish)"]
        latest = engine.rows(
            "select resolution_run_id, records, persons, persons_with_duplicates, largest_person, person_merges, "
            "person_splits, review_pairs from {resolution_runs} order by resolved_at desc limit 1")
        households = None
        if engine.exists("dim_resolved_households"):
            households = engine.rows(
                "select count(*), count(distinct resolved_household_id), "
                "count(distinct resolved_household_id) filter (where accounts_in_household > 1), "
                "count(*) filter (where not has_push_consent) from {dim_resolved_households}")[0]
    for run, records, persons, duplicated, largest, merges, splits, review in latest:
        lines.append(f"  {run}: {records:,} CRM records are {persons:,} persons ({duplicated:,} with duplicates, "
                     f"largest {largest} records)")
        lines.append(f"  since the previous run: {merges:,} merges, {splits:,} splits; "
                     f"clerical review queue {review:,} pairs")
    if households:
        accounts, resolved, split, held_back = households
        lines.append(f"  {accounts:,} Accounts are {resolved:,} households ({split:,} split across Accounts); "
                     f"{held_back:,} Accounts held back from the push by consent (an opt-out anywhere wins)")
    return lines


def _activation_section(cfg: Settings) -> list[str]:
    lines = ["Activation  (activation.outbox; python -m activate status)"]
    if not cfg.paths.warehouse.exists():
        return [*lines, "  nothing planned yet"]
    with northstar.warehouse.connect(read_only=True, path=cfg.paths.warehouse) as con:
        if "activation.outbox" not in _tables(con):
            return [*lines, "  nothing planned yet"]
        for target, obj, operation, status, n in con.execute(
            "select target, object, operation, status, count(*) from activation.outbox group by all order by all"
        ).fetchall():
            lines.append(f"  {target}/{obj} {operation}: {n:,} {status}")
        if "activation.send_runs" in _tables(con):
            for target, calls, sent in con.execute(
                "select target, sum(api_calls), sum(rows_sent) from activation.send_runs group by 1 order by 1"
            ).fetchall():
                lines.append(f"  {target}: {sent or 0:,} changes acknowledged in {calls or 0:,} API calls")
    return lines


def render_summary(cfg: Settings | None = None) -> str:
    cfg = cfg or settings()
    sections = [
        _landing_section(cfg),
        _gates_section(cfg),
        _warehouse_section(cfg),
        _recon_section(cfg),
        _models_section(cfg),
        _scores_section(cfg),
        _identity_section(cfg),
        _activation_section(cfg),
        [
            "Where to look  (make ui starts them; the Airflow login is printed there)",
            f"  Airflow UI http://127.0.0.1:{cfg.airflow_port}/, MLflow UI http://127.0.0.1:{cfg.mlflow_port}/, "
            f"dbt docs http://127.0.0.1:{cfg.dbt_docs_port}/,",
            f"  Data Docs http://127.0.0.1:{cfg.data_docs_port}/index.html, "
            f"KPI dashboard http://127.0.0.1:{cfg.dashboard_port}/",
        ],
    ]
    return "\n".join(["", "=== Northstar demo summary ===", *("\n".join(s) for s in sections)])
