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


@pytest.fixture
def collector():
    """The garbage collector as the test found it, afterwards (the CLI freezes the heap at its end)."""
    import gc

    enabled = gc.isenabled()
    yield gc
    gc.unfreeze()
    if enabled:
        gc.enable()
    else:
        gc.disable()


def test_a_command_runs_with_the_collector_off_and_leaves_it_as_found(monkeypatch, collector):
    seen: list[bool] = []
    monkeypatch.setattr(cli_processes, "_exec_celery", lambda a: seen.append(collector.isenabled()) or 0)
    collector.enable()
    assert cli.main(["beat"]) == 0
    assert seen == [False] and collector.isenabled() and collector.get_freeze_count() > 0
    collector.disable()
    assert cli.main(["beat"]) == 0
    assert not collector.isenabled()  # a caller that had it off gets it back off


def test_a_long_running_part_turns_the_collector_back_on(collector):
    from workers.cli_common import collector_off, collector_on

    collector.enable()
    with collector_off():
        assert not collector.isenabled()
        collector_on()  # e.g. `run --wait` before its progress loop
        assert collector.isenabled()
    assert collector.isenabled()


def test_the_webhook_receiver_keeps_the_collector_on(monkeypatch, collector):
    import workers.webhooks

    seen: list[bool] = []
    monkeypatch.setattr(workers.webhooks, "serve", lambda host, port: seen.append(collector.isenabled()) or 0)
    collector.enable()
    assert cli.main(["webhooks"]) == 0
    assert seen == [True]
