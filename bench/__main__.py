"""``python -m bench`` (``make bench``): every stage's performance figures, one script each.

Each ``bench/bench_*.py`` runs in its own process (so peak-memory figures are its own) and prints
its figures; this runner prints them in order and a one-line verdict per script. Pass names to run
a subset: ``python -m bench fix world``.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv: list[str]) -> int:
    scripts = sorted(HERE.glob("bench_*.py"))
    if argv:
        scripts = [s for s in scripts if any(name in s.stem for name in argv)]
    failures = 0
    for script in scripts:
        print(f"\n=== {script.stem} ===", flush=True)
        started = time.monotonic()
        code = subprocess.run([sys.executable, str(script)], cwd=HERE.parent).returncode
        verdict = "ok" if code == 0 else f"FAILED (exit {code})"
        print(f"--- {script.stem}: {verdict} in {time.monotonic() - started:.1f}s", flush=True)
        failures += code != 0
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
