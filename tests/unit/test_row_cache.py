"""RowCache: when remembered rows may be used and stored (hyperapi.models.changes)."""

from __future__ import annotations

import os

import pytest

from hyperapi.models.changes import MISSING, RowCache


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def cache(clock) -> RowCache:
    cache = RowCache(max_entries=3, clock=clock)
    cache.confirm(clock.now, 1.0)
    return cache


def test_nothing_is_used_or_stored_before_a_marker_came_back(clock):
    cache = RowCache(clock=clock)
    assert cache.snapshot() is None
    assert not cache.put(cache.snapshot(), "k", 1, ("users 1",))
    cache.confirm(clock.now, 1.0)
    assert cache.put(cache.snapshot(), "k", 1, ("users 1",))
    assert cache.get("k") == 1


def test_entries_are_used_only_until_max_staleness_after_the_last_marker(cache, clock):
    assert cache.put(cache.snapshot(), "k", "v", ("users 1",))
    clock.now += 0.999
    assert cache.get("k") == "v"
    clock.now += 0.001
    assert cache.get("k") is MISSING
    assert cache.snapshot() is None
    # A marker sent later makes the same entry usable again: the changes before it are in.
    cache.confirm(clock.now, 1.0)
    assert cache.get("k") == "v"
    # A marker that comes back late never moves freshness backwards.
    cache.confirm(clock.now - 5, 1.0)
    assert cache.get("k") == "v"


def test_a_change_forgets_every_entry_that_depends_on_the_row_and_only_those(cache):
    snapshot = cache.snapshot()
    cache.put(snapshot, "a", 1, ("users 1", "posts 7"))
    cache.put(snapshot, "b", 2, ("users 2", "posts 7"))
    cache.put(snapshot, "c", 3, ("users 3",))
    cache.changed("posts 7")
    assert cache.get("a") is MISSING and cache.get("b") is MISSING
    assert cache.get("c") == 3
    assert "users 1" not in cache.dependents and "posts 7" not in cache.dependents
    cache.changed("users 30")  # a row nothing depends on: nothing else goes
    assert cache.get("c") == 3


def test_a_truncate_forgets_every_entry_of_the_table(cache):
    snapshot = cache.snapshot()
    cache.put(snapshot, "a", 1, ("users 1", "posts 7"))
    cache.put(snapshot, "b", 2, ("users 2",))
    cache.put(snapshot, "c", 3, ("users 22",))
    cache.changed("posts *")
    assert cache.get("a") is MISSING and cache.get("b") == 2
    cache.changed("users *")
    assert len(cache) == 0 and not cache.dependents


def test_a_table_name_that_prefixes_another_is_not_confused_with_it(cache):
    snapshot = cache.snapshot()
    cache.put(snapshot, "a", 1, ("user 1",))
    cache.put(snapshot, "b", 2, ("users 1",))
    cache.changed("user *")
    assert cache.get("a") is MISSING and cache.get("b") == 2


def test_a_read_that_raced_a_change_is_not_stored(cache):
    # Read before the change committed, stored after its notification: it would be stale
    # until the row changes again.
    snapshot = cache.snapshot()
    cache.changed("users 1")
    assert not cache.put(snapshot, "k", "old", ("users 1",))
    assert cache.get("k") is MISSING
    # Any change counts: telling which rows a read saw is not worth the risk.
    snapshot = cache.snapshot()
    cache.changed("users 2")
    assert not cache.put(snapshot, "k", "old", ("users 1",))


def test_forget_drops_everything_and_stops_use_until_the_next_marker(cache, clock):
    snapshot = cache.snapshot()
    cache.put(snapshot, "k", 1, ("users 1",))
    cache.forget()
    assert cache.get("k") is MISSING and len(cache) == 0
    assert not cache.put(snapshot, "k", 1, ("users 1",))
    assert cache.snapshot() is None
    cache.confirm(clock.now, 1.0)
    assert cache.get("k") is MISSING


def test_the_oldest_entry_goes_first_when_full(cache):
    snapshot = cache.snapshot()
    for key in "abc":
        cache.put(snapshot, key, key, (f"users {key}",))
    cache.put(snapshot, "d", "d", ("users d",))
    assert [cache.get(k) for k in "abcd"] == [MISSING, "b", "c", "d"]
    assert "users a" not in cache.dependents and len(cache) == 3
    # Replacing an entry does not evict another, and drops its old dependencies.
    cache.put(snapshot, "d", "d2", ("users x",))
    assert len(cache) == 3 and "users d" not in cache.dependents
    assert cache.get("d") == "d2"


def test_a_forked_child_forgets_what_its_parent_remembered(cache):
    cache.put(cache.snapshot(), "k", 1, ("users 1",))
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its parent's listener did not come along
        os.write(write, b"missing" if cache.get("k") is MISSING else b"used")
        os._exit(0)
    os.close(write)
    answer = os.read(read, 16)
    os.close(read)
    os.waitpid(pid, 0)
    assert answer == b"missing"
    assert cache.get("k") == 1  # the parent's own cache is untouched
