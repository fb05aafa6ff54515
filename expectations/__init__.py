"""Great Expectations quality gates: ``landing`` (after ingest), ``marts`` (after dbt), ``scores`` (after scoring).

``run_gate(gate, run_id, cfg=None, **context) -> GateReport`` validates, records each expectation in
``quality.gate_results``, builds Data Docs under ``settings().paths.gx_root / "data_docs"`` and raises
``GateFailed`` when a critical expectation fails. See expectations/README.md.
"""

from expectations.runner import GateFailed, GateReport, build_data_docs, run_gate

__all__ = ["GateFailed", "GateReport", "build_data_docs", "run_gate"]
