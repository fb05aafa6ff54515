"""``python -m dashboard build`` and ``serve`` (registered in dashboard/__main__.py)."""

from __future__ import annotations

import argparse
import json


def add_parser(subparsers) -> None:
    build = subparsers.add_parser(
        "build", help="snapshot the warehouse for the dashboard (what each DAG run's last task does)")
    build.add_argument("--run-id", help="the pipeline run the snapshot belongs to (shown on the pages)")
    build.set_defaults(handler=handle_build)
    serve = subparsers.add_parser("serve", help="serve the dashboard on 127.0.0.1")
    serve.add_argument("--port", type=int, help="default: NORTHSTAR_DASHBOARD_PORT")
    serve.set_defaults(handler=handle_serve)


def handle_build(args: argparse.Namespace) -> int:
    from dashboard import build

    print(json.dumps(build(run_id=args.run_id), indent=2, default=str))
    return 0


def handle_serve(args: argparse.Namespace) -> int:
    from dashboard.app import serve
    from northstar.settings import settings

    serve(args.port or settings().dashboard_port)
    return 0
