"""Compiled (numba) loops for the FIX parser's per-value work: one pass per column instead of a dozen
numpy temporaries, each as large as the column.

Each kernel reproduces, value for value, the numpy code it replaced in ``parser.py`` (the SWAR string
views, date/time and exact-decimal checks); the tests compare both on hostile inputs. Compiled on first
use and cached beside this file (``cache=True``), so a fresh process pays a few hundred ms to load them,
not a compile.
"""

from __future__ import annotations

import numpy as np
from numba import njit

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


# Column kinds in an ``extract`` plan.
VIEW, TIMESTAMP, DATE, DECIMAL_SIGNED, DECIMAL_UNSIGNED = 0, 1, 2, 3, 4


@njit(cache=True, nogil=True)
def extract(buf, w8, cell, plan_row, plan_kind, plan_slot, n_views, n_times, n_decimals):
    """Every landed column of every row in one pass over the rows (a message's fields are close
    together in the buffer, so row by row reads each message's bytes once instead of once per column).

    ``w8``: ``words(buf)``. Column j of the plan reads ``cell[plan_row[j]]`` and writes slot ``plan_slot[j]`` of the outputs of
    its kind: views (n_views, m, 2) uint64; date/time values and bad flags (n_times, m); decimals
    (n_decimals, m, 2) int64 and their status (n_decimals, m). Absent values (packed < 0) are zero,
    not bad, ``DEC_OK``.
    """
    m = cell.shape[1]
    view_out = np.zeros((n_views, m, 2), dtype=np.uint64)
    time_out = np.zeros((n_times, m), dtype=np.int64)
    time_bad = np.zeros((n_times, m), dtype=np.bool_)
    dec_out = np.zeros((n_decimals, m, 2), dtype=np.int64)
    dec_status = np.zeros((n_decimals, m), dtype=np.int8)
    for i in range(m):
        for j in range(len(plan_row)):
            packed = cell[plan_row[j], i]
            if packed < 0:
                continue
            p = packed & 0xFFFFFFFF
            n = packed >> 32
            kind = plan_kind[j]
            slot = plan_slot[j]
            if kind == VIEW:
                if n > 0:
                    view_out[slot, i, 0], view_out[slot, i, 1] = _view(w8, p, n)
            elif kind == TIMESTAMP or kind == DATE:
                time_out[slot, i], time_bad[slot, i] = _date_time(buf, p, n, kind == TIMESTAMP)
            else:
                value, dec_status[slot, i] = _decimal(buf, p, n, kind == DECIMAL_SIGNED)
                dec_out[slot, i, 0] = value
                dec_out[slot, i, 1] = -1 if value < 0 else 0
    return view_out, time_out, time_bad, dec_out, dec_status


@njit(cache=True, nogil=True)
def fields(buf, n, control, column_of_tag, unknown):
    """A chunk's fields: SOH and newline positions (other control bytes are content) and each field's
    tag decoded -> (delim, is_nl, ss, fk, tlen, three_bad).

    ``control``: the positions of bytes <= 10 in ``buf[:n]`` (numpy finds them faster than a loop).
    Field i is ``buf[ss[i]:delim[i]]``; a line without its final newline is closed at ``n``. ``fk`` is
    the column index (``column_of_tag``: tag 0-999 -> column, ``unknown`` for a tag not read) and
    ``tlen`` the tag length (0: not ``tag=``); ``three_bad``: a 3-byte tag whose 4th byte is not ``=``. ``buf`` has ``SLACK`` readable bytes past ``n``.
    """
    count = 0
    for i in control:
        b = buf[i]
        if b == 1 or b == 10:
            count += 1
    close = n > 0 and buf[n - 1] != 10
    n_seg = count + (1 if close else 0)
    delim = np.empty(n_seg, dtype=np.int64)
    is_nl = np.empty(n_seg, dtype=np.bool_)
    ss = np.empty(n_seg, dtype=np.int64)
    fk = np.empty(n_seg, dtype=np.int16)
    tlen = np.empty(n_seg, dtype=np.int16)
    three_bad = np.empty(n_seg, dtype=np.bool_)
    k = 0
    start = 0
    for j in range(len(control) + (1 if close else 0)):
        i = control[j] if j < len(control) else n
        b = buf[i] if i < n else 10
        if b == 1 or b == 10:
            delim[k] = i
            is_nl[k] = b == 10 or i == n
            ss[k] = start
            # 'd=' / 'dd=' / 'ddd' (then '=', else three_bad), first digit not 0; anything else is not
            # tag= (tlen 0), and a tag of 4+ digits is read by the parser (rare). A digit rule, not a
            # 24-bit lookup table: that table missed the cache on nearly every field.
            d0, d1, d2 = np.int64(buf[start]) - 48, np.int64(buf[start + 1]) - 48, np.int64(buf[start + 2]) - 48
            t = 0
            tag = 0
            if 1 <= d0 <= 9:
                if d1 == 13:  # '='
                    t, tag = 1, d0
                elif 0 <= d1 <= 9:
                    if d2 == 13:
                        t, tag = 2, d0 * 10 + d1
                    elif 0 <= d2 <= 9:
                        t, tag = 3, d0 * 100 + d1 * 10 + d2
            fk[k] = column_of_tag[tag] if t else unknown
            tlen[k] = t
            three_bad[k] = t == 3 and buf[start + 3] != 61
            start = i + 1
            k += 1
    return delim, is_nl, ss, fk, tlen, three_bad


@njit(cache=True, nogil=True)
def positions(fk, tlen, ss, delim, is_nl, n_lines, n_columns):
    """The (column x line) matrix of each field's value start | length << 32 (-1: absent) and, per
    line, whether a column's tag occurs twice (fields with ``fk == n_columns`` are not read)."""
    cell = np.full((n_columns, n_lines), -1, dtype=np.int64)
    repeated = np.zeros(n_lines, dtype=np.bool_)
    line = 0
    for i in range(len(fk)):
        if is_nl[i]:
            line += 1
            continue
        k = fk[i]
        if k >= n_columns:
            continue
        v = ss[i] + tlen[i] + 1
        if cell[k, line] != -1:
            repeated[line] = True
        cell[k, line] = v | (delim[i] - v) << 32
    return cell, repeated


def warm_up(column_of_tag: np.ndarray) -> None:
    """Load (or compile) the scan's kernels for the parser's argument types, e.g. before forking a
    worker, so that it and this process do not both compile them."""
    buf = np.frombuffer(bytes(64), dtype=np.uint8)  # read-only, like a chunk of the file's bytes
    delim, is_nl, ss, fk, tlen, _ = fields(buf, 0, np.zeros(0, dtype=np.int64), column_of_tag, 0)
    cell, _ = positions(fk, tlen, ss, delim, is_nl, 0, 1)
    plan = np.zeros(0, dtype=np.int64)
    extract(buf, words(buf), cell, plan, plan, plan, 0, 0, 0)
