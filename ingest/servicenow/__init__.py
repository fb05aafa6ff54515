"""ServiceNow read-back: the incidents people resolved, landed as labels for the break-anomaly model.

``read_back(run_id)`` is the entry point (the nightly DAG and ``python -m ingest servicenow-read-back``
call it). The incidents themselves are raised and resolved by ``activate``; both go through
:mod:`connectors.servicenow`.
"""

from ingest.servicenow.incidents import INCIDENT_SCHEMA, incidents_dir, read_back

__all__ = ["INCIDENT_SCHEMA", "incidents_dir", "read_back"]
