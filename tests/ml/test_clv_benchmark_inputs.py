"""``python -m ml clv-benchmark`` on bad input, and proof that the holdout is never read before scoring.

The small log is the first 200 customers of the public apparel log (``ml/datasets``), so every fit here is
a real fit on real purchase histories, in seconds.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ml.__main__ import main
from ml.clv_benchmark import METHODS, early_stopping_customers, format_selection, run_benchmark
from ml.transactions import (
    APPAREL_CALIBRATION_END,
    APPAREL_HOLDOUT_END,
    APPAREL_PATH,
    customer_days_with_counts,
    read_log,
    to_customer_days,
)

pytestmark = pytest.mark.unit

CUT = pd.Timestamp(APPAREL_CALIBRATION_END)
END = pd.Timestamp("2010-12-19")  # the last purchase day of the 200 customers (the full log's is APPAREL_HOLDOUT_END)


@pytest.fixture(scope="module")
def small_raw_log() -> pd.DataFrame:
    raw = read_log(APPAREL_PATH)
    small = raw.loc[raw["customer_id"].astype(int) <= 200].reset_index(drop=True)
    assert pd.to_datetime(small["date"]).max() == END < pd.Timestamp(APPAREL_HOLDOUT_END)
    return small


@pytest.fixture(scope="module")
def small_run(small_raw_log):
    return run_benchmark(to_customer_days(small_raw_log), CUT, END, seed=3)


def _prediction_columns() -> list[str]:
    return [f"{m}_{t}" for m in METHODS for t in ("spend", "transactions")]


def test_holdout_rows_replaced_by_random_values_change_no_prediction(small_raw_log, small_run):
    rng = np.random.default_rng(0)
    log = small_raw_log.copy()
    dates = pd.to_datetime(log["date"])
    holdout = dates > CUT
    n = int(holdout.sum())
    assert n > 100
    # Random customers (known ones and strangers), random days in the holdout, random amounts; the last
    # day keeps the log covering the holdout.
    random_days = rng.integers(1, (END - CUT).days + 1, n)
    random_days[0] = (END - CUT).days
    log.loc[holdout, "customer_id"] = rng.choice(np.r_[log["customer_id"].unique(), ["x1", "x2"]], n)
    log.loc[holdout, "date"] = (CUT + pd.to_timedelta(random_days, unit="D")).strftime("%Y-%m-%d")
    log.loc[holdout, "amount"] = rng.gamma(1.0, 500.0, n).round(2)
    scrambled = run_benchmark(to_customer_days(log), CUT, END, seed=3)

    columns = _prediction_columns()
    pd.testing.assert_frame_equal(scrambled.predictions[["customer_id", *columns]],
                                  small_run.predictions[["customer_id", *columns]])
    assert scrambled.details["selected"] == small_run.details["selected"]
    # The actuals did change, so the equality above is not vacuous.
    assert not np.allclose(scrambled.predictions["actual_spend"], small_run.predictions["actual_spend"])

    # A log that stops at the calibration end gives the same predictions, and no actuals.
    truncated = run_benchmark(to_customer_days(small_raw_log.loc[~holdout]), CUT, END, seed=3)
    pd.testing.assert_frame_equal(truncated.predictions, small_run.predictions[["customer_id", *columns]])
    assert truncated.metrics is None and "actual_spend" not in truncated.predictions


def test_predictions_are_deterministic_per_seed_and_say_what_was_selected(small_raw_log, small_run):
    again = run_benchmark(to_customer_days(small_raw_log), CUT, END, seed=3)
    pd.testing.assert_frame_equal(again.predictions, small_run.predictions)
    chosen = small_run.selection.chosen
    selected = small_run.predictions[["selected_spend", "selected_transactions"]].to_numpy()
    source = small_run.predictions[[f"{chosen.family}_spend", f"{chosen.family}_transactions"]].to_numpy()
    np.testing.assert_allclose(selected, source)  # the chosen candidate's own forecast, level included
    assert set(small_run.selection.scores.index) == {"carry_forward", "bgnbd_gg", "blend", "xgboost_d2",
                                                      "xgboost_d4", "hybrid_d2", "hybrid_d4"}
    assert small_run.selection.validation_cut < CUT


def test_non_positive_amounts_and_rows_without_id_are_counted_not_purchases():
    log = pd.DataFrame({
        "customer_id": ["a", "a", "a", None, "", "b", "b", " c "],
        "date": ["2020-01-01", "2020-01-01", "2020-02-01", "2020-01-05", "2020-01-06", "2020-01-03",
                 "2020-03-01", "2020-01-09"],
        "amount": [10.0, -4.0, 0.0, 50.0, 20.0, 7.0, -7.0, 3.0],
    })
    days, counts = customer_days_with_counts(log)
    assert (counts.rows_read, counts.rows_without_customer, counts.rows_non_positive_amount,
            counts.purchase_rows, counts.customer_days) == (8, 2, 3, 3, 3)
    assert counts.rows_read == counts.rows_without_customer + counts.rows_non_positive_amount + counts.purchase_rows
    # The return on a's first day neither lowers that day's spend nor makes a purchase day of its own.
    assert days.loc[days["customer_id"] == "a", "amount"].tolist() == [10.0]
    assert days["customer_id"].tolist() == ["a", "b", "c"]
    assert "2 without a customer id" in counts.summary() and "3 with a non-positive amount" in counts.summary()


def _cli(path, capsys, cut="2020-06-30", end="2020-12-31"):
    code = main(["clv-benchmark", "--transactions", str(path), "--calibration-end", cut, "--holdout-end", end])
    captured = capsys.readouterr()
    return code, captured.err.strip().splitlines()


@pytest.mark.parametrize("content, message", [
    ("", "is empty"),
    ("customer_id,date,amount\n", "has no rows"),
    ("customer,when,value\n1,2020-01-01,3\n", "missing column(s) customer_id, date, amount"),
    ("customer_id,date,price\n1,2020-01-01,3\n", "missing column(s) amount"),
    ("customer_id,date,amount\n1,2020-01-01,-3\n,2020-01-02,5\n", "no purchase"),
    ("customer_id,date,amount\n1,not a day,3\n", "unreadable date"),
    ("customer_id,date,amount\n1,2020-01-01,three\n", "non-numeric amount"),
])
def test_bad_logs_get_one_line_and_exit_code_2(tmp_path, capsys, content, message):
    path = tmp_path / "log.csv"
    path.write_text(content)
    code, err = _cli(path, capsys)
    assert code == 2
    assert len(err) == 1 and err[0].startswith("clv-benchmark: error: ") and message in err[0]


def test_missing_file_bad_dates_and_holdout_past_the_data_are_errors(tmp_path, capsys, small_raw_log):
    code, err = _cli(tmp_path / "nowhere.csv", capsys)
    assert code == 2 and len(err) == 1 and "does not exist" in err[0]
    path = tmp_path / "apparel.csv"
    small_raw_log.to_csv(path, index=False)
    code, err = _cli(path, capsys, cut="2007-13-01")
    assert code == 2 and len(err) == 1 and "--calibration-end '2007-13-01' is not a date" in err[0]
    code, err = _cli(path, capsys, cut=APPAREL_CALIBRATION_END, end=APPAREL_CALIBRATION_END)
    assert code == 2 and len(err) == 1 and "must be after the calibration end" in err[0]
    code, err = _cli(path, capsys, cut=APPAREL_CALIBRATION_END, end=APPAREL_HOLDOUT_END)
    assert code == 2 and len(err) == 1
    assert f"holdout runs to {APPAREL_HOLDOUT_END} but the log ends on 2010-12-19" in err[0]


def test_boosters_early_stop_on_other_customers_than_those_the_selection_scores(small_run):
    customers = pd.Index([f"c{i}" for i in range(1000)])
    spend = pd.Series(1.0, index=customers)
    stopping = early_stopping_customers(customers, spend)
    assert 400 < stopping.sum() < 600
    # A fixed hash of the id: the same split in any order, for any seed.
    shuffled = customers[::-1]
    np.testing.assert_array_equal(early_stopping_customers(shuffled, spend), stopping[::-1])
    # No spend in one half: nobody is split off (stopping and scoring then share the customers, and say so).
    only_stopping_half = spend.where(stopping, 0.0)
    assert not early_stopping_customers(customers, only_stopping_half).any()
    selection = small_run.selection
    assert selection.stopping_customers > 0 and selection.customers > 0
    assert "early-stop the boosters" in format_selection(selection)
