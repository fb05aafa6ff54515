"""Build a landing folder from the synthetic world the way production does.

Seed the small world, serve its Salesforce org over HTTPS on a free port, extract every object with
``ingest.salesforce`` and land the broker drop folder with ``ingest.broker_files``. Returns the
paths (landing, truth). Used by tests/dbt/test_dbt_build.py; ``python tests/dbt/world_landing.py
<dir>`` builds one by hand.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class WorldLanding:
    landing: Path
    truth: Path
    drop: Path


def build_world_landing(root: Path, scale: str = "small", seed: int = 7, hostile: bool = False) -> WorldLanding:
    from connectors.salesforce import login
    from ingest.broker_files import land_broker_files
    from ingest.salesforce import extract_salesforce
    from northstar.settings import Endpoint, Secret
    from sandbox.credentials import _random_credentials
    from sandbox.server import start_in_thread

    root = Path(root)
    state, drop, truth, landing = root / "state", root / "drop", root / "truth", root / "landing"
    env = {**os.environ, "NORTHSTAR_HOME": str(root / "var")}
    subprocess.run(
        [sys.executable, "-m", "sandbox", "seed", "--scale", scale, "--seed", str(seed),
         "--state", str(state), "--drop", str(drop), "--truth", str(truth), *(["--hostile"] if hostile else [])],
        check=True, env=env, capture_output=True, timeout=300,
    )
    handle = start_in_thread(state, credentials=_random_credentials())
    try:
        creds = handle.credentials["salesforce"]
        endpoint = Endpoint(
            url=handle.salesforce_url,
            username=creds["username"],
            password=Secret(creds["password"]),
            security_token=Secret(creds["security_token"]),
            ca_bundle=handle.ca_cert,
        )
        extract_salesforce(landing, run_id="world_full", full_refresh=True, connect=lambda: login(endpoint))
    finally:
        handle.stop()
    land_broker_files(drop, landing, run_id="world_broker")
    return WorldLanding(landing=landing, truth=truth, drop=drop)


if __name__ == "__main__":
    print(build_world_landing(Path(sys.argv[1]), hostile="--hostile" in sys.argv[2:]))
