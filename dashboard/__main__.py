"""``python -m dashboard <verb>``: refresh the KPI dashboard's snapshot, or serve its pages (``northstar.cli``:
one style for every stage)."""

from __future__ import annotations

import sys

from northstar.cli import stage_main

# verb -> (owning module, one-line help)
VERBS = {
    "build": ("dashboard.cli", "snapshot the warehouse for the dashboard (what each DAG run's last task does)"),
    "serve": ("dashboard.cli", "serve the dashboard on 127.0.0.1"),
}


def main(argv: list[str] | None = None) -> int:
    return stage_main("python -m dashboard", "Northstar KPI dashboard", VERBS, sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    from northstar.errors import run_cli

    sys.exit(run_cli(main))
