"""Identity resolution: the CLI on the FEBRL benchmark (known truth), and linking at scale.

FEBRL 3 (dedupe, 5,000 records) and FEBRL 4a + 4b (two files, 10,000 records), converted to the canonical
columns (bench/data/febrl/README.md), each run through ``python -m identity link`` in its own process; pairwise
precision / recall / F1 and cluster F1 against the truth. Target: recall >= 0.95 at precision >= 0.99.

``--scale large`` (or ``NORTHSTAR_BENCH_IDENTITY_SCALE=large``) also links ~2.5M generated person records
(the sandbox world's people and duplicates, ``sandbox.world.persons``) and reports wall time and peak RSS
(targets: < 10 minutes, < 6 GB). ``python bench/bench_identity.py [--scale small|demo|large]``.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

FEBRL = REPO / "bench" / "data" / "febrl"
PEOPLE_BY_SCALE = {"small": 20_000, "demo": 200_000, "large": 2_380_000}  # + ~5% duplicates
TARGETS = {"pairwise_precision": 0.99, "pairwise_recall": 0.95}
LARGE_TARGETS = {"seconds": 600.0, "peak_rss_gb": 6.0}


def febrl_to_canonical(name: str, out: Path):
    import polars as pl

    with gzip.open(FEBRL / f"{name}.csv.gz", "rb") as handle:
        frame = pl.read_csv(handle.read(), infer_schema=False)
    frame = frame.rename({c: c.strip() for c in frame.columns}).with_columns(pl.all().str.strip_chars())
    frame.select(
        "rec_id", pl.col("given_name").alias("first_name"), pl.col("surname").alias("last_name"),
        pl.col("date_of_birth").alias("birth_date"),
        pl.concat_str(["street_number", "address_1"], separator=" ", ignore_nulls=True).alias("street"),
        pl.col("suburb").alias("city"), "postcode", pl.col("soc_sec_id").alias("tax_id"),
        pl.lit(name).alias("source"),
    ).write_csv(out)
    return out


def run_cli(files: list[Path], id_column: str, out: Path) -> tuple[dict, float, float]:
    """Run the CLI in a child process: its summary, wall seconds and the child's peak RSS in GB."""
    command = [sys.executable, "-m", "identity", "link", "--id-column", id_column, "--out", str(out)]
    for file in files:
        command += ["--records", str(file)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.monotonic()
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    seconds = time.monotonic() - started
    if done.returncode != 0:
        raise SystemExit(f"identity link failed ({done.returncode}):\n{done.stderr[-3000:]}")
    peak = max(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, before) / 1024 / 1024
    return json.loads(done.stdout), seconds, peak


def truth_metrics(out: Path, truth) -> dict:
    import polars as pl

    from identity.evaluation import linkage_metrics

    clusters = pl.read_csv(out, infer_schema=False) if out.suffix == ".csv" else pl.read_parquet(out)
    return linkage_metrics(clusters, truth)


def febrl(work: Path) -> list[str]:
    import polars as pl

    missed = []
    for label, names in (("FEBRL 3 (dedupe)", ["dataset3"]), ("FEBRL 4a+4b (link)", ["dataset4a", "dataset4b"])):
        files = [febrl_to_canonical(name, work / f"{name}.csv") for name in names]
        out = work / f"{names[0]}.clusters.csv"
        summary, seconds, peak = run_cli(files, "rec_id", out)
        ids = pl.concat([pl.read_csv(f, infer_schema=False).select("rec_id") for f in files])
        truth = ids.select(pl.col("rec_id").alias("record_id"),
                           pl.col("rec_id").str.extract(r"^(rec-\d+)").alias("entity_id"))
        metrics = truth_metrics(out, truth)
        print(f"{label}: {metrics['records']} records, {metrics['true_pairs']} true pairs; "
              f"precision {metrics['pairwise_precision']:.4f}, recall {metrics['pairwise_recall']:.4f}, "
              f"F1 {metrics['pairwise_f1']:.4f}, cluster F1 {metrics['cluster_f1']:.4f}; "
              f"review queue {summary['review_queue_pairs']} pairs; rejected {summary['records_rejected']}; "
              f"field reasons {summary['reasons']}; {seconds:.1f}s wall, peak RSS {peak:.2f} GB")
        for name, bound in TARGETS.items():
            if metrics[name] < bound:
                missed.append(f"{label} {name} {metrics[name]:.4f} < {bound}")
    return missed


def generated(work: Path, scale: str) -> list[str]:
    """Link the world's people (and their duplicates) at ``scale``, generated straight from the generator."""
    import numpy as np
    import polars as pl

    from sandbox.world.persons import generated_records

    started = time.monotonic()
    records, truth = generated_records(np.random.default_rng([7, 19]), PEOPLE_BY_SCALE[scale])
    path = work / f"people_{scale}.parquet"
    records.write_parquet(path)
    print(f"generated {records.height:,} records of {truth['entity_id'].n_unique():,} people "
          f"in {time.monotonic() - started:.1f}s")
    out = work / f"people_{scale}.clusters.parquet"
    summary, seconds, peak = run_cli([path], "record_id", out)
    metrics = truth_metrics(out, truth)
    print(f"{scale}: {records.height:,} records; {seconds:.1f}s wall (train {summary['seconds']['train']}s, "
          f"predict {summary['seconds']['predict']}s), peak RSS {peak:.2f} GB; precision "
          f"{metrics['pairwise_precision']:.4f}, recall {metrics['pairwise_recall']:.4f}, cluster F1 "
          f"{metrics['cluster_f1']:.4f}; review queue {summary['review_queue_pairs']} pairs")
    del pl
    missed = []
    if scale == "large":
        if seconds > LARGE_TARGETS["seconds"]:
            missed.append(f"large wall {seconds:.0f}s > {LARGE_TARGETS['seconds']:.0f}s")
        if peak > LARGE_TARGETS["peak_rss_gb"]:
            missed.append(f"large peak RSS {peak:.2f} GB > {LARGE_TARGETS['peak_rss_gb']} GB")
    return missed


def world_records(state: Path):
    """A seeded world's Contacts and brokerage-account owners as staging has them (read straight from the
    sandbox org's store; the tax id unhashed, which the linker hashes on read), as linker input."""
    import sqlite3

    import polars as pl

    from identity.sources import crm_records

    with sqlite3.connect(state / "salesforce.db") as con:
        contacts = pl.read_database(
            'select "Id" as contact_id, "FirstName" as first_name, "LastName" as last_name, "Birthdate" as birth_on, '
            '"Email" as email, "Phone" as phone, "MailingStreet" as mailing_street, "MailingCity" as mailing_city, '
            '"MailingPostalCode" as mailing_postal_code, "Tax_Id__c" as tax_id_hash from "obj_Contact" '
            'where "IsDeleted" = 0', con, infer_schema_length=None)
        accounts = pl.read_database(
            'select "Id" as brokerage_account_id, "Owner_Name__c" as owner_name, "Owner_Birthdate__c" as owner_birth, '
            '"Owner_Street__c" as owner_street, "Owner_Postal_Code__c" as owner_postal_code, '
            '"Owner_Tax_Id__c" as owner_tax_id_hash from "obj_Brokerage_Account__c" where "IsDeleted" = 0', con,
            infer_schema_length=None)
    accounts = accounts.with_columns(pl.col("owner_birth").str.strptime(pl.Date, "%m/%d/%Y", strict=False)
                                     .alias("owner_birth_on"))
    return crm_records(contacts.with_columns(pl.col("birth_on").str.strptime(pl.Date, "%Y-%m-%d", strict=False)),
                       accounts)


def world(work: Path, state: Path, truth_folder: Path, label: str) -> dict:
    """Link a seeded world's CRM records and score them against ``truth/identity.parquet``."""
    import polars as pl

    records = world_records(state)
    path = work / f"world_{label}.parquet"
    records.write_parquet(path)
    out = work / f"world_{label}.clusters.parquet"
    summary, seconds, peak = run_cli([path], "record_id", out)
    truth = pl.read_parquet(truth_folder / "identity.parquet").select(
        "record_id", pl.col("person_id").alias("entity_id"))
    metrics = truth_metrics(out, truth)
    print(f"world {label}: {records.height:,} records ({summary['records_rejected']} rejected: "
          f"{summary['reasons']}); precision {metrics['pairwise_precision']:.4f}, recall "
          f"{metrics['pairwise_recall']:.4f}, F1 {metrics['pairwise_f1']:.4f}, cluster F1 {metrics['cluster_f1']:.4f} "
          f"({metrics['true_pairs']} true pairs, {metrics['predicted_pairs']} predicted); review queue "
          f"{summary['review_queue_pairs']} pairs; {seconds:.1f}s wall, peak RSS {peak:.2f} GB")
    return metrics


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=[*PEOPLE_BY_SCALE, "none"],
                        default=os.environ.get("NORTHSTAR_BENCH_IDENTITY_SCALE", "large"))
    parser.add_argument("--world", type=Path, action="append", default=[],
                        help="a seeded world's folder (with state/ and truth/): link its CRM and score it")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench_identity_") as folder:
        work = Path(folder)
        missed = []
        for world_folder in args.world:
            world(work, world_folder / "state", world_folder / "truth", world_folder.name)
        if args.world:
            return 0
        missed = febrl(work)
        if args.scale != "none":
            missed += generated(work, args.scale)
    print("targets: " + ("all met" if not missed else "missed " + "; ".join(missed)))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
