"""The KPI dashboard's build: the snapshot every DAG run's last task takes, on a built world.

``python -m dashboard build`` (``dashboard.build``) copies the KPI tables out of the warehouse into
``<var>/dashboard/snapshot.duckdb`` while holding the warehouse read-only, then adds the landing's
quarantine and read-back files and the MLflow registry. This bench runs that build ``--repeat`` times,
each in a fresh process (so imports and peak RSS are the build's own), on the world in ``--home`` (a
``NORTHSTAR_HOME`` folder, as ``make demo`` leaves in ``var/``), and prints:

* ``in warehouse``: how long the build holds the warehouse (what the DAGs' writers wait for);
* ``snapshot``: the whole snapshot (warehouse read, landing files, MLflow registry);
* ``process``: the child's wall time (Python start-up included), its CPU seconds and peak RSS;
* the size of the world it read (households, trades, breaks) and of the snapshot.

Without ``--home`` (or ``NORTHSTAR_BENCH_DASHBOARD_HOME``) the bench reads the repository's ``var/``,
and when that holds no built warehouse it makes one first with ``python -m northstar demo --scale
SCALE`` into a temporary home (minutes at ``demo``; that run is not timed here). The figures are
reported, not judged: there is no target, the exit code is 0 unless a build fails.

``python bench/bench_dashboard.py [--home DIR] [--scale demo] [--repeat 3]``
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

# What a built world must hold for the dashboard to have something to show.
REQUIRED_MART = "fct_trade_breaks"
WORLD_SIZE_SQL = {
    "households": "select count(*) from {dim_households}",
    "trades": "select count(*) from {fct_internal_executions}",
    "breaks": "select count(*) from {fct_trade_breaks}",
}


def _child(home: str, out: str) -> None:
    os.environ["NORTHSTAR_HOME"] = home
    from dashboard import build

    Path(out).write_text(json.dumps(build(run_id="bench_dashboard"), default=str))


def _built(home: Path) -> Path | None:
    """The warehouse of ``home`` when its marts are built, else None."""
    import northstar.warehouse
    from northstar.settings import settings

    os.environ["NORTHSTAR_HOME"] = str(home)
    warehouse = settings().paths.warehouse
    if not warehouse.exists():
        return None
    with northstar.warehouse.connect(read_only=True, path=warehouse) as con:
        found = northstar.warehouse.table_exists(con, REQUIRED_MART)
    return warehouse if found else None


def _world_size(warehouse: Path) -> dict[str, int]:
    import northstar.warehouse

    sizes = {}
    with northstar.warehouse.connect(read_only=True, path=warehouse) as con:
        for name, sql in WORLD_SIZE_SQL.items():
            sizes[name] = con.execute(northstar.warehouse.render(sql)).fetchone()[0]
    return sizes


def _make_world(home: Path, scale: str, seed: int) -> None:
    print(f"no built warehouse in {home}: running python -m northstar demo --scale {scale} there (not timed)", flush=True)
    subprocess.run([sys.executable, "-m", "northstar", "demo", "--scale", scale, "--seed", str(seed)],
                   check=True, cwd=REPO, env={**os.environ, "NORTHSTAR_HOME": str(home)})


def _measure(home: Path) -> dict:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as handle:
        out = Path(handle.name)
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, __file__, "--child", str(home), str(out)], cwd=REPO)
    _, status, usage = os.wait4(proc.pid, 0)  # the child's own rusage: only the reaper gets it
    wall = time.monotonic() - started
    try:
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"dashboard build failed (exit {os.waitstatus_to_exitcode(status)}) on {home}")
        report = json.loads(out.read_text())
    finally:
        out.unlink(missing_ok=True)
    return {**report, "process_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime, "peak_rss_mb": usage.ru_maxrss / 1024}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", type=Path, default=os.environ.get("NORTHSTAR_BENCH_DASHBOARD_HOME"))
    parser.add_argument("--scale", default="demo")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(*args.child)
        return 0

    temporary = None
    home = args.home or REPO / "var"
    if _built(home) is None:
        if args.home is None:
            temporary = home = Path(tempfile.mkdtemp(prefix="bench-dashboard-"))
        _make_world(home, args.scale, args.seed)
    try:
        warehouse = _built(home)
        if warehouse is None:
            raise SystemExit(f"{home} holds no built warehouse (no {REQUIRED_MART})")
        sizes = _world_size(warehouse)
        print(f"world {home}: " + ", ".join(f"{v:,} {k}" for k, v in sizes.items())
              + f"; warehouse {warehouse.stat().st_size / 1e6:,.0f} MB", flush=True)
        runs = []
        for number in range(1, args.repeat + 1):
            run = _measure(home)
            runs.append(run)
            rows = sum(run["tables"].values())
            print(f"build {number}: in warehouse {run['seconds_in_warehouse']:.2f}s, snapshot {run['seconds_total']:.2f}s, "
                  f"process {run['process_s']:.1f}s ({run['cpu_s']:.1f} CPU-s), "
                  f"peak RSS {run['peak_rss_mb']:,.0f} MB; {len(run['tables'])} tables, {rows:,} rows, "
                  f"snapshot file {Path(run['path']).stat().st_size / 1e6:,.1f} MB", flush=True)
        best = min(runs, key=lambda r: r["seconds_total"])
        load = open("/proc/loadavg").read().split()[0]
        print(f"dashboard build (best of {len(runs)}): warehouse held {best['seconds_in_warehouse']:.2f}s, "
              f"snapshot {best['seconds_total']:.2f}s, process {best['process_s']:.1f}s, "
              f"peak RSS {max(r['peak_rss_mb'] for r in runs):,.0f} MB; machine load {load} ({os.cpu_count()} CPUs)")
    finally:
        if temporary is not None:
            shutil.rmtree(temporary, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
