"""``python -m identity resolve``: the pipeline step between staging and the marts.

Reads the CRM's people from staging (Contacts and the custodian's brokerage-account owners), links them
(``identity.link``) with the previous run's person ids carried over, and writes schema ``identity`` of the
warehouse (dbt reads it as the source ``identity``):

- ``person_records``: one row per record: record id, kind, the household Account it sits in, the person
  id (stable across runs), the record's strongest accepted link, the run, and the resolved household
  (``household_account_id``): Accounts that share a person are one household (a household split across
  two Accounts by two advisors), named by the smallest Account id among them;
- ``review_queue``: the pairs between the review and accept thresholds, with each comparison's level
  (no raw values: reviewers open the records in Salesforce by id);
- ``resolution_runs``: one row per run: records, persons, merges and splits since the previous run,
  review-queue size, the largest person, the thresholds and the MLflow run.

The trained model (Splink's JSON), its parameters, the match-weight chart and the threshold choice are
logged to MLflow in the experiment ``northstar-identity``. A run replaces the tables whole (on DuckDB in one
transaction; on Spark by insert overwrite), so a rerun on unchanged staging writes the same rows. The
reads and writes go through the engine layer (``northstar.warehouse.open_warehouse``).
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import polars as pl

from identity.clusters import components
from identity.link import LinkResult, link
from identity.model import Thresholds
from identity.records import normalise
from identity.sources import crm_records
from northstar.reference import nicknames
from northstar.settings import Settings, settings
from northstar.warehouse import Replacement, TableSpec, open_warehouse

log = logging.getLogger(__name__)

EXPERIMENT = "northstar-identity"
# the tables this stage writes and dbt reads (source `identity`), on either engine (northstar.warehouse);
# a nullable column added after the first release is added to an older table on its next run
PERSON_RECORDS = TableSpec("person_records", (
    ("record_id", "varchar", True), ("record_type", "varchar", True), ("account_id", "varchar", False),
    ("person_id", "varchar", True), ("match_probability", "double", False), ("resolution_run_id", "varchar", True),
    ("resolved_at", "timestamp", True), ("household_account_id", "varchar", False)), replace_by=())
REVIEW_QUEUE = TableSpec("review_queue", (
    ("record_id_l", "varchar", True), ("record_id_r", "varchar", True), ("match_probability", "double", True),
    ("match_weight", "double", True), ("person_id_l", "varchar", False), ("person_id_r", "varchar", False),
    ("evidence", "varchar", False), ("resolution_run_id", "varchar", True)), replace_by=())
RESOLUTION_RUNS = TableSpec("resolution_runs", (
    ("resolution_run_id", "varchar", True), ("resolved_at", "timestamp", True), ("records", "bigint", False),
    ("rejected_records", "bigint", False), ("persons", "bigint", False), ("persons_with_duplicates", "bigint", False),
    ("largest_person", "bigint", False), ("person_merges", "bigint", False), ("person_splits", "bigint", False),
    ("new_persons", "bigint", False), ("review_pairs", "bigint", False), ("accept_threshold", "double", False),
    ("review_threshold", "double", False), ("mlflow_run_id", "varchar", False), ("reasons", "varchar", False),
    # the person-size distribution of each run (the marts gate compares the latest with the previous run)
    ("persons_of_size_1", "bigint", False), ("persons_of_size_2", "bigint", False),
    ("persons_of_size_3", "bigint", False), ("persons_of_size_4_plus", "bigint", False)),
    replace_by=("resolution_run_id",))
TABLES = (PERSON_RECORDS, REVIEW_QUEUE, RESOLUTION_RUNS)


@dataclass
class Resolution:
    run_id: str
    result: LinkResult
    summary: dict


def ensure_identity_schema(cfg: Settings | None = None) -> None:
    """Create schema ``identity`` and its tables if missing (idempotent)."""
    with open_warehouse(read_only=False, cfg=cfg) as warehouse:
        warehouse.ensure(*TABLES)


def _staging(warehouse) -> pl.DataFrame:
    contacts = pl.from_pandas(warehouse.frame(
        "select contact_id, account_id, first_name, last_name, birth_on, email, phone, mailing_street, "
        "mailing_city, mailing_postal_code, tax_id_hash from {stg_salesforce__contacts}"))
    accounts = pl.from_pandas(warehouse.frame(
        "select brokerage_account_id, account_id, owner_name, owner_birth_on, owner_street, owner_postal_code, "
        "owner_tax_id_hash from {stg_salesforce__brokerage_accounts}"))
    records = crm_records(contacts, accounts)
    homes = pl.concat([contacts.select(pl.col("contact_id").alias("record_id"), "account_id"),
                       accounts.select(pl.col("brokerage_account_id").alias("record_id"), "account_id")])
    return records.join(homes, on="record_id", how="left")


def resolved_households(people: pl.DataFrame) -> pl.Series:
    """Per record of ``people`` (account_id, person_id): its resolved household, the smallest Account id
    of the connected component of the Account-person graph. A person with records in two Accounts
    joins those Accounts into one household; a record with no Account has none."""
    placed = people.filter(pl.col("account_id").is_not_null())
    if placed.height == 0:
        return pl.Series("household_account_id", [None] * people.height, dtype=pl.String)
    accounts = placed["account_id"].unique().sort()
    persons = placed["person_id"].unique().sort()
    account_index = dict(zip(accounts.to_list(), range(len(accounts)), strict=True))
    person_index = dict(zip(persons.to_list(), range(len(accounts), len(accounts) + len(persons)), strict=True))
    left = placed["account_id"].replace_strict(account_index, return_dtype=pl.Int64).to_numpy()
    right = placed["person_id"].replace_strict(person_index, return_dtype=pl.Int64).to_numpy()
    labels = components(len(accounts) + len(persons), left, right)[: len(accounts)]
    named = (pl.DataFrame({"account_id": accounts, "label": labels})
             .with_columns(pl.col("account_id").min().over("label").alias("household_account_id")))
    return (people.select("account_id")
            .join(named.select("account_id", "household_account_id"), on="account_id", how="left",
                  maintain_order="left")["household_account_id"])


def _previous(warehouse) -> dict[str, str]:
    if not warehouse.exists("person_records"):
        return {}
    return dict(warehouse.rows("select record_id, person_id from {person_records}"))


def _log_model(result: LinkResult, thresholds: Thresholds, summary: dict, cfg: Settings) -> str | None:
    import mlflow

    from northstar.model_registry import configure

    configure(cfg)
    experiment = mlflow.set_experiment(EXPERIMENT)
    with mlflow.start_run(experiment_id=experiment.experiment_id, run_name=summary["resolution_run_id"],
                          tags={"northstar.model": EXPERIMENT}) as run:
        model = result.model_json
        mlflow.log_params({
            "accept_threshold": thresholds.accept, "review_threshold": thresholds.review,
            "probability_two_random_records_match": model.get("probability_two_random_records_match"),
            "comparisons": ",".join(c["output_column_name"] for c in model.get("comparisons", [])),
            "blocking_rules": len(model.get("blocking_rules_to_generate_predictions", [])),
            "link_type": model.get("link_type"),
        })
        mlflow.log_metrics({k: float(summary[k]) for k in (
            "records", "persons", "persons_with_duplicates", "largest_person", "merges", "splits", "review_pairs")})
        mlflow.log_dict(model, "splink_model.json")
        mlflow.log_dict({"accept": thresholds.accept, "review": thresholds.review,
                         "why": "fixed before any truth was read: a pair joins a person at >= accept; "
                                "[review, accept) goes to the clerical review queue"}, "threshold_choice.json")
        with tempfile.TemporaryDirectory() as folder:
            chart = Path(folder) / "match_weights_chart.html"
            result.linker.visualisations.match_weights_chart().save(str(chart))
            mlflow.log_artifact(str(chart))
        return run.info.run_id


def resolve(run_id: str, cfg: Settings | None = None, thresholds: Thresholds | None = None,
            log_to_mlflow: bool = True) -> Resolution:
    cfg = cfg or settings()
    thresholds = thresholds or Thresholds()
    started = time.monotonic()
    with open_warehouse(read_only=True, cfg=cfg) as warehouse:
        frame = _staging(warehouse)
        previous = _previous(warehouse)
    records = normalise(frame.drop("account_id"), nicknames(cfg))
    result = link(records, thresholds, previous)
    homes = frame.select("record_id", "account_id")
    people = (result.clusters.join(homes, on="record_id", how="left")
              .select("record_id", pl.col("source").alias("record_type"), "account_id",
                      pl.col("cluster_id").alias("person_id"), "match_probability"))
    people = people.with_columns(resolved_households(people).alias("household_account_id"))
    sizes = people.group_by("person_id").len()["len"]
    evidence_columns = [c for c in result.review.columns if c.startswith("gamma_")]
    review = result.review.select(
        "record_id_l", "record_id_r", "match_probability", "match_weight",
        pl.col("cluster_id_l").alias("person_id_l"), pl.col("cluster_id_r").alias("person_id_r"),
        (pl.struct(evidence_columns).struct.json_encode() if evidence_columns else pl.lit("{}")).alias("evidence"))
    summary = {
        "resolution_run_id": run_id, "records": people.height, "rejected_records": records.rejected.height,
        "persons": int(sizes.len()), "persons_with_duplicates": int((sizes > 1).sum()),
        "largest_person": int(sizes.max() or 0), **result.changes.as_dict(), "review_pairs": review.height,
        "reasons": dict(records.reasons),
        "persons_of_size": {"1": int((sizes == 1).sum()), "2": int((sizes == 2).sum()), "3": int((sizes == 3).sum()),
                            "4_plus": int((sizes >= 4).sum())},
    }
    summary["new_persons"] = summary.pop("new_clusters")
    summary.pop("kept")
    mlflow_run = _log_model(result, thresholds, summary, cfg) if log_to_mlflow else None
    stamp = datetime.now(UTC).replace(tzinfo=None)
    run_row = pd.DataFrame([{
        "resolution_run_id": run_id, "resolved_at": stamp, "records": summary["records"],
        "rejected_records": summary["rejected_records"], "persons": summary["persons"],
        "persons_with_duplicates": summary["persons_with_duplicates"], "largest_person": summary["largest_person"],
        "person_merges": summary["merges"], "person_splits": summary["splits"], "new_persons": summary["new_persons"],
        "review_pairs": summary["review_pairs"], "accept_threshold": thresholds.accept,
        "review_threshold": thresholds.review, "mlflow_run_id": mlflow_run,
        "reasons": json.dumps(summary["reasons"], sort_keys=True),
        **{f"persons_of_size_{k}": v for k, v in summary["persons_of_size"].items()},
    }])
    # person_records and review_queue replaced whole, the run's row by its id: on DuckDB in one transaction
    with open_warehouse(read_only=False, cfg=cfg) as warehouse:
        warehouse.ensure(*TABLES)
        warehouse.replace(
            Replacement(PERSON_RECORDS, people.with_columns(pl.lit(run_id).alias("resolution_run_id"),
                                                            pl.lit(stamp).alias("resolved_at")).to_pandas(), {}),
            Replacement(REVIEW_QUEUE, review.with_columns(pl.lit(run_id).alias("resolution_run_id")).to_pandas(), {}),
            Replacement(RESOLUTION_RUNS, run_row, {"resolution_run_id": run_id}),
        )
    summary["mlflow_run_id"] = mlflow_run
    summary["seconds"] = {**result.seconds, "total": round(time.monotonic() - started, 2)}
    log.info("identity resolved: %s", summary)
    return Resolution(run_id, result, summary)
