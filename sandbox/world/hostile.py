"""``--hostile``: the bad deliveries a real drop folder gets, each listed in ``truth/hostile_files.csv``.

Every hostile file is an extra delivery next to the clean ones (same folder, the business date in
its name, a suffix before the extension), built from real lines of the clean files so only the
named fault is wrong. All rows of a hostile FIX/CSV file carry the fault, so
``expected_quarantined_rows`` is the file's row count whether ingest rejects row by row or whole
files. Two deliveries arrive "later" and are staged in ``drop/_redeliveries/`` (same relative path
as their destination); a test or the demo moves them into place after a first ingest:

- a corrected redelivery: same name as an existing prime-broker file, new content (its injected
  price breaks corrected);
- a late file for an earlier business date: the first trading day's BRKC drop copy, withheld from
  ``fix/`` until then (its orders look unfilled before it arrives).
"""

from __future__ import annotations

import csv
import shutil
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl

from sandbox.world.config import STREAM_HOSTILE, rng
from sandbox.world.trading import FIX_VERSION, SOH

EXTRA_ROOT_FILES: tuple[str, ...] = ()
REDELIVERIES = "_redeliveries"


def _frame(line: bytes) -> bytes:
    """Recompute BodyLength and CheckSum of a (modified) FIX message."""
    fields = line.rstrip(b"\n").split(SOH.encode())
    fields = [f for f in fields if f and not f.startswith((b"9=", b"10="))]
    head, body = fields[0], fields[1:]
    body_bytes = SOH.encode().join(body) + SOH.encode()
    msg = head + SOH.encode() + b"9=" + str(len(body_bytes)).encode() + SOH.encode() + body_bytes
    return msg + b"10=" + f"{sum(msg) % 256:03d}".encode() + SOH.encode() + b"\n"


def _replace_tag(line: bytes, tag: bytes, value: bytes | None) -> bytes:
    parts = line.rstrip(b"\n").split(SOH.encode())
    out = []
    for part in parts:
        if part.startswith(tag + b"="):
            if value is None:
                continue
            part = tag + b"=" + value
        out.append(part)
    return SOH.encode().join(out) + b"\n"


def _lines(path: Path, n: int) -> list[bytes]:
    out = []
    with path.open("rb") as handle:
        for line in handle:
            out.append(line)
            if len(out) == n:
                break
    return out


def write_hostile(seed: int, drop: Path, truth: Path, days: list[date]) -> list[dict]:
    r = rng(seed, STREAM_HOSTILE)
    as_of, day1, prev = days[-1], days[0], days[-2]
    ymd = as_of.strftime("%Y%m%d")
    rows: list[dict] = []

    def record(path: Path, reason: str, quarantined: int, note: str) -> None:
        rows.append({"file": path.relative_to(drop).as_posix(), "expected_reason": reason,
                     "expected_quarantined_rows": quarantined, "note": note})

    # --- FIX faults, one file each ----------------------------------------------------------------
    brka = _lines(drop / "fix" / f"BRKA_{ymd}.fix", 40)
    brkb = _lines(drop / "fix" / f"BRKB_{ymd}.fix", 40)
    brkc = _lines(drop / "fix" / f"BRKC_{ymd}.fix", 40)

    def fix_file(broker: str, label: str, lines: list[bytes], reason: str, note: str) -> None:
        path = drop / "fix" / f"{broker}_{ymd}_{label}.fix"
        path.write_bytes(b"".join(lines))
        record(path, reason, len(lines), note)

    bad = []
    for line in brka[:5]:
        cs = int(line.rstrip(b"\n").split(SOH.encode())[-2][3:])
        bad.append(_replace_tag(line, b"10", f"{(cs + 1 + int(r.integers(0, 200))) % 256:03d}".encode()))
    fix_file("BRKA", "resend1", bad, "fix_bad_checksum", "CheckSum (10=) off; framing otherwise valid")

    bad = []
    for line in brkb[:4]:
        framed = _frame(line)
        length = int(framed.split(SOH.encode())[1][2:])
        wrong = _replace_tag(framed, b"9", str(length + int(r.integers(1, 9))).encode())
        body_end = wrong.rfind(SOH.encode() + b"10=") + 1
        msg = wrong[:body_end]
        bad.append(msg + b"10=" + f"{sum(msg) % 256:03d}".encode() + SOH.encode() + b"\n")
    fix_file("BRKB", "resend1", bad, "fix_bad_body_length", "BodyLength (9=) wrong; CheckSum recomputed so it is valid")

    bad = [_frame(_replace_tag(line, tag, None)) for line, tag in zip(brka[5:8], (b"11", b"55", b"31"), strict=True)]
    fix_file("BRKA", "resend2", bad, "fix_missing_tag", "required tags 11 / 55 / 31 removed; 9= and 10= valid")

    bad = [_frame(_replace_tag(brkc[0], b"54", b"X")), _frame(_replace_tag(brkc[1], b"39", b"Z"))]
    fix_file("BRKC", "resend1", bad, "fix_bad_enum", "Side 54=X and OrdStatus 39=Z are not FIX enum values")

    garbled = [
        brkb[4][: len(brkb[4]) // 2] + b"\n",  # truncated mid-message
        brkb[5][: len(brkb[5]) - 12] + b"\n",  # trailer cut off
        bytes(r.integers(33, 126, 90, dtype=np.uint8)) + b"\n",  # line noise
        brkb[6].replace(SOH.encode(), b"|"),  # wrong delimiter
    ]
    fix_file("BRKB", "resend2", garbled, "fix_garbled", "truncated, trailer cut, noise, '|' instead of SOH")

    # --- CSV faults -------------------------------------------------------------------------------
    atlas_path = drop / "prime" / "atlas" / f"ATLAS_CONF_{ymd}.csv"
    atlas = pl.read_csv(atlas_path, infer_schema=False, n_rows=6)
    renamed = atlas.head(3).rename({"Qty": "Quantity"})
    path = atlas_path.with_name(f"ATLAS_CONF_{ymd}_amend1.csv")
    renamed.write_csv(path)
    record(path, "csv_missing_column", renamed.height, "column 'Qty' renamed to 'Quantity'")

    mer_path = drop / "prime" / "meridian" / f"meridian_confirms_{as_of.isoformat()}.csv"
    meridian = pl.read_csv(mer_path, separator=";", infer_schema=False, n_rows=6)
    missing = meridian.head(3).drop("charges")
    path = mer_path.with_name(f"meridian_confirms_{as_of.isoformat()}_amend1.csv")
    missing.write_csv(path, separator=";")
    record(path, "csv_missing_column", missing.height, "column 'charges' missing")

    book_path = drop / "oms" / f"trade_book_{ymd}.csv"
    book = pl.read_csv(book_path, infer_schema=False, n_rows=3)
    book = book.with_columns(
        pl.Series("trade_id", [f"TX{ymd}{i:07d}" for i in range(3)]),
        pl.Series("quantity", ["12O", "-", "1e400"]),
        pl.Series("trade_date", [as_of.isoformat(), "2026-13-45", as_of.isoformat()]),
    )
    path = book_path.with_name(f"trade_book_{ymd}_adjustments.csv")
    book.write_csv(path)
    record(path, "csv_bad_value", book.height, "quantity not a number / trade_date not a date")

    latin = meridian.head(3).with_columns(pl.lit("Soci\u00e9t\u00e9 G\u00e9n\u00e9rale").alias("broker"))
    path = mer_path.with_name(f"meridian_confirms_{as_of.isoformat()}_amend2.csv")
    text = latin.write_csv(separator=";")
    path.write_bytes(text.encode("latin-1"))
    record(path, "not_utf8", latin.height, "latin-1 bytes (0xE9) in the broker column")

    path = atlas_path.with_name(f"ATLAS_CONF_{ymd}_amend2.csv")
    path.write_bytes(b"")
    record(path, "empty_file", 0, "zero bytes")

    prev_mer = drop / "prime" / "meridian" / f"meridian_confirms_{prev.isoformat()}.csv"
    path = prev_mer.with_name(f"meridian_confirms_{prev.isoformat()}_copy.csv")
    shutil.copyfile(prev_mer, path)
    record(path, "duplicate_file", 0, f"byte-identical copy of {prev_mer.name}: skip, do not quarantine")

    # --- deliveries that arrive later (staged in _redeliveries/) ---------------------------------
    prev_atlas = drop / "prime" / "atlas" / f"ATLAS_CONF_{prev.strftime('%Y%m%d')}.csv"
    breaks = pl.read_parquet(truth / "breaks.parquet").filter(
        (pl.col("business_date") == prev) & (pl.col("broker") == "atlas"))
    book_prev = pl.read_csv(drop / "oms" / f"trade_book_{prev.strftime('%Y%m%d')}.csv", infer_schema=False,
                            columns=["trade_id", "price", "commission"])

    def book_values(break_type: str, column: str) -> dict[str, str]:
        ids = breaks.filter(pl.col("break_type") == break_type)["trade_id"].implode()
        return dict(book_prev.filter(pl.col("trade_id").is_in(ids)).select("trade_id", column).iter_rows())

    fixes = book_values("price", "price")
    comm_fixes = book_values("commission", "commission")
    original = pl.read_csv(prev_atlas, infer_schema=False)
    hit = pl.col("Client Ref").is_in(list(fixes))
    mult = pl.col("Sec Type").replace_strict({"BD": 0.01, "OP": 100.0}, default=1.0, return_dtype=pl.Float64)
    corrected = original.with_columns(
        pl.when(hit).then(pl.col("Client Ref").replace_strict(fixes, default=None)).otherwise(pl.col("Price"))
        .alias("Price")).with_columns(
        pl.when(hit).then((pl.col("Qty").cast(pl.Float64) * pl.col("Price").cast(pl.Float64) * mult)
                          .round(2).cast(pl.Decimal(38, 2)).cast(pl.String)).otherwise(pl.col("Gross Amt"))
        .alias("Gross Amt")).with_columns(
        pl.when(pl.col("Client Ref").is_in(list(comm_fixes)))
        .then(pl.col("Client Ref").replace_strict(comm_fixes, default=None)).otherwise(pl.col("Comm")).alias("Comm"))
    target = drop / REDELIVERIES / prev_atlas.relative_to(drop)
    target.parent.mkdir(parents=True, exist_ok=True)
    corrected.write_csv(target)
    record(target, "", 0, f"corrected redelivery of {prev_atlas.relative_to(drop).as_posix()} (same name, new "
                          f"content: price breaks {sorted(fixes)} and commission breaks "
                          f"{sorted(comm_fixes)} corrected); move into place after the first ingest")

    late_src = drop / "fix" / f"BRKC_{day1.strftime('%Y%m%d')}.fix"
    late = drop / REDELIVERIES / late_src.relative_to(drop)
    late.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(late_src, late)
    n_late = sum(1 for _ in late.open("rb"))
    record(late, "", 0, f"late file for business date {day1.isoformat()} ({n_late} messages, "
                        f"{FIX_VERSION['BRKC']}); move into fix/ after the first ingest")

    with (truth / "hostile_files.csv").open("w", newline="") as handle:
        out = csv.DictWriter(handle, ["file", "expected_reason", "expected_quarantined_rows", "note"])
        out.writeheader()
        out.writerows(rows)
    return rows
