"""``python -m sandbox``: the stand-ins' command line.

Subcommands: ``seed``, ``mutate`` and ``advance`` (the synthetic world, ``sandbox/world/``); ``serve`` and
``faults`` (the HTTPS servers) register themselves next to them. Each subcommand is one
``add_<name>`` function that adds its parser and sets ``func``.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date
from pathlib import Path


def add_seed(sub) -> None:
    from sandbox.world.config import DEFAULT_AS_OF, SCALES

    p = sub.add_parser("seed", help="generate the synthetic world: CRM org, drop folder, ground truth")
    p.add_argument("--scale", choices=sorted(SCALES), default="demo")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--hostile", action="store_true", help="add the bad deliveries listed in truth/hostile_files.csv")
    p.add_argument("--as-of", type=date.fromisoformat, default=DEFAULT_AS_OF, help="the world's today (YYYY-MM-DD)")
    p.add_argument("--drop", type=Path, help="drop folder (default: settings().paths.drop)")
    p.add_argument("--truth", type=Path, help="ground-truth folder (default: settings().paths.truth)")
    p.add_argument("--state", type=Path, help="sandbox state folder with salesforce.db (default: settings)")
    p.set_defaults(func=_run_seed)


def add_mutate(sub) -> None:
    p = sub.add_parser("mutate", help="later CRM changes and soft deletes (one deterministic round per call)")
    p.add_argument("--seed", type=int, help="default: the seed the world was seeded with")
    p.add_argument("--truth", type=Path, help="default: the truth folder the world was seeded with")
    p.add_argument("--state", type=Path, help="sandbox state folder (default: settings)")
    p.set_defaults(func=_run_mutate)


def add_advance(sub) -> None:
    p = sub.add_parser("advance", help="one more business day: a day of CRM changes, the next billing month, "
                                       "the next business date's broker files (deterministic per seed and round)")
    p.add_argument("--seed", type=int, help="default: the seed the world was seeded with")
    p.add_argument("--drop", type=Path, help="default: the drop folder the world was seeded into")
    p.add_argument("--truth", type=Path, help="default: the truth folder the world was seeded with")
    p.add_argument("--state", type=Path, help="sandbox state folder (default: settings)")
    p.set_defaults(func=_run_advance)


def _paths(args) -> tuple[Path, Path, Path]:
    from northstar.settings import settings

    cfg = settings()
    drop = getattr(args, "drop", None) or cfg.paths.drop
    return drop, args.truth or cfg.paths.truth, args.state or cfg.paths.sandbox_state


def _run_seed(args) -> int:
    from sandbox.world.seed import seed_world

    drop, truth, state = _paths(args)
    report = seed_world(args.scale, args.seed, args.as_of, drop, truth, state, hostile_inputs=args.hostile,
                        log=lambda msg: print(msg, file=sys.stderr, flush=True))
    print(json.dumps(report.as_dict(), indent=2))
    return 0


def _run_mutate(args) -> int:
    from sandbox.world.mutate import mutate_world

    _, _, state = _paths(args)
    # default truth folder: the one the world was seeded into (world.json), so the log stays with it
    print(json.dumps(mutate_world(state, args.truth, seed=args.seed), indent=2))
    return 0


def _run_advance(args) -> int:
    from northstar.settings import settings
    from sandbox.world.advance import advance_world

    state = args.state or settings().paths.sandbox_state
    print(json.dumps(advance_world(state, args.drop, args.truth, seed=args.seed,
                                   log=lambda msg: print(msg, file=sys.stderr, flush=True)), indent=2))
    return 0


def add_serve(sub) -> None:
    p = sub.add_parser("serve", help="run the HTTPS Salesforce and ServiceNow servers in the foreground")
    p.add_argument("--salesforce-port", type=int, help="default: settings().salesforce_port (8443)")
    p.add_argument("--servicenow-port", type=int, help="default: settings().servicenow_port (8444)")
    p.add_argument("--host", help="address to bind (default: settings().sandbox_host; 0.0.0.0 in a container)")
    p.add_argument("--state", type=Path, help="sandbox state folder (default: settings().paths.sandbox_state)")
    p.set_defaults(func=_run_serve)


def add_faults(sub) -> None:
    p = sub.add_parser("faults", help="switch fault injection on a running server, or read its stats")
    p.add_argument("--salesforce", metavar="JSON", help='e.g. \'{"api_limit_after": 5}\' (see sandbox/faults.py)')
    p.add_argument("--servicenow", metavar="JSON", help='e.g. \'{"unavailable": 2}\'')
    p.add_argument("--reset", action="store_true", help="clear every fault on both servers")
    p.add_argument("--stats", action="store_true", help="print both servers' request and write counters")
    p.add_argument("--reset-stats", action="store_true", help="zero both servers' counters")
    p.add_argument("--state", type=Path, help="sandbox state folder (for server.ready and cert.pem)")
    p.set_defaults(func=_run_faults)


def _run_serve(args) -> int:
    from northstar.settings import settings
    from sandbox.server import serve

    cfg = settings()
    return serve(
        args.state or cfg.paths.sandbox_state,
        args.salesforce_port if args.salesforce_port is not None else cfg.salesforce_port,
        args.servicenow_port if args.servicenow_port is not None else cfg.servicenow_port,
        host=args.host or cfg.sandbox_host,
    )


def _run_faults(args) -> int:
    from sandbox.server import admin_call

    state = args.state
    out = {}
    for system in ("salesforce", "servicenow"):
        body = json.loads(getattr(args, system)) if getattr(args, system) else None
        if args.reset:
            body = {"reset": True, **(body or {})}
        if body is not None:
            out.setdefault(system, {})["faults"] = admin_call(system, "POST", "faults", body, state_dir=state)
        if args.reset_stats:
            out.setdefault(system, {})["stats"] = admin_call(system, "POST", "reset-stats", state_dir=state)
        if args.stats:
            out.setdefault(system, {})["stats"] = admin_call(system, "GET", "stats", state_dir=state)
    if not out:
        out = {s: {"faults": admin_call(s, "GET", "faults", state_dir=state)} for s in ("salesforce", "servicenow")}
    print(json.dumps(out, indent=2))
    return 0


SUBCOMMANDS = [add_seed, add_mutate, add_advance, add_serve, add_faults]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for add in SUBCOMMANDS:
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
