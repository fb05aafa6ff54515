"""``python -m expectations run --gate landing|marts|scores [...]`` and ``docs`` (registered in
expectations/__main__.py)."""

from __future__ import annotations

import argparse
import json
import logging
import sys


def _thresholds(text: str) -> dict:
    """--thresholds: a JSON object; argparse reports a bad one as 'argument --thresholds: ...' (exit 2)."""
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not valid JSON ({exc.msg} at position {exc.pos}): {text[:80]!r}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"must be a JSON object of threshold names to values, got {text[:80]!r}")
    return value


def add_parser(subparsers) -> None:
    run = subparsers.add_parser("run", help="validate one gate; exit 1 when a critical expectation fails")
    run.add_argument("--gate", required=True, choices=["landing", "marts", "scores"])
    run.add_argument("--run-id", help="the pipeline run (default: a manual__<time> id)")
    run.add_argument("--ingest-run-id", action="append", dest="ingest_run_ids",
                     help="landing: the ingest run(s) to validate (default: --run-id, or everything landed without it)")
    run.add_argument("--table", action="append", dest="tables",
                     help="landing: validate only these tables (broker tables and/or 'salesforce'; repeatable)")
    run.add_argument("--require-table", action="append", dest="required_tables",
                     help="landing: fail unless the run landed a file for this broker table (repeatable)")
    run.add_argument("--domain", action="append", dest="domains", choices=["customer", "trading", "identity"],
                     help="marts: only these marts (default both)")
    run.add_argument("--scoring-run-id", help="scores: the scoring run to validate (default the latest)")
    run.add_argument("--as-of", help="the run's logical time, ISO 8601 (freshness; default now)")
    run.add_argument("--thresholds", type=_thresholds, help='JSON object of threshold overrides, e.g. \'{"x": 0.1}\'')
    run.add_argument("--no-docs", action="store_true", help="skip the Data Docs update")
    run.set_defaults(handler=handle_run)
    docs = subparsers.add_parser("docs", help="rebuild the Data Docs HTML from the stored validation results")
    docs.set_defaults(handler=handle_docs)


def handle_docs(args: argparse.Namespace) -> int:
    from expectations.runner import build_data_docs

    print(build_data_docs())
    return 0


def handle_run(args: argparse.Namespace) -> int:
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    from expectations.runner import GateFailed, run_gate

    context: dict = {"build_docs": not args.no_docs, "log_summary": False}  # printed below instead
    if args.gate == "landing":
        context["ingest_run_ids"] = args.ingest_run_ids or ([args.run_id] if args.run_id else "all")
        if args.tables:
            context["tables"] = args.tables
        if args.required_tables:
            context["required_tables"] = args.required_tables
    if args.domains:
        context["domains"] = args.domains
    if args.scoring_run_id:
        context["scoring_run_id"] = args.scoring_run_id
    if args.as_of:
        context["as_of"] = args.as_of
    if args.thresholds:
        context["thresholds"] = args.thresholds
    try:
        report = run_gate(args.gate, args.run_id, **context)
    except GateFailed as failed:
        print(failed, file=sys.stderr)
        return 1
    print(report.summary())
    return 0
