"""Input records: read CSV or Parquet, map to the canonical columns, normalise, count what cannot be used.

Canonical columns (any subset): ``first_name, last_name, birth_date, email, phone, street, city,
postcode, tax_id`` plus ``source`` and the caller's id column. Nothing raw leaves this module for
the tax id: it is hashed on read and only the hash is compared.

A record is never dropped silently: a record without an id, with a repeated id, or without any
identifying field is rejected with a reason; a field that cannot be used (an unparseable or
impossible birth date, a phone with too few digits) is blanked and counted, and the record stays.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

CANONICAL = ("first_name", "last_name", "birth_date", "email", "phone", "street", "city", "postcode", "tax_id")
# fields that can identify a person on their own or together; city alone cannot
IDENTIFYING = ("first_name", "last_name", "birth_date", "email", "phone", "street", "postcode", "tax_id")
STREET_WORDS = {
    "street": "st", "str": "st", "avenue": "ave", "av": "ave", "road": "rd", "drive": "dr", "lane": "ln",
    "court": "ct", "place": "pl", "boulevard": "blvd", "terrace": "tce", "crescent": "cres", "circuit": "cct",
    "highway": "hwy", "parade": "pde", "square": "sq", "apartment": "apt", "unit": "apt", "suite": "ste",
    "north": "n", "south": "s", "east": "e", "west": "w", "close": "cl", "way": "wy",
}
DATE_FORMATS = ("%Y-%m-%d", "%Y%m%d", "%Y/%m/%d", "%m/%d/%Y", "%d.%m.%Y", "%Y-%m-%dT%H:%M:%S",
                "%Y-%m-%d %H:%M:%S")
EARLIEST_BIRTH_YEAR = 1900


class InputError(ValueError):
    """Input that cannot be linked at all (no id column, no canonical column): the run stops with this."""


@dataclass
class Records:
    """Normalised records ready for linking, the rejected ones, and counted reasons."""

    frame: pl.DataFrame  # unique_id (int), record_id, source, normalised columns
    rejected: pl.DataFrame  # record_id, source, reason
    reasons: Counter = field(default_factory=Counter)
    columns: tuple[str, ...] = ()  # the canonical columns with at least one usable value


def read_table(path: Path) -> pl.DataFrame:
    """CSV (every column as text) or Parquet, by suffix."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        return pl.read_parquet(path)
    if suffix in (".csv", ".txt", ".tsv"):
        return pl.read_csv(path, infer_schema=False, separator="\t" if suffix == ".tsv" else ",",
                           truncate_ragged_lines=True)
    raise InputError(f"{path}: unsupported file type {suffix!r} (CSV or Parquet)")


def _clean_column_names(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.rename({c: c.strip().lower() for c in frame.columns})


def _text(column: str) -> pl.Expr:
    return pl.col(column).cast(pl.String).str.strip_chars()


def _blank_to_null(expr: pl.Expr) -> pl.Expr:
    return pl.when(expr.str.len_chars() > 0).then(expr).otherwise(None)


def _letters(column: str) -> pl.Expr:
    return _blank_to_null(_text(column).str.to_lowercase().str.replace_all(r"[^a-z]", ""))


def _parse_birth_date(column: str) -> pl.Expr:
    raw = _text(column)
    return pl.coalesce([raw.str.strptime(pl.Date, fmt, strict=False) for fmt in DATE_FORMATS])


def tax_id_hash(value: str | None) -> str | None:
    """The hash the deterministic rule compares (digits and letters only, case-folded)."""
    if value is None:
        return None
    token = "".join(ch for ch in str(value).lower() if ch.isalnum())
    return hashlib.sha256(token.encode()).hexdigest() if token else None


def normalise(frame: pl.DataFrame, nicknames: dict[str, tuple[str, ...]], *, today=None) -> Records:
    """Canonical input columns -> the columns the model compares; counts blanked fields.

    ``frame`` has ``record_id`` and ``source`` plus any canonical columns (other columns are ignored).
    """
    from datetime import date

    today = today or date.today()
    reasons: Counter = Counter()
    present = [c for c in CANONICAL if c in frame.columns]
    frame = frame.with_columns(pl.col(c).cast(pl.String) for c in present)
    for c in CANONICAL:
        if c not in frame.columns:
            frame = frame.with_columns(pl.lit(None, dtype=pl.String).alias(c))
    frame = frame.with_columns(pl.col("record_id").cast(pl.String).str.strip_chars(),
                               pl.col("source").cast(pl.String))

    # the id: missing or repeated ids cannot be reported back, so those records are rejected
    no_id = frame["record_id"].is_null() | (frame["record_id"].str.len_chars() == 0)
    repeated = frame.select(pl.col("record_id").is_duplicated() & pl.col("record_id").is_first_distinct().not_())
    rejected = [frame.filter(no_id).select(pl.col("record_id"), "source", pl.lit("no record id").alias("reason")),
                frame.filter(repeated.to_series() & ~no_id)
                     .select("record_id", "source", pl.lit("repeated record id").alias("reason"))]
    frame = frame.filter(~no_id & ~repeated.to_series())

    first = _letters("first_name")
    variants_table = pl.DataFrame({
        "nickname": list(nicknames), "given_names": [list(v) for v in nicknames.values()],
    }, schema={"nickname": pl.String, "given_names": pl.List(pl.String)})
    birth_raw = _blank_to_null(_text("birth_date"))
    birth = _parse_birth_date("birth_date")
    email = _blank_to_null(_text("email").str.to_lowercase().str.replace_all(r"\s", ""))
    valid_email = email.str.contains(r"^[^@]+@[^@]+\.[^@]+$")
    local = email.str.split("@").list.first().str.replace(r"\+.*$", "").str.replace_all(r"[.\-_]", "")
    domain = email.str.split("@").list.last()
    phone_digits = _text("phone").str.replace_all(r"\D", "")
    street_words = (_text("street").str.to_lowercase().str.replace_all(r"[^a-z0-9 ]", " ")
                    .str.split(" ").list.eval(pl.element().filter(pl.element().str.len_chars() > 0)
                                              .replace(STREET_WORDS)))
    out = frame.with_columns(
        first.alias("first_name"),
        _letters("last_name").alias("last_name"),
        birth_raw.alias("_birth_raw"),
        birth.alias("_birth"),
        pl.when(valid_email).then(email).otherwise(None).alias("email"),
        pl.when(valid_email).then(pl.concat_str([local, pl.lit("@"), domain])).otherwise(None).alias("email_norm"),
        (email.is_not_null() & ~valid_email).fill_null(False).alias("_bad_email"),
        pl.when(phone_digits.str.len_chars() >= 7).then(phone_digits.str.slice(-10)).otherwise(None).alias("phone"),
        (phone_digits.str.len_chars().is_between(1, 6)).fill_null(False).alias("_bad_phone"),
        pl.when(street_words.list.len() > 0).then(street_words.list.join(" ")).otherwise(None).alias("street"),
        pl.when(street_words.list.len() > 0).then(street_words.list.unique().list.sort()).otherwise(None)
          .alias("street_tokens"),
        _blank_to_null(_text("city").str.to_lowercase().str.replace_all(r"[^a-z ]", "")).alias("city"),
        _blank_to_null(_text("postcode").str.to_uppercase().str.replace_all(r"[^A-Z0-9]", "")).alias("postcode"),
        _text("tax_id").map_elements(tax_id_hash, return_dtype=pl.String).alias("tax_id_hash"),
    )
    bad_birth = out["_birth_raw"].is_not_null() & out["_birth"].is_null()
    impossible = out["_birth"].is_not_null() & ((out["_birth"].dt.year() < EARLIEST_BIRTH_YEAR)
                                                 | (out["_birth"] > pl.lit(today)))
    reasons["birth_date unparseable (field blanked)"] += int(bad_birth.sum())
    reasons["birth_date impossible (field blanked)"] += int(pl.select(impossible).to_series().sum())
    reasons["email malformed (field blanked)"] += int(out["_bad_email"].sum())
    reasons["phone under 7 digits (field blanked)"] += int(out["_bad_phone"].sum())
    out = out.with_columns(
        pl.when(impossible).then(None).otherwise(pl.col("_birth")).dt.strftime("%Y-%m-%d").alias("birth_date"))
    out = (out.join(variants_table, left_on="first_name", right_on="nickname", how="left")
           .with_columns(
               pl.when(pl.col("first_name").is_null()).then(None)
                 .otherwise(pl.concat_list([pl.col("first_name"), pl.col("given_names").fill_null([])])
                            .list.unique().list.sort()).alias("first_name_variants"),
               # the blocking key: a nickname's (first) given name, else the name itself
               pl.coalesce([pl.col("given_names").list.first(), pl.col("first_name")]).alias("first_name_canon"),
           ))
    usable = pl.any_horizontal(pl.col(c).is_not_null() for c in
                               ("first_name", "last_name", "birth_date", "email", "phone", "street", "postcode",
                                "tax_id_hash"))
    # a record that cannot identify anyone: no field left, or only one of first name / last name
    informative = (pl.sum_horizontal(pl.col(c).is_not_null().cast(pl.Int8) for c in
                                     ("first_name", "last_name", "birth_date", "email_norm", "phone", "street",
                                      "postcode", "tax_id_hash")) >= 2) | pl.col("tax_id_hash").is_not_null()
    keep = out.select((usable & informative).alias("k"))["k"]
    rejected.append(out.filter(~keep).select("record_id", "source",
                                             pl.lit("fewer than two usable identifying fields").alias("reason")))
    out = out.filter(keep)
    columns = ("unique_id", "record_id", "source", "first_name", "first_name_canon", "first_name_variants",
               "last_name", "birth_date", "email", "email_norm", "phone", "street", "street_tokens", "city",
               "postcode", "tax_id_hash")
    out = out.with_row_index("unique_id").with_columns(pl.col("unique_id").cast(pl.Int64)).select(columns)
    rejected_frame = pl.concat(rejected)
    for reason, count in rejected_frame.group_by("reason").len().iter_rows():
        reasons[f"record rejected: {reason}"] += count
    used = tuple(c for c in ("first_name", "last_name", "birth_date", "email_norm", "phone", "street", "postcode",
                             "tax_id_hash", "city") if out[c].null_count() < out.height)
    return Records(out, rejected_frame, Counter({k: v for k, v in reasons.items() if v}), used)


def load(paths: list[Path], id_column: str, nicknames: dict[str, tuple[str, ...]], *, today=None) -> Records:
    """Read each file, keep the canonical columns, and normalise them all as one set of records."""
    frames = []
    file_reasons: Counter = Counter()
    for path in paths:
        table = _clean_column_names(read_table(path))
        id_col = id_column.strip().lower()
        if id_col not in table.columns:
            raise InputError(f"{path}: no id column {id_column!r} (columns: {', '.join(table.columns)})")
        usable = [c for c in CANONICAL if c in table.columns]
        if not usable:
            raise InputError(f"{path}: none of the canonical columns {', '.join(CANONICAL)} "
                             f"(columns: {', '.join(table.columns)})")
        source = (pl.col("source").cast(pl.String) if "source" in table.columns
                  else pl.lit(Path(path).stem))
        frames.append(table.select(pl.col(id_col).cast(pl.String).alias("record_id"), source.alias("source"),
                                   *[pl.col(c).cast(pl.String) for c in usable]))
    records = normalise(pl.concat(frames, how="diagonal_relaxed"), nicknames, today=today)
    records.reasons.update(file_reasons)
    return records
