"""``python -m dashboard build|serve``: refresh the KPI dashboard's snapshot, or serve its pages."""

from __future__ import annotations

import argparse
import json
import logging
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dashboard", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build", help="snapshot the warehouse for the dashboard (what each DAG run's last task does)")
    build.add_argument("--run-id", help="the pipeline run the snapshot belongs to (shown on the pages)")
    serve = sub.add_parser("serve", help="serve the dashboard on 127.0.0.1")
    serve.add_argument("--port", type=int, help="default: NORTHSTAR_DASHBOARD_PORT")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    from northstar.settings import settings

    if args.command == "build":
        from dashboard import build as build_dashboard

        print(json.dumps(build_dashboard(run_id=args.run_id), indent=2, default=str))
        return 0
    from dashboard.app import serve as serve_dashboard

    serve_dashboard(args.port or settings().dashboard_port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
