"""Where the anomaly model's labels come from: one interface, two sources.

A label says whether a trade turned out to be *a real problem* (1) or not (0). Two providers:

* :class:`ServiceNowLabels` — the production source: incidents read back from ServiceNow by ``ingest/``
  and landed as Parquet under ``<landing>/servicenow/incidents/`` (columns ``correlation_id``,
  ``close_code``, ``state``, optionally ``sys_updated_on``; any partitioning; the latest update of an incident wins). Only resolved (6) or closed (7) incidents with a close code
  count. The correlation id is ``northstar-break-<break_key>`` for a break incident
  (``fct_trade_breaks.incident_correlation_id``) or ``northstar-trade-<trade_id>`` for an incident raised on a
  high-scoring trade; a break incident labels the break's trade (allocation level) or every trade of its order
  (order level). Close codes in :data:`NOT_A_PROBLEM_CLOSE_CODES` mean 0, every other close code 1.
  Trades with no closed incident are 0 (nobody found a problem) — the usual positive-unlabelled assumption,
  switchable off with ``unlabelled_as_negative=False``.
* :class:`GroundTruthLabels` — the sandbox's truth folder (``anomalies.parquet`` + ``breaks.parquet``), which
  stands in for those close codes in the demo and the tests: a trade is 1 if it is an injected anomaly, an
  injected break (``kind = 'break'``) on the trade, or an order-level injected break on its order; benign
  differences (rounding, split fills, time zone) are 0. It is only ever constructed with an explicit folder,
  and only training/evaluation use it: scoring never imports this module.

:func:`select_label_provider` prefers ServiceNow once it holds enough closed incidents.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import pandas as pd

import northstar.warehouse

log = logging.getLogger(__name__)

RESOLVED_STATES = ("6", "7")  # ServiceNow incident states Resolved, Closed
NOT_A_PROBLEM_CLOSE_CODES = frozenset({
    "not a problem", "false positive", "no issue", "duplicate", "resolved by caller", "closed/resolved by caller",
    "user error", "no resolution provided", "benign", "timing difference",
})
TRADE_CORRELATION_PREFIX = "northstar-trade-"
MIN_SERVICENOW_LABELS = 200  # closed incidents needed before ServiceNow becomes the preferred source


class LabelProvider(Protocol):
    """Gives each trade of a feature frame a label: 1 real problem, 0 not, NaN unknown."""

    name: str

    def trade_labels(self, trades: pd.DataFrame, warehouse: str | Path) -> pd.Series:
        """Labels aligned to ``trades`` (which has ``trade_id``, ``order_id``, ``business_date``)."""
        ...


def _attach(trades: pd.DataFrame, positive_trades: set, negative_trades: set, positive_orders: set,
            default: float) -> pd.Series:
    labels = pd.Series(default, index=trades.index, dtype="float64")
    labels[trades["trade_id"].isin(negative_trades)] = 0.0
    labels[trades["trade_id"].isin(positive_trades)] = 1.0
    labels[trades["order_id"].isin(positive_orders)] = 1.0
    return labels


@dataclass
class GroundTruthLabels:
    """Labels from the sandbox's truth folder (an explicitly configured path; never the scoring path)."""

    truth_dir: Path
    name: str = "ground_truth"

    def __post_init__(self) -> None:
        self.truth_dir = Path(self.truth_dir)
        for required in ("anomalies.parquet", "breaks.parquet"):
            if not (self.truth_dir / required).exists():
                raise FileNotFoundError(f"ground-truth labels need {self.truth_dir / required}")

    def trade_labels(self, trades: pd.DataFrame, warehouse: str | Path | None = None) -> pd.Series:
        with northstar.warehouse.scratch() as con:
            anomalies = con.execute("select distinct trade_id from read_parquet(?)",
                                    [str(self.truth_dir / "anomalies.parquet")]).df()
            breaks = con.execute(
                "select trade_id, order_id from read_parquet(?) where kind = 'break'",
                [str(self.truth_dir / "breaks.parquet")],
            ).df()
        positive_trades = set(anomalies["trade_id"].dropna()) | set(breaks["trade_id"].dropna())
        positive_orders = set(breaks.loc[breaks["trade_id"].isna(), "order_id"].dropna())
        return _attach(trades, positive_trades, set(), positive_orders, default=0.0)


@dataclass
class ServiceNowLabels:
    """Labels from ServiceNow incidents landed by ``activate/`` (the ops teams' close codes)."""

    incidents_dir: Path
    unlabelled_as_negative: bool = True
    name: str = "servicenow"

    def __post_init__(self) -> None:
        self.incidents_dir = Path(self.incidents_dir)

    def closed_incidents(self) -> pd.DataFrame:
        """correlation_id, close_code, is_problem for resolved/closed incidents (latest landed row wins)."""
        files = sorted(self.incidents_dir.rglob("*.parquet")) if self.incidents_dir.exists() else []
        if not files:
            return pd.DataFrame(columns=["correlation_id", "close_code", "is_problem"])
        paths = [str(f) for f in files]
        with northstar.warehouse.scratch() as con:
            columns = {r[0] for r in con.execute(
                "describe select * from read_parquet(?, union_by_name = true)", [paths]).fetchall()}
            # the latest state of an incident wins: by its update stamp when landed, else the later file
            latest = "cast(sys_updated_on as varchar) desc nulls last, filename desc" \
                if "sys_updated_on" in columns else "filename desc"
            frame = con.execute(
                f"""
                select
                    cast(correlation_id as varchar) as correlation_id,
                    cast(close_code as varchar) as close_code,
                    cast(state as varchar) as state
                from read_parquet(?, union_by_name = true, filename = true)
                where correlation_id is not null
                qualify row_number() over (partition by correlation_id order by {latest}) = 1
                """,  # noqa: S608 - the order clause is one of two constants
                [paths],
            ).df()
        frame = frame[frame["state"].isin(RESOLVED_STATES) & frame["close_code"].fillna("").str.strip().ne("")]
        frame = frame.assign(
            is_problem=(~frame["close_code"].str.strip().str.lower().isin(NOT_A_PROBLEM_CLOSE_CODES)).astype(float)
        )
        return frame[["correlation_id", "close_code", "is_problem"]].reset_index(drop=True)

    def label_count(self) -> int:
        return len(self.closed_incidents())

    def trade_labels(self, trades: pd.DataFrame, warehouse: str | Path) -> pd.Series:
        incidents = self.closed_incidents()
        with northstar.warehouse.open_warehouse(read_only=True, path=warehouse) as engine:
            breaks = engine.frame("select trade_id, order_id, break_level, incident_correlation_id "
                                  "from {fct_trade_breaks} where incident_correlation_id is not null")
        break_labels = incidents.merge(breaks, left_on="correlation_id", right_on="incident_correlation_id",
                                       how="inner")[["trade_id", "order_id", "break_level", "is_problem"]]
        trade_incidents = incidents[incidents["correlation_id"].str.startswith(TRADE_CORRELATION_PREFIX)]
        trade_ids = trade_incidents["correlation_id"].str.removeprefix(TRADE_CORRELATION_PREFIX)
        allocation = break_labels[break_labels["break_level"] != "order"]
        order = break_labels[break_labels["break_level"] == "order"]
        positive_trades = set(allocation.loc[allocation["is_problem"] == 1, "trade_id"].dropna())
        positive_trades |= set(trade_ids[trade_incidents["is_problem"].to_numpy() == 1])
        negative_trades = set(allocation.loc[allocation["is_problem"] == 0, "trade_id"].dropna())
        negative_trades |= set(trade_ids[trade_incidents["is_problem"].to_numpy() == 0])
        positive_orders = set(order.loc[order["is_problem"] == 1, "order_id"].dropna())
        default = 0.0 if self.unlabelled_as_negative else float("nan")
        return _attach(trades, positive_trades, negative_trades, positive_orders, default=default)


def select_label_provider(source: str = "auto", truth_dir: str | Path | None = None,
                          incidents_dir: str | Path | None = None,
                          min_servicenow_labels: int = MIN_SERVICENOW_LABELS) -> LabelProvider:
    """The label source for a training run.

    ``source``: ``servicenow``, ``truth`` (needs ``truth_dir``) or ``auto`` — ServiceNow when it holds at
    least ``min_servicenow_labels`` closed incidents, else the ground truth if ``truth_dir`` was given.
    """
    servicenow = ServiceNowLabels(Path(incidents_dir)) if incidents_dir is not None else None
    if source == "servicenow":
        if servicenow is None:
            raise ValueError("servicenow labels need the landed incidents folder")
        return servicenow
    if source == "truth":
        if truth_dir is None:
            raise ValueError("ground-truth labels need an explicit truth folder (--truth-dir)")
        return GroundTruthLabels(Path(truth_dir))
    if source != "auto":
        raise ValueError(f"unknown label source {source!r} (auto, servicenow, truth)")
    if servicenow is not None:
        count = servicenow.label_count()
        if count >= min_servicenow_labels:
            log.info("labels: %d closed ServiceNow incidents, using them", count)
            return servicenow
        log.info("labels: only %d closed ServiceNow incidents (< %d)", count, min_servicenow_labels)
    if truth_dir is not None:
        return GroundTruthLabels(Path(truth_dir))
    raise LookupError(f"no label source: fewer than {min_servicenow_labels} closed ServiceNow incidents and no "
                      "ground-truth folder given")
