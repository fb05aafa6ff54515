"""``python -m northstar``: setup, the Airflow wrapper and the demo summary."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from northstar.settings import settings


def _cmd_setup(args: argparse.Namespace) -> int:
    from northstar.bootstrap import setup

    setup(airflow=not args.no_airflow, compose_env=args.compose_env)
    print(f"Northstar is set up under {settings().paths.var}")
    return 0


def _cmd_airflow(args: argparse.Namespace) -> int:
    """Exec ``airflow`` with Northstar's environment (AIRFLOW_HOME under var/, SQLite, dags/)."""
    from northstar.airflow_env import airflow_environment

    airflow = str(Path(sys.executable).with_name("airflow"))
    os.execve(airflow, [airflow, *args.airflow_args], airflow_environment())
    return 0  # not reached


def _cmd_summary(args: argparse.Namespace) -> int:
    from northstar.summary import render_summary

    print(render_summary())
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from northstar.demo import DemoError, run_demo

    try:
        run_demo(scale=args.scale, seed=args.seed, as_of=args.as_of, runner=args.runner)
    except DemoError as exc:
        print(f"demo failed: {exc}", file=sys.stderr)
        return 1
    return 0


def _cmd_ui(args: argparse.Namespace) -> int:
    from northstar.ui import serve_ui

    return serve_ui()


def _cmd_stack(args: argparse.Namespace) -> int:
    from northstar.stack import StackError, main

    try:
        return main(args.action, sandbox=not args.no_sandbox)
    except StackError as exc:
        print(f"stack {args.action} failed: {exc}", file=sys.stderr)
        return 1


def _cmd_paths(args: argparse.Namespace) -> int:
    cfg = settings()
    for name, value in vars(cfg.paths).items():
        print(f"{name:16} {value}")
    print(f"{'mlflow_uri':16} {cfg.mlflow_tracking_uri}")
    print(f"{'salesforce':16} {cfg.sandbox_salesforce_url}")
    print(f"{'servicenow':16} {cfg.sandbox_servicenow_url}")
    return 0


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    parser = argparse.ArgumentParser(prog="python -m northstar", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("setup", help="create var/, sandbox credentials, Airflow DB, pool and connections")
    p.add_argument("--no-airflow", action="store_true", help="only folders and credentials")
    p.add_argument("--compose-env", type=Path, default=None, metavar="FILE",
                   help="also write the PII salt into this docker compose .env file (0600)")
    p.set_defaults(func=_cmd_setup)
    p = sub.add_parser("airflow", help="run the airflow CLI in Northstar's environment")
    p.add_argument("airflow_args", nargs=argparse.REMAINDER)
    p.set_defaults(func=_cmd_airflow)
    p = sub.add_parser("summary", help="what the last demo run produced and where to look")
    p.set_defaults(func=_cmd_summary)
    p = sub.add_parser("demo", help="seed, serve, run both DAGs (three runs), summarise")
    p.add_argument("--scale", default=settings().scale, choices=["small", "demo", "large"])
    p.add_argument("--seed", type=int, default=settings().seed)
    p.add_argument("--as-of", default="2026-10-30")
    p.add_argument("--runner", choices=["scheduler", "dags-test"], default="scheduler",
                   help="scheduler (default, as production): runs triggered through the REST API of a running "
                        "scheduler, one logical date per trading-day slot, task logs and true durations in the "
                        "Airflow UI; dags-test: `airflow dags test`, one process per run, logs in var/demo")
    p.set_defaults(func=_cmd_demo)
    p = sub.add_parser("ui", help="Airflow, MLflow, dbt docs, Data Docs and the KPI dashboard on 127.0.0.1")
    p.set_defaults(func=_cmd_ui)
    p = sub.add_parser("stack", help="the docker-compose topology as local processes under var/stack")
    p.add_argument("action", choices=["up", "down", "status"])
    p.add_argument("--no-sandbox", action="store_true", help="a real Salesforce org / ServiceNow instance")
    p.set_defaults(func=_cmd_stack)
    p = sub.add_parser("paths", help="print the resolved paths and endpoints")
    p.set_defaults(func=_cmd_paths)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
