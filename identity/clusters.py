"""Clusters from accepted pairs, and cluster ids that stay put across runs.

A cluster is a connected component of the accepted pairs. Its id is inherited: when its records
had ids from the previous run, the cluster takes the previous id most of its records held (ties:
the smaller id), unless a bigger part of that previous cluster already took it (a split); a cluster
with no history gets an id derived from its smallest record id. So a person keeps their id when a
new duplicate joins, and a merge or split is visible and counted.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import polars as pl
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components


def components(n: int, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Component label per record 0..n-1 (records without an edge are their own component)."""
    graph = coo_matrix((np.ones(len(left), dtype=np.int8), (left, right)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    return labels


def new_cluster_id(record_id: str) -> str:
    return "P" + hashlib.sha256(record_id.encode()).hexdigest()[:15]


@dataclass(frozen=True)
class Changes:
    """What changed against the previous run's assignment."""

    merges: int  # clusters now holding records of two or more previous clusters
    splits: int  # previous clusters whose records now sit in two or more clusters
    new_clusters: int  # clusters none of whose records were assigned before
    kept: int  # clusters that kept a previous id

    def as_dict(self) -> dict[str, int]:
        return {"merges": self.merges, "splits": self.splits, "new_clusters": self.new_clusters, "kept": self.kept}


def assign_ids(record_ids: list[str] | pl.Series, labels: np.ndarray,
               previous: dict[str, str] | None = None) -> tuple[pl.Series, Changes]:
    """Stable cluster ids for component ``labels`` of ``record_ids`` given the previous assignment."""
    previous = previous or {}
    frame = pl.DataFrame({"record_id": pl.Series(record_ids, dtype=pl.String), "label": labels})
    frame = frame.with_columns(pl.col("record_id").replace_strict(previous, default=None, return_dtype=pl.String)
                               .alias("previous_id"))
    smallest = frame.group_by("label").agg(pl.col("record_id").min().alias("smallest"))
    # candidate (label, previous id) with how many of the label's records held it; ties go to the part
    # holding the smallest record id, so the outcome does not depend on the labels' order
    votes = (frame.filter(pl.col("previous_id").is_not_null()).group_by("label", "previous_id").len()
             .join(smallest, on="label")
             .sort(["len", "previous_id", "smallest"], descending=[True, False, False]))
    claimed: dict[str, int] = {}
    chosen: dict[int, str] = {}
    # the biggest overlaps choose first: a previous id goes to the part holding most of its records
    for label, previous_id, _count, _smallest in votes.iter_rows():
        if label in chosen or previous_id in claimed:
            continue
        chosen[label] = previous_id
        claimed[previous_id] = label
    taken = set(previous.values())
    ids: dict[int, str] = {}
    for label, smallest_id in smallest.sort("smallest").iter_rows():
        if label in chosen:
            ids[label] = chosen[label]
            continue
        candidate, salt = new_cluster_id(smallest_id), 0
        while candidate in taken:  # an id a previous cluster held is never handed to another cluster
            salt += 1
            candidate = new_cluster_id(f"{smallest_id}#{salt}")
        ids[label] = candidate
        taken.add(candidate)
    merges = int(votes.group_by("label").len().filter(pl.col("len") > 1).height)
    splits = int(votes.group_by("previous_id").len().filter(pl.col("len") > 1).height)
    labels_with_history = set(votes["label"].to_list())
    changes = Changes(merges=merges, splits=splits,
                      new_clusters=len(ids) - len(labels_with_history), kept=len(chosen))
    cluster_ids = frame["label"].replace_strict(ids, return_dtype=pl.String)
    return cluster_ids, changes
