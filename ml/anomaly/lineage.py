"""Lineage stamped on the anomaly model's runs and scores: which dbt invocation built the warehouse."""

from __future__ import annotations

import json

from northstar.settings import Settings


def dbt_invocation_id(cfg: Settings) -> str | None:
    """The invocation id of the last dbt run that wrote ``run_results.json`` in the target folder, if any."""
    results = cfg.paths.dbt_target_dir / "run_results.json"
    try:
        return json.loads(results.read_text())["metadata"]["invocation_id"]
    except (OSError, KeyError, ValueError):
        return None
