"""A small per-process cache whose entries expire, bounded in size. Not thread-safe: the
API touches it only from the event loop, so no lock is needed."""

from __future__ import annotations

from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class ExpiringCache(Generic[K, V]):
    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        # Insertion order is (about) expiry order: every entry lives as long, and a refreshed
        # entry moves to the end; the oldest is evicted first when the cache is full.
        self._entries: dict[K, tuple[float, V]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: K, now: float) -> V | None:
        """The value, unless it is missing or its deadline has passed."""
        entry = self._entries.get(key)
        if entry is None or entry[0] <= now:
            return None
        return entry[1]

    def peek(self, key: K) -> V | None:
        """The value even after its deadline (what it was, not what it is)."""
        entry = self._entries.get(key)
        return None if entry is None else entry[1]

    def put(self, key: K, value: V, deadline: float) -> None:
        self._entries.pop(key, None)
        while len(self._entries) >= self.max_entries:
            del self._entries[next(iter(self._entries))]
        self._entries[key] = (deadline, value)

    def items(self) -> list[tuple[K, V]]:
        return [(key, entry[1]) for key, entry in self._entries.items()]

    def pop(self, key: K) -> None:
        self._entries.pop(key, None)

    def clear(self) -> None:
        self._entries.clear()
