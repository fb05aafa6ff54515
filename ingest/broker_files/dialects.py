"""Each drop-folder source described declaratively (``ingest/dialects/*.yaml``) and the tables they land in.

A dialect says where a source's files are (``folder`` + ``file_pattern``), which date they carry, how the
CSV is written (delimiter, decimal mark, encoding, date formats), how its headers map to the canonical
column names, how its codes map to canonical enumerations, and each asset class's price convention and
contract multiplier. Adding a prime broker is adding a YAML file; the canonical tables are below.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import yaml

DIALECT_DIR = Path(__file__).resolve().parent.parent / "dialects"

# Canonical landing tables: column -> (type, required). Enumerated columns land twice: the delivered
# code as ``<column>_code`` and the canonical value as ``<column>``.
TABLES: dict[str, dict[str, tuple[str, bool]]] = {
    "internal_trades": {
        "trade_id": ("string", True),
        "order_id": ("string", True),
        "trade_date": ("date", True),
        "trade_time": ("timestamp", True),
        "account_number": ("string", True),
        "instrument_id": ("string", True),
        "asset_class": ("enum", True),
        "side": ("enum", True),
        "quantity": ("decimal", True),
        "price": ("decimal", True),
        "currency": ("string", True),
        "settle_date": ("date", True),
        "executing_broker": ("string", True),
        "prime_broker": ("string", True),
        "commission": ("decimal", False),
        "fees": ("decimal", False),
    },
    "pb_confirms": {
        "prime_broker": ("string", True),
        "trade_id": ("string", True),
        "trade_date": ("date", True),
        "settle_date": ("date", True),
        "account_number": ("string", True),
        "instrument_id": ("string", True),
        "asset_class": ("enum", True),
        "side": ("enum", True),
        "quantity": ("decimal", True),
        "price": ("decimal", True),
        "currency": ("string", True),
        "gross_amount": ("decimal", False),
        "commission": ("decimal", False),
        "fees": ("decimal", False),
        "executing_broker": ("string", False),
    },
    "billing": {
        "account_number": ("string", True),
        "period_end": ("date", True),
        "market_value": ("decimal", True),
        "net_flows": ("decimal", True),
        "fees_billed": ("decimal", True),
        "currency": ("string", True),
        "account_status": ("enum", True),
    },
}
# Tables whose rows carry the dialect's price convention and contract multiplier per asset class.
PRICED_TABLES = {"internal_trades", "pb_confirms", "fix_executions"}


@dataclass(frozen=True)
class Dialect:
    source: str
    table: str
    format: str  # csv | fix
    folder: str
    file_pattern: re.Pattern
    date_group: str
    date_format: str
    partition: str  # business_date | period
    csv: dict = field(default_factory=dict)
    value_date_format: str = "%Y-%m-%d"
    timestamp_format: str = "%Y-%m-%dT%H:%M:%S%.fZ"
    columns: dict[str, str] = field(default_factory=dict)  # delivered header -> canonical column
    constants: dict[str, str] = field(default_factory=dict)
    enums: dict[str, dict[str, str]] = field(default_factory=dict)
    price_convention: dict[str, str] = field(default_factory=dict)
    contract_multiplier: dict[str, int] = field(default_factory=dict)

    def match(self, relative: Path) -> re.Match | None:
        """The file's name match if it belongs to this source (any depth under ``folder``)."""
        parts = relative.parts
        folder = tuple(Path(self.folder).parts)
        if parts[: len(folder)] != folder:
            return None
        return self.file_pattern.fullmatch(relative.name)

    def partition_date(self, match: re.Match) -> date:
        return datetime.strptime(match.group(self.date_group), self.date_format).date()

    def partition_value(self, value: date) -> str:
        return value.strftime("%Y-%m") if self.partition == "period" else value.isoformat()


def load_dialect(path: Path) -> Dialect:
    raw = yaml.safe_load(path.read_text())
    dated = raw.get("business_date") or raw.get("period")
    return Dialect(
        source=raw["source"],
        table=raw["table"],
        format=raw["format"],
        folder=raw["folder"],
        file_pattern=re.compile(raw["file_pattern"]),
        date_group=dated["group"],
        date_format=dated["format"],
        partition="period" if "period" in raw else "business_date",
        csv=raw.get("csv", {}),
        value_date_format=raw.get("date_format", "%Y-%m-%d"),
        timestamp_format=raw.get("timestamp_format", "%Y-%m-%dT%H:%M:%S%.fZ"),
        columns=raw.get("columns", {}),
        constants=raw.get("constants", {}),
        enums={k: {str(a): str(b) for a, b in v.items()} for k, v in (raw.get("enums") or {}).items()},
        price_convention=raw.get("price_convention", {}),
        contract_multiplier={k: int(v) for k, v in (raw.get("contract_multiplier") or {}).items()},
    )


def load_dialects(directory: Path = DIALECT_DIR) -> list[Dialect]:
    return [load_dialect(p) for p in sorted(directory.glob("*.yaml"))]
