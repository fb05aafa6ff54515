"""Where Northstar's models are registered in MLflow, and the read-only look-ups outside ``ml`` need.

The registered model names, the aliases (``champion`` / ``challenger``), the client configured from settings,
"which version holds this alias" and the ``<name>/<version>`` label scores carry. ``ml.registry`` (training,
registering, promotion, loading) builds on these; the dashboard snapshot and the intraday recon read the
registry through them, so neither imports ``ml`` (stages do not import each other: see ``northstar``'s
package docstring). Only the names and reads live here; every write to the registry is ``ml``'s.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from northstar.settings import Settings, settings

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

CLV_MODEL = "northstar-clv"
CHURN_MODEL = "northstar-churn"
BREAK_ANOMALY_MODEL = "northstar-break-anomaly"
REGISTERED_MODELS = (CLV_MODEL, CHURN_MODEL, BREAK_ANOMALY_MODEL)

CHAMPION = "champion"
CHALLENGER = "challenger"


def configure(cfg: Settings | None = None) -> MlflowClient:
    """Point MLflow at the tracking store and registry from settings; return a client for them."""
    import mlflow  # a slow import: only for callers that talk to the registry
    from mlflow import MlflowClient

    cfg = cfg or settings()
    uri = cfg.mlflow_tracking_uri
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def alias_version(model_name: str, alias: str = CHAMPION, cfg: Settings | None = None) -> ModelVersion | None:
    """The version holding ``alias``, or None (no such model or alias)."""
    from mlflow.exceptions import MlflowException

    client = configure(cfg)
    try:
        return client.get_model_version_by_alias(model_name, alias)
    except MlflowException:
        return None


def version_label(model_name: str, version: str | int) -> str:
    """The string written next to every score: ``northstar-clv/3``."""
    return f"{model_name}/{version}"
