"""What a suite is made of: datasets (a SQL select over DuckDB) and the checks run against each.

A suite module (``expectations/suites/<gate>.py``) returns a list of ``Dataset``; the runner turns
each into a GX asset (a query asset on the gate's SQL datasource), each ``Check`` into a GX
expectation with its ``severity`` and a stable ``name`` (``<gate>.<dataset>.<what>``, the
``expectation`` column of ``quality.gate_results``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

CRITICAL = "critical"
WARNING = "warning"
SEVERITIES = (CRITICAL, WARNING)


@dataclass(frozen=True)
class Check:
    name: str  # short, unique within the dataset, e.g. "quantity_positive"
    severity: str
    expectation: str  # GX class name in great_expectations.expectations, e.g. "ExpectColumnValuesToBeBetween"
    kwargs: dict[str, Any]
    description: str
    # for an aggregate check (a count of offending keys): the SQL listing the offending rows, run on
    # failure only, for the sample rows of the log and gate_results
    samples_sql: str | None = None

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity of {self.name} must be one of {SEVERITIES}, not {self.severity!r}")


@dataclass(frozen=True)
class Dataset:
    name: str  # the GX asset name, e.g. "internal_trades"
    sql: str  # a select over the gate's database (DuckDB, or the warehouse's Spark catalog)
    key_columns: tuple[str, ...] = ()  # shown with each sample offending row
    checks: list[Check] = field(default_factory=list)
    label: str | None = None  # the <dataset> part of the checks' names, when it is not ``name``

    @property
    def check_prefix(self) -> str:
        return self.label or self.name


def critical(name: str, expectation: str, description: str, samples_sql: str | None = None, **kwargs: Any) -> Check:
    return Check(name, CRITICAL, expectation, kwargs, description, samples_sql)


def warning(name: str, expectation: str, description: str, samples_sql: str | None = None, **kwargs: Any) -> Check:
    return Check(name, WARNING, expectation, kwargs, description, samples_sql)


def pct(share: float) -> str:
    """0.995 -> '99.5%', 0.2 -> '20%' (for descriptions; never rounds a threshold away)."""
    return f"{share * 100:.6g}%"


def sql_literal(value: Any) -> str:
    """A SQL string literal (paths and run ids come from our own manifests, but quote them anyway)."""
    return "'" + str(value).replace("'", "''") + "'"


def sql_list(values) -> str:
    return "[" + ", ".join(sql_literal(v) for v in values) + "]"


def sql_dates(values) -> str:
    """``(date '2026-10-29', ...)`` for an ``in`` list (ISO dates; both engines' SQL)."""
    return "(" + ", ".join(f"date {sql_literal(v)}" for v in values) + ")"


def offending_rows(name: str, sql: str, check: str, description: str, severity: str = CRITICAL,
                   samples_sql: str | None = None) -> Dataset:
    """A dataset that *is* the offending rows, and a check that it has none.

    GX then runs exactly one query for it (its row count; the observed value is the number of
    offending rows), where its uniqueness expectations join every row back to its key's count and
    ``UnexpectedRowsExpectation`` runs its query twice. On failure the runner lists the first rows.
    """
    return Dataset(name=name, sql=sql, checks=[
        Check(check, severity, "ExpectTableRowCountToBeBetween", {"min_value": 0, "max_value": 0}, description,
              samples_sql or sql),
    ])


def duplicate_keys(name: str, source: str, keys: list[str], check: str, description: str,
                   severity: str = CRITICAL) -> Dataset:
    """Keys of ``source`` (a table, or a parenthesised select with an alias) that occur more than once.

    Grouping by a 64-bit hash of the key first is a narrow, fast pass (about twice as fast as
    grouping 42M varchar + date keys); only rows whose hash repeats are grouped by the key itself,
    so a hash collision can never be reported as a duplicate.
    """
    columns = ", ".join(keys)
    sql = (
        f"with repeated_hashes as (select hash({columns}) as key_hash from {source} group by key_hash "  # noqa: S608
        f"having count(*) > 1) select {columns}, count(*) as copies from {source} "
        f"where hash({columns}) in (select key_hash from repeated_hashes) group by {columns} having count(*) > 1"
    )
    return offending_rows(name, sql, check, description, severity, samples_sql=sql + " order by copies desc")
