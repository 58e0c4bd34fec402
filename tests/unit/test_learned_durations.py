"""Learned durations: hot in Redis (fakeredis), persisted in the ledger (SQLite, and PostgreSQL in CI)."""

from __future__ import annotations

import fakeredis
import pytest

from letzflow.engine.polling import COLD_FIRST_LOOK, SEED_SAMPLES, SEED_WEIGHT
from storage.durations import Durations
from tasks.learned import PERSIST_EVERY, PREFIX, LearnedDurations

KEY = "image/default/0.6mp"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def durations(ledger):
    return Durations(ledger.engine)


def _learned(client, durations, clock, max_inflight=50):
    return LearnedDurations(client, (lambda: durations) if durations else None, max_inflight, clock=clock)


def _cold_wave(learned, clock, key=KEY, jobs=SEED_SAMPLES, progress=50):
    for _ in range(jobs):
        clock.now += 0.01
        learned.learn(key, first_look=True, done=False, elapsed=1.0, progress=progress, had_progress=False)


def test_nothing_learned_is_cold_with_the_early_first_look(durations):
    learned = _learned(fakeredis.FakeRedis(), durations, Clock())
    figure = learned.figure(KEY)
    assert figure.cold and figure.wait == COLD_FIRST_LOOK


def test_the_first_cold_looks_set_the_figure_and_persist_it(durations):
    client, clock = fakeredis.FakeRedis(), Clock()
    learned = _learned(client, durations, clock)
    learned.learn(KEY, first_look=True, done=False, elapsed=1.0, progress=50, had_progress=False)
    assert learned.figure(KEY).first_look == pytest.approx(100 / 50.5)  # one look: warm at once
    assert durations.load([KEY, "image"])[KEY][0] == pytest.approx(100 / 50.5)  # first value saved now
    _cold_wave(learned, clock, jobs=SEED_SAMPLES - 1, progress=40)
    figure = learned.figure(KEY)
    assert figure.samples == SEED_WEIGHT  # seeding over: the tracker takes over
    assert figure.first_look == pytest.approx(100 / 40.5)
    assert client.get(f"{PREFIX}{KEY}:sample") is None
    assert float(client.get(PREFIX + "image")) == pytest.approx(100 / 40.5)  # the kind's fallback
    rows = durations.load([KEY, "image"])
    assert rows[KEY] == (pytest.approx(100 / 40.5), SEED_WEIGHT)  # the seeded figure is saved at once
    assert "image" in rows


def test_a_new_redis_starts_warm_from_the_ledger(durations):
    client, clock = fakeredis.FakeRedis(), Clock()
    _cold_wave(_learned(client, durations, clock), clock)
    client.flushall()  # Redis lost (or a new one): the ledger still knows
    restarted = _learned(client, durations, clock)
    figure = restarted.figure(KEY)
    assert not figure.cold and figure.first_look == pytest.approx(100 / 50.5)
    assert figure.samples == SEED_WEIGHT
    assert float(client.get(PREFIX + KEY)) == pytest.approx(100 / 50.5)  # the hot copy is back


def test_an_unknown_mode_starts_from_its_kinds_figure(durations):
    client, clock = fakeredis.FakeRedis(), Clock()
    learned = _learned(client, durations, clock)
    _cold_wave(learned, clock)
    other = "image/turbo/3mp"
    figure = learned.figure(other)
    assert not figure.cold and figure.first_look == pytest.approx(100 / 50.5)
    assert figure.samples == 0  # its own figure is still to be learned
    assert _learned(client, durations, clock).figure("video/default/4s").cold  # another kind stays cold


def test_the_ledger_is_written_at_most_every_few_seconds_per_key(durations, monkeypatch):
    client, clock = fakeredis.FakeRedis(), Clock()
    learned = _learned(client, durations, clock)
    _cold_wave(learned, clock)
    saves = []
    monkeypatch.setattr(durations, "save", lambda *args: saves.append(args))
    for _ in range(200):  # 200 first looks within 2 s
        clock.now += 0.01
        learned.learn(KEY, first_look=True, done=False, elapsed=1.8, progress=90, had_progress=False)
    assert len(saves) <= 2  # the key and its kind, once
    clock.now += PERSIST_EVERY
    learned.learn(KEY, first_look=True, done=True, elapsed=1.8, progress=100, had_progress=False)
    assert len(saves) <= 4


def test_jobs_done_before_the_cold_look_bring_it_forward(durations):
    client, clock = fakeredis.FakeRedis(), Clock()
    learned = _learned(client, durations, clock)
    for elapsed in (1.02, 1.05, 1.01):
        learned.learn(KEY, first_look=True, done=True, elapsed=elapsed, progress=100, had_progress=False)
    figure = learned.figure(KEY)
    assert figure.cold and figure.cold_look == pytest.approx(0.505)
    clock.now += 2
    assert _learned(client, durations, clock).figure(KEY).wait == pytest.approx(0.505)  # shared


def test_redis_down_answers_the_last_figure_seen(durations):
    server = fakeredis.FakeServer()
    client, clock = fakeredis.FakeRedis(server=server), Clock()
    learned = _learned(client, durations, clock)
    _cold_wave(learned, clock)
    server.connected = False
    clock.now += 5
    assert learned.figure(KEY).first_look == pytest.approx(100 / 50.5)
    learned.learn(KEY, first_look=True, done=True, elapsed=1.5, progress=100, had_progress=False)  # no raise
    assert _learned(client, None, clock).figure(KEY).cold


def test_saving_twice_overwrites_and_loading_ignores_unknown_keys(durations):
    durations.save("video/default/4s", "video", 12.5, 3)
    durations.save("video/default/4s", "video", 10.0, 120)
    assert durations.load(["video/default/4s", "video/x/y"]) == {"video/default/4s": (10.0, 120)}
    assert [row.key for row in durations.all()] == ["video/default/4s"]
    assert durations.load([]) == {}


def test_a_ledger_written_before_the_table_gains_it(tmp_path):
    from sqlalchemy import create_engine, inspect

    engine = create_engine(f"sqlite:///{tmp_path / 'old.db'}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE batch (id VARCHAR(32) PRIMARY KEY)")
    Durations(engine).save("image", "image", 2.0, 1)
    assert "learned_duration" in inspect(engine).get_table_names()
