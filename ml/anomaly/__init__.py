"""Break anomaly: an XGBoost classifier that ranks every trade, and through it every reconciliation break, by how
likely it is a real problem; an IsolationForest baseline in the same evaluation; MLflow tracking and
champion/challenger promotion (``northstar-break-anomaly``); batch scoring into ``scores.break_scores`` and
``scores.trade_anomaly_scores``. See ml/anomaly/README.md. (What an incident's impact/urgency is, from the score,
is ``activate.priority``'s rule.)

Modules: ``features`` (SQL in DuckDB), ``labels`` (ground truth or ServiceNow close codes), ``model`` (fit,
baseline, metrics), ``train`` (MLflow run, register, promote), ``score`` (load @champion, write scores),
``lineage`` (dbt invocation id), ``cli`` (``python -m ml anomaly-train`` / ``anomaly-score``).
"""
