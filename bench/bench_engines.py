"""The full ``dbt build`` on both engines: DuckDB and Spark ``local[2]`` (issue 20), same landing.

For each scale and engine, in a child process of its own: ``northstar.dbt.run_dbt("build")`` of the
whole project (the default selector: every model, seed, snapshot or its Spark form, data test and unit
test) into a fresh warehouse under ``DIR/<scale>/<engine>``. Reported: wall time, and the peak RSS of
the child's whole process tree sampled every 0.2 s (on Spark the pyspark JVM is a child of the dbt
process, so it counts), and the machine's load average (the figures are only comparable on a quiet
machine).

``python bench/bench_engines.py [--scales small,demo] [--seed 7] [--home DIR] [--engines duckdb,spark]``;
each world is built by ``bench_dbt.build_world`` and reused when ``DIR/<scale>`` already holds a landing.
``large`` is not in the default: on Spark ``local[2]`` with two cores it is out of reach here (the
small world's Spark build alone takes minutes: Spark's per-query overhead on a single machine); pass
``--scales large`` on a bigger machine, with ``NORTHSTAR_SPARK_DRIVER_MEMORY`` raised (2g by default).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def child_build() -> None:
    """In the child: one full build on the engine the environment names; prints its result as JSON."""
    from northstar.dbt import run_dbt

    started = time.monotonic()
    result = run_dbt("build")
    print(json.dumps({"nodes": result.nodes, "warnings": len(result.warnings),
                      "build_s": round(time.monotonic() - started, 1)}))


def _tree_rss_mb(pid: int) -> float:
    import psutil

    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0
    for process in processes:
        try:
            total += process.memory_info().rss
        except psutil.NoSuchProcess:
            continue
    return total / 2**20


def build_on(engine: str, home: Path, landing: Path) -> dict:
    env = {**os.environ, "NORTHSTAR_HOME": str(home / engine), "NORTHSTAR_LANDING": str(landing),
           "NORTHSTAR_ENGINE": engine, "NORTHSTAR_PII_SALT": "bench-engines", "NORTHSTAR_NO_AIRFLOW_CONNECTIONS": "1"}
    shutil.rmtree(home / engine, ignore_errors=True)
    started = time.monotonic()
    child = subprocess.Popen([sys.executable, __file__, "--child"], cwd=REPO, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = [0.0]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _tree_rss_mb(child.pid))
            time.sleep(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, err = child.communicate()
    done.set()
    sampler.join()
    wall = time.monotonic() - started
    if child.returncode != 0:
        raise SystemExit(f"{engine} build failed:\n{err[-4000:]}")
    result = json.loads(out.strip().splitlines()[-1])
    return {"engine": engine, "wall_s": round(wall, 1), "peak_rss_mb": round(peak[0]), **result}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", default="small,demo")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--home", type=Path, default=os.environ.get("NORTHSTAR_BENCH_ENGINES_HOME"))
    parser.add_argument("--engines", default="duckdb,spark")
    args = parser.parse_args(argv)
    from bench.bench_dbt import build_world

    home = args.home or Path(tempfile.mkdtemp(prefix="bench-engines-"))
    home.mkdir(parents=True, exist_ok=True)
    try:
        for scale in args.scales.split(","):
            scale_home = home / scale.strip()
            scale_home.mkdir(parents=True, exist_ok=True)
            world = build_world(scale_home, scale.strip(), args.seed, lambda msg: print(msg, flush=True))
            print(f"world ({scale}): {world}", flush=True)
            for engine in args.engines.split(","):
                load = os.getloadavg()
                run = build_on(engine.strip(), scale_home, scale_home / "landing")
                end_load = os.getloadavg()
                print(f"{scale} full dbt build on {run['engine']}: {run['wall_s']:.1f} s wall "
                      f"({run['build_s']:.1f} s in dbt), peak RSS {run['peak_rss_mb']:,} MB (process tree), "
                      f"{run['nodes']} nodes, {run['warnings']} warnings; load average "
                      f"{load[0]:.1f} at start, {end_load[0]:.1f} at end on {os.cpu_count()} CPUs", flush=True)
        if "large" not in args.scales:
            print("large: not run (Spark local[2] at large is out of reach on this 2-core machine; "
                  "--scales large on a bigger one)", flush=True)
    finally:
        if args.home is None:
            shutil.rmtree(home, ignore_errors=True)
    return 0


if __name__ == "__main__":
    if sys.argv[1:] == ["--child"]:
        child_build()
    else:
        sys.exit(main(sys.argv[1:]))
