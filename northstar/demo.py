"""``python -m northstar demo``: the whole flow on the embedded defaults, as ``make demo`` runs it.

Seeds the synthetic world, starts the sandbox servers, runs the intraday, nightly and intraday DAGs
and prints the summary. Two runners:

- ``scheduler`` (the default, what ``make demo`` runs): the way production makes runs. Airflow's
  API server, scheduler and DAG processor run (cron scheduling off, so only these runs happen), each
  run is triggered through the REST API with its own logical date (one trading-day slot each),
  progress is printed while it goes (tasks done of total, the current tasks), task logs are where
  the Airflow UI reads them and the runs keep their true durations.
- ``dags-test`` (``--runner dags-test``, what the end-to-end tests' shared world uses):
  ``airflow dags test``, one process per run, all three at ``as_of``; each run's full log goes to
  ``var/demo/<n>_<dag_id>.log`` and on failure its tail is printed. The Airflow UI lists these runs
  but finds no task log for them, and the second intraday run replaces the first.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from pathlib import Path

from northstar.airflow_env import airflow_environment
from northstar.bootstrap import setup
from northstar.dag_defaults import FIRM_TIMEZONE
from northstar.settings import Settings, settings
from northstar.summary import render_summary
from sandbox.launcher import (
    SandboxProcess,
    SandboxStartError,
    require_configured_ports_free,
    start_sandbox_process,
)

log = logging.getLogger(__name__)

# The first intraday run raises incidents with no anomaly model yet; the nightly trains the models
# and pushes the scores; the second intraday run scores the breaks and updates their incidents.
DAG_ORDER = ("intraday_trade_recon", "nightly_client_value", "intraday_trade_recon")
DEFAULT_AS_OF = "2026-10-30"


def demo_slots(as_of: str) -> list[tuple[str, str]]:
    """(dag_id, logical date) for each demo run, one trading-day slot each, in firm time: the last
    intraday slot of the day before ``as_of``, that night's nightly (01:30), and the first intraday
    slot of ``as_of`` (09:30)."""
    import pendulum

    day = pendulum.parse(as_of, tz=FIRM_TIMEZONE).start_of("day")
    previous_close = day.subtract(days=1).at(16, 0)
    while previous_close.day_of_week in (pendulum.SATURDAY, pendulum.SUNDAY):
        previous_close = previous_close.subtract(days=1)
    times = (previous_close, day.at(1, 30), day.at(9, 30))
    return [(dag_id, when.isoformat()) for dag_id, when in zip(DAG_ORDER, times, strict=True)]


def demo_task_environment(cfg: Settings) -> dict[str, str]:
    """What the demo's tasks run with: no retries (a failure surfaces at once) and, in the demo only,
    the sandbox's truth standing in for what an ops team records when it closes incidents (a firm's
    deployment leaves it unset and learns from ServiceNow close codes)."""
    return {"NORTHSTAR_TASK_RETRIES": "0", "NORTHSTAR_ANOMALY_TRUTH_LABELS": str(cfg.paths.truth)}


class DemoError(RuntimeError):
    pass


def seed_world(scale: str, seed: int, as_of: str, cfg: Settings) -> None:
    log.info("seeding the %s world (seed %s, as of %s)", scale, seed, as_of)
    subprocess.run(
        [sys.executable, "-m", "sandbox", "seed", "--scale", scale, "--seed", str(seed), "--as-of", as_of],
        check=True,
    )


def start_sandbox(cfg: Settings) -> SandboxProcess:
    """The sandbox servers on the configured ports, proven to be the process we started.

    Fails at once, naming the port and the process holding it, when a configured port is taken:
    otherwise the DAGs would run against whatever server answers there (sandbox/launcher.py).
    """
    try:
        return start_sandbox_process(cfg, cfg.paths.var / "demo" / "sandbox.log")
    except SandboxStartError as exc:
        raise DemoError(str(exc)) from exc


def run_dag(dag_id: str, logical_date: str, cfg: Settings, log_name: str | None = None) -> float:
    """``airflow dags test`` one DAG; returns its duration in seconds, raises with the log tail on failure."""
    log_path = cfg.paths.var / "demo" / f"{log_name or dag_id}.log"
    log.info("airflow dags test %s %s (log %s)", dag_id, logical_date, log_path)
    airflow = str(Path(sys.executable).with_name("airflow"))
    started = time.monotonic()
    with log_path.open("w") as handle:
        completed = subprocess.run(
            [airflow, "dags", "test", dag_id, logical_date],
            env={**airflow_environment(cfg), **demo_task_environment(cfg)},
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
    elapsed = time.monotonic() - started
    text = log_path.read_text(errors="replace")
    # `dags test` can exit 0 with a failed run; the final state line is the truth.
    failed = completed.returncode != 0 or "state=failed" in text or "DagRunState.FAILED" in text
    if failed:
        tail = "\n".join(text.splitlines()[-60:])
        raise DemoError(f"DAG {dag_id} failed after {elapsed:.0f}s; last lines of {log_path}:\n{tail}")
    log.info("%s succeeded in %.0fs", dag_id, elapsed)
    return elapsed


def demo_runs(as_of: str, prefix: str = "demo") -> list:
    """The demo's three runs as ``Slot``s: run ids ``demo_<n>_<logical date>``."""
    from northstar.airflow_runs import Slot

    return [Slot(dag_id, when, f"{prefix}_{number}_{when}")
            for number, (dag_id, when) in enumerate(demo_slots(as_of), start=1)]


def run_scheduled(cfg: Settings, as_of: str, progress=print) -> list[tuple[str, str, float]]:
    """The demo's runs made by a running scheduler: Airflow's API server, scheduler and DAG processor
    start on a free port (cron and asset scheduling off: only these runs happen), each run is
    triggered through the REST API and watched until it ends, with progress lines.

    Returns (dag_id, run_id, seconds) per run, the seconds as the scheduler recorded them; raises
    ``DemoError`` with the failed tasks' log tails when a run fails.
    """
    from northstar.airflow_api import AirflowApiError
    from northstar.airflow_runs import AirflowStack, DagRunFailed, trigger_runs

    try:
        with AirflowStack(cfg, extra_env=demo_task_environment(cfg)) as stack:
            progress(f"Airflow scheduler and API server up on {stack.url} (their logs in {cfg.paths.var / 'demo'})")
            results = trigger_runs(stack.api, demo_runs(as_of), progress=progress, check_alive=stack.check_alive)
    except (DagRunFailed, AirflowApiError) as exc:
        raise DemoError(str(exc)) from exc
    return [(r.dag_id, r.run_id, r.seconds) for r in results]


def run_dags_tested(cfg: Settings, as_of: str, progress=print) -> list[tuple[str, str, float]]:
    """The same three runs with ``airflow dags test`` (one process per run, no scheduler), all at
    ``as_of``: what the end-to-end tests' shared world uses (see tests/e2e/conftest.py for why)."""
    runs = []
    for number, dag_id in enumerate(DAG_ORDER, start=1):
        progress(f"run {number}/{len(DAG_ORDER)}: airflow dags test {dag_id} {as_of}")
        seconds = run_dag(dag_id, as_of, cfg, log_name=f"{number}_{dag_id}")
        progress(f"  {dag_id} succeeded in {seconds:.0f}s")
        runs.append((dag_id, f"{number}_{dag_id}", seconds))
    return runs


RUNNERS = {"scheduler": run_scheduled, "dags-test": run_dags_tested}


def run_demo(scale: str = "demo", seed: int = 7, as_of: str = DEFAULT_AS_OF, cfg: Settings | None = None,
             runner: str = "scheduler") -> None:
    """Seed, serve, make the three runs (``runner``: ``scheduler`` as production, or ``dags-test``), summarise."""
    cfg = cfg or settings()
    make_runs = RUNNERS[runner]
    try:
        require_configured_ports_free(cfg)  # before minutes of seeding, not after
    except SandboxStartError as exc:
        raise DemoError(str(exc)) from exc
    setup(cfg)
    seed_world(scale, seed, as_of, cfg)
    sandbox = start_sandbox(cfg)
    try:
        runs = make_runs(cfg, as_of, progress=lambda line: print(line, flush=True))
    finally:
        sandbox.stop()
    print(render_summary(cfg))
    where = (f"task logs: make ui -> Airflow, or {cfg.paths.airflow_home / 'logs'}" if runner == "scheduler"
             else f"logs: {cfg.paths.var / 'demo'}")
    for dag_id, run_id, seconds in runs:
        print(f"  {dag_id} {run_id}: {seconds:.0f}s")
    print(f"  ({where})")
