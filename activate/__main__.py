"""``python -m activate <verb>``: push scores and incidents out through the outbox (``northstar.cli``: one
style for every stage). Reading incidents back from ServiceNow is ``python -m ingest servicenow-read-back``.

A missing warehouse, or one held past the lock wait, is an ExpectedError: one line and exit 2 (``run_cli``).
"""

from __future__ import annotations

import sys

from northstar.cli import stage_main

# verb -> (owning module, one-line help)
VERBS = {
    "plan": ("activate.cli", "enqueue what changed for one target (salesforce | servicenow)"),
    "send": ("activate.cli", "send one target's open outbox rows"),
    "status": ("activate.cli", "outbox counts, dead rows and recent sends"),
    "trace": ("activate.cli", "lineage of one outbox row"),
}


def main(argv: list[str] | None = None) -> int:
    return stage_main("python -m activate", "Northstar push-back stage", VERBS, sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    from northstar.errors import run_cli

    sys.exit(run_cli(main))
