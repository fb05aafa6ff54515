"""The scores gate on scoring runs written the way ml/ writes them (ml/score_tables.py, ml/client_value/score.py).

A temp warehouse holds ``main.dim_households`` and ``scores.household_scores`` / ``scores.break_scores``
for several runs: two healthy ones, one whose distribution shifted (a silently broken model), one
with nulls and out-of-range values. The "last pushed run" baseline comes from the gate's own
results in ``quality.gate_results``.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pyarrow as pa
import pytest
from gate_helpers import make_cfg

import northstar.warehouse
from expectations import GateFailed, run_gate
from expectations.suites.scores import SEGMENTS

pytestmark = pytest.mark.integration

HOUSEHOLDS = [f"HH{i:07d}" for i in range(1, 801)]


def _household_rows(run: str, day: int, seed: int, shifted: bool = False, broken: bool = False) -> list[tuple]:
    rng = np.random.default_rng(seed)
    clv = rng.lognormal(mean=10, sigma=1.0, size=len(HOUSEHOLDS)) * (4.0 if shifted else 1.0)
    attrition = rng.beta(2, 8, size=len(HOUSEHOLDS))
    if shifted:
        attrition = np.clip(attrition + 0.5, 0, 1)
    percentile = (np.argsort(np.argsort(clv)) + 0.5) / len(HOUSEHOLDS) * 100
    scored_at = datetime(2026, 10, 1, 2, 0) + timedelta(days=day)
    rows = []
    for i, household in enumerate(HOUSEHOLDS):
        if shifted:
            segment = SEGMENTS[1] if i % 10 < 7 else SEGMENTS[3]
        elif attrition[i] > 0.35:
            segment = SEGMENTS[1]
        elif percentile[i] >= 75:
            segment = SEGMENTS[0]
        elif percentile[i] >= 35:
            segment = SEGMENTS[2]
        else:
            segment = SEGMENTS[3]
        rows.append((
            run, (scored_at - timedelta(days=1)).date(), scored_at, household, float(clv[i] / 8), float(clv[i]),
            float(percentile[i]), float(attrition[i]), segment, "aum growth 12m; calls 90d; tenure",
            "northstar-clv/3", "northstar-churn/2", f"clv-{run}", f"churn-{run}", f"dbt-{run}", f"hash-{run}",
        ))
    if broken:
        rows[0] = (*rows[0][:6], 150.0, None, *rows[0][8:])  # percentile out of range, no attrition
        rows[1] = (*rows[1][:8], "Platinum", *rows[1][9:])  # not a segment
        rows[2] = (*rows[2][:3], "HH9999999", *rows[2][4:])  # not a household of dim_households
    return rows


@pytest.fixture(scope="module")
def scores_cfg(tmp_path_factory):
    home = tmp_path_factory.mktemp("scores")
    cfg = make_cfg(home / "var", warehouse=home / "warehouse" / "northstar.duckdb")
    with northstar.warehouse.connect(path=cfg.paths.warehouse) as con:
        con.execute("create table main.dim_households as select unnest(?) as household_id", [HOUSEHOLDS])
        con.execute("create table main.fct_trade_breaks as select 'B' || range::varchar as break_key from range(50)")
        con.execute("create schema scores")
        con.execute("""
            create table scores.household_scores (
                scoring_run_id varchar, as_of_date date, scored_at timestamp, household_id varchar,
                predicted_revenue_12m double, clv double, value_percentile double, attrition_probability double,
                segment varchar, top_drivers varchar, clv_model_version varchar, churn_model_version varchar,
                clv_mlflow_run_id varchar, churn_mlflow_run_id varchar, dbt_invocation_id varchar,
                feature_snapshot_hash varchar,
            )
        """)
        columns = [name for (name, *_) in con.execute("describe scores.household_scores").fetchall()]
        rows = [row for run, day, seed, kind in (
            ("score_a", 0, 1, {}), ("score_b", 1, 2, {}), ("score_shifted", 2, 3, {"shifted": True}),
            ("score_broken", 3, 4, {"broken": True}), ("score_e", 4, 5, {}),
        ) for row in _household_rows(run, day, seed, **kind)]
        batch = pa.Table.from_pylist([dict(zip(columns, row, strict=True)) for row in rows])  # noqa: F841 - read by DuckDB
        con.execute("insert into scores.household_scores select * from batch")
        con.execute("""
            create table scores.break_scores as
            select run as scoring_run_id, timestamp '2026-10-30 16:00:00' as scored_at, 'B' || i::varchar as break_key,
                case when run = 'break_bad' and i = 0 then 1.7 else 1 - i / 50.0 end as anomaly_score,
                (i + 1)::integer as anomaly_rank, 'northstar-break-anomaly/2' as model_version, 'mlflow-' || run as mlflow_run_id,
            from range(50) as t(i) cross join (select unnest(['break_good', 'break_bad']) as run)
        """)
    return cfg


def test_first_run_has_no_baseline_and_passes(scores_cfg):
    report = run_gate("scores", "nightly__a", cfg=scores_cfg, scoring_run_id="score_a", kinds=["household"],
                      build_docs=False)
    assert report.success, report.summary()
    assert report.batch["scoring_run_id"] == "score_a"
    assert report.batch["baseline_scoring_run_id"] is None


def test_healthy_run_is_compared_with_the_last_pushed_run(scores_cfg):
    run_gate("scores", "nightly__a", cfg=scores_cfg, scoring_run_id="score_a", kinds=["household"], build_docs=False)
    report = run_gate("scores", "nightly__b", cfg=scores_cfg, scoring_run_id="score_b", kinds=["household"],
                      build_docs=False)
    assert report.success, report.summary()
    assert report.batch["baseline_scoring_run_id"] == "score_a"
    psi = next(o for o in report.outcomes if o.expectation == "scores.score_distribution_vs_last_pushed.psi")
    assert psi.success


def test_shifted_distribution_fails_and_is_never_a_baseline(scores_cfg):
    run_gate("scores", "nightly__b", cfg=scores_cfg, scoring_run_id="score_b", kinds=["household"], build_docs=False)
    with pytest.raises(GateFailed) as failed:
        run_gate("scores", "nightly__shifted", cfg=scores_cfg, scoring_run_id="score_shifted", kinds=["household"],
                 build_docs=False)
    report = failed.value.report
    assert report.batch["baseline_scoring_run_id"] == "score_b"
    names = {o.expectation: o for o in report.critical_failures}
    assert set(names) == {"scores.segment_shares_vs_last_pushed.segment_share_shift",
                          "scores.score_distribution_vs_last_pushed.psi"}
    psi = names["scores.score_distribution_vs_last_pushed.psi"]
    assert float(psi.observed_value) > 0.25  # the larger of the two PSIs
    assert {row["score"] for row in psi.sample_rows} == {"clv", "attrition_probability"}
    assert all(row["psi"] > 0.25 for row in psi.sample_rows)
    assert float(psi.observed_value) == pytest.approx(max(row["psi"] for row in psi.sample_rows), rel=1e-5)
    message = str(failed.value)
    assert "PSI of each score against the last pushed run score_b is at most 0.25" in message
    assert "At-Risk Retention Priority" in message  # the segment whose share jumped
    # the next run is compared with score_b (the last run that passed), not with the failed one
    later = run_gate("scores", "nightly__e", cfg=scores_cfg, scoring_run_id="score_e", kinds=["household"],
                     build_docs=False)
    assert later.batch["baseline_scoring_run_id"] == "score_b"
    assert later.success, later.summary()


def test_nulls_and_out_of_range_scores_fail(scores_cfg):
    with pytest.raises(GateFailed) as failed:
        run_gate("scores", "nightly__broken", cfg=scores_cfg, scoring_run_id="score_broken", kinds=["household"],
                 baseline_scoring_run_id="score_a", build_docs=False)
    failures = {o.expectation: o for o in failed.value.report.critical_failures}
    assert {"scores.household_scores.attrition_probability_not_null", "scores.household_scores.value_percentile_range",
            "scores.household_scores.segment_enum", "scores.household_scores.household_id_in_dim_households"} <= set(failures)
    assert "observed 1 of 800 rows unexpected" in str(failed.value)
    unknown = failures["scores.household_scores.household_id_in_dim_households"]
    assert unknown.observed_value == "1 offending rows"
    assert unknown.sample_rows == [{"household_id": "HH9999999"}]


def test_break_scores(scores_cfg):
    good = run_gate("scores", "intraday__good", cfg=scores_cfg, kinds=["break"], break_scoring_run_id="break_good",
                    build_docs=False)
    assert good.success, good.summary()
    with pytest.raises(GateFailed) as failed:
        run_gate("scores", "intraday__bad", cfg=scores_cfg, kinds=["break"], break_scoring_run_id="break_bad",
                 build_docs=False)
    assert {o.expectation for o in failed.value.report.critical_failures} == {"scores.break_scores.anomaly_score_range"}


def test_missing_scores_table_fails(tmp_path):
    cfg = make_cfg(tmp_path / "var", warehouse=tmp_path / "warehouse.duckdb")
    northstar.warehouse.connect(path=cfg.paths.warehouse).close()  # a warehouse, but nothing scored in it yet
    with pytest.raises(GateFailed) as failed:
        run_gate("scores", "nightly__none", cfg=cfg, build_docs=False)
    assert {o.expectation for o in failed.value.report.critical_failures} == {
        "scores.scoring_runs_present.scoring_run_present"}


def test_shift_scores_helper_makes_a_run_the_gate_stops(scores_cfg):
    from gate_helpers import shift_scores

    with northstar.warehouse.connect(path=scores_cfg.paths.warehouse) as con:
        con.execute("insert into scores.household_scores select * replace ('score_f' as scoring_run_id, "
                    "scored_at + interval 10 day as scored_at) from scores.household_scores where scoring_run_id = 'score_b'")
    shift_scores(scores_cfg.paths.warehouse, "score_f")
    with pytest.raises(GateFailed) as failed:
        run_gate("scores", "nightly__f", cfg=scores_cfg, scoring_run_id="score_f", kinds=["household"],
                 baseline_scoring_run_id="score_b", build_docs=False)
    assert "scores.score_distribution_vs_last_pushed.psi" in {o.expectation for o in failed.value.report.critical_failures}
