"""Builds the real venue named by QUANTMESH_BROKER (settings re-read from the environment).

Every adapter gets its venue's rate budget from services.common.venues (GMO Tier 1: 20 GET +
20 POST per second; OANDA 100 of its 120 requests per second; ccxt orders 5 per second) and
the wall clock. GMO also gets its durable record of sent orders in PostgreSQL (schema
`gmo_venue`), since GMO has no client order id and an order in flight must survive a restart.
"""

from __future__ import annotations

import asyncpg

from services.common.clock import WallClock
from services.common.config import Env
from services.common.venues import CcxtSettings, GmoSettings, OandaSettings, make_ccxt_exchange


async def real_venue(config, pool: asyncpg.Pool | None = None):
    """The OANDA, GMO Coin or ccxt broker for `config.broker` ("oanda" | "gmo" | "ccxt")."""
    env, clock = Env(), WallClock()
    if config.broker == "oanda":
        from services.order.brokers.oanda import OandaBroker
        return OandaBroker(OandaSettings.from_env(env), clock=clock)
    if config.broker == "gmo":
        from services.order.brokers.gmo import GmoBroker
        from services.order.brokers.gmo_orders import MemorySentOrders, PostgresSentOrders
        if pool is None and GmoSettings.from_env(env, trading=True).venue_env == "live":
            raise RuntimeError("GMO Coin needs a database for its record of sent orders when trading live")
        sent = await PostgresSentOrders.open(pool) if pool is not None else MemorySentOrders()
        return GmoBroker(GmoSettings.from_env(env, trading=True), sent=sent, clock=clock)
    from services.order.brokers.budget import VenueBudget
    from services.order.brokers.ccxt_broker import CcxtBroker
    settings = CcxtSettings.from_env(env, config.broker_exchange, trading=True)
    return CcxtBroker(make_ccxt_exchange(settings), config.instruments,
                      client_ids=settings.has_client_ids and not settings.no_resend, clock=clock,
                      budget=VenueBudget.split(50.0, settings.orders_per_second, clock),
                      poll_seconds=settings.poll_seconds)
