"""A delivered CSV (internal book, prime-broker confirms, billing) to canonical, typed rows + rejects.

Line numbers are physical lines, 1-based, the header being line 1; a record with a quoted newline in it
spans several lines, carries its first line number, and is quarantined whole (all its lines). Whole-file
faults (not decodable in the dialect's encoding, empty, required header missing) reject every data line
with the file's reason (one record for a file with no data lines). Row faults (an unparseable value, an
unknown code, a required value missing, a row with too few or too many fields) reject that row as
``csv_bad_value``.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field

import polars as pl

from ingest.broker_files.dialects import PRICED_TABLES, TABLES, Dialect
from ingest.quarantine import Rejected

DECIMAL = pl.Decimal(38, 10)


@dataclass
class ParsedFile:
    rows: pl.DataFrame  # canonical columns + ``_source_line``
    rejected: list[Rejected] = field(default_factory=list)
    rows_in: int = 0  # records: landed + quarantined + skipped
    file_reason: str | None = None  # set when the whole file was rejected
    file_detail: str | None = None
    skipped: dict[str, int] = field(default_factory=dict)  # FIX: MsgType -> messages skipped (not trades)
    log_lines: int = 0  # FIX: lines of log text with no FIX in them (not records)


def _lines(data: bytes) -> list[bytes]:
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return [line.rstrip(b"\r") for line in lines]


def _whole_file(data: bytes, reason: str, detail: str) -> ParsedFile:
    lines = _lines(data)
    records = [(i + 1, line) for i, line in enumerate(lines) if i > 0 and line.strip()]
    rejected = [Rejected(n, line, reason, detail) for n, line in records]
    if not rejected:  # nothing but (at most) a header: one file-level marker row, zero records
        rejected = [Rejected(None, data, reason, detail)]
        return ParsedFile(rows=pl.DataFrame(), rejected=rejected, rows_in=0, file_reason=reason)
    return ParsedFile(rows=pl.DataFrame(), rejected=rejected, rows_in=len(rejected), file_reason=reason)


def parse_csv(data: bytes, dialect: Dialect) -> ParsedFile:
    options = dialect.csv
    encoding = options.get("encoding", "utf-8")
    delimiter = options.get("delimiter", ",")
    quote = options.get("quote", '"')
    if not data.strip():
        return _whole_file(data, "empty_file", "the file has no content")
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        return _whole_file(data, "not_utf8", f"not valid {encoding}: {exc.reason} at byte {exc.start}")
    text = text.lstrip("\ufeff")
    header = next(csv.reader([text.split("\n", 1)[0].rstrip("\r")], delimiter=delimiter, quotechar=quote))
    header = [h.strip() for h in header]
    missing = [c for c in dialect.columns if c not in header]
    if missing:
        unexpected = [h for h in header if h not in dialect.columns]
        return _whole_file(data, "csv_missing_column",
                           f"missing column(s) {missing}; unexpected {unexpected}")

    lines = _lines(text.encode("utf-8"))
    frame = _read_strings(text, delimiter, quote, header, lines)
    rows_in = frame.height
    canonical = list(dialect.columns.values())
    frame = frame.select([pl.col(src).alias(dst) for src, dst in dialect.columns.items()]
                         + ["_source_line", "_last_line", "_ragged"])
    frame = frame.with_columns(pl.col(c).str.strip_chars().replace("", None) for c in canonical)
    typed, problems = _typed(frame, dialect)
    rejected = []
    if problems.any():
        details = _details(frame, typed, dialect)
        bad_lines = typed.get_column("_source_line").filter(problems).to_list()
        last_lines = frame.get_column("_last_line").filter(problems).to_list()
        for line, last, detail in zip(bad_lines, last_lines, details.filter(problems).to_list(), strict=True):
            rejected.append(Rejected(line, b"\n".join(lines[line - 1:last]), "csv_bad_value", detail))
        typed = typed.filter(~problems)
    return ParsedFile(rows=typed, rejected=rejected, rows_in=rows_in)


def _read_strings(text: str, delimiter: str, quote: str, header: list[str], lines: list[bytes]) -> pl.DataFrame:
    """All cells as strings plus ``_source_line`` / ``_last_line`` (a record's first and last physical line)
    and ``_ragged`` (a row with too few or too many fields: polars would pad a short row with NULLs)."""
    data_lines = [i + 1 for i, line in enumerate(lines) if i > 0 and line.strip()]
    try:
        frame = pl.read_csv(
            io.StringIO(text), separator=delimiter, quote_char=quote, infer_schema=False,
            has_header=True, new_columns=header,
        )
        if frame.height == len(data_lines):  # one record per line: count each line's fields
            physical = pl.Series([lines[n - 1] for n in data_lines], dtype=pl.Binary).cast(pl.String)
            unquoted = physical.str.replace_all(f"{re.escape(quote)}[^{re.escape(quote)}]*{re.escape(quote)}", "")
            fields = unquoted.str.count_matches(delimiter, literal=True) + 1
            if (fields == len(header)).all():
                return frame.with_columns(
                    pl.Series("_source_line", data_lines, dtype=pl.Int64),
                    pl.Series("_last_line", data_lines, dtype=pl.Int64), pl.lit(False).alias("_ragged"),
                )
    except pl.exceptions.PolarsError:
        pass
    # Slow, forgiving path: the csv module, one record at a time (ragged rows, quoted newlines).
    reader = csv.reader(io.StringIO(text), delimiter=delimiter, quotechar=quote)
    next(reader)
    records, line_numbers, last_lines, ragged = [], [], [], []
    while True:
        before = reader.line_num
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error:  # e.g. an unterminated quote: the rest of the file is one broken record
            line_numbers.append(before + 1)
            last_lines.append(len(lines))
            ragged.append(True)
            records.append([""] * len(header))
            break
        if not row or not any(cell.strip() for cell in row):
            continue
        first = before + 1
        while first < reader.line_num and not lines[first - 1].strip():
            first += 1  # blank lines the reader skipped before the record
        line_numbers.append(first)
        last_lines.append(reader.line_num)
        ragged.append(len(row) != len(header))
        records.append((row + [""] * len(header))[: len(header)])
    columns = {h: [r[i] for r in records] for i, h in enumerate(header)}
    return pl.DataFrame(columns, schema={h: pl.String for h in header}).with_columns(
        pl.Series("_source_line", line_numbers, dtype=pl.Int64), pl.Series("_last_line", last_lines, dtype=pl.Int64),
        pl.Series("_ragged", ragged, dtype=pl.Boolean),
    )


# A plain decimal: no exponent, no '+', at most the landing scale of decimals (polars' cast would read "1e3"
# and round extra decimals away); quantities are never negative.
_SCALE = DECIMAL.scale
_DECIMAL_TEXT = rf"^-?(?:[0-9]+(?:\.[0-9]{{0,{_SCALE}}})?|\.[0-9]{{1,{_SCALE}}})$"
_QUANTITY_TEXT = rf"^(?:[0-9]+(?:\.[0-9]{{0,{_SCALE}}})?|\.[0-9]{{1,{_SCALE}}})$"
UNSIGNED_COLUMNS = {"quantity"}


def _cast(column: str, kind: str, dialect: Dialect) -> pl.Expr:
    col = pl.col(column)
    if kind == "decimal":
        if dialect.csv.get("decimal", ".") != ".":
            col = col.str.replace_all(".", "", literal=True).str.replace(dialect.csv["decimal"], ".", literal=True)
        exact = col.str.contains(_QUANTITY_TEXT if column in UNSIGNED_COLUMNS else _DECIMAL_TEXT)
        return pl.when(exact).then(col.cast(DECIMAL, strict=False)).otherwise(None)
    if kind == "date":
        return col.str.to_date(dialect.value_date_format, strict=False)
    if kind == "timestamp":
        return col.str.to_datetime(dialect.timestamp_format, time_unit="us", time_zone="UTC", strict=False)
    return col


def _typed(frame: pl.DataFrame, dialect: Dialect) -> tuple[pl.DataFrame, pl.Series]:
    schema = TABLES[dialect.table]
    exprs, checks = [], [pl.col("_ragged")]
    for column, (kind, required) in schema.items():
        if column in dialect.constants:
            exprs.append(pl.lit(dialect.constants[column], dtype=pl.String).alias(column))
            continue
        if column not in frame.columns:
            exprs.append(pl.lit(None, dtype=DECIMAL if kind == "decimal" else pl.String).alias(column))
            continue
        raw = pl.col(column)
        if kind == "enum":
            mapping = dialect.enums.get(column, {})
            mapped = raw.replace_strict(mapping, default=None, return_dtype=pl.String)
            exprs += [raw.alias(f"{column}_code"), mapped.alias(column)]
            checks.append(raw.is_not_null() & mapped.is_null())
        else:
            typed = _cast(column, kind, dialect)
            exprs.append(typed.alias(column))
            checks.append(raw.is_not_null() & typed.is_null())
        if required:
            checks.append(raw.is_null())
    exprs.append(pl.col("_source_line"))
    problems = frame.select(pl.any_horizontal(checks).alias("bad")).get_column("bad")
    typed = frame.select(exprs)
    if dialect.table in PRICED_TABLES:
        typed = typed.with_columns(
            pl.col("asset_class").replace_strict(dialect.price_convention, default=None, return_dtype=pl.String)
            .alias("price_convention"),
            pl.col("asset_class").replace_strict(dialect.contract_multiplier, default=None, return_dtype=pl.Int64)
            .alias("contract_multiplier"),
        )
    return typed, problems


def _details(frame: pl.DataFrame, typed: pl.DataFrame, dialect: Dialect) -> pl.Series:
    """A readable reason per row: the first column at fault."""
    schema = TABLES[dialect.table]
    source_name = {dst: src for src, dst in dialect.columns.items()}
    whens = [(pl.col("_ragged"), pl.lit("row has the wrong number of fields"))]
    joined = frame.with_columns(typed.select(pl.all().name.suffix("__typed")))
    for column, (kind, required) in schema.items():
        if column in dialect.constants or column not in frame.columns:
            continue
        raw = pl.col(column)
        label = source_name.get(column, column)
        if required:
            whens.append((raw.is_null(), pl.lit(f"{label}: required value missing")))
        out = pl.col(f"{column}__typed")
        number = (f"a number (plain digits, at most {_SCALE} decimals"
                  + (", not negative)" if column in UNSIGNED_COLUMNS else ")"))
        what = {"enum": "a known code", "decimal": number, "date": f"a date ({dialect.value_date_format})",
                "timestamp": f"a timestamp ({dialect.timestamp_format})"}.get(kind)
        if what:
            whens.append((raw.is_not_null() & out.is_null(),
                          pl.format("{}: {} is not {}", pl.lit(label), raw, pl.lit(what))))
    expr = pl.when(whens[0][0]).then(whens[0][1])
    for cond, value in whens[1:]:
        expr = expr.when(cond).then(value)
    return joined.select(expr.otherwise(pl.lit("bad value")).alias("d")).get_column("d")
