"""``python -m northstar ui``: the three places people look, on localhost, without Docker.

Airflow (``airflow standalone``: api-server, scheduler, dag-processor, triggerer) on :8080, the
MLflow UI on :5000 and dbt docs on :8081, plus Great Expectations Data Docs on :8082 when they
have been built. Ctrl-C stops all of them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from northstar.airflow_env import airflow_environment
from northstar.dbt import dbt_environment
from northstar.settings import settings

BIN = Path(sys.executable).parent


def _processes() -> list[tuple[str, list[str], dict[str, str]]]:
    cfg = settings()
    env = dict(os.environ)
    procs = [
        ("airflow", [str(BIN / "airflow"), "standalone"], airflow_environment(cfg)),
        (
            "mlflow",
            [
                str(BIN / "mlflow"), "ui",
                "--backend-store-uri", cfg.mlflow_tracking_uri,
                "--default-artifact-root", cfg.mlflow_artifact_root,
                "--host", "127.0.0.1", "--port", "5000",
            ],
            env,
        ),
    ]
    dbt_env = {**env, **dbt_environment(cfg)}
    dbt_args = [
        "--project-dir", str(cfg.paths.dbt_project),
        "--profiles-dir", str(cfg.paths.dbt_profiles),
        "--target-path", str(cfg.paths.dbt_target_dir),
    ]
    if (cfg.paths.dbt_project / "dbt_project.yml").exists():
        subprocess.run([str(BIN / "dbt"), "docs", "generate", *dbt_args], env=dbt_env, check=False)
        procs.append(
            ("dbt-docs", [str(BIN / "dbt"), "docs", "serve", "--port", "8081", "--no-browser", *dbt_args], dbt_env)
        )
    data_docs = cfg.paths.gx_root / "data_docs"
    if data_docs.exists():
        procs.append(
            ("gx-data-docs", [sys.executable, "-m", "http.server", "8082", "--bind", "127.0.0.1",
                              "--directory", str(data_docs)], env)
        )
    return procs


def serve_ui() -> int:
    cfg = settings()
    cfg.paths.ensure()
    running: list[tuple[str, subprocess.Popen]] = []
    for name, cmd, env in _processes():
        running.append((name, subprocess.Popen(cmd, env=env)))
    print("Airflow   http://127.0.0.1:8080")
    print("MLflow    http://127.0.0.1:5000")
    print("dbt docs  http://127.0.0.1:8081")
    print("GX docs   http://127.0.0.1:8082 (after a gate has run)")
    print("Ctrl-C stops everything.")
    try:
        while all(proc.poll() is None for _, proc in running):
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        for _, proc in running:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for name, proc in running:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
            print(f"stopped {name}")
    return 0
