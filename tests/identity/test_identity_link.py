"""identity/: normalisation, stable cluster ids, metrics, and the linker + CLI on generated people with truth."""

from __future__ import annotations

import json
from datetime import date

import numpy as np
import polars as pl
import pytest

from identity.__main__ import main
from identity.clusters import assign_ids, components, new_cluster_id
from identity.evaluation import linkage_metrics
from identity.records import InputError, load, normalise
from northstar.reference import nicknames
from sandbox.world.crm import FIRST_NAMES, LAST_NAMES
from sandbox.world.persons import addresses, duplicate_people, tax_ids

pytestmark = pytest.mark.unit


def _people(n: int, seed: int = 3) -> pl.DataFrame:
    r = np.random.default_rng(seed)
    first = FIRST_NAMES[r.integers(0, len(FIRST_NAMES), n)]
    last = LAST_NAMES[r.integers(0, len(LAST_NAMES), n)]
    birth = (np.datetime64("1940-01-01") + r.integers(0, 365 * 60, n).astype("timedelta64[D]")).astype(str)
    where = addresses(r, n)
    return pl.DataFrame({
        "person_id": [f"P{i:05d}" for i in range(n)], "household_id": [f"H{i // 2:05d}" for i in range(n)],
        "first_name": first, "last_name": last, "birth_date": birth,
        "email": [f"{f.lower()}.{s.lower()}.{i}@example.com" for i, (f, s) in enumerate(zip(first, last, strict=True))],
        "phone": np.char.add("+1-555-01", np.char.zfill(r.integers(0, 100_000, n).astype(str), 5)),
        **where,
        "tax_id": pl.Series([t if keep else None for t, keep in zip(tax_ids(np.arange(n)), r.random(n) < 0.6, strict=True)],
                            dtype=pl.String),
    })


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """800 people, 15% of them duplicated with the world's variants, as two CSV files plus the truth."""
    people = _people(800)
    dupes = duplicate_people(np.random.default_rng(5), people, LAST_NAMES, rate=0.15)
    folder = tmp_path_factory.mktemp("identity")
    crm = people.with_columns(pl.format("C{}", pl.col("person_id")).alias("rid"), pl.lit("crm").alias("source"))
    dup = dupes.with_row_index("k").with_columns(pl.format("D{}", pl.col("k")).alias("rid"),
                                                 pl.lit("crm2").alias("source")).drop("k", "variant")
    crm.drop("person_id", "household_id").write_csv(folder / "crm.csv")
    dup.drop("person_id", "household_id").write_parquet(folder / "dup.parquet")
    truth = pl.concat([crm.select(pl.col("rid").alias("record_id"), pl.col("person_id").alias("entity_id")),
                       dup.select(pl.col("rid").alias("record_id"), pl.col("person_id").alias("entity_id"))])
    return folder, truth, dupes


def test_normalise_counts_what_it_blanks_and_rejects():
    frame = pl.DataFrame({
        "record_id": ["a", "b", "b", None, "c", "d"],
        "source": ["s"] * 6,
        "first_name": ["Bill", "Mary-Ann", "Mary", "Tom", "Tom", None],
        "last_name": ["O'Brien", "Smith", "Smith", "Jones", None, None],
        "birth_date": ["1961-04-03", "not a date", "19610403", "1961-04-03", "1861-01-01", None],
        "email": ["Bill.OBrien+work@Example.com", "mary@", None, None, None, None],
        "phone": ["(555) 010-1234", "12", None, None, None, None],
    })
    records = normalise(frame, nicknames(), today=date(2026, 10, 30))
    row = records.frame.filter(pl.col("record_id") == "a").row(0, named=True)
    assert row["first_name"] == "bill" and "william" in row["first_name_variants"]
    assert row["first_name_canon"] == "william" and row["last_name"] == "obrien"
    assert row["email_norm"] == "billobrien@example.com" and row["phone"] == "5550101234"
    assert records.reasons["birth_date unparseable (field blanked)"] == 1
    assert records.reasons["birth_date impossible (field blanked)"] == 1
    assert records.reasons["email malformed (field blanked)"] == 1
    assert records.reasons["phone under 7 digits (field blanked)"] == 1
    rejected = dict(zip(records.rejected["reason"].to_list(), records.rejected["record_id"].to_list(), strict=False))
    assert set(rejected) == {"no record id", "repeated record id", "fewer than two usable identifying fields"}
    assert records.frame.height + records.rejected.height == frame.height  # nothing lost


def test_no_usable_column_is_a_clear_error(tmp_path):
    path = tmp_path / "x.csv"
    pl.DataFrame({"id": ["1"], "colour": ["red"]}).write_csv(path)
    with pytest.raises(InputError, match="none of the canonical columns"):
        load([path], "id", nicknames())
    with pytest.raises(InputError, match="no id column"):
        load([path], "record", nicknames())


def test_stable_ids_keep_a_person_when_a_duplicate_joins_and_count_merges_and_splits():
    first_ids, changes = assign_ids(["a", "b", "c"], np.array([0, 0, 1]))
    assert first_ids.to_list() == [new_cluster_id("a")] * 2 + [new_cluster_id("c")]
    previous = dict(zip(["a", "b", "c"], first_ids.to_list(), strict=True))
    # "0" sorts before "a": without history it would take the id; with history the cluster keeps a's id
    ids, changes = assign_ids(["0", "a", "b", "c"], np.array([0, 0, 0, 1]), previous)
    assert ids.to_list()[:3] == [new_cluster_id("a")] * 3 and changes.merges == 0 and changes.kept == 2
    ids, changes = assign_ids(["a", "b", "c"], np.array([0, 0, 0]), previous)  # a merge
    assert changes.merges == 1 and len(set(ids.to_list())) == 1
    ids, changes = assign_ids(["a", "b", "c"], np.array([0, 1, 2]), previous)  # a split
    assert changes.splits == 1 and ids.to_list()[0] == new_cluster_id("a") and len(set(ids.to_list())) == 3
    assert components(4, np.array([0, 2]), np.array([1, 3])).tolist() == [0, 0, 1, 1]


def test_metrics_on_a_known_case():
    predicted = pl.DataFrame({"record_id": list("abcd"), "cluster_id": ["x", "x", "x", "y"]})
    truth = pl.DataFrame({"record_id": list("abcd"), "entity_id": ["1", "1", "2", "2"]})
    m = linkage_metrics(predicted, truth)
    assert (m["true_pairs"], m["predicted_pairs"], m["true_positive_pairs"]) == (2, 3, 1)
    assert m["pairwise_precision"] == pytest.approx(1 / 3, abs=1e-4) and m["pairwise_recall"] == 0.5
    assert m["cluster_f1"] == 0.0


def test_cli_links_generated_people_against_truth(generated, tmp_path, capsys):
    folder, truth, dupes = generated
    out = tmp_path / "clusters.csv"
    code = main(["link", "--records", str(folder / "crm.csv"), "--records", str(folder / "dup.parquet"),
                 "--id-column", "rid", "--out", str(out)])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    clusters = pl.read_csv(out, infer_schema=False)
    assert clusters.columns == ["record_id", "cluster_id", "match_probability"]
    assert clusters.height + summary["records_rejected"] == truth.height
    metrics = linkage_metrics(clusters, truth)
    # every variant kind the world makes is in the input
    assert {v for vs in dupes["variant"].to_list() for v in vs.split("+")} >= {
        "nickname", "typo", "transposed_birth_date", "maiden_name", "old_address", "email_alias", "missing_fields"}
    assert metrics["pairwise_precision"] >= 0.98, metrics
    assert metrics["pairwise_recall"] >= 0.90, metrics
    assert (out.with_name("clusters.review.csv")).exists() and (out.with_name("clusters.rejected.csv")).exists()

    # a second run with one more duplicate of a linked person: every earlier cluster keeps its id
    person = truth.filter(pl.col("record_id") == "CP00007")
    extra = pl.read_csv(folder / "crm.csv", infer_schema=False).filter(pl.col("rid") == "CP00007").with_columns(
        pl.lit("NEW1").alias("rid"), pl.lit("Williams").alias("street"))
    extra.write_csv(tmp_path / "extra.csv")
    out2 = tmp_path / "clusters2.csv"
    assert main(["link", "--records", str(folder / "crm.csv"), "--records", str(folder / "dup.parquet"),
                 "--records", str(tmp_path / "extra.csv"), "--id-column", "rid", "--out", str(out2),
                 "--previous", str(out)]) == 0
    second = json.loads(capsys.readouterr().out)
    again = pl.read_csv(out2, infer_schema=False)
    before = dict(zip(clusters["record_id"].to_list(), clusters["cluster_id"].to_list(), strict=True))
    after = dict(zip(again["record_id"].to_list(), again["cluster_id"].to_list(), strict=True))
    assert after["NEW1"] == before[person["record_id"][0]]
    moved = [rid for rid, cid in before.items() if after[rid] != cid]
    assert len(moved) <= 2 * (second["changes_since_previous"]["merges"] + second["changes_since_previous"]["splits"])
