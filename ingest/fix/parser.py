"""Vectorised FIX 4.4 / 4.2 drop-copy parsing and validation: one file's bytes to a typed table.

A drop copy is one message per line, fields ``tag=value`` separated by SOH. Nothing here loops over
messages in Python. The file is cut at line boundaries into chunks of a few MB (cache-sized
temporaries) and each chunk is *scanned* by numpy and a few compiled loops (``kernels.py``, numba):

- SOH and newline positions (numpy finds the control bytes, a loop keeps SOH and newlines) give every
  field's span, and in the same loop one 24-bit table lookup on its first bytes decodes its tag;
- one pass builds a (tag x line) matrix of each field's value start and length (packed in an int64),
  which also finds repeated tags; header and trailer order is read off the tag codes;
- CheckSums come from one ``np.add.reduceat`` in uint8 (which wraps mod 256, exactly FIX's checksum)
  over the bytes cut at ``line start`` / ``10=``; BodyLength is a difference of positions; required
  tags are one per-line ``reduceat`` count (both versions' counts in one uint16);
- every landed column is then a row of the matrix, read row by row in one compiled pass (a message's
  bytes are read once, not once per column): text values become 16-byte Arrow ``string_view`` entries
  pointing into the file's buffer (no string copies), dates and times are checked and decoded, and
  decimals are checked for exactness and parsed to DECIMAL(38, 10) (a shape the loop does not parse
  itself, e.g. ``5.`` or more than 8 integer digits, sends that chunk's column to polars' cast);
  single-character enums are checked by a 256-entry table per version, longer ones by
  ``searchsorted`` on 8-byte words.

The scan's output is plain numpy arrays (no polars, no Arrow), so a large file is scanned by two
processes: ``os.fork`` gives a worker the file's bytes for free, it scans the later ~55% of the chunks
and hands its arrays back through one file in ``/dev/shm`` (pickle protocol 5, buffers out of band,
mapped back without a copy), while this process scans the rest and types it. Files under
``PARALLEL_MIN_BYTES`` stay in one process; a worker that fails has its share redone here. Typing wraps
the arrays as Arrow arrays over the file's buffer and casts the integer columns in polars. A thread
pool over the chunks measured no faster here.

Only the rare rejected line is touched in Python (to render its raw text and name its fault).

Checks, in the order a rejected line gets its one reason:
``fix_garbled`` (framing: no SOH-terminated ``tag=value`` fields, header not 8/9/35, trailer not a
3-digit ``10=``, repeated tag, empty value, unsupported BeginString), ``not_utf8``,
``fix_bad_body_length``, ``fix_bad_checksum``, ``fix_missing_tag`` (dictionary-required or required by
our rules of engagement), ``fix_bad_enum`` (MsgType other than ExecutionReport included), then
``fix_garbled`` again for a value that does not parse as its FIX type (the first such column).
"""

from __future__ import annotations

import mmap
import os
import pickle
import tempfile
from dataclasses import dataclass, field

import numpy as np
import polars as pl
import pyarrow as pa

from connectors.fix import dictionary
from ingest.fix import kernels

SOH = 1
NEWLINE = 10
EQUALS = 61
DEFAULT_CHUNK_BYTES = 4 * 1024 * 1024
# Files from this size up are scanned by two processes (forking costs a few ms; small files don't gain).
PARALLEL_MIN_BYTES = 24 * 1024 * 1024
DEFAULT_WORKERS = 2
# This process also assembles the table at the end, so it scans a little less than its worker.
_OWN_SHARE = 0.45

DECIMAL = pl.Decimal(38, 10)
_DECIMAL_TYPES = {"QTY", "PRICE", "AMT", "PRICEOFFSET", "FLOAT", "PERCENTAGE"}
_INT_TYPES = {"INT", "SEQNUM", "LENGTH", "NUMINGROUP"}
_TIMESTAMP_TYPES = {"UTCTIMESTAMP"}
_DATE_TYPES = {"LOCALMKTDATE", "UTCDATEONLY", "UTCDATE"}
# Validated structurally, never landed as columns.
_FRAMING_TAGS = {8, 9, 10}
# Side(54) -> the trade's direction, for matching against the book: buys and sells (short sales are
# sells; subscribe/redeem are a fund's buy/sell); codes without a direction (undisclosed, cross,
# opposite, lend, borrow, as defined) keep their readable name. Never NULL: an unknown code is quarantined.
SIDE_DIRECTIONS = {"1": "BUY", "2": "SELL", "3": "BUY", "4": "SELL", "5": "SELL", "6": "SELL", "D": "BUY",
                   "E": "SELL"}
# Versions, by index into the per-version tables: BeginString, label, dictionary key.
VERSIONS = ((b"FIX.4.4", "FIX.4.4"), (b"FIX.4.2", "FIX.4.2"), (b"FIXT.1.1", "FIXT.1.1"))
V44, V42, VT11 = 0, 1, 2
N_VERSIONS = len(VERSIONS)


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
    lines_in: int = 0  # messages (and garbled fragments) seen: landed + rejected + skipped
    skipped: dict[str, int] = field(default_factory=dict)  # MsgType -> sound messages other than 35=8
    log_lines: int = 0  # lines of log text around the messages that carry no FIX at all (not records)

    @property
    def rows_skipped(self) -> int:
        return sum(self.skipped.values())

    @property
    def rows_landed(self) -> int:
        return self.executions.height


@dataclass(frozen=True)
class _Enum:
    """A tag's allowed values, per version (44 / 42); ``None`` for a version that does not check it."""

    byte_table: np.ndarray | None  # (2 * 256,) bool: [version 44 | version 42] x first byte, if every code is 1 byte
    words: dict[int, tuple[np.ndarray, frozenset[bytes]]]  # version -> sorted 8-byte words, all codes as bytes


@dataclass(frozen=True)
class _Column:
    tag: int
    name: str
    fix_type: str
    index: int  # row in the position matrix
    order: int  # position among the landed columns (the first failing one names a type fault)
    kind: str  # "view" | "timestamp" | "date"
    enum: _Enum | None


@dataclass(frozen=True)
class _Layout:
    """Tag -> column index in the per-line position matrix, and what each version requires."""

    tags: np.ndarray  # tag number per column index
    col: dict[int, int]  # tag number -> column index
    column_of_tag: np.ndarray  # tag 0-999 -> column index (len(tags): a valid tag we do not read)
    required: dict[int, np.ndarray]  # version index -> bool mask over column indices
    required_lut: np.ndarray  # uint32 over column indices + "unknown": byte v = required in version v
    columns: dict[int, tuple[str, str]]  # tag -> (column name, FIX type)
    landed: tuple[_Column, ...]  # the non-framing columns, in column order


def _layout(extra_required: frozenset[int] = frozenset()) -> _Layout:
    cols = dictionary.columns()
    tags = np.array(list(cols), dtype=np.int64)
    col = {int(t): i for i, t in enumerate(tags)}
    required, enums = {}, {}
    for v, (_, label) in enumerate(VERSIONS):
        spec = dictionary.load(label)
        # MsgType is not an enum here: a message other than an ExecutionReport is skipped, not rejected.
        required[v] = np.isin(tags, spec.required_tags + [t for t in extra_required if t in spec.tags])
        enums[v] = {t.tag: t.enums for t in spec.tags.values() if t.enums and t.tag != 35}
        if spec.appl_ver_id:  # FIXT.1.1: only the application version we have the dictionary for
            enums[v][1128] = frozenset({spec.appl_ver_id})
    required_lut = np.zeros(len(tags) + 1, dtype=np.uint32)
    for v, mask in required.items():
        required_lut[:-1] += mask.astype(np.uint32) << np.uint32(8 * v)
    landed = []
    for tag, (name, fix_type) in cols.items():
        if tag in _FRAMING_TAGS:
            continue
        kind = "timestamp" if fix_type in _TIMESTAMP_TYPES else "date" if fix_type in _DATE_TYPES else "view"
        allowed = {v: enums[v][tag] for v in range(N_VERSIONS) if tag in enums[v]}
        landed.append(_Column(tag, name, fix_type, col[tag], len(landed), kind, _enum(allowed) if allowed else None))
    column_of_tag = np.full(1000, len(tags), dtype=np.int16)
    for tag, index in col.items():
        if tag < 1000:
            column_of_tag[tag] = index
    return _Layout(tags=tags, col=col, column_of_tag=column_of_tag, required=required, required_lut=required_lut,
                   columns=cols, landed=tuple(landed))


def _enum(allowed: dict[int, frozenset[str]]) -> _Enum:
    words = {v: _enum_words(values) for v, values in allowed.items()}
    if not all(len(c.encode()) == 1 for values in allowed.values() for c in values):
        return _Enum(byte_table=None, words=words)
    table = np.ones((N_VERSIONS, 256), dtype=bool)  # a version without the tag's enum accepts anything
    for v, values in allowed.items():
        row = table[v]
        row[:] = False
        row[[c.encode()[0] for c in values]] = True
    return _Enum(byte_table=table.ravel(), words=words)


_LAYOUTS: dict[frozenset[int], _Layout] = {}


def _get_layout(extra_required: frozenset[int] = frozenset()) -> _Layout:
    """The layout for the standard's required tags plus a broker's own (``extra_required``), cached."""
    layout = _LAYOUTS.get(extra_required)
    if layout is None:
        layout = _LAYOUTS[extra_required] = _layout(extra_required)
    return layout


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


_U = np.uint64
_BYTE = _U(0xFF)


def _enum_words(values: frozenset[str]) -> tuple[np.ndarray, frozenset[bytes]]:
    """Allowed values of up to 8 bytes as sorted little-endian words (longer ones checked as bytes)."""
    short = sorted({int.from_bytes(v.encode(), "little") for v in values if len(v.encode()) <= 8})
    return np.array(short, dtype=np.uint64), frozenset(v.encode() for v in values)


_REASONS = [None, "fix_garbled", "not_utf8", "fix_bad_body_length", "fix_bad_checksum", "fix_missing_tag"]
_FIX44 = int.from_bytes(b"FIX.4.4\x01", "little")
_FIX42 = int.from_bytes(b"FIX.4.2\x01", "little")
_FIXT11 = int.from_bytes(b"FIXT.1.1", "little")  # 8 bytes: its SOH is the 9th, checked apart
# begin_string values as inline string views, by version index
_BEGIN_VIEWS = np.array([[len(s) | int.from_bytes(s[:4], "little") << 32, int.from_bytes(s[4:], "little")]
                         for s, _ in VERSIONS], dtype=np.uint64)
SLACK = 32  # bytes readable past a chunk's end (padding for fixed-width windows)


@dataclass
class _Scan:
    """One chunk after the numpy pass: plain arrays and Python values only (picklable, fork-safe)."""

    n_lines: int  # lines in the chunk, blank ones included (for line numbering)
    lines_in: int  # non-blank lines
    rows: np.ndarray  # chunk-local line index of each row that reached the columns
    columns: dict[str, tuple[str, np.ndarray, np.ndarray | None]]  # name -> (kind, values, null mask)
    rejects: list[tuple[int, str, str]]  # (chunk-local line, reason code, detail), framing to missing tags
    bad_enum: dict[int, str]  # row position -> detail of the first column with a value outside its enum
    bad_type: dict[int, tuple[int, str]]  # row position -> (column order, detail) of the first mistyped value
    skipped: dict[str, int] = field(default_factory=dict)  # MsgType -> sound messages other than 35=8
    latin1: dict[int, dict[str, str]] = field(default_factory=dict)  # row position -> column -> Latin-1 text


def _scan_chunk(data: bytes, start: int, end: int, layout: _Layout) -> _Scan:
    """Structural validation and column extraction of ``data[start:end]`` (whole lines): numpy and the
    compiled kernels only (no polars, so a forked worker can run it)."""
    K = len(layout.tags)
    n = end - start
    body = np.frombuffer(data, dtype=np.uint8, count=n, offset=start)
    if end + SLACK <= len(data):
        buf = np.frombuffer(data, dtype=np.uint8, count=n + SLACK, offset=start)
    else:
        buf = np.concatenate([body, np.zeros(SLACK, dtype=np.uint8)])
        buf.flags.writeable = False  # the kernels' argument types stay those of the file's bytes

    delim, is_nl, ss, fk, tlen, three_bad = kernels.fields(buf, n, np.flatnonzero(body <= NEWLINE),
                                                           layout.column_of_tag, K)
    n_seg = len(delim)
    nl_seg = np.flatnonzero(is_nl)
    n_lines = len(nl_seg)

    # Tag decode (in the kernel): one 24-bit lookup per field gives (column index, tag length); 0 length
    # = not tag=.
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
                fk[f] = layout.col.get(int(tag_text), K)  # a tag of 4+ digits (e.g. ApplVerID 1128)
                tlen[f] = len(tag_text)
                continue
            line_bad[line] = True
            detail.setdefault(line, f"field {raw[:24]!r} is not tag=value")

    # Position matrix: cell[k, line] = value start | value length << 32 of tag k in that line (-1:
    # absent); a tag met twice in a line marks it repeated.
    cell, repeated = kernels.positions(fk, tlen, ss, delim, is_nl, n_lines, K)
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
    # Header 8, 9, 35 first and trailer 10 last; with no repeated tag, that is where those tags are.
    top = max(n_seg - 1, 0)
    p8, p9 = first, np.minimum(first + 1, top)
    p10 = np.maximum(nl_seg - 1, 0)
    framing_ok = (
        (fields_per_line >= 4) & (fk[p8] == col[8]) & (fk[p9] == col[9])
        & (fk[np.minimum(first + 2, top)] == col[35]) & (fk[p10] == col[10])
    )
    # BeginString: the 8 bytes after "8=" are "FIX.4.4<SOH>" or "FIX.4.2<SOH>", or "FIXT.1.1" + SOH
    w8 = kernels.words(buf)
    begin = w8[line_start + 2]
    version = np.where(begin == _FIX44, V44, np.where(begin == _FIX42, V42, -1))
    fixt = begin == _FIXT11
    if fixt.any():
        version[fixt & (buf[line_start + 10] == SOH)] = VT11
    v10 = ss[p10] + 3
    ok10 = (delim[p10] - v10) == 3

    structural = (bad_terminal | ~framing_ok | ~ok10 | repeated | line_bad | (version < 0)) & ~blank

    # Non-ASCII bytes: decode those lines in Python (rare) to tell UTF-8 from other text. A message that
    # is not UTF-8 is still checked and landed: its text values are read as Latin-1 and flagged.
    not_utf8 = np.zeros(n_lines, dtype=bool)
    if body.max(initial=0) >= 128:
        high = np.flatnonzero(body >= 128)
        for line in np.unique(np.searchsorted(line_end, high)).tolist():
            try:
                bytes(body[line_start[line]:line_end[line]]).decode("utf-8")
            except UnicodeDecodeError:
                not_utf8[line] = True

    checkable = ~structural & ~blank
    # BodyLength: bytes after the SOH ending 9= up to and including the SOH before 10=.
    v9, e9 = ss[p9] + 2, delim[p9]
    declared_len, len_ok = _parse_uint(buf, v9, e9, int(min(9, (e9 - v9).max(initial=1))))
    actual_len = ss[p10] - (e9 + 1)
    # CheckSum: every byte from the line start up to and including the SOH before 10=, mod 256.
    declared_sum, sum_ok = _parse_uint(buf, v10, delim[p10], 3)
    cut = np.empty(2 * n_lines, dtype=np.int64)
    cut[0::2] = line_start
    cut[1::2] = np.where(checkable, ss[p10], line_start)
    sums = np.add.reduceat(body, cut, dtype=np.uint8)[0::2] if n_lines else np.zeros(0, np.uint8)

    bad_len = checkable & (~len_ok | (declared_len != actual_len))
    bad_sum = checkable & ~bad_len & (~sum_ok | (declared_sum != sums))
    sound = checkable & ~bad_len & ~bad_sum
    # A sound message other than an ExecutionReport (logon, heartbeat, order, ...) is skipped and
    # counted by its MsgType; a corrupt one is quarantined whatever it claims to be.
    p35 = np.minimum(first + 2, top)
    v35 = ss[p35] + 3
    is_execution = ((delim[p35] - v35) == 1) & (buf[v35] == ord("8"))
    other = sound & ~is_execution
    skipped: dict[str, int] = {}
    if other.any():
        for line in np.flatnonzero(other).tolist():
            msg_type = bytes(buf[v35[line]:delim[p35[line]]]).decode("latin-1")
            skipped[msg_type] = skipped.get(msg_type, 0) + 1
    # Required tags present per line: a per-line sum over its fields of "is this tag required"
    # (one byte per version: 4.4's count in byte 0, 4.2's in byte 1, FIXT.1.1's in byte 2).
    if n_lines:
        present = np.add.reduceat(layout.required_lut[fk], first, dtype=np.uint32)
        short = np.zeros(n_lines, dtype=bool)
        for v in range(N_VERSIONS):
            counted = ((present >> np.uint32(8 * v)) & np.uint32(0xFF)) < layout.required[v].sum()
            short |= (version == v) & counted
    else:
        short = np.zeros(0, dtype=bool)
    missing = sound & is_execution & short

    reason = np.zeros(n_lines, dtype=np.int8)  # index into _REASONS; 0 = fine so far
    for mask, code_no in ((missing, 5), (bad_sum, 4), (bad_len, 3), (structural, 1)):
        reason[mask] = code_no  # later assignments win: structural first

    rejects = []
    for line in np.flatnonzero(reason > 0).tolist():
        reason_code = _REASONS[reason[line]]
        if reason_code == "fix_garbled":
            text = detail.get(line) or _garble_detail(
                bad_terminal[line], framing_ok[line], ok10[line], repeated[line], version[line])
        elif reason_code == "fix_bad_body_length":
            text = (f"BodyLength(9)={int(declared_len[line])} but the body is {int(actual_len[line])} bytes"
                    if len_ok[line] else "BodyLength(9) is not a number")
        elif reason_code == "fix_bad_checksum":
            text = (f"CheckSum(10)={int(declared_sum[line]):03d} but the bytes sum to {int(sums[line]):03d}"
                    if sum_ok[line] else "CheckSum(10) is not three digits")
        else:
            need = layout.required[int(version[line])]
            gone = need & (cell[:, line] < 0)
            names = [f"{layout.columns[t][0]}({t})" for t in layout.tags[gone].tolist()]
            text = "missing required tag(s) " + ", ".join(names)
        rejects.append((line, reason_code, text))

    rows = np.flatnonzero((reason == 0) & ~blank & ~other)
    scan = _Scan(n_lines=n_lines, lines_in=int(n_lines - blank.sum()), rows=rows, columns={}, rejects=rejects,
                 bad_enum={}, bad_type={}, skipped=skipped)
    if len(rows):
        latin1_rows = np.flatnonzero(not_utf8[rows]) if not_utf8.any() else None
        _extract(scan, buf, w8, cell if len(rows) == n_lines else cell[:, rows], version[rows], layout, latin1_rows)
    return scan


_PLANS: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray, tuple[int, int, int]]] = {}


def _plan(layout: _Layout) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[int, int, int]]:
    """``kernels.extract``'s plan for the landed columns: matrix row, kind and output slot of each, and
    how many views, date/times and decimals there are."""
    plan = _PLANS.get(id(layout))
    if plan is None:
        rows, kinds, slots, counts = [], [], [], [0, 0, 0]
        for c in layout.landed:
            if c.kind != "view":
                kind, group = (kernels.TIMESTAMP if c.kind == "timestamp" else kernels.DATE), 1
            elif c.fix_type in _DECIMAL_TYPES:
                kind, group = (kernels.DECIMAL_UNSIGNED if c.fix_type == "QTY" else kernels.DECIMAL_SIGNED), 2
            else:
                kind, group = kernels.VIEW, 0
            rows.append(c.index)
            kinds.append(kind)
            slots.append(counts[group])
            counts[group] += 1
        plan = _PLANS[id(layout)] = (np.array(rows, dtype=np.int64), np.array(kinds, dtype=np.int64),
                                     np.array(slots, dtype=np.int64), (counts[0], counts[1], counts[2]))
    return plan


def _extract(scan: _Scan, buf: np.ndarray, w8: np.ndarray, cell: np.ndarray, ver: np.ndarray,
             layout: _Layout, latin1_rows: np.ndarray | None = None) -> None:
    """The landed columns of the rows that passed the structural checks, with enum and type checks.

    ``latin1_rows``: rows with bytes that are not UTF-8; their text values that do not decode are
    nulled in the views and kept, decoded as Latin-1, in ``scan.latin1`` (filled in when typed).
    """
    columns, bad_enum, bad_type = scan.columns, scan.bad_enum, scan.bad_type
    views = _BEGIN_VIEWS[ver]
    columns["begin_string"] = ("view", views, None)
    version_offset = ver.astype(np.intp) * 256

    def text_of(i: int, vs: np.ndarray, length: np.ndarray) -> str:
        return repr(bytes(buf[vs[i]:vs[i] + length[i]]).decode("utf-8", "backslashreplace"))

    plan_row, plan_kind, plan_slot, counts = _plan(layout)
    view_out, time_out, time_bad, dec_out, dec_status = kernels.extract(
        buf, w8, np.ascontiguousarray(cell), plan_row, plan_kind, plan_slot, *counts)
    for c, slot in zip(layout.landed, plan_slot.tolist(), strict=True):
        packed = cell[c.index]
        vs = packed & 0xFFFFFFFF
        length = packed >> 32
        absent = None
        if length.min() <= 0:
            if length.min() < 0:
                absent = length < 0
                vs[absent] = 4  # any readable position: the value is masked out
                length[absent] = 0
            empty = length == 0 if absent is None else (length == 0) & ~absent
            for i in np.flatnonzero(empty).tolist():
                bad_type.setdefault(i, (c.order, f"{c.name}({c.tag}) is empty"))
        if c.kind != "view":
            values, wrong = time_out[slot], time_bad[slot]
            null = wrong if absent is None else absent | wrong
            if wrong.any():
                for i in np.flatnonzero(wrong).tolist():
                    bad_type.setdefault(i, (c.order, f"{c.name}({c.tag})={text_of(i, vs, length)} is not a {c.fix_type}"))
            columns[c.name] = (c.kind, values if c.kind == "timestamp" else values.astype(np.int32),
                               null if null.any() else None)
            continue
        if latin1_rows is not None:
            for i in latin1_rows.tolist():
                value = bytes(buf[vs[i]:vs[i] + length[i]])
                if (absent is None or not absent[i]) and max(value, default=0) >= 128:
                    try:
                        value.decode("utf-8")
                    except UnicodeDecodeError:
                        scan.latin1.setdefault(i, {})[c.name] = value.decode("latin-1")
                        if absent is None:
                            absent = np.zeros(len(vs), dtype=bool)
                        absent[i] = True  # never hand Arrow a string view that is not UTF-8
        if c.fix_type in _DECIMAL_TYPES:
            # Parsed here (so a worker types its share and no string views are needed); the rare
            # shape the kernel leaves to polars sends the whole column of this chunk to polars' cast.
            values, status = dec_out[slot], dec_status[slot]
            inexact = status == kernels.DEC_INEXACT
            to_polars = status == kernels.DEC_POLARS
            if absent is not None:
                inexact &= ~absent
                to_polars &= ~absent
            for i in np.flatnonzero(inexact).tolist():
                bad_type.setdefault(i, (c.order, f"{c.name}({c.tag})={text_of(i, vs, length)} is not an exact "
                                                 f"{c.fix_type} ({_EXACT_RULE[c.fix_type == 'QTY']})"))
            if not to_polars.any():
                columns[c.name] = ("decimal", values, absent)
                continue
            columns[c.name] = ("decimal_text", kernels.views(w8, vs, length), absent)
            continue
        views = view_out[slot]
        if c.enum is not None:
            wrong = _enum_wrong(c.enum, views, length, ver, version_offset, buf, vs)
            if absent is not None:
                wrong &= ~absent
            for i in np.flatnonzero(wrong).tolist():
                label = VERSIONS[int(ver[i])][1]
                bad_enum.setdefault(i, f"{c.name}({c.tag})={text_of(i, vs, length)} is not a valid {label} value")
        columns[c.name] = ("view", views, absent)


_EXACT_RULE = {False: "digits and a point, at most 10 decimals", True: "digits and a point, at most 10 decimals, "
                                                                      "not negative"}


def _enum_wrong(enum: _Enum, views: np.ndarray, length: np.ndarray, ver: np.ndarray, version_offset: np.ndarray,
                buf: np.ndarray, vs: np.ndarray) -> np.ndarray:
    """Rows whose value is not one of the tag's codes for the row's version (index into ``VERSIONS``)."""
    if enum.byte_table is not None:  # every code is one character: a table lookup on the first byte
        first_byte = ((views[:, 0] >> _U(32)) & _BYTE).astype(np.intp)
        wrong = ~enum.byte_table[version_offset + first_byte]
        if len(enum.words) == N_VERSIONS:
            checked = np.ones(len(ver), dtype=bool)
        else:
            checked = np.isin(ver, list(enum.words))
        return wrong | (checked & (length != 1))
    lo = (views[:, 0] >> _U(32)) | (views[:, 1] << _U(32))  # the value's first 8 bytes (if it has at most 8)
    wrong = np.zeros(len(ver), dtype=bool)
    for version_code, (words, as_bytes) in enum.words.items():
        found = np.minimum(np.searchsorted(words, lo), len(words) - 1)
        rows = (ver == version_code) & ((words[found] != lo) | (length > 8))
        for i in np.flatnonzero(rows & (length > 8)).tolist():  # long codes: compare bytes
            rows[i] = bytes(buf[vs[i]:vs[i] + length[i]]) not in as_bytes
        wrong |= rows
    return wrong


def _garble_detail(bad_terminal, framing_ok, ok10, repeated, version) -> str:
    if bad_terminal:
        return "last field is not SOH-terminated (truncated line)"
    if repeated:
        return "a tag is repeated"
    if not framing_ok:
        return "message does not start 8=,9=,35= and end 10= (truncated or out of order)"
    if not ok10:
        return "CheckSum(10) is not three digits"
    if version < 0:
        return "BeginString(8) is not FIX.4.4, FIX.4.2 or FIXT.1.1"
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
            schema["side_name"] = pl.String
            continue
        schema[name] = _typed(pl.Series([], dtype=pl.String), fix_type).dtype
    schema["latin1_decoded"] = pl.Boolean
    schema["_source_line"] = pl.Int64
    schema["_message_in_line"] = pl.Int64
    return schema


# --- two processes --------------------------------------------------------------------------------


def _shared_dir() -> str | None:
    return "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None


def _dump(scans: list[_Scan], path: str) -> None:
    """Scans to one file: a pickle whose numpy buffers follow it raw (protocol 5, out of band)."""
    buffers: list[pickle.PickleBuffer] = []
    meta = pickle.dumps(scans, protocol=5, buffer_callback=buffers.append)
    raws = [b.raw() for b in buffers]
    header = pickle.dumps((len(meta), [r.nbytes for r in raws]))
    with open(path, "wb") as fh:
        fh.write(len(header).to_bytes(8, "little"))
        fh.write(header)
        fh.write(meta)
        for r in raws:
            fh.write(bytes(-fh.tell() % 64))  # 64-byte aligned arrays
            fh.write(r)


def _load(path: str) -> list[_Scan]:
    """The scans written by ``_dump``, their arrays mapped from the file (no copy)."""
    with open(path, "rb") as fh:
        mapped = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    view = memoryview(mapped)
    size = int.from_bytes(view[:8], "little")
    meta_len, lengths = pickle.loads(view[8:8 + size])
    at = 8 + size
    meta = view[at:at + meta_len]
    at += meta_len
    buffers = []
    for length in lengths:
        at += -at % 64
        buffers.append(view[at:at + length])
        at += length
    return pickle.loads(meta, buffers=buffers)


def _scan_groups(data: bytes, bounds: list[tuple[int, int]], layout: _Layout, workers: int):
    """Scan every chunk, yielding ``(chunks, scans)`` per group of consecutive chunks, in file order.

    With ``workers`` > 1 the later groups are scanned by forked workers (numpy only there) while this
    process scans the first group; the caller types each group as it comes, so this process's share
    is typed while the workers still scan.
    """
    if workers <= 1 or len(bounds) < 2 or not hasattr(os, "fork"):
        yield bounds, [_scan_chunk(data, s, e, layout) for s, e in bounds]
        return
    # Contiguous groups of chunks: this process takes the first (a little smaller), workers the rest.
    cut_points = [len(data) * (_OWN_SHARE + (1 - _OWN_SHARE) * w / (workers - 1)) for w in range(workers - 1)]
    groups: list[list[tuple[int, int]]] = [[] for _ in range(workers)]
    for s, e in bounds:
        groups[sum(s >= c for c in cut_points)].append((s, e))
    children: dict[int, tuple[str, list[tuple[int, int]]]] = {}
    kernels.warm_up(layout.column_of_tag)
    try:
        for group in groups[1:]:
            if not group:
                continue
            fd, path = tempfile.mkstemp(prefix="northstar-fix-", suffix=".scan", dir=_shared_dir())
            os.close(fd)
            pid = os.fork()
            if pid == 0:  # worker: numpy and kernels only (polars' thread pool does not survive a fork)
                status = 1
                try:
                    _dump([_scan_chunk(data, s, e, layout) for s, e in group], path)
                    status = 0
                finally:
                    os._exit(status)
            children[pid] = (path, group)
        yield groups[0], [_scan_chunk(data, s, e, layout) for s, e in groups[0]]
        for pid, (path, group) in list(children.items()):
            _, status = os.waitpid(pid, 0)
            del children[pid]
            loaded = _load(path) if status == 0 else None
            os.unlink(path)
            if loaded is None:  # the worker failed: scan its share here
                loaded = [_scan_chunk(data, s, e, layout) for s, e in group]
            yield group, loaded
    finally:
        for pid, (path, _) in children.items():  # only if the caller stopped early
            os.waitpid(pid, 0)
            if os.path.exists(path):
                os.unlink(path)


# --- assembly -------------------------------------------------------------------------------------


def _line_text(data: bytes, start: int, end: int, line: int, cache: dict) -> bytes:
    """Line ``line`` (0-based) of the chunk ``data[start:end]``, without its newline or trailing CR."""
    newlines = cache.get(start)
    if newlines is None:
        newlines = cache[start] = start + np.flatnonzero(np.frombuffer(data, np.uint8, end - start, start) == NEWLINE)
    a = start if line == 0 else int(newlines[line - 1]) + 1
    b = int(newlines[line]) if line < len(newlines) else end
    return data[a:b].rstrip(b"\r")


_DECIMAL_ARROW = pa.decimal128(38, 10)


def _chunk_frame(scan: _Scan, chunk: pa.Buffer, line_base: int, layout: _Layout, row_base: int,
                 bad_type: dict[int, tuple[int, str]]) -> pl.DataFrame:
    """One chunk's scan as a frame. A decimal column the scan left as text (a shape it does not parse)
    is cast here by polars; a value that does not cast is a type fault of its row (``bad_type`` keeps
    the first faulty column per row, so the chunk's scan faults must be in it already)."""
    m = len(scan.rows)
    series = []
    for name, (kind, values, null) in scan.columns.items():
        validity = pa.py_buffer(np.packbits(~null, bitorder="little")) if null is not None else None
        if kind == "decimal_text":
            text = pl.from_arrow(pa.Array.from_buffers(pa.string_view(), m, [validity, pa.py_buffer(values), chunk]))
            c = next(c for c in layout.landed if c.name == name)
            typed = text.cast(DECIMAL, strict=False)
            if typed.null_count() != text.null_count():
                for i in (typed.is_null() & text.is_not_null()).arg_true().to_list():
                    row = row_base + i
                    if row not in bad_type or c.order < bad_type[row][0]:
                        bad_type[row] = (c.order, f"{c.name}({c.tag})={text[i]!r} is not a {c.fix_type}")
            series.append(typed.rename(name))
            continue
        if kind == "view":
            array = pa.Array.from_buffers(pa.string_view(), m, [validity, pa.py_buffer(values), chunk])
        elif kind == "decimal":
            array = pa.Array.from_buffers(_DECIMAL_ARROW, m, [validity, pa.py_buffer(values)])
        else:
            arrow_type = pa.timestamp("us", tz="UTC") if kind == "timestamp" else pa.date32()
            array = pa.Array.from_buffers(arrow_type, m, [validity, pa.py_buffer(values)])
        series.append(pl.from_arrow(array).rename(name))
    series.append(pl.Series("_source_line", scan.rows + (line_base + 1)))
    return pl.DataFrame(series)


def _typed_part(raw: pl.DataFrame, layout: _Layout, row_base: int, bad_type: dict[int, tuple[int, str]]):
    """Cast one part's integer columns (decimals were parsed in the scan, or cast per chunk); a value that
    does not cast is a type fault of its row (``bad_type`` keeps the first faulty column per row)."""
    casts = [c for c in layout.landed if c.fix_type in _INT_TYPES]
    typed = raw.with_columns(pl.col(c.name).cast(pl.Int64, strict=False) for c in casts)
    for c in casts:
        if typed[c.name].null_count() == raw[c.name].null_count():  # null counts are cached: cheap
            continue
        for i in (typed[c.name].is_null() & raw[c.name].is_not_null()).arg_true().to_list():
            row = row_base + i
            if row not in bad_type or c.order < bad_type[row][0]:
                bad_type[row] = (c.order, f"{c.name}({c.tag})={raw[c.name][i]!r} is not a {c.fix_type}")
    return typed


def parse_fix(data: bytes, chunk_bytes: int = DEFAULT_CHUNK_BYTES, workers: int | None = None,
              extra_required: tuple[int, ...] | frozenset[int] = ()) -> FixParseResult:
    """Validate and parse a whole drop-copy file's bytes (FIX 4.4, 4.2 and FIXT.1.1 messages may be mixed).

    A file with one SOH-delimited message per line (what a drop copy should be) is scanned as it is.
    Anything else a broker's log looks like (a timestamp or session prefix before each message, ``|``,
    ``;`` or ``^A`` for SOH, several messages on a line) is first framed by ``ingest.fix.framing``: each
    message found from ``8=FIX`` to ``10=NNN``, its delimiter turned into SOH, then scanned the same way
    (BodyLength and CheckSum are checked on those SOH bytes). Messages other than ExecutionReports are
    skipped and counted by MsgType. ``extra_required``: tags a broker's rules of engagement require on
    top of the standard's (from its dialect).

    ``workers``: processes scanning the file (default: two from ``PARALLEL_MIN_BYTES`` up, else one).
    The result does not depend on ``workers`` or ``chunk_bytes``.
    """
    from ingest.fix import framing  # the fast path never needs it

    layout = _get_layout(frozenset(extra_required))
    if data.startswith(framing.BOM):  # a byte-order mark is not part of the first message
        data = b"   " + data[len(framing.BOM):]  # same length: offsets and line numbers stay put
    delimiter = framing.detect_delimiter(data)
    if delimiter in (framing.SOH, None):  # None: no message at all; every line is garbled as it stands
        result = _parse_lines(data, chunk_bytes, workers, layout)
        if delimiter is None or not framing.needs_framing(result.rejects):
            if delimiter is not None:
                framing.explain_other_delimiters(result.rejects, delimiter)
            return result
    framed = framing.frame(data, delimiter)
    result = _parse_lines(framed.data, chunk_bytes, workers, layout)
    return framing.to_delivered_lines(result, framed)


def _parse_lines(data: bytes, chunk_bytes: int, workers: int | None, layout: _Layout) -> FixParseResult:
    """One SOH-delimited message per line (blank lines allowed) to the typed table, rejects and counts."""
    bounds = _chunks(data, chunk_bytes)
    if workers is None:
        workers = min(DEFAULT_WORKERS, os.cpu_count() or 1) if len(data) >= PARALLEL_MIN_BYTES else 1

    whole = pa.py_buffer(data)
    parts, rejects, lines_in, line_base, row_base = [], [], 0, 0, 0
    bad_enum: dict[int, str] = {}
    bad_type: dict[int, tuple[int, str]] = {}
    latin1: dict[int, dict[str, str]] = {}
    skipped: dict[str, int] = {}
    row_chunk = []  # (first row, chunk, first line) per chunk with rows, to find a rejected row's line
    texts: dict = {}
    groups = _scan_groups(data, bounds, layout, workers)
    try:
        for group, scans in groups:
            frames, part_base = [], row_base
            for (start, end), scan in zip(group, scans, strict=True):
                for line, reason_code, text in scan.rejects:
                    raw = _line_text(data, start, end, line, texts)
                    rejects.append(FixReject(line_base + line + 1, raw, reason_code, text))
                for msg_type, count in scan.skipped.items():
                    skipped[msg_type] = skipped.get(msg_type, 0) + count
                if len(scan.rows):
                    bad_enum.update((row_base + i, t) for i, t in scan.bad_enum.items())
                    bad_type.update((row_base + i, t) for i, t in scan.bad_type.items())
                    frames.append(_chunk_frame(scan, whole.slice(start, end - start), line_base, layout, row_base,
                                               bad_type))
                    latin1.update((row_base + i, t) for i, t in scan.latin1.items())
                    row_chunk.append((row_base, (start, end), line_base))
                    row_base += len(scan.rows)
                lines_in += scan.lines_in
                line_base += scan.n_lines
            if frames:
                parts.append(_typed_part(pl.concat(frames, how="vertical"), layout, part_base, bad_type))
    finally:
        groups.close()

    schema = output_schema()
    empty = pl.DataFrame(schema=schema)
    if not parts:
        rejects.sort(key=lambda r: r.line_number)
        return FixParseResult(executions=empty, rejects=rejects, lines_in=lines_in, skipped=skipped)
    executions = pl.concat(parts, how="vertical")
    if latin1:
        executions = _with_latin1(executions, latin1)
    else:
        executions = executions.with_columns(pl.lit(False).alias("latin1_decoded"))
    late = set(bad_enum) | set(bad_type)
    if late:
        lines = executions["_source_line"]
        starts = [r for r, _, _ in row_chunk]
        for i in sorted(late):
            _, chunk, base = row_chunk[int(np.searchsorted(starts, i, side="right")) - 1]
            line = int(lines[i])
            reason_code, text = ("fix_bad_enum", bad_enum[i]) if i in bad_enum else ("fix_garbled", bad_type[i][1])
            rejects.append(FixReject(line, _line_text(data, *chunk, line - base - 1, texts), reason_code, text))
        keep = np.ones(executions.height, dtype=bool)
        keep[list(late)] = False
        executions = executions.filter(pl.Series(keep))
    rejects.sort(key=lambda r: r.line_number)
    if not executions.height:
        return FixParseResult(executions=empty, rejects=rejects, lines_in=lines_in, skipped=skipped)
    names = dictionary.enum_names(54)
    executions = executions.rename({"side": "side_code"}).with_columns(
        pl.col("side_code").replace_strict(SIDE_DIRECTIONS, default=pl.col("side_code").replace_strict(
            names, default=None, return_dtype=pl.String), return_dtype=pl.String).alias("side"),
        pl.col("side_code").replace_strict(names, default=None, return_dtype=pl.String).alias("side_name"),
        pl.lit(1, dtype=pl.Int64).alias("_message_in_line"),
    )
    return FixParseResult(executions=executions.select(list(schema)), rejects=rejects, lines_in=lines_in,
                          skipped=skipped)


def _with_latin1(executions: pl.DataFrame, latin1: dict[int, dict[str, str]]) -> pl.DataFrame:
    """Fill in the text values that were not UTF-8 (decoded as Latin-1) and flag their rows."""
    updates = []
    for name in sorted({c for values in latin1.values() for c in values}):
        rows = sorted(r for r, values in latin1.items() if name in values)
        column = executions[name].cast(pl.String).scatter(
            pl.Series(rows, dtype=pl.UInt32), pl.Series([latin1[r][name] for r in rows], dtype=pl.String))
        updates.append(column.alias(name))
    flag = np.zeros(executions.height, dtype=bool)
    flag[sorted(latin1)] = True
    return executions.with_columns(*updates, pl.Series("latin1_decoded", flag))
