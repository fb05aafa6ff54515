"""The Splink model: comparisons, blocking, training and prediction on DuckDB.

The comparisons (only those whose columns the input has):

- first name: exact, shares a given name through the nickname seed (Bill / William), Jaro-Winkler
  >= 0.92, >= 0.80; term-frequency adjusted, so a common name is weaker evidence than a rare one;
- last name: exact (term-frequency adjusted), Jaro-Winkler >= 0.92, >= 0.80 (a maiden name falls
  to "else" and the other fields carry the pair);
- birth date: exact, day and month transposed, one character off, same year;
- postcode: exact, same first three characters; street: exact, two or more tokens in common;
- e-mail: exact after normalisation (case, +tags, dots), same local part (no fuzzy level: an address
  usually spells the name, so a fuzzy e-mail level only repeats the name comparisons and misleads EM);
- phone: exact, same last seven digits; tax-id hash: exact (also a deterministic rule).

Blocking keeps the candidate pairs near-linear: each rule joins records on a key that few records
share (a tax-id hash, an e-mail, a phone, name plus birth year, name plus birth date, postcode plus
name). Training: the prior from the deterministic rules, u by random sampling, m by expectation
maximisation in two sessions blocked on rare keys (tax id, e-mail, phone, birth date + last name,
names: the first two the input has), each estimating what the other holds fixed. Thresholds are design choices fixed here, never tuned against a truth.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import duckdb
import splink.comparison_level_library as cll
import splink.comparison_library as cl
from splink import DuckDBAPI, Linker, SettingsCreator, block_on

log = logging.getLogger(__name__)

ACCEPT_THRESHOLD = 0.95  # a pair at or above joins one cluster
REVIEW_THRESHOLD = 0.50  # a pair in [review, accept) goes to the clerical review queue
U_SAMPLE_PAIRS = 2_000_000
PROBABILITY_FLOOR = 1e-5  # the least m or u a comparison level gets (see ``floored``)
SEED = 7
# a deterministic key held by more records than this is a placeholder (000-00-00000, a shared inbox),
# not one person: it is left out of the deterministic rules and its blocking rule
MAX_KEY_GROUP = 20


@dataclass(frozen=True)
class Thresholds:
    accept: float = ACCEPT_THRESHOLD
    review: float = REVIEW_THRESHOLD


def _first_name() -> cl.CustomComparison:
    return cl.CustomComparison(output_column_name="first_name", comparison_levels=[
        cll.NullLevel("first_name"),
        cll.ExactMatchLevel("first_name", term_frequency_adjustments=True),
        cll.ArrayIntersectLevel("first_name_variants", 1).configure(label_for_charts="nickname of the same name"),
        cll.JaroWinklerLevel("first_name", 0.92),
        cll.JaroWinklerLevel("first_name", 0.80),
        cll.ElseLevel(),
    ])


def _last_name() -> cl.CustomComparison:
    return cl.CustomComparison(output_column_name="last_name", comparison_levels=[
        cll.NullLevel("last_name"),
        cll.ExactMatchLevel("last_name", term_frequency_adjustments=True),
        cll.JaroWinklerLevel("last_name", 0.92),
        cll.JaroWinklerLevel("last_name", 0.80),
        cll.ElseLevel(),
    ])


def _birth_date() -> cl.CustomComparison:
    return cl.CustomComparison(output_column_name="birth_date", comparison_levels=[
        cll.NullLevel("birth_date"),
        cll.ExactMatchLevel("birth_date"),
        cll.CustomLevel(
            "substr(birth_date_l, 1, 4) = substr(birth_date_r, 1, 4) "
            "and substr(birth_date_l, 6, 2) = substr(birth_date_r, 9, 2) "
            "and substr(birth_date_l, 9, 2) = substr(birth_date_r, 6, 2)", "day and month transposed"),
        cll.LevenshteinLevel("birth_date", 1),
        cll.CustomLevel("substr(birth_date_l, 1, 4) = substr(birth_date_r, 1, 4)", "same year"),
        cll.ElseLevel(),
    ])


def _postcode() -> cl.CustomComparison:
    return cl.CustomComparison(output_column_name="postcode", comparison_levels=[
        cll.NullLevel("postcode"),
        cll.ExactMatchLevel("postcode"),
        cll.CustomLevel("substr(postcode_l, 1, 3) = substr(postcode_r, 1, 3)", "same first three characters"),
        cll.ElseLevel(),
    ])


def _street() -> cl.CustomComparison:
    return cl.CustomComparison(output_column_name="street", comparison_levels=[
        cll.NullLevel("street"),
        cll.ExactMatchLevel("street"),
        cll.ArrayIntersectLevel("street_tokens", 2),
        cll.ElseLevel(),
    ])


def _email() -> cl.CustomComparison:
    return cl.CustomComparison(output_column_name="email_norm", comparison_levels=[
        cll.NullLevel("email_norm"),
        cll.ExactMatchLevel("email_norm"),
        cll.CustomLevel("split_part(email_norm_l, '@', 1) = split_part(email_norm_r, '@', 1)", "same local part"),
        cll.ElseLevel(),
    ])


def _phone() -> cl.CustomComparison:
    return cl.CustomComparison(output_column_name="phone", comparison_levels=[
        cll.NullLevel("phone"),
        cll.ExactMatchLevel("phone"),
        cll.CustomLevel("right(phone_l, 7) = right(phone_r, 7)", "same last seven digits"),
        cll.ElseLevel(),
    ])


def _tax_id() -> cl.CustomComparison:
    return cl.CustomComparison(output_column_name="tax_id_hash", comparison_levels=[
        cll.NullLevel("tax_id_hash"),
        cll.ExactMatchLevel("tax_id_hash"),
        cll.ElseLevel(),
    ])


def _address() -> cl.CustomComparison:
    """Street and postcode as one comparison: they describe one address, and two comparisons would count a
    shared address twice (a spouse or a child at home would look like the same person)."""
    both_null = "(street_l is null or street_r is null) and (postcode_l is null or postcode_r is null)"
    return cl.CustomComparison(output_column_name="address", comparison_levels=[
        cll.CustomLevel(both_null, "no address to compare").configure(is_null_level=True),
        cll.And(cll.ExactMatchLevel("street"), cll.ExactMatchLevel("postcode")),
        cll.Or(cll.ExactMatchLevel("street"),
               cll.And(cll.ExactMatchLevel("postcode"), cll.ArrayIntersectLevel("street_tokens", 2))),
        cll.ExactMatchLevel("postcode"),
        cll.ArrayIntersectLevel("street_tokens", 2),
        cll.ElseLevel(),
    ])


COMPARISONS = {
    "first_name": _first_name, "last_name": _last_name, "birth_date": _birth_date, "postcode": _postcode,
    "street": _street, "email_norm": _email, "phone": _phone, "tax_id_hash": _tax_id,
}


def blocking_rules(columns: tuple[str, ...]) -> list:
    has = set(columns)
    rules = []
    for needs, rule in (
        (("tax_id_hash",), block_on("tax_id_hash")),
        (("email_norm",), block_on("email_norm")),
        (("phone",), block_on("phone")),
        (("first_name", "last_name", "birth_date"),
         block_on("first_name_canon", "last_name", "substr(birth_date, 1, 4)")),
        (("last_name", "birth_date"), block_on("last_name", "birth_date")),
        (("first_name", "birth_date"), block_on("first_name_canon", "birth_date")),
        (("postcode", "first_name"), block_on("postcode", "first_name_canon")),
        (("postcode", "last_name"), block_on("postcode", "last_name")),
        (("street", "last_name"), block_on("street", "last_name")),
    ):
        if set(needs) <= has:
            rules.append(rule)
    if not rules:  # names only, or an address only: block on what there is
        for column in ("last_name", "first_name_canon", "postcode", "street", "birth_date"):
            if column.replace("_canon", "") in has:
                rules.append(block_on(column))
                break
    return rules


def deterministic_rules(columns: tuple[str, ...]) -> list[str]:
    has = set(columns)
    rules = []
    if "tax_id_hash" in has:
        rules.append("l.tax_id_hash = r.tax_id_hash")
    if {"email_norm", "birth_date"} <= has:
        rules.append("l.email_norm = r.email_norm and l.birth_date = r.birth_date")
    return rules


def settings_for(columns: tuple[str, ...]) -> SettingsCreator:
    combined = {"street", "postcode"} <= set(columns)
    comparisons = [make() for column, make in COMPARISONS.items()
                   if column in columns and not (combined and column in ("street", "postcode"))]
    if combined:
        comparisons.append(_address())
    if not comparisons:
        raise ValueError("no column the model can compare")
    return SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name="unique_id",
        comparisons=comparisons,
        blocking_rules_to_generate_predictions=blocking_rules(columns),
        retain_intermediate_calculation_columns=True,
        retain_matching_columns=True,
        max_iterations=20,
        em_convergence=0.001,
    )


def _training_blocks(columns: tuple[str, ...]) -> list:
    """EM sessions, each blocked on a key that few strangers share, so most pairs in a session are matches
    and EM's "match" class is the real one (blocked on names alone, EM latched on to whatever else the
    same-name pairs share, e.g. an e-mail address that spells the name). Each session estimates every
    comparison but its own key; the next one estimates that key."""
    has = set(columns)
    sessions = []
    for needs, rule in ((("tax_id_hash",), block_on("tax_id_hash")), (("email_norm",), block_on("email_norm")),
                        (("phone",), block_on("phone")), (("birth_date",), block_on("birth_date", "last_name")),
                        (("first_name", "last_name"), block_on("first_name_canon", "last_name"))):
        if len(sessions) < 2 and set(needs) <= has and not (needs == ("birth_date",) and "last_name" not in has):
            sessions.append(rule)
    return sessions


def train(con: duckdb.DuckDBPyConnection, table: str, columns: tuple[str, ...]) -> Linker:
    """A linker over ``table`` (in ``con``) with m, u and the prior estimated from the data alone."""
    linker = Linker(table, settings_for(columns), DuckDBAPI(connection=con))
    rules = deterministic_rules(columns)
    if rules:
        try:
            linker.training.estimate_probability_two_random_records_match(rules, recall=0.7)
        except Exception as error:  # noqa: BLE001 - too few deterministic pairs: keep Splink's default prior
            log.warning("prior left at the default: %s", error)
    linker.training.estimate_u_using_random_sampling(max_pairs=U_SAMPLE_PAIRS, seed=SEED)
    for blocking in _training_blocks(columns):
        try:
            linker.training.estimate_parameters_using_expectation_maximisation(blocking)
        except Exception as error:  # noqa: BLE001 - e.g. no pairs in this block: the other session still trains
            log.warning("EM session skipped: %s", error)
    return Linker(table, floored(linker.misc.save_model_to_json()), DuckDBAPI(connection=con))


def floored(model: dict, floor: float = PROBABILITY_FLOOR) -> dict:
    """The trained model with every m and u at least ``floor``.

    A level EM never saw among the matches (or random sampling among the non-matches) has no estimate, and
    Splink would fall back to a generic default: an unseen level such as "same birth year" would then count
    *for* a match. Never seen means rare: the floor says so, and also keeps one disagreeing field from
    weighing minus ninety bits (a ZIP typo must not veto everything else)."""
    for comparison in model["comparisons"]:
        for level in comparison["comparison_levels"]:
            if level.get("is_null_level"):
                continue
            for key in ("m_probability", "u_probability"):
                value = level.get(key)
                level[key] = max(value if value is not None else 0.0, floor)
    return model
