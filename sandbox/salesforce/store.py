"""The sandbox Salesforce org: objects, fields and records in one SQLite file.

The seed command writes here directly (fast bulk inserts) and the Salesforce server reads and
writes through the same class. Each object is one table (``obj_<Name>``); its field specs live in
``_fields`` so ``describe`` survives restarts and new fields can be added later (schema drift).

Values are stored in a form that sorts and compares like Salesforce does: datetimes as
``2024-01-15T10:30:00.000+0000`` strings in UTC, dates as ``YYYY-MM-DD``, booleans as 0/1.
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from itertools import islice
from pathlib import Path

FIELD_TYPES = {
    "id", "string", "textarea", "email", "phone", "picklist", "boolean", "double", "currency",
    "percent", "int", "date", "datetime", "reference", "url",
}
NUMERIC_TYPES = {"double", "currency", "percent"}
STANDARD_FIELDS = ("Id", "CreatedDate", "LastModifiedDate", "SystemModstamp", "IsDeleted")
_IDENT = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_SUFFIX = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_CHUNK = 20_000
DATETIME_FORMAT = "%Y-%m-%dT%H:%M:%S.{ms}+0000"


@dataclass(frozen=True)
class FieldSpec:
    name: str
    type: str  # Salesforce describe types: id, string, ..., datetime, reference
    label: str | None = None
    external_id: bool = False
    unique: bool = False
    reference_to: str | None = None
    length: int | None = None
    nillable: bool = True
    picklist_values: tuple[str, ...] = ()
    custom: bool | None = None  # None = infer from the "__c" suffix

    @property
    def is_custom(self) -> bool:
        return self.custom if self.custom is not None else self.name.endswith("__c")


class UnknownObject(KeyError):
    """The object is not defined in the org (INVALID_TYPE on the wire)."""


def check_identifier(name: str) -> str:
    if not _IDENT.match(name or ""):
        raise ValueError(f"not a valid Salesforce API name: {name!r}")
    return name


def _case_suffix(id15: str) -> str:
    """Salesforce's 3-character checksum that makes a 15-char id case-insensitive-safe."""
    out = []
    for block in range(3):
        bits = 0
        for i, ch in enumerate(id15[block * 5 : block * 5 + 5]):
            if "A" <= ch <= "Z":
                bits |= 1 << i
        out.append(_SUFFIX[bits])
    return "".join(out)


def case_safe_id(id15: str) -> str:
    """The 18-character form of a 15-character id (the same id, safe for case-insensitive systems)."""
    return id15 + _case_suffix(id15)


def new_id(key_prefix: str, n: int) -> str:
    """A deterministic 18-char id: key prefix, pod '5g', base62 counter, case-safe suffix."""
    if len(key_prefix) != 3:
        raise ValueError("key_prefix must be 3 characters")
    digits = []
    value = int(n)
    for _ in range(10):
        value, rem = divmod(value, 62)
        digits.append(_BASE62[rem])
    id15 = key_prefix + "5g" + "".join(reversed(digits))
    return id15 + _case_suffix(id15)


def format_datetime(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}+0000"


def parse_datetime(text: str) -> datetime:
    """Parse the ISO forms Salesforce and Python produce ('Z', '+0000', '+00:00', no zone)."""
    text = text.strip().replace(" ", "T")
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    elif re.search(r"[+-]\d{4}$", text):
        text = text[:-2] + ":" + text[-2:]
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def to_datetime_text(value) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return format_datetime(value)
    if isinstance(value, date):
        return format_datetime(datetime(value.year, value.month, value.day, tzinfo=UTC))
    text = str(value)
    if len(text) == 28 and text.endswith("+0000") and text[10] == "T":
        return text  # already canonical: the seed's fast path
    return format_datetime(parse_datetime(text))


def to_date_text(value) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    text = str(value)
    return text[:10] if len(text) >= 10 else date.fromisoformat(text).isoformat()


def _to_bool(value):
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return 1 if value.strip().lower() in {"true", "1", "yes"} else 0
    return 1 if value else 0


def _to_float(value):
    if value is None or value == "":
        return None
    return float(value)


def _to_int(value):
    if value is None or value == "":
        return None
    return int(float(value))


def _to_text(value):
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)


def storage_converter(ftype: str):
    """Python/JSON/CSV value -> the value stored in SQLite for a field type."""
    if ftype == "boolean":
        return _to_bool
    if ftype in NUMERIC_TYPES:
        return _to_float
    if ftype == "int":
        return _to_int
    if ftype == "datetime":
        return to_datetime_text
    if ftype == "date":
        return to_date_text
    return _to_text


def output_converter(ftype: str):
    """Stored value -> the JSON value the REST API returns."""
    if ftype == "boolean":
        return lambda v: None if v is None else bool(v)
    if ftype in NUMERIC_TYPES:
        return lambda v: None if v is None else float(v)
    if ftype == "int":
        return lambda v: None if v is None else int(v)
    return lambda v: v


def _sql_type(ftype: str) -> str:
    if ftype in NUMERIC_TYPES:
        return "REAL"
    if ftype in {"int", "boolean"}:
        return "INTEGER"
    return "TEXT"


def _standard_specs() -> list[FieldSpec]:
    return [
        FieldSpec("Id", "id", label="Record ID", nillable=False, length=18, custom=False),
        FieldSpec("IsDeleted", "boolean", label="Deleted", nillable=False, custom=False),
        FieldSpec("CreatedDate", "datetime", label="Created Date", nillable=False, custom=False),
        FieldSpec("LastModifiedDate", "datetime", label="Last Modified Date", nillable=False, custom=False),
        FieldSpec("SystemModstamp", "datetime", label="System Modstamp", nillable=False, custom=False),
    ]


def _chunks(items: Iterable, size: int) -> Iterator[list]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def table_name(name: str) -> str:
    return f'"obj_{check_identifier(name)}"'


def quote(column: str) -> str:
    return f'"{check_identifier(column)}"'


class SalesforceStore:
    """A Salesforce org persisted in SQLite (WAL; one connection per thread)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._lock = threading.RLock()
        self._schema_cache: dict[str, tuple[str, dict[str, FieldSpec]]] = {}
        self._schema_version = -1
        conn = self.connection()
        with conn:
            conn.execute(
                "create table if not exists _objects (name text primary key, key_prefix text not null, "
                "next_seq integer not null default 1)"
            )
            conn.execute(
                "create table if not exists _fields (object text not null, name text not null, "
                "ordinal integer not null, spec text not null, primary key (object, name))"
            )

    # --- plumbing ---------------------------------------------------------------------------

    def connection(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=60, isolation_level=None, check_same_thread=False)
            conn.execute("pragma journal_mode=wal")
            conn.execute("pragma synchronous=normal")
            conn.execute("pragma busy_timeout=60000")
            self._local.conn = conn
        return conn

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def _begin(self):
        return _Transaction(self.connection())

    def _refresh_schema(self) -> None:
        conn = self.connection()
        version = conn.execute("pragma schema_version").fetchone()[0]
        if version == self._schema_version:
            return
        cache: dict[str, tuple[str, dict[str, FieldSpec]]] = {}
        prefixes = dict(conn.execute("select name, key_prefix from _objects").fetchall())
        rows = conn.execute("select object, spec from _fields order by object, ordinal").fetchall()
        for name, prefix in prefixes.items():
            cache[name] = (prefix, {})
        for obj, spec in rows:
            data = json.loads(spec)
            data["picklist_values"] = tuple(data.get("picklist_values") or ())
            if obj in cache:
                cache[obj][1][data["name"]] = FieldSpec(**data)
        self._schema_cache = cache
        self._schema_version = version

    def _schema(self, name: str) -> tuple[str, dict[str, FieldSpec]]:
        self._refresh_schema()
        if name not in self._schema_cache:
            # Case-insensitive lookup, as Salesforce API names are.
            for known in self._schema_cache:
                if known.lower() == str(name).lower():
                    return self._schema_cache[known]
            raise UnknownObject(name)
        return self._schema_cache[name]

    def resolve_object(self, name: str) -> str:
        """The object's canonical API name (case-insensitive), or UnknownObject."""
        self._refresh_schema()
        for known in self._schema_cache:
            if known.lower() == str(name).lower():
                return known
        raise UnknownObject(name)

    def fields(self, name: str) -> dict[str, FieldSpec]:
        return dict(self._schema(name)[1])

    def key_prefix(self, name: str) -> str:
        return self._schema(name)[0]

    # --- public interface -------------------------------------------------------------------

    def define_object(self, name: str, fields: list[FieldSpec], key_prefix: str) -> None:
        """Create or extend an object (idempotent; new fields become new nullable columns)."""
        check_identifier(name)
        specs = _standard_specs() + [f for f in fields if f.name not in STANDARD_FIELDS]
        for spec in specs:
            check_identifier(spec.name)
            if spec.type not in FIELD_TYPES:
                raise ValueError(f"{name}.{spec.name}: unknown field type {spec.type!r}")
        with self._lock, self._begin() as conn:
            conn.execute(
                "insert into _objects (name, key_prefix) values (?, ?) on conflict(name) do nothing",
                (name, key_prefix),
            )
            existing_cols = {
                row[1] for row in conn.execute(f"pragma table_info({table_name(name)})").fetchall()
            }
            if not existing_cols:
                cols = ", ".join(
                    f"{quote(s.name)} {_sql_type(s.type)}" + (" primary key" if s.name == "Id" else "")
                    for s in specs
                )
                conn.execute(f"create table {table_name(name)} ({cols})")
                existing_cols = {s.name for s in specs}
            else:
                for spec in specs:
                    if spec.name not in existing_cols:
                        conn.execute(
                            f"alter table {table_name(name)} add column {quote(spec.name)} {_sql_type(spec.type)}"
                        )
            ordinal = conn.execute(
                "select coalesce(max(ordinal), -1) + 1 from _fields where object = ?", (name,)
            ).fetchone()[0]
            for spec in specs:
                data = asdict(spec)
                data["picklist_values"] = list(spec.picklist_values)
                updated = conn.execute(
                    "update _fields set spec = ? where object = ? and name = ?",
                    (json.dumps(data), name, spec.name),
                ).rowcount
                if not updated:
                    conn.execute(
                        "insert into _fields (object, name, ordinal, spec) values (?, ?, ?, ?)",
                        (name, spec.name, ordinal, json.dumps(data)),
                    )
                    ordinal += 1
            for spec in specs:
                if spec.external_id or spec.unique:
                    index = f'"ix_{name}_{spec.name}"'
                    conn.execute(f"create index if not exists {index} on {table_name(name)} ({quote(spec.name)})")
            for column in ("SystemModstamp", "LastModifiedDate"):
                index = f'"ix_{name}_{column}"'
                conn.execute(f"create index if not exists {index} on {table_name(name)} ({quote(column)})")
        self._schema_version = -1

    def objects(self) -> list[str]:
        self._refresh_schema()
        return sorted(self._schema_cache)

    def allocate_ids(self, name: str, n: int) -> list[str]:
        """Reserve n fresh ids for an object (never reused, across processes)."""
        prefix, _ = self._schema(name)
        name = self.resolve_object(name)
        with self._begin() as conn:
            start = conn.execute("select next_seq from _objects where name = ?", (name,)).fetchone()[0]
            # Ids inserted explicitly (by the seed) may already use the counter range: skip past them.
            # Base62 digits sort in ASCII order, so max(Id) is the highest counter in use.
            highest = conn.execute(
                f'select max("Id") from {table_name(name)} where "Id" >= ? and "Id" < ?',  # noqa: S608
                (prefix + "5g", prefix + "5h"),
            ).fetchone()[0]
            if highest:
                used = 0
                for ch in highest[5:15]:
                    used = used * 62 + _BASE62.index(ch)
                start = max(start, used + 1)
            conn.execute("update _objects set next_seq = ? where name = ?", (start + n, name))
        return [new_id(prefix, start + i) for i in range(n)]

    def insert_records(self, name: str, records: Iterable[dict]) -> int:
        """Bulk insert (executemany in chunks). Missing Ids are generated; missing stamps = now."""
        name = self.resolve_object(name)
        prefix, specs = self._schema(name)
        columns = list(specs)
        converters = [storage_converter(specs[c].type) for c in columns]
        id_pos = columns.index("Id")
        stamp_cols = [columns.index(c) for c in ("CreatedDate", "LastModifiedDate", "SystemModstamp")]
        # Salesforce checkboxes are never null: a missing boolean is false.
        bool_cols = [i for i, c in enumerate(columns) if specs[c].type == "boolean"]
        sql = (
            f"insert into {table_name(name)} ({', '.join(quote(c) for c in columns)}) "  # noqa: S608 - identifiers validated by check_identifier
            f"values ({', '.join('?' for _ in columns)})"
        )
        total = 0
        now_text = format_datetime(datetime.now(UTC))
        pairs = list(zip(columns, converters, strict=True))
        with self._lock:
            for chunk in _chunks(records, _CHUNK):
                rows = []
                missing = 0
                for record in chunk:
                    row = [conv(record.get(col)) for col, conv in pairs]
                    if row[id_pos] is None:
                        missing += 1
                    for pos in stamp_cols:
                        if row[pos] is None:
                            row[pos] = now_text
                    for pos in bool_cols:
                        if row[pos] is None:
                            row[pos] = 0
                    rows.append(row)
                if missing:
                    fresh = iter(self.allocate_ids(name, missing))
                    for row in rows:
                        if row[id_pos] is None:
                            row[id_pos] = next(fresh)
                with self._begin() as conn:
                    conn.executemany(sql, rows)
                total += len(rows)
        del prefix
        return total

    def update_records(self, name: str, changes: Iterable[dict], stamp: datetime | None = None) -> int:
        """Apply {Id, field: value} changes; stamps LastModifiedDate and SystemModstamp."""
        name = self.resolve_object(name)
        _, specs = self._schema(name)
        stamp_text = format_datetime(stamp or datetime.now(UTC))
        total = 0
        with self._lock:
            for chunk in _chunks(changes, _CHUNK):
                # Group by the set of changed columns so each group is one executemany.
                groups: dict[tuple[str, ...], list[list]] = {}
                for change in chunk:
                    record_id = change.get("Id")
                    if not record_id:
                        raise ValueError("every change needs an Id")
                    cols = []
                    values = []
                    for key, value in change.items():
                        if key in ("Id", "LastModifiedDate", "SystemModstamp"):
                            continue
                        if key not in specs:
                            raise KeyError(f"No such column '{key}' on entity '{name}'")
                        cols.append(key)
                        values.append(storage_converter(specs[key].type)(value))
                    groups.setdefault(tuple(cols), []).append([*values, stamp_text, stamp_text, record_id])
                with self._begin() as conn:
                    for cols, rows in groups.items():
                        assignments = [f"{quote(c)} = ?" for c in cols]
                        assignments += ['"LastModifiedDate" = ?', '"SystemModstamp" = ?']
                        sql = f'update {table_name(name)} set {", ".join(assignments)} where "Id" = ?'  # noqa: S608 - identifiers validated by check_identifier
                        cursor = conn.executemany(sql, rows)
                        total += cursor.rowcount
        return total

    def delete_records(self, name: str, ids: Iterable[str], stamp: datetime | None = None) -> int:
        """Soft delete: IsDeleted = true, stamps updated; queryAll still returns the rows."""
        name = self.resolve_object(name)
        stamp_text = format_datetime(stamp or datetime.now(UTC))
        sql = (
            f'update {table_name(name)} set "IsDeleted" = 1, "LastModifiedDate" = ?, "SystemModstamp" = ? '  # noqa: S608 - identifiers validated by check_identifier
            'where "Id" = ? and "IsDeleted" = 0'
        )
        total = 0
        with self._lock:
            for chunk in _chunks(ids, _CHUNK):
                with self._begin() as conn:
                    total += conn.executemany(sql, [(stamp_text, stamp_text, i) for i in chunk]).rowcount
        return total

    def count(self, name: str, include_deleted: bool = False) -> int:
        name = self.resolve_object(name)
        where = "" if include_deleted else ' where "IsDeleted" = 0'
        return self.connection().execute(f"select count(*) from {table_name(name)}{where}").fetchone()[0]  # noqa: S608 - identifiers validated by check_identifier

    def get_record(self, name: str, record_id: str, include_deleted: bool = False) -> dict | None:
        name = self.resolve_object(name)
        rows = self.select(name, None, '"Id" = ?', [record_id], include_deleted=include_deleted)
        return rows[0] if rows else None

    def find_ids(self, name: str, field: str, value, include_deleted: bool = False) -> list[str]:
        """Ids of the records whose field equals value (external-id lookups)."""
        name = self.resolve_object(name)
        specs = self.fields(name)
        if field not in specs:
            raise KeyError(field)
        stored = storage_converter(specs[field].type)(value)
        deleted = "" if include_deleted else ' and "IsDeleted" = 0'
        sql = f'select "Id" from {table_name(name)} where {quote(field)} = ?{deleted}'  # noqa: S608 - identifiers validated by check_identifier
        return [row[0] for row in self.connection().execute(sql, (stored,)).fetchall()]

    def select(
        self,
        name: str,
        columns: list[str] | None,
        where_sql: str | None = None,
        params: list | None = None,
        order_sql: str | None = None,
        limit: int | None = None,
        offset: int | None = None,
        include_deleted: bool = False,
    ) -> list[dict]:
        """Rows as API-shaped dicts. where_sql/order_sql must be built from validated identifiers."""
        name = self.resolve_object(name)
        specs = self.fields(name)
        columns = list(specs) if columns is None else columns
        convs = [output_converter(specs[c].type) for c in columns]
        sql, all_params = self._select_sql(name, columns, where_sql, params, order_sql, limit, offset,
                                           include_deleted)
        out = []
        for row in self.connection().execute(sql, all_params):
            out.append({c: conv(v) for c, conv, v in zip(columns, convs, row, strict=True)})
        return out

    def count_where(self, name: str, where_sql: str | None, params: list | None,
                    include_deleted: bool = False) -> int:
        name = self.resolve_object(name)
        clauses = [] if include_deleted else ['"IsDeleted" = 0']
        if where_sql:
            clauses.append(f"({where_sql})")
        where = f" where {' and '.join(clauses)}" if clauses else ""
        return self.connection().execute(
            f"select count(*) from {table_name(name)}{where}", params or []  # noqa: S608 - identifiers validated by check_identifier
        ).fetchone()[0]

    def aggregate(self, name: str, columns_sql: list[str], where_sql: str | None, params: list | None,
                  group_sql: list[str], order_sql: str | None, limit: int | None, offset: int | None,
                  include_deleted: bool = False) -> list[tuple]:
        """Rows of an aggregate query; every SQL fragment comes from the SOQL parser (validated names)."""
        name = self.resolve_object(name)
        table = table_name(name)
        clauses = [] if include_deleted else [f'{table}."IsDeleted" = 0']
        if where_sql:
            clauses.append(f"({where_sql})")
        sql = f"select {', '.join(columns_sql)} from {table}"  # noqa: S608 - identifiers validated by the parser
        if clauses:
            sql += f" where {' and '.join(clauses)}"
        if group_sql:
            sql += f" group by {', '.join(group_sql)}"
        if order_sql:
            sql += f" order by {order_sql}"
        all_params = list(params or [])
        if limit is not None or offset:
            sql += " limit ? offset ?"
            all_params += [-1 if limit is None else int(limit), int(offset or 0)]
        return self.connection().execute(sql, all_params).fetchall()

    def select_ids(self, name: str, where_sql: str | None = None, params: list | None = None,
                   order_sql: str | None = None, limit: int | None = None, offset: int | None = None,
                   include_deleted: bool = False) -> list[str]:
        """The matching Ids in result order: a query cursor's snapshot."""
        name = self.resolve_object(name)
        order = f'{order_sql}, "Id"' if order_sql else None
        sql, all_params = self._select_sql(name, ["Id"], where_sql, params, order, limit, offset, include_deleted)
        return [row[0] for row in self.connection().execute(sql, all_params)]

    def select_by_ids(self, name: str, columns: list[str], ids: list[str]) -> list[dict]:
        """Rows for the given Ids, in the order of ids (deleted rows included)."""
        name = self.resolve_object(name)
        specs = self.fields(name)
        wanted = list(dict.fromkeys(["Id", *columns]))
        convs = [output_converter(specs[c].type) for c in wanted]
        found: dict[str, dict] = {}
        cols_sql = ", ".join(quote(c) for c in wanted)
        for start in range(0, len(ids), 5000):
            chunk = ids[start : start + 5000]
            sql = (
                f"select {cols_sql} from {table_name(name)} "  # noqa: S608 - identifiers validated
                f'where "Id" in ({", ".join("?" for _ in chunk)})'
            )
            for row in self.connection().execute(sql, chunk):
                found[row[0]] = {c: conv(v) for c, conv, v in zip(wanted, convs, row, strict=True)}
        return [found[i] for i in ids if i in found]

    def ids_by_values(self, name: str, field: str, values: list) -> dict[str, list[str]]:
        """{value: [Id, ...]} for the non-deleted records whose field has one of the values."""
        name = self.resolve_object(name)
        specs = self.fields(name)
        conv = storage_converter(specs[field].type)
        out: dict[str, list[str]] = {}
        distinct = list(dict.fromkeys(conv(v) for v in values if v not in (None, "")))
        for start in range(0, len(distinct), 5000):
            chunk = distinct[start : start + 5000]
            sql = (
                f'select {quote(field)}, "Id" from {table_name(name)} '  # noqa: S608 - identifiers validated
                f'where "IsDeleted" = 0 and {quote(field)} in ({", ".join("?" for _ in chunk)})'
            )
            for value, record_id in self.connection().execute(sql, chunk):
                out.setdefault(str(value), []).append(record_id)
        return out

    def _select_sql(self, name, columns, where_sql, params, order_sql, limit, offset, include_deleted):
        clauses = [] if include_deleted else ['"IsDeleted" = 0']
        if where_sql:
            clauses.append(f"({where_sql})")
        sql = f"select {', '.join(quote(c) for c in columns)} from {table_name(name)}"  # noqa: S608 - identifiers validated by check_identifier
        if clauses:
            sql += f" where {' and '.join(clauses)}"
        sql += f" order by {order_sql}" if order_sql else ' order by "Id"'
        all_params = list(params or [])
        if limit is not None or offset:
            sql += " limit ? offset ?"
            all_params += [-1 if limit is None else int(limit), int(offset or 0)]
        return sql, all_params

    def describe(self, name: str) -> dict:
        """The Salesforce describe JSON (the parts clients and the pipeline read)."""
        name = self.resolve_object(name)
        prefix, specs = self._schema(name)
        custom = name.endswith("__c")
        fields = [self._describe_field(spec) for spec in specs.values()]
        base = f"/services/data/v59.0/sobjects/{name}"
        return {
            "name": name,
            "label": name.removesuffix("__c").replace("_", " "),
            "labelPlural": name.removesuffix("__c").replace("_", " ") + "s",
            "keyPrefix": prefix,
            "custom": custom,
            "createable": True,
            "updateable": True,
            "deletable": True,
            "queryable": True,
            "retrieveable": True,
            "searchable": True,
            "replicateable": True,
            "layoutable": True,
            "triggerable": True,
            "undeletable": True,
            "mergeable": False,
            "activateable": False,
            "feedEnabled": False,
            "deprecatedAndHidden": False,
            "childRelationships": [],
            "recordTypeInfos": [],
            "fields": fields,
            "urls": {
                "sobject": base,
                "describe": f"{base}/describe",
                "rowTemplate": f"{base}/{{ID}}",
            },
        }

    @staticmethod
    def _describe_field(spec: FieldSpec) -> dict:
        system = spec.name in STANDARD_FIELDS
        soap = {
            "id": "tns:ID", "reference": "tns:ID", "boolean": "xsd:boolean", "double": "xsd:double",
            "currency": "xsd:double", "percent": "xsd:double", "int": "xsd:int", "date": "xsd:date",
            "datetime": "xsd:dateTime",
        }.get(spec.type, "xsd:string")
        length = spec.length
        if length is None:
            length = {"id": 18, "reference": 18, "textarea": 32768, "email": 80, "phone": 40}.get(
                spec.type, 255 if spec.type in {"string", "picklist", "url"} else 0
            )
        return {
            "name": spec.name,
            "label": spec.label or spec.name.removesuffix("__c").replace("_", " "),
            "type": spec.type,
            "soapType": soap,
            "length": length,
            "precision": 18 if spec.type in NUMERIC_TYPES else 0,
            "scale": 2 if spec.type in NUMERIC_TYPES else 0,
            "digits": 9 if spec.type == "int" else 0,
            "byteLength": length * 3 if spec.type not in NUMERIC_TYPES | {"int", "boolean"} else 0,
            "custom": spec.is_custom,
            "externalId": spec.external_id,
            "unique": spec.unique,
            "idLookup": spec.name == "Id" or spec.external_id,
            "nillable": spec.nillable and not system,
            "createable": not system,
            "updateable": not system,
            "filterable": True,
            "sortable": spec.type != "textarea",
            "groupable": spec.type not in NUMERIC_TYPES | {"textarea", "datetime"},
            "calculated": False,
            "autoNumber": False,
            "defaultedOnCreate": system or spec.type == "boolean",
            "caseSensitive": False,
            "referenceTo": [spec.reference_to] if spec.reference_to else [],
            "relationshipName": (spec.name.removesuffix("Id") if spec.name.endswith("Id") and
                                 spec.reference_to else None),
            "picklistValues": [
                {"active": True, "defaultValue": False, "label": v, "validFor": None, "value": v}
                for v in spec.picklist_values
            ],
            "deprecatedAndHidden": False,
            "htmlFormatted": False,
            "nameField": spec.name == "Name",
        }


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT/ROLLBACK (writers queue on the busy timeout, never deadlock)."""

    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute("begin immediate")
        return self.conn

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.conn.execute("commit")
        else:
            self.conn.execute("rollback")
