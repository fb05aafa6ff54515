"""Whole runs of both DAGs under ``airflow dags test``, with a per-task table (issue 22).

``python bench/bench_dags.py --scale small|demo|large [--seed 7] [--home DIR] [--skip-seed]``

In a fresh ``NORTHSTAR_HOME`` (default ``var/bench/dags-<scale>``; ``--skip-seed`` uses a world
already seeded there), with the sandbox servers running:

0. intraday 0: the seed's five business dates (the pipeline's first run; reported, not judged);
1. night 1 (full): the first nightly, which builds the warehouse and trains the models;
2. the world mutation, ``python -m sandbox advance``: one day of CRM changes, the next billing month,
   one new business date of broker files;
3. intraday for that business date;
4. night 2 (incremental).

Each run is one ``airflow dags test`` process. While it runs, this script samples the process tree
every 0.25 s (resident memory, CPU seconds) and the size of DuckDB's spill folder; after it, the task
instances' start and end from Airflow's database place each sample in its task. So a task's peak RSS
is the whole ``dags test`` process (Airflow and what earlier tasks imported included) while the task
ran, and its CPU seconds are the tree's CPU time over the task's interval. API calls are the sandbox
servers' own counters (``/__sandbox/stats``: calls answered plus sent-but-unanswered), per run.

Judged against the issue's targets (stated for ``large``; checked at every scale): night 1 <= 25
min, night 2 <= 10 min, intraday <= 5 min from the first landing task's start to the incident push's
end, no task above 6 GB peak RSS, spill <= 5 GB, ServiceNow calls per intraday run <= ceil(changes /
100) + 5. Exit 1 on a miss or a failed run.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

GB = 1024**3
TARGETS = {"night 1 (full)": 25 * 60, "night 2 (incremental)": 10 * 60}
INTRADAY_TARGET_S = 5 * 60
RSS_TARGET = 6 * GB
SPILL_TARGET = 5 * GB
SAMPLE_S = 0.25


@dataclass
class Sample:
    at: float  # epoch seconds
    rss: int
    cpu: float
    spill: int


@dataclass
class TaskFigures:
    task_id: str
    state: str
    started: float
    ended: float
    cpu_s: float = 0.0
    peak_rss: int = 0
    peak_spill: int = 0

    @property
    def wall_s(self) -> float:
        return self.ended - self.started


@dataclass
class RunFigures:
    label: str
    dag_id: str
    logical_date: str
    wall_s: float
    ok: bool
    tasks: list[TaskFigures] = field(default_factory=list)
    calls: dict[str, int] = field(default_factory=dict)
    returns: dict[str, dict] = field(default_factory=dict)
    peak_spill: int = 0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _folder_bytes(folder: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(folder):
        for name in files:
            try:
                total += os.stat(os.path.join(root, name)).st_size
            except OSError:
                pass  # a spill file removed while walking
    return total


class TreeSampler(threading.Thread):
    """Samples a process tree's RSS and CPU time, and a folder's size, until stopped."""

    def __init__(self, pid: int, spill: Path) -> None:
        super().__init__(daemon=True)
        self.pid, self.spill = pid, spill
        self.samples: list[Sample] = []
        self._halt = threading.Event()
        self._dead_cpu: dict[int, float] = {}

    def run(self) -> None:
        import psutil

        root = psutil.Process(self.pid)
        while not self._halt.is_set():
            try:
                procs = [root, *root.children(recursive=True)]
            except psutil.NoSuchProcess:
                break
            rss, cpu = 0, 0.0
            for proc in procs:
                try:
                    times = proc.cpu_times()
                    rss += proc.memory_info().rss
                    # the last value seen stays counted after the process exits
                    self._dead_cpu[proc.pid] = times.user + times.system
                except psutil.Error:
                    continue
            cpu = sum(self._dead_cpu.values())
            self.samples.append(Sample(time.time(), rss, cpu, _folder_bytes(self.spill)))
            self._halt.wait(SAMPLE_S)

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=10)


def _airflow_db(env: dict) -> Path:
    return Path(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].removeprefix("sqlite:///"))


def _epoch(text: str | None) -> float | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace(" ", "T")).timestamp() if "+" in text or text.endswith("Z") else \
        datetime.fromisoformat(text.replace(" ", "T") + "+00:00").timestamp()


def _task_rows(db: Path, dag_id: str, since: float) -> tuple[str | None, list[tuple]]:
    """The task instances of the DAG's run that started after ``since`` (``dags test`` records a run's
    start as its logical date, so the run is found by its task instances' real start times)."""
    con = sqlite3.connect(db)
    try:
        runs = con.execute("select run_id, min(start_date) from task_instance where dag_id = ? and start_date is not null "
                           "group by run_id", [dag_id]).fetchall()
        fresh = sorted((_epoch(start), run_id) for run_id, start in runs if (_epoch(start) or 0) >= since - 5)
        if not fresh:
            return None, []
        run_id = fresh[-1][1]
        tis = con.execute(
            "select task_id, state, start_date, end_date from task_instance where dag_id = ? and run_id = ? "
            "order by start_date", [dag_id, run_id]).fetchall()
        return run_id, tis
    finally:
        con.close()


def _returns(db: Path, dag_id: str, run_id: str) -> dict[str, dict]:
    con = sqlite3.connect(db)
    try:
        rows = con.execute("select task_id, value from xcom where dag_id = ? and run_id = ? and key = 'return_value'",
                           [dag_id, run_id]).fetchall()
    finally:
        con.close()
    out = {}
    for task_id, value in rows:
        try:
            parsed = json.loads(value) if isinstance(value, str | bytes) else value
            out[task_id] = parsed if isinstance(parsed, dict) else {"value": parsed}
        except (TypeError, ValueError):
            continue
    return out


def _stats(cfg) -> dict[str, dict]:
    from sandbox.server import admin_call

    return {system: admin_call(system, "GET", "stats", state_dir=cfg.paths.sandbox_state)
            for system in ("salesforce", "servicenow")}


def _reset_stats(cfg) -> None:
    from sandbox.server import admin_call

    for system in ("salesforce", "servicenow"):
        admin_call(system, "POST", "reset-stats", state_dir=cfg.paths.sandbox_state)


def run_measured(label: str, dag_id: str, logical_date: str, cfg, env: dict, log_dir: Path) -> RunFigures:
    """One ``airflow dags test`` run, sampled; its task table from Airflow's database."""
    airflow = str(Path(sys.executable).with_name("airflow"))
    log_path = log_dir / f"{label.split(' (')[0].replace(' ', '_')}_{dag_id}.log"
    _reset_stats(cfg)
    started = time.time()
    with log_path.open("w") as handle:
        proc = subprocess.Popen([airflow, "dags", "test", dag_id, logical_date], env=env, stdout=handle,
                                stderr=subprocess.STDOUT)
        sampler = TreeSampler(proc.pid, cfg.paths.duckdb_temp)
        sampler.start()
        code = proc.wait()
        sampler.stop()
    wall = time.time() - started
    text = log_path.read_text(errors="replace")
    ok = code == 0 and "state=failed" not in text and "DagRunState.FAILED" not in text
    stats = _stats(cfg)
    run = RunFigures(label, dag_id, logical_date, wall, ok,
                     calls={system: int(s.get("api_calls", 0)) for system, s in stats.items()},
                     peak_spill=max((s.spill for s in sampler.samples), default=0))
    db = _airflow_db(env)
    run_id, rows = _task_rows(db, dag_id, started)
    if run_id:
        run.returns = _returns(db, dag_id, run_id)
    samples = sampler.samples
    for task_id, state, start, end in rows:
        t0, t1 = _epoch(start), _epoch(end)
        if t0 is None or t1 is None:
            run.tasks.append(TaskFigures(task_id, state or "none", 0.0, 0.0))
            continue
        inside = [s for s in samples if t0 <= s.at <= t1]
        before = [s for s in samples if s.at <= t0]
        after = [s for s in samples if s.at >= t1]
        first = before[-1] if before else (inside[0] if inside else None)
        last = after[0] if after else (inside[-1] if inside else None)
        figures = TaskFigures(task_id, state, t0, t1)
        if first and last:
            figures.cpu_s = max(0.0, last.cpu - first.cpu)
        window = inside or [s for s in (first, last) if s]
        figures.peak_rss = max((s.rss for s in window), default=0)
        figures.peak_spill = max((s.spill for s in window), default=0)
        run.tasks.append(figures)
    if not ok:
        tail = "\n".join(text.splitlines()[-40:])
        print(f"!! {label}: {dag_id} failed (exit {code}); last lines of {log_path}:\n{tail}", flush=True)
    return run


def print_run(run: RunFigures) -> None:
    print(f"\n{run.label}: {run.dag_id} at {run.logical_date}: {run.wall_s:.1f} s wall "
          f"({'ok' if run.ok else 'FAILED'}); API calls: Salesforce {run.calls.get('salesforce', 0):,}, "
          f"ServiceNow {run.calls.get('servicenow', 0):,}; peak spill {run.peak_spill / GB:.2f} GB", flush=True)
    print(f"  {'task':<32} {'state':<10} {'wall s':>8} {'CPU s':>8} {'peak RSS GB':>12} {'spill GB':>9}")
    for t in run.tasks:
        print(f"  {t.task_id:<32} {t.state:<10} {t.wall_s:>8.1f} {t.cpu_s:>8.1f} {t.peak_rss / GB:>12.2f} "
              f"{t.peak_spill / GB:>9.2f}")


def intraday_span(run: RunFigures) -> float | None:
    """From the first landing task's start to the incident push's end (or the run's last task)."""
    tasks = {t.task_id: t for t in run.tasks if t.ended}
    if "land_broker_files" not in tasks:
        return None
    end = tasks["send_incidents"].ended if "send_incidents" in tasks else max(t.ended for t in tasks.values())
    return end - tasks["land_broker_files"].started


def judge(runs: list[RunFigures]) -> list[str]:
    misses = []
    for run in runs:
        if not run.ok:
            misses.append(f"{run.label}: the run failed")
        if run.label in TARGETS and run.wall_s > TARGETS[run.label]:
            misses.append(f"{run.label}: {run.wall_s:.0f} s > {TARGETS[run.label]} s")
        for t in run.tasks:
            if t.peak_rss > RSS_TARGET:
                misses.append(f"{run.label}: {t.task_id} peak RSS {t.peak_rss / GB:.2f} GB > 6 GB")
        if run.peak_spill > SPILL_TARGET:
            misses.append(f"{run.label}: spill {run.peak_spill / GB:.2f} GB > 5 GB")
    return misses


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=["small", "demo", "large"], default="large")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--as-of", default="2026-10-30")
    parser.add_argument("--home", type=Path, help="NORTHSTAR_HOME (default var/bench/dags-<scale>, emptied first)")
    parser.add_argument("--skip-seed", action="store_true",
                        help="use the world already seeded in --home (nothing else run in it yet)")
    args = parser.parse_args(argv)

    home = (args.home or REPO_ROOT / "var" / "bench" / f"dags-{args.scale}").resolve()
    marker = home / ".bench-dags"  # only a folder this script made is ever emptied
    if not args.skip_seed and home.exists() and any(home.iterdir()):
        if not marker.exists():
            parser.error(f"{home} is not empty and was not made by bench_dags: choose another --home, "
                         "or --skip-seed to run on the world seeded there")
        shutil.rmtree(home)
    home.mkdir(parents=True, exist_ok=True)
    if not args.skip_seed:
        marker.touch()
    os.environ["NORTHSTAR_HOME"] = str(home)
    os.environ["NORTHSTAR_SALESFORCE_PORT"] = str(_free_port())
    os.environ["NORTHSTAR_SERVICENOW_PORT"] = str(_free_port())
    for name in ("AIRFLOW_HOME", "NORTHSTAR_KILL_SWITCH", "NORTHSTAR_LANDING", "NORTHSTAR_WAREHOUSE"):
        os.environ.pop(name, None)

    import pendulum

    from northstar import settings as settings_module
    from northstar.airflow_env import airflow_environment
    from northstar.bootstrap import setup
    from northstar.dag_defaults import FIRM_TIMEZONE
    from northstar.demo import demo_task_environment, seed_world, start_sandbox
    from sandbox.world.advance import business_day_after

    settings_module.reset_cache()
    cfg = settings_module.settings()
    log_dir = home / "bench-dags"
    log_dir.mkdir(parents=True, exist_ok=True)
    print(f"bench_dags --scale {args.scale}: NORTHSTAR_HOME={home}; {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.1f} / {os.getloadavg()[1]:.1f} / {os.getloadavg()[2]:.1f} at start",
          flush=True)
    started = time.monotonic()
    setup(cfg)
    if not args.skip_seed:
        seed_world(args.scale, args.seed, args.as_of, cfg)
        print(f"world seeded ({args.scale}, seed {args.seed}) in {time.monotonic() - started:.0f} s", flush=True)
    sandbox = start_sandbox(cfg)
    env = {**airflow_environment(cfg), **demo_task_environment(cfg)}

    as_of = pendulum.parse(args.as_of, tz=FIRM_TIMEZONE)
    new_date = pendulum.parse(business_day_after(as_of.date(), 1).isoformat(), tz=FIRM_TIMEZONE)
    runs: list[RunFigures] = []
    mutation: dict = {}
    try:
        plan = [
            ("intraday 0 (seed's dates)", "intraday_trade_recon", as_of.at(16, 0)),
            ("night 1 (full)", "nightly_client_value", as_of.add(days=1).at(1, 30)),
            ("mutation", None, None),
            ("intraday (new business date)", "intraday_trade_recon", new_date.at(10, 0)),
            ("night 2 (incremental)", "nightly_client_value", new_date.add(days=1).at(1, 30)),
        ]
        for label, dag_id, when in plan:
            if dag_id is None:
                t0 = time.monotonic()
                out = subprocess.run([sys.executable, "-m", "sandbox", "advance", "--state", str(cfg.paths.sandbox_state)],
                                     env=os.environ.copy(), capture_output=True, text=True, check=True)
                mutation = json.loads(out.stdout)
                mutation["wall_s"] = round(time.monotonic() - t0, 1)
                print(f"\nmutation (python -m sandbox advance): {mutation['wall_s']} s; business date "
                      f"{mutation['business_date']}, billing month {mutation['billing_month']}, CRM changes "
                      f"{sum(mutation['crm']['changes'].values()):,}", flush=True)
                continue
            run = run_measured(label, dag_id, when.isoformat(), cfg, env, log_dir)
            runs.append(run)
            print_run(run)
            if not run.ok:
                break
    finally:
        sandbox.stop()

    misses = judge([r for r in runs if not r.label.startswith("intraday 0")])
    print("\nverdict against the issue's targets (stated for large):")
    for run in runs:
        if run.label in TARGETS:
            print(f"  {run.label}: {run.wall_s:.0f} s (target <= {TARGETS[run.label]} s)")
        if run.dag_id == "intraday_trade_recon" and not run.label.startswith("intraday 0"):
            span = intraday_span(run)
            sent = run.returns.get("send_incidents", {})
            changes = int(sent.get("sent", 0)) + int(sent.get("failed", 0)) + int(sent.get("dead", 0))
            bound = math.ceil(changes / 100) + 5
            calls = run.calls.get("servicenow", 0)
            print(f"  {run.label}: {span if span is not None else float('nan'):.0f} s from land_broker_files to "
                  f"send_incidents (target <= {INTRADAY_TARGET_S} s); ServiceNow calls {calls:,} for {changes:,} "
                  f"incident changes (bound ceil(changes/100)+5 = {bound:,})")
            if span is None or span > INTRADAY_TARGET_S:
                misses.append(f"{run.label}: intraday span {span} s > {INTRADAY_TARGET_S} s")
            if calls > bound:
                misses.append(f"{run.label}: ServiceNow calls {calls} > {bound}")
    biggest = max((t for r in runs for t in r.tasks), key=lambda t: t.peak_rss, default=None)
    if biggest:
        print(f"  largest task peak RSS: {biggest.task_id} {biggest.peak_rss / GB:.2f} GB (target <= 6 GB); "
              f"largest spill {max(r.peak_spill for r in runs) / GB:.2f} GB (target <= 5 GB)")
    slowest = sorted(((t.wall_s, r.label, t.task_id) for r in runs for t in r.tasks), reverse=True)[:3]
    print("  three slowest tasks: " + "; ".join(f"{task} in {label} {wall:.0f} s" for wall, label, task in slowest))
    print(f"  load average at end {os.getloadavg()[0]:.1f} / {os.getloadavg()[1]:.1f} / {os.getloadavg()[2]:.1f}; "
          f"bench total {time.monotonic() - started:.0f} s")
    (log_dir / "figures.json").write_text(json.dumps({
        "scale": args.scale, "mutation": mutation,
        "runs": [{"label": r.label, "dag_id": r.dag_id, "logical_date": r.logical_date, "wall_s": r.wall_s,
                  "ok": r.ok, "calls": r.calls, "peak_spill": r.peak_spill,
                  "tasks": [{"task_id": t.task_id, "state": t.state, "wall_s": t.wall_s, "cpu_s": t.cpu_s,
                             "peak_rss": t.peak_rss, "peak_spill": t.peak_spill} for t in r.tasks]}
                 for r in runs],
        "misses": misses,
    }, indent=2))
    for miss in misses:
        print(f"  MISS: {miss}")
    print("  all targets met" if not misses else f"  {len(misses)} target(s) missed")
    return 1 if misses else 0


if __name__ == "__main__":
    sys.exit(main())
