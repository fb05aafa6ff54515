"""Salesforce extraction: CRM objects to ``landing/salesforce/`` as Parquet, incremental by watermark.

``extract_salesforce(landing_dir)`` is the entry point (the nightly DAG and
``python -m ingest salesforce`` call it); the layout and semantics are in this folder's README. The connection (login, TLS, retries,
re-login) is :mod:`connectors.salesforce`, shared with ``activate``.
"""

from ingest.salesforce.extract import (
    DEFAULT_OBJECTS,
    ExtractConfig,
    ExtractReport,
    ObjectResult,
    SalesforceExtractFailed,
    extract_salesforce,
)

__all__ = [
    "DEFAULT_OBJECTS",
    "ExtractConfig",
    "ExtractReport",
    "ObjectResult",
    "SalesforceExtractFailed",
    "extract_salesforce",
]
