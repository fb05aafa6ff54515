"""``python -m ml evaluate-truth``: a scoring run against the synthetic world's ground truth.

Evaluation only: this reads ``settings().paths.truth / households.parquet`` (``revenue_next_12m``,
``left_within_12m`` of each household over the 12 months after the world's as-of date), which the
pipeline (train, score) never reads. It compares, on the same households:

* the champion's ``predicted_revenue_12m`` and ``attrition_probability`` from ``scores.household_scores``;
* last-12-months carry-forward (``fees_12m`` at the scoring cutoff);
* BG/NBD + Gamma-Gamma fitted on the monthly fee billings up to the scoring cutoff (1 - P(alive) for attrition).

The scoring cutoff is the mart's latest billed month end, which can sit a few days or a month before the
world's as-of date; every method is scored at that same cutoff, so the comparison stays fair.
"""

from __future__ import annotations

import json

import pandas as pd

from ml.baselines import BGNBDGammaGamma
from ml.client_value.features import connect, household_months, load_features
from ml.metrics import classifier_metrics, value_metrics
from northstar.settings import Settings, settings

NAME = "evaluate-truth"


def evaluate_against_truth(scoring_run_id: str | None = None, cfg: Settings | None = None) -> dict:
    cfg = cfg or settings()
    truth = pd.read_parquet(cfg.paths.truth / "households.parquet")
    with connect(cfg) as warehouse:
        if scoring_run_id is None:
            scoring_run_id = warehouse.scalar("select scoring_run_id from {scoring_runs} where kind = 'household' "
                                              "order by scored_at desc limit 1")
        scores = warehouse.frame("select * from {household_scores} where scoring_run_id = ?", [scoring_run_id])
    cutoff = pd.Timestamp(scores["as_of_date"].iloc[0])
    features = load_features([cutoff], cfg)[["household_id", "fees_12m", "is_active_at_cutoff"]]
    billing = household_months(cutoff, cfg)
    bg = BGNBDGammaGamma.fit(billing, cutoff).forecast(365.0)
    frame = (scores.merge(truth[["household_id", "revenue_next_12m", "left_within_12m", "left_before_as_of"]],
                          on="household_id", how="inner")
             .merge(features, on="household_id", how="left"))
    frame["bg_spend"] = bg["spend"].reindex(frame["household_id"]).fillna(0.0).to_numpy()
    frame["bg_attrition"] = 1.0 - bg["p_alive"].reindex(frame["household_id"]).fillna(0.0).to_numpy()
    y = frame["revenue_next_12m"].to_numpy(dtype=float)
    value = {
        "xgboost": value_metrics(y, frame["predicted_revenue_12m"]),
        "carry_forward": value_metrics(y, frame["fees_12m"].fillna(0.0)),
        "bgnbd_gg": value_metrics(y, frame["bg_spend"]),
    }
    active = frame.loc[frame["is_active_at_cutoff"].fillna(False).astype(bool) & ~frame["left_before_as_of"]]
    left = active["left_within_12m"].astype(float).to_numpy()
    attrition = {}
    if 0 < left.sum() < len(left):
        attrition = {"xgboost": classifier_metrics(left, active["attrition_probability"]),
                     "bgnbd": classifier_metrics(left, active["bg_attrition"])}
    return {"scoring_run_id": scoring_run_id, "scoring_cutoff": str(cutoff.date()), "households": len(frame),
            "active_households": len(active), "revenue_next_12m": value, "left_within_12m": attrition}


def format_report(report: dict) -> str:
    keys = ["gini", "spearman", "aggregate_error", "rmse", "mae", "top_decile_capture"]
    lines = [f"scoring run {report['scoring_run_id']} (cutoff {report['scoring_cutoff']}), "
             f"{report['households']} households vs truth revenue_next_12m",
             f"{'method':<15}" + "".join(f"{k:>20}" for k in keys)]
    for method, values in report["revenue_next_12m"].items():
        lines.append(f"{method:<15}" + "".join(f"{values[k]:>20.4f}" for k in keys))
    if report["left_within_12m"]:
        lines.append(f"attrition vs truth left_within_12m ({report['active_households']} active households)")
        lines.append(f"{'method':<15}" + "".join(f"{k:>20}" for k in ("auc", "pr_auc", "brier")))
        for method, values in report["left_within_12m"].items():
            lines.append(f"{method:<15}" + "".join(f"{values[k]:>20.4f}" for k in ("auc", "pr_auc", "brier")))
    return "\n".join(lines)


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(NAME, help="compare a scoring run and the baselines with var/truth (evaluation only)")
    parser.add_argument("--run-id", help="scoring_run_id (default: the latest household run)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.set_defaults(handler=handle)


def handle(args) -> int:
    report = evaluate_against_truth(args.run_id)
    print(json.dumps(report, indent=2, default=float) if args.json else format_report(report))
    return 0



