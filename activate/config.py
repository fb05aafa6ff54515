"""Activation settings read in one place: the kill switch and the send limits.

The kill switch stops every external write (Salesforce and ServiceNow) while planning, scoring and
the rest of the pipeline keep running; the outbox keeps what would have been sent. It is on when
either ``NORTHSTAR_KILL_SWITCH`` is true (``settings().kill_switch``) or, when Airflow is importable
and configured, the Airflow Variable ``northstar_kill_switch`` is true. Reading the Variable never
fails the caller: no Airflow, no metadata database or no such Variable means "not set".
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from northstar.settings import ENV_PREFIX, Settings, settings

AIRFLOW_VARIABLE = "northstar_kill_switch"
_TRUE = {"1", "true", "yes", "on"}


def _airflow_variable(name: str) -> str | None:
    if os.environ.get(ENV_PREFIX + "NO_AIRFLOW_CONNECTIONS"):
        return None
    try:
        from airflow.sdk import Variable  # Airflow 3 task SDK
    except Exception:  # noqa: BLE001 - Airflow is optional for the CLIs
        return None
    try:
        return Variable.get(name, default=None)
    except Exception:  # noqa: BLE001 - no metadata DB / not in a task: treat as unset
        return None


def kill_switch_active(cfg: Settings | None = None) -> bool:
    """True when external writes must not happen (environment setting or Airflow Variable)."""
    cfg = cfg or settings()
    if cfg.kill_switch:
        return True
    value = _airflow_variable(AIRFLOW_VARIABLE)
    return value is not None and str(value).strip().lower() in _TRUE


@dataclass(frozen=True)
class SendLimits:
    """How sending behaves; the defaults are the production ones, tests shrink the waits."""

    max_attempts: int = 5  # per-record failures before a row is dead
    bulk_threshold: int = 2000  # more open rows than this for one object: Bulk API 2.0
    collection_size: int = 200  # sObject Collections maximum
    bulk_job_rows: int = 100_000  # rows per Bulk 2.0 job (well under the 100 MB upload limit)
    bulk_poll_interval: float = 1.0  # seconds between Bulk job polls
    lookup_chunk: int = 50  # correlation ids per ServiceNow lookup query
