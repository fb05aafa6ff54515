"""Promotion of a client-value challenger: metric thresholds against the floors and ``@champion`` on the same
holdout, and the checks (baselines, errors, fairness, drift) ``ml.registry.promote_if_better`` weighs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import xgboost as xgb

from ml import drift, registry
from ml.client_value.features import model_matrix
from ml.client_value.model import TrainingConfig, predict


def fairness_check(kind: str, groups: pd.DataFrame, champion_groups: pd.DataFrame | None,
                    tolerance: float) -> registry.PromotionCheck:
    metric = "spearman" if kind == "clv" else "auc"
    if groups.empty:
        return registry.PromotionCheck("fairness", True, "no group large enough to judge")
    worst = groups.groupby("dimension")[metric].min()
    if champion_groups is None or champion_groups.empty:
        # No champion to compare with: no group may be worse than random by more than chance allows
        # (two standard errors of the metric under "no skill"; an AUC over 10 leavers moves by ~0.1
        # from noise alone, so the bare worst group would fail a sound model on a small book).
        if kind == "clv":
            null_se = 1.0 / np.sqrt(np.maximum(groups["households"] - 1, 1))
            floor = 0.0 - 2 * null_se
        else:
            pos, neg = groups["positives"], groups["negatives"]
            null_se = np.sqrt((pos + neg + 1) / (12.0 * pos * neg))
            floor = 0.5 - 2 * null_se
        failing = groups[groups[metric] < floor]
        detail = ", ".join(f"{d} worst {metric} {v:.3f}" for d, v in worst.items())
        if not failing.empty:
            detail += "; below chance: " + ", ".join(
                f"{r.dimension}={r.group} {getattr(r, metric):.3f} < {f:.3f}"
                for r, f in zip(failing.itertuples(), floor[failing.index], strict=True))
        return registry.PromotionCheck("fairness", failing.empty,
                                       detail + " (no champion: no group significantly worse than random)")
    champion_worst = champion_groups.groupby("dimension")[metric].min()
    gaps = (worst - champion_worst.reindex(worst.index)).dropna()
    failing = gaps[gaps < -tolerance]
    detail = ", ".join(f"{d} worst {metric} {worst[d]:.3f} vs champion {champion_worst.get(d, np.nan):.3f}"
                       for d in worst.index)
    return registry.PromotionCheck("fairness", failing.empty, detail + f" (tolerance {tolerance})")


def drift_check(profile: dict, scoring_frame: pd.DataFrame, booster: xgb.Booster,
                 ceiling: float) -> tuple[registry.PromotionCheck, pd.DataFrame]:
    if scoring_frame.empty:
        return registry.PromotionCheck("drift", True, "no scoring population yet"), pd.DataFrame()
    report = drift.drift_report(profile, model_matrix(scoring_frame), {"score": predict(booster, scoring_frame)})
    score_psi = float(report.loc[report["kind"] == "score", "psi"].iloc[0])
    drifted = report.loc[(report["kind"] == "feature") & (report["status"] == "retrain"), "name"].tolist()
    detail = f"score PSI training vs scoring population {score_psi:.3f} (ceiling {ceiling})"
    if drifted:
        detail += f"; features beyond {drift.RETRAIN_PSI}: {', '.join(drifted)}"
    return registry.PromotionCheck("drift", score_psi < ceiling, detail), report


def thresholds(kind: str, config: TrainingConfig) -> dict[str, registry.MetricThreshold]:
    if kind == "clv":
        return {
            "gini": registry.MetricThreshold(threshold=config.clv_gini_floor,
                                             min_absolute_change=config.clv_gini_margin, greater_is_better=True),
            "abs_aggregate_error": registry.MetricThreshold(threshold=config.clv_abs_aggregate_error_ceiling,
                                                            greater_is_better=False),
        }
    return {
        "auc": registry.MetricThreshold(threshold=config.churn_auc_floor,
                                        min_absolute_change=config.churn_auc_margin, greater_is_better=True),
        "brier": registry.MetricThreshold(threshold=config.churn_brier_ceiling, greater_is_better=False),
    }


def baseline_check(kind: str, metrics: dict, baselines: dict, y: np.ndarray) -> registry.PromotionCheck:
    """A model is only worth its complexity if it is no worse than every baseline on the same holdout (a tie
    passes: the carry-forward fallback ties carry-forward by construction).

    For attrition "worse" means by more than chance: two standard errors of an AUC on this holdout's
    leavers and stayers (a few dozen leavers move an AUC by several points by noise alone).
    """
    if not baselines:
        return registry.PromotionCheck("baselines", True, "no baseline evaluated (--no-baselines)")
    slack = 0.0
    if kind == "churn":
        positives, negatives = float(np.sum(y)), float(len(y) - np.sum(y))
        slack = 2 * float(np.sqrt((positives + negatives + 1) / (12.0 * max(positives, 1) * max(negatives, 1))))
    passed, details = True, []
    # CLV: both ranking metrics must beat every baseline (what the model is for: who to call first).
    for metric in (("gini", "spearman") if kind == "clv" else ("auc",)):
        best_name, best = max(((n, v.get(metric, float("nan"))) for n, v in baselines.items()),
                              key=lambda item: item[1] if np.isfinite(item[1]) else -np.inf)
        value = metrics.get(metric, float("nan"))
        passed &= bool(not np.isfinite(best) or value >= best - slack)
        details.append(f"{metric} {value:.4f} vs best baseline {best_name} {best:.4f}")
    detail = "; ".join(details)
    return registry.PromotionCheck("baselines", bool(passed), detail + (f" (chance allowance {slack:.3f})" if slack else ""))


# How the CLV promotion gate weighs every metric the model card reports (the card prints this table).
CLV_GATE_POLICY = {
    "gini": "gated: >= floor, no lower than every baseline on the same holdout, >= champion + margin",
    "spearman": "gated: no lower than every baseline on the same holdout",
    "abs_aggregate_error": "gated: <= ceiling",
    "aggregate_error": "gated through abs_aggregate_error",
    "rmse": "gated: no worse than the champion's by more than the tolerance. Not held against carry-forward: "
            "squared error is dominated by a few households with one-off liquidity events that no billing "
            "history predicts, and where carry-forward's RMSE is lower it comes from not chasing them; the card "
            "states both figures and the gap",
    "mae": "gated like rmse (no worse than the champion's by more than the tolerance)",
    "top_decile_capture": "waived as a gate: one point of the gain curve that the gated Gini integrates whole; "
                          "reported against the baselines",
}


def error_check(metrics: dict, champion_metrics: dict | None, tolerance: float) -> registry.PromotionCheck:
    """RMSE and MAE may not regress against the champion (see ``CLV_GATE_POLICY`` for why not the baselines)."""
    if not champion_metrics:
        return registry.PromotionCheck("errors", True, "no champion: rmse/mae have no regression reference "
                                                       "(the card compares them with the baselines)")
    failing, details = [], []
    for metric in ("rmse", "mae"):
        value, reference = metrics.get(metric, np.nan), champion_metrics.get(metric, np.nan)
        limit = reference * (1 + tolerance)
        details.append(f"{metric} {value:.2f} vs champion {reference:.2f} (limit {limit:.2f})")
        if np.isfinite(reference) and not value <= limit:
            failing.append(metric)
    return registry.PromotionCheck("errors", not failing, "; ".join(details))


def judge(name, version, evaluate, metric_thresholds, groups, champion_groups, kind, config, extra_checks,
           force, run_id, cfg, challenger_metrics=None) -> registry.PromotionDecision:
    champion = registry.alias_version(name, registry.CHAMPION, cfg)
    if champion is not None and str(champion.version) != version:
        try:
            evaluate(registry.model_uri(name, registry.CHAMPION))
        except Exception:  # noqa: BLE001 - promote_if_better reports the failure itself
            pass
    fairness = fairness_check(kind, groups, champion_groups.get("groups"), config.fairness_tolerance)
    checks = [fairness, *extra_checks]
    if kind == "clv":
        checks.append(error_check(challenger_metrics or {}, champion_groups.get("metrics"),
                                   config.clv_error_regression_tolerance))
        checks.append(registry.PromotionCheck("waived", True, "; ".join(
            f"{metric}: {rule.split(':', 1)[1].strip()}" for metric, rule in CLV_GATE_POLICY.items()
            if rule.startswith("waived"))))
    return registry.promote_if_better(name, version, evaluate, metric_thresholds, checks=checks,
                                      force=force, run_id=run_id, cfg=cfg)
