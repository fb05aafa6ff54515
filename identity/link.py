"""One linking run: normalised records in, clusters, accepted pairs and the review queue out."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import polars as pl

from identity.clusters import Changes, assign_ids, components
from identity.model import MAX_KEY_GROUP, Thresholds, deterministic_rules, train
from identity.records import Records
from northstar.warehouse import scratch

log = logging.getLogger(__name__)

# the evidence a reviewer sees for a pair: each comparison's level and the record values it compared
EVIDENCE_FIELDS = ("first_name", "last_name", "birth_date", "postcode", "street", "email_norm", "phone")


@dataclass
class LinkResult:
    clusters: pl.DataFrame  # record_id, source, cluster_id, match_probability
    pairs: pl.DataFrame  # accepted pairs: record_id_l, record_id_r, match_probability, rule
    review: pl.DataFrame  # pairs in [review, accept): ids, probability, match weight, evidence
    changes: Changes
    model_json: dict
    linker: object
    seconds: dict[str, float] = field(default_factory=dict)
    comparisons: int = 0


def _deterministic_pairs(con, columns: tuple[str, ...]) -> pl.DataFrame:
    """Pairs the deterministic rules join, leaving out keys shared by more than MAX_KEY_GROUP records."""
    parts = []
    for rule in deterministic_rules(columns):
        keys = [part.split("=")[0].strip().removeprefix("l.") for part in rule.split(" and ")]
        key_list = ", ".join(keys)
        not_null = " and ".join(f"{k} is not null" for k in keys)
        join_on = " and ".join(f"l.{k} = r.{k}" for k in keys)
        parts.append(con.sql(f"""
            with keyed as (
                select unique_id, {key_list}, count(*) over (partition by {key_list}) as holders
                from records where {not_null}
            )
            select l.unique_id as unique_id_l, r.unique_id as unique_id_r, '{' + '.join(keys)}' as rule
            from keyed as l join keyed as r on {join_on} and l.unique_id < r.unique_id
            where l.holders <= {MAX_KEY_GROUP}
        """).pl())  # noqa: S608 - column names from the model's own rules
    if not parts:
        return pl.DataFrame(schema={"unique_id_l": pl.Int64, "unique_id_r": pl.Int64, "rule": pl.String})
    return pl.concat(parts).unique(["unique_id_l", "unique_id_r"], keep="first")


def link(records: Records, thresholds: Thresholds | None = None,
         previous: dict[str, str] | None = None) -> LinkResult:
    thresholds = thresholds or Thresholds()
    seconds: dict[str, float] = {}
    frame = records.frame
    if frame.height == 0:
        empty = pl.DataFrame(schema={"record_id": pl.String, "source": pl.String, "cluster_id": pl.String,
                                     "match_probability": pl.Float64})
        return LinkResult(empty, pl.DataFrame(), pl.DataFrame(), Changes(0, 0, 0, 0), {}, None)
    con = scratch()
    started = time.monotonic()
    con.register("records_input", frame.to_arrow())
    con.execute("create table records as select * from records_input")
    con.unregister("records_input")
    linker = train(con, "records", records.columns)
    seconds["train"] = round(time.monotonic() - started, 2)

    started = time.monotonic()
    predictions = linker.inference.predict(threshold_match_probability=thresholds.review)
    scored = con.sql(f"select * from {predictions.physical_name}").pl()  # noqa: S608 - Splink's own table
    seconds["predict"] = round(time.monotonic() - started, 2)

    started = time.monotonic()
    deterministic = _deterministic_pairs(con, records.columns)
    probabilistic = scored.filter(pl.col("match_probability") >= thresholds.accept).select(
        "unique_id_l", "unique_id_r", "match_probability", pl.lit("model").alias("rule"))
    accepted = pl.concat([
        deterministic.select("unique_id_l", "unique_id_r", pl.lit(1.0).alias("match_probability"), "rule"),
        probabilistic,
    ]).sort("match_probability", descending=True).unique(["unique_id_l", "unique_id_r"], keep="first")
    labels = components(frame.height, accepted["unique_id_l"].to_numpy(), accepted["unique_id_r"].to_numpy())
    cluster_ids, changes = assign_ids(frame["record_id"], labels, previous)
    # a record's probability: its strongest accepted link (a record alone in its cluster has none)
    strongest = (pl.concat([accepted.select(pl.col("unique_id_l").alias("unique_id"), "match_probability"),
                            accepted.select(pl.col("unique_id_r").alias("unique_id"), "match_probability")])
                 .group_by("unique_id").agg(pl.col("match_probability").max()))
    clusters = (frame.select("unique_id", "record_id", "source").with_columns(cluster_id=cluster_ids)
                .join(strongest, on="unique_id", how="left").sort("unique_id"))
    ids = frame.select("unique_id", "record_id")
    pairs = (accepted.join(ids.rename({"unique_id": "unique_id_l", "record_id": "record_id_l"}), on="unique_id_l")
             .join(ids.rename({"unique_id": "unique_id_r", "record_id": "record_id_r"}), on="unique_id_r")
             .select("record_id_l", "record_id_r", "match_probability", "rule"))
    in_cluster = dict(zip(clusters["unique_id"].to_list(), clusters["cluster_id"].to_list(), strict=True))
    review = scored.filter((pl.col("match_probability") >= thresholds.review)
                           & (pl.col("match_probability") < thresholds.accept))
    evidence_columns = [c for c in scored.columns if c.startswith("gamma_")] + [
        f"{c}_{side}" for c in EVIDENCE_FIELDS for side in ("l", "r") if f"{c}_{side}" in scored.columns]
    review = (review.join(ids.rename({"unique_id": "unique_id_l", "record_id": "record_id_l"}), on="unique_id_l")
              .join(ids.rename({"unique_id": "unique_id_r", "record_id": "record_id_r"}), on="unique_id_r")
              .with_columns(pl.col("unique_id_l").replace_strict(in_cluster).alias("cluster_id_l"),
                            pl.col("unique_id_r").replace_strict(in_cluster).alias("cluster_id_r"))
              .select("record_id_l", "record_id_r", "match_probability", "match_weight", "cluster_id_l",
                      "cluster_id_r", *evidence_columns)
              .sort("match_probability", descending=True))
    seconds["cluster"] = round(time.monotonic() - started, 2)
    return LinkResult(clusters.drop("unique_id"), pairs, review, changes,
                      linker.misc.save_model_to_json(), linker, seconds, comparisons=scored.height)
