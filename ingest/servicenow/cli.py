"""``python -m ingest servicenow-read-back``: land the incidents people resolved (labels) from ServiceNow."""

from __future__ import annotations

import argparse
import json

NAME = "servicenow-read-back"
HELP = "land incidents people resolved or closed in ServiceNow (labels) under landing/servicenow/incidents/"


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(NAME, help=HELP, description=HELP)
    parser.add_argument("--run-id", help="run id recorded in the manifest and the rows (default: generated)")
    parser.add_argument("--page-size", type=int, default=500, help="incidents per Table API page")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ingest.servicenow import read_back

    print(json.dumps(read_back(args.run_id, page_size=args.page_size), indent=2, default=str))
    return 0
