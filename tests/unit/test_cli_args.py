"""The CLI passes Celery's own options through, and names the extra to install when a driver is missing."""

from __future__ import annotations

import pytest

from storage.db import LedgerError, get_engine
from workers import cli, cli_processes


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (
            ["worker", "-n", "w2@%h"],
            ["worker", "-Q", "submit,poll,media,batch", "-c", "8", "--loglevel", "INFO", "-n", "w2@%h"],
        ),
        (
            ["worker", "-c", "2", "--pool", "threads"],
            ["worker", "-Q", "submit,poll,media,batch", "-c", "2", "--loglevel", "INFO", "--pool", "threads"],
        ),
        (["beat", "--max-interval", "5"], ["beat", "--loglevel", "INFO", "--max-interval", "5"]),
        (
            ["flower", "--basic-auth=u:p"],
            ["flower", "--port=5555", "--address=127.0.0.1", "--basic-auth=u:p"],
        ),
    ],
)
def test_celery_options_pass_through(monkeypatch, argv, expected):
    seen: list[list[str]] = []
    monkeypatch.setattr(cli_processes, "_exec_celery", lambda a: seen.append(a) or 0)
    assert cli.main(argv) == 0
    assert seen == [expected]


def test_unknown_options_of_other_commands_are_still_refused(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["status", "abc", "--bogus"])
    assert exit_info.value.code == 2 and "--bogus" in capsys.readouterr().err


def test_a_postgresql_url_without_its_driver_names_the_extra(monkeypatch):
    import sqlalchemy.dialects.postgresql.psycopg as dialect

    def missing(*_a, **_k):
        raise ModuleNotFoundError("No module named 'psycopg'", name="psycopg")

    monkeypatch.setattr(dialect.PGDialect_psycopg, "import_dbapi", classmethod(missing))
    with pytest.raises(LedgerError, match=r"letzflow\[postgres\]"):
        get_engine("postgresql://nobody@127.0.0.1:1/none")
