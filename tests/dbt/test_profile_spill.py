"""dbt's DuckDB profile at scale: a model that spills to disk must not break the models after it.

dbt-duckdb applies the profile's `settings` with `SET` on every cursor it opens, and DuckDB refuses
`SET temp_directory` once a spill has used the folder. With `temp_directory` under `settings`, every
model after the first spill failed ("Cannot switch temporary directory after the current one has been
used"); the `large` full build did. This drives dbt-duckdb's own environment with the project's real
profile: one cursor spills a sort, the next cursor must open.
"""

from __future__ import annotations

from pathlib import Path

import jinja2
import pytest
import yaml

from northstar.settings import REPO_ROOT

pytestmark = pytest.mark.unit


def _rendered_profile(env: dict[str, str]) -> dict:
    text = (REPO_ROOT / "dbt_project" / "profiles.yml").read_text()
    rendered = jinja2.Template(text).render(env_var=lambda name, default=None: env.get(name, default))
    profile = yaml.safe_load(rendered)["northstar"]
    return profile["outputs"]["dev"]


def test_a_cursor_opens_after_another_spilled(tmp_path):
    from dbt.adapters.duckdb.credentials import DuckDBCredentials
    from dbt.adapters.duckdb.environments.local import LocalEnvironment

    spill = tmp_path / "duckdb-tmp"
    spill.mkdir()
    output = _rendered_profile({"NORTHSTAR_WAREHOUSE": str(tmp_path / "w.duckdb"),
                                "NORTHSTAR_DUCKDB_MEMORY_LIMIT": "64MB",
                                "NORTHSTAR_DUCKDB_TEMP_DIR": str(spill)})
    creds = DuckDBCredentials(path=output["path"], schema=output["schema"], database="w",
                              settings=output.get("settings"), config_options=output.get("config_options"))
    environment = LocalEnvironment(creds)
    first = environment.handle()
    first.cursor().execute("set threads = 1; set preserve_insertion_order = false")
    # 8M rows sorted under 64 MB: the sort spills into the folder (without the fix the next line fails)
    first.cursor().execute("create table sorted as select i, random() as r from range(8000000) t(i) order by r")
    second = environment.handle()  # a new model's cursor: dbt-duckdb re-applies the settings here
    assert second.cursor().execute("select count(*) from sorted").fetchone()[0] == 8_000_000
    assert Path(second.cursor().execute("select current_setting('temp_directory')").fetchone()[0]) == spill
    first.close()
    second.close()
