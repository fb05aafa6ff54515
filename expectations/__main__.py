"""``python -m expectations run --gate landing|marts|scores [--run-id X]`` and ``python -m expectations docs``."""

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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m expectations", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="validate one gate; exit 1 when a critical expectation fails")
    run.add_argument("--gate", required=True, choices=["landing", "marts", "scores"])
    run.add_argument("--run-id", help="the pipeline run (default: a manual__<time> id)")
    run.add_argument("--ingest-run-id", action="append", dest="ingest_run_ids",
                     help="landing: the ingest run(s) to validate (default: --run-id, or everything landed without it)")
    run.add_argument("--table", action="append", dest="tables",
                     help="landing: validate only these tables (broker tables and/or 'salesforce'; repeatable)")
    run.add_argument("--require-table", action="append", dest="required_tables",
                     help="landing: fail unless the run landed a file for this broker table (repeatable)")
    run.add_argument("--domain", action="append", dest="domains", choices=["customer", "trading"],
                     help="marts: only these marts (default both)")
    run.add_argument("--scoring-run-id", help="scores: the scoring run to validate (default the latest)")
    run.add_argument("--as-of", help="the run's logical time, ISO 8601 (freshness; default now)")
    run.add_argument("--thresholds", type=_thresholds, help='JSON object of threshold overrides, e.g. \'{"x": 0.1}\'')
    run.add_argument("--no-docs", action="store_true", help="skip the Data Docs update")
    sub.add_parser("docs", help="rebuild the Data Docs HTML from the stored validation results")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("great_expectations").setLevel(logging.WARNING)

    from expectations.runner import GateFailed, build_data_docs, run_gate

    if args.command == "docs":
        print(build_data_docs())
        return 0
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


if __name__ == "__main__":
    from northstar.errors import run_cli

    sys.exit(run_cli(main))
