"""Activation settings: the send limits, and the kill switch (read by ``northstar.settings.kill_switch``).

The kill switch stops every external write (Salesforce and ServiceNow) while planning, scoring and
the rest of the pipeline keep running; the outbox keeps what would have been sent. Its one reader
lives in settings so that DAG tasks, ``python -m activate send`` and the benches all honour it.
"""

from __future__ import annotations

from dataclasses import dataclass

from northstar.settings import Settings, kill_switch


def kill_switch_active(cfg: Settings | None = None) -> bool:
    """True when external writes must not happen (see ``northstar.settings.kill_switch``)."""
    return kill_switch(cfg).engaged


@dataclass(frozen=True)
class SendLimits:
    """How sending behaves; the defaults are the production ones, tests shrink the waits."""

    max_attempts: int = 5  # per-record failures before a row is dead
    bulk_threshold: int = 2000  # more open rows than this for one object: Bulk API 2.0
    collection_size: int = 200  # sObject Collections maximum
    bulk_job_rows: int = 100_000  # rows per Bulk 2.0 job (well under the 100 MB upload limit)
    bulk_poll_interval: float = 1.0  # seconds between Bulk job polls
    lookup_chunk: int = 100  # correlation ids per ServiceNow look-up GET (its URL stays ~5 KB)
    # Correlation ids per look-up GET inside a Batch API call: its URL travels in the request body, so it
    # may exceed what a plain GET carries (pysnc sends queries over ~10,000 characters the same way);
    # 250 ids make ~11 KB, and up to 250 incidents (~300 KB) come back per sub-request.
    batch_lookup_chunk: int = 250
    # Sub-requests per ServiceNow Batch API call; None: the setting NORTHSTAR_SERVICENOW_BATCH_SIZE
    # (default 100); 0: the Table API only, one call per write.
    batch_size: int | None = None
