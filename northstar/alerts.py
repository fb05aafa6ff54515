"""Deadline alerts: the promises the DAGs make, and the one notifier that tells people they were missed.

Airflow 3's Deadline Alerts replace SLA callbacks. Each DAG declares when it must be done (below);
when a run misses it, the triggerer awaits :func:`deadline_missed`, which

- always logs a warning and appends one JSON line to ``<NORTHSTAR_HOME>/alerts/deadlines.log``
  (the demo's log: ``python -m northstar summary`` and a person read it there), and
- sends to what ``NORTHSTAR_DEADLINE_ALERTS`` lists (comma-separated): ``log`` (only the above),
  ``slack`` (an incoming webhook: ``NORTHSTAR_SLACK_WEBHOOK_URL``), ``email`` (SMTP:
  ``NORTHSTAR_ALERT_EMAIL_TO``, ``NORTHSTAR_SMTP_HOST``, ``NORTHSTAR_SMTP_PORT``, optional
  ``NORTHSTAR_SMTP_USER`` / ``NORTHSTAR_SMTP_PASSWORD``, ``NORTHSTAR_ALERT_EMAIL_FROM``).

A failure to deliver to Slack or e-mail is logged and does not hide the others.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import smtplib
from datetime import timedelta
from email.message import EmailMessage

log = logging.getLogger(__name__)

NOTIFIER = "northstar.alerts.deadline_missed"

# The promises: the advisors' numbers are in Salesforce before the firm opens, and each intraday
# reconciliation finishes well inside its 15-minute slot.
NIGHTLY_DONE_BY_FIRM_TIME = "06:00"
# The nightly's logical date is its 01:30 firm-time schedule tick: 4h30 later is 06:00 firm time.
NIGHTLY_DEADLINE_AFTER_LOGICAL_DATE = timedelta(hours=4, minutes=30)
INTRADAY_DEADLINE_AFTER_QUEUED = timedelta(minutes=10)


def deadline_alerts(dag_id: str):
    """The DeadlineAlert a DAG file passes as ``deadline=`` (kept here so DAG files only wire)."""
    from airflow.sdk import AsyncCallback, DeadlineAlert, DeadlineReference

    if dag_id == "nightly_client_value":
        reference, interval = DeadlineReference.DAGRUN_LOGICAL_DATE, NIGHTLY_DEADLINE_AFTER_LOGICAL_DATE
        promise = f"finished by {NIGHTLY_DONE_BY_FIRM_TIME} firm time"
    elif dag_id == "intraday_trade_recon":
        reference, interval = DeadlineReference.DAGRUN_QUEUED_AT, INTRADAY_DEADLINE_AFTER_QUEUED
        promise = "finished within 10 minutes of being queued"
    else:
        raise KeyError(f"no deadline promised for {dag_id}")
    return DeadlineAlert(
        reference=reference,
        interval=interval,
        callback=AsyncCallback(NOTIFIER, kwargs={"dag_id": dag_id, "promise": promise}),
        name=f"{dag_id}: {promise}",
    )


def alert_targets() -> list[str]:
    raw = os.environ.get("NORTHSTAR_DEADLINE_ALERTS", "log")
    return [t.strip() for t in raw.split(",") if t.strip()]


def format_alert(dag_id: str, promise: str, context: dict | None) -> dict:
    context = context or {}
    run = context.get("dag_run") or {}
    deadline = context.get("deadline") or {}
    return {
        "dag_id": dag_id,
        "run_id": run.get("dag_run_id"),
        "promise": promise,
        "deadline": str(deadline.get("deadline_time")) if deadline.get("deadline_time") else None,
        "state": run.get("state"),
        "text": f"Northstar: {dag_id} run {run.get('dag_run_id')} missed its deadline ({promise}); "
                f"state {run.get('state')}",
    }


def notify(alert: dict, targets: list[str] | None = None) -> dict[str, str]:
    """Deliver one alert to every target; returns {target: "sent" | "failed: ..."}."""
    from northstar.settings import settings

    outcome = {}
    log.warning("%s", alert["text"])
    path = settings().paths.var / "alerts" / "deadlines.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        handle.write(json.dumps(alert) + "\n")
    outcome["log"] = "sent"
    for target in targets if targets is not None else alert_targets():
        if target == "log":
            continue
        try:
            if target == "slack":
                _to_slack(alert)
            elif target == "email":
                _to_email(alert)
            else:
                raise ValueError(f"unknown alert target {target!r}")
            outcome[target] = "sent"
        except Exception as exc:  # noqa: BLE001 - one channel down must not silence the others
            log.error("deadline alert to %s failed: %s", target, type(exc).__name__)
            outcome[target] = f"failed: {type(exc).__name__}"
    return outcome


def _to_slack(alert: dict) -> None:
    import requests

    url = os.environ["NORTHSTAR_SLACK_WEBHOOK_URL"]
    response = requests.post(url, json={"text": alert["text"]}, timeout=10)
    response.raise_for_status()


def _to_email(alert: dict) -> None:
    message = EmailMessage()
    message["Subject"] = f"Northstar deadline missed: {alert['dag_id']}"
    message["From"] = os.environ.get("NORTHSTAR_ALERT_EMAIL_FROM", "northstar@localhost")
    message["To"] = os.environ["NORTHSTAR_ALERT_EMAIL_TO"]
    message.set_content(alert["text"])
    host = os.environ.get("NORTHSTAR_SMTP_HOST") or "localhost"
    port = int(os.environ.get("NORTHSTAR_SMTP_PORT") or "25")
    with smtplib.SMTP(host, port, timeout=10) as smtp:
        if os.environ.get("NORTHSTAR_SMTP_USER"):
            smtp.starttls()
            smtp.login(os.environ["NORTHSTAR_SMTP_USER"], os.environ.get("NORTHSTAR_SMTP_PASSWORD", ""))
        smtp.send_message(message)


async def deadline_missed(dag_id: str, promise: str, context: dict | None = None, **_: object) -> str:
    """The triggerer awaits this when a run misses its deadline (blocking I/O runs in a thread).

    Returns the outcome per target as JSON text: Airflow keeps a callback's result in a text column
    (``callback.output``); a dict there cannot be stored, and on Postgres it stopped the triggerer.
    """
    return json.dumps(await asyncio.to_thread(notify, format_alert(dag_id, promise, context)))
