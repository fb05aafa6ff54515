"""Evaluation on the holdout cutoff: the model's metrics, the baselines' on the same households (carry-forward
and BG/NBD + Gamma-Gamma), the fairness view per segment, the plots and the model card."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import xgboost as xgb  # noqa: E402
from sklearn import metrics as skm  # noqa: E402

from ml.baselines import BGNBDGammaGamma  # noqa: E402
from ml.client_value.features import (  # noqa: E402
    FEATURE_COLUMNS,
    SEGMENT_COLUMNS,
    TrainingData,
    household_months,
    model_matrix,
)
from ml.client_value.model import ClvSelection, TrainingConfig, model_labels, model_rows, predict  # noqa: E402
from ml.client_value.promote import CLV_GATE_POLICY  # noqa: E402
from ml.metrics import classifier_metrics, decile_table, reliability_table, value_metrics  # noqa: E402
from northstar.settings import Settings  # noqa: E402

MIN_GROUP = 50  # households a fairness group needs before its figures are judged
MIN_POSITIVES = 10  # and, for attrition, leavers (an AUC on 3 leavers is noise)


@dataclass
class HoldoutEvaluation:
    """A fitted model and the baselines on the holdout households of one model kind."""
    holdout: pd.DataFrame  # the holdout rows the model is judged on
    y: np.ndarray
    prediction: np.ndarray
    metrics: dict[str, float]
    groups: pd.DataFrame  # metrics per segment (fairness view)
    baselines: dict[str, dict[str, float]]


def evaluate_holdout(kind: str, booster: xgb.Booster, data: TrainingData, config: TrainingConfig,
                     cfg: Settings | None) -> HoldoutEvaluation:
    """The model and (unless ``config.run_baselines`` is off) every baseline on the holdout cutoff."""
    holdout = model_rows(kind, data.holdout)
    y = model_labels(kind, holdout)
    prediction = predict(booster, holdout)
    baselines: dict[str, dict[str, float]] = {}
    if config.run_baselines:
        for baseline, values in baseline_predictions(kind, holdout, data.plan.holdout, cfg).items():
            baselines[baseline] = score_metrics(kind, y, values)
    return HoldoutEvaluation(holdout, y, prediction, score_metrics(kind, y, prediction),
                             group_metrics(kind, holdout, prediction), baselines)


def score_metrics(kind: str, y: np.ndarray, prediction: np.ndarray) -> dict[str, float]:
    if kind == "clv":
        m = value_metrics(y, prediction)
        m["abs_aggregate_error"] = abs(m["aggregate_error"])
        return m
    return classifier_metrics(y, prediction)


def group_metrics(kind: str, frame: pd.DataFrame, prediction: np.ndarray) -> pd.DataFrame:
    """The fairness view: metrics per AUM band, age band and advisor (groups with >= MIN_GROUP rows)."""
    y = model_labels(kind, frame)
    rows = []
    for column in SEGMENT_COLUMNS:
        for group, index in frame.groupby(frame[column].fillna("unknown")).indices.items():
            if len(index) < MIN_GROUP:
                continue
            yt, yp = y[index], prediction[index]
            row = {"dimension": column, "group": str(group), "households": len(index)}
            if kind == "clv":
                if yt.sum() <= 0:
                    continue
                row |= score_metrics(kind, yt, yp)
            else:
                if min(yt.sum(), (1 - yt).sum()) < MIN_POSITIVES:
                    continue
                row |= score_metrics(kind, yt, yp) | {"observed_rate": float(yt.mean()),
                                                      "positives": int(yt.sum()), "negatives": int((1 - yt).sum())}
            rows.append(row)
    return pd.DataFrame(rows)


def baseline_predictions(kind: str, holdout: pd.DataFrame, plan_holdout: pd.Timestamp,
                         cfg: Settings | None) -> dict[str, np.ndarray]:
    """Carry-forward (CLV only) and BG/NBD + Gamma-Gamma on the holdout households."""
    out: dict[str, np.ndarray] = {}
    if kind == "clv":
        out["carry_forward"] = holdout["fees_12m"].fillna(0.0).to_numpy(dtype=float)
    billing = household_months(plan_holdout, cfg)
    if billing.empty:
        return out
    fitted = BGNBDGammaGamma.fit(billing, plan_holdout)
    forecast = fitted.forecast(365.0).reindex(holdout["household_id"].to_numpy())
    if kind == "clv":
        out["bgnbd_gg"] = forecast["spend"].fillna(0.0).to_numpy(dtype=float)
    else:
        out["bgnbd"] = (1.0 - forecast["p_alive"].fillna(0.0)).to_numpy(dtype=float)
    return out


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def plots(kind: str, booster: xgb.Booster, holdout: pd.DataFrame, y: np.ndarray, prediction: np.ndarray,
           folder: Path) -> list[Path]:
    paths = []
    linear = json.loads(booster.save_config())["learner"]["gradient_booster"]["name"] == "gblinear"
    # A linear booster (the carry-forward fallback) has weights, not split gains.
    gain = pd.Series(booster.get_score(importance_type="weight" if linear else "gain")).sort_values().tail(15)
    fig, ax = plt.subplots(figsize=(7, 5))
    ax.barh(gain.index, gain.to_numpy())
    ax.set_title(f"{kind}: feature importance ({'weight' if linear else 'gain'})")
    paths.append(_save(fig, folder / "feature_importance.png"))

    # Exact TreeSHAP costs ~1 ms per household at 400 trees: summarise a fixed sample of the holdout.
    sample = holdout.sample(n=min(len(holdout), 5000), random_state=7) if len(holdout) > 5000 else holdout
    matrix = model_matrix(sample)[booster.feature_names]
    contribs = booster.predict(xgb.DMatrix(matrix, feature_names=booster.feature_names), pred_contribs=True)
    mean_abs = pd.Series(np.abs(contribs[:, :-1]).mean(axis=0), index=booster.feature_names).sort_values().tail(15)
    fig, ax = plt.subplots(figsize=(7, 5))
    ax.barh(mean_abs.index, mean_abs.to_numpy())
    ax.set_title(f"{kind}: mean |contribution| per household (pred_contribs, margin units)")
    paths.append(_save(fig, folder / "contribution_summary.png"))

    if kind == "clv":
        table = decile_table(y, prediction)
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.plot(table.index, table["actual_mean"], "o-", label="actual")
        ax.plot(table.index, table["predicted_mean"], "s--", label="predicted")
        ax.set_xlabel("predicted decile (1 = highest)")
        ax.set_ylabel("mean revenue next 12 months")
        ax.set_yscale("symlog")
        ax.legend()
        ax.set_title("CLV: calibration by decile (holdout)")
        paths.append(_save(fig, folder / "decile_calibration.png"))
    else:
        precision, recall, _ = skm.precision_recall_curve(y, prediction)
        fig, ax = plt.subplots(figsize=(5, 4))
        ax.plot(recall, precision)
        ax.set_xlabel("recall")
        ax.set_ylabel("precision")
        ax.set_title("attrition: precision-recall (holdout)")
        paths.append(_save(fig, folder / "pr_curve.png"))
        table = reliability_table(y, prediction)
        fig, ax = plt.subplots(figsize=(5, 4))
        ax.plot([0, 1], [0, 1], ":", color="grey")
        ax.plot(table["predicted"], table["observed"], "o-")
        ax.set_xlabel("predicted probability")
        ax.set_ylabel("observed rate")
        ax.set_title("attrition: reliability (holdout)")
        paths.append(_save(fig, folder / "reliability.png"))
    return paths


def model_card(kind: str, name: str, data: TrainingData, metrics: dict, baselines: dict,
               groups: pd.DataFrame, config: TrainingConfig, selection: ClvSelection | None = None) -> str:
    target = ("revenue_next_12m: fees billed to the household in the 12 months after the cutoff"
              if kind == "clv" else
              "is_attrited_within_12m: a household active at the cutoff bills fewer than 12 of the next 12 months")
    lines = [
        f"# Model card: {name}", "",
        "## Intended use",
        ("Rank and size households by expected fee revenue so advisors prioritise outreach; feeds CLV and the "
         "value x risk segment written to Salesforce." if kind == "clv" else
         "Estimate each active household's probability of leaving within 12 months; feeds CLV retention and "
         "the 'At-Risk Retention Priority' segment."),
        "Not for: pricing, credit or suitability decisions, or any decision about an individual without an "
        "advisor's review. Households without analytics consent are scored but not pushed to Salesforce.", "",
        "## Data",
        f"- Target: {target}.",
        f"- Source: `fct_household_features` (point-in-time), dbt invocation `{data.dbt_invocation_id}`, "
        f"feature snapshot `{data.snapshot_hash}`.",
        f"- Training cutoffs ({len(data.plan.train)}): {', '.join(str(c.date()) for c in data.plan.train)}; "
        f"{len(data.train):,} rows.",
        f"- Holdout cutoff: {data.plan.holdout.date()} ({len(data.holdout):,} households), the latest cutoff "
        "whose outcome window is complete; no training label window overlaps it.",
        f"- Features ({len(FEATURE_COLUMNS)}): billing (AUM, fees, flows), CRM interactions, cases and complaints, "
        "opportunities, tenure, bands. Advisor id is used only for the fairness view, not as an input.", "",
        "## Metrics on the holdout", "",
        "| model | " + " | ".join(metrics) + " |",
        "|---|" + "---|" * len(metrics),
        f"| {name} | " + " | ".join(f"{v:.4f}" for v in metrics.values()) + " |",
    ]
    for baseline, values in baselines.items():
        lines.append(f"| {baseline} | " + " | ".join(f"{values.get(k, float('nan')):.4f}" for k in metrics) + " |")
    if baselines:
        lines += ["", "## Against the baselines (same holdout)", "", *baseline_comparison(metrics, baselines)]
        carried = baselines.get("carry_forward", {}).get("rmse", float("nan"))
        if kind == "clv" and np.isfinite(carried) and np.isfinite(metrics.get("rmse", float("nan"))):
            verdict = ("worse than" if metrics["rmse"] > carried else "no worse than")
            lines += ["", f"**RMSE against carry-forward:** this model's holdout RMSE is {metrics['rmse']:,.2f}, "
                          f"{verdict} carry-forward's {carried:,.2f} ({(metrics['rmse'] - carried) / carried:+.1%}). "
                          "The gate does not hold RMSE against carry-forward (see the policy below); it ranks "
                          "households, and the ranking metrics are gated against every baseline."]
    if selection is not None:
        lines += ["", "## Model selection (inside the training cutoffs; the holdout is not read)", "",
                  f"- Validation cutoff {selection.validation_cutoff.date() if selection.validation_cutoff is not None else 'none'}"
                  f"; candidates fitted on {len(selection.fit_cutoffs)} cutoffs "
                  f"({' .. '.join(str(c.date()) for c in selection.fit_cutoffs[:1] + selection.fit_cutoffs[-1:])})"
                  + (f", whose label windows end {selection.gap_months} months after theirs"
                     + ("" if selection.gap_months == 12 else
                        f" (the mart is too short for a 12-month gap: their labels overlap the validation "
                        f"window by {12 - selection.gap_months} months, which flatters the boosters)")
                     if selection.gap_months else "") + ".",
                  f"- Chosen: **{selection.chosen}**. {selection.reason}."]
        if selection.is_fallback:
            lines.append("- The shipped model IS carry-forward (fees of the last 12 months), stored as a linear "
                         "XGBoost model with weight 1 on `fees_12m`.")
        if not selection.scores.empty:
            lines += ["", "| candidate | gini | spearman | rmse | aggregate_error | score | rounds |",
                      "|---|---|---|---|---|---|---|"]
            for candidate, row in selection.scores.iterrows():
                rounds = "" if not np.isfinite(row["rounds"]) else str(int(row["rounds"]))
                lines.append(f"| {candidate} | {row['gini']:.4f} | {row['spearman']:.4f} | {row['rmse']:,.2f} | "
                             f"{row['aggregate_error']:+.1%} | {row['score']:+.4f} | {rounds} |")
            lines.append("")
            lines.append("score = min(Gini - carry-forward's Gini, Spearman - carry-forward's Spearman) at the "
                         "validation cutoff; a booster ships only with a positive score and a validation total "
                         f"within +/-{config.clv_abs_aggregate_error_ceiling:.0%}.")
    if kind == "clv":
        lines += ["", "## How the promotion gate weighs each metric", ""]
        lines += [f"- {metric}: {rule}" for metric, rule in CLV_GATE_POLICY.items()]
    lines += ["", "## Metrics by segment (fairness view; groups with at least "
              f"{MIN_GROUP} households)", ""]
    if not groups.empty:
        show = [c for c in groups.columns if c in {"dimension", "group", "households", "gini", "spearman",
                                                    "aggregate_error", "auc", "brier", "observed_rate"}]
        lines.append("| " + " | ".join(show) + " |")
        lines.append("|---" * len(show) + "|")
        for _, row in groups[show].iterrows():
            lines.append("| " + " | ".join(f"{v:.3f}" if isinstance(v, float) else str(v) for v in row) + " |")
    lines += ["", "## Limitations",
              "- Labels are billing outcomes only: a household that moves assets away but keeps one account "
              "open is not counted as attrited.",
              "- Trained on the firm's own history; a change in fee schedules or markets shifts revenue. Drift "
              "(PSI per feature and on the score) is checked every scoring run.",
              "- Rolling origins are a year or more old by construction (the label window): the model learns "
              "last year's relationships.",
              "- CLV beyond 12 months assumes constant retention and flat fees (see ml/README.md).",
              "", "## Training configuration", "", "```json", json.dumps(asdict(config), indent=2), "```"]
    return "\n".join(lines)


def baseline_comparison(metrics: dict, baselines: dict) -> list[str]:
    """One line per metric and baseline: where the model wins and where it loses, in plain words."""
    lower_is_better = {"rmse", "mae", "abs_aggregate_error", "brier"}
    lines = []
    for metric, value in metrics.items():
        if metric == "aggregate_error":
            continue  # its size is abs_aggregate_error
        for baseline, values in baselines.items():
            other = values.get(metric, float("nan"))
            if not (np.isfinite(value) and np.isfinite(other)):
                continue
            better = value < other if metric in lower_is_better else value > other
            relative = f" ({(value - other) / abs(other):+.1%})" if other else ""
            lines.append(f"- {metric}: {'wins' if better else '**loses**'} against {baseline}, "
                         f"{value:,.4f} vs {other:,.4f}{relative}")
    return lines
