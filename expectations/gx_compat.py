"""Make Great Expectations' SQL execution engine read DuckDB results before the connection closes.

GX 1.x runs every metric query as ``with engine.connect() as conn: result = conn.execute(q)`` and
fetches *after* the ``with`` block. With duckdb-engine on DuckDB 2 the pending result is discarded
when the connection goes back to the pool, so every metric comes back empty
(``IndexError: list index out of range`` in ``resolve_metric_bundle``). For the ``duckdb`` dialect
only, this buffers the rows inside the connection scope, at most ``BUFFER_ROWS`` of them: GX itself
reads at most 200 rows of a row-returning query (``fetchmany``) and limits its sample queries in SQL,
so a failure with millions of offending rows never comes into memory. Other dialects are untouched.
``tests/expectations/test_gx_compat.py`` shows the upstream behaviour so the shim can be dropped
when GX or duckdb-engine fixes it.

It also unhooks duckdb-engine from SQLAlchemy at interpreter exit (``_release_duckdb_at_exit``), so
DuckDB's objects are freed before nanobind's leak check (``nanobind: leaked ...`` on every gate).
"""

from __future__ import annotations

import atexit
import sys

_PATCHED = False
BUFFER_ROWS = 10_000


def install() -> None:
    global _PATCHED
    if _PATCHED:
        return
    from great_expectations.execution_engine import sqlalchemy_execution_engine as engine_module

    engine_cls = engine_module.SqlAlchemyExecutionEngine
    original = engine_cls.execute_query

    def execute_query(self, query):
        if self.dialect_name != "duckdb":
            return original(self, query)
        from sqlalchemy.engine.result import IteratorResult, SimpleResultMetaData

        with self.get_connection() as connection:
            result = self._execute_query_with_recovery(connection, query)
            if not result.returns_rows:
                return result
            keys = list(result.keys())
            rows = [tuple(row) for row in result.fetchmany(BUFFER_ROWS)]
            result.close()
        return IteratorResult(SimpleResultMetaData(keys), iter(rows))

    engine_cls.execute_query = execute_query
    atexit.register(_release_duckdb_at_exit)
    _PATCHED = True


def _release_duckdb_at_exit() -> None:
    """Drop the one link from SQLAlchemy to duckdb-engine, so DuckDB's objects die before nanobind's check.

    Why they outlive the interpreter: GX imports jsonschema -> referencing, whose registries keep
    resources in rpds-py maps the cycle collector cannot see into (crate-py/rpds#264), so that cycle
    is never freed, and CPython does not clear a module's globals at shutdown once the module object
    is gone. The cycle reaches ``typing._overload_dummy``, on which SQLAlchemy's
    ``@dataclass_transform`` over an ``@overload`` stores ORM classes, hence all of SQLAlchemy, and
    ``TryCast`` carries duckdb-engine's ``@compiles(TryCast, "duckdb")`` hook, whose globals hold
    ``duckdb`` and so its nanobind types, which nanobind's exit check then reports as ~90 lines of
    "leaked". ``deregister`` (SQLAlchemy's public API; nothing compiles SQL after exit) cuts the hook.
    """
    if "duckdb_engine" not in sys.modules:
        return  # no duckdb:// engine was created in this process
    import sqlalchemy
    from sqlalchemy.ext.compiler import deregister

    try_cast = getattr(sqlalchemy, "TryCast", None)
    dispatcher = getattr(try_cast, "_compiler_dispatcher", None)
    if dispatcher is not None and "duckdb" in getattr(dispatcher, "specs", {}):
        deregister(try_cast)
