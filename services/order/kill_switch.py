"""The order plane's side of the flags: acknowledge what it enforces, and cancel while locked.

For every new flag version the FlagsFollower delivers, it lets the submits already running
finish (they were judged under the older flags), then acknowledges the version to control:
from then on every new order is judged under it, which is what SetGlobalFlags' answer
reports as "enforced". While the global lock is on with lock_cancels_open_orders (the
default), it cancels every open order, again at each new version, so nothing keeps working
at the venue under a lock. Cancels are never refused by the flags.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from services.common.flags import FlagsFollower, FlagView

log = logging.getLogger(__name__)


class KillSwitch:
    def __init__(self, flags: FlagsFollower, engine) -> None:
        self._flags = flags
        self._engine = engine
        self._task: asyncio.Task | None = None
        self.last_lock_cancel_seconds: float | None = None  # lock seen -> every open order canceled

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="kill-switch")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        async for view in self._flags.changes():
            try:
                await self.apply(view)
            except Exception:  # one failed round must not stop the next version from being enforced
                log.exception("could not apply a flag version", extra={"version": view.version})

    async def apply(self, view: FlagView) -> None:
        began = time.monotonic()
        await self._engine.settle_flows()
        await self._flags.acknowledge(view.version)
        if view.global_lock and view.lock_cancels_open_orders:
            canceled, failures = await self._engine.cancel_open(
                reason=f"global lock (flags version {view.version})", actor="kill-switch", role="service")
            self.last_lock_cancel_seconds = time.monotonic() - began
            if canceled or failures:
                log.warning("global lock: open orders canceled", extra={
                    "version": view.version, "canceled": len(canceled), "failures": failures,
                    "seconds": round(self.last_lock_cancel_seconds, 4)})
