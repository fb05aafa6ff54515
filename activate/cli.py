"""``python -m activate plan|send --target salesforce|servicenow --run-id X``, ``status``, ``trace <outbox_id>``
(registered in activate/__main__.py)."""

from __future__ import annotations

import argparse
import json
import sys

TARGETS = ("salesforce", "servicenow")


def add_parser(subparsers) -> None:
    for verb in ("plan", "send"):
        parser = subparsers.add_parser(verb, help=f"{verb} the outbox rows of one target")
        parser.add_argument("--target", choices=TARGETS, required=True)
        parser.add_argument("--run-id", required=True)
        parser.set_defaults(handler=handle_plan if verb == "plan" else handle_send)
    subparsers.add_parser("status", help="outbox counts, dead rows and recent sends").set_defaults(handler=handle_status)
    trace = subparsers.add_parser("trace", help="lineage of one outbox row")
    trace.add_argument("outbox_id")
    trace.set_defaults(handler=handle_trace)


def _print(result: dict) -> None:
    print(json.dumps(result, indent=2, default=str))


def handle_plan(args: argparse.Namespace) -> int:
    import activate

    plan = activate.plan_salesforce if args.target == "salesforce" else activate.plan_servicenow
    _print(plan(args.run_id).as_dict())
    return 0


def handle_send(args: argparse.Namespace) -> int:
    import activate
    from activate.common import left_work_undone

    send = activate.send_salesforce if args.target == "salesforce" else activate.send_servicenow
    report = send(args.run_id)
    _print(report.as_dict())
    if report.dead or left_work_undone(report):
        # something to look at: dead rows, or rows left open by an interrupted send (they resume next run)
        print(f"send incomplete: {report.open_rows} row(s) open, {report.dead} dead"
              + (f"; interrupted: {report.detail.get('interrupted_by')}" if report.interrupted else ""),
              file=sys.stderr)
        return 2
    return 0


def handle_status(args: argparse.Namespace) -> int:
    import activate

    _print(activate.outbox_status())
    return 0


def handle_trace(args: argparse.Namespace) -> int:
    import activate

    _print(activate.trace(args.outbox_id))
    return 0
