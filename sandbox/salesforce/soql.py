"""A SOQL subset, parsed properly and translated to parameterised SQL over the org store.

Supported: ``SELECT f1, f2 | COUNT() | FIELDS(ALL|STANDARD|CUSTOM) FROM Object [WHERE ...]
[ORDER BY f [ASC|DESC] [NULLS FIRST|LAST], ...] [LIMIT n] [OFFSET n]`` with ``= != <> < > <= >=
IN, NOT IN, LIKE``, ``AND``/``OR``/``NOT``/parentheses and the literals Salesforce allows (quoted
strings, numbers, TRUE/FALSE/NULL, unquoted ISO dates and datetimes). Every identifier is checked
against the object's describe, and every value is a bound parameter, so no SOQL reaches SQL as text.
Errors carry the Salesforce error codes (MALFORMED_QUERY, INVALID_FIELD, INVALID_TYPE).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from sandbox.salesforce.store import (
    NUMERIC_TYPES,
    STANDARD_FIELDS,
    SalesforceStore,
    UnknownObject,
    quote,
    to_date_text,
    to_datetime_text,
)

STRING_TYPES = {"string", "textarea", "email", "phone", "picklist", "url", "id", "reference"}
NOCASE_TYPES = {"string", "textarea", "email", "phone", "picklist", "url"}
KEYWORDS = {
    "SELECT", "FROM", "WHERE", "AND", "OR", "NOT", "IN", "LIKE", "ORDER", "BY", "ASC", "DESC",
    "NULLS", "FIRST", "LAST", "LIMIT", "OFFSET", "TRUE", "FALSE", "NULL", "COUNT", "FIELDS",
}

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<string>'(?:[^'\\]|\\.)*')
  | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2}))
  | (?P<date>\d{4}-\d{2}-\d{2})
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


@dataclass
class Query:
    soql: str
    obj: str
    fields: list[str]
    count_only: bool = False
    where_sql: str | None = None
    params: list = field(default_factory=list)
    order_sql: str | None = None
    limit: int | None = None
    offset: int | None = None


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

    # --- grammar ----------------------------------------------------------------------------

    def parse(self) -> Query:
        self.expect_keyword("SELECT")
        select_tokens: list[Token] = []
        count_only = False
        expand: str | None = None
        if self.at_keyword("COUNT") and self.peek(1) is not None and self.peek(1).text == "(":
            self.take()
            self.expect_punct("(")
            if self.peek() is not None and self.peek().text != ")":
                raise SoqlError("MALFORMED_QUERY", "only COUNT() is supported by the sandbox")
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
                if token.kind != "ident" or token.upper in KEYWORDS - {"FIRST", "LAST"}:
                    raise self.error(f"unexpected token: '{token.text}'", token)
                if self.peek() is not None and self.peek().text == "(":
                    raise SoqlError("MALFORMED_QUERY", f"aggregate function {token.text}() is not supported")
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
        fields: list[str] = []
        if expand == "ALL":
            fields = list(self.specs)
        elif expand == "STANDARD":
            fields = [n for n, s in self.specs.items() if not s.is_custom]
        elif expand == "CUSTOM":
            fields = [n for n, s in self.specs.items() if s.is_custom]
        for token in select_tokens:
            name = self.field(token)
            if name not in fields:
                fields.append(name)
        query = Query(self.soql, obj, fields, count_only=count_only)
        if self.at_keyword("WHERE"):
            self.take()
            query.where_sql = self.expression()
            query.params = self.params
        if self.at_keyword("ORDER"):
            self.take()
            self.expect_keyword("BY")
            query.order_sql = self.order_by()
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

    def field(self, token: Token) -> str:
        if token.kind != "ident" or "." in token.text:
            raise SoqlError(
                "INVALID_FIELD",
                f"\n{self.soql}\n{' ' * token.pos}^\nERROR at Row:1:Column:{token.pos + 1}\n"
                f"Didn't understand relationship '{token.text.split('.')[0]}' in field path. "
                "The sandbox does not support relationship queries.",
            )
        name = self.lower.get(token.text.lower())
        if name is None:
            raise SoqlError(
                "INVALID_FIELD",
                f"\n{self.soql}\n{' ' * token.pos}^\nERROR at Row:1:Column:{token.pos + 1}\n"
                f"No such column '{token.text}' on entity '{self.obj}'. If you are attempting to use a "
                "custom field, be sure to append the '__c' after the custom field name. Please reference "
                "your WSDL or the describe call for the appropriate names.",
            )
        return name

    def order_by(self) -> str:
        parts = []
        while True:
            name = self.field(self.take())
            column = quote(name)
            if self.specs[name].type in NOCASE_TYPES:
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

    def condition(self) -> str:
        field_token = self.take()
        if field_token.kind != "ident" or field_token.upper in KEYWORDS:
            raise self.error(f"unexpected token: '{field_token.text}'", field_token)
        name = self.field(field_token)
        spec = self.specs[name]
        column = quote(name)
        nocase = " collate nocase" if spec.type in NOCASE_TYPES else ""
        token = self.peek()
        if token is None:
            raise self.error("unexpected end of query")
        if token.kind == "ident" and token.upper in {"IN", "NOT"}:
            negate = token.upper == "NOT"
            self.take()
            if negate:
                self.expect_keyword("IN")
            values = self.value_list(name)
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
        value = self.value(name, self.take())
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

    def value_list(self, name: str) -> list:
        self.expect_punct("(")
        values = []
        while True:
            values.append(self.value(name, self.take()))
            if self.peek() is not None and self.peek().text == ",":
                self.take()
                continue
            break
        self.expect_punct(")")
        return values

    def value(self, name: str, token: Token):
        spec = self.specs[name]
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

        if ftype == "datetime":
            if token.kind == "datetime":
                return to_datetime_text(token.text)
            raise wrong("dateTime", quoted=False)
        if ftype == "date":
            if token.kind == "date":
                return to_date_text(token.text)
            raise wrong("date", quoted=False)
        if ftype == "boolean":
            if token.kind == "ident" and token.upper in {"TRUE", "FALSE"}:
                return 1 if token.upper == "TRUE" else 0
            raise wrong("boolean", quoted=False)
        if ftype in NUMERIC_TYPES or ftype == "int":
            if token.kind == "number":
                return float(token.text) if ftype != "int" else int(float(token.text))
            raise wrong("double" if ftype != "int" else "int", quoted=False)
        if token.kind == "string":
            return _unescape(token.text[1:-1], like=False)
        if token.kind in {"number", "date", "datetime", "ident", "op", "punct"} and ftype in STRING_TYPES:
            if token.kind in {"op", "punct"} or (token.kind == "ident" and token.upper in KEYWORDS):
                raise self.error(f"unexpected token: '{token.text}'", token)
            raise wrong("string", quoted=True)
        raise self.error(f"unexpected token: '{token.text}'", token)


def parse(soql: str, store: SalesforceStore) -> Query:
    """Parse SOQL against the org's describe; raises SoqlError with a Salesforce error code."""
    if not soql or not soql.strip():
        raise SoqlError("MALFORMED_QUERY", "empty query")
    query = _Parser(soql.strip(), store).parse()
    if not query.count_only and not query.fields:
        raise SoqlError("MALFORMED_QUERY", "no fields selected")
    return query


__all__ = ["Query", "SoqlError", "parse", "tokenize", "STANDARD_FIELDS"]
