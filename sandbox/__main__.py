"""``python -m sandbox``: the stand-ins' command line.

Subcommands: ``seed`` and ``mutate`` (the synthetic world, ``sandbox/world/``); ``serve`` and
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
    p.add_argument("--truth", type=Path)
    p.add_argument("--state", type=Path)
    p.set_defaults(func=_run_mutate)


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

    _, truth, state = _paths(args)
    print(json.dumps(mutate_world(state, truth, seed=args.seed), indent=2))
    return 0


SUBCOMMANDS = [add_seed, add_mutate]


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
