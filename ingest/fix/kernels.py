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


@njit(cache=True, nogil=True)
def views(buf, vs, length):
    """16-byte Arrow ``string_view`` entries for ``buf[vs:vs+length]`` (buffer 0 = ``buf``).

    Up to 12 bytes inline (zero padded), else a 4-byte prefix, buffer index 0 and the offset.
    """
    m = len(vs)
    out = np.zeros((m, 2), dtype=np.uint64)
    for i in range(m):
        n = length[i]
        p = vs[i]
        w0 = np.uint64(n)
        k = min(n, 4)
        for j in range(k):
            w0 |= np.uint64(buf[p + j]) << np.uint64(32 + 8 * j)
        out[i, 0] = w0
        if n > 12:
            out[i, 1] = np.uint64(p) << np.uint64(32)
        elif n > 4:
            w1 = np.uint64(0)
            for j in range(4, n):
                w1 |= np.uint64(buf[p + j]) << np.uint64(8 * (j - 4))
            out[i, 1] = w1
    return out


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


@njit(cache=True, nogil=True)
def date_times(buf, vs, length, with_time):
    """FIX ``YYYYMMDD`` (``with_time`` False) or ``YYYYMMDD-HH:MM:SS[.sss|.ssssss]`` -> (days or epoch
    micros, bad). An absent value (length < 0) is not bad; its value is 0."""
    m = len(vs)
    values = np.zeros(m, dtype=np.int64)
    bad = np.zeros(m, dtype=np.bool_)
    for i in range(m):
        n = length[i]
        if n < 0:
            continue
        p = vs[i]
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
            if n != 8:
                ok = False
            values[i] = days
            bad[i] = not ok
            continue
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
            last = p + 21 if n == 21 else p + 24
            for j in range(p + 18, last):
                if not _is_digit(buf[j]):
                    ok = False
            frac = ((buf[p + 18] & 15) * 100 + (buf[p + 19] & 15) * 10 + (buf[p + 20] & 15)) * 1000
            if n == 24:
                frac += (buf[p + 21] & 15) * 100 + (buf[p + 22] & 15) * 10 + (buf[p + 23] & 15)
        elif n != 17:
            ok = False
        if hh >= 24 or mi >= 60 or ss > 60:
            ok = False
        values[i] = (days * 86400 + hh * 3600 + mi * 60 + ss) * 1_000_000 + frac
        bad[i] = not ok
    return values, bad


@njit(cache=True, nogil=True)
def decimals(buf, vs, length, signed):
    """Exact decimals -> (DECIMAL(38, 10) as little-endian int128 words, status per value).

    ``DEC_INEXACT`` follows the parser's rule: anything but digits and one point (and a leading '-'
    where ``signed``), or more than 10 decimals. ``DEC_OK`` values are ``-?[0-9]+(\\.[0-9]+)?`` with at
    most 8 integer digits (so value * 10**10 fits 63 bits); every other exact shape is ``DEC_POLARS``.
    Absent values (length < 0) are ``DEC_OK`` with value 0.
    """
    m = len(vs)
    out = np.zeros((m, 2), dtype=np.int64)
    status = np.zeros(m, dtype=np.int8)
    for i in range(m):
        n = length[i]
        if n < 0:
            continue
        p = vs[i]
        neg = False
        at = 0
        if signed and n > 0 and buf[p] == 45:  # '-'
            neg = True
            at = 1
        dots = 0
        dot_at = -1
        inexact = False
        for j in range(at, n):
            b = buf[p + j]
            if b == 46:
                dots += 1
                dot_at = j
            elif not _is_digit(b):
                inexact = True
        if dots > 1:
            inexact = True
        if n <= 12:
            # a 12-byte value starting with its point has 11 decimals
            if n == 12 and dot_at == 0:
                inexact = True
        else:
            digits = n - at - dots
            if digits < 1 or (dot_at >= 0 and n - 1 - dot_at > 10):
                inexact = True
        if inexact:
            status[i] = DEC_INEXACT
            continue
        int_digits = (dot_at if dot_at >= 0 else n) - at
        frac_digits = n - 1 - dot_at if dot_at >= 0 else 0
        if int_digits < 1 or int_digits > 8 or (dot_at >= 0 and frac_digits < 1) or frac_digits > SCALE:
            status[i] = DEC_POLARS
            continue
        value = np.int64(0)
        for j in range(at, n):
            b = buf[p + j]
            if b != 46:
                value = value * 10 + (b - 48)
        for _ in range(SCALE - frac_digits):
            value *= 10
        if neg:
            value = -value
        out[i, 0] = value
        out[i, 1] = -1 if value < 0 else 0
    return out, status
