"""Command lines tell the truth: expected errors are one line on stderr and exit 2, never a traceback
and never a success; a bad flag value names the flag."""

from __future__ import annotations

import pytest

from northstar.errors import run_cli

pytestmark = pytest.mark.unit


@pytest.fixture
def offline(northstar_home, monkeypatch):
    monkeypatch.setenv("NORTHSTAR_NO_AIRFLOW_CONNECTIONS", "1")
    for name in ("USERNAME", "PASSWORD", "SECURITY_TOKEN", "URL"):
        monkeypatch.delenv(f"NORTHSTAR_SALESFORCE_{name}", raising=False)
    return northstar_home


def one_line_error(capsys) -> str:
    """The error as one 'error: ...' line (a library's own log lines, e.g. MLflow creating its store, may precede it)."""
    err = capsys.readouterr().err.strip()
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert "Traceback" not in err and len(errors) == 1 and err.splitlines()[-1] == errors[0], err
    return errors[0]


@pytest.mark.parametrize("where", ["missing", "a_file"])
def test_missing_drop_folder_is_exit_2(offline, capsys, tmp_path, where):
    from ingest.__main__ import main

    drop = tmp_path / "nonexistent" / "drop"
    if where == "a_file":
        drop = tmp_path / "drop.txt"
        drop.write_text("not a folder")
    assert run_cli(main, ["broker-files", "--drop", str(drop)]) == 2
    assert str(drop) in one_line_error(capsys)


def test_missing_salesforce_credentials_is_one_line(offline, capsys):
    from ingest.__main__ import main

    assert run_cli(main, ["salesforce"]) == 2
    assert "Salesforce credentials are not configured" in one_line_error(capsys)


def test_missing_servicenow_credentials_is_one_line(offline, capsys, monkeypatch):
    from ingest.__main__ import main

    for name in ("USERNAME", "PASSWORD", "URL"):
        monkeypatch.delenv(f"NORTHSTAR_SERVICENOW_{name}", raising=False)
    assert run_cli(main, ["servicenow-read-back"]) == 2
    assert "ServiceNow credentials are not configured" in one_line_error(capsys)


def test_bad_thresholds_names_the_flag(offline, capsys):
    from expectations.__main__ import main

    with pytest.raises(SystemExit) as exited:
        main(["run", "--gate", "scores", "--thresholds", "{not json"])
    assert exited.value.code == 2
    assert "argument --thresholds: not valid JSON" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["run", "--gate", "scores", "--thresholds", "[1, 2]"])
    assert "must be a JSON object" in capsys.readouterr().err


def test_no_champion_is_one_line(offline, capsys):
    from ml.__main__ import main

    assert run_cli(main, ["score", "--run-id", "no-champion"]) == 2
    assert "@champion is not set: train and promote a model first" in one_line_error(capsys)


@pytest.mark.parametrize("cli,argv", [("activate", ["status"]), ("ml", ["train"]),
                                      ("expectations", ["run", "--gate", "marts"])])
def test_no_warehouse_is_one_line(offline, capsys, cli, argv):
    import importlib

    main = importlib.import_module(f"{cli}.__main__").main
    assert run_cli(main, argv) == 2
    assert "no warehouse at" in one_line_error(capsys)
