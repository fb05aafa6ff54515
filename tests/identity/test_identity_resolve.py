"""``python -m identity resolve`` on a real DuckDB warehouse and real MLflow, then dbt's identity_publish.

The warehouse holds the two staging relations identity/ reads (as tables, shaped as dbt's staging views)
and dim_households; the people are the world's generator's, with duplicates and custodian owners. One test
covers the whole step so the warehouse and the dbt run are built once: persons written, the model logged to
MLflow, ids stable when a duplicate joins (a merge counted), dim_persons built with the consent rule, gates
green.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from identity.resolve import EXPERIMENT, resolve
from northstar.warehouse import connect, relation
from sandbox.world.crm import LAST_NAMES
from sandbox.world.persons import custodian_owner, duplicate_people, people_frame

pytestmark = pytest.mark.integration


def _write_staging(con, people: pl.DataFrame, dupes: pl.DataFrame, owners_of: pl.DataFrame) -> None:
    both = pl.concat([people.with_columns(pl.lit("original").alias("variant"), pl.col("person_id").alias("copied_from")),
                      dupes], how="diagonal_relaxed").with_row_index("k")
    contacts = both.select(
        pl.format("003{}", pl.col("k")).alias("contact_id"),
        pl.format("001{}", pl.col("household_id")).alias("account_id"),
        "first_name", "last_name", pl.col("birth_date").str.strptime(pl.Date, "%Y-%m-%d").alias("birth_on"),
        "email", "phone", pl.col("street").alias("mailing_street"), pl.col("city").alias("mailing_city"),
        pl.col("postcode").alias("mailing_postal_code"), pl.col("tax_id").alias("tax_id_hash"),
        # the duplicates opted out of e-mail where the original did not
        (pl.col("variant") != "original").alias("has_opted_out_of_email"),
    )
    owners = custodian_owner(owners_of).with_row_index("k").select(
        pl.format("a01{}", pl.col("k")).alias("brokerage_account_id"),
        pl.Series("account_id", [f"001{h}" for h in owners_of["household_id"].to_list()]),
        pl.col("owner_name"), pl.col("owner_birth_date").str.strptime(pl.Date, "%m/%d/%Y").alias("owner_birth_on"),
        pl.col("owner_street"), pl.col("owner_postal_code"), pl.col("owner_tax_id").alias("owner_tax_id_hash"))
    households = contacts.select("account_id").unique().with_columns(
        pl.col("account_id").str.slice(3).alias("household_id"))
    con.execute("create schema if not exists staging")
    for name, frame in (("stg_salesforce__contacts", contacts), ("stg_salesforce__brokerage_accounts", owners),
                        ("dim_households", households)):
        con.register("frame_in", frame.to_arrow())
        con.execute(f"create or replace table {relation(name)} as select * from frame_in")
        con.unregister("frame_in")


def test_resolve_writes_stable_persons_logs_the_model_and_dbt_binds_consent(northstar_home):
    import mlflow

    from northstar.dbt import run_dbt
    from northstar.model_registry import configure
    from northstar.settings import ensure_pii_salt

    cfg = northstar_home
    r = np.random.default_rng(11)
    people = people_frame(r, 1_500)
    dupes = duplicate_people(r, people, LAST_NAMES, rate=0.08)
    with connect(cfg=cfg) as con:
        _write_staging(con, people, dupes, people.filter(pl.col("person_id").str.slice(-1).is_in(["0", "5"])))
    first = resolve("run-1", cfg)
    assert first.summary["records"] == people.height + dupes.height + 300 - first.summary["rejected_records"]
    assert first.summary["persons_with_duplicates"] >= 0.9 * dupes["person_id"].n_unique()
    with connect(read_only=True, cfg=cfg) as con:
        before = dict(con.sql(f"select record_id, person_id from {relation('person_records')}").fetchall())

    # the model, its parameters, chart and threshold choice are in MLflow's northstar-identity experiment
    configure(cfg)
    run = mlflow.get_run(first.summary["mlflow_run_id"])
    assert run.data.params["accept_threshold"] == "0.95"
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(run.info.run_id)}
    assert {"splink_model.json", "match_weights_chart.html", "threshold_choice.json"} <= artifacts
    assert mlflow.get_experiment(run.info.experiment_id).name == EXPERIMENT

    # a new duplicate Contact of a person who already has two records joins that person; nobody's id moves
    with connect(cfg=cfg) as con:
        holder = con.execute(f"select person_id, min(record_id) from {relation('person_records')} "
                             "where record_type = 'contact' group by person_id having count(*) >= 2 "
                             "order by person_id limit 1").fetchall()[0]
        con.execute(f"insert into {relation('stg_salesforce__contacts')} select '003NEW', account_id, first_name, "
                    f"last_name, birth_on, email, phone, mailing_street, mailing_city, mailing_postal_code, "
                    f"tax_id_hash, false from {relation('stg_salesforce__contacts')} where contact_id = ?", [holder[1]])
    second = resolve("run-2", cfg, log_to_mlflow=False)
    with connect(read_only=True, cfg=cfg) as con:
        after = dict(con.sql(f"select record_id, person_id from {relation('person_records')}").fetchall())
        runs = con.sql(f"select resolution_run_id, person_merges, person_splits from {relation('resolution_runs')} "
                       "order by resolution_run_id").fetchall()
    assert after["003NEW"] == holder[0]
    assert all(after[record] == person for record, person in before.items())
    assert [row[0] for row in runs] == ["run-1", "run-2"] and second.summary["splits"] == 0
    from northstar.summary import render_summary

    summary = render_summary(cfg)
    assert f"run-2: {second.summary['records']:,} CRM records are {second.summary['persons']:,} persons" in summary
    assert f"{second.summary['merges']:,} merges, 0 splits; clerical review queue" in summary

    # dbt: dim_persons over the identity source, the consent unit test, the identity gates
    ensure_pii_salt(cfg)
    result = run_dbt("build", ["--selector", "identity_publish"], cfg=cfg)
    assert not result.failures and result.nodes >= 10
    with connect(read_only=True, cfg=cfg) as con:
        persons = con.sql(f"select * from {relation('dim_persons')}").pl()
    assert persons.height == second.summary["persons"] and persons["person_id"].is_unique().all()
    merged = persons.filter(pl.col("contact_records") > 1)
    # every merged person holds a duplicate, and every duplicate here opted out: the person and household did
    assert merged.height > 0 and merged["has_opted_out"].all() and merged["household_has_opted_out"].all()
    assert persons["email_hash"].drop_nulls().str.contains(r"^[0-9a-f]{64}$").all()
