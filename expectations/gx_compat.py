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
"""

from __future__ import annotations

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
    _PATCHED = True
