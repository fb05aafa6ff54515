"""``python -m ingest <verb>``: extract and land (``northstar.cli``: one style for every stage).

To add a verb, write ``ingest/<package>/cli.py`` with ``add_parser(subparsers)`` that sets ``handler``
and list it in ``VERBS``.
"""

from __future__ import annotations

import sys

from northstar.cli import stage_main

# verb -> (owning module, one-line help)
VERBS = {
    "broker-files": ("ingest.broker_files.cli", "land the broker drop folder as Parquet"),
    "salesforce": ("ingest.salesforce.cli", "extract Salesforce objects (incremental by SystemModstamp)"),
    "servicenow-read-back": ("ingest.servicenow.cli", "land incidents people resolved in ServiceNow (labels)"),
}


def main(argv: list[str] | None = None) -> int:
    return stage_main("python -m ingest", "Northstar extract + land stage", VERBS,
                      sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    from northstar.errors import run_cli

    sys.exit(run_cli(main))
