"""Synthetic-world generation: time, peak memory and output size of ``sandbox seed`` at a scale tier.

Generates the ``large`` tier (1,000,000 households, 5,000,000 trades a day for 5 days) into a temporary
folder (removed afterwards unless ``--keep``), then prints the phase timings, the parent's and the trading
process's peak RSS (``resource.getrusage``), row counts and bytes written. Exit code 1 if generation took
longer than ``--budget-s`` or the peak RSS of either process exceeded 4 GB. CPU seconds and the load average are printed too: on a
shared machine the wall clock says more about the neighbours than about the generator.
``python bench/bench_world.py [--scale large] [--seed 7] [--keep] [--dir DIR]``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from sandbox.world.seed import seed_world  # noqa: E402 - after the path set-up, for `python bench/...`

RSS_LIMIT_MB = 4096


def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="large")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--dir", type=Path, help="where to generate (default: a temporary folder)")
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--budget-s", type=float, default=600.0)
    args = parser.parse_args(argv)

    base = args.dir or Path(tempfile.mkdtemp(prefix="northstar-world-"))
    started = time.monotonic()
    try:
        report = seed_world(args.scale, args.seed, date(2026, 10, 30), base / "drop", base / "truth", base / "state",
                            log=lambda msg: print(f"  {msg}", flush=True))
        elapsed = time.monotonic() - started
        self_usage = resource.getrusage(resource.RUSAGE_SELF)
        child_usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        own, children = self_usage.ru_maxrss / 1024, child_usage.ru_maxrss / 1024
        # CPU seconds say what the work costs when the wall clock is shared with other jobs
        cpu = {"parent": round(self_usage.ru_utime + self_usage.ru_stime, 1),
               "second_process": round(child_usage.ru_utime + child_usage.ru_stime, 1)}
        sizes = {name: round(_size(base / name) / 2**30, 2) for name in ("drop", "truth", "state")}
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    rows = report.rows
    figures = {
        "scale": args.scale,
        "seconds_total": round(elapsed, 1),
        "phases": report.seconds,
        "cpu_seconds": cpu,
        "load_average_1m": round(os.getloadavg()[0], 2),
        "peak_rss_mb_parent": round(own),
        "peak_rss_mb_trading_process": round(children),
        "gib_written": sizes,
        "households": rows.get("households"),
        "billing_rows": rows.get("billing"),
        "crm_rows": {k.removeprefix("crm."): v for k, v in rows.items() if k.startswith("crm.")},
        "trade_book_rows": sum(v for k, v in rows.items() if k.startswith("oms/")),
        "fix_messages": sum(v for k, v in rows.items() if k.startswith("fix/")),
        "confirm_rows": sum(v for k, v in rows.items() if k.startswith("prime/")),
        "truth_breaks_rows": rows.get("truth.breaks"),
        "truth_anomalies_rows": rows.get("truth.anomalies"),
    }
    print(json.dumps(figures, indent=2))
    ok = elapsed <= args.budget_s and max(own, children) <= RSS_LIMIT_MB
    print(f"world[{args.scale}]: {elapsed:.0f}s, peak RSS {max(own, children):.0f} MB -> {'ok' if ok else 'OVER BUDGET'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
