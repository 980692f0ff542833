"""engine.lru.LRU: bounded, least recently used forgotten first."""

from __future__ import annotations

from engine.lru import LRU


def test_the_least_recently_used_entry_goes_first():
    cache: LRU[str, int] = LRU(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # "a" is now the most recent
    cache.put("c", 3)
    assert cache.get("b") is None and cache.get("a") == 1 and cache.get("c") == 3


def test_get_or_make_makes_once_per_kept_key():
    cache: LRU[str, int] = LRU(4)
    made: list[str] = []

    def make() -> int:
        made.append("x")
        return len(made)

    assert cache.get_or_make("k", make) == 1
    assert cache.get_or_make("k", make) == 1
    assert made == ["x"]
