"""The FIX parser's compiled kernels against independent readings of the same values: Python's
``datetime`` for dates and times, the exact-decimal rule as a regular expression with Python's
``Decimal``, and polars' own string-to-decimal cast for the values the kernel parses itself."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import numpy as np
import polars as pl
import pyarrow as pa
import pytest

from ingest.fix import kernels

pytestmark = pytest.mark.unit

EPOCH = dt.datetime(1970, 1, 1)
EXACT = {True: re.compile(r"-?(?:[0-9]+(?:\.[0-9]{0,10})?|\.[0-9]{1,10})"),
         False: re.compile(r"(?:[0-9]+(?:\.[0-9]{0,10})?|\.[0-9]{1,10})")}
# Inline values (up to 12 bytes) are checked character by character (digits, one point, a leading '-'):
# a bare point or sign passes that check and is left to polars' cast, as before the kernels.
INLINE_EXACT = {True: re.compile(r"-?[0-9.]*"), False: re.compile(r"[0-9.]*")}


def _values(texts: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray, bytes]:
    """The texts as FIX fields ``xx=<text><SOH>`` in one buffer (32 bytes of slack): (buf, starts, lengths)."""
    parts, starts, lengths, at = [], [], [], 0
    for text in texts:
        raw = text.encode()
        parts.append(b"xx=" + raw + b"\x01")
        starts.append(at + 3)
        lengths.append(len(raw))
        at += len(raw) + 4
    data = b"".join(parts) + bytes(32)
    return (np.frombuffer(data, dtype=np.uint8), np.array(starts, dtype=np.int64),
            np.array(lengths, dtype=np.int64), data)


def _random_texts(rng: np.random.Generator, n: int, alphabet: str, max_len: int) -> list[str]:
    chars = np.array(list(alphabet))
    return ["".join(rng.choice(chars, int(rng.integers(0, max_len + 1)))) for _ in range(n)]


def _timestamp_texts(rng: np.random.Generator, n: int) -> list[str]:
    texts = []
    for _ in range(n):
        y, mo, d = int(rng.integers(1899, 2101)), int(rng.integers(0, 14)), int(rng.integers(0, 33))
        h, mi, s = int(rng.integers(0, 26)), int(rng.integers(0, 62)), int(rng.integers(0, 62))
        text = f"{y:04d}{mo:02d}{d:02d}"
        shape = rng.random()
        if shape > 0.25:
            text += f"-{h:02d}:{mi:02d}:{s:02d}"
        if shape > 0.55:
            text += f".{int(rng.integers(0, 1000)):03d}"
        if shape > 0.8:
            text += f"{int(rng.integers(0, 1000)):03d}"
        texts.append(text)
    return texts + ["20240229", "20230229", "20261028-23:59:60", "20261028-13:45:01.1234", "2026102813:45:01",
                    "20261028-13:45:01.12a", "20261028-13-45:01", ""]


def _reference_time(text: str, with_time: bool) -> int | None:
    """Days (dates) or epoch microseconds (timestamps; second 60 allowed, as FIX does) or None."""
    date_part = re.fullmatch(r"([0-9]{4})([0-9]{2})([0-9]{2})", text[:8])
    if not date_part:
        return None
    try:
        day = dt.datetime(*map(int, date_part.groups()))
    except ValueError:
        return None
    if not with_time:
        return (day - EPOCH).days if len(text) == 8 else None
    clock = re.fullmatch(r"-([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{3}|[0-9]{6}))?", text[8:])
    if not clock:
        return None
    hh, mi, ss = (int(x) for x in clock.groups()[:3])
    if hh >= 24 or mi >= 60 or ss > 60:
        return None
    micros = int((clock.group(4) or "0").ljust(6, "0"))
    return ((day - EPOCH).days * 86400 + hh * 3600 + mi * 60 + ss) * 1_000_000 + micros


@pytest.mark.parametrize("with_time", [False, True])
def test_dates_and_timestamps_match_python(with_time):
    texts = _timestamp_texts(np.random.default_rng(3), 20_000)
    buf, starts, lengths, _ = _values(texts)
    values, bad = kernels.date_times(buf, starts, lengths, with_time)
    for text, value, wrong in zip(texts, values.tolist(), bad.tolist(), strict=True):
        expected = _reference_time(text, with_time)
        assert wrong == (expected is None), text
        if expected is not None:
            assert value == expected, text


@pytest.mark.parametrize("signed", [False, True])
def test_decimals_match_the_exact_rule_and_polars(signed):
    rng = np.random.default_rng(5)
    texts = _random_texts(rng, 30_000, "0123456789" * 3 + ".-+eE ", 24)
    texts += [f"{int(rng.integers(0, 10**9))}.{int(rng.integers(0, 10**10)):0{int(rng.integers(1, 11))}d}"[:20]
              for _ in range(10_000)]
    texts += ["-0", "-0.0", "0", "007", "5.", ".5", "-.5", "-", ".", "", "99999999.9999999999",
              "123456789", "-12345678.1234567891", "1.23456789012", ".12345678901", "0.1234567891",
              "1234567.8901", "00000000000000001.5"]
    buf, starts, lengths, data = _values(texts)
    values, status = kernels.decimals(buf, starts, lengths, signed)
    for text, state, value in zip(texts, status.tolist(), values[:, 0].tolist(), strict=True):
        rule = EXACT[signed] if len(text) > 12 else INLINE_EXACT[signed]
        inline_ok = len(text) != 12 or not text.startswith(".")
        exact = rule.fullmatch(text) is not None and text.count(".") <= 1 and inline_ok
        assert (state != kernels.DEC_INEXACT) == exact, text
        if state == kernels.DEC_OK:
            assert Decimal(value) / 10**10 == Decimal(text), text
    views = kernels.views(kernels.words(buf), starts, lengths)
    text_column = pl.from_arrow(pa.Array.from_buffers(pa.string_view(), len(texts),
                                                      [None, pa.py_buffer(views), pa.py_buffer(data)]))
    assert text_column.to_list() == texts
    parsed = np.flatnonzero(status == kernels.DEC_OK)
    ours = pl.from_arrow(pa.Array.from_buffers(pa.decimal128(38, 10), len(texts), [None, pa.py_buffer(values)]))
    cast = text_column.cast(pl.Decimal(38, 10), strict=False)
    assert ours.gather(parsed).equals(cast.gather(parsed))
