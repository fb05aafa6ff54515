"""``python -m activate plan|send --target salesforce|servicenow --run-id X``, ``status``, ``trace``.

Reading incidents back from ServiceNow is ``python -m ingest servicenow-read-back``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

import activate
from activate.common import left_work_undone


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m activate", description=__doc__)
    sub = parser.add_subparsers(dest="verb", required=True)
    for verb in ("plan", "send"):
        p = sub.add_parser(verb, help=f"{verb} the outbox rows of one target")
        p.add_argument("--target", choices=("salesforce", "servicenow"), required=True)
        p.add_argument("--run-id", required=True)
    sub.add_parser("status", help="outbox counts, dead rows and recent sends")
    tr = sub.add_parser("trace", help="lineage of one outbox row")
    tr.add_argument("outbox_id")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    # no warehouse yet, or one held past the lock wait: ExpectedErrors, one line and exit 2 (run_cli)
    result, report = _run(args)
    print(json.dumps(result, indent=2, default=str))
    if args.verb == "send" and (report.dead or left_work_undone(report)):
        # something to look at: dead rows, or rows left open by an interrupted send (they resume next run)
        print(f"send incomplete: {report.open_rows} row(s) open, {report.dead} dead"
              + (f"; interrupted: {report.detail.get('interrupted_by')}" if report.interrupted else ""),
              file=sys.stderr)
        return 2
    return 0


def _run(args: argparse.Namespace) -> tuple[dict, object]:
    report = None
    if args.verb == "plan":
        fn = activate.plan_salesforce if args.target == "salesforce" else activate.plan_servicenow
        result = fn(args.run_id).as_dict()
    elif args.verb == "send":
        fn = activate.send_salesforce if args.target == "salesforce" else activate.send_servicenow
        report = fn(args.run_id)
        result = report.as_dict()
    elif args.verb == "status":
        result = activate.outbox_status()
    else:
        result = activate.trace(args.outbox_id)
    return result, report


if __name__ == "__main__":
    from northstar.errors import run_cli

    sys.exit(run_cli(main))
