"""A pipeline whose statements leave together (engine/store/one_send.py): nothing reaches the
server before the block ends, and what the block's statements do and raise is what psycopg's
own pipeline gives."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from engine.store.one_send import one_send
from tests.conftest import _is_pg

pytestmark = pytest.mark.skipif(not _is_pg(), reason="pipelines are PostgreSQL's")


@pytest.fixture
def drivers(app) -> Iterator[list[Any]]:
    """Two psycopg connections of the app's pool (autocommit, as the engine runs them)."""
    raw = [app.database.engine.raw_connection() for _ in range(2)]
    yield [r.driver_connection for r in raw]
    for r in raw:
        r.close()


def _held_elsewhere(driver: Any, key: int) -> bool:
    free = driver.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()[0]
    if free:
        driver.execute("SELECT pg_advisory_unlock(%s)", (key,))
    return not free


def test_nothing_reaches_the_server_before_the_block_ends(drivers):
    mine, other = drivers
    key = random.randrange(1, 2**62)
    with one_send(mine):
        mine.execute("SELECT pg_advisory_lock(%s)", (key,))
        time.sleep(0.3)  # a statement already sent would have run by now
        held_inside = _held_elsewhere(other, key)
    held_after = _held_elsewhere(other, key)
    mine.execute("SELECT pg_advisory_unlock(%s)", (key,))
    assert not held_inside
    assert held_after


def test_the_blocks_statements_run_in_order_with_their_results_after_it(drivers):
    mine, _ = drivers
    mine.execute("CREATE TEMPORARY TABLE one_send_rows (n int PRIMARY KEY)")
    with one_send(mine):
        mine.execute("BEGIN")
        inserted = mine.execute("INSERT INTO one_send_rows VALUES (1), (2), (3)")
        moved = mine.execute("UPDATE one_send_rows SET n = n * 10 WHERE n >= 2")
        read = mine.execute("SELECT n FROM one_send_rows ORDER BY n")
        mine.execute("COMMIT")
    assert (inserted.rowcount, moved.rowcount) == (3, 2)
    assert read.fetchall() == [(1,), (20,), (30,)]


def test_a_statement_the_server_refuses_raises_at_the_end_and_stops_the_rest(drivers):
    mine, other = drivers
    mine.execute("CREATE TABLE IF NOT EXISTS one_send_keys (n int PRIMARY KEY)")
    mine.execute("TRUNCATE one_send_keys")
    try:
        with pytest.raises(psycopg.errors.UniqueViolation), one_send(mine):
            mine.execute("BEGIN")
            mine.execute("INSERT INTO one_send_keys VALUES (1)")
            mine.execute("INSERT INTO one_send_keys VALUES (1)")
            mine.execute("INSERT INTO one_send_keys VALUES (2)")
            mine.execute("COMMIT")
        mine.execute("ROLLBACK")
        assert other.execute("SELECT count(*) FROM one_send_keys").fetchone()[0] == 0
        assert mine.execute("SELECT 1").fetchone() == (1,)  # the connection works on
    finally:
        mine.execute("DROP TABLE one_send_keys")


def test_inside_a_pipeline_already_open_it_is_that_pipeline(drivers):
    mine, _ = drivers
    with mine.pipeline() as outer:
        with one_send(mine) as inner:
            first = mine.execute("SELECT 1")
        assert inner is outer
        second = mine.execute("SELECT 2")
    assert (first.fetchone(), second.fetchone()) == ((1,), (2,))
    assert "_communicate_gen" not in vars(outer)
