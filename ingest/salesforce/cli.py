"""``python -m ingest salesforce``: the command-line face of ``extract_salesforce``."""

from __future__ import annotations

import argparse
import json
import logging
from datetime import timedelta
from pathlib import Path

from ingest.salesforce.extract import DEFAULT_OBJECTS, ExtractConfig, extract_salesforce

NAME = "salesforce"


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register the ``salesforce`` subcommand on an ``ingest`` argparse parser."""
    parser = subparsers.add_parser(
        NAME,
        help="extract Salesforce objects to landing/salesforce/ (incremental by SystemModstamp)",
        description=__doc__,
    )
    parser.add_argument("--landing", type=Path, default=None, help="landing folder (default: settings)")
    parser.add_argument(
        "--objects", default=None,
        help=f"comma-separated object API names (default: {','.join(DEFAULT_OBJECTS)})",
    )
    parser.add_argument("--run-id", default=None)
    parser.add_argument("--full-refresh", action="store_true", help="ignore watermarks, extract everything")
    parser.add_argument("--overlap-minutes", type=float, default=5.0)
    parser.add_argument("--bulk-threshold", type=int, default=50_000,
                        help="rows in the read window above which Bulk API 2.0 is used (0: never count)")
    parser.add_argument("--bulk-objects", default="", help="comma-separated objects always read with Bulk API 2.0")
    parser.set_defaults(handler=run)
    return parser


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    landing = args.landing
    if landing is None:
        from northstar.settings import settings

        landing = settings().paths.landing
    objects = [o.strip() for o in args.objects.split(",") if o.strip()] if args.objects else None
    config = ExtractConfig(
        overlap=timedelta(minutes=args.overlap_minutes),
        bulk_threshold=args.bulk_threshold,
        bulk_objects=frozenset(o.strip() for o in args.bulk_objects.split(",") if o.strip()),
    )
    report = extract_salesforce(
        Path(landing), objects=objects, run_id=args.run_id, full_refresh=args.full_refresh, config=config
    )
    print(json.dumps(report.as_dict(), indent=2, default=str))
    return 0 if report.ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ingest")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.handler(args)
