"""The end-of-demo report: what each stage produced and where a person looks at it.

Everything is read, never written: the landing manifests, the warehouse (opened read-only), the
MLflow store and the sandbox servers' own counters.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from northstar.settings import Settings, settings


def _landing_section(cfg: Settings) -> list[str]:
    manifest_root = cfg.paths.landing / "_manifest"
    lines = ["Landing  (" + str(cfg.paths.landing) + ")"]
    if not manifest_root.exists():
        return [*lines, "  nothing landed yet"]
    con = duckdb.connect()
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
    path: Path = cfg.paths.warehouse
    lines = [f"Warehouse  ({path})"]
    if not path.exists():
        return [*lines, "  not built yet"]
    with duckdb.connect(str(path), read_only=True) as con:
        rows = con.execute(
            "select table_schema, table_name, table_type from information_schema.tables "
            "where table_schema not in ('information_schema', 'pg_catalog') order by 1, 2"
        ).fetchall()
        by_schema: dict[str, list[str]] = {}
        for schema, table, kind in rows:
            if kind == "BASE TABLE" and (table.startswith(("fct_", "dim_")) or schema.endswith("marts")):
                # Identifiers come from information_schema, quoted: not user input.
                quoted = ".".join('"' + part.replace('"', '""') + '"' for part in (schema, table))
                count = con.execute(f"select count(*) from {quoted}").fetchone()[0]  # noqa: S608
                by_schema.setdefault(schema, []).append(f"{table} ({count:,})")
            else:
                by_schema.setdefault(schema, [])
        for schema, tables in by_schema.items():
            shown = ", ".join(tables) if tables else "views and staging tables"
            lines.append(f"  {schema}: {shown}")
    return lines


def _recon_section(cfg: Settings) -> list[str]:
    path: Path = cfg.paths.warehouse
    lines = ["Trade reconciliation"]
    if not path.exists():
        return [*lines, "  not built yet"]
    with duckdb.connect(str(path), read_only=True) as con:
        present = {r[0] for r in con.execute("select table_name from information_schema.tables").fetchall()}
        if not {"fct_recon_summary", "fct_trade_breaks"} <= present:
            return [*lines, "  not built yet"]
        for business_date, compared, matched, breaks in con.execute(
            "select business_date, sum(items_compared), sum(items_matched), sum(open_breaks) "
            "from fct_recon_summary group by business_date order by business_date"
        ).fetchall():
            rate = matched / compared if compared else 0.0
            lines.append(f"  {business_date}: {compared:,} items compared, match rate {rate:.2%}, {breaks} open breaks")
        by_type = con.execute(
            "select break_type, count(*) from fct_trade_breaks where status = 'open' group by 1 order by 2 desc"
        ).fetchall()
        if by_type:
            lines.append("  open breaks by type: " + ", ".join(f"{kind} {n}" for kind, n in by_type))
    return lines


def render_summary(cfg: Settings | None = None) -> str:
    cfg = cfg or settings()
    sections = [
        _landing_section(cfg),
        _warehouse_section(cfg),
        _recon_section(cfg),
        [
            "Where to look",
            "  make ui   -> Airflow UI http://127.0.0.1:8080, MLflow UI http://127.0.0.1:5000, "
            "dbt docs http://127.0.0.1:8081",
        ],
    ]
    return "\n".join(["", "=== Northstar demo summary ===", *("\n".join(s) for s in sections)])
