"""Nightly reruns on unchanged input change nothing, on a world bigger than the tests' ``small`` one.

Seeds a world (default ``demo``), runs the demo (both DAGs through ``airflow dags test`` against the
sandbox servers), then reruns the nightly DAG ``--reruns`` times with the same logical date. After
each rerun it compares every mart and score table's content fingerprint (row count and an
order-independent hash, run stamps excluded by name: ``northstar.warehouse.RUN_STAMP_COLUMNS``) and
the sandbox servers' write counters with what the demo left. Prints the figures; exits 1 if any
table changed or any write reached Salesforce or ServiceNow.

``python bench/bench_reruns.py [--scale demo] [--reruns 2] [--home DIR]``
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", default="demo")
    parser.add_argument("--reruns", type=int, default=2)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--home", type=Path, default=None, help="NORTHSTAR_HOME to use (default: a temp folder)")
    parser.add_argument("--reuse", action="store_true",
                        help="the home already holds a seeded world: run the nightly once to settle it, then rerun")
    args = parser.parse_args(argv)

    home = args.home or Path(tempfile.mkdtemp(prefix=f"bench-reruns-{args.scale}-")) / "var"
    os.environ["NORTHSTAR_HOME"] = str(home)
    os.environ["NORTHSTAR_SALESFORCE_PORT"] = str(_free_port())
    os.environ["NORTHSTAR_SERVICENOW_PORT"] = str(_free_port())
    os.environ.pop("AIRFLOW_HOME", None)

    import northstar.warehouse
    from northstar.demo import DEFAULT_AS_OF, run_dag, run_demo, start_sandbox
    from northstar.settings import settings
    from sandbox.launcher import write_counts

    cfg = settings()
    started = time.monotonic()
    if args.reuse:
        from northstar.bootstrap import setup

        setup(cfg)  # the Airflow connections follow this run's sandbox ports
        settling = start_sandbox(cfg)
        try:
            seconds = run_dag("nightly_client_value", DEFAULT_AS_OF, cfg, log_name="bench_settle")
        finally:
            settling.stop(timeout_s=30)
        print(f"settling nightly on the existing world: {seconds:.0f} s (home {home})", flush=True)
    else:
        run_demo(scale=args.scale, seed=args.seed, cfg=cfg, runner="dags-test")  # as the e2e world
        print(f"demo at {args.scale}: {time.monotonic() - started:.0f} s (home {home})", flush=True)

    def fingerprints() -> dict:
        with northstar.warehouse.connect(read_only=True, cfg=cfg) as con:
            return northstar.warehouse.content_fingerprints(con)

    before = fingerprints()
    print(f"tables fingerprinted: {len(before)}; rows: {sum(rows for rows, _ in before.values()):,}")
    changed_any = False
    process = start_sandbox(cfg)
    try:
        writes_before = write_counts(cfg)
        for number in range(1, args.reruns + 1):
            seconds = run_dag("nightly_client_value", DEFAULT_AS_OF, cfg, log_name=f"bench_rerun_{number}")
            after, writes = fingerprints(), write_counts(cfg)
            changed = sorted(t for t in set(before) | set(after) if before.get(t) != after.get(t))
            new_writes = {system: writes[system] - writes_before[system] for system in writes}
            print(f"rerun {number}: {seconds:.0f} s; tables changed: {len(changed)} {changed}; "
                  f"writes: salesforce {new_writes['salesforce']}, servicenow {new_writes['servicenow']}", flush=True)
            for table in changed:
                print(f"  {table}: before {before.get(table)}, after {after.get(table)}")
            changed_any |= bool(changed) or any(new_writes.values())
    finally:
        process.stop(timeout_s=30)
    print(f"verdict: {'CHANGED' if changed_any else 'identical content, no writes'} after {args.reruns} rerun(s)")
    return 1 if changed_any else 0


if __name__ == "__main__":
    sys.exit(main())
