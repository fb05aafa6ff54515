"""A SOQL subset, parsed properly and translated to parameterised SQL over the org store.

Supported: ``SELECT f1, Parent.f2, ... | COUNT() | FIELDS(ALL|STANDARD|CUSTOM) FROM Object
[WHERE ...] [ORDER BY f [ASC|DESC] [NULLS FIRST|LAST], ...] [LIMIT n] [OFFSET n]`` with ``= != <>
< > <= >= IN, NOT IN, LIKE``, ``AND``/``OR``/``NOT``/parentheses and the literals Salesforce allows
(quoted strings, numbers, TRUE/FALSE/NULL, unquoted ISO dates and datetimes, date literals such as
TODAY, LAST_N_DAYS:n); parent relationship paths (``Account.Name`` on Contact, ``Account.Owner.Name``)
in SELECT, WHERE and ORDER BY; aggregate queries (``COUNT(f)``, ``COUNT_DISTINCT``, ``SUM``,
``AVG``, ``MIN``, ``MAX`` with optional aliases, ``GROUP BY``). 15-character ids match their
18-character form. Every identifier is checked against the object's describe, and every value is a
bound parameter, so no SOQL reaches SQL as text. Errors carry the Salesforce error codes
(MALFORMED_QUERY, INVALID_FIELD, INVALID_TYPE, INVALID_QUERY_FILTER_OPERATOR).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from sandbox.salesforce.store import (
    NUMERIC_TYPES,
    STANDARD_FIELDS,
    SalesforceStore,
    UnknownObject,
    format_datetime,
    quote,
    table_name,
    to_date_text,
    to_datetime_text,
)
from sandbox.salesforce.validation import ID_SHAPE, normalize_id

STRING_TYPES = {"string", "textarea", "email", "phone", "picklist", "url", "id", "reference"}
NOCASE_TYPES = {"string", "textarea", "email", "phone", "picklist", "url"}
KEYWORDS = {
    "SELECT", "FROM", "WHERE", "AND", "OR", "NOT", "IN", "LIKE", "ORDER", "BY", "ASC", "DESC",
    "NULLS", "FIRST", "LAST", "LIMIT", "OFFSET", "TRUE", "FALSE", "NULL", "COUNT", "FIELDS", "GROUP",
    "HAVING",
}
AGGREGATES = {"COUNT": "count", "COUNT_DISTINCT": "count", "SUM": "sum", "AVG": "avg", "MIN": "min", "MAX": "max"}
# Named date literals -> (first day, day after the last) relative to today (the org's time zone is UTC).
_NAMED_DATES = {
    "YESTERDAY": lambda t: (t - timedelta(days=1), t),
    "TODAY": lambda t: (t, t + timedelta(days=1)),
    "TOMORROW": lambda t: (t + timedelta(days=1), t + timedelta(days=2)),
    "LAST_WEEK": lambda t: (_week(t) - timedelta(days=7), _week(t)),
    "THIS_WEEK": lambda t: (_week(t), _week(t) + timedelta(days=7)),
    "NEXT_WEEK": lambda t: (_week(t) + timedelta(days=7), _week(t) + timedelta(days=14)),
    "LAST_MONTH": lambda t: (_month(t, -1), t.replace(day=1)),
    "THIS_MONTH": lambda t: (t.replace(day=1), _month(t, 1)),
    "NEXT_MONTH": lambda t: (_month(t, 1), _month(t, 2)),
    "LAST_90_DAYS": lambda t: (t - timedelta(days=90), t + timedelta(days=1)),
    "NEXT_90_DAYS": lambda t: (t + timedelta(days=1), t + timedelta(days=91)),
    "LAST_YEAR": lambda t: (date(t.year - 1, 1, 1), date(t.year, 1, 1)),
    "THIS_YEAR": lambda t: (date(t.year, 1, 1), date(t.year + 1, 1, 1)),
    "NEXT_YEAR": lambda t: (date(t.year + 1, 1, 1), date(t.year + 2, 1, 1)),
}
_N_DATES = {
    "LAST_N_DAYS": lambda t, n: (t - timedelta(days=n), t + timedelta(days=1)),
    "NEXT_N_DAYS": lambda t, n: (t + timedelta(days=1), t + timedelta(days=n + 1)),
    "N_DAYS_AGO": lambda t, n: (t - timedelta(days=n), t - timedelta(days=n - 1)),
    "LAST_N_WEEKS": lambda t, n: (_week(t) - timedelta(days=7 * n), _week(t)),
    "NEXT_N_WEEKS": lambda t, n: (_week(t) + timedelta(days=7), _week(t) + timedelta(days=7 * (n + 1))),
    "LAST_N_MONTHS": lambda t, n: (_month(t, -n), t.replace(day=1)),
    "NEXT_N_MONTHS": lambda t, n: (_month(t, 1), _month(t, n + 1)),
}


def _week(t: date) -> date:
    return t - timedelta(days=(t.weekday() + 1) % 7)  # weeks start on Sunday (en_US locale)


def _month(t: date, delta: int) -> date:
    index = t.year * 12 + t.month - 1 + delta
    return date(index // 12, index % 12 + 1, 1)


def today() -> date:
    return datetime.now(UTC).date()


@dataclass(frozen=True)
class DateRange:
    start: date
    end: date  # exclusive

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<string>'(?:[^'\\]|\\.)*')
  | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2}))
  | (?P<date>\d{4}-\d{2}-\d{2})
  | (?P<dateliteral>[A-Za-z_]+:\d+)
  | (?P<number>[+-]?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
  | (?P<op>!=|<>|<=|>=|=|<|>)
  | (?P<punct>[(),])
  | (?P<ident>[A-Za-z_][A-Za-z0-9_.]*)
    """,
    re.VERBOSE,
)


class SoqlError(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class Token:
    kind: str
    text: str
    pos: int

    @property
    def upper(self) -> str:
        return self.text.upper()


@dataclass(frozen=True)
class FieldPath:
    """A field of the queried object or, through parent relationships, of a parent ('Account.Name')."""

    text: str  # as the response names it: 'Name', 'Account.Name', 'Account.Owner.Name'
    hops: tuple[tuple[str, str, str], ...]  # (reference field, relationship name, parent object)
    field: str  # the field on the last object
    spec: object  # its FieldSpec


@dataclass
class Aggregate:
    function: str  # COUNT, SUM, ...
    path: FieldPath
    name: str  # alias or exprN


@dataclass
class Query:
    soql: str
    obj: str
    fields: list[str]  # the queried object's own columns to fetch (references of parent paths too)
    count_only: bool = False
    where_sql: str | None = None
    params: list = field(default_factory=list)
    order_sql: str | None = None
    limit: int | None = None
    offset: int | None = None
    paths: list[FieldPath] = field(default_factory=list)  # the selected fields, in SELECT order
    aggregates: list[Aggregate] = field(default_factory=list)
    group_by: list[FieldPath] = field(default_factory=list)
    aggregate_columns: list = field(default_factory=list)  # (output name, SQL, FieldPath | Aggregate)
    group_sql: list[str] = field(default_factory=list)

    @property
    def is_aggregate(self) -> bool:
        return bool(self.aggregates or self.group_by)

    @property
    def output_names(self) -> list[str]:
        return [p.text for p in self.paths]


def tokenize(soql: str) -> list[Token]:
    tokens, pos = [], 0
    while pos < len(soql):
        match = _TOKEN.match(soql, pos)
        if not match:
            raise _malformed(soql, pos, f"unexpected token: {soql[pos:pos + 10].split()[0]!r}")
        if match.lastgroup != "ws":
            tokens.append(Token(match.lastgroup, match.group(), pos))
        pos = match.end()
    return tokens


def _malformed(soql: str, pos: int, message: str) -> SoqlError:
    return SoqlError("MALFORMED_QUERY", f"\n{soql}\n{' ' * pos}^\nERROR at Row:1:Column:{pos + 1}\n{message}")


def _unescape(body: str, like: bool) -> str:
    out, i = [], 0
    simple = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "'": "'", '"': '"'}
    while i < len(body):
        ch = body[i]
        if ch == "\\" and i + 1 < len(body):
            nxt = body[i + 1]
            if nxt in "%_":
                out.append("\\" + nxt if like else nxt)
            elif nxt == "\\":
                out.append("\\\\" if like else "\\")
            else:
                out.append(simple.get(nxt, nxt))
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


class _Parser:
    def __init__(self, soql: str, store: SalesforceStore):
        self.soql = soql
        self.store = store
        self.tokens = tokenize(soql)
        self.i = 0
        self.params: list = []
        self.specs: dict = {}
        self.lower: dict[str, str] = {}
        self._alias = 0

    # --- token helpers ----------------------------------------------------------------------

    def peek(self, offset: int = 0) -> Token | None:
        j = self.i + offset
        return self.tokens[j] if j < len(self.tokens) else None

    def at_keyword(self, *words: str) -> bool:
        token = self.peek()
        return token is not None and token.kind == "ident" and token.upper in words

    def error(self, message: str, token: Token | None = None) -> SoqlError:
        token = token or self.peek()
        pos = token.pos if token else len(self.soql)
        return _malformed(self.soql, pos, message)

    def take(self) -> Token:
        token = self.peek()
        if token is None:
            raise self.error("unexpected end of query")
        self.i += 1
        return token

    def expect_keyword(self, word: str) -> Token:
        token = self.peek()
        if token is None or token.kind != "ident" or token.upper != word:
            got = token.text if token else "<EOF>"
            raise self.error(f"unexpected token: '{got}'" if token else f"expecting '{word}'")
        return self.take()

    def expect_punct(self, text: str) -> Token:
        token = self.peek()
        if token is None or token.text != text:
            got = token.text if token else "<EOF>"
            raise self.error(f"unexpected token: '{got}', expecting '{text}'")
        return self.take()

    def _invalid_field(self, token: Token, message: str) -> SoqlError:
        return SoqlError(
            "INVALID_FIELD",
            f"\n{self.soql}\n{' ' * token.pos}^\nERROR at Row:1:Column:{token.pos + 1}\n{message}",
        )

    # --- grammar ----------------------------------------------------------------------------

    def parse(self) -> Query:  # noqa: C901 - one pass over the SELECT statement's clauses
        self.expect_keyword("SELECT")
        select_tokens: list[Token] = []
        aggregate_tokens: list[tuple[Token, Token, str | None]] = []  # (function, field, alias)
        count_only = False
        expand: str | None = None
        if (self.at_keyword("COUNT") and self.peek(1) is not None and self.peek(1).text == "("
                and self.peek(2) is not None and self.peek(2).text == ")"):
            self.take()
            self.expect_punct("(")
            self.expect_punct(")")
            count_only = True
        elif self.at_keyword("FIELDS") and self.peek(1) is not None and self.peek(1).text == "(":
            self.take()
            self.expect_punct("(")
            kind = self.take()
            if kind.upper not in {"ALL", "STANDARD", "CUSTOM"}:
                raise self.error(f"unexpected token: '{kind.text}'", kind)
            expand = kind.upper
            self.expect_punct(")")
        else:
            while True:
                token = self.take()
                if token.kind != "ident" or token.upper in KEYWORDS - {"FIRST", "LAST", "COUNT"}:
                    raise self.error(f"unexpected token: '{token.text}'", token)
                if self.peek() is not None and self.peek().text == "(":
                    if token.upper not in AGGREGATES:
                        raise self.error(f"unexpected token: '{token.text}'", token)
                    self.take()
                    inner = self.take()
                    if inner.kind != "ident":
                        raise self.error(f"unexpected token: '{inner.text}'", inner)
                    self.expect_punct(")")
                    alias = None
                    nxt = self.peek()
                    if nxt is not None and nxt.kind == "ident" and nxt.upper not in KEYWORDS:
                        alias = self.take().text
                    aggregate_tokens.append((token, inner, alias))
                else:
                    select_tokens.append(token)
                if self.peek() is not None and self.peek().text == ",":
                    self.take()
                    continue
                break
        self.expect_keyword("FROM")
        obj_token = self.take()
        if obj_token.kind != "ident":
            raise self.error(f"unexpected token: '{obj_token.text}'", obj_token)
        try:
            obj = self.store.resolve_object(obj_token.text)
        except UnknownObject:
            raise SoqlError(
                "INVALID_TYPE",
                f"\n{self.soql}\n{' ' * obj_token.pos}^\nERROR at Row:1:Column:{obj_token.pos + 1}\n"
                f"sObject type '{obj_token.text}' is not supported. If you are attempting to use a custom "
                "object, be sure to append the '__c' after the entity name. Please reference your WSDL "
                "or the describe call for the appropriate names.",
            ) from None
        self.specs = self.store.fields(obj)
        self.lower = {name.lower(): name for name in self.specs}
        self.obj = obj
        self.table = table_name(obj)
        paths: list[FieldPath] = []
        if expand == "ALL":
            paths = [self._own(n) for n in self.specs]
        elif expand == "STANDARD":
            paths = [self._own(n) for n, s in self.specs.items() if not s.is_custom]
        elif expand == "CUSTOM":
            paths = [self._own(n) for n, s in self.specs.items() if s.is_custom]
        for token in select_tokens:
            path = self.path(token)
            if path.text not in {p.text for p in paths}:
                paths.append(path)
        aggregates = []
        unnamed = 0
        for function, inner, alias in aggregate_tokens:
            path = self.path(inner)
            name = alias or f"expr{unnamed}"
            unnamed += alias is None
            aggregates.append(Aggregate(function.upper, path, name))
        fields = list(dict.fromkeys([p.hops[0][0] if p.hops else p.field for p in paths]))
        query = Query(self.soql, obj, fields, count_only=count_only, paths=paths, aggregates=aggregates)
        if self.at_keyword("WHERE"):
            self.take()
            query.where_sql = self.expression()
            query.params = self.params
            self.params = []
        if self.at_keyword("GROUP"):
            self.take()
            self.expect_keyword("BY")
            while True:
                query.group_by.append(self.path(self.take()))
                if self.peek() is not None and self.peek().text == ",":
                    self.take()
                    continue
                break
        if query.is_aggregate:
            query.aggregate_columns = [(p.field, self.column_sql(p), p) for p in query.group_by]
            query.aggregate_columns += [(a.name, aggregate_sql(a.function, self.column_sql(a.path)), a)
                                        for a in aggregates]
            query.group_sql = [self.column_sql(p) for p in query.group_by]
        if self.at_keyword("HAVING"):
            raise self.error("unexpected token: 'HAVING' (HAVING is not supported by the sandbox)")
        if query.is_aggregate:
            grouped = {p.text for p in query.group_by}
            for path in paths:
                if path.text not in grouped:
                    raise self._invalid_field(
                        next(t for t in select_tokens if t.text.lower() == path.text.lower()),
                        f"Field must be grouped or aggregated: {path.text}")
        if self.at_keyword("ORDER"):
            self.take()
            self.expect_keyword("BY")
            query.order_sql = self.order_by(query)
            query.params = [*query.params, *self.params]
        if self.at_keyword("LIMIT"):
            self.take()
            query.limit = self.integer()
        if self.at_keyword("OFFSET"):
            self.take()
            query.offset = self.integer()
        if self.peek() is not None:
            raise self.error(f"unexpected token: '{self.peek().text}'")
        return query

    def integer(self) -> int:
        token = self.take()
        if token.kind != "number" or not token.text.isdigit():
            raise self.error(f"unexpected token: '{token.text}'", token)
        return int(token.text)

    def _own(self, name: str) -> FieldPath:
        return FieldPath(name, (), name, self.specs[name])

    def path(self, token: Token) -> FieldPath:
        """A field of the queried object, or a parent relationship path like Account.Owner.Name."""
        if token.kind != "ident":
            raise self.error(f"unexpected token: '{token.text}'", token)
        parts = token.text.split(".")
        if len(parts) > 1 and parts[0].lower() == self.obj.lower():
            parts = parts[1:]  # 'Account.Name' FROM Account: the object's own name may prefix a field
        obj, specs = self.obj, self.specs
        hops: list[tuple[str, str, str]] = []
        names = []
        for part in parts[:-1]:
            reference = _relationship(specs, part)
            if reference is None:
                raise self._invalid_field(
                    token, f"Didn't understand relationship '{part}' in field path. If you are attempting to use "
                    "a custom relationship, be sure to append the '__r' after the custom relationship name. "
                    "Please reference your WSDL or the describe call for the appropriate names.")
            target = specs[reference].reference_to
            try:
                obj = self.store.resolve_object(target or "")
            except UnknownObject:
                raise self._invalid_field(token, f"Didn't understand relationship '{part}' in field path.") from None
            relationship = relationship_name(specs[reference])
            hops.append((reference, relationship, obj))
            names.append(relationship)
            specs = self.store.fields(obj)
        lower = {n.lower(): n for n in specs}
        name = lower.get(parts[-1].lower())
        if name is None:
            raise self._invalid_field(
                token, f"No such column '{parts[-1]}' on entity '{obj}'. If you are attempting to use a custom "
                "field, be sure to append the '__c' after the custom field name. Please reference your WSDL or "
                "the describe call for the appropriate names.")
        return FieldPath(".".join([*names, name]), tuple(hops), name, specs[name])

    def field(self, token: Token) -> str:
        """A field of the queried object itself (no relationship)."""
        path = self.path(token)
        if path.hops:
            raise self._invalid_field(token, f"relationship field {path.text} is not allowed here")
        return path.field

    def column_sql(self, path: FieldPath) -> str:
        """SQL for the path's value on the current row of the queried object (correlated subqueries)."""
        if not path.hops:
            return f"{self.table}.{quote(path.field)}"
        value = f"{self.table}.{quote(path.hops[0][0])}"
        for k, (_ref, _rel, parent) in enumerate(path.hops):
            self._alias += 1
            alias = f'"_p{self._alias}"'
            column = path.hops[k + 1][0] if k + 1 < len(path.hops) else path.field
            value = (f'(select {alias}.{quote(column)} from {table_name(parent)} as {alias} '  # noqa: S608 - identifiers validated
                     f'where {alias}."Id" = {value} and {alias}."IsDeleted" = 0)')
        return value

    def order_by(self, query: Query) -> str:
        parts = []
        while True:
            token = self.take()
            if token.kind == "ident" and token.upper in AGGREGATES and self.peek() is not None \
                    and self.peek().text == "(":
                self.expect_punct("(")
                inner = self.path(self.take())
                self.expect_punct(")")
                column = aggregate_sql(token.upper, self.column_sql(inner))
                spec = None
            else:
                path = self.path(token)
                if query.is_aggregate and path.text not in {p.text for p in query.group_by}:
                    raise self._invalid_field(token, f"Ordered field must be grouped or aggregated: {path.text}")
                column = self.column_sql(path)
                spec = path.spec
            if spec is not None and spec.type in NOCASE_TYPES:
                column += " collate nocase"
            direction = "asc"
            if self.at_keyword("ASC", "DESC"):
                direction = self.take().upper.lower()
            nulls = "nulls first" if direction == "asc" else "nulls last"
            if self.at_keyword("NULLS"):
                self.take()
                which = self.take()
                if which.upper not in {"FIRST", "LAST"}:
                    raise self.error(f"unexpected token: '{which.text}'", which)
                nulls = f"nulls {which.upper.lower()}"
            parts.append(f"{column} {direction} {nulls}")
            if self.peek() is not None and self.peek().text == ",":
                self.take()
                continue
            break
        return ", ".join(parts)

    def expression(self) -> str:
        parts = [self.term()]
        while self.at_keyword("OR"):
            self.take()
            parts.append(self.term())
        return parts[0] if len(parts) == 1 else "(" + " or ".join(parts) + ")"

    def term(self) -> str:
        parts = [self.factor()]
        while self.at_keyword("AND"):
            self.take()
            parts.append(self.factor())
        return parts[0] if len(parts) == 1 else "(" + " and ".join(parts) + ")"

    def factor(self) -> str:
        if self.at_keyword("NOT"):
            self.take()
            return f"(not coalesce({self.factor()}, 0))"
        if self.peek() is not None and self.peek().text == "(":
            self.take()
            inner = self.expression()
            self.expect_punct(")")
            return f"({inner})"
        return self.condition()

    def condition(self) -> str:  # noqa: C901 - one branch per operator form
        field_token = self.take()
        if field_token.kind != "ident" or field_token.upper in KEYWORDS:
            raise self.error(f"unexpected token: '{field_token.text}'", field_token)
        path = self.path(field_token)
        spec = path.spec
        column = self.column_sql(path)
        nocase = " collate nocase" if spec.type in NOCASE_TYPES else ""
        token = self.peek()
        if token is None:
            raise self.error("unexpected end of query")
        if token.kind == "ident" and token.upper in {"IN", "NOT"}:
            negate = token.upper == "NOT"
            self.take()
            if negate:
                self.expect_keyword("IN")
            values = self.value_list(path)
            if any(isinstance(v, DateRange) for v in values):
                raise self.error("unexpected token: date literal in an IN list is not supported by the sandbox")
            non_null = [v for v in values if v is not None]
            if not non_null:
                return "0" if not negate else "1"
            placeholders = ", ".join("?" for _ in non_null)
            self.params.extend(non_null)
            if negate:
                return f"({column} is null or {column}{nocase} not in ({placeholders}))"
            return f"{column}{nocase} in ({placeholders})"
        if token.kind == "ident" and token.upper == "LIKE":
            self.take()
            value_token = self.take()
            if value_token.kind != "string":
                raise self.error(f"unexpected token: '{value_token.text}'", value_token)
            self.params.append(_unescape(value_token.text[1:-1], like=True))
            return f"{column} like ? escape '\\'"
        if token.kind != "op":
            raise self.error(f"unexpected token: '{token.text}'", token)
        op = self.take().text
        op = "!=" if op == "<>" else op
        value = self.value(path, self.take())
        if isinstance(value, DateRange):
            return self._date_range(column, op, value, spec.type)
        if value is None:
            if op == "=":
                return f"{column} is null"
            if op == "!=":
                return f"{column} is not null"
            return "0"
        self.params.append(value)
        if op == "!=":
            return f"({column} is null or {column}{nocase} != ?)"
        return f"{column}{nocase} {op} ?"

    def _date_range(self, column: str, op: str, span: DateRange, ftype: str) -> str:
        def bound(day: date) -> str:
            if ftype == "date":
                return day.isoformat()
            return format_datetime(datetime(day.year, day.month, day.day, tzinfo=UTC))

        lo, hi = bound(span.start), bound(span.end)
        sql = {
            "=": (f"({column} >= ? and {column} < ?)", [lo, hi]),
            "!=": (f"({column} is null or {column} < ? or {column} >= ?)", [lo, hi]),
            "<": (f"{column} < ?", [lo]),
            "<=": (f"{column} < ?", [hi]),
            ">": (f"{column} >= ?", [hi]),
            ">=": (f"{column} >= ?", [lo]),
        }[op]
        self.params.extend(sql[1])
        return sql[0]

    def value_list(self, path: FieldPath) -> list:
        self.expect_punct("(")
        values = []
        while True:
            values.append(self.value(path, self.take()))
            if self.peek() is not None and self.peek().text == ",":
                self.take()
                continue
            break
        self.expect_punct(")")
        return values

    def date_literal(self, token: Token) -> DateRange | None:
        upper = token.upper
        if token.kind == "ident" and upper in _NAMED_DATES:
            return DateRange(*_NAMED_DATES[upper](today()))
        if token.kind == "dateliteral":
            name, _, n = upper.partition(":")
            if name in _N_DATES:
                return DateRange(*_N_DATES[name](today(), int(n)))
            raise self.error(f"unexpected token: '{token.text}'", token)
        return None

    def value(self, path: FieldPath, token: Token):  # noqa: C901 - one branch per field type
        spec = path.spec
        name = path.text
        ftype = spec.type
        if token.kind == "ident" and token.upper == "NULL":
            return None

        def wrong(expected: str, quoted: bool) -> SoqlError:
            hint = "should be enclosed in quotes" if quoted else "should not be enclosed in quotes"
            return SoqlError(
                "INVALID_FIELD",
                f"\n{self.soql}\n{' ' * token.pos}^\nERROR at Row:1:Column:{token.pos + 1}\n"
                f"value of filter criterion for field '{name}' must be of type {expected} and {hint}",
            )

        if ftype in {"datetime", "date"}:
            if ftype == "datetime" and token.kind == "datetime":
                return to_datetime_text(token.text)
            if token.kind == "date":
                return to_date_text(token.text) if ftype == "date" else self._raise(wrong("dateTime", False))
            span = self.date_literal(token)
            if span is not None:
                return span
            if token.kind == "string":  # a quoted date: the real message says exactly that
                raise wrong("dateTime" if ftype == "datetime" else "date", quoted=False)
            raise self.error(f"unexpected token: '{token.text}'", token)
        if token.kind == "dateliteral":
            raise self.error(f"unexpected token: '{token.text}'", token)
        if ftype == "boolean":
            if token.kind == "ident" and token.upper in {"TRUE", "FALSE"}:
                return 1 if token.upper == "TRUE" else 0
            raise wrong("boolean", quoted=False)
        if ftype in NUMERIC_TYPES or ftype == "int":
            if token.kind == "number":
                return float(token.text) if ftype != "int" else int(float(token.text))
            raise wrong("double" if ftype != "int" else "int", quoted=False)
        if token.kind == "string":
            text = _unescape(token.text[1:-1], like=False)
            if ftype in {"id", "reference"} and text:
                if not ID_SHAPE.match(text):
                    raise SoqlError(
                        "INVALID_QUERY_FILTER_OPERATOR",
                        f"\n{self.soql}\n{' ' * token.pos}^\nERROR at Row:1:Column:{token.pos + 1}\n"
                        f"invalid ID field: {text}",
                    )
                return normalize_id(text)
            return text
        if token.kind in {"number", "date", "datetime", "ident", "op", "punct"} and ftype in STRING_TYPES:
            if token.kind in {"op", "punct"} or (token.kind == "ident" and token.upper in KEYWORDS):
                raise self.error(f"unexpected token: '{token.text}'", token)
            raise wrong("string", quoted=True)
        raise self.error(f"unexpected token: '{token.text}'", token)

    @staticmethod
    def _raise(exc: Exception):
        raise exc


def materialize(store: SalesforceStore, obj: str, paths: list[FieldPath], rows: list[dict], v: str) -> list[dict]:
    """API-shaped records for rows of obj: own fields, and each parent relationship as a nested record
    (or null when the reference is empty or its parent is deleted), as the REST query returns them."""
    records = []
    for row in rows:
        record = {"attributes": {"type": obj, "url": f"/services/data/{v}/sobjects/{obj}/{row['Id']}"}}
        for path in paths:
            if not path.hops:
                record[path.field] = row.get(path.field)
        records.append(record)
    groups: dict[tuple[str, str, str], list[FieldPath]] = {}
    for path in paths:
        if path.hops:
            rest = FieldPath(path.text.split(".", 1)[1], path.hops[1:], path.field, path.spec)
            groups.setdefault(path.hops[0], []).append(rest)
    for (reference, relationship, parent), subpaths in groups.items():
        ids = list(dict.fromkeys(row[reference] for row in rows if row.get(reference)))
        needed = list(dict.fromkeys(["IsDeleted", *(p.hops[0][0] if p.hops else p.field for p in subpaths)]))
        parents = [r for r in store.select_by_ids(parent, needed, ids) if not r.get("IsDeleted")]
        by_id = {r["Id"]: rec for r, rec in zip(parents, materialize(store, parent, subpaths, parents, v),
                                                strict=True)}
        for record, row in zip(records, rows, strict=True):
            record[relationship] = by_id.get(row.get(reference))
    return records


def path_value(record: dict, text: str):
    """The value at 'Account.Owner.Name' in a materialized record (None along a null relationship)."""
    value = record
    for part in text.split("."):
        if value is None:
            return None
        value = value.get(part)
    return value


def relationship_name(spec) -> str:
    """Account for AccountId, Owner for OwnerId, Household__r for Household__c."""
    if spec.name.endswith("__c"):
        return spec.name[:-3] + "__r"
    return spec.name[:-2] if spec.name.endswith("Id") else spec.name


def _relationship(specs: dict, name: str) -> str | None:
    """The reference field behind a relationship name (case-insensitive)."""
    for field_name, spec in specs.items():
        if spec.type == "reference" and relationship_name(spec).lower() == name.lower():
            return field_name
    return None


def aggregate_sql(function: str, column: str) -> str:
    if function == "COUNT_DISTINCT":
        return f"count(distinct {column})"
    return f"{AGGREGATES[function]}({column})"


def parse(soql: str, store: SalesforceStore) -> Query:
    """Parse SOQL against the org's describe; raises SoqlError with a Salesforce error code."""
    if not soql or not soql.strip():
        raise SoqlError("MALFORMED_QUERY", "empty query")
    query = _Parser(soql.strip(), store).parse()
    if not query.count_only and not query.paths and not query.aggregates:
        raise SoqlError("MALFORMED_QUERY", "no fields selected")
    return query


__all__ = [
    "Aggregate", "FieldPath", "Query", "SoqlError", "aggregate_sql", "materialize", "parse", "path_value", "tokenize",
    "STANDARD_FIELDS",
]
