"""Vectorised FIX 4.4 / 4.2 / FIXT.1.1 drop-copy parsing and validation: one file's bytes to a typed table.

A drop copy is one message per line, fields ``tag=value`` separated by SOH. Nothing here loops over
messages in Python. The file is cut at line boundaries into chunks of a few MB, and each chunk is read
by one compiled pass (``kernels.scan``, numba) that takes each line once, while its bytes are in cache:

- SOH and newline bytes are found 8 at a time (a word compare, then the set bits), each field's tag is
  decoded from its first bytes as it ends, and its value's start and length kept per column (a
  64-bit mask of the columns seen also finds a repeated tag);
- the line's framing (8, 9, 35 first, a 3-digit 10= last), BeginString, BodyLength (a difference of
  positions), CheckSum (the bytes summed 8 at a time), MsgType and required tags (one count per
  version, summed as the fields go) are checked;
- a line that passes is a row: every landed column is written at once, text values as 16-byte Arrow
  ``string_view`` entries pointing into the file's buffer (no string copies), dates and times checked
  and decoded, decimals checked for exactness and parsed to DECIMAL(38, 10), integers parsed, enums
  checked (a 256-entry table per version for one-character codes, a binary search on 8-byte words for
  longer ones). Per row the first value outside its enum and the first value of the wrong type are
  kept (the row is rejected with them at the end).

The kernel leaves to Python only what is rare: the text of a rejected line and its reason, the MsgType
of a skipped message, and the values it does not read itself (non-ASCII text: UTF-8, or Latin-1 kept and
flagged; a decimal shape such as ``5.`` or more than 8 integer digits and an integer shape other than
plain digits, cast by polars as before; an enum code longer than 8 bytes).

The kernel releases the GIL, so a large file (from ``PARALLEL_MIN_BYTES``) is cut into two *segments*
of consecutive chunks scanned by two threads, each into its own arrays (no copies, no hand-over); a
segment's arrays become Arrow arrays over the file's bytes and the two frames are concatenated.

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
from concurrent.futures import ThreadPoolExecutor
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
# Files from this size up are scanned by two threads (small files don't gain).
PARALLEL_MIN_BYTES = 24 * 1024 * 1024
DEFAULT_WORKERS = 2

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
# begin_string values as inline string views, by version index
_BEGIN_VIEWS = np.array([[len(s) | int.from_bytes(s[:4], "little") << 32, int.from_bytes(s[4:], "little")]
                         for s, _ in VERSIONS], dtype=np.uint64)
SLACK = 32  # bytes readable past a chunk's end (padding for fixed-width windows)
# A segment's string views point into it with 32-bit offsets: a larger file is cut into more segments.
_MAX_SEGMENT_BYTES = 1 << 31
# A segment's arrays start with room for a row per this many bytes (drop-copy lines are 200-400 bytes),
# and grow (the chunk that did not fit is scanned again) when a file has more.
_ROW_BYTES_GUESS = 200
_EXACT_RULE = {False: "digits and a point, at most 10 decimals", True: "digits and a point, at most 10 decimals, "
                                                                      "not negative"}


@dataclass(frozen=True)
class _Tables:
    """The layout as ``kernels.scan``'s arguments: the plan of landed columns and the enum tables."""

    column_of_tag: np.ndarray
    big_tags: np.ndarray  # tags of 4+ digits that are columns (e.g. ApplVerID 1128), and their columns
    big_cols: np.ndarray
    framing_cols: np.ndarray  # columns of tags 8, 9, 35, 10
    required_lut: np.ndarray
    required_count: np.ndarray  # per version
    kind: np.ndarray  # per landed column (plan order = column order)
    row: np.ndarray
    slot: np.ndarray
    enum: np.ndarray  # index into the enum tables, -1: none
    enum_mode: np.ndarray  # (enums, versions): kernels.ENUM_*
    enum_byte: np.ndarray  # (enums, versions, 256) uint8: the one-byte codes
    enum_lo: np.ndarray  # (enums, versions): the version's sorted 8-byte codes are enum_words[lo:hi]
    enum_hi: np.ndarray
    enum_words: np.ndarray
    enum_bytes: list[dict[int, frozenset[bytes]]]  # per enum: version -> every code as bytes
    counts: tuple[int, int, int, int]  # views, dates/times, decimals, integers


_TABLES: dict[int, _Tables] = {}


def _tables(layout: _Layout) -> _Tables:
    tables = _TABLES.get(id(layout))
    if tables is not None:
        return tables
    if len(layout.tags) > 64:
        raise ValueError("the FIX scan keeps a line's tags in a 64-bit mask: at most 64 columns")
    kinds, rows, slots, enums, counts = [], [], [], [], [0, 0, 0, 0]
    modes, byte_tables, words, bounds, as_bytes = [], [], [], [], []
    for c in layout.landed:
        if c.kind != "view":
            kind, group = (kernels.TIMESTAMP if c.kind == "timestamp" else kernels.DATE), 1
        elif c.fix_type in _DECIMAL_TYPES:
            kind, group = (kernels.DECIMAL_UNSIGNED if c.fix_type == "QTY" else kernels.DECIMAL_SIGNED), 2
        elif c.fix_type in _INT_TYPES:
            kind, group = kernels.INTEGER, 3
        else:
            kind, group = kernels.VIEW, 0
        kinds.append(kind)
        rows.append(c.index)
        slots.append(counts[group])
        counts[group] += 1
        if c.enum is None or kind != kernels.VIEW:
            enums.append(-1)
            continue
        enums.append(len(modes))
        mode = np.full(N_VERSIONS, kernels.ENUM_UNCHECKED, dtype=np.int8)
        byte_table = np.zeros((N_VERSIONS, 256), dtype=np.uint8)
        lo_hi = np.zeros((2, N_VERSIONS), dtype=np.int64)
        for v, (version_words, _) in c.enum.words.items():
            if c.enum.byte_table is not None:
                mode[v] = kernels.ENUM_BYTE
                byte_table[v] = c.enum.byte_table[v * 256:(v + 1) * 256]
            else:
                mode[v] = kernels.ENUM_WORDS
            at = sum(len(w) for w in words)
            lo_hi[:, v] = at, at + len(version_words)
            words.append(version_words)
        modes.append(mode)
        byte_tables.append(byte_table)
        bounds.append(lo_hi)
        as_bytes.append({v: codes for v, (_, codes) in c.enum.words.items()})
    big = sorted((t, i) for t, i in layout.col.items() if t >= 1000)
    n_enums = len(modes)
    tables = _TABLES[id(layout)] = _Tables(
        column_of_tag=layout.column_of_tag,
        big_tags=np.array([t for t, _ in big], dtype=np.int64), big_cols=np.array([i for _, i in big], dtype=np.int64),
        framing_cols=np.array([layout.col[8], layout.col[9], layout.col[35], layout.col[10]], dtype=np.int64),
        required_lut=layout.required_lut,
        required_count=np.array([int(layout.required[v].sum()) for v in range(N_VERSIONS)], dtype=np.int64),
        kind=np.array(kinds, dtype=np.int64), row=np.array(rows, dtype=np.int64),
        slot=np.array(slots, dtype=np.int64), enum=np.array(enums, dtype=np.int64),
        enum_mode=np.array(modes, dtype=np.int8).reshape(n_enums, N_VERSIONS),
        enum_byte=np.array(byte_tables, dtype=np.uint8).reshape(n_enums, N_VERSIONS, 256),
        enum_lo=np.array([b[0] for b in bounds], dtype=np.int64).reshape(n_enums, N_VERSIONS),
        enum_hi=np.array([b[1] for b in bounds], dtype=np.int64).reshape(n_enums, N_VERSIONS),
        enum_words=np.concatenate(words) if words else np.zeros(0, dtype=np.uint64),
        enum_bytes=as_bytes, counts=(counts[0], counts[1], counts[2], counts[3]))
    return tables


def _rows_array(shape: tuple[int, ...], dtype) -> np.ndarray:
    """An uninitialised array (the kernel writes every slot of a row) in its own anonymous mapping, so in
    plain pages touched only as rows are written. numpy's ``empty`` asks for transparent huge pages for
    large arrays, and on a machine whose memory is fragmented each of those faults can wait for the
    kernel to compact memory: 500 MB measured 1.2 s that way, 0.19 s in plain pages, here."""
    dtype = np.dtype(dtype)
    size = int(np.prod(shape)) * dtype.itemsize
    if size < 1 << 20 or not hasattr(mmap, "MAP_ANONYMOUS"):
        return np.empty(shape, dtype=dtype)
    mapped = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    return np.frombuffer(mapped, dtype=dtype).reshape(shape)


class _Segment:
    """A run of consecutive chunks scanned by one thread: its rows' columns (string views into the
    segment's bytes), and per row its line, version and first enum / type fault."""

    # per-row arrays with rows on axis 0, then those with a leading column axis (rows on axis 1)
    _BY_ROW = ("row_line", "row_pos", "row_ver", "begin", "enum_fault", "type_fault")
    _BY_COLUMN = ("views", "times", "decimals", "ints", "valid")

    def __init__(self, start: int, end: int, tables: _Tables, capacity: int):
        self.start, self.end, self.tables = start, end, tables
        self.rows = self.lines = self.lines_in = 0
        self.rejects: list[tuple[int, bytes, str, str]] = []  # (line in the segment, raw, reason, detail)
        self.skipped: dict[str, int] = {}
        self.latin1: dict[int, dict[str, str]] = {}  # row -> column -> Latin-1 text
        self.capacity = 0
        self._allocate(capacity)

    def _allocate(self, capacity: int) -> None:
        """Arrays for ``capacity`` rows, keeping the rows so far (``_rows_array``: filled as rows come)."""
        n_views, n_times, n_decimals, n_ints = self.tables.counts
        shapes = {"row_line": ((capacity,), np.int64), "row_pos": ((capacity,), np.int64),
                  "row_ver": ((capacity,), np.int8), "begin": ((capacity, 2), np.uint64),
                  "enum_fault": ((capacity,), np.int8), "type_fault": ((capacity,), np.int16),
                  "views": ((n_views, capacity, 2), np.uint64), "times": ((n_times, capacity), np.int64),
                  "decimals": ((n_decimals, capacity, 2), np.int64), "ints": ((n_ints, capacity), np.int64),
                  "valid": ((len(self.tables.kind), capacity), np.uint8)}
        m = self.rows
        for name, (shape, dtype) in shapes.items():
            array = _rows_array(shape, dtype)
            if self.capacity:
                if name in self._BY_ROW:
                    array[:m] = getattr(self, name)[:m]
                else:
                    array[:, :m] = getattr(self, name)[:, :m]
            setattr(self, name, array)
        self.capacity = capacity

    def scan(self, data: bytes, start: int, end: int, layout: _Layout) -> None:
        """Scan the chunk ``data[start:end]`` (whole lines) into this segment."""
        n = end - start
        if end + SLACK <= len(data):
            buf = np.frombuffer(data, dtype=np.uint8, count=n + SLACK, offset=start)
        else:
            buf = np.concatenate([np.frombuffer(data, dtype=np.uint8, count=n, offset=start),
                                  np.zeros(SLACK, dtype=np.uint8)])
            buf.flags.writeable = False  # the kernel's argument types stay those of the file's bytes
        w8 = kernels.words(buf)
        close = n > 0 and data[end - 1] != NEWLINE
        t = self.tables
        while True:
            out = kernels.scan(
                buf, w8, n, close, t.column_of_tag, t.big_tags, t.big_cols, len(layout.tags), t.framing_cols,
                t.required_lut, t.required_count, t.kind, t.row, t.slot, t.enum, t.enum_mode, t.enum_byte,
                t.enum_lo, t.enum_hi, t.enum_words, _BEGIN_VIEWS, start - self.start, start, self.lines, self.rows,
                self.row_line, self.row_pos, self.row_ver, self.begin, self.views, self.times, self.decimals,
                self.ints, self.valid, self.enum_fault, self.type_fault)
            if out[0] == 0:
                break
            self._allocate(max(2 * self.capacity, self.rows + n // 16 + 64))  # out of rows: grow, redo the chunk
        (_, rows, n_lines, n_blank, ev_line, ev_pos, ev_kind, ev_flags, ev_a, ev_b, ev_mask, ev_ver,
         df_row, df_col, df_kind, df_p, df_n) = out
        if len(ev_line):
            self._events(data, start, end, layout, ev_line.tolist(), ev_pos.tolist(), ev_kind.tolist(),
                         ev_flags.tolist(), ev_a.tolist(), ev_b.tolist(), ev_mask.tolist(), ev_ver.tolist())
        if len(df_row):
            self._deferred(data, start, layout, df_row.tolist(), df_col.tolist(), df_kind.tolist(),
                           (df_p + start).tolist(), df_n.tolist())
        self.rows += rows
        self.lines += n_lines
        self.lines_in += n_lines - n_blank

    def _events(self, data, start, end, layout, lines, positions, kinds, flags, a, b, masks, versions) -> None:
        """The chunk's lines that are not rows: skipped ones counted by MsgType, the others rejected."""
        for line, pos, kind, flag, ea, eb, mask, ver in zip(lines, positions, kinds, flags, a, b, masks, versions,
                                                            strict=True):
            if kind == kernels.LINE_SKIPPED:
                msg_type = data[start + ea:start + eb].decode("latin-1")
                self.skipped[msg_type] = self.skipped.get(msg_type, 0) + 1
                continue
            if kind == kernels.LINE_GARBLED:
                if flag & kernels.GARBLE_FIELD:
                    text = f"field {data[start + ea:start + eb][:24]!r} is not tag=value"
                else:
                    text = _garble_detail(flag & kernels.GARBLE_TERMINAL, not flag & kernels.GARBLE_FRAMING,
                                          not flag & kernels.GARBLE_TRAILER, flag & kernels.GARBLE_REPEATED,
                                          -1 if flag & kernels.GARBLE_VERSION else 0)
            elif kind == kernels.LINE_BAD_LENGTH:
                text = f"BodyLength(9)={ea} but the body is {eb} bytes" if flag else "BodyLength(9) is not a number"
            elif kind == kernels.LINE_BAD_CHECKSUM:
                text = (f"CheckSum(10)={ea:03d} but the bytes sum to {eb:03d}" if flag
                        else "CheckSum(10) is not three digits")
            else:
                need = layout.required[ver]
                names = [f"{layout.columns[int(tag)][0]}({int(tag)})" for index, tag in enumerate(layout.tags)
                         if need[index] and not mask >> index & 1]
                text = "missing required tag(s) " + ", ".join(names)
            nl = data.find(b"\n", start + pos, end)
            raw = data[start + pos:end if nl < 0 else nl].rstrip(b"\r")
            self.rejects.append((self.lines + line, raw, _REASONS[kind], text))

    def _deferred(self, data, start, layout, rows, cols, kinds, positions, lengths) -> None:
        """The values the kernel left to Python: non-ASCII text (UTF-8, or Latin-1 kept and flagged),
        decimal and integer shapes polars casts, enum codes longer than 8 bytes."""
        t = self.tables
        to_cast: dict[int, tuple[list[int], list[str]]] = {}  # plan column -> (rows, texts) for polars
        for r, j, kind, p, m in zip(rows, cols, kinds, positions, lengths, strict=True):
            c = layout.landed[j]
            value = data[p:p + m]
            if kind == kernels.DEFER_LONG_ENUM:
                if value not in t.enum_bytes[t.enum[j]][int(self.row_ver[r])]:
                    self.enum_fault[r] = min(int(self.enum_fault[r]), j)
                continue
            if kind == kernels.DEFER_HIGH:
                try:
                    text = value.decode("utf-8")
                except UnicodeDecodeError:  # kept as Latin-1 text, the column NULL, the row flagged
                    self.latin1.setdefault(r, {})[c.name] = value.decode("latin-1")
                    continue
                column_kind = t.kind[j]
                if column_kind == kernels.VIEW:
                    self.valid[j, r] = 1
                    e = t.enum[j]
                    if e >= 0:
                        codes = t.enum_bytes[e].get(int(self.row_ver[r]))
                        if codes is not None and value not in codes:
                            self.enum_fault[r] = min(int(self.enum_fault[r]), j)
                    continue
                if column_kind != kernels.INTEGER:  # a decimal with a non-digit byte
                    self.type_fault[r] = min(int(self.type_fault[r]), j * 4 + kernels.FAULT_INEXACT)
                    continue
            else:
                text = value.decode("ascii")
            rows_texts = to_cast.setdefault(j, ([], []))
            rows_texts[0].append(r)
            rows_texts[1].append(text)
        for j, (cast_rows, texts) in to_cast.items():
            integer = t.kind[j] == kernels.INTEGER
            values = pl.Series(texts, dtype=pl.String).cast(pl.Int64 if integer else DECIMAL, strict=False).to_list()
            slot = t.slot[j]
            for r, value in zip(cast_rows, values, strict=True):
                if value is None:
                    self.type_fault[r] = min(int(self.type_fault[r]), j * 4 + kernels.FAULT_TYPE)
                    continue
                self.valid[j, r] = 1
                if integer:
                    self.ints[slot, r] = value
                else:
                    unscaled = int(value.scaleb(10))
                    low = unscaled & 0xFFFF_FFFF_FFFF_FFFF
                    self.decimals[slot, r, 0] = low - (1 << 64) if low >= 1 << 63 else low
                    self.decimals[slot, r, 1] = unscaled >> 64

    def finish(self, data: pa.Buffer, layout: _Layout) -> None:
        """After the scan, in its thread: the rows with a late fault (``faulty``), the rows as a frame
        (``raw``) and, unless a value was kept as Latin-1 (the table is then finished as a whole), the
        finished frame (``done``; ``None`` when no row is left)."""
        m = self.rows
        self.faulty = np.flatnonzero((self.enum_fault[:m] != kernels.NO_ENUM_FAULT)
                                     | (self.type_fault[:m] != kernels.NO_TYPE_FAULT))
        self.raw = self.frame(data, layout) if m else None
        self.done = _finish(self.raw, layout, {}, self.faulty) if m and not self.latin1 else None

    def frame(self, data: pa.Buffer, layout: _Layout) -> pl.DataFrame:
        """The segment's rows as a frame over the file's bytes (no copies of the text); ``_source_line``
        counts the segment's lines from 1."""
        m = self.rows
        seg = data.slice(self.start, self.end - self.start)
        t = self.tables
        series = [pl.from_arrow(pa.Array.from_buffers(pa.string_view(), m, [None, pa.py_buffer(self.begin[:m]), seg]))
                  .rename("begin_string")]
        for j, c in enumerate(layout.landed):
            valid = self.valid[j, :m]
            validity = None if valid.all() else pa.py_buffer(np.packbits(valid, bitorder="little"))
            kind, slot = t.kind[j], t.slot[j]
            if kind == kernels.VIEW:
                array = pa.Array.from_buffers(pa.string_view(), m, [validity, pa.py_buffer(self.views[slot, :m]), seg])
            elif kind == kernels.TIMESTAMP:
                array = pa.Array.from_buffers(_TIMESTAMP_ARROW, m, [validity, pa.py_buffer(self.times[slot, :m])])
            elif kind == kernels.DATE:
                array = pa.Array.from_buffers(pa.date32(), m,
                                              [validity, pa.py_buffer(self.times[slot, :m].astype(np.int32))])
            elif kind == kernels.INTEGER:
                array = pa.Array.from_buffers(pa.int64(), m, [validity, pa.py_buffer(self.ints[slot, :m])])
            else:
                array = pa.Array.from_buffers(_DECIMAL_ARROW, m, [validity, pa.py_buffer(self.decimals[slot, :m])])
            series.append(pl.from_arrow(array).rename(c.name))
        series.append(pl.Series("_source_line", self.row_line[:m] + 1))
        return pl.DataFrame(series)


_DECIMAL_ARROW = pa.decimal128(38, 10)
_TIMESTAMP_ARROW = pa.timestamp("us", tz="UTC")


def _segments(bounds: list[tuple[int, int]], size: int, workers: int) -> list[list[tuple[int, int]]]:
    """Consecutive chunks in ``workers`` runs of about equal bytes (more if one would pass 2 GB)."""
    parts = max(workers, -(-size // _MAX_SEGMENT_BYTES))
    groups: list[list[tuple[int, int]]] = [[]]
    for s, e in bounds:
        if groups[-1] and (s >= size * len(groups) / parts or e - groups[-1][0][0] > _MAX_SEGMENT_BYTES):
            groups.append([])
        groups[-1].append((s, e))
    return groups


def _scan_segment(data: bytes, chunks: list[tuple[int, int]], layout: _Layout) -> _Segment:
    start, end = chunks[0][0], chunks[-1][1]
    segment = _Segment(start, end, _tables(layout), (end - start) // _ROW_BYTES_GUESS + 16)
    for s, e in chunks:
        segment.scan(data, s, e, layout)
    return segment


def _value_in_line(raw: bytes, tag: int) -> bytes:
    """The value of ``tag`` in a sound message's line (every field ``tag=value``, no tag repeated)."""
    for item in raw.split(b"\x01"):
        tag_text, _, value = item.partition(b"=")
        if tag_text.isdigit() and int(tag_text) == tag:
            return value
    raise ValueError(f"tag {tag} not in line")


def _late_detail(layout: _Layout, raw: bytes, version: int, enum_fault: int, type_fault: int) -> tuple[str, str]:
    """(reason, detail) of a row with a value outside its enum or of the wrong type."""
    if enum_fault != kernels.NO_ENUM_FAULT:
        c = layout.landed[enum_fault]
        text = repr(_value_in_line(raw, c.tag).decode("utf-8", "backslashreplace"))
        return "fix_bad_enum", f"{c.name}({c.tag})={text} is not a valid {VERSIONS[version][1]} value"
    c = layout.landed[type_fault // 4]
    kind = type_fault % 4
    if kind == kernels.FAULT_EMPTY:
        return "fix_garbled", f"{c.name}({c.tag}) is empty"
    text = repr(_value_in_line(raw, c.tag).decode("utf-8", "backslashreplace"))
    if kind == kernels.FAULT_INEXACT:
        return "fix_garbled", (f"{c.name}({c.tag})={text} is not an exact {c.fix_type} "
                               f"({_EXACT_RULE[c.fix_type == 'QTY']})")
    return "fix_garbled", f"{c.name}({c.tag})={text} is not a {c.fix_type}"


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
    groups = _segments(bounds, len(data), workers) if bounds else []
    whole = pa.py_buffer(data)

    def scanned(chunks: list[tuple[int, int]]) -> _Segment:
        segment = _scan_segment(data, chunks, layout)
        segment.finish(whole, layout)  # in the scanning thread too: only the concatenation is left
        return segment

    if workers > 1 and len(groups) > 1:
        kernels.warm_up(_tables(layout))  # load the kernel once, not in every thread
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fix-scan") as pool:
            segments = list(pool.map(scanned, groups))
    else:
        segments = [scanned(chunks) for chunks in groups]

    raw_parts, done_parts, rejects, skipped, latin1, late_rows = [], [], [], {}, {}, []
    lines_in = line_offset = row_offset = 0
    for segment in segments:
        rejects.extend(FixReject(line_offset + line + 1, raw, reason, text)
                       for line, raw, reason, text in segment.rejects)
        for msg_type, count in segment.skipped.items():
            skipped[msg_type] = skipped.get(msg_type, 0) + count
        for r in segment.faulty.tolist():
            pos = int(segment.row_pos[r])
            nl = data.find(b"\n", pos)
            raw = data[pos:len(data) if nl < 0 else nl].rstrip(b"\r")
            reason, text = _late_detail(layout, raw, int(segment.row_ver[r]), int(segment.enum_fault[r]),
                                        int(segment.type_fault[r]))
            rejects.append(FixReject(line_offset + int(segment.row_line[r]) + 1, raw, reason, text))
        if segment.rows:
            raw_parts.append(_shifted(segment.raw, line_offset))
            if segment.done is not None:
                done_parts.append(_shifted(segment.done, line_offset))
            latin1.update((row_offset + r, values) for r, values in segment.latin1.items())
            late_rows.append(segment.faulty + row_offset)
        lines_in += segment.lines_in
        line_offset += segment.lines
        row_offset += segment.rows
    rejects.sort(key=lambda r: r.line_number)

    if latin1:  # a column with Latin-1 text becomes text in every segment: finished as one table
        executions = _finish(pl.concat(raw_parts, how="vertical"), layout, latin1, np.concatenate(late_rows))
    else:
        executions = pl.concat(done_parts, how="vertical") if done_parts else None
    if executions is None or not executions.height:
        executions = pl.DataFrame(schema=output_schema())
    return FixParseResult(executions=executions, rejects=rejects, lines_in=lines_in, skipped=skipped)


def _shifted(frame: pl.DataFrame, line_offset: int) -> pl.DataFrame:
    """A segment's frame with its line numbers counted from the file's start."""
    return frame.with_columns(pl.col("_source_line") + line_offset) if line_offset else frame


def _finish(executions: pl.DataFrame, layout: _Layout, latin1: dict[int, dict[str, str]],
            late: np.ndarray) -> pl.DataFrame | None:
    """Rows to the output table: Latin-1 text filled in and flagged, the rows with a late fault dropped
    (``late``: their positions), side direction and name; ``None`` when no row is left."""
    if latin1:
        executions = _with_latin1(executions, latin1)
    else:
        executions = executions.with_columns(pl.lit(False).alias("latin1_decoded"))
    if len(late):
        keep = np.ones(executions.height, dtype=bool)
        keep[late] = False
        executions = executions.filter(pl.Series(keep))
    if not executions.height:
        return None
    names = dictionary.enum_names(54)
    executions = executions.rename({"side": "side_code"}).with_columns(
        pl.col("side_code").replace_strict(SIDE_DIRECTIONS, default=pl.col("side_code").replace_strict(
            names, default=None, return_dtype=pl.String), return_dtype=pl.String).alias("side"),
        pl.col("side_code").replace_strict(names, default=None, return_dtype=pl.String).alias("side_name"),
        pl.lit(1, dtype=pl.Int64).alias("_message_in_line"),
    )
    return executions.select(list(output_schema()))


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
