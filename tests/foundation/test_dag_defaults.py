"""What a task hands to XCom must be JSON: `small` keeps reports XCom-sized and JSON-clean."""

from __future__ import annotations

import json
import math

import pytest

from northstar.dag_defaults import small

pytestmark = pytest.mark.unit


def test_small_turns_nan_and_infinity_into_null():
    """At `demo` scale a baseline's Spearman is NaN (a constant prediction): the nightly's training task
    then failed while pushing its XCom ("Out of range float values are not JSON compliant")."""
    report = {"metrics": {"gini": 0.98, "spearman": math.nan}, "baselines": {"bgnbd": {"rmse": math.inf}},
              "dates": ["2026-10-29", "2026-10-30"], "rows": list(range(5000))}
    shrunk = small(report)
    assert shrunk["metrics"] == {"gini": 0.98, "spearman": None}
    assert shrunk["baselines"] == {"bgnbd": {"rmse": None}}
    assert shrunk["dates"] == ["2026-10-29", "2026-10-30"] and shrunk["rows"] == {"count": 5000}
    json.dumps(shrunk, allow_nan=False)
