"""Connectors: the clients for the systems outside the warehouse, shared by every stage that talks to them.

* :mod:`connectors.retry` — ``RetryPolicy`` (bounded exponential back-off) and ``CallCounter`` (API calls
  per ``requests.Session``);
* :mod:`connectors.http` — the TLS trust rule every HTTPS session follows;
* :mod:`connectors.salesforce` — login, ``SalesforceConnection`` (retries and one re-login), the
  retryable-fault rule; ``ingest`` extracts with it, ``activate`` pushes with it;
* :mod:`connectors.servicenow` — ``ServiceNowClient`` (Basic auth, retries, paged Table API reads, Batch
  API calls answered per sub-request) and the marks Northstar leaves on its incidents; ``activate``
  raises and resolves incidents with it, ``ingest`` reads their outcomes back;
* :mod:`connectors.fix` — the FIX standard's data dictionaries (per BeginString), which the drop-copy
  parser (``ingest``) and the landing gate (``expectations``) both check against.

Connectors carry transport and wire contracts only, no business rule, and import no stage: stages import
connectors, never each other (``tests/foundation/test_stage_imports.py``).
"""
