"""Finding FIX messages in files shaped like real logs, for the drop-copy parser.

A drop copy should be one SOH-delimited message per line, and that file is scanned as it is
(``ingest.fix.parser``). Brokers' files often are session or application logs instead:

- a log prefix before each message (``20180223-09:30:00.123 : 8=FIX.4.2...``, ``<incoming>``, a session
  id), or log text between messages;
- a printable delimiter where SOH should be: ``|``, ``;`` or the two characters ``^A``;
- several messages on one line (a captured stream), or none on a line of log text.

``frame`` finds every message wherever it sits on a line, from ``8=FIX...`` (or ``8=FIXT.1.1``) up to the
first ``<delimiter>10=NNN`` after it (plus its delimiter), turns the file's delimiter into SOH, and
writes one message per line, remembering each message's delivered line and position on that line.
BodyLength and CheckSum are then checked on those SOH-normalised bytes, as the sending engine computed
them. The delimiter is detected per file: the most common character(s) right after the BeginString of
its first messages; a message written with another delimiter than its file's is ``fix_garbled``. A fragment that starts a message but never reaches its ``10=`` (a truncated message) or a line
of bare fields with no BeginString is quarantined ``fix_garbled``; a line without any FIX field is log
text, not a record, and is only counted (``log_lines``).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import polars as pl

SOH = b"\x01"
BOM = b"\xef\xbb\xbf"
DELIMITERS = (SOH, b"^A", b"|", b";")
_DELIMITER_ALTERNATIVES = b"|".join(re.escape(d) for d in DELIMITERS)
_BEGIN = rb"8=FIXT?\.[0-9]\.[0-9]"
_BEGIN_WITH_DELIMITER = re.compile(_BEGIN + rb"(" + _DELIMITER_ALTERNATIVES + rb")9=")
_ANY_BEGIN = re.compile(_BEGIN + rb"(.?.?)", re.DOTALL)
_MESSAGE_START = re.compile(_BEGIN + rb"(" + _DELIMITER_ALTERNATIVES + rb")")
_MESSAGE_END = {d: re.compile(re.escape(d) + rb"10=[0-9]{3}(?:" + re.escape(d) + rb")?") for d in DELIMITERS}
# Header or trailer fields with no BeginString before them on the line: what is left of a cut message.
_BARE_FIELDS = re.compile(rb"(?:^|" + _DELIMITER_ALTERNATIVES + rb")(?:8|9|35|10)=[^=]*(?:"
                          + _DELIMITER_ALTERNATIVES + rb")")
_SAMPLE_BYTES = 1 << 20
_SAMPLE_MESSAGES = 64


def detect_delimiter(data: bytes) -> bytes | None:
    """The file's field delimiter: the most common one after the BeginString of its first messages."""
    seen: Counter[bytes] = Counter()
    for match in _BEGIN_WITH_DELIMITER.finditer(data, 0, _SAMPLE_BYTES):
        seen[match.group(1)] += 1
        if sum(seen.values()) >= _SAMPLE_MESSAGES:
            break
    return seen.most_common(1)[0][0] if seen else None


def needs_framing(rejects) -> bool:
    """Did the one-message-per-line scan garble a line that holds a message somewhere other than its start
    (a log prefix, a leading BOM, several messages on the line)?"""
    for reject in rejects:
        if reject.reason_code != "fix_garbled":
            continue
        starts = [at for at, delimiter in _starts(reject.raw) if delimiter == SOH]
        if starts and (starts[0] > 0 or len(starts) > 1):
            return True
    return False


def explain_other_delimiters(rejects, file_delimiter: bytes) -> None:
    """Name the delimiter of a garbled message written with another one than its file's (rather than
    the scan's "truncated line", which is what a line without SOH looks like to it)."""
    for reject in rejects:
        if reject.reason_code != "fix_garbled" or file_delimiter in reject.raw:
            continue
        found = next((m for m in _ANY_BEGIN.finditer(reject.raw) if _starts_message(reject.raw, m.start(), SOH)),
                     None)
        if found:
            reject.reason_detail = (f"message delimited by {found.group(1)[:1]!r}, not by the file's "
                                    f"{file_delimiter!r}")


def _starts(line: bytes) -> list[tuple[int, bytes]]:
    """Where messages start on a line, with each one's delimiter."""
    return [(m.start(), m.group(1)) for m in _MESSAGE_START.finditer(line)
            if _starts_message(line, m.start(), m.group(1))]


def _starts_message(line: bytes, at: int, delimiter: bytes) -> bool:
    """Is the ``8=FIX...`` at ``at`` a message's start, not the value of a tag ending in 8 (58=FIX..., 128=)?"""
    digits = at
    while digits > 0 and 48 <= line[digits - 1] <= 57:
        digits -= 1
    if digits == at:
        return True
    # digits before it: a tag if they start the line or follow a delimiter, else the end of a cut value
    return not (digits == 0 or line[max(0, digits - len(delimiter)):digits] == delimiter)


@dataclass
class FramedFile:
    data: bytes  # one SOH-delimited message per line
    line_of: np.ndarray  # per framed message: its 1-based line in the delivered file
    message_in_line: np.ndarray  # per framed message: its 1-based position among the messages on that line
    delivered: list[bytes]  # per framed message: the message as delivered (its own delimiter)
    garbled: list[tuple[int, bytes, str]] = field(default_factory=list)  # (line, fragment, detail)
    log_lines: int = 0


def frame(data: bytes, file_delimiter: bytes) -> FramedFile:
    """Every message in ``data`` on a line of its own, SOH-delimited (``file_delimiter``: the file's)."""
    messages, line_of, message_in_line, delivered, garbled = [], [], [], [], []
    log_lines = 0
    for number, line in enumerate(data.split(b"\n"), start=1):
        line = line.rstrip(b"\r")
        if not line.strip():
            continue
        starts = _starts(line)
        if not starts:
            unknown = [m for m in _ANY_BEGIN.finditer(line) if _starts_message(line, m.start(), SOH)]
            if unknown:
                garbled.append((number, line[unknown[0].start():], f"BeginString followed by "
                                f"{unknown[0].group(1)[:1]!r}: not a FIX delimiter (SOH, '^A', '|', ';')"))
            elif _BARE_FIELDS.search(line):
                garbled.append((number, line, "FIX fields without a BeginString(8=FIX...) before them "
                                              "(a message cut before its start)"))
            else:
                log_lines += 1
            continue
        for position, (start, delimiter) in enumerate(starts, start=1):
            stop = starts[position][0] if position < len(starts) else len(line)
            segment = line[start:stop]
            if delimiter != file_delimiter:
                garbled.append((number, segment.rstrip(), f"message delimited by {delimiter!r}, not by the "
                                                          f"file's {file_delimiter!r}"))
                continue
            closing = _MESSAGE_END[delimiter].search(segment)
            if closing is None:
                garbled.append((number, segment.rstrip(), "message has no CheckSum(10=NNN) before the next "
                                                          "message or the end of the line (truncated)"))
                continue
            message = segment[:closing.end()]
            normalised = message.replace(delimiter, SOH) if delimiter != SOH else message
            if not normalised.endswith(SOH):
                normalised += SOH
            messages.append(normalised)
            line_of.append(number)
            message_in_line.append(position)
            delivered.append(message)
    return FramedFile(
        data=b"\n".join(messages) + (b"\n" if messages else b""),
        line_of=np.array(line_of, dtype=np.int64),
        message_in_line=np.array(message_in_line, dtype=np.int64),
        delivered=delivered, garbled=garbled, log_lines=log_lines,
    )


def to_delivered_lines(result, framed: FramedFile):
    """A parse of ``framed.data`` with line numbers and raw text as delivered, plus the garbled fragments."""
    from ingest.fix.parser import FixReject  # a cycle otherwise: the parser imports this module lazily

    executions = result.executions
    if executions.height:
        framed_line = executions["_source_line"].to_numpy() - 1
        executions = executions.with_columns(
            pl.Series("_source_line", framed.line_of[framed_line], dtype=pl.Int64),
            pl.Series("_message_in_line", framed.message_in_line[framed_line], dtype=pl.Int64),
        )
    rejects = [FixReject(int(framed.line_of[r.line_number - 1]), framed.delivered[r.line_number - 1],
                         r.reason_code, r.reason_detail) for r in result.rejects]
    rejects += [FixReject(line, fragment, "fix_garbled", detail) for line, fragment, detail in framed.garbled]
    rejects.sort(key=lambda r: r.line_number)
    result.executions = executions
    result.rejects = rejects
    result.lines_in += len(framed.garbled)
    result.log_lines = framed.log_lines
    return result
