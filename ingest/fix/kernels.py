"""Compiled (numba) loops for the FIX parser: ``scan`` reads a chunk of lines in one pass (framing,
BodyLength, CheckSum, MsgType, required tags, and every landed column of a row, enums and types checked),
and the per-value readers it uses (string views, dates and times, exact decimals), which the tests
also call directly and compare with Python's ``datetime``, ``Decimal`` and polars' cast.

Compiled on first use and cached beside this file (``cache=True``), so a fresh process pays a few
hundred ms to load them, not a compile. Every kernel releases the GIL (``nogil``): the parser runs
``scan`` on two threads.
"""

from __future__ import annotations

import numpy as np
from numba import njit
from numba.cpython.unsafe.numbers import trailing_zeros

# Decimal status per value: parsed here / not an exact decimal (a type fault) / let polars cast it
# (the rare shapes whose polars reading this module does not reproduce: no digits, a bare point, a
# value too large for 64 bits once scaled).
DEC_OK, DEC_INEXACT, DEC_POLARS = 0, 1, 2
SCALE = 10  # the landing scale: DECIMAL(38, 10)


@njit(cache=True, nogil=True, inline="always")
def _is_digit(b):
    return 48 <= b <= 57


@njit(cache=True, nogil=True)
def _days_from_civil(y, m, d):
    if m <= 2:
        y -= 1
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


@njit(cache=True, nogil=True, inline="always")
def _low_bytes(word, k):
    """The low ``k`` (0-8) bytes of a 64-bit word."""
    if k >= 8:
        return word
    return word & ((np.uint64(1) << np.uint64(8 * k)) - np.uint64(1))


@njit(cache=True, nogil=True, inline="always")
def _view(w8, p, n):
    """One 16-byte Arrow ``string_view`` for the ``n`` bytes at ``p`` (buffer 0 = the chunk) as two
    words: up to 12 bytes inline (zero padded), else a 4-byte prefix, buffer index 0 and the offset.
    ``w8[q]``: the 8 bytes at ``q`` as a little-endian word."""
    w0 = np.uint64(n) | (_low_bytes(w8[p], min(n, 4)) << np.uint64(32))
    if n > 12:
        return w0, np.uint64(p) << np.uint64(32)
    if n <= 4:
        return w0, np.uint64(0)
    return w0, _low_bytes(w8[p + 4], n - 4)


@njit(cache=True, nogil=True, inline="always")
def _date_time(buf, p, n, with_time):
    """FIX ``YYYYMMDD`` or ``YYYYMMDD-HH:MM:SS[.sss|.ssssss]`` at ``buf[p:p+n]`` -> (days or epoch
    micros, bad)."""
    ok = True
    for j in range(8):
        if not _is_digit(buf[p + j]):
            ok = False
    year = (buf[p] & 15) * 1000 + (buf[p + 1] & 15) * 100 + (buf[p + 2] & 15) * 10 + (buf[p + 3] & 15)
    month = (buf[p + 4] & 15) * 10 + (buf[p + 5] & 15)
    day = (buf[p + 6] & 15) * 10 + (buf[p + 7] & 15)
    leap = (year % 4 == 0) and ((year % 100 != 0) or (year % 400 == 0))
    if month == 2:
        dim = 29 if leap else 28
    elif month == 4 or month == 6 or month == 9 or month == 11:
        dim = 30
    else:
        dim = 31
    if month < 1 or month > 12 or day < 1 or day > dim:
        ok = False
    days = _days_from_civil(np.int64(year), np.int64(month), np.int64(day))
    if not with_time:
        return days, not (ok and n == 8)
    if buf[p + 8] != 45 or buf[p + 11] != 58 or buf[p + 14] != 58:  # "-", ":", ":"
        ok = False
    for j in (9, 10, 12, 13, 15, 16):
        if not _is_digit(buf[p + j]):
            ok = False
    hh = (buf[p + 9] & 15) * 10 + (buf[p + 10] & 15)
    mi = (buf[p + 12] & 15) * 10 + (buf[p + 13] & 15)
    ss = (buf[p + 15] & 15) * 10 + (buf[p + 16] & 15)
    frac = 0
    if n == 21 or n == 24:
        if buf[p + 17] != 46:  # "."
            ok = False
        for j in range(p + 18, p + n):
            if not _is_digit(buf[j]):
                ok = False
        frac = ((buf[p + 18] & 15) * 100 + (buf[p + 19] & 15) * 10 + (buf[p + 20] & 15)) * 1000
        if n == 24:
            frac += (buf[p + 21] & 15) * 100 + (buf[p + 22] & 15) * 10 + (buf[p + 23] & 15)
    elif n != 17:
        ok = False
    if hh >= 24 or mi >= 60 or ss > 60:
        ok = False
    return (days * 86400 + hh * 3600 + mi * 60 + ss) * 1_000_000 + frac, not ok


@njit(cache=True, nogil=True, inline="always")
def _decimal(buf, p, n, signed):
    """An exact decimal at ``buf[p:p+n]`` -> (value * 10**10, status).

    ``DEC_INEXACT`` follows the parser's rule: anything but digits and one point (and a leading '-'
    where ``signed``), a 12-byte value starting with its point (11 decimals), or, past 12 bytes, no
    digit or more than 10 decimals. ``DEC_OK`` values are ``-?[0-9]{1,8}(\\.[0-9]{1,10})?`` (so
    value * 10**10 fits 63 bits); every other exact shape is ``DEC_POLARS``.
    """
    neg = False
    at = 0
    if signed and n > 0 and buf[p] == 45:  # '-'
        neg = True
        at = 1
    dots = 0
    dot_at = -1
    inexact = False
    value = np.int64(0)
    for j in range(at, n):
        d = np.int64(buf[p + j]) - 48
        if 0 <= d <= 9:
            value = value * 10 + d  # wraps past 18 digits: such a value goes to polars below
        elif d == -2:  # '.'
            dots += 1
            dot_at = j
        else:
            inexact = True
    if dots > 1:
        inexact = True
    if n <= 12:
        if n == 12 and dot_at == 0:
            inexact = True
    elif n - at - dots < 1 or (dot_at >= 0 and n - 1 - dot_at > SCALE):
        inexact = True
    if inexact:
        return np.int64(0), DEC_INEXACT
    int_digits = (dot_at if dot_at >= 0 else n) - at
    frac_digits = n - 1 - dot_at if dot_at >= 0 else 0
    if int_digits < 1 or int_digits > 8 or (dot_at >= 0 and frac_digits < 1) or frac_digits > SCALE:
        return np.int64(0), DEC_POLARS
    value *= _POW10[SCALE - frac_digits]
    return (-value if neg else value), DEC_OK


_POW10 = np.array([10**k for k in range(SCALE + 1)], dtype=np.int64)


@njit(cache=True, nogil=True)
def views(w8, vs, length):
    """16-byte Arrow ``string_view`` entries for the bytes ``[vs, vs+length)`` of the chunk whose
    ``words`` are ``w8`` (a length <= 0: empty)."""
    m = len(vs)
    out = np.zeros((m, 2), dtype=np.uint64)
    for i in range(m):
        if length[i] > 0:
            out[i, 0], out[i, 1] = _view(w8, vs[i], length[i])
    return out


@njit(cache=True, nogil=True)
def date_times(buf, vs, length, with_time):
    """Dates (``with_time`` False) or timestamps -> (days or epoch micros, bad); an absent value
    (length < 0) is not bad and its value is 0."""
    m = len(vs)
    values = np.zeros(m, dtype=np.int64)
    bad = np.zeros(m, dtype=np.bool_)
    for i in range(m):
        if length[i] >= 0:
            values[i], bad[i] = _date_time(buf, vs[i], length[i], with_time)
    return values, bad


@njit(cache=True, nogil=True)
def decimals(buf, vs, length, signed):
    """Exact decimals -> (DECIMAL(38, 10) as little-endian int128 words, status per value); an absent
    value (length < 0) is ``DEC_OK`` with value 0."""
    m = len(vs)
    out = np.zeros((m, 2), dtype=np.int64)
    status = np.zeros(m, dtype=np.int8)
    for i in range(m):
        if length[i] >= 0:
            value, status[i] = _decimal(buf, vs[i], length[i], signed)
            out[i, 0] = value
            out[i, 1] = -1 if value < 0 else 0
    return out, status


def words(buf: np.ndarray) -> np.ndarray:
    """Every 8-byte window of ``buf`` (stride 1) as a little-endian uint64: one unaligned load each."""
    return np.ndarray(shape=(len(buf) - 7,), dtype="<u8", buffer=buf, strides=(1,))


# Column kinds in a ``scan`` plan, and what ``scan`` leaves to the parser (per value: ``DEFER_*``) and
# reports per line that is not a landed row (``LINE_*``; the numbers of ``parser._REASONS``).
VIEW, TIMESTAMP, DATE, DECIMAL_SIGNED, DECIMAL_UNSIGNED, INTEGER = 0, 1, 2, 3, 4, 5
DEFER_HIGH, DEFER_DECIMAL, DEFER_INTEGER, DEFER_LONG_ENUM = 1, 2, 3, 4
LINE_GARBLED, LINE_BAD_LENGTH, LINE_BAD_CHECKSUM, LINE_MISSING, LINE_SKIPPED = 1, 3, 4, 5, 6
# ``LINE_GARBLED`` flags, in the order ``parser._garble_detail`` names the first
GARBLE_TERMINAL, GARBLE_REPEATED, GARBLE_FRAMING, GARBLE_TRAILER, GARBLE_VERSION, GARBLE_FIELD = 1, 2, 4, 8, 16, 32
# Type faults per row as column order * 4 + kind (the smallest wins: the first faulty column, and an
# empty value before its type); ``NO_TYPE_FAULT`` / ``NO_ENUM_FAULT`` for none.
FAULT_EMPTY, FAULT_TYPE, FAULT_INEXACT = 0, 1, 2
NO_TYPE_FAULT, NO_ENUM_FAULT = 32767, 127
ENUM_UNCHECKED, ENUM_BYTE, ENUM_WORDS = 0, 1, 2

_LOW7 = np.uint64(0x7F7F7F7F7F7F7F7F)
_ADD11 = np.uint64(0x7575757575757575)  # a byte (< 128) plus 0x75 reaches bit 7 from 11 up
_HIGH = np.uint64(0x8080808080808080)
_LANES = np.uint64(0x00FF00FF00FF00FF)
_SUM16 = np.uint64(0x0001000100010001)
_FIX44 = np.uint64(int.from_bytes(b"FIX.4.4\x01", "little"))
_FIX42 = np.uint64(int.from_bytes(b"FIX.4.2\x01", "little"))
_FIXT11 = np.uint64(int.from_bytes(b"FIXT.1.1", "little"))


@njit(cache=True, nogil=True, inline="always")
def _byte_sum_or(w8, a, b):
    """(sum of the bytes ``[a, b)`` mod 256, their OR) with 8-byte loads."""
    total = np.uint64(0)
    bits = np.uint64(0)
    p = a
    while p + 8 <= b:
        w = w8[p]
        total += (((w & _LANES) + ((w >> np.uint64(8)) & _LANES)) * _SUM16) >> np.uint64(48)
        bits |= w
        p += 8
    if p < b:
        w = _low_bytes(w8[p], b - p)
        total += (((w & _LANES) + ((w >> np.uint64(8)) & _LANES)) * _SUM16) >> np.uint64(48)
        bits |= w
    return total & np.uint64(0xFF), bits


@njit(cache=True, nogil=True, inline="always")
def _has_high(buf, p, n):
    for j in range(p, p + n):
        if buf[j] >= 128:
            return True
    return False


@njit(cache=True, nogil=True)
def scan(buf, w8, n, close, column_of_tag, big_tags, big_cols, n_columns, framing_cols, required_lut,
         required_count, plan_kind, plan_row, plan_slot, plan_enum, enum_mode, enum_byte, enum_lo, enum_hi,
         enum_words, begin_views, view_base, pos_base, line_base, row0, row_line, row_pos, row_ver, begin_out,
         view_out, time_out, dec_out, int_out, valid, enum_fault, type_fault):
    """One chunk of whole lines (``buf[:n]``, ``SLACK`` readable bytes past it; ``w8 = words(buf)``) in
    one pass: each line's fields are found and their tags decoded (the SOH and newline bytes found 8
    at a time), its framing, BeginString, BodyLength, CheckSum, MsgType and required tags checked,
    and a landed row's columns written at once, while its bytes are in cache.

    Rows go to the ``row_*`` / ``*_out`` arrays from index ``row0`` (their ``valid`` flags, and per row the
    first enum and type fault); the call returns ``(status, rows, lines, blank lines, events, deferred)``
    with status 1 (nothing usable) when the arrays are too short. ``events``: one per line that is not
    a row (``LINE_*``, flags, two values, the present columns as a bit mask, version);
    ``events`` start with the line's number and start; ``deferred``: (row, plan column, ``DEFER_*``, chunk position, length) for the values whose reading
    the parser finishes (non-ASCII bytes, a decimal or integer shape for polars, an enum code longer
    than 8 bytes). Views point ``view_base`` bytes into their buffer; ``row_pos`` is a line's start plus
    ``pos_base``; ``row_line`` its line number plus ``line_base``.
    """
    cap = len(row_line)
    col8, col9, col35, col10 = framing_cols[0], framing_cols[1], framing_cols[2], framing_cols[3]
    n_plan = len(plan_kind)
    # events and deferred values: at most one per line / field, so n + 2 bounds both
    ev_line = np.empty(n + 2, dtype=np.int64)
    ev_pos = np.empty(n + 2, dtype=np.int64)
    ev_kind = np.empty(n + 2, dtype=np.int8)
    ev_flags = np.empty(n + 2, dtype=np.int8)
    ev_a = np.empty(n + 2, dtype=np.int64)
    ev_b = np.empty(n + 2, dtype=np.int64)
    ev_mask = np.empty(n + 2, dtype=np.uint64)
    ev_ver = np.empty(n + 2, dtype=np.int8)
    df_row = np.empty(n + 2, dtype=np.int64)
    df_col = np.empty(n + 2, dtype=np.int64)
    df_kind = np.empty(n + 2, dtype=np.int8)
    df_p = np.empty(n + 2, dtype=np.int64)
    df_n = np.empty(n + 2, dtype=np.int64)
    n_ev = 0
    n_df = 0
    vstart = np.empty(n_columns, dtype=np.int64)
    vlen = np.empty(n_columns, dtype=np.int64)
    r = row0
    line = 0
    blank = 0
    # the line being read
    line_start = 0
    seg = 0
    nf = 0
    mask = np.uint64(0)
    repeated = False
    odd = False
    odd_a = 0
    odd_b = 0
    req = np.uint32(0)
    k0 = k1 = k2 = kl = n_columns
    s1 = e1 = s2 = e2 = sl = el = 0
    i = 0
    limit = n + 8 if close else n
    while i < limit:
        if i < n:
            w = w8[i]
            hits = ~(((w & _LOW7) + _ADD11) | w) & _HIGH  # bytes <= 10
            if i + 8 > n:
                hits &= (np.uint64(1) << np.uint64(8 * (n - i))) - np.uint64(1)
        else:
            hits = np.uint64(1)  # the last line has no newline: close it at n
        while hits:
            at = i + (np.int64(trailing_zeros(hits)) >> 3) if i < n else n
            hits &= hits - np.uint64(1)
            b = buf[at] if at < n else 10
            if b == 1:
                # a field: decode its tag ('d=', 'dd=', 'ddd=', first digit not 0; 4+ digits are rare)
                d0 = np.int64(buf[seg]) - 48
                d1 = np.int64(buf[seg + 1]) - 48
                d2 = np.int64(buf[seg + 2]) - 48
                t = 0
                tag = 0
                bad = False
                if 1 <= d0 <= 9:
                    if d1 == 13:
                        t, tag = 1, d0
                    elif 0 <= d1 <= 9:
                        if d2 == 13:
                            t, tag = 2, d0 * 10 + d1
                        elif 0 <= d2 <= 9:
                            t, tag = 3, d0 * 100 + d1 * 10 + d2
                if t == 0:
                    bad = True
                    k = n_columns
                elif t == 3 and buf[seg + 3] != 61:
                    j = seg + 3
                    while j < at and 48 <= buf[j] <= 57:
                        j += 1
                    if j < at and buf[j] == 61 and j + 1 < at:
                        t = j - seg
                        k = n_columns
                        if t <= 9:
                            tag = 0
                            for q in range(seg, j):
                                tag = tag * 10 + np.int64(buf[q]) - 48
                            for q in range(len(big_tags)):
                                if big_tags[q] == tag:
                                    k = big_cols[q]
                    else:
                        bad = True
                        k = column_of_tag[tag]
                else:
                    k = column_of_tag[tag]
                if bad and not odd:
                    odd = True
                    odd_a, odd_b = seg, at
                if k < n_columns:
                    bit = np.uint64(1) << np.uint64(k)
                    if mask & bit:
                        repeated = True
                    mask |= bit
                    vstart[k] = seg + t + 1
                    vlen[k] = at - (seg + t + 1)
                req += required_lut[k]
                if nf == 0:
                    k0 = k
                elif nf == 1:
                    k1, s1, e1 = k, seg, at
                elif nf == 2:
                    k2, s2, e2 = k, seg, at
                kl, sl, el = k, seg, at
                nf += 1
                seg = at + 1
                continue
            if b != 10:
                continue
            # the end of a line
            term = at - seg
            bad_terminal = term > 0 and not (term == 1 and buf[max(at - 1, 0)] == 13)
            if nf == 0 and not bad_terminal:
                blank += 1
            else:
                framing_ok = nf >= 4 and k0 == col8 and k1 == col9 and k2 == col35 and kl == col10
                ok10 = nf > 0 and el - (sl + 3) == 3
                begin = w8[line_start + 2]
                version = -1
                if begin == _FIX44:
                    version = 0
                elif begin == _FIX42:
                    version = 1
                elif begin == _FIXT11 and buf[line_start + 10] == 1:
                    version = 2
                kind = 0
                flags = 0
                ea = 0
                eb = 0
                if bad_terminal or not framing_ok or not ok10 or repeated or odd or version < 0:
                    kind = LINE_GARBLED
                    flags = ((GARBLE_TERMINAL if bad_terminal else 0) | (GARBLE_REPEATED if repeated else 0)
                             | (0 if framing_ok else GARBLE_FRAMING) | (0 if ok10 else GARBLE_TRAILER)
                             | (GARBLE_VERSION if version < 0 else 0) | (GARBLE_FIELD if odd else 0))
                    ea, eb = odd_a, odd_b
                else:
                    v9 = s1 + 2
                    length_digits = e1 - v9
                    len_ok = 1 <= length_digits <= 9
                    declared = 0
                    if len_ok:
                        for q in range(v9, e1):
                            d = np.int64(buf[q]) - 48
                            if d < 0 or d > 9:
                                len_ok = False
                            declared = declared * 10 + d
                    actual = sl - (e1 + 1)
                    if not len_ok or declared != actual:
                        kind = LINE_BAD_LENGTH
                        flags = 1 if len_ok else 0
                        ea, eb = declared, actual
                    else:
                        total, bits = _byte_sum_or(w8, line_start, sl)
                        sum_ok = True
                        declared = 0
                        for q in range(sl + 3, el):
                            d = np.int64(buf[q]) - 48
                            if d < 0 or d > 9:
                                sum_ok = False
                            declared = declared * 10 + d
                        if not sum_ok or declared != np.int64(total):
                            kind = LINE_BAD_CHECKSUM
                            flags = 1 if sum_ok else 0
                            ea, eb = declared, np.int64(total)
                        elif not (e2 - (s2 + 3) == 1 and buf[s2 + 3] == 56):  # MsgType other than 8
                            kind = LINE_SKIPPED
                            ea, eb = s2 + 3, e2
                        elif ((req >> np.uint32(8 * version)) & np.uint32(0xFF)) < required_count[version]:
                            kind = LINE_MISSING
                        else:
                            # a row: every landed column
                            if r >= cap:
                                return (1, 0, 0, 0, ev_line[:0], ev_pos[:0], ev_kind[:0], ev_flags[:0], ev_a[:0], ev_b[:0],
                                        ev_mask[:0], ev_ver[:0], df_row[:0], df_col[:0], df_kind[:0], df_p[:0],
                                        df_n[:0])
                            for q in range(sl, at):
                                bits |= np.uint64(buf[q])
                            high = (bits & _HIGH) != 0
                            row_line[r] = line_base + line
                            row_pos[r] = pos_base + line_start
                            row_ver[r] = version
                            begin_out[r, 0] = begin_views[version, 0]
                            begin_out[r, 1] = begin_views[version, 1]
                            ef = NO_ENUM_FAULT
                            tf = NO_TYPE_FAULT
                            for jc in range(n_plan):
                                k = plan_row[jc]
                                ck = plan_kind[jc]
                                slot = plan_slot[jc]
                                # every slot of a row is written: the arrays are not initialised
                                if ck == VIEW:
                                    view_out[slot, r, 0] = view_out[slot, r, 1] = 0
                                elif ck == TIMESTAMP or ck == DATE:
                                    time_out[slot, r] = 0
                                elif ck == INTEGER:
                                    int_out[slot, r] = 0
                                else:
                                    dec_out[slot, r, 0] = dec_out[slot, r, 1] = 0
                                if not (mask & (np.uint64(1) << np.uint64(k))):
                                    valid[jc, r] = 0
                                    continue
                                p = vstart[k]
                                m = vlen[k]
                                ok = True
                                if m == 0:
                                    tf = min(tf, jc * 4 + FAULT_EMPTY)
                                if ck == TIMESTAMP or ck == DATE:
                                    value, wrong = _date_time(buf, p, m, ck == TIMESTAMP)
                                    time_out[slot, r] = value
                                    if wrong:
                                        ok = False
                                        tf = min(tf, jc * 4 + FAULT_TYPE)
                                elif high and m > 0 and _has_high(buf, p, m):
                                    ok = False  # the parser decides: UTF-8 or Latin-1
                                    if ck == VIEW:
                                        view_out[slot, r, 0], view_out[slot, r, 1] = _view(w8, p, m)
                                        view_out[slot, r, 1] += np.uint64(view_base) << np.uint64(32) if m > 12 else np.uint64(0)
                                    df_row[n_df], df_col[n_df], df_kind[n_df] = r, jc, DEFER_HIGH
                                    df_p[n_df], df_n[n_df] = p, m
                                    n_df += 1
                                elif ck == VIEW:
                                    if m > 0:
                                        v0, v1 = _view(w8, p, m)
                                        if m > 12:
                                            v1 += np.uint64(view_base) << np.uint64(32)
                                        view_out[slot, r, 0] = v0
                                        view_out[slot, r, 1] = v1
                                    e = plan_enum[jc]
                                    if e >= 0:
                                        mode = enum_mode[e, version]
                                        if mode == ENUM_BYTE:
                                            if m != 1 or not enum_byte[e, version, buf[p]]:
                                                ef = min(ef, jc)
                                        elif mode == ENUM_WORDS:
                                            if m > 8:
                                                df_row[n_df], df_col[n_df], df_kind[n_df] = r, jc, DEFER_LONG_ENUM
                                                df_p[n_df], df_n[n_df] = p, m
                                                n_df += 1
                                            else:
                                                lo = _low_bytes(w8[p], m) if m > 0 else np.uint64(0)
                                                a = enum_lo[e, version]
                                                z = enum_hi[e, version]
                                                while a < z:  # binary search in the sorted codes
                                                    h = (a + z) >> 1
                                                    if enum_words[h] < lo:
                                                        a = h + 1
                                                    else:
                                                        z = h
                                                if a >= enum_hi[e, version] or enum_words[a] != lo:
                                                    ef = min(ef, jc)
                                elif ck == INTEGER:
                                    if m > 0:
                                        value = np.int64(0)
                                        plain = m <= 18
                                        for q in range(p, p + m):
                                            d = np.int64(buf[q]) - 48
                                            if d < 0 or d > 9:
                                                plain = False
                                            value = value * 10 + d
                                        if plain:
                                            int_out[slot, r] = value
                                        else:
                                            ok = False
                                            df_row[n_df], df_col[n_df], df_kind[n_df] = r, jc, DEFER_INTEGER
                                            df_p[n_df], df_n[n_df] = p, m
                                            n_df += 1
                                elif m > 0:  # decimals
                                    value, status = _decimal(buf, p, m, ck == DECIMAL_SIGNED)
                                    dec_out[slot, r, 0] = value
                                    dec_out[slot, r, 1] = -1 if value < 0 else 0
                                    if status == DEC_INEXACT:
                                        tf = min(tf, jc * 4 + FAULT_INEXACT)
                                    elif status == DEC_POLARS:
                                        ok = False
                                        df_row[n_df], df_col[n_df], df_kind[n_df] = r, jc, DEFER_DECIMAL
                                        df_p[n_df], df_n[n_df] = p, m
                                        n_df += 1
                                valid[jc, r] = 1 if ok else 0
                            enum_fault[r] = ef
                            type_fault[r] = tf
                            r += 1
                if kind:
                    ev_line[n_ev] = line
                    ev_pos[n_ev] = line_start
                    ev_kind[n_ev] = kind
                    ev_flags[n_ev] = flags
                    ev_a[n_ev] = ea
                    ev_b[n_ev] = eb
                    ev_mask[n_ev] = mask
                    ev_ver[n_ev] = version
                    n_ev += 1
            line += 1
            line_start = seg = at + 1
            nf = 0
            mask = np.uint64(0)
            repeated = odd = False
            req = np.uint32(0)
            k0 = k1 = k2 = kl = n_columns
        i += 8
    return (0, r - row0, line, blank, ev_line[:n_ev], ev_pos[:n_ev], ev_kind[:n_ev], ev_flags[:n_ev], ev_a[:n_ev], ev_b[:n_ev],
            ev_mask[:n_ev], ev_ver[:n_ev], df_row[:n_df], df_col[:n_df], df_kind[:n_df], df_p[:n_df], df_n[:n_df])


def warm_up(tables) -> None:
    """Load (or compile) ``scan`` for the parser's argument types (``tables``: the parser's ``_Tables``)
    before threads call it."""
    buf = np.frombuffer(bytes(64), dtype=np.uint8)  # read-only, like a chunk of the file's bytes
    t = tables
    n_views, n_times, n_decimals, n_ints = t.counts
    scan(buf, words(buf), 0, False, t.column_of_tag, t.big_tags, t.big_cols, 0, t.framing_cols, t.required_lut,
         t.required_count, t.kind, t.row, t.slot, t.enum, t.enum_mode, t.enum_byte, t.enum_lo, t.enum_hi,
         t.enum_words, np.zeros((3, 2), dtype=np.uint64), 0, 0, 0, 0, np.zeros(1, dtype=np.int64),
         np.zeros(1, dtype=np.int64), np.zeros(1, dtype=np.int8), np.zeros((1, 2), dtype=np.uint64),
         np.zeros((n_views, 1, 2), dtype=np.uint64), np.zeros((n_times, 1), dtype=np.int64),
         np.zeros((n_decimals, 1, 2), dtype=np.int64), np.zeros((n_ints, 1), dtype=np.int64),
         np.zeros((len(t.kind), 1), dtype=np.uint8), np.zeros(1, dtype=np.int8), np.zeros(1, dtype=np.int16))
