"""Defaults shared by Northstar's DAGs: owners, retries with back-off, timeouts.

Kept apart from the DAG files so both DAGs stay alike; this module does no work at import.
"""

from __future__ import annotations

import os
from datetime import timedelta

# `airflow dags test` waits out real retry delays; the demo and the end-to-end tests set this to 0
# so a failure surfaces at once. Production keeps the default.
TASK_RETRIES = int(os.environ.get("NORTHSTAR_TASK_RETRIES", "2"))

DEFAULT_ARGS = {
    "owner": "northstar-data",
    "retries": TASK_RETRIES,
    "retry_delay": timedelta(minutes=1),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=15),
    "execution_timeout": timedelta(minutes=45),
}

FIRM_TIMEZONE = "America/New_York"
WAREHOUSE_POOL = "warehouse"
