"""MLflow tracking and registry for every Northstar model: experiments, versions, aliases, promotion.

One experiment per registered model (``northstar-clv``, ``northstar-churn``, ``northstar-break-anomaly``),
tracking URI and artifact root from ``northstar.settings``. The names, aliases, ``configure``, ``alias_version``
and ``version_label`` are :mod:`northstar.model_registry`'s (re-exported here), so stages that only read the
registry (the dashboard, the intraday recon) need not import ``ml``. A freshly registered version gets the alias
``challenger``; it takes the alias ``champion`` only through :func:`promote_if_better`, which

1. evaluates the challenger and the current ``models:/<name>@champion`` with the *same* caller-supplied
   function (so both are scored on the same holdout),
2. checks the metrics with MLflow's own ``mlflow.validate_evaluation_results`` and ``MetricThreshold``
   (an absolute floor/ceiling and a minimum change over the champion, per metric),
3. adds the caller's extra gates (fairness, drift, ...) as named pass/fail checks,
4. moves ``champion`` only when everything passes (the previous champion is remembered in the version
   tag ``previous_champion`` so :func:`rollback` can move it back), and logs the decision and every reason
   as ``promotion/decision-v<version>.json`` on the challenger's run and as tags on the model version.

Consumers load by alias (:func:`load_model`), never by version number; rolling back is moving the alias.

MLflow 3 dropped ``mlflow.evaluate(baseline_model=..., validation_thresholds=...)``; the comparison here is
``mlflow.validate_evaluation_results`` on two ``EvaluationResult`` objects. The ``evaluate`` callback may use
``mlflow.models.evaluate`` itself, or (what Northstar's models do) compute the project's own metrics from
``ml.metrics`` so the champion is judged on exactly the figures in the training report.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import mlflow
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.models import MetricThreshold
from mlflow.models.evaluation import EvaluationResult
from mlflow.models.evaluation.validation import ModelValidationFailedException

from northstar.errors import ExpectedError
from northstar.model_registry import (
    BREAK_ANOMALY_MODEL,
    CHALLENGER,
    CHAMPION,
    CHURN_MODEL,
    CLV_MODEL,
    REGISTERED_MODELS,
    alias_version,
    configure,
    version_label,
)
from northstar.settings import Settings, settings

log = logging.getLogger(__name__)

__all__ = [
    "BREAK_ANOMALY_MODEL", "CHALLENGER", "CHAMPION", "CHURN_MODEL", "CLV_MODEL", "MetricThreshold",
    "PromotionCheck", "PromotionDecision", "REGISTERED_MODELS", "alias_version", "configure", "load_model",
    "model_uri", "pip_requirements", "promote", "promote_if_better", "register_challenger", "rollback", "start_training_run",
    "use_experiment", "version_label",
]


class ChampionMissing(LookupError, ExpectedError):
    """No model version holds the alias yet (train and promote one first)."""


# ---------------------------------------------------------------- setup

def _artifact_location(cfg: Settings, experiment_name: str) -> str:
    root = cfg.mlflow_artifact_root
    # Any URI: s3://, gs://, file://, and the tracking server's own mlflow-artifacts:/ (one slash:
    # taken for a folder, it put every worker's artifacts under its working directory, not the server's)
    if len(urlparse(root).scheme) > 1:
        return f"{root.rstrip('/')}/{experiment_name}"
    path = Path(root).expanduser().resolve() / experiment_name
    path.mkdir(parents=True, exist_ok=True)
    return path.as_uri()


def use_experiment(model_name: str, cfg: Settings | None = None) -> str:
    """Create (once) and activate the experiment named after ``model_name``; return its id.

    The experiment's artifact location is ``<artifact root>/<model name>``, set at creation.
    """
    cfg = cfg or settings()
    client = configure(cfg)
    experiment = client.get_experiment_by_name(model_name)
    if experiment is None:
        try:
            experiment_id = client.create_experiment(model_name,
                                                     artifact_location=_artifact_location(cfg, model_name))
        except MlflowException:  # created concurrently by another process
            experiment_id = client.get_experiment_by_name(model_name).experiment_id
    else:
        experiment_id = experiment.experiment_id
    # MLflow 3's UI opens an experiment without this tag on an empty GenAI overview; these are
    # classic model-development experiments, so they open on their runs.
    client.set_experiment_tag(experiment_id, EXPERIMENT_KIND_TAG, CLASSIC_ML_KIND)
    mlflow.set_experiment(experiment_id=experiment_id)
    return experiment_id


EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
CLASSIC_ML_KIND = "custom_model_development"
RUN_DESCRIPTION_TAG = "mlflow.note.content"  # what the UI shows as a run's description


def model_card_link(experiment_id: str, run_id: str) -> str:
    """A link the MLflow UI opens on the run's ``model_card.md`` artifact (the UI routes by URL hash)."""
    return f"#/experiments/{experiment_id}/runs/{run_id}/artifacts/model_card.md"


def start_training_run(model_name: str, run_name: str | None = None, tags: Mapping[str, str] | None = None,
                       cfg: Settings | None = None) -> mlflow.ActiveRun:
    """``with start_training_run("northstar-clv") as run:`` — a run in the model's own experiment."""
    experiment_id = use_experiment(model_name, cfg)
    return mlflow.start_run(experiment_id=experiment_id, run_name=run_name,
                            tags={"northstar.model": model_name, **(tags or {})})


def pip_requirements(*packages: str) -> list[str]:
    """Pinned requirements for ``log_model(pip_requirements=...)`` from the installed versions.

    Passing them skips MLflow's requirement inference, which imports the model in a subprocess and
    costs 10-15 s per logged model on this machine.
    """
    from importlib.metadata import version

    names = packages or ("mlflow", "xgboost", "numpy", "pandas", "scikit-learn")
    return [f"{name}=={version(name)}" for name in names]


# ---------------------------------------------------------------- versions and aliases

def model_uri(model_name: str, alias: str = CHAMPION) -> str:
    return f"models:/{model_name}@{alias}"


def _client(cfg: Settings | None = None) -> MlflowClient:
    return configure(cfg)


def logged_model_id(source_uri: str) -> str | None:
    """The logged model a ``models:/m-<id>`` URI names (what ``log_model`` returns in MLflow 3), else None.

    An MLflow tracking server accepts such a source for a new version only with that model's id
    beside it (without, it looks for the source among the run's artifacts and refuses the version);
    a local store takes either, so only the production stack showed it.
    """
    match = re.fullmatch(r"models:/(m-[^/@]+)", source_uri)
    return match.group(1) if match else None


def register_challenger(source_uri: str, model_name: str, run_id: str | None = None,
                        tags: Mapping[str, Any] | None = None, description: str | None = None,
                        cfg: Settings | None = None) -> ModelVersion:
    """Register ``source_uri`` (``ModelInfo.model_uri`` from ``log_model``, or ``runs:/<id>/<path>``) as a new
    version of ``model_name`` and give it the alias ``challenger`` (moved from any earlier challenger)."""
    client = _client(cfg)
    try:
        client.get_registered_model(model_name)
    except MlflowException:
        try:
            client.create_registered_model(model_name, description=f"Northstar model {model_name}")
        except MlflowException:
            pass  # registered concurrently
    card = None
    if run_id:
        experiment_id = client.get_run(run_id).info.experiment_id
        card = model_card_link(experiment_id, run_id)
    text = description or f"{model_name} trained in run {run_id}"
    if card:
        text += f"\n\n[Model card]({card}) (intended use, data, metrics against the baselines, limits)"
    version = client.create_model_version(model_name, source=source_uri, run_id=run_id,
                                          tags={k: str(v) for k, v in (tags or {}).items()},
                                          description=text, model_id=logged_model_id(source_uri))
    if run_id:
        client.set_tag(run_id, RUN_DESCRIPTION_TAG,
                       f"Training run of **{model_name}**, registered as version {version.version} "
                       f"(alias `{CHALLENGER}` until the promotion check moves `{CHAMPION}`). "
                       f"Read the [model card]({card}) first; metrics, plots and the evaluation "
                       "tables are under Artifacts.")
    client.set_registered_model_alias(model_name, CHALLENGER, version.version)
    log.info("registered %s as challenger", version_label(model_name, version.version))
    return client.get_model_version(model_name, version.version)


def load_model(model_name: str, alias: str = CHAMPION, flavor: str = "pyfunc", cfg: Settings | None = None):
    """Load ``models:/<name>@<alias>`` (``flavor``: ``pyfunc``, ``xgboost``, ``sklearn``...).

    Returns ``(model, ModelVersion)`` so the caller can stamp the version on what it writes.
    Raises ``LookupError`` if the alias is not set.
    """
    configure(cfg)
    version = alias_version(model_name, alias, cfg)
    if version is None:
        raise ChampionMissing(f"{model_uri(model_name, alias)} is not set: train and promote a model first "
                          f"(python -m ml train)")
    loader = getattr(mlflow, flavor)
    return loader.load_model(model_uri(model_name, alias)), version


# ---------------------------------------------------------------- promotion

@dataclass
class PromotionCheck:
    """A named gate beside the metric thresholds (fairness, drift, data volume...)."""
    name: str
    passed: bool
    detail: str = ""


@dataclass
class PromotionDecision:
    model_name: str
    challenger_version: str
    champion_version: str | None
    promoted: bool
    reasons: list[str]
    challenger_metrics: dict[str, float]
    champion_metrics: dict[str, float] = field(default_factory=dict)
    thresholds: dict[str, dict] = field(default_factory=dict)
    checks: list[dict] = field(default_factory=list)
    forced: bool = False

    @property
    def challenger_label(self) -> str:
        return version_label(self.model_name, self.challenger_version)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["challenger_label"] = self.challenger_label
        return data

    def summary(self) -> str:
        verdict = "PROMOTED to champion" if self.promoted else "kept as challenger"
        against = f"champion v{self.champion_version}" if self.champion_version else "no champion"
        return f"{self.challenger_label} vs {against}: {verdict} — " + "; ".join(self.reasons)


def _threshold_dict(threshold: MetricThreshold) -> dict:
    return {"threshold": threshold.threshold, "min_absolute_change": threshold.min_absolute_change,
            "min_relative_change": threshold.min_relative_change,
            "greater_is_better": threshold.greater_is_better}


def _finite(metrics: Mapping[str, float]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if v is not None and float(v) == float(v)}


def _validate(thresholds: dict[str, MetricThreshold], candidate: Mapping[str, float],
              baseline: Mapping[str, float] | None) -> list[str]:
    """Failure lines from ``mlflow.validate_evaluation_results`` (empty when it passes)."""
    if baseline is None:
        # No champion: only the absolute floors apply (the change-over-baseline parts need a baseline).
        thresholds = {name: MetricThreshold(threshold=t.threshold, greater_is_better=t.greater_is_better)
                      for name, t in thresholds.items() if t.threshold is not None}
        if not thresholds:
            return []
    candidate_result = EvaluationResult(metrics=_finite(candidate), artifacts={})
    baseline_result = EvaluationResult(metrics=_finite(baseline), artifacts={}) if baseline is not None else None
    try:
        mlflow.validate_evaluation_results(thresholds, candidate_result, baseline_result)
    except ModelValidationFailedException as failure:
        return [line.strip() for line in failure.message.splitlines() if line.strip()]
    return []


def promote_if_better(model_name: str, challenger_version: str | int,
                      evaluate: Callable[[str], Mapping[str, float]],
                      thresholds: Mapping[str, MetricThreshold],
                      checks: list[PromotionCheck] | None = None, force: bool = False,
                      run_id: str | None = None, cfg: Settings | None = None) -> PromotionDecision:
    """Judge version ``challenger_version`` against ``@champion`` and move ``champion`` if it wins.

    ``evaluate(model_uri) -> {metric: value}`` scores a model URI on the holdout; it is called for the
    challenger (``models:/<name>/<version>``) and the champion (``models:/<name>@champion``), so both are
    judged on the same data. ``thresholds`` maps a metric name to a ``MetricThreshold``; the margin over
    the champion is its ``min_absolute_change`` / ``min_relative_change``. ``checks`` are extra gates that
    must all pass. ``force`` promotes regardless (the reasons still say what failed). The decision is logged
    to ``run_id`` (default: the challenger version's run) and tagged on the model version.
    """
    client = _client(cfg)
    challenger_version = str(challenger_version)
    checks = list(checks or [])
    challenger_metrics = dict(evaluate(f"models:/{model_name}/{challenger_version}"))
    champion = alias_version(model_name, CHAMPION, cfg)
    champion_version = str(champion.version) if champion is not None else None
    reasons: list[str] = []
    champion_metrics: dict[str, float] = {}
    failures: list[str] = []

    if champion_version == challenger_version:
        reasons.append(f"v{challenger_version} already is the champion")
        decision = PromotionDecision(model_name, challenger_version, champion_version, False, reasons,
                                     challenger_metrics, challenger_metrics,
                                     {k: _threshold_dict(v) for k, v in thresholds.items()},
                                     [asdict(c) for c in checks], force)
        _log_decision(client, decision, run_id)
        return decision

    if champion is not None:
        try:
            champion_metrics = dict(evaluate(model_uri(model_name, CHAMPION)))
        except Exception as error:  # noqa: BLE001 - e.g. the champion's inputs no longer exist
            failures.append(f"champion v{champion_version} could not be evaluated on this holdout ({error!s:.200}); "
                            "promote by hand (--force) after review")
    failures += _validate(dict(thresholds), challenger_metrics, champion_metrics if champion is not None else None)
    failures += [f"check {c.name} failed: {c.detail}" for c in checks if not c.passed]

    for name, threshold in thresholds.items():
        new = challenger_metrics.get(name)
        old = champion_metrics.get(name)
        direction = "higher" if threshold.greater_is_better else "lower"
        margin = threshold.min_absolute_change or threshold.min_relative_change
        line = f"{name} {new:.4f}" if new is not None else f"{name} missing"
        if old is not None:
            line += f" vs champion {old:.4f}"
        line += f" ({direction} is better"
        if threshold.threshold is not None:
            line += f", floor {threshold.threshold}"
        if margin:
            kind = "absolute" if threshold.min_absolute_change else "relative"
            line += f", {kind} margin {margin}"
        reasons.append(line + ")")
    reasons += [f"check {c.name}: {'pass' if c.passed else 'FAIL'} {c.detail}".rstrip() for c in checks]
    if champion is None:
        reasons.insert(0, "no champion yet: absolute floors and checks only")
    reasons += [f"FAILED: {f}" for f in failures]

    promoted = not failures or force
    if force and failures:
        reasons.append("forced promotion despite the failures above")
    decision = PromotionDecision(model_name, challenger_version, champion_version, promoted, reasons,
                                 challenger_metrics, champion_metrics,
                                 {k: _threshold_dict(v) for k, v in thresholds.items()},
                                 [asdict(c) for c in checks], force and bool(failures))
    if promoted:
        promote(model_name, challenger_version, cfg=cfg)
    _log_decision(client, decision, run_id)
    log.info(decision.summary())
    return decision


def promote(model_name: str, version: str | int, cfg: Settings | None = None) -> None:
    """Move ``champion`` to ``version`` (remembering the previous champion on the new version)."""
    client = _client(cfg)
    version = str(version)
    previous = alias_version(model_name, CHAMPION, cfg)
    if previous is not None and str(previous.version) != version:
        client.set_model_version_tag(model_name, version, "previous_champion", str(previous.version))
    client.set_registered_model_alias(model_name, CHAMPION, version)
    current_challenger = alias_version(model_name, CHALLENGER, cfg)
    if current_challenger is not None and str(current_challenger.version) == version:
        client.delete_registered_model_alias(model_name, CHALLENGER)


def rollback(model_name: str, to_version: str | int | None = None, cfg: Settings | None = None) -> str:
    """Move ``champion`` back to ``to_version`` (default: the version it replaced). Returns that version."""
    client = _client(cfg)
    current = alias_version(model_name, CHAMPION, cfg)
    if to_version is None:
        if current is None or "previous_champion" not in (current.tags or {}):
            raise LookupError(f"{model_name}: no previous champion recorded; pass the version to roll back to")
        to_version = current.tags["previous_champion"]
    to_version = str(to_version)
    client.get_model_version(model_name, to_version)  # raises if it does not exist
    client.set_registered_model_alias(model_name, CHAMPION, to_version)
    client.set_model_version_tag(model_name, to_version, "rolled_back_from", str(current.version) if current else "")
    log.info("%s: champion moved back to v%s", model_name, to_version)
    return to_version


def _log_decision(client: MlflowClient, decision: PromotionDecision, run_id: str | None) -> None:
    version = client.get_model_version(decision.model_name, decision.challenger_version)
    run_id = run_id or version.run_id
    tag_value = "promoted" if decision.promoted else "rejected"
    client.set_model_version_tag(decision.model_name, decision.challenger_version, "promotion_decision", tag_value)
    client.set_model_version_tag(decision.model_name, decision.challenger_version, "promotion_reasons",
                                 " | ".join(decision.reasons)[:4900])
    if run_id:
        client.log_dict(run_id, json.loads(json.dumps(decision.to_dict(), default=str)),
                        f"promotion/decision-v{decision.challenger_version}.json")
        client.set_tag(run_id, "promotion_decision", tag_value)
        client.log_metric(run_id, "promoted", 1.0 if decision.promoted else 0.0)
