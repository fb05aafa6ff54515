"""Defaults shared by Northstar's DAGs: owners, retries with back-off, timeouts.

Kept apart from the DAG files so both DAGs stay alike; this module does no work at import.
"""

from __future__ import annotations

from datetime import timedelta

DEFAULT_ARGS = {
    "owner": "northstar-data",
    "retries": 2,
    "retry_delay": timedelta(minutes=1),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=15),
    "execution_timeout": timedelta(minutes=45),
}

FIRM_TIMEZONE = "America/New_York"
WAREHOUSE_POOL = "warehouse"
