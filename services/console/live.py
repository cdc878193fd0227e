"""What the open pages see change, followed once and fanned out to every page.

Four topics, each kept as its latest value so a page that connects (or reconnects) gets the
whole picture at once, then every change:

- `flags`: Control.WatchFlags through the shared FlagsFollower, the snapshot re-read on each
  new version;
- `positions`: Position.Snapshot each time the exposure stream (ExposureFollower) shows a new
  fill, and every poll interval for the marks;
- `order`: each order state change from Order.WatchOrders (live, resumed after a break);
- `overview`: each plane's health, each worker's GetStatus, the order plane's optional actions,
  every poll interval; and the reconciliation decisions recorded since the last poll (alerts only).

The same observations feed the alert rules. A page too slow for its queue is dropped (its
EventSource reconnects and starts from the latest values); it never slows the other pages.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from decimal import Decimal, InvalidOperation

import grpc

from quantmesh.order.v1 import order_pb2
from services.common.exposure import ExposureFollower
from services.common.flags import FlagsFollower
from services.common.reconnect import follow_forever
from services.console import views
from services.console.alerts import AlertRules, Difference
from services.console.capabilities import offered, order_methods
from services.console.planes import PlaneHealth, PlaneRefused, Planes
from services.console.workers import Workers

log = logging.getLogger(__name__)

TOPICS = ("overview", "flags", "positions", "order")
PAGE_QUEUE = 200
#: The order plane's contract changes only with a deploy: ask its reflection every this many polls.
CAPABILITY_POLLS = 15


class LiveBoard:
    def __init__(self, *, planes: Planes, workers: Workers, flags: FlagsFollower, exposure: ExposureFollower,
                 alerts: AlertRules, poll_seconds: float) -> None:
        self._planes = planes
        self._workers = workers
        self._flags = flags
        self._exposure = exposure
        self._alerts = alerts
        self._poll = poll_seconds
        self.latest: dict[str, dict] = {}
        self.health: list[PlaneHealth] = []
        self.capabilities: frozenset[str] = frozenset()
        self.strategies: frozenset[str] = frozenset()  # slugs of the workers that answered
        self._pages: set[asyncio.Queue] = set()
        self._tasks: list[asyncio.Task] = []
        self._orders_after: int | None = None
        self._reconciled_after: int | None = None  # the newest reconciliation audit id seen (None: not looked yet)
        self._running = False

    # ---- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        self._running = True
        for name, work in (("flags", self._follow_flags), ("positions", self._follow_positions),
                           ("orders", self._follow_orders), ("overview", self._poll_overview)):
            self._tasks.append(asyncio.create_task(work(), name=f"console live {name}"))

    async def stop(self) -> None:
        self._running = False
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        for queue in tuple(self._pages):
            _close(queue)

    # ---- pages ----------------------------------------------------------------------------------

    async def follow(self, *, quiet_seconds: float = 15.0) -> AsyncIterator[tuple[str, dict | None]]:
        """The latest value of every topic, then every change, until the page is dropped or stops.

        After `quiet_seconds` without a change it yields ("keepalive", None), so the page's
        connection carries something and a dead one is noticed."""
        queue: asyncio.Queue = asyncio.Queue(PAGE_QUEUE + 1)
        # Taken in the same step as the queue joins: what is published later comes through the queue only.
        current = [(topic, self.latest[topic]) for topic in TOPICS if topic in self.latest and topic != "order"]
        self._pages.add(queue)
        try:
            for item in current:
                yield item
            while True:
                try:
                    item = await asyncio.wait_for(queue.get(), quiet_seconds)
                except asyncio.TimeoutError:
                    yield "keepalive", None
                    continue
                if item is None:
                    return
                yield item
        finally:
            self._pages.discard(queue)

    def publish(self, topic: str, data: dict) -> None:
        self.latest[topic] = data
        for queue in tuple(self._pages):
            if queue.qsize() >= PAGE_QUEUE:
                self._pages.discard(queue)
                _close(queue)
                continue
            queue.put_nowait((topic, data))

    # ---- followers --------------------------------------------------------------------------

    async def _follow_flags(self) -> None:
        async for view in self._flags.changes():
            self._alerts.flags(global_lock=view.global_lock, version=view.version)
            try:
                self.publish("flags", views.flags(await self._planes.flags()))
            except PlaneRefused as exc:
                log.warning("flags changed but could not be read: %s", exc.sentence)

    async def _follow_positions(self) -> None:
        seen = -1
        while True:
            await self._exposure.wait_for_fill_seq(seen + 1, timeout=self._poll)
            try:
                snapshot = await self._planes.snapshot()
            except PlaneRefused as exc:
                log.info("positions unavailable: %s", exc.sentence)
                await asyncio.sleep(self._poll)
                continue
            except Exception:
                log.exception("reading positions failed; trying again")
                await asyncio.sleep(self._poll)
                continue
            seen = snapshot.last_fill_seq
            data = views.positions(snapshot)
            if data != self.latest.get("positions"):
                self.publish("positions", data)
            fraction = _fraction(snapshot.account.drawdown_fraction)
            if fraction is not None:
                self._alerts.drawdown(account=snapshot.account.account, fraction=fraction)

    async def _follow_orders(self) -> None:
        await follow_forever(self._order_session, what="order plane (orders)", address=self._planes.addresses["order"],
                             log=log, max_backoff=5.0, running=lambda: self._running)

    async def _order_session(self) -> bool:
        request = order_pb2.WatchOrdersRequest()
        if self._orders_after is not None:
            request.resume_after_seq = self._orders_after
        delivered = False
        call = self._planes.order.WatchOrders(request)
        try:
            async for event in call:
                self._orders_after = event.seq
                delivered = True
                record = event.order
                self.publish("order", views.order(record))
                if record.state == order_pb2.ORDER_STATE_REJECTED:
                    self._alerts.order_refused(rule=record.reject_rule, order_id=record.order_id,
                                               strategy=record.intent.strategy_slug)
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.FAILED_PRECONDITION:
                self._orders_after = None  # past what the plane retains: carry on live
            if not delivered:
                raise
        finally:
            call.cancel()
        return delivered

    async def _poll_overview(self) -> None:
        polls = 0
        while True:
            try:
                await self._overview(refresh_capabilities=polls % CAPABILITY_POLLS == 0)
            except Exception:  # the page must keep its overview whatever one poll met
                log.exception("the overview poll failed; trying again")
            polls += 1
            await asyncio.sleep(self._poll)

    async def _reconciliation_alerts(self) -> None:
        """Alerts for the reconciliation decisions recorded since the last look. The first look only
        takes the newest id: what was decided before the console started is in the audit page."""
        try:
            entries = await self._planes.reconciliation_entries()
        except PlaneRefused as exc:
            log.info("reconciliation decisions unavailable: %s", exc.sentence)
            return
        newest = max((e.id for e in entries), default=0)
        if self._reconciled_after is not None:
            new = [e for e in reversed(entries) if e.id > self._reconciled_after]
            self._alerts.reconciliation([Difference(account="", instrument=e.subject, ledger_quantity=e.old_value,
                                                    broker_quantity=e.new_value, decision=e.reason) for e in new])
        self._reconciled_after = max(newest, self._reconciled_after or 0)

    async def _overview(self, *, refresh_capabilities: bool) -> None:
        if refresh_capabilities:
            self.capabilities = await self._capabilities()
        self.health, reports = await asyncio.gather(self._planes.health(), self._workers.reports())
        for health in self.health:
            self._alerts.plane_health(health.plane, health.serving, health.status)
        await self._reconciliation_alerts()
        workers = [views.worker(r.address, r.status, r.problem) for r in reports]
        self.strategies = frozenset(w["strategy"] for w in workers if "strategy" in w)
        view = self._flags.view()
        self.publish("overview", {
            "planes": [views.plane_health(h) for h in self.health],
            "workers": sorted(workers, key=lambda w: w["name"]),
            "trading_state": view.state if view is not None else "UNKNOWN",
            "flags_version": view.version if view is not None else 0,
            "control_stale": self._flags.is_stale(),
            "capabilities": sorted(self.capabilities),
        })

    async def _capabilities(self) -> frozenset[str]:
        try:
            return offered(await order_methods(self._planes.channel("order")))
        except (grpc.aio.AioRpcError, asyncio.TimeoutError):
            return self.capabilities  # keep what was known while the plane is away


def _close(queue: asyncio.Queue) -> None:
    while True:
        try:
            queue.put_nowait(None)
            return
        except asyncio.QueueFull:
            queue.get_nowait()


def _fraction(text: str) -> Decimal | None:
    try:
        value = Decimal(text)
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


__all__ = ["LiveBoard", "TOPICS"]
