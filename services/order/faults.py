"""Fault injection for the crash tests (QUANTMESH_FAULT), as a broker wrapper `__main__` wires in.

The engine knows nothing of it. `crash_after_broker_submit` kills the process with SIGKILL
right after the venue accepted an order, before the order plane stores the venue's answer,
to prove that recovery finds the order at the venue by client id and never sends it twice.
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import AsyncIterator, Callable

from services.order.brokers.base import (Broker, BrokerAck, BrokerExecution, BrokerOrder, BrokerPositionView,
                                         copy_traits)

log = logging.getLogger(__name__)

CRASH_AFTER_BROKER_SUBMIT = "crash_after_broker_submit"
FAULTS = (CRASH_AFTER_BROKER_SUBMIT,)


def kill_this_process() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


class CrashAfterSubmit:
    """A Broker that dies (by `crash`) after the inner venue accepted an order."""

    def __init__(self, inner: Broker, crash: Callable[[], None] = kill_this_process) -> None:
        self.inner = inner
        self.name = inner.name
        copy_traits(self, inner)
        self._crash = crash

    async def submit(self, order: BrokerOrder) -> BrokerAck:
        ack = await self.inner.submit(order)
        log.warning("QUANTMESH_FAULT=crash_after_broker_submit: killing the process before storing the ack")
        self._crash()
        return ack

    async def cancel(self, client_order_id: str) -> BrokerAck:
        return await self.inner.cancel(client_order_id)

    async def lookup(self, client_order_id: str) -> BrokerAck | None:
        return await self.inner.lookup(client_order_id)

    async def positions(self, account: str) -> list[BrokerPositionView]:
        return await self.inner.positions(account)

    def executions(self) -> AsyncIterator[BrokerExecution]:
        return self.inner.executions()


def with_fault(broker: Broker, fault: str | None) -> Broker:
    if fault is None:
        return broker
    if fault == CRASH_AFTER_BROKER_SUBMIT:
        return CrashAfterSubmit(broker)
    raise ValueError(f"unknown fault {fault!r}; known: {', '.join(FAULTS)}")
