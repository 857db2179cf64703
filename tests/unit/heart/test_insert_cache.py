"""Insert-once statements (``ON CONFLICT DO NOTHING``) are served from SQLAlchemy's compiled
cache on both dialects; an upsert (``DO UPDATE``) is compiled each time, as SQLAlchemy does."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, create_engine, event
from sqlalchemy.engine.default import CACHE_HIT

from povtor.db import dialect_insert, insert_ignore

ITEMS = Table(
    "items",
    MetaData(),
    Column("id", Integer, primary_key=True),
    Column("key", String, unique=True),
    Column("name", String),
)


@pytest.mark.parametrize("dialect", ["postgresql", "sqlite"])
def test_the_cache_key_tells_insert_once_statements_apart(dialect: str) -> None:
    def key(stmt: Any) -> Any:
        return stmt._generate_cache_key()

    plain = key(dialect_insert(dialect, ITEMS).on_conflict_do_nothing())
    assert plain is not None
    assert plain == key(dialect_insert(dialect, ITEMS).on_conflict_do_nothing())
    by_key = key(insert_ignore(dialect, ITEMS, on=[ITEMS.c.key]))
    by_id = key(insert_ignore(dialect, ITEMS, on=[ITEMS.c.id]))
    assert plain != by_key
    assert plain != by_id
    assert by_key != by_id
    returning = key(insert_ignore(dialect, ITEMS, on=[ITEMS.c.key]).returning(ITEMS.c.id))
    assert returning != plain
    assert returning != by_key
    once = dialect_insert(dialect, ITEMS)
    upsert = once.on_conflict_do_update(
        index_elements=[ITEMS.c.key], set_={"name": once.excluded.name}
    )
    assert key(upsert) is None  # not cached (and no warning: warnings fail the tests)


def test_a_second_insert_once_is_served_from_the_compiled_cache() -> None:
    engine = create_engine("sqlite://")
    ITEMS.metadata.create_all(engine)
    hits: list[bool] = []

    @event.listens_for(engine, "after_cursor_execute")
    def _seen(*args: Any) -> None:
        hits.append(args[4].cache_hit is CACHE_HIT)

    with engine.begin() as conn:
        for name in ("a", "b", "a"):
            stmt = insert_ignore(conn, ITEMS, on=[ITEMS.c.key]).returning(ITEMS.c.key)
            conn.execute(stmt, [{"key": name, "name": name}])
        stored = conn.execute(ITEMS.select().order_by(ITEMS.c.id)).all()
    assert hits[:3] == [False, True, True]
    assert [(r.key, r.name) for r in stored] == [("a", "a"), ("b", "b")]
    engine.dispose()
