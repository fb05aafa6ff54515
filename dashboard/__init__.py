"""The KPI dashboard: Vizro pages (dashboard-as-code on Plotly Dash) over a warehouse snapshot.

``build`` is what the last task of both DAGs does: ``take_snapshot`` (in the one-slot ``warehouse``
pool, which the task holds only for this read) copies the KPI tables out to
``<var>/dashboard/snapshot.duckdb``. The dashboard server (``python -m dashboard serve``, started by
``make ui``) reads only that file, re-reading it on each page load, so a rebuild needs no restart and
the server never holds the warehouse.
"""

from __future__ import annotations

from dashboard.snapshot import SnapshotReport, snapshot_path, take_snapshot
from northstar.settings import Settings

__all__ = ["SnapshotReport", "build", "snapshot_path", "take_snapshot"]


def build(cfg: Settings | None = None, run_id: str | None = None) -> dict:
    """Refresh the dashboard: a new snapshot, swapped in atomically (the pages read it on their next load)."""
    return take_snapshot(cfg, run_id=run_id).as_dict()
