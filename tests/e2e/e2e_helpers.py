"""What the e2e tests share: the sandbox served around a block, its write counters, task states of a run."""

from __future__ import annotations

import contextlib
import re

from northstar.demo import start_sandbox
from sandbox.launcher import write_counts

_NEW_STATE = re.compile(r"new_state=(\w+)")
_END_TASK = re.compile(r"\[DAG TEST\] end task task_id=(\w+)")


def task_states(log_text: str) -> dict[str, str]:
    """Task id -> final state, read from an ``airflow dags test`` log (tasks that never ran are absent)."""
    states: dict[str, str] = {}
    last_state = None
    for line in log_text.splitlines():
        if found := _NEW_STATE.search(line):
            last_state = found.group(1)
        elif found := _END_TASK.search(line):
            states[found.group(1)] = last_state or "unknown"
            last_state = None
    return states


@contextlib.contextmanager
def served(cfg):
    """The demo world's sandbox servers for the length of the block, proven to be ours (sandbox/launcher.py)."""
    process = start_sandbox(cfg)
    try:
        yield process
    finally:
        process.stop(timeout_s=30)


def writes(cfg) -> dict[str, int]:
    """Each sandbox server's write counter, read the way an outside observer would."""
    return write_counts(cfg)
