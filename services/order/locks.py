"""One lock per client order id while anyone uses it, then forgotten (no unbounded growth).

Everything that reads an order and writes its next state (the submit flow, a venue
execution, a cancel, a look-up after an unknown outcome) holds the order's lock, so two
of them never move one order from the same stale state.
"""

from __future__ import annotations

import asyncio


class OrderLocks:
    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    def __call__(self, client_order_id: str) -> "_OrderLock":
        return _OrderLock(self._locks, client_order_id)

    def __len__(self) -> int:
        return len(self._locks)


class _OrderLock:
    def __init__(self, locks: dict[str, tuple[asyncio.Lock, int]], key: str) -> None:
        self._locks = locks
        self._key = key

    async def __aenter__(self) -> None:
        lock, users = self._locks.get(self._key, (None, 0))
        if lock is None:
            lock = asyncio.Lock()
        self._locks[self._key] = (lock, users + 1)
        try:
            await lock.acquire()
        except BaseException:  # cancelled while waiting: give the slot back
            self._forget(release=False)
            raise

    def _forget(self, *, release: bool) -> None:
        lock, users = self._locks[self._key]
        if release:
            lock.release()
        if users <= 1:
            del self._locks[self._key]
        else:
            self._locks[self._key] = (lock, users - 1)

    async def __aexit__(self, *exc) -> None:
        self._forget(release=True)
