"""The CRM's records as linker input: Contacts and custodian brokerage-account owners, in canonical columns.

Both come from staging (``stg_salesforce__contacts``, ``stg_salesforce__brokerage_accounts``) with their
staging column names. A custodian spells an owner ``LAST, FIRST M``, upper case, with an ``MM/DD/YYYY``
birth date and ``ST``/``AVE`` street types; the record normaliser folds case and street words, and the
name is split here. Record ids are the Salesforce ids (Contact ``003...``, brokerage account ``a01...``);
``source`` says which object a record is.
"""

from __future__ import annotations

import polars as pl

CONTACT_SOURCE = "contact"
OWNER_SOURCE = "brokerage_owner"


def contact_records(contacts: pl.DataFrame) -> pl.DataFrame:
    """``stg_salesforce__contacts`` columns -> canonical columns (tax id as its staging hash)."""
    return contacts.select(
        pl.col("contact_id").alias("record_id"), pl.lit(CONTACT_SOURCE).alias("source"),
        "first_name", "last_name", pl.col("birth_on").cast(pl.String).alias("birth_date"), "email", "phone",
        pl.col("mailing_street").alias("street"), pl.col("mailing_city").alias("city"),
        pl.col("mailing_postal_code").alias("postcode"), pl.col("tax_id_hash").alias("tax_id"),
    )


def owner_records(accounts: pl.DataFrame) -> pl.DataFrame:
    """``stg_salesforce__brokerage_accounts`` owner columns -> canonical columns (``LAST, FIRST M`` split)."""
    name = pl.col("owner_name").str.strip_chars()
    last = name.str.split(",").list.first().str.strip_chars()
    given = name.str.split(",").list.get(1, null_on_oob=True).str.strip_chars().str.split(" ").list.first()
    return accounts.filter(pl.col("owner_name").is_not_null()).select(
        pl.col("brokerage_account_id").alias("record_id"), pl.lit(OWNER_SOURCE).alias("source"),
        given.alias("first_name"), last.alias("last_name"),
        pl.col("owner_birth_on").cast(pl.String).alias("birth_date"),
        pl.lit(None, dtype=pl.String).alias("email"), pl.lit(None, dtype=pl.String).alias("phone"),
        pl.col("owner_street").alias("street"), pl.lit(None, dtype=pl.String).alias("city"),
        pl.col("owner_postal_code").alias("postcode"), pl.col("owner_tax_id_hash").alias("tax_id"),
    )


def crm_records(contacts: pl.DataFrame, accounts: pl.DataFrame) -> pl.DataFrame:
    return pl.concat([contact_records(contacts), owner_records(accounts)], how="vertical_relaxed")
