"""``python -m identity link``: point the linker at your own records.

Input: one or more CSV or Parquet files with any subset of the canonical columns (``first_name,
last_name, birth_date, email, phone, street, city, postcode, tax_id``), an id column and optionally
``source``. Output: ``record_id,cluster_id,match_probability`` (CSV, or Parquet by suffix), next to it
``<out>.rejected.csv`` (records that could not be linked, with the reason) and ``<out>.review.csv``
(the clerical review queue). ``--previous`` takes an earlier output so cluster ids carry over.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import polars as pl

from identity.records import InputError
from northstar.errors import ExpectedError


class LinkInputError(ExpectedError):
    """Input the linker cannot use at all (reported in one line, exit 2)."""


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("link", help="cluster your own records (CSV or Parquet) into persons")
    parser.add_argument("--records", action="append", required=True, type=Path,
                        help="a CSV or Parquet file of records (repeat for several sources)")
    parser.add_argument("--id-column", required=True, help="the column that identifies a record")
    parser.add_argument("--out", required=True, type=Path, help="clusters file (.csv or .parquet)")
    parser.add_argument("--previous", type=Path, help="an earlier clusters file: its cluster ids are kept")
    parser.add_argument("--accept", type=float, default=None, help="accept threshold (default 0.95)")
    parser.add_argument("--review", type=float, default=None, help="review threshold (default 0.50)")
    parser.set_defaults(handler=run)
    resolve_parser = subparsers.add_parser(
        "resolve", help="resolve the warehouse's CRM people into persons (schema identity), log the model")
    resolve_parser.add_argument("--run-id", help="the resolution run's id (default: manual-<UTC time>)")
    resolve_parser.add_argument("--no-mlflow", action="store_true", help="do not log the model to MLflow")
    resolve_parser.set_defaults(handler=run_resolve)


def run_resolve(args) -> int:
    from datetime import UTC, datetime

    from identity.resolve import resolve

    run_id = args.run_id or f"manual-{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
    resolution = resolve(run_id, log_to_mlflow=not args.no_mlflow)
    json.dump(resolution.summary, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")
    return 0


def _write(frame: pl.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() in (".parquet", ".pq"):
        frame.write_parquet(path)
    else:
        frame.write_csv(path)


def _sidecar(out: Path, name: str) -> Path:
    return out.with_name(f"{out.stem}.{name}.csv")


def run(args) -> int:
    from identity.link import link
    from identity.model import Thresholds
    from identity.records import load
    from northstar.reference import nicknames

    started = time.monotonic()
    try:
        records = load(list(args.records), args.id_column, nicknames())
    except InputError as error:
        raise LinkInputError(str(error)) from None
    defaults = Thresholds()
    thresholds = Thresholds(accept=args.accept if args.accept is not None else defaults.accept,
                            review=args.review if args.review is not None else defaults.review)
    if not 0 < thresholds.review <= thresholds.accept <= 1:
        raise LinkInputError(f"thresholds must satisfy 0 < review <= accept <= 1 (got {thresholds})")
    previous = None
    if args.previous:
        earlier = pl.read_parquet(args.previous) if args.previous.suffix.lower() in (".parquet", ".pq") \
            else pl.read_csv(args.previous, infer_schema=False)
        previous = dict(zip(earlier["record_id"].to_list(), earlier["cluster_id"].to_list(), strict=True))
    result = link(records, thresholds, previous)
    _write(result.clusters.select("record_id", "cluster_id", "match_probability"), args.out)
    _write(records.rejected, _sidecar(args.out, "rejected"))
    _write(result.review, _sidecar(args.out, "review"))
    sizes = result.clusters.group_by("cluster_id").len()["len"] if result.clusters.height else pl.Series([], dtype=pl.UInt32)
    summary = {
        "records_in": records.frame.height + records.rejected.height,
        "records_linked": records.frame.height,
        "records_rejected": records.rejected.height,
        "reasons": dict(records.reasons),
        "columns_compared": list(records.columns),
        "comparisons": result.comparisons,
        "clusters": int(sizes.len()),
        "clusters_of_two_or_more": int((sizes >= 2).sum()),
        "largest_cluster": int(sizes.max() or 0) if sizes.len() else 0,
        "review_queue_pairs": result.review.height,
        "changes_since_previous": result.changes.as_dict() if previous is not None else None,
        "thresholds": {"accept": thresholds.accept, "review": thresholds.review},
        "seconds": {**result.seconds, "total": round(time.monotonic() - started, 2)},
    }
    json.dump(summary, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0
