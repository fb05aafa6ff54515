"""Nights over a landed world: advance the sandbox a business day, extract the Salesforce delta, land
the new billing month, build the customer side incrementally. Used by tests/ml/test_incremental_features.py
(``python tests/dbt/nights.py <world root> N`` runs N nights by hand on a world built by world_landing)."""

from __future__ import annotations

import sys
from pathlib import Path


def extract_delta(state: Path, landing: Path, run_id: str) -> dict:
    from connectors.salesforce import login
    from ingest.salesforce import extract_salesforce
    from northstar.settings import Endpoint, Secret
    from sandbox.credentials import _random_credentials
    from sandbox.server import start_in_thread

    handle = start_in_thread(state, credentials=_random_credentials())
    try:
        creds = handle.credentials["salesforce"]
        endpoint = Endpoint(url=handle.salesforce_url, username=creds["username"],
                            password=Secret(creds["password"]), security_token=Secret(creds["security_token"]),
                            ca_bundle=handle.ca_cert)
        report = extract_salesforce(landing, run_id=run_id, connect=lambda: login(endpoint), raise_on_failure=True)
    finally:
        handle.stop()
    return report.as_dict()


def night(root: Path, number: int, cfg, selector: str = "nightly_customer") -> None:
    """One day of the world, then one night's landing and incremental build (``cfg``: the world's settings)."""
    import northstar.warehouse
    from ingest.broker_files import land_broker_files
    from northstar.dbt import run_dbt
    from sandbox.world.advance import advance_world

    advance_world(root / "state", root / "drop", root / "truth", log=lambda _msg: None)
    extract_delta(root / "state", root / "landing", run_id=f"night_{number}_salesforce")
    land_broker_files(root / "drop", root / "landing", run_id=f"night_{number}_billing", sources=["billing"])
    try:
        run_dbt("build", ["--selector", selector], cfg=cfg)
    finally:
        northstar.warehouse.release_dbt_handles()


if __name__ == "__main__":
    import os

    from northstar import settings as settings_module

    world = Path(sys.argv[1]).resolve()
    os.environ.update({"NORTHSTAR_HOME": str(world / "var"), "NORTHSTAR_LANDING": str(world / "landing")})
    settings_module.reset_cache()
    for n in range(2, 2 + int(sys.argv[2])):
        night(world, n, settings_module.settings())
