"""Vectorised FIX 4.4 / 4.2 drop-copy parsing and validation: one file's bytes to a typed table.

A drop copy is one message per line, fields ``tag=value`` separated by SOH. Nothing here loops over
messages in Python: the file's bytes are one numpy array; SOH and newline positions give every field's
span at once; tags are decoded by one 24-bit table lookup on the first bytes of each field; CheckSums
come from one ``np.add.reduceat`` in uint8 (which wraps mod 256, exactly FIX's checksum) over the byte
array cut at ``line start`` / ``10=``; BodyLength is a difference of positions; required tags are a
per-line ``reduceat`` count. Field values become Arrow ``string_view`` columns pointing into the file's
buffer (16-byte views built in numpy, no string copies); enums and dates/times are checked and decoded
on 8-byte words (SWAR), decimals and integers are cast by polars. The file is cut at line boundaries
into chunks of a few MB (cache-sized temporaries); ``threads`` > 1 runs chunks on a thread pool, off by
default because numpy's gathers hold the GIL and it measured no faster on two cores.

Only the rare rejected line is touched in Python (to render its raw text and name its fault).

Checks, in the order a rejected line gets its one reason:
``fix_garbled`` (framing: no SOH-terminated ``tag=value`` fields, header not 8/9/35, trailer not a
3-digit ``10=``, repeated tag, empty value, unsupported BeginString), ``not_utf8``,
``fix_bad_body_length``, ``fix_bad_checksum``, ``fix_missing_tag`` (dictionary-required or required by
our rules of engagement), ``fix_bad_enum`` (MsgType other than ExecutionReport included), then
``fix_garbled`` again for a value that does not parse as its FIX type.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import polars as pl
import pyarrow as pa

from ingest.fix import dictionary

SOH = 1
NEWLINE = 10
EQUALS = 61
DEFAULT_CHUNK_BYTES = 4 * 1024 * 1024
DEFAULT_THREADS = 1  # numpy's gathers hold the GIL: threads measured no faster here

DECIMAL = pl.Decimal(38, 10)
_DECIMAL_TYPES = {"QTY", "PRICE", "AMT", "PRICEOFFSET", "FLOAT", "PERCENTAGE"}
_INT_TYPES = {"INT", "SEQNUM", "LENGTH", "NUMINGROUP"}
_TIMESTAMP_TYPES = {"UTCTIMESTAMP"}
_DATE_TYPES = {"LOCALMKTDATE", "UTCDATEONLY", "UTCDATE"}
# Validated structurally, never landed as columns.
_FRAMING_TAGS = {8, 9, 10}
SIDE_CODES = {"1": "BUY", "2": "SELL", "3": "BUY", "4": "SELL", "5": "SELL", "6": "SELL"}
VERSION_CODES = {b"FIX.4.4": 44, b"FIX.4.2": 42}


@dataclass
class FixReject:
    line_number: int
    raw: bytes
    reason_code: str
    reason_detail: str


@dataclass
class FixParseResult:
    executions: pl.DataFrame  # typed, one row per valid ExecutionReport, with ``_source_line``
    rejects: list[FixReject] = field(default_factory=list)
    lines_in: int = 0  # non-blank lines (messages) seen

    @property
    def rows_landed(self) -> int:
        return self.executions.height


@dataclass(frozen=True)
class _Layout:
    """Tag -> column index in the per-line position matrix, and what each version requires."""

    tags: np.ndarray  # tag number per column index
    col: dict[int, int]  # tag number -> column index
    lut: np.ndarray  # first 3 bytes of a field (little-endian) -> column index * 4 + tag length
    required: dict[int, np.ndarray]  # version code -> bool mask over column indices
    required_lut: dict[int, np.ndarray]  # version code -> uint8 over column indices + "unknown" (0)
    enums: dict[int, dict[int, tuple[np.ndarray, frozenset[bytes]]]]  # version -> tag -> allowed (words, bytes)
    columns: dict[int, tuple[str, str]]  # tag -> (column name, FIX type)


def _layout() -> _Layout:
    cols = dictionary.columns()
    tags = np.array(list(cols), dtype=np.int64)
    col = {int(t): i for i, t in enumerate(tags)}
    lut = _tag_lut(col)
    required, enums = {}, {}
    for begin_string, code in VERSION_CODES.items():
        spec = dictionary.load(begin_string.decode())
        required[code] = np.isin(tags, spec.required_tags)
        enums[code] = {t.tag: _enum_words(frozenset({"8"}) if t.tag == 35 else t.enums)
                       for t in spec.tags.values() if t.enums}
    required_lut = {v: np.append(r, False).astype(np.uint8) for v, r in required.items()}
    return _Layout(tags=tags, col=col, lut=lut, required=required, required_lut=required_lut, enums=enums,
                   columns=cols)


def _tag_lut(col: dict[int, int]) -> np.ndarray:
    """24-bit lookup over a field's first three bytes: ``column * 4 + tag length``.

    Column ``len(col)`` stands for "a valid tag we do not read"; tag length 0 means "not ``tag=``" and
    length 3 still needs its 4th byte to be ``=`` (otherwise it is a 4+-digit tag, checked in Python).
    """
    unknown = len(col)
    lut = np.full(1 << 24, unknown * 4, dtype=np.int16)
    any_byte = np.arange(256, dtype=np.int64)
    for d0 in range(1, 10):
        c0 = 48 + d0
        lut[c0 | EQUALS << 8 | any_byte << 16] = col.get(d0, unknown) * 4 + 1
        for d1 in range(10):
            c1 = 48 + d1
            lut[c0 | c1 << 8 | EQUALS << 16] = col.get(d0 * 10 + d1, unknown) * 4 + 2
            for d2 in range(10):
                lut[c0 | c1 << 8 | (48 + d2) << 16] = col.get(d0 * 100 + d1 * 10 + d2, unknown) * 4 + 3
    return lut


_LAYOUT: _Layout | None = None


def _get_layout() -> _Layout:
    global _LAYOUT
    if _LAYOUT is None:
        _LAYOUT = _layout()
    return _LAYOUT


def _parse_uint(buf: np.ndarray, start: np.ndarray, end: np.ndarray, max_digits: int) -> tuple[np.ndarray, np.ndarray]:
    """Decimal digits in ``buf[start:end]`` per row -> (value, ok). ok is False for non-digits/too long."""
    length = end - start
    ok = (length > 0) & (length <= max_digits)
    value = np.zeros(len(start), dtype=np.int64)
    for k in range(max_digits):
        active = k < length
        digit = buf[start + k].astype(np.int64) - 48
        ok &= ~active | ((digit >= 0) & (digit <= 9))
        value = np.where(active, value * 10 + digit, value)
    return value, ok


def _chunks(data: bytes, chunk_bytes: int) -> list[tuple[int, int]]:
    bounds, start, n = [], 0, len(data)
    while start < n:
        end = min(start + chunk_bytes, n)
        if end < n:
            nl = data.find(b"\n", end - 1)
            end = n if nl < 0 else nl + 1
        bounds.append((start, end))
        start = end
    return bounds


def _windows(buf: np.ndarray, width: int) -> np.ndarray:
    """Every ``width``-byte window of ``buf`` (overlapping, stride 1) as one fixed-size item."""
    return np.ndarray(shape=(len(buf) - width + 1,), dtype=f"V{width}", buffer=buf, strides=(1,))


_INLINE = 12  # Arrow string views hold up to 12 bytes inline
_MASK_LO = np.array([(1 << (8 * k)) - 1 for k in range(8)] + [(1 << 64) - 1], dtype=np.uint64)
_MASK_HI = np.array([(1 << (8 * k)) - 1 for k in range(5)], dtype=np.uint64)
_U = np.uint64


def _string_views(buf: np.ndarray, vs: np.ndarray, length: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                  absent: np.ndarray | None) -> pl.Series:
    """Arrow ``string_view`` over ``buf`` for the values ``buf[vs:vs+length]``: no string copies.

    A view is 16 bytes: ``int32 length`` then the bytes inline (up to 12, zero padded) or a 4-byte
    prefix, buffer index 0 and the offset into ``buf``. ``lo``/``hi`` are the value's first 8 and next
    4 bytes, already masked to its length.
    """
    m = len(vs)
    views = np.empty((m, 2), dtype=np.uint64)
    views[:, 0] = length.astype(np.uint64) | (lo << _U(32))
    views[:, 1] = (lo >> _U(32)) | (hi << _U(32))
    long = np.flatnonzero(length > _INLINE)
    if len(long):
        views[long, 1] = vs[long].astype(np.uint64) << _U(32)  # buffer 0, offset
    validity = pa.py_buffer(np.packbits(~absent, bitorder="little")) if absent is not None else None
    array = pa.Array.from_buffers(pa.string_view(), m, [validity, pa.py_buffer(views), pa.py_buffer(buf)])
    return pl.from_arrow(array)


def _days_from_civil(y: np.ndarray, m: np.ndarray, d: np.ndarray) -> np.ndarray:
    y = y - (m <= 2)
    era = np.floor_divide(y, 400)
    yoe = y - era * 400
    doy = (153 * (m + np.where(m > 2, -3, 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


_HIGH_NIBBLES = _U(0xF0F0F0F0F0F0F0F0)
_ASCII_ZEROS = _U(0x3030303030303030)
_SIXES = _U(0x0606060606060606)
_LOW_NIBBLES = _U(0x0F0F0F0F0F0F0F0F)
_BYTE = _U(0xFF)


def _all_digits(word: np.ndarray) -> np.ndarray:
    """Are all 8 bytes of each little-endian word ASCII digits (SWAR, no per-byte loop)?"""
    return ((word & _HIGH_NIBBLES) == _ASCII_ZEROS) & (((word + _SIXES) & _HIGH_NIBBLES) == _ASCII_ZEROS)


def _nibble(word: np.ndarray, byte: int) -> np.ndarray:
    return ((word >> _U(8 * byte)) & _U(0xF)).astype(np.int64)


def _parse_date(w0: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``YYYYMMDD`` in a word -> (days since epoch, ok)."""
    pairs = w0 & _LOW_NIBBLES
    pairs = (pairs * _U(10) + (pairs >> _U(8))) & _U(0x00FF00FF00FF00FF)  # two-digit numbers
    year = ((pairs & _BYTE) * _U(100) + ((pairs >> _U(16)) & _BYTE)).astype(np.int64)
    month = ((pairs >> _U(32)) & _BYTE).astype(np.int64)
    day = ((pairs >> _U(48)) & _BYTE).astype(np.int64)
    ok = _all_digits(w0) & (month >= 1) & (month <= 12) & (day >= 1) & (day <= 31)
    return _days_from_civil(year, month, day), ok


_SEP_MASK = _U(0xFF | 0xFF << 24 | 0xFF << 48)
_SEP_EXPECTED = _U(ord("-") | ord(":") << 24 | ord(":") << 48)


def _parse_date_time(w8: np.ndarray, vs: np.ndarray, length: np.ndarray, absent: np.ndarray | None,
                     with_time: bool) -> tuple[np.ndarray, np.ndarray]:
    """FIX ``YYYYMMDD`` or ``YYYYMMDD-HH:MM:SS[.sss|.ssssss]`` -> (days or epoch micros, bad)."""
    days, ok = _parse_date(w8[vs])
    if not with_time:
        ok &= length == 8
        return days, ~ok if absent is None else ~ok & ~absent
    w1, w2 = w8[vs + 8], w8[vs + 16]  # "-HH:MM:S", "S[.ffffff]"
    ok &= (w1 & _SEP_MASK) == _SEP_EXPECTED
    ok &= _all_digits((w1 & ~_SEP_MASK) | (_ASCII_ZEROS & _SEP_MASK))
    hh = _nibble(w1, 1) * 10 + _nibble(w1, 2)
    mi = _nibble(w1, 4) * 10 + _nibble(w1, 5)
    ss = _nibble(w1, 7) * 10 + _nibble(w2, 0)
    ms, us = length == 21, length == 24
    ok &= (length == 17) | ms | us
    frac_bytes = np.where(us, _U(0xFFFFFFFFFFFFFFFF), np.where(ms, _U(0xFFFFFFFFFF), _U(0xFF)))
    dot_ok = ~(ms | us) | (((w2 >> _U(8)) & _BYTE) == _U(ord(".")))
    digits = (w2 & frac_bytes & ~_U(0xFF00)) | (_ASCII_ZEROS & (~frac_bytes | _U(0xFF00)))
    ok &= dot_ok & _all_digits(digits) & (hh < 24) & (mi < 60) & (ss <= 60)
    millis = _nibble(w2, 2) * 100 + _nibble(w2, 3) * 10 + _nibble(w2, 4)
    frac = np.where(ms, millis * 1000, 0)
    frac = np.where(us, millis * 1000 + _nibble(w2, 5) * 100 + _nibble(w2, 6) * 10 + _nibble(w2, 7), frac)
    micros = (days * 86400 + hh * 3600 + mi * 60 + ss) * 1_000_000 + frac
    return micros, ~ok if absent is None else ~ok & ~absent


def _enum_words(values: frozenset[str]) -> tuple[np.ndarray, frozenset[bytes]]:
    """Allowed values of up to 8 bytes as sorted little-endian words (longer ones checked as bytes)."""
    short = sorted({int.from_bytes(v.encode(), "little") for v in values if len(v.encode()) <= 8})
    return np.array(short, dtype=np.uint64), frozenset(v.encode() for v in values)


class _Chunk:
    """One chunk's messages: structural validation in numpy, then the typed columns."""

    SLACK = 32  # bytes readable past the chunk's end (padding for fixed-width windows)

    def __init__(self, data: bytes, start: int, end: int, line_base: int, layout: _Layout):
        self.data, self.start, self.end, self.line_base, self.layout = data, start, end, line_base, layout

    def run(self) -> tuple[pl.DataFrame, list[FixReject], int]:
        layout = self.layout
        K = len(layout.tags)
        n = self.end - self.start
        body = np.frombuffer(self.data, dtype=np.uint8, count=n, offset=self.start)
        if self.end + self.SLACK <= len(self.data):
            buf = np.frombuffer(self.data, dtype=np.uint8, count=n + self.SLACK, offset=self.start)
        else:
            buf = np.concatenate([body, np.zeros(self.SLACK, dtype=np.uint8)])
        self.buf = buf

        delim = np.flatnonzero(body <= NEWLINE)
        kind = body[delim]
        is_nl = kind == NEWLINE
        if np.count_nonzero(is_nl) + np.count_nonzero(kind == SOH) != len(delim):
            keep = (kind == SOH) | is_nl  # other control bytes inside values are content, not framing
            delim, is_nl = delim[keep], is_nl[keep]
        if n and body[-1] != NEWLINE:  # last line without a newline: close it virtually
            delim = np.append(delim, n)
            is_nl = np.append(is_nl, True)
        n_seg = len(delim)
        ss = np.empty(n_seg, dtype=np.int64)  # segment start; segment i is buf[ss[i]:delim[i]]
        ss[:1] = 0
        ss[1:] = delim[:-1] + 1
        nl_seg = np.flatnonzero(is_nl)
        n_lines = len(nl_seg)

        # Tag decode: one 24-bit lookup per field gives (column index, tag length); 0 length = not tag=.
        word = _windows(buf, 4)[ss].view("<u4")
        code = layout.lut[word & 0xFFFFFF]
        tlen = code & 3
        fk = code >> 2
        three_bad = (tlen == 3) & ((word >> 24) != EQUALS)
        fk[nl_seg] = K
        odd = np.flatnonzero((tlen == 0) | three_bad)
        line_bad = np.zeros(n_lines, dtype=bool)
        detail: dict[int, str] = {}
        if len(odd):
            odd = odd[~is_nl[odd]]
            odd_lines = np.searchsorted(nl_seg, odd)
            for f, line in zip(odd.tolist(), odd_lines.tolist(), strict=True):
                raw = bytes(body[ss[f]:delim[f]])
                tag_text, sep, value = raw.partition(b"=")
                if sep and value and tag_text.isdigit() and tag_text[:1] != b"0":
                    fk[f] = K  # a tag of 4+ digits: legal, not one we read
                    continue
                line_bad[line] = True
                detail.setdefault(line, f"field {raw[:24]!r} is not tag=value")

        fline = np.cumsum(is_nl)
        # Column-major position matrix: pos[k, line] = segment index of tag k in that line (-1: absent).
        stride = n_lines + 1
        key = fk.astype(np.int64) * stride + fline
        seg_index = np.arange(n_seg, dtype=np.int64)
        pos = np.full((K + 1) * stride, -1, dtype=np.int64)
        pos[key] = seg_index
        repeated_seg = np.flatnonzero((pos[key] != seg_index) & (fk < K))
        repeated = np.zeros(n_lines, dtype=bool)
        repeated[fline[repeated_seg]] = True
        pos = pos.reshape(K + 1, stride)[:K, :n_lines]
        col = layout.col

        first = np.empty(n_lines, dtype=np.int64)
        first[:1] = 0
        first[1:] = nl_seg[:-1] + 1
        fields_per_line = nl_seg - first
        line_start = ss[first]
        line_end = delim[nl_seg]
        term_len = line_end - ss[nl_seg]
        bad_terminal = (term_len > 0) & ~((term_len == 1) & (buf[np.maximum(line_end - 1, 0)] == 13))
        blank = (fields_per_line == 0) & ~bad_terminal
        p8, p9, p10 = pos[col[8]], pos[col[9]], pos[col[10]]
        framing_ok = (
            (fields_per_line >= 4) & (p8 == first) & (p9 == first + 1)
            & (pos[col[35]] == first + 2) & (p10 == nl_seg - 1)
        )
        p8, p9, p10 = np.maximum(p8, 0), np.maximum(p9, 0), np.maximum(p10, 0)
        # BeginString: the 8 bytes after "8=" are "FIX.4.4<SOH>" or "FIX.4.2<SOH>"
        begin = _windows(buf, 8)[ss[p8] + 2].view("<u8")
        version = np.where(begin == _FIX44, 44, np.where(begin == _FIX42, 42, 0))
        v10 = ss[p10] + 3
        ok10 = (delim[p10] - v10) == 3

        structural = (bad_terminal | ~framing_ok | ~ok10 | repeated | line_bad | (version == 0)) & ~blank

        # Non-ASCII bytes: decode those lines in Python (rare) to tell UTF-8 from garbage.
        not_utf8 = np.zeros(n_lines, dtype=bool)
        if body.max(initial=0) >= 128:
            high = np.flatnonzero(body >= 128)
            for line in np.unique(np.searchsorted(line_end, high)).tolist():
                try:
                    bytes(body[line_start[line]:line_end[line]]).decode("utf-8")
                except UnicodeDecodeError:
                    not_utf8[line] = True

        checkable = ~structural & ~blank & ~not_utf8
        # BodyLength: bytes after the SOH ending 9= up to and including the SOH before 10=.
        v9, e9 = ss[p9] + 2, delim[p9]
        declared_len, len_ok = _parse_uint(buf, v9, e9, int(min(9, (e9 - v9).max(initial=1))))
        actual_len = ss[p10] - (delim[p9] + 1)
        # CheckSum: every byte from the line start up to and including the SOH before 10=, mod 256.
        declared_sum, sum_ok = _parse_uint(buf, v10, delim[p10], 3)
        cut = np.empty(2 * n_lines, dtype=np.int64)
        cut[0::2] = line_start
        cut[1::2] = np.where(checkable, ss[p10], line_start)
        sums = np.add.reduceat(body, cut, dtype=np.uint8)[0::2] if n_lines else np.zeros(0, np.uint8)

        bad_len = checkable & (~len_ok | (declared_len != actual_len))
        bad_sum = checkable & ~bad_len & (~sum_ok | (declared_sum != sums))
        # Required tags present per line: a per-line sum over its fields of "is this tag required".
        starts = first if n_lines else np.zeros(0, np.int64)
        present44 = np.add.reduceat(layout.required_lut[44][fk], starts, dtype=np.uint8) if n_lines else starts
        present42 = np.add.reduceat(layout.required_lut[42][fk], starts, dtype=np.uint8) if n_lines else starts
        short = np.where(version == 42, present42 < layout.required[42].sum(), present44 < layout.required[44].sum())
        missing = checkable & ~bad_len & ~bad_sum & short

        reason = np.zeros(n_lines, dtype=np.int8)  # index into _REASONS; 0 = fine so far
        for mask, code_no in ((missing, 5), (bad_sum, 4), (bad_len, 3), (not_utf8, 2), (structural, 1)):
            reason[mask] = code_no  # later assignments win: structural first

        candidates = np.flatnonzero((reason == 0) & ~blank)
        frame, late = self._columns(ss, tlen, delim, pos, version, candidates)

        rejects = []
        for line in np.flatnonzero(reason > 0).tolist():
            reason_code = _REASONS[reason[line]]
            if reason_code == "fix_garbled":
                text = detail.get(line) or _garble_detail(
                    bad_terminal[line], framing_ok[line], ok10[line], repeated[line], version[line])
            elif reason_code == "not_utf8":
                text = "line has bytes that are not UTF-8"
            elif reason_code == "fix_bad_body_length":
                text = (f"BodyLength(9)={int(declared_len[line])} but the body is {int(actual_len[line])} bytes"
                        if len_ok[line] else "BodyLength(9) is not a number")
            elif reason_code == "fix_bad_checksum":
                text = (f"CheckSum(10)={int(declared_sum[line]):03d} but the bytes sum to {int(sums[line]):03d}"
                        if sum_ok[line] else "CheckSum(10) is not three digits")
            else:
                need = layout.required[42 if version[line] == 42 else 44]
                gone = need & (pos[:, line] < 0)
                names = [f"{layout.columns[t][0]}({t})" for t in layout.tags[gone].tolist()]
                text = "missing required tag(s) " + ", ".join(names)
            rejects.append(self._reject(line, line_start, line_end, reason_code, text))
        for line, (reason_code, text) in late.items():
            rejects.append(self._reject(line, line_start, line_end, reason_code, text))
        rejects.sort(key=lambda r: r.line_number)
        return frame, rejects, int(n_lines - blank.sum())

    def _reject(self, line, line_start, line_end, code, text) -> FixReject:
        a, b = self.start + int(line_start[line]), self.start + int(line_end[line])
        return FixReject(self.line_base + line + 1, self.data[a:b].rstrip(b"\r"), code, text)

    def _columns(self, ss, tlen, delim, pos, version, rows) -> tuple[pl.DataFrame, dict]:
        """Typed columns for ``rows``; lines failing an enum or type check come back in ``late``."""
        layout, buf = self.layout, self.buf
        w8 = _windows(buf, 8).view("<u8")
        w4 = _windows(buf, 4).view("<u4")
        ver = version[rows]
        m = len(rows)
        vstart = ss + tlen + 1
        pos_t = pos if m == pos.shape[1] else np.ascontiguousarray(pos[:, rows])  # one row per column
        series: dict[str, pl.Series] = {"begin_string": pl.Series(np.where(ver == 44, "FIX.4.4", "FIX.4.2"))}
        bad_enum = np.zeros(m, dtype=bool)
        bad_type = np.zeros(m, dtype=bool)
        enum_detail: dict[int, str] = {}
        type_detail: dict[int, str] = {}
        for tag, (name, fix_type) in layout.columns.items():
            if tag in _FRAMING_TAGS:
                continue
            p = pos_t[layout.col[tag]]
            absent = None
            if p.min(initial=0) < 0:
                absent = p < 0
                p = np.maximum(p, 0)
            vs = vstart[p]
            length = delim[p] - vs
            if absent is not None:
                length[absent] = 0
            empty = length <= 0 if absent is None else (length <= 0) & ~absent
            if empty.any():
                for i in np.flatnonzero(empty & ~bad_type).tolist():
                    type_detail[i] = f"{name}({tag}) is empty"
                bad_type |= empty
            if fix_type in _TIMESTAMP_TYPES or fix_type in _DATE_TYPES:
                with_time = fix_type in _TIMESTAMP_TYPES
                values, wrong = _parse_date_time(w8, vs, length, absent, with_time)
                arrow_type = pa.timestamp("us", tz="UTC") if with_time else pa.date32()
                mask = wrong if absent is None else absent | wrong
                typed = pl.from_arrow(pa.array(values if with_time else values.astype(np.int32),
                                               mask=mask, type=arrow_type))
                if wrong.any():
                    for i in np.flatnonzero(wrong & ~bad_type).tolist():
                        raw = bytes(buf[vs[i]:vs[i] + length[i]]).decode("utf-8", "backslashreplace")
                        type_detail[i] = f"{name}({tag})={raw!r} is not a {fix_type}"
                    bad_type |= wrong
                series[name] = typed.rename(name)
                continue
            clipped = np.minimum(length, 8)
            lo = w8[vs] & _MASK_LO[clipped]
            hi = w4[vs + 8].astype(np.uint64) & _MASK_HI[np.clip(length - 8, 0, 4)]
            for version_code in (44, 42):
                allowed = layout.enums[version_code].get(tag)
                if allowed is None:
                    continue
                words, as_bytes = allowed
                found = np.minimum(np.searchsorted(words, lo), len(words) - 1)
                wrong = (ver == version_code) & ((words[found] != lo) | (length > 8))
                if absent is not None:
                    wrong &= ~absent
                for i in np.flatnonzero(wrong & (length > 8)).tolist():  # long codes: compare bytes
                    wrong[i] = bytes(buf[vs[i]:vs[i] + length[i]]) not in as_bytes
                if wrong.any():
                    label = "FIX.4.4" if version_code == 44 else "FIX.4.2"
                    for i in np.flatnonzero(wrong & ~bad_enum).tolist():
                        raw = bytes(buf[vs[i]:vs[i] + length[i]]).decode("utf-8", "backslashreplace")
                        enum_detail[i] = f"{name}({tag})={raw!r} is not a valid {label} value"
                    bad_enum |= wrong
            s = _string_views(buf, vs, length, lo, hi, absent).rename(name)
            typed = _typed(s, fix_type)
            if typed is not s and typed.null_count() != s.null_count():  # null counts are cached: cheap
                wrong = (typed.is_null() & s.is_not_null()).to_numpy()
                if wrong.any():
                    for i in np.flatnonzero(wrong & ~bad_type).tolist():
                        type_detail[i] = f"{name}({tag})={s[i]!r} is not a {fix_type}"
                    bad_type |= wrong
            series[name] = typed
        series["_source_line"] = pl.Series((rows + self.line_base + 1).astype(np.int64))
        frame = pl.DataFrame(series)
        late = {}
        for i in np.flatnonzero(bad_enum | bad_type).tolist():
            late[int(rows[i])] = ("fix_bad_enum", enum_detail[i]) if bad_enum[i] else ("fix_garbled", type_detail[i])
        if late:
            frame = frame.filter(pl.Series(~(bad_enum | bad_type)))
        return frame, late


_REASONS = [None, "fix_garbled", "not_utf8", "fix_bad_body_length", "fix_bad_checksum", "fix_missing_tag"]
_FIX44 = int.from_bytes(b"FIX.4.4\x01", "little")
_FIX42 = int.from_bytes(b"FIX.4.2\x01", "little")


def _garble_detail(bad_terminal, framing_ok, ok10, repeated, version) -> str:
    if bad_terminal:
        return "last field is not SOH-terminated (truncated line)"
    if repeated:
        return "a tag is repeated"
    if not framing_ok:
        return "message does not start 8=,9=,35= and end 10= (truncated or out of order)"
    if not ok10:
        return "CheckSum(10) is not three digits"
    if version == 0:
        return "BeginString(8) is not FIX.4.4 or FIX.4.2"
    return "malformed message"


def _typed(s: pl.Series, fix_type: str) -> pl.Series:
    if fix_type in _DECIMAL_TYPES:
        return s.cast(DECIMAL, strict=False)
    if fix_type in _INT_TYPES:
        return s.cast(pl.Int64, strict=False)
    if fix_type in _TIMESTAMP_TYPES:
        return s.str.to_datetime("%Y%m%d-%H:%M:%S%.f", time_unit="us", time_zone="UTC", strict=False)
    if fix_type in _DATE_TYPES:
        return s.str.to_date("%Y%m%d", strict=False)
    return s


def output_schema() -> dict[str, pl.DataType]:
    """The executions table's columns and types (before lineage columns)."""
    schema: dict[str, pl.DataType] = {"begin_string": pl.String}
    for tag, (name, fix_type) in _get_layout().columns.items():
        if tag in _FRAMING_TAGS:
            continue
        if tag == 54:
            schema["side_code"] = pl.String
            schema["side"] = pl.String
            continue
        schema[name] = _typed(pl.Series([], dtype=pl.String), fix_type).dtype
    schema["_source_line"] = pl.Int64
    return schema


def parse_fix(data: bytes, chunk_bytes: int = DEFAULT_CHUNK_BYTES, threads: int | None = None) -> FixParseResult:
    """Validate and parse a whole drop-copy file's bytes (FIX 4.4 and 4.2 lines may be mixed)."""
    layout = _get_layout()
    bounds = _chunks(data, chunk_bytes)
    line_bases, base = [], 0
    for start, end in bounds:
        line_bases.append(base)
        base += data.count(b"\n", start, end) + (1 if end == len(data) and data[-1:] != b"\n" else 0)
    chunks = [_Chunk(data, s, e, lb, layout) for (s, e), lb in zip(bounds, line_bases, strict=True)]
    workers = min(threads or DEFAULT_THREADS, len(chunks)) or 1
    if workers > 1:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(_Chunk.run, chunks))
    else:
        results = [c.run() for c in chunks]
    frames = [f for f, _, _ in results if f.height]
    rejects = [r for _, rs, _ in results for r in rs]
    lines_in = sum(li for _, _, li in results)
    schema = output_schema()
    if frames:
        executions = pl.concat(frames, how="vertical")
        executions = executions.rename({"side": "side_code"}).with_columns(
            pl.col("side_code").replace_strict(SIDE_CODES, default=None, return_dtype=pl.String).alias("side")
        )
        executions = executions.select(list(schema))
    else:
        executions = pl.DataFrame(schema=schema)
    return FixParseResult(executions=executions, rejects=rejects, lines_in=lines_in)
