"""Linkage quality against a known truth: pairwise precision, recall, F1, and cluster-level F1.

Pairwise: every pair of records in one predicted cluster is a predicted match; every pair in one
true person a true match. Cluster F1: a true person counts as found when some predicted cluster
holds exactly its records (precision over predicted clusters, recall over true persons).
"""

from __future__ import annotations

import polars as pl


def _pairs(frame: pl.DataFrame, key: str) -> int:
    sizes = frame.group_by(key).len()["len"]
    return int((sizes * (sizes - 1) // 2).sum())


def linkage_metrics(predicted: pl.DataFrame, truth: pl.DataFrame) -> dict[str, float | int]:
    """``predicted``: record_id, cluster_id; ``truth``: record_id, entity_id (same records)."""
    joined = predicted.select("record_id", "cluster_id").join(
        truth.select("record_id", "entity_id"), on="record_id", how="inner")
    predicted_pairs = _pairs(joined, "cluster_id")
    true_pairs = _pairs(joined, "entity_id")
    both = (joined.group_by("cluster_id", "entity_id").len()["len"])
    true_positive = int((both * (both - 1) // 2).sum())
    precision = true_positive / predicted_pairs if predicted_pairs else 1.0
    recall = true_positive / true_pairs if true_pairs else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    # cluster level: exact set equality between a predicted cluster and a true entity
    predicted_sets = joined.group_by("cluster_id").agg(pl.col("record_id").sort().alias("members"))
    true_sets = joined.group_by("entity_id").agg(pl.col("record_id").sort().alias("members"))
    exact = predicted_sets.join(true_sets, on="members", how="inner").height
    cluster_precision = exact / predicted_sets.height if predicted_sets.height else 1.0
    cluster_recall = exact / true_sets.height if true_sets.height else 1.0
    cluster_f1 = (2 * cluster_precision * cluster_recall / (cluster_precision + cluster_recall)
                  if cluster_precision + cluster_recall else 0.0)
    return {
        "records": joined.height, "true_pairs": true_pairs, "predicted_pairs": predicted_pairs,
        "true_positive_pairs": true_positive, "pairwise_precision": round(precision, 5),
        "pairwise_recall": round(recall, 5), "pairwise_f1": round(f1, 5),
        "clusters": predicted_sets.height, "true_entities": true_sets.height,
        "cluster_precision": round(cluster_precision, 5), "cluster_recall": round(cluster_recall, 5),
        "cluster_f1": round(cluster_f1, 5),
    }
