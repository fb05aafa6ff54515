"""One module per gate (``landing``, ``marts``, ``scores``), each with ``plan(ctx) -> Plan``: the datasets
(SQL selects over DuckDB) and the checks (GX expectations with a severity) of that gate."""
