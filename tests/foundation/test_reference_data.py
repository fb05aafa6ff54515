"""Reference data has one owner, the dbt seeds, and nothing that must agree with them drifts.

What Python reads from the seeds (``northstar.reference``) it cannot get wrong; what cannot read them is
checked against them here: the break types the reconciliation SQL raises and the recon summary counts, the
dialects' asset-class codes and prime brokers, FIX SecurityTypes the FIX dialect prices, the sandbox's
generator vocabulary (allowed its own copy, see the brief of issue 17: it must still say the same), and no
stage keeping a copy of the correlation prefix or a hard-coded list of the canonical asset classes.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from northstar import reference

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
MODELS = REPO / "dbt_project" / "models"
DIALECTS = REPO / "ingest" / "dialects"
STAGES = ("ingest", "expectations", "ml", "activate", "dashboard", "connectors", "northstar")


def _break_types() -> set[str]:
    return {b.break_type for b in reference.break_types()}


def test_every_break_type_the_sql_raises_is_a_seed_row_and_the_summary_counts_each():
    sql = (MODELS / "intermediate" / "trading" / "int_trade_breaks_identified.sql").read_text()
    raised = set(re.findall(r"^\s*\('([a-z_]+)', '(?:is|has)_", sql, re.M))
    raised |= set(re.findall(r"'([a-z_]+)' as break_type", sql))
    assert raised == _break_types()
    summary = (MODELS / "marts" / "trading" / "fct_recon_summary.sql").read_text()
    listed = re.search(r"set break_types = \[(.*?)\]", summary, re.S).group(1)
    assert set(re.findall(r"'([a-z_]+)'", listed)) == _break_types()


def test_dialects_name_only_seeded_asset_classes_and_every_prime_broker_has_one_dialect():
    asset_classes = set(reference.asset_class_names())
    confirm_brokers = []
    for path in sorted(DIALECTS.glob("*.yaml")):
        raw = yaml.safe_load(path.read_text())
        codes = (raw.get("enums") or {}).get("asset_class") or {}
        assert set(codes.values()) <= asset_classes, path.name
        if raw["format"] == "csv" and raw["table"] in {"internal_trades", "pb_confirms"}:
            assert set(raw["price_convention"]) == asset_classes, path.name
            assert set(raw["contract_multiplier"]) == asset_classes, path.name
        if raw["table"] == "pb_confirms":
            confirm_brokers.append(raw["constants"]["prime_broker"])
        if raw["format"] == "fix":
            assert set(raw["price_convention"]) == set(reference.fix_security_types()), path.name
    assert sorted(confirm_brokers) == sorted(reference.prime_brokers())
    assert set(reference.fix_security_types().values()) <= asset_classes


def test_the_sandbox_generates_the_seeded_vocabulary():
    from sandbox.world import households, trading

    assert set(trading.BREAK_TYPES) == _break_types()
    assert list(trading.ASSET_CLASSES) == list(reference.asset_class_names())
    assert set(trading.FIX_SECURITY_TYPE) <= set(reference.fix_security_types())
    assert list(trading.PRIME_BROKERS) == list(reference.prime_brokers())
    names = {b: n for b, n in zip(reference.prime_brokers(), _names(), strict=True)}
    assert [names[b] for b in trading.PRIME_BROKERS] == list(households.CUSTODIANS)


def _names() -> list[str]:
    import csv

    with (reference.seed_dir() / "prime_brokers.csv").open() as handle:
        return [row["prime_broker_name"] for row in csv.DictReader(handle)]


def test_no_stage_keeps_its_own_copy_of_the_correlation_prefix_or_the_asset_classes():
    prefix = reference.incident_rules().correlation_prefix
    found = subprocess.run(
        ["git", "grep", "-n", "-E", f"[\"']{prefix}[\"']|\\[\"EQUITY\", \"ETF\"|\\(\"EQUITY\", \"ETF\"", "--",
         *(f"{stage}/*.py" for stage in STAGES)],
        cwd=REPO, capture_output=True, text=True, check=False,
    ).stdout.splitlines()
    # ml/anomaly/features.py still lists the asset classes as feature names: its features move into a dbt mart
    # (issue 17, the anomaly-features part), which reads the seed.
    assert [line for line in found if not line.startswith("ml/anomaly/features.py:")] == []


def test_a_dialect_for_an_unseeded_prime_broker_is_refused(tmp_path):
    from ingest.broker_files.dialects import DialectError, load_dialect

    text = (DIALECTS / "atlas.yaml").read_text().replace("{prime_broker: atlas}", "{prime_broker: orion}")
    (tmp_path / "orion.yaml").write_text(text)
    with pytest.raises(DialectError, match=r"constants\.prime_broker: 'orion' is not in the seed prime_brokers"):
        load_dialect(tmp_path / "orion.yaml")
    text = (DIALECTS / "atlas.yaml").read_text().replace("OP: OPTION", "OP: OPTIONS")
    (tmp_path / "atlas.yaml").write_text(text)
    with pytest.raises(DialectError, match=r"enums\.asset_class\.OP: 'OPTIONS' is not an asset class"):
        load_dialect(tmp_path / "atlas.yaml")
