"""Salesforce describe → Arrow: which fields are extracted, their Arrow types, and value conversion.

The field list comes from ``sf.<Object>.describe()`` on every run, so a custom field added in the
org lands without a code change. Compound fields (``address``, ``location``) are skipped because
their components are extracted as their own fields and the Bulk API cannot return them;
``base64`` fields are skipped because neither query API returns their content inline.

Values arrive in two shapes: REST JSON (``query``/``queryAll``: typed JSON values, datetimes like
``2024-01-15T10:30:00.000+0000``) and Bulk API 2.0 CSV (every value a string, an empty cell is
null, datetimes like ``2024-01-15T10:30:00.000Z``). Both end up in the same Arrow schema.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

TIMESTAMP = pa.timestamp("ms", tz="UTC")

# Salesforce field types → Arrow. Anything not listed (url, combobox, multipicklist,
# encryptedstring, time, anyType, ...) lands as a string, which never loses information.
ARROW_TYPES: dict[str, pa.DataType] = {
    "id": pa.string(),
    "string": pa.string(),
    "picklist": pa.string(),
    "multipicklist": pa.string(),
    "combobox": pa.string(),
    "reference": pa.string(),
    "email": pa.string(),
    "phone": pa.string(),
    "url": pa.string(),
    "textarea": pa.string(),
    "encryptedstring": pa.string(),
    "boolean": pa.bool_(),
    "double": pa.float64(),
    "currency": pa.float64(),
    "percent": pa.float64(),
    "int": pa.int64(),
    "long": pa.int64(),
    "date": pa.date32(),
    "datetime": TIMESTAMP,
}

# Compound fields and binary content: not extracted (see the module docstring).
EXCLUDED_TYPES = frozenset({"address", "location", "base64"})

# Columns the pipeline adds to every landed row.
RUN_ID, EXTRACTED_AT, IS_DELETED = "_run_id", "_extracted_at", "_is_deleted"
META_FIELDS: tuple[pa.Field, ...] = (
    pa.field(RUN_ID, pa.string(), nullable=False),
    pa.field(EXTRACTED_AT, TIMESTAMP, nullable=False),
    pa.field(IS_DELETED, pa.bool_(), nullable=False),
)

REQUIRED_FIELDS = ("Id", "SystemModstamp")


@dataclass(frozen=True)
class SalesforceField:
    """One extracted field: its API name and Salesforce type."""

    name: str
    sf_type: str

    @property
    def arrow_type(self) -> pa.DataType:
        return ARROW_TYPES.get(self.sf_type, pa.string())


def fields_from_describe(describe: Mapping) -> list[SalesforceField]:
    """The extractable fields of an object, in describe order."""
    fields = [
        SalesforceField(f["name"], f.get("type", "string"))
        for f in describe.get("fields", [])
        if f.get("type") not in EXCLUDED_TYPES and not f.get("deprecatedAndHidden", False)
    ]
    names = {f.name for f in fields}
    missing = [name for name in REQUIRED_FIELDS if name not in names]
    if missing:
        raise ValueError(
            f"{describe.get('name', '?')}: describe lacks {missing}; cannot extract incrementally"
        )
    return fields


def field_schema(fields: Sequence[SalesforceField]) -> pa.Schema:
    """The Salesforce fields (their API names) as Arrow fields."""
    return pa.schema([pa.field(f.name, f.arrow_type) for f in fields])


def arrow_schema(fields: Sequence[SalesforceField]) -> pa.Schema:
    """The landed file's schema: the Salesforce fields, then the pipeline's columns."""
    return pa.schema(list(field_schema(fields)) + list(META_FIELDS))


def _coerce(values: pa.Array | pa.ChunkedArray, field: SalesforceField) -> pa.Array | pa.ChunkedArray:
    """Cast a column that arrived as strings (CSV) or JSON scalars to the field's Arrow type."""
    target = field.arrow_type
    if values.type == target:
        return values
    if pa.types.is_null(values.type):
        return pa.nulls(len(values), target)
    if pa.types.is_int64(target) and pa.types.is_string(values.type):
        # An integer field may arrive as "30.0" from some orgs' CSV exports.
        try:
            return values.cast(target)
        except pa.ArrowInvalid:
            return values.cast(pa.float64()).cast(target)
    if pa.types.is_boolean(target) and pa.types.is_string(values.type):
        return pc.equal(pc.utf8_lower(values), "true")
    if pa.types.is_string(target) and not pa.types.is_string(values.type):
        return values.cast(target)
    # string → date32 / timestamp (ISO-8601 with Z or ±hhmm offsets) / float64, and
    # int64 ↔ float64 from JSON: Arrow's cast does these exactly.
    return values.cast(target)


def records_to_table(records: Sequence[Mapping], fields: Sequence[SalesforceField]) -> pa.Table:
    """REST ``query``/``queryAll`` records (JSON dicts) → an Arrow table of the Salesforce fields."""
    columns = []
    for field in fields:
        raw = [record.get(field.name) for record in records]
        if field.arrow_type in (pa.string(), pa.date32(), TIMESTAMP):
            # JSON gives strings for these; str() guards against numbers in string fields.
            raw = [None if v is None else (v if isinstance(v, str) else str(v)) for v in raw]
            column = pa.array(raw, pa.string())
        elif pa.types.is_boolean(field.arrow_type):
            column = pa.array([None if v is None else bool(v) for v in raw], pa.bool_())
        else:
            column = pa.array([None if v == "" else v for v in raw])
        columns.append(_coerce(column, field))
    return pa.Table.from_arrays(columns, schema=field_schema(fields))


def csv_to_table(csv_text: str | bytes, fields: Sequence[SalesforceField]) -> pa.Table:
    """A Bulk API 2.0 result page (CSV with a header row) → an Arrow table of the fields.

    Every column is read as a string first (an empty cell, quoted or not, is null), then cast,
    so a column of all-empty cells still gets its declared type. Columns are matched by header
    name, not position.
    """
    data = csv_text.encode("utf-8") if isinstance(csv_text, str) else csv_text
    schema = field_schema(fields)
    if not data.strip():
        return schema.empty_table()
    table = pacsv.read_csv(
        io.BytesIO(data),
        read_options=pacsv.ReadOptions(block_size=64 << 20),
        parse_options=pacsv.ParseOptions(newlines_in_values=True),
        convert_options=pacsv.ConvertOptions(
            column_types={f.name: pa.string() for f in fields},
            strings_can_be_null=True,
            quoted_strings_can_be_null=True,
            null_values=[""],
        ),
    )
    missing = [f.name for f in fields if f.name not in table.column_names]
    if missing:
        raise ValueError(f"Bulk result lacks columns {missing}")
    return pa.Table.from_arrays([_coerce(table[f.name], f) for f in fields], schema=schema)


def add_run_columns(table: pa.Table, run_id: str, extracted_at_ms: int) -> pa.Table:
    """Append ``_run_id``, ``_extracted_at`` and ``_is_deleted`` (from ``IsDeleted``)."""
    n = table.num_rows
    if "IsDeleted" in table.column_names:
        deleted = pc.fill_null(table["IsDeleted"], False)
    else:
        deleted = pa.array([False] * n, pa.bool_())
    table = table.append_column(META_FIELDS[0], pa.array([run_id] * n, pa.string()))
    table = table.append_column(
        META_FIELDS[1], pa.array([extracted_at_ms] * n, pa.int64()).cast(TIMESTAMP)
    )
    return table.append_column(META_FIELDS[2], deleted)


def schema_drift(previous: Iterable[str] | None, current: Iterable[str]) -> tuple[list[str], list[str]]:
    """Fields added and removed since the last successful run (none on a first run)."""
    if previous is None:
        return [], []
    before, now = set(previous), set(current)
    return sorted(now - before), sorted(before - now)
