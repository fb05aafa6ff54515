"""``python -m northstar demo``: the whole flow on the embedded defaults, as ``make demo`` runs it.

Seeds the synthetic world, starts the sandbox servers, runs the nightly and the intraday DAG end to
end with ``airflow dags test`` and prints the summary. Each DAG's full log goes to
``var/demo/<dag_id>.log``; on failure the tail of it is printed and the command exits non-zero.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from pathlib import Path

from northstar.airflow_env import airflow_environment
from northstar.bootstrap import setup
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
            # In the demo the sandbox's truth stands in for what an ops team records when it closes
            # incidents; a firm's deployment leaves this unset and learns from ServiceNow close codes.
            env={**airflow_environment(cfg), "NORTHSTAR_TASK_RETRIES": "0",
                 "NORTHSTAR_ANOMALY_TRUTH_LABELS": str(cfg.paths.truth)},
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


def run_demo(scale: str = "demo", seed: int = 7, as_of: str = DEFAULT_AS_OF, cfg: Settings | None = None) -> None:
    cfg = cfg or settings()
    try:
        require_configured_ports_free(cfg)  # before minutes of seeding, not after
    except SandboxStartError as exc:
        raise DemoError(str(exc)) from exc
    setup(cfg)
    seed_world(scale, seed, as_of, cfg)
    sandbox = start_sandbox(cfg)
    durations: list[tuple[str, float]] = []
    try:
        for number, dag_id in enumerate(DAG_ORDER, start=1):
            durations.append((dag_id, run_dag(dag_id, as_of, cfg, log_name=f"{number}_{dag_id}")))
    finally:
        sandbox.stop()
    print(render_summary(cfg))
    for number, (dag_id, seconds) in enumerate(durations, start=1):
        print(f"  {dag_id}: {seconds:.0f}s (log: {cfg.paths.var / 'demo' / f'{number}_{dag_id}.log'})")
