"""``python -m ingest broker-files``: land the drop folder (paths default to northstar settings)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

NAME = "broker-files"
HELP = "land the broker drop folder (FIX, prime-broker confirms, internal book, billing) as Parquet"


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(NAME, help=HELP, description=HELP)
    parser.add_argument("--drop", type=Path, help="drop folder (default: settings().paths.drop)")
    parser.add_argument("--landing", type=Path, help="landing folder (default: settings().paths.landing)")
    parser.add_argument("--run-id", help="run id recorded in the manifest and lineage (default: generated)")
    parser.add_argument("--source", action="append", dest="sources",
                        help="only this table or source (repeatable), e.g. pb_confirms, atlas, billing")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ingest.broker_files import land_broker_files
    from northstar.settings import settings

    paths = settings().paths
    report = land_broker_files(args.drop or paths.drop, args.landing or paths.landing,
                               run_id=args.run_id, sources=args.sources)
    summary = {k: v for k, v in report.as_dict().items() if k != "files"}
    print(json.dumps(summary, indent=2, default=str))
    for f in report.files:
        print(f"  {f.status:<18} v{f.version or '-'} {f.source:<9} {f.file_path} "
              f"in={f.rows_in} landed={f.rows_landed} quarantined={f.rows_quarantined}"
              + (f" ({f.reason_code})" if f.reason_code else ""))
    return 0
