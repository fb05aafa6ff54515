"""The reference data every stage agrees on, read from its one owner: the dbt seeds in ``dbt_project/seeds/``.

The seeds are the source of truth (dbt loads them into the ``reference`` schema, where the models join them);
Python reads the same CSV files here instead of keeping its own copy, so a new asset class, break type or
prime broker is one row in one file for SQL and Python alike. What each seed owns:

* ``asset_classes`` — the canonical asset classes and the ServiceNow group that handles each one's breaks;
* ``break_types`` — the break reason codes, whether each stops settlement and who handles it (the incident
  priority rule reads both);
* ``prime_brokers`` — the prime brokers whose confirms the reconciliation reads; each has a dialect in
  ``ingest/dialects/`` (its file layout and product codes), and a dialect whose broker is not here is refused;
* ``fix_security_types`` — FIX SecurityType(167) codes to canonical asset classes (a prime broker's product
  codes belong to its dialect, the only place that maps them);
* ``incident_rules`` — one row: the ServiceNow correlation-id prefix of a break's incident and the incident
  priority thresholds;
* ``nicknames`` — given-name nicknames identity resolution compares first names through;
* ``recon_tolerances`` — read by SQL only.

The folder is ``NORTHSTAR_DBT_PROJECT``'s ``seeds/`` (settings), so a deployment (or a test) that ships its
own dbt project copy gets its own reference data in both worlds.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from northstar.settings import Settings, settings


class ReferenceDataError(ValueError):
    """A seed file that is missing or lacks a column this code reads."""


def seed_dir(cfg: Settings | None = None) -> Path:
    return (cfg or settings()).paths.dbt_project / "seeds"


def _rows(name: str, cfg: Settings | None, columns: tuple[str, ...]) -> list[dict[str, str]]:
    return list(_read(seed_dir(cfg) / f"{name}.csv", columns))


@cache
def _read(path: Path, columns: tuple[str, ...]) -> tuple[dict[str, str], ...]:
    if not path.is_file():
        raise ReferenceDataError(f"reference data {path} is missing (a dbt seed; see dbt_project/README.md)")
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in columns if c not in (reader.fieldnames or ())]
        if missing:
            raise ReferenceDataError(f"reference data {path} lacks the column(s) {', '.join(missing)}")
        return tuple({k: (v or "").strip() for k, v in row.items()} for row in reader)


def _flag(value: str) -> bool:
    return value.strip().lower() in {"true", "1", "yes"}


@dataclass(frozen=True)
class AssetClass:
    asset_class: str
    assignment_group: str


@dataclass(frozen=True)
class BreakType:
    break_type: str
    is_settlement_blocking: bool
    assignment_group: str  # '' = by the asset class's group


@dataclass(frozen=True)
class IncidentRules:
    correlation_prefix: str
    urgent_score: float
    elevated_score: float
    high_impact_usd: float
    medium_impact_usd: float
    default_assignment_group: str


def asset_classes(cfg: Settings | None = None) -> tuple[AssetClass, ...]:
    return tuple(AssetClass(r["asset_class"], r["assignment_group"])
                 for r in _rows("asset_classes", cfg, ("asset_class", "assignment_group")))


def asset_class_names(cfg: Settings | None = None) -> tuple[str, ...]:
    return tuple(a.asset_class for a in asset_classes(cfg))


def break_types(cfg: Settings | None = None) -> tuple[BreakType, ...]:
    return tuple(BreakType(r["break_type"], _flag(r["is_settlement_blocking"]), r["assignment_group"])
                 for r in _rows("break_types", cfg, ("break_type", "is_settlement_blocking", "assignment_group")))


def prime_brokers(cfg: Settings | None = None) -> tuple[str, ...]:
    return tuple(r["prime_broker"] for r in _rows("prime_brokers", cfg, ("prime_broker",)))


def fix_security_types(cfg: Settings | None = None) -> dict[str, str]:
    return {r["security_type"]: r["asset_class"]
            for r in _rows("fix_security_types", cfg, ("security_type", "asset_class"))}


def incident_rules(cfg: Settings | None = None) -> IncidentRules:
    columns = ("correlation_prefix", "urgent_score", "elevated_score", "high_impact_usd", "medium_impact_usd",
               "default_assignment_group")
    rows = _rows("incident_rules", cfg, columns)
    if len(rows) != 1:
        raise ReferenceDataError(f"reference data incident_rules must have exactly one row, has {len(rows)}")
    (row,) = rows
    return IncidentRules(row["correlation_prefix"], float(row["urgent_score"]), float(row["elevated_score"]),
                         float(row["high_impact_usd"]), float(row["medium_impact_usd"]),
                         row["default_assignment_group"])


def nicknames(cfg: Settings | None = None) -> dict[str, tuple[str, ...]]:
    """Nickname -> the given names it can stand for (seed ``nicknames``), all lower case."""
    out: dict[str, list[str]] = {}
    for row in _rows("nicknames", cfg, ("nickname", "given_name")):
        out.setdefault(row["nickname"].lower(), []).append(row["given_name"].lower())
    return {nickname: tuple(sorted(names)) for nickname, names in out.items()}
