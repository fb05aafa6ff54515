"""Break anomaly: an XGBoost classifier that ranks every trade, and through it every reconciliation break, by how
likely it is a real problem; an IsolationForest baseline in the same evaluation; MLflow tracking and
champion/challenger promotion (``northstar-break-anomaly``); batch scoring into ``scores.break_scores`` and
``scores.trade_anomaly_scores``; the ServiceNow impact/urgency mapping. See ml/anomaly/README.md.

Modules: ``features`` (SQL in DuckDB), ``labels`` (ground truth or ServiceNow close codes), ``model`` (fit,
baseline, metrics), ``train`` (MLflow run, register, promote), ``score`` (load @champion, write scores),
``priority`` (impact/urgency for activate/), ``lineage`` (dbt invocation id), ``cli`` (``python -m ml anomaly-train`` / ``anomaly-score``).
"""
