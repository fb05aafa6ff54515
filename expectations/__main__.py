"""``python -m expectations <verb>``: the quality gates (``northstar.cli``: one style for every stage).

``run --gate landing|marts|scores [--run-id X]`` validates one gate (exit 1 when a critical expectation
fails); ``docs`` rebuilds the Data Docs.
"""

from __future__ import annotations

import sys

from northstar.cli import stage_main

# verb -> (owning module, one-line help)
VERBS = {
    "run": ("expectations.cli", "validate one gate; exit 1 when a critical expectation fails"),
    "docs": ("expectations.cli", "rebuild the Data Docs HTML from the stored validation results"),
}


def main(argv: list[str] | None = None) -> int:
    return stage_main("python -m expectations", "Northstar quality gates", VERBS,
                      sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    from northstar.errors import run_cli

    sys.exit(run_cli(main))
