"""Each drop-folder source described declaratively (``ingest/dialects/*.yaml``) and the tables they land in.

A dialect says where a source's files are (``folder`` + ``file_pattern``), which date they carry, how the
CSV is written (delimiter, decimal mark, encoding, date formats), how its headers map to the canonical
column names, how its codes map to canonical enumerations, and each asset class's price convention and
contract multiplier. Adding a prime broker is adding a YAML file plus its row in the seed ``prime_brokers``
(``dbt_project/seeds/prime_brokers.csv``): a prime-broker dialect whose broker is not there, or whose
asset-class codes map to a class missing from the seed ``asset_classes``, is refused. The canonical tables
are below.

Dialects are validated when loaded (``DIALECT_SCHEMA``): an unknown key, a missing required key or mapping,
a value of the wrong type or a pattern without its date group is a ``DialectError`` whose message is one
line naming the file and the key. The shipped dialects are in ``ingest/dialects/``; a firm adds its own
brokers in a folder of its own named by ``NORTHSTAR_DIALECTS`` (read beside the shipped ones; a firm
dialect with a shipped dialect's ``source`` replaces it).

FIX dialects carry per-broker rules (``brokers``, keyed by the file name's ``broker`` group, ``'*'`` for
every broker): ``required_tags`` a broker's rules of engagement add to the FIX standard's, ``defaults``
(a column's value when the message lacks the tag) and ``derive`` (``trade_date: transact_time``: TradeDate
from TransactTime in the firm's time zone when absent). Filled values are named in ``derived_columns``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import yaml

from northstar import reference

DIALECT_DIR = Path(__file__).resolve().parent.parent / "dialects"
FIRM_DIALECTS_ENV = "NORTHSTAR_DIALECTS"

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
FIX_TABLE = "fix_executions"
PRICE_CONVENTIONS = {"per_unit", "pct_of_par", "fraction_of_par", "per_contract"}
# What a FIX broker rule may derive, and from what.
FIX_DERIVATIONS = {"trade_date": {"transact_time"}}

_STR, _INT = "string", "integer"
# key -> (required, type); a dict type is a nested schema, ("map", value type) a free-keyed mapping.
DIALECT_SCHEMA: dict = {
    "source": (True, _STR),
    "table": (True, _STR),
    "format": (True, _STR),
    "folder": (True, _STR),
    "file_pattern": (True, _STR),
    "business_date": (False, {"group": (True, _STR), "format": (True, _STR)}),
    "period": (False, {"group": (True, _STR), "format": (True, _STR)}),
    "csv": (False, {"delimiter": (False, _STR), "decimal": (False, _STR), "encoding": (False, _STR),
                    "quote": (False, _STR)}),
    "date_format": (False, _STR),
    "timestamp_format": (False, _STR),
    "columns": (False, ("map", _STR)),
    "constants": (False, ("map", _STR)),
    "enums": (False, ("map", ("map", _STR))),
    "price_convention": (False, ("map", _STR)),
    "contract_multiplier": (False, ("map", _INT)),
    "brokers": (False, ("map", {"required_tags": (False, ("list", _INT)), "defaults": (False, ("map", _STR)),
                                "derive": (False, ("map", _STR))})),
}


class DialectError(ValueError):
    """A dialect file that does not follow the schema: one line, naming the file and the key."""


def _scalar_ok(value, kind: str) -> bool:
    if kind == _INT:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, str | int | float) and not isinstance(value, bool)  # YAML reads 1 as int


def _check(value, schema, where: str, name: str) -> None:
    """Raise ``DialectError`` at the first place ``value`` departs from ``schema``."""
    if isinstance(schema, dict):
        if not isinstance(value, dict):
            raise DialectError(f"{name}: {where or 'the file'}: expected a mapping, got {type(value).__name__}")
        for key in value:
            if key not in schema:
                known = ", ".join(sorted(schema))
                raise DialectError(f"{name}: {_join(where, key)}: unknown key (expected one of: {known})")
        for key, (required, kind) in schema.items():
            if key not in value:
                if required:
                    raise DialectError(f"{name}: {_join(where, key)}: required key missing")
                continue
            _check(value[key], kind, _join(where, key), name)
    elif isinstance(schema, tuple) and schema[0] in ("map", "list"):
        container = dict if schema[0] == "map" else list
        if not isinstance(value, container):
            raise DialectError(f"{name}: {where}: expected a {'mapping' if container is dict else 'list'}, "
                               f"got {type(value).__name__}")
        items = value.items() if container is dict else enumerate(value)
        for key, item in items:
            _check(item, schema[1], _join(where, str(key)), name)
    elif not _scalar_ok(value, schema):
        raise DialectError(f"{name}: {where}: expected {'an integer' if schema == _INT else 'a string'}, "
                           f"got {value!r}")


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def validate_dialect(raw, name: str) -> None:
    """The schema, then the rules between keys (a known table, its required columns mapped, the date group
    in the pattern, codes mapped to what the table expects)."""
    _check(raw, DIALECT_SCHEMA, "", name)
    table = raw["table"]
    if table not in TABLES and table != FIX_TABLE:
        raise DialectError(f"{name}: table: unknown table {table!r} (expected one of: "
                           f"{', '.join(sorted([*TABLES, FIX_TABLE]))})")
    if raw["format"] not in ("csv", "fix") or (raw["format"] == "fix") != (table == FIX_TABLE):
        raise DialectError(f"{name}: format: {raw['format']!r} does not fit table {table!r} (csv, or fix for "
                           f"{FIX_TABLE})")
    dated = [k for k in ("business_date", "period") if k in raw]
    if len(dated) != 1:
        raise DialectError(f"{name}: business_date: exactly one of business_date or period is required")
    try:
        pattern = re.compile(str(raw["file_pattern"]))
    except re.error as exc:
        raise DialectError(f"{name}: file_pattern: not a regular expression ({exc})") from None
    group = raw[dated[0]]["group"]
    if group not in pattern.groupindex:
        raise DialectError(f"{name}: {dated[0]}.group: the file_pattern has no group named {group!r}")
    if raw["format"] == "fix":
        if "columns" in raw or "enums" in raw or "csv" in raw:
            raise DialectError(f"{name}: columns: a FIX dialect maps tags by the FIX dictionary, not columns")
        for broker, rules in (raw.get("brokers") or {}).items():
            for column, source in (rules.get("derive") or {}).items():
                if source not in FIX_DERIVATIONS.get(column, set()):
                    raise DialectError(f"{name}: brokers.{broker}.derive.{column}: can only be derived from "
                                       f"{sorted(FIX_DERIVATIONS.get(column, set())) or 'nothing'}")
    else:
        if "brokers" in raw:
            raise DialectError(f"{name}: brokers: broker rules are for FIX dialects")
        schema = TABLES[table]
        columns = raw.get("columns") or {}
        constants = raw.get("constants") or {}
        for header, column in columns.items():
            if column not in schema:
                raise DialectError(f"{name}: columns.{header}: {column!r} is not a column of {table}")
        mapped = set(columns.values()) | set(constants)
        for column, (kind, required) in schema.items():
            if required and column not in mapped:
                raise DialectError(f"{name}: columns: required column {column!r} of {table} is not mapped")
            if kind == "enum" and column in columns.values() and column not in (raw.get("enums") or {}):
                raise DialectError(f"{name}: enums.{column}: codes of the enumerated column are not mapped")
        _check_reference_data(raw, name, table, constants)
    for asset_class, convention in (raw.get("price_convention") or {}).items():
        if convention not in PRICE_CONVENTIONS:
            raise DialectError(f"{name}: price_convention.{asset_class}: {convention!r} is not one of "
                               f"{', '.join(sorted(PRICE_CONVENTIONS))}")


def _check_reference_data(raw: dict, name: str, table: str, constants: dict) -> None:
    """What a dialect names must exist in the reference data (dbt seeds, ``northstar.reference``): its asset
    class codes map to canonical asset classes, and a prime broker's confirms come from a listed broker."""
    canonical = set(reference.asset_class_names())
    for code, asset_class in ((raw.get("enums") or {}).get("asset_class") or {}).items():
        if str(asset_class) not in canonical:
            raise DialectError(f"{name}: enums.asset_class.{code}: {asset_class!r} is not an asset class of the "
                               f"seed asset_classes ({', '.join(sorted(canonical))})")
    broker = constants.get("prime_broker")
    if table == "pb_confirms" and broker is not None and str(broker) not in reference.prime_brokers():
        raise DialectError(f"{name}: constants.prime_broker: {broker!r} is not in the seed prime_brokers "
                           f"(dbt_project/seeds/prime_brokers.csv): add its row to add a prime broker")


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
    brokers: dict[str, dict] = field(default_factory=dict)  # FIX: broker ('*' = all) -> rules
    path: str = ""  # the YAML file it was read from

    def broker_rules(self, broker: str | None) -> dict:
        """A FIX broker's rules: ``'*'``'s, extended (tags) or overridden (defaults, derive) by its own."""
        every, own = self.brokers.get("*", {}), self.brokers.get(broker or "", {})
        return {
            "required_tags": tuple(sorted(set(every.get("required_tags", [])) | set(own.get("required_tags", [])))),
            "defaults": {**every.get("defaults", {}), **own.get("defaults", {})},
            "derive": {**every.get("derive", {}), **own.get("derive", {})},
        }

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
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DialectError(f"{path}: (file): not readable YAML: {first}") from None
    validate_dialect(raw, str(path))
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
        brokers={str(k): v or {} for k, v in (raw.get("brokers") or {}).items()},
        path=str(path),
    )


def dialect_dirs(directory: Path | None = None) -> list[Path]:
    """The shipped dialects, then the firm's own folder (``NORTHSTAR_DIALECTS``) if set."""
    if directory is not None:
        return [directory]
    firm = os.environ.get(FIRM_DIALECTS_ENV)
    return [DIALECT_DIR] + ([Path(firm)] if firm else [])


def load_dialects_reporting(directory: Path | None = None) -> tuple[list[Dialect], list[str]]:
    """Every valid dialect, and a one-line error per invalid one (a run lands the other sources)."""
    by_source: dict[str, Dialect] = {}
    errors: list[str] = []
    for folder in dialect_dirs(directory):
        if not folder.is_dir():
            errors.append(f"{folder}: (folder): {FIRM_DIALECTS_ENV} names no folder")
            continue
        for path in sorted(folder.glob("*.yaml")) + sorted(folder.glob("*.yml")):
            try:
                dialect = load_dialect(path)
            except DialectError as exc:
                errors.append(str(exc))
                continue
            by_source[dialect.source] = dialect  # a firm's dialect replaces a shipped one of that source
    return list(by_source.values()), errors


def load_dialects(directory: Path | None = None) -> list[Dialect]:
    """Every dialect; raises ``DialectError`` (one line: file and key) if any is invalid."""
    dialects, errors = load_dialects_reporting(directory)
    if errors:
        raise DialectError(errors[0] if len(errors) == 1 else f"{errors[0]} (and {len(errors) - 1} more)")
    return dialects
