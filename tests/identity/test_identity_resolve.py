"""``python -m identity resolve`` on a real DuckDB warehouse and real MLflow, then dbt's identity_publish,
then the Salesforce push to the sandbox org over HTTPS through the real outbox.

The warehouse holds the two staging relations identity/ reads (as tables, shaped as dbt's staging views)
and dim_households; the people are the world's generator's, with duplicates and custodian owners. One test
covers the whole step so the warehouse and the dbt runs are built once: persons written, the model logged
to MLflow, ids stable when a duplicate joins (a merge counted), dim_persons built with the consent rule,
the consent test: an opt-out on one duplicate, in a second Account of the same household, stops every push
to the merged household (the rows already planned for it are cancelled at send time, and later runs plan
nothing for it), while every other household's push goes through and a rerun is idempotent; and the
gates: dbt's, and the marts gate's identity domain (Great Expectations), green on what resolve + dbt left,
then failing on a person put in two households and a giant person, and warning on a jump of the person sizes.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from identity.resolve import EXPERIMENT, resolve
from northstar.warehouse import connect, relation
from sandbox.salesforce.store import new_id
from sandbox.world.crm import LAST_NAMES
from sandbox.world.persons import custodian_owner, duplicate_people, people_frame

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "activate"))

from activation_world import (  # noqa: E402
    FAST_RETRY,
    household_id,
    household_scores,
    seed_org,
)

pytestmark = pytest.mark.integration

N_PEOPLE = 1_500
N_HOUSEHOLDS = N_PEOPLE // 2  # people_frame puts two people in each household


def _household_number() -> pl.Expr:
    """people_frame's household H000000012 is the sandbox org's Account 13 (activation_world's numbering)."""
    return pl.col("household_id").str.slice(1).cast(pl.Int64) + 1


def _account(numbers: pl.Series) -> pl.Series:
    return numbers.map_elements(lambda n: new_id("001", n), return_dtype=pl.String)


def _write_staging(con, people: pl.DataFrame, dupes: pl.DataFrame, owners_of: pl.DataFrame) -> None:
    both = pl.concat([people.with_columns(pl.lit("original").alias("variant"), pl.col("person_id").alias("copied_from")),
                      dupes], how="diagonal_relaxed").with_row_index("k")
    both = both.with_columns(_account(both.select(_household_number()).to_series()).alias("account_id"))
    contacts = both.select(
        pl.format("003{}", pl.col("k")).alias("contact_id"),
        "account_id",
        "first_name", "last_name", pl.col("birth_date").str.strptime(pl.Date, "%Y-%m-%d").alias("birth_on"),
        "email", "phone", pl.col("street").alias("mailing_street"), pl.col("city").alias("mailing_city"),
        pl.col("postcode").alias("mailing_postal_code"), pl.col("tax_id").alias("tax_id_hash"),
        # the duplicates opted out of e-mail where the original did not
        (pl.col("variant") != "original").alias("has_opted_out_of_email"),
    )
    owners = custodian_owner(owners_of).with_row_index("k").select(
        pl.format("a01{}", pl.col("k")).alias("brokerage_account_id"),
        _account(owners_of.select(_household_number()).to_series()).alias("account_id"),
        pl.col("owner_name"), pl.col("owner_birth_date").str.strptime(pl.Date, "%m/%d/%Y").alias("owner_birth_on"),
        pl.col("owner_street"), pl.col("owner_postal_code"), pl.col("owner_tax_id").alias("owner_tax_id_hash"))
    # the same households, ids and analytics consent as the sandbox org (activation_world.seed_org)
    numbers = pl.Series(range(1, N_HOUSEHOLDS + 1))
    households = pl.DataFrame({
        "household_id": [household_id(n) for n in numbers], "account_id": _account(numbers),
        "has_analytics_consent": [(n - 1) % 10 != 3 for n in numbers]})
    con.execute("create schema if not exists staging")
    for name, frame in (("stg_salesforce__contacts", contacts), ("stg_salesforce__brokerage_accounts", owners),
                        ("dim_households", households)):
        con.register("frame_in", frame.to_arrow())
        con.execute(f"create or replace table {relation(name)} as select * from frame_in")
        con.unregister("frame_in")


def _write_scores(cfg, rows: list[dict]) -> None:
    frame = pl.DataFrame(rows)  # noqa: F841 - read by DuckDB
    with connect(cfg=cfg) as con:
        con.execute(f"create or replace table {relation('fct_household_scores')} as select * from frame")


def _push_consent(cfg) -> dict[str, bool]:
    with connect(read_only=True, cfg=cfg) as con:
        return dict(con.sql(f"select household_id, has_push_consent from {relation('dim_resolved_households')}"
                            ).fetchall())


def test_resolve_keeps_ids_binds_consent_and_the_push_honours_it(northstar_home, tmp_path, monkeypatch):
    import mlflow

    from activate.salesforce import plan_salesforce, send_salesforce
    from connectors.salesforce import login
    from northstar.dbt import run_dbt
    from northstar.model_registry import configure
    from northstar.settings import Endpoint, Secret, ensure_pii_salt
    from northstar.summary import render_summary
    from sandbox.credentials import _random_credentials
    from sandbox.salesforce.store import SalesforceStore
    from sandbox.server import start_in_thread

    cfg = northstar_home
    monkeypatch.delenv("NORTHSTAR_KILL_SWITCH", raising=False)
    ensure_pii_salt(cfg)
    r = np.random.default_rng(11)
    people = people_frame(r, N_PEOPLE)
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

    # night 1: dim_persons, dim_resolved_households and the gates, then the push to the sandbox org
    assert not run_dbt("build", ["--selector", "identity_publish"], cfg=cfg).failures
    consent_1 = _push_consent(cfg)
    state = tmp_path / "sandbox"
    state.mkdir()
    seed_org(state, n=N_HOUSEHOLDS)
    handle = start_in_thread(state, credentials=_random_credentials())
    try:
        creds = handle.credentials["salesforce"]
        endpoint = Endpoint(url=handle.salesforce_url, username=creds["username"], password=Secret(creds["password"]),
                            security_token=Secret(creds["security_token"]), ca_bundle=handle.ca_cert)

        def send(run_id: str):
            return send_salesforce(run_id, cfg=cfg, connect=lambda: login(endpoint), retry=FAST_RETRY,
                                   sleep=lambda s: None, raise_on_incomplete=True)

        def segments() -> dict[str, str | None]:
            store = SalesforceStore(state / "salesforce.db")
            try:
                return {a["Household_Id__c"]: a["Segment__c"] for a in store.select("Account", ["Household_Id__c",
                                                                                                  "Segment__c"])}
            finally:
                store.close()

        scores_1 = household_scores(seed=1, n=N_HOUSEHOLDS, run="score-1")
        _write_scores(cfg, scores_1)
        plan_salesforce("night-1", cfg=cfg)
        assert send("night-1").sent > 0
        pushed_1 = {h for h, segment in segments().items() if segment}
        allowed_1 = {s["household_id"] for s in scores_1 if s["has_analytics_consent"] and consent_1[s["household_id"]]}
        assert pushed_1 == allowed_1

        # Two households pushed to on night 1, nobody opted out in either. Night 2's scores are planned
        # (the outbox holds rows for both), then the CRM changes before the send: a new duplicate Contact
        # of a person who already has two records, in their own Account; and a duplicate of a person of
        # household A entered in household B's Account by another advisor (a household split across two
        # Accounts), opted out of e-mail.
        with connect(read_only=True, cfg=cfg) as con:
            clean = [h for (h,) in con.sql(
                f"select h.household_id from {relation('dim_households')} as h "
                f"join {relation('stg_salesforce__contacts')} as c on c.account_id = h.account_id "
                "group by h.household_id having not bool_or(c.has_opted_out_of_email) order by 1").fetchall()
                if h in pushed_1]
        house_a, house_b = clean[0], clean[1]
        scores_2 = household_scores(seed=2, n=N_HOUSEHOLDS, run="score-2")
        _write_scores(cfg, scores_2)
        planned = plan_salesforce("night-2", cfg=cfg)
        assert planned.enqueued["Account"] >= len(pushed_1) - 5

        with connect(cfg=cfg) as con:
            holder = con.execute(f"select person_id, min(record_id) from {relation('person_records')} "
                                 "where record_type = 'contact' group by person_id having count(*) >= 2 "
                                 "order by person_id limit 1").fetchall()[0]
            contacts = relation("stg_salesforce__contacts")
            con.execute(f"insert into {contacts} select '003NEW', account_id, first_name, last_name, birth_on, email, "
                        f"phone, mailing_street, mailing_city, mailing_postal_code, tax_id_hash, false from {contacts} "
                        "where contact_id = ?", [holder[1]])
            con.execute(f"insert into {contacts} select '003SPLIT', (select account_id from "
                        f"{relation('dim_households')} where household_id = ?), first_name, last_name, birth_on, "
                        f"email, phone, mailing_street, mailing_city, mailing_postal_code, tax_id_hash, true "
                        f"from {contacts} where account_id = (select account_id from {relation('dim_households')} "
                        "where household_id = ?) order by contact_id limit 1", [house_b, house_a])
        second = resolve("run-2", cfg, log_to_mlflow=False)
        with connect(read_only=True, cfg=cfg) as con:
            after = dict(con.sql(f"select record_id, person_id from {relation('person_records')}").fetchall())
            runs = con.sql(f"select resolution_run_id, person_merges, person_splits from {relation('resolution_runs')} "
                           "order by resolution_run_id").fetchall()
        # clusters are stable: the new duplicates join their persons and nobody's id moves
        assert after["003NEW"] == holder[0]
        assert all(after[record] == person for record, person in before.items())
        assert [row[0] for row in runs] == ["run-1", "run-2"] and second.summary["splits"] == 0
        summary = render_summary(cfg)
        assert f"run-2: {second.summary['records']:,} CRM records are {second.summary['persons']:,} persons" in summary
        assert f"{second.summary['merges']:,} merges, 0 splits; clerical review queue" in summary

        # dbt: dim_persons and dim_resolved_households over the identity source, the consent unit tests,
        # the identity gates (the split person is in two Accounts but one resolved household: green)
        result = run_dbt("build", ["--selector", "identity_publish"], cfg=cfg)
        assert not result.failures and result.nodes >= 10
        with connect(read_only=True, cfg=cfg) as con:
            persons = con.sql(f"select * from {relation('dim_persons')}").pl()
            resolved = con.sql(f"select * from {relation('dim_resolved_households')}").pl()
        assert persons.height == second.summary["persons"] and persons["person_id"].is_unique().all()
        merged = persons.filter(pl.col("contact_records") > 1, pl.col("households_touched") == 1)
        # every merged person holds a duplicate, and every duplicate here opted out: the person and household did
        assert merged.height > 0 and merged["has_opted_out"].all() and merged["household_has_opted_out"].all()
        assert persons["email_hash"].drop_nulls().str.contains(r"^[0-9a-f]{64}$").all()
        split = persons.filter(pl.col("households_touched") == 2)
        assert split.height == 1 and split["resolved_households_touched"].to_list() == [1]
        assert split["has_opted_out"].to_list() == [True]
        merged_household = resolved.filter(pl.col("household_id").is_in([house_a, house_b]))
        assert merged_household["resolved_household_id"].to_list() == [min(house_a, house_b)] * 2
        assert merged_household["accounts_in_household"].to_list() == [2, 2]
        consent_2 = _push_consent(cfg)
        assert not consent_2[house_a] and not consent_2[house_b]
        held_back = sum(not ok for ok in consent_2.values())
        assert (f"{N_HOUSEHOLDS:,} Accounts are {N_HOUSEHOLDS - 1:,} households (1 split across Accounts); "
                f"{held_back:,} Accounts held back") in render_summary(cfg)
        assert {h for h, ok in consent_2.items() if ok != consent_1[h]} == {house_a, house_b}

        # the consent test: the rows planned for A and B before the opt-out are cancelled at send time;
        # every other planned row goes to Salesforce
        with connect(read_only=True, cfg=cfg) as con:
            open_for_ab = con.execute("select count(*) from activation.outbox where run_id = 'night-2' "
                                      "and source_ref in (?, ?)", [house_a, house_b]).fetchone()[0]
        report = send("night-2")
        assert open_for_ab >= 2 and report.detail["cancelled_no_consent"] == open_for_ab
        with connect(read_only=True, cfg=cfg) as con:
            statuses = con.execute("select distinct status from activation.outbox where run_id = 'night-2' "
                                   "and source_ref in (?, ?)", [house_a, house_b]).fetchall()
        assert statuses == [("superseded",)]
        after_2 = segments()
        want_2 = {s["household_id"]: s["segment"] for s in scores_2}
        want_1 = {s["household_id"]: s["segment"] for s in scores_1}
        for house in (house_a, house_b):
            assert after_2[house] == want_1[house]  # night 1's values: nothing new reached them
        for house in pushed_1 - {house_a, house_b}:
            assert after_2[house] == want_2[house]

        # later nights plan nothing for the merged household, and a rerun sends nothing at all
        again = plan_salesforce("night-3", cfg=cfg)
        assert again.enqueued == {"Account": 0, "Task": 0}
        assert again.skipped_no_consent == sum(1 for s in scores_2 if not (s["has_analytics_consent"]
                                                                           and consent_2[s["household_id"]]))
        rerun = send("night-3")
        assert rerun.api_calls == 0 and rerun.sent == 0
    finally:
        handle.stop()

    # the marts gate's identity domain (Great Expectations): green on what resolve + dbt left
    from expectations import run_gate
    from expectations.runner import GateFailed

    good = run_gate("marts", "identity-good", cfg=cfg, domains=["identity"], build_docs=False)
    checks = {o.expectation.split(".", 1)[1] for o in good.outcomes}
    assert {"identity_persons_in_two_households.no_person_in_two_households", "identity_giant_persons.no_giant_person",
            "identity_giant_households.no_giant_household",
            "identity_person_sizes.person_size_distribution_stable"} <= checks
    assert good.success and not good.warnings  # run-2 added two records to run-1: the sizes barely moved
    # a person placed in two households, a giant person, and a run whose person sizes jumped
    with connect(cfg=cfg) as con:
        records = relation("person_records")
        moved = con.execute(f"select record_id, person_id from {records} where person_id in (select person_id from "
                            f"{records} group by person_id having count(distinct account_id) = 1 and count(*) >= 2) "
                            f"and account_id not in (select account_id from {relation('dim_households')} "
                            "where household_id in (?, ?)) order by record_id limit 1", [house_a, house_b]).fetchall()[0]
        con.execute(f"update {records} set account_id = (select account_id from {relation('dim_households')} "
                    f"where household_id = ?) where record_id = ?", [house_b, moved[0]])
        con.execute(f"update {records} set person_id = 'PGIANT' where record_id in (select record_id from {records} "
                    "where person_id <> ? order by record_id limit 41)", [moved[1]])
        con.execute(f"insert into {relation('resolution_runs')} (resolution_run_id, resolved_at, persons, "
                    "persons_of_size_1, persons_of_size_2, persons_of_size_3, persons_of_size_4_plus) "
                    "select 'run-3', max(resolved_at) + interval 1 day, 100, 10, 10, 10, 70 from "
                    f"{relation('resolution_runs')}")
    with pytest.raises(GateFailed) as failed:
        run_gate("marts", "identity-bad", cfg=cfg, domains=["identity"], build_docs=False)
    report = failed.value.report
    critical = {o.expectation.split(".", 1)[1]: o for o in report.critical_failures}
    assert set(critical) == {"identity_persons_in_two_households.no_person_in_two_households",
                             "identity_giant_persons.no_giant_person"}
    assert moved[1] in {row["person_id"] for row in critical[
        "identity_persons_in_two_households.no_person_in_two_households"].sample_rows}
    assert [o.expectation.split(".", 1)[1] for o in report.warnings] == [
        "identity_person_sizes.person_size_distribution_stable"]
