"""Helpers for the quality-gate tests: one real small world (landed + dbt-built) per session, and helpers
that derive bad batches from it the way they would arrive (a broker file dropped and landed by the
real ingest, a mart row as dbt would have written it, a scoring run as ml/ writes it).

Every gate here runs with its own ``Settings`` (``cfg=``), so nothing touches the repo's ``var/``.
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import northstar.warehouse

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT / "tests" / "dbt"))

# the small world's last business date is 2026-10-30: its logical time for freshness
WORLD_AS_OF = "2026-10-31T06:00:00"


def make_cfg(home: Path, landing: Path | None = None, warehouse: Path | None = None):
    """Settings rooted at ``home`` (gx_root = home/gx), optionally with another landing / warehouse."""
    from northstar.dbt import scoped_environment
    from northstar.settings import load_settings

    values = {"NORTHSTAR_HOME": str(home)}
    if landing is not None:
        values["NORTHSTAR_LANDING"] = str(landing)
    if warehouse is not None:
        values["NORTHSTAR_WAREHOUSE"] = str(warehouse)
    removed = {k: os.environ.pop(k) for k in ("NORTHSTAR_LANDING", "NORTHSTAR_WAREHOUSE", "NORTHSTAR_GX_ROOT")
               if k in os.environ}
    try:
        with scoped_environment(values):
            cfg = load_settings()
    finally:
        os.environ.update(removed)
    cfg.paths.ensure()
    return cfg


@dataclass(frozen=True)
class World:
    root: Path
    drop: Path
    landing: Path
    warehouse: Path  # pristine: copy it before changing anything


def copy_warehouse(world: World, target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(world.warehouse, target)
    return target


def failed_names(report) -> set[str]:
    return {o.expectation for o in report.outcomes if not o.success}


# --- bad deliveries, written into a drop folder the way a broker would send them ----------------
# (the landing gate tests land them with the real ingest; a DAG-level test can drop them before a run)


def negative_market_values(drop: Path, file_name: str = "billing_202610.csv", accounts: int = 3) -> Path:
    """Redeliver a billing file with the market value (AUM) of its first ``accounts`` rows negated."""
    billing = drop / "billing" / file_name
    lines = billing.read_text().splitlines()
    for i in range(1, accounts + 1):
        fields = lines[i].split(",")
        fields[2] = "-" + fields[2]
        lines[i] = ",".join(fields)
    billing.write_text("\n".join(lines) + "\n")
    return billing


def trade_book_with_duplicates(drop: Path, source: str = "trade_book_20261030.csv",
                               target: str = "trade_book_20261102.csv", rows: int = 50, repeated: int = 5) -> Path:
    """A new trade book: ``rows`` trades of an earlier book (so already booked), ``repeated`` of them twice."""
    book = (drop / "oms" / source).read_text().splitlines()
    body = book[1:rows + 1]
    path = drop / "oms" / target
    path.write_text("\n".join([book[0], *body, *body[:repeated]]) + "\n")
    return path


def garbled_fix_file(drop: Path, source: str = "BRKA_20261030.fix", target: str = "BRKA_20261102.fix",
                     garbage_in_ten: int = 6) -> Path:
    """A FIX drop copy whose CheckSum(10) is wrong on ``garbage_in_ten`` of every ten messages."""
    messages = (drop / "fix" / source).read_bytes().split(b"\n")
    garbled = []
    for i, message in enumerate(messages):
        if message and i % 10 < garbage_in_ten:
            head, _, checksum = message.rpartition(b"\x0110=")
            wrong = b"000" if checksum[:3] != b"000" else b"001"
            message = head + b"\x0110=" + wrong + checksum[3:]
        garbled.append(message)
    path = drop / "fix" / target
    path.write_bytes(b"\n".join(garbled))
    return path


def shift_scores(warehouse: Path, scoring_run_id: str) -> None:
    """Turn a scoring run into a silent model failure: CLV x4, attrition +0.5, most households 'At-Risk'."""

    with northstar.warehouse.connect(path=warehouse) as con:
        con.execute(
            "update scores.household_scores set clv = clv * 4, predicted_revenue_12m = predicted_revenue_12m * 4, "
            "attrition_probability = least(attrition_probability + 0.5, 1), "
            "segment = case when hash(household_id) % 10 < 7 then 'At-Risk Retention Priority' else segment end "
            "where scoring_run_id = ?",
            [scoring_run_id],
        )
