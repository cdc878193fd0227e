"""Which guard subscribers (order planes) enforce which flag version.

A flag change is only as good as its enforcement: SetGlobalFlags answers after every
connected guard has acknowledged the new version (Control.AckFlags), or after a bounded
wait, naming the guards that have not. A guard counts as connected while one of its
WatchFlags streams is open; its acknowledgements outlive a reconnect.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field


@dataclass(slots=True)
class _Guard:
    streams: int = 0
    acknowledged: int = 0
    changed: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass(frozen=True, slots=True)
class Enforcement:
    enforced_by: tuple[str, ...]
    not_enforced_by: tuple[str, ...]


class GuardRegistry:
    def __init__(self) -> None:
        self._guards: dict[str, _Guard] = {}

    @contextlib.contextmanager
    def connected(self, name: str) -> Iterator[None]:
        """While a guard's WatchFlags stream is open."""
        guard = self._guards.setdefault(name, _Guard())
        guard.streams += 1
        try:
            yield
        finally:
            guard.streams -= 1
            self._notify(guard)

    def acknowledge(self, name: str, version: int) -> None:
        guard = self._guards.setdefault(name, _Guard())
        if version > guard.acknowledged:
            guard.acknowledged = version
            self._notify(guard)

    async def enforcement(self, version: int, timeout: float) -> Enforcement:
        """Waits up to `timeout` seconds for every connected guard to acknowledge `version`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            waiting = [(n, g) for n, g in self._guards.items() if g.streams > 0 and g.acknowledged < version]
            remaining = deadline - loop.time()
            if not waiting or remaining <= 0:
                break
            events = [asyncio.ensure_future(g.changed.wait()) for _, g in waiting]
            try:
                await asyncio.wait(events, timeout=remaining, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for event in events:
                    event.cancel()
        enforced = sorted(n for n, g in self._guards.items() if g.acknowledged >= version)
        pending = sorted(n for n, g in self._guards.items() if g.streams > 0 and g.acknowledged < version)
        return Enforcement(enforced_by=tuple(enforced), not_enforced_by=tuple(pending))

    @staticmethod
    def _notify(guard: _Guard) -> None:
        changed, guard.changed = guard.changed, asyncio.Event()
        changed.set()
