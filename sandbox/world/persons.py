"""People as the records describe them: addresses, tax ids, and the duplicates a real CRM accumulates.

The CRM's Contacts are people; this module gives them what identity resolution compares (a mailing
address, a tax id for most) and then makes the mess a wealth manager's data really has, with the
truth of who is who:

- 3-8% of people (``DUPLICATE_RATE``) get one or two more Contacts, each a variant of the original:
  a nickname (William / Bill), a typo, day and month transposed in the birth date, the maiden or
  married name, an old address, an e-mail alias, or missing fields (one to three of them, often
  combined with another variant);
- brokerage-account owners come from the custodian, formatted its way (``SMITH, WILLIAM J``, upper-case
  addresses, ``MM/DD/YYYY`` dates);
- hostile mode adds the hard cases: twins who share an address and a birth date, people with the
  commonest names in one postcode, and records that are almost empty.

Every function draws from the generator it is given, so a seed and chunk give the same records.
"""

from __future__ import annotations

import numpy as np
import polars as pl

DUPLICATE_RATE = 0.05  # share of people with at least one duplicate Contact
SECOND_DUPLICATE = 0.25  # of those, the share with two
TAX_ID_KNOWN = 0.6  # share of Contacts whose tax id the CRM holds
VARIANTS = ("nickname", "typo", "transposed_birth_date", "maiden_name", "old_address", "email_alias",
            "missing_fields")
VARIANT_WEIGHTS = np.array([0.18, 0.16, 0.10, 0.12, 0.16, 0.14, 0.14])
STREET_NAMES = np.array(
    "Oak Maple Cedar Pine Elm Walnut Willow Birch Chestnut Spruce Hickory Magnolia Lake Hill River Park "
    "Church Mill Spring Meadow Forest Sunset Highland Ridge Valley Orchard Harbor Bay Prospect Franklin "
    "Washington Lincoln Jefferson Madison Adams Jackson Monroe Grant Hamilton Clinton Lexington Concord "
    "Summit Fairview Greenwood Lakeview Westwood Brookside Kensington Ashford".split())
STREET_TYPES = np.array(["Street", "Avenue", "Road", "Drive", "Lane", "Court", "Place", "Boulevard", "Way"])
STREET_ABBREVIATIONS = {"Street": "ST", "Avenue": "AVE", "Road": "RD", "Drive": "DR", "Lane": "LN", "Court": "CT",
                        "Place": "PL", "Boulevard": "BLVD", "Way": "WAY"}
CITY_PREFIXES = np.array("Spring Green Fair Oak Maple River Lake Ash Brook Clear Pine Stone Glen Bell Rock".split())
CITY_SUFFIXES = np.array("field ville ton wood dale port view ford burg haven".split())
NICKNAMES = {
    "William": ["Bill", "Will", "Billy"], "Robert": ["Bob", "Rob", "Bobby"], "Richard": ["Rick", "Dick"],
    "James": ["Jim", "Jimmy"], "John": ["Jack", "Johnny"], "Joseph": ["Joe"], "Thomas": ["Tom", "Tommy"],
    "Charles": ["Charlie", "Chuck"], "Christopher": ["Chris"], "Daniel": ["Dan", "Danny"], "Matthew": ["Matt"],
    "Anthony": ["Tony"], "Donald": ["Don"], "Steven": ["Steve"], "Stephen": ["Steve"], "Andrew": ["Andy", "Drew"],
    "Joshua": ["Josh"], "Kenneth": ["Ken"], "Timothy": ["Tim"], "Ronald": ["Ron"], "Edward": ["Ed", "Ted"],
    "Jeffrey": ["Jeff"], "Jacob": ["Jake"], "Nicholas": ["Nick"], "Gregory": ["Greg"], "Alexander": ["Alex"],
    "Samuel": ["Sam"], "Benjamin": ["Ben"], "Patrick": ["Pat"], "Raymond": ["Ray"], "Michael": ["Mike"],
    "David": ["Dave"], "Elizabeth": ["Liz", "Beth", "Betsy"], "Margaret": ["Maggie", "Peggy"],
    "Patricia": ["Pat", "Patty", "Trish"], "Jennifer": ["Jen", "Jenny"], "Barbara": ["Barb"], "Susan": ["Sue"],
    "Jessica": ["Jess"], "Sandra": ["Sandy"], "Kimberly": ["Kim"], "Amanda": ["Mandy"], "Dorothy": ["Dot"],
    "Melissa": ["Missy"], "Deborah": ["Debbie", "Deb"], "Stephanie": ["Steph"], "Rebecca": ["Becky"],
    "Cynthia": ["Cindy"], "Kathleen": ["Kathy", "Katie"], "Katherine": ["Kate", "Katie"], "Pamela": ["Pam"],
    "Christine": ["Chris", "Tina"], "Samantha": ["Sam"], "Debra": ["Deb"], "Angela": ["Angie"],
    "Sarah": ["Sally"], "Mary": ["Molly"], "Emily": ["Em"], "Olivia": ["Liv"], "Sofia": ["Sophie"],
}
CUSTODIAN_PEOPLE_COLUMNS = ("first_name", "last_name", "birth_date", "street", "city", "postcode", "tax_id")


def addresses(r: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """``n`` US-style addresses: number + street + type, a city, a five-digit ZIP."""
    number = r.integers(1, 9999, n).astype(str)
    street = np.char.add(np.char.add(np.char.add(number, " "), STREET_NAMES[r.integers(0, len(STREET_NAMES), n)]),
                         np.char.add(" ", STREET_TYPES[r.integers(0, len(STREET_TYPES), n)]))
    city = np.char.add(CITY_PREFIXES[r.integers(0, len(CITY_PREFIXES), n)],
                       CITY_SUFFIXES[r.integers(0, len(CITY_SUFFIXES), n)])
    postcode = np.char.zfill(r.integers(1000, 99_999, n).astype(str), 5)
    return {"street": street, "city": city, "postcode": postcode}


def tax_ids(people: np.ndarray) -> np.ndarray:
    """Synthetic SSN-shaped tax ids in the 9xx range (never a real person's: 9xx is not issued as SSN),
    one per person index and never shared: an odd multiplier modulo 10^8 is a bijection."""
    digits = (np.asarray(people, dtype=np.int64) * 48_271_109 + 12_345_677) % 100_000_000
    return np.char.add("9", np.char.zfill(digits.astype(str), 8))


def _typo(r: np.random.Generator, text: str) -> str:
    if len(text) < 3:
        return text + "e"
    i = int(r.integers(1, len(text) - 1))
    kind = r.integers(0, 3)
    if kind == 0:  # swap two neighbours
        return text[:i] + text[i + 1] + text[i] + text[i + 2:]
    if kind == 1:  # drop one
        return text[:i] + text[i + 1:]
    return text[:i] + "aeiou"[int(r.integers(0, 5))] + text[i + 1:]  # replace one


def _transposed(birth: str) -> str | None:
    year, month, day = birth.split("-")
    if int(day) > 12 or day == month:
        return None
    return f"{year}-{day}-{month}"


def _email_alias(r: np.random.Generator, email: str, first: str, last: str) -> str:
    local, _, domain = email.partition("@")
    kind = r.integers(0, 3)
    if kind == 0:
        return f"{local}+advisor@{domain}"
    if kind == 1:  # another provider; the number keeps two namesakes' aliases apart
        digits = "".join(ch for ch in local if ch.isdigit())
        return f"{first.lower()}.{last.lower()}{digits}@{['mail.example.net', 'inbox.example.org'][int(r.integers(0, 2))]}"
    return f"{local.replace('.', '')}@{domain}"


def duplicate_people(r: np.random.Generator, people: pl.DataFrame, last_names: np.ndarray,
                     rate: float = DUPLICATE_RATE) -> pl.DataFrame:
    """Variant records of a ``rate`` share of ``people`` (one row per duplicate, ``variant`` says how).

    ``people``: person_id, household_id, first_name, last_name, birth_date (ISO text), email, phone,
    street, city, postcode, tax_id (may be null). The duplicates keep person_id and household_id."""
    n = people.height
    chosen = np.flatnonzero(r.random(n) < rate)
    copies = np.where(r.random(len(chosen)) < SECOND_DUPLICATE, 2, 1)
    source = np.repeat(chosen, copies)
    rows = people[source].to_dicts()
    other = addresses(r, len(rows))
    out = []
    for k, row in enumerate(rows):
        kinds = {VARIANTS[int(r.choice(len(VARIANTS), p=VARIANT_WEIGHTS))]}
        if r.random() < 0.35:  # a second variant on the same record
            kinds.add(VARIANTS[int(r.choice(len(VARIANTS), p=VARIANT_WEIGHTS))])
        row = dict(row)
        applied = []
        for kind in sorted(kinds):
            if kind == "nickname" and row["first_name"] in NICKNAMES:
                names = NICKNAMES[row["first_name"]]
                row["first_name"] = names[int(r.integers(0, len(names)))]
            elif kind == "typo":
                field = "first_name" if r.random() < 0.5 else "last_name"
                row[field] = _typo(r, row[field])
            elif kind == "transposed_birth_date" and row["birth_date"] and _transposed(row["birth_date"]):
                row["birth_date"] = _transposed(row["birth_date"])
            elif kind == "maiden_name":
                row["last_name"] = str(last_names[int(r.integers(0, len(last_names)))])
            elif kind == "old_address":
                row["street"], row["city"], row["postcode"] = (str(other["street"][k]), str(other["city"][k]),
                                                               str(other["postcode"][k]))
            elif kind == "email_alias" and row["email"]:
                row["email"] = _email_alias(r, row["email"], row["first_name"], row["last_name"])
            elif kind == "missing_fields":
                for field in r.choice(["email", "phone", "street", "birth_date", "tax_id"],
                                      int(r.integers(1, 4)), replace=False):
                    row[str(field)] = None
                    if field == "street":
                        row["city"] = row["postcode"] = None
            else:
                continue
            applied.append(kind)
        if not applied:  # the variant did not apply to this person (no nickname known): a typo instead
            row["first_name"] = _typo(r, row["first_name"])
            applied.append("typo")
        if r.random() < 0.5:  # a second advisor rarely copies the tax id
            row["tax_id"] = None
        row["variant"] = "+".join(applied)
        row["copied_from"] = row["person_id"]
        out.append(row)
    schema = {**{c: people.schema[c] for c in people.columns}, "variant": pl.String, "copied_from": pl.String}
    return pl.DataFrame(out, schema=schema) if out else pl.DataFrame(schema=schema)


def hostile_people(r: np.random.Generator, people: pl.DataFrame, first_names: np.ndarray, start_person: int,
                   ) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The hard cases, as new people (twins, namesakes) and near-empty duplicates of existing ones.

    Returns (new people: each their own person, twins in the household of their sibling; near-empty
    records: duplicates of existing people with little but a name left)."""
    n = people.height
    picks = r.choice(n, max(1, n // 50), replace=False)
    twins = people[picks].with_columns(
        pl.col("person_id").alias("copied_from"),
        pl.Series("first_name", first_names[r.integers(0, len(first_names), len(picks))]),
        pl.Series("person_id", [f"PX{start_person + k:09d}" for k in range(len(picks))]),
        pl.Series("email", [None] * len(picks), dtype=pl.String),
        pl.Series("tax_id", tax_ids(start_person + np.arange(len(picks)))),
        pl.Series("phone", np.char.add("+1-555-02", np.char.zfill(r.integers(0, 100_000, len(picks)).astype(str), 5))),
    )
    twins = twins.filter(pl.col("first_name") != people[picks]["first_name"])
    # namesakes: the commonest names, different people, one postcode
    k = max(1, n // 100)
    hosts = people[r.choice(n, k, replace=False)].with_columns(pl.col("person_id").alias("copied_from"))
    base = len(picks) + start_person
    birth = (np.datetime64("1950-01-01") + r.integers(0, 365 * 50, k).astype("timedelta64[D]")).astype(str)
    namesakes = hosts.with_columns(
        pl.lit("John").alias("first_name"), pl.lit("Smith").alias("last_name"),
        pl.Series("birth_date", birth),
        pl.Series("person_id", [f"PX{base + j:09d}" for j in range(k)]),
        pl.Series("email", [f"john.smith.{base + j}@example.com" for j in range(k)]),
        pl.Series("phone", np.char.add("+1-555-03", np.char.zfill(r.integers(0, 100_000, k).astype(str), 5))),
        pl.Series("tax_id", [None] * k, dtype=pl.String),
        pl.lit("10001").alias("postcode"),
    )
    sparse = people[r.choice(n, max(1, n // 100), replace=False)].with_columns(
        *[pl.lit(None, dtype=pl.String).alias(c) for c in ("email", "phone", "street", "city", "postcode", "tax_id",
                                                           "birth_date")],
        pl.lit("almost_empty").alias("variant"), pl.col("person_id").alias("copied_from"))
    return pl.concat([twins.with_columns(pl.lit("twin").alias("variant")),
                      namesakes.with_columns(pl.lit("namesake").alias("variant"))], how="diagonal_relaxed"), sparse


def custodian_owner(people: pl.DataFrame) -> pl.DataFrame:
    """The custodian's view of an account owner: ``LAST, FIRST M`` upper case, its own address style."""
    initials = np.array(list("ABCDEFGHJKLMNPRSTW"))
    middle = initials[np.frombuffer(b"".join(p.encode()[-1:] for p in people["person_id"].to_list()),
                                    dtype=np.uint8) % len(initials)] if people.height else np.array([], str)
    street = people["street"].to_list()
    custodian_street = []
    for value in street:
        if value is None:
            custodian_street.append(None)
            continue
        words = value.upper().split()
        if words and words[-1].title() in STREET_ABBREVIATIONS:
            words[-1] = STREET_ABBREVIATIONS[words[-1].title()]
        custodian_street.append(" ".join(words))
    return people.select(
        (pl.col("last_name").str.to_uppercase() + ", " + pl.col("first_name").str.to_uppercase() + " "
         + pl.Series(middle)).alias("owner_name"),
        pl.col("birth_date").str.strptime(pl.Date, "%Y-%m-%d", strict=False).dt.strftime("%m/%d/%Y")
          .alias("owner_birth_date"),
        pl.Series("owner_street", custodian_street, dtype=pl.String),
        pl.col("postcode").alias("owner_postal_code"),
        pl.col("tax_id").str.replace(r"^(\d{3})(\d{2})(\d{4})$", "$1-$2-$3").alias("owner_tax_id"),
    )


def people_frame(r: np.random.Generator, n: int, start: int = 0) -> pl.DataFrame:
    """``n`` distinct people as the CRM would hold them (two per household), for benchmarks and tests."""
    from sandbox.world.crm import FIRST_NAMES, LAST_NAMES

    first = FIRST_NAMES[r.integers(0, len(FIRST_NAMES), n)]
    last = LAST_NAMES[r.integers(0, len(LAST_NAMES), n)]
    birth = (np.datetime64("1935-01-01") + r.integers(0, 365 * 70, n).astype("timedelta64[D]")).astype(str)
    ids = np.arange(start, start + n)
    where = addresses(r, n)
    email = np.char.add(np.char.add(np.char.add(np.char.lower(first), "."), np.char.lower(last)),
                        np.char.add(np.char.add(".", ids.astype(str)), "@example.com"))
    known = r.random(n) < TAX_ID_KNOWN
    return pl.DataFrame({
        "person_id": np.char.add("P", np.char.zfill(ids.astype(str), 9)),
        "household_id": np.char.add("H", np.char.zfill((ids // 2).astype(str), 9)),
        "first_name": first, "last_name": last, "birth_date": birth, "email": email,
        "phone": np.char.add("+1-555-01", np.char.zfill(r.integers(0, 100_000, n).astype(str), 5)),
        **where,
    }).with_columns(pl.when(pl.Series(known)).then(pl.Series(tax_ids(ids))).otherwise(None).alias("tax_id"))


def generated_records(r: np.random.Generator, n_people: int, rate: float = DUPLICATE_RATE
                      ) -> tuple[pl.DataFrame, pl.DataFrame]:
    """People plus their duplicates as linker input (``record_id`` + canonical columns), and the truth
    (``record_id``, ``entity_id``)."""
    from sandbox.world.crm import LAST_NAMES

    people = people_frame(r, n_people)
    dupes = duplicate_people(r, people, LAST_NAMES, rate)
    records = pl.concat([
        people.with_columns(pl.format("R{}", pl.col("person_id")).alias("record_id"), pl.lit("crm").alias("source")),
        dupes.drop("variant", "copied_from").with_row_index("k").with_columns(
            pl.format("D{}", pl.col("k")).alias("record_id"), pl.lit("crm_duplicate").alias("source")).drop("k"),
    ])
    truth = records.select("record_id", pl.col("person_id").alias("entity_id"))
    return records.drop("person_id", "household_id"), truth


def _contact_people(contacts: pl.DataFrame, person_ids: np.ndarray, household_ids: np.ndarray) -> pl.DataFrame:
    return contacts.select(
        pl.Series("person_id", person_ids), pl.Series("household_id", household_ids),
        pl.col("FirstName").alias("first_name"), pl.col("LastName").alias("last_name"),
        pl.col("Birthdate").alias("birth_date"), pl.col("Email").alias("email"), pl.col("Phone").alias("phone"),
        pl.col("MailingStreet").alias("street"), pl.col("MailingCity").alias("city"),
        pl.col("MailingPostalCode").alias("postcode"), pl.col("Tax_Id__c").alias("tax_id"),
    )


def _as_contacts(people: pl.DataFrame, template: pl.DataFrame, ids: pl.Series, opted_out: np.ndarray) -> pl.DataFrame:
    """People rows as Contact records, stamped and placed like the Contact each one copies (``template``)."""
    return template.select(
        pl.Series("Id", ids), "CreatedDate", "LastModifiedDate", "SystemModstamp", "AccountId",
        pl.Series("FirstName", people["first_name"]), pl.Series("LastName", people["last_name"]),
        pl.Series("Email", people["email"]), pl.Series("Phone", people["phone"]),
        pl.Series("Birthdate", people["birth_date"]), "MailingState",
        pl.lit(False).alias("Is_Primary__c"),
        pl.Series("MailingStreet", people["street"]), pl.Series("MailingCity", people["city"]),
        pl.Series("MailingPostalCode", people["postcode"]), pl.Series("Tax_Id__c", people["tax_id"]),
        pl.Series("HasOptedOutOfEmail", opted_out),
    )


def add_identities(r: np.random.Generator, frames: dict[str, pl.DataFrame], household_ids: np.ndarray,
                   contact_kind: np.ndarray, marketing_consent: np.ndarray, take_contact_ids, last_names: np.ndarray,
                   first_names: np.ndarray, start_person: int, hostile: bool = False) -> pl.DataFrame:
    """Addresses, tax ids and e-mail opt-outs on the chunk's Contacts, duplicate Contacts, custodian owners.

    Changes ``frames`` in place (Contact, Brokerage_Account__c) and returns the identity truth: one row per
    Contact and per brokerage account (record_id, record_type, person_id, household_id, variant).
    ``household_ids`` is per Contact (the household it belongs to); ``contact_kind`` 0 primary, 1 spouse,
    2 adult child; ``take_contact_ids(n)`` hands out new Contact ids."""
    contacts = frames["Contact"]
    account_ids = contacts["AccountId"].to_numpy()
    n = contacts.height
    # one address per household (its Account), shared by everybody in it
    first_of_account = np.r_[True, account_ids[1:] != account_ids[:-1]]
    group = np.cumsum(first_of_account) - 1
    where = addresses(r, int(group[-1]) + 1 if n else 0)
    person_ids = np.char.add(np.char.add(household_ids.astype(str), "-"), contact_kind.astype(str))
    known = r.random(n) < TAX_ID_KNOWN
    taxes = tax_ids(start_person + np.arange(n))
    # a household that gave no marketing consent has opted its people out of e-mail
    opted_out = ~marketing_consent
    contacts = contacts.with_columns(
        pl.Series("MailingStreet", where["street"][group]), pl.Series("MailingCity", where["city"][group]),
        pl.Series("MailingPostalCode", where["postcode"][group]),
        pl.when(pl.Series(known)).then(pl.Series(taxes)).otherwise(None).alias("Tax_Id__c"),
        pl.Series("HasOptedOutOfEmail", opted_out),
    )
    people = _contact_people(contacts, person_ids, household_ids)
    truth = [pl.DataFrame({"record_id": contacts["Id"], "record_type": "contact", "person_id": person_ids,
                           "household_id": household_ids, "variant": "original"})]

    dupes = duplicate_people(r, people, last_names)
    extra = [dupes.with_columns(pl.col("household_id").cast(pl.String))]
    if hostile:
        new_people, sparse = hostile_people(r, people, first_names, start_person + n)
        extra += [new_people, sparse]
    added = pl.concat(extra, how="diagonal_relaxed")
    if added.height:
        index = {pid: k for k, pid in enumerate(person_ids.tolist())}
        # a duplicate sits in its person's Account; a twin or namesake in the Account of the person it was
        # made from (a twin is that person's sibling, in their household)
        template_rows = np.array([index[pid] for pid in added["copied_from"].to_list()], dtype=np.int64)
        new_ids = take_contact_ids(added.height)
        # a duplicate sometimes carries an opt-out the original does not: the strictest record must win
        extra_opt_out = opted_out[template_rows] | (r.random(added.height) < 0.05)
        made = _as_contacts(added, contacts[template_rows], new_ids, extra_opt_out)
        contacts = pl.concat([contacts, made], how="vertical_relaxed")
        truth.append(pl.DataFrame({"record_id": new_ids, "record_type": "contact",
                                   "person_id": added["person_id"], "household_id": added["household_id"],
                                   "variant": added["variant"]}))
    frames["Contact"] = contacts

    # brokerage accounts: the owner as the custodian spells them (the household's primary)
    accounts = frames["Brokerage_Account__c"]
    primary = np.flatnonzero(contact_kind == 0)
    primary_of_account = dict(zip(account_ids[primary].tolist(), primary.tolist(), strict=True))
    owner_rows = np.array([primary_of_account[a] for a in accounts["Household__c"].to_list()], dtype=np.int64)
    # the custodian always holds the owner's tax id, whether or not the CRM does
    owners = custodian_owner(people[owner_rows].with_columns(pl.Series("tax_id", taxes[owner_rows])))
    frames["Brokerage_Account__c"] = accounts.with_columns(
        owners["owner_name"].alias("Owner_Name__c"), owners["owner_birth_date"].alias("Owner_Birthdate__c"),
        owners["owner_street"].alias("Owner_Street__c"), owners["owner_postal_code"].alias("Owner_Postal_Code__c"),
        owners["owner_tax_id"].alias("Owner_Tax_Id__c"))
    truth.append(pl.DataFrame({"record_id": accounts["Id"], "record_type": "brokerage_owner",
                               "person_id": person_ids[owner_rows], "household_id": household_ids[owner_rows],
                               "variant": "custodian"}))
    return pl.concat(truth)
