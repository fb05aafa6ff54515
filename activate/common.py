"""Shared pieces of the two senders: the plan and send reports, the crash hook type.

API-call counting is :class:`connectors.retry.CallCounter`.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

# Called after each external write returns and before its acknowledgement is recorded:
# after_write(target, object, outbox_ids). Tests raise from it to simulate a process killed there.
AfterWrite = Callable[[str, str, list[str]], None]


def new_send_run_id(target: str) -> str:
    return f"send-{target}-{datetime.now(UTC):%Y%m%dT%H%M%S}-{secrets.token_hex(3)}"


@dataclass
class PlanReport:
    target: str
    run_id: str
    enqueued: dict[str, int] = field(default_factory=dict)
    considered: int = 0
    skipped_no_consent: int = 0
    unchanged: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class SendReport:
    target: str
    send_run_id: str
    started_at: datetime
    kill_switch: bool = False
    api_calls: int = 0
    sent: int = 0
    failed: int = 0
    dead: int = 0
    released: int = 0
    interrupted: bool = False
    open_rows: int = 0
    detail: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        data = asdict(self)
        data["started_at"] = self.started_at.isoformat()
        return data


class PushIncomplete(RuntimeError):
    """A send left work undone (rows still open, or interrupted by an unreachable or refusing target).

    Raised only after the outbox state and the send run are committed, so the task fails (Airflow
    retries it) and the next run resumes from the outbox: nothing is lost and nothing is sent twice.
    """

    def __init__(self, report: SendReport):
        cause = report.detail.get("interrupted_by") or report.detail.get("error")
        super().__init__(
            f"{report.target} send {report.send_run_id} left {report.open_rows} outbox row(s) open "
            f"(sent {report.sent}, failed {report.failed}, dead {report.dead}"
            + (f"; interrupted: {cause}" if report.interrupted and cause else "; interrupted" if report.interrupted else "")
            + "); they stay in the outbox and the next run resumes them"
        )
        self.report = report


def left_work_undone(report: SendReport) -> bool:
    """True when a send that was allowed to write still has open rows or was cut short.

    With the kill switch on nothing is meant to be sent, so held-back rows are not a failure.
    """
    return not report.kill_switch and (report.interrupted or report.open_rows > 0)
