"""An empty list of business dates is nothing to score, never "every date".

The intraday DAG once turned an empty date list into None, which re-scored the whole trade book and
appended it to scores.trade_anomaly_scores on every no-op run.
"""

from __future__ import annotations

import pytest

from ml.anomaly.score import score_break_anomalies

pytestmark = pytest.mark.unit


def test_an_empty_date_list_is_refused_before_anything_is_read(northstar_home):
    with pytest.raises(ValueError, match="no business dates to score"):
        score_break_anomalies("breaks-noop", business_dates=[], cfg=northstar_home)
    assert not northstar_home.paths.warehouse.exists()  # nothing opened, nothing written
