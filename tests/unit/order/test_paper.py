"""The paper venue: deterministic fills by the documented rules."""

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from services.order.brokers.base import BrokerOrder, BrokerRejected
from services.order.brokers.paper import MemoryVenueStore, PaperBroker, PaperSettings

T0 = datetime(2013, 1, 1, 22, 0, tzinfo=timezone.utc)


def order(cid="o1", **overrides) -> BrokerOrder:
    fields = dict(client_order_id=cid, account="paper", instrument="USD_JPY", side="buy", quantity=Decimal(1000),
                  order_type="market", time_in_force="IOC")
    fields.update(overrides)
    return BrokerOrder(**fields)


async def drain(paper: PaperBroker) -> list:
    found = []
    while not paper._executions.empty():
        found.append(paper._executions.get_nowait())
    return found


async def feed(paper: PaperBroker, quotes) -> None:
    for offset_ms, bid, ask in quotes:
        await paper.on_quote("USD_JPY", T0 + timedelta(milliseconds=offset_ms), Decimal(bid), Decimal(ask))


def fills(executions):
    return [(e.fill.quantity, e.fill.price, e.fill.commission, e.fill.time) for e in executions if e.fill]


async def test_market_orders_fill_at_the_next_quote_with_slippage_on_the_right_side():
    paper = PaperBroker(MemoryVenueStore(), PaperSettings(slippage=Decimal("0.002")))
    await feed(paper, [(0, "86.655", "86.728")])
    await paper.submit(order("buy"))
    await paper.submit(order("sell", side="sell"))
    await feed(paper, [(100, "86.657", "86.730")])
    got = await drain(paper)
    assert [(e.client_order_id, e.fill.price) for e in got] == [("buy", Decimal("86.732")), ("sell", Decimal("86.655"))]
    assert all(e.state == "filled" for e in got)


async def test_submit_is_idempotent_on_the_client_id():
    venue = MemoryVenueStore()
    paper = PaperBroker(venue)
    first = await paper.submit(order("same"))
    second = await paper.submit(order("same", quantity=Decimal(5)))
    assert first == second and len(await venue.all_orders()) == 1


async def test_limit_orders_fill_at_their_price_when_the_opposite_side_crosses():
    paper = PaperBroker(MemoryVenueStore())
    await paper.submit(order("lb", order_type="limit", limit_price=Decimal("86.70"), time_in_force="GTC"))
    await paper.submit(order("ls", side="sell", order_type="limit", limit_price=Decimal("86.80"), time_in_force="GTC"))
    await feed(paper, [(0, "86.655", "86.728"), (1, "86.66", "86.71")])
    assert await drain(paper) == []
    await feed(paper, [(2, "86.62", "86.69")])
    got = await drain(paper)
    assert [(e.client_order_id, e.fill.price) for e in got] == [("lb", Decimal("86.70"))]
    await feed(paper, [(3, "86.81", "86.83")])
    assert [(e.client_order_id, e.fill.price) for e in await drain(paper)] == [("ls", Decimal("86.80"))]


async def test_an_ioc_limit_that_does_not_cross_expires():
    paper = PaperBroker(MemoryVenueStore())
    await paper.submit(order("ioc", order_type="limit", limit_price=Decimal("80"), time_in_force="IOC"))
    await feed(paper, [(0, "86.655", "86.728")])
    got = await drain(paper)
    assert [(e.state, e.fill) for e in got] == [("expired", None)]
    assert (await paper.lookup("ioc")).state == "expired"


async def test_stop_orders_trigger_when_the_market_trades_through():
    paper = PaperBroker(MemoryVenueStore())
    await paper.submit(order("stop-buy", order_type="stop", stop_price=Decimal("86.75"), time_in_force="GTC"))
    await paper.submit(order("stop-sell", side="sell", order_type="stop", stop_price=Decimal("86.60"),
                             time_in_force="GTC"))
    await feed(paper, [(0, "86.655", "86.728"), (1, "86.68", "86.74")])
    assert await drain(paper) == []
    await feed(paper, [(2, "86.70", "86.76")])
    assert [(e.client_order_id, e.fill.price) for e in await drain(paper)] == [("stop-buy", Decimal("86.76"))]
    await feed(paper, [(3, "86.59", "86.66")])
    assert [(e.client_order_id, e.fill.price) for e in await drain(paper)] == [("stop-sell", Decimal("86.59"))]


async def test_liquidity_makes_partial_fills_quote_by_quote_and_ioc_expires_the_rest():
    paper = PaperBroker(MemoryVenueStore(), PaperSettings(liquidity=Decimal(400)))
    await paper.submit(order("gtc", time_in_force="GTC"))
    await paper.submit(order("ioc", time_in_force="IOC"))
    await paper.submit(order("fok", time_in_force="FOK"))
    await feed(paper, [(0, "86.655", "86.728"), (1, "86.656", "86.729"), (2, "86.657", "86.730")])
    got = await drain(paper)
    gtc = [(e.state, e.fill.quantity) for e in got if e.client_order_id == "gtc"]
    assert gtc == [("partially_filled", 400), ("partially_filled", 400), ("filled", 200)]
    assert [(e.state, e.fill and e.fill.quantity) for e in got if e.client_order_id == "ioc"] == [
        ("partially_filled", 400), ("expired", None)]
    assert [(e.state, e.fill) for e in got if e.client_order_id == "fok"] == [("expired", None)]


async def test_latency_activates_an_order_only_for_quotes_that_much_later():
    paper = PaperBroker(MemoryVenueStore(), PaperSettings(latency_ms=250))
    await feed(paper, [(0, "86.655", "86.728")])
    await paper.submit(order("late"))
    await feed(paper, [(100, "86.656", "86.729"), (249, "86.657", "86.730")])
    assert await drain(paper) == []
    await feed(paper, [(250, "86.658", "86.731")])
    assert [e.fill.price for e in await drain(paper)] == [Decimal("86.731")]


async def test_commission_by_rate_on_notional_plus_per_unit():
    paper = PaperBroker(MemoryVenueStore(), PaperSettings(commission_rate=Decimal("0.0001"),
                                                          commission_per_unit=Decimal("0.002")))
    await paper.submit(order("c", quantity=Decimal(10000)))
    await feed(paper, [(0, "86.60", "86.70")])
    (fill,) = [e.fill for e in await drain(paper)]
    assert fill.commission == Decimal(10000) * Decimal("86.70") * Decimal("0.0001") + Decimal(20)


async def test_same_quotes_same_fills_every_run():
    quotes = [(i * 37, f"86.{600 + (i * 7) % 50}", f"86.{660 + (i * 7) % 50}") for i in range(60)]

    async def run():
        paper = PaperBroker(MemoryVenueStore(), PaperSettings(liquidity=Decimal(300), slippage=Decimal("0.001"),
                                                              commission_rate=Decimal("0.00002"), latency_ms=50))
        await feed(paper, quotes[:1])
        await paper.submit(order("m", quantity=Decimal(1000), time_in_force="GTC"))
        await paper.submit(order("l", side="sell", order_type="limit", limit_price=Decimal("86.640"),
                                 time_in_force="GTC"))
        await paper.submit(order("s", order_type="stop", stop_price=Decimal("86.700"), time_in_force="GTC"))
        await feed(paper, quotes[1:])
        return fills(await drain(paper)), await paper.positions("paper")

    first, second = await run(), await run()
    assert first == second and len(first[0]) >= 5


async def test_cancel_lookup_and_positions_answer_as_a_venue():
    paper = PaperBroker(MemoryVenueStore())
    assert await paper.lookup("nobody") is None
    with pytest.raises(BrokerRejected, match="no order with client id 'nobody'"):
        await paper.cancel("nobody")
    await paper.submit(order("rest", order_type="limit", limit_price=Decimal("1"), time_in_force="GTC"))
    assert (await paper.cancel("rest")).state == "canceled"
    await paper.submit(order("b1", quantity=Decimal(1000)))
    await feed(paper, [(0, "86.0", "86.1")])
    await paper.submit(order("s1", side="sell", quantity=Decimal(400)))
    await feed(paper, [(1, "87.0", "87.1")])
    (view,) = await paper.positions("paper")
    assert (view.quantity, view.average_price) == (Decimal(600), Decimal("86.1"))
    assert await paper.positions("other") == []


# ---- decision time: the fill follows from the data, not from when the order arrives ---------------------------

DECIDED = T0 + timedelta(minutes=1)  # the closed_time of the candle the decision saw
SECOND = timedelta(seconds=1)
MICRO = timedelta(microseconds=1)


async def quote(paper: PaperBroker, at: datetime, bid: str, ask: str) -> None:
    await paper.on_quote("USD_JPY", at, Decimal(bid), Decimal(ask))


@pytest.mark.parametrize("seen_before_submit", [1, 2], ids=["before-the-decisions-quote", "after-it"])
async def test_a_decision_time_order_fills_at_the_first_quote_after_it_whatever_the_venue_saw(seen_before_submit):
    quotes = [(DECIDED - SECOND, "86.600", "86.700"), (DECIDED, "86.610", "86.710"),
              (DECIDED + SECOND, "86.620", "86.720"), (DECIDED + 2 * SECOND, "86.630", "86.730")]
    paper = PaperBroker(MemoryVenueStore(), PaperSettings(slippage=Decimal("0.001")))
    for at, bid, ask in quotes[:seen_before_submit]:
        await quote(paper, at, bid, ask)
    await paper.submit(order("buy", decision_time=DECIDED))
    await paper.submit(order("sell", side="sell", decision_time=DECIDED))
    if seen_before_submit == 1:  # the decision's own quote reaches the venue after the order: it must not fill it
        await quote(paper, *quotes[1])
        assert await drain(paper) == []
    await quote(paper, *quotes[2])
    got = await drain(paper)
    assert [(e.client_order_id, e.state, e.fill.price, e.fill.time) for e in got] == [
        ("buy", "filled", Decimal("86.721"), DECIDED + SECOND), ("sell", "filled", Decimal("86.619"), DECIDED + SECOND)]


async def test_a_quote_stamped_with_the_decision_time_after_acceptance_is_skipped_with_or_without_earlier_quotes():
    for earlier in ([], [(DECIDED - SECOND, "86.600", "86.700")], [(DECIDED, "86.605", "86.705")]):
        paper = PaperBroker(MemoryVenueStore())
        for at, bid, ask in earlier:
            await quote(paper, at, bid, ask)
        await paper.submit(order("o", decision_time=DECIDED))
        await quote(paper, DECIDED - SECOND, "86.50", "86.60")  # a late, older quote: not later either
        await quote(paper, DECIDED, "86.61", "86.71")  # a second tick with the decision's very time
        assert await drain(paper) == [], earlier
        await quote(paper, DECIDED + MICRO, "86.62", "86.72")
        assert [e.fill.price for e in await drain(paper)] == [Decimal("86.72")], earlier


async def test_without_a_decision_time_the_next_quote_fills_even_at_the_same_time_as_before():
    paper = PaperBroker(MemoryVenueStore())
    await quote(paper, DECIDED, "86.605", "86.705")
    await paper.submit(order("plain"))
    venue_order = await paper._store.get("plain")
    assert venue_order.reference_time == DECIDED and venue_order.order.decision_time is None
    await quote(paper, DECIDED, "86.61", "86.71")
    assert [e.fill.price for e in await drain(paper)] == [Decimal("86.71")]


async def test_latency_counts_from_the_first_instant_after_the_decision_or_from_a_later_last_quote():
    paper = PaperBroker(MemoryVenueStore(), PaperSettings(latency_ms=250))
    latency = timedelta(milliseconds=250)
    await quote(paper, DECIDED - SECOND, "86.60", "86.70")
    await paper.submit(order("on-time", decision_time=DECIDED))
    for at in (DECIDED, DECIDED + timedelta(milliseconds=100), DECIDED + latency):
        await quote(paper, at, "86.61", "86.71")
    assert await drain(paper) == []  # decision_time + 1 µs + 250 ms is the first active instant
    await quote(paper, DECIDED + latency + MICRO, "86.62", "86.72")
    assert [(e.client_order_id, e.fill.price) for e in await drain(paper)] == [("on-time", Decimal("86.72"))]

    late_seen = DECIDED + 2 * SECOND  # the order reaches the venue after it saw this later quote
    await quote(paper, late_seen, "86.63", "86.73")
    await paper.submit(order("late", decision_time=DECIDED))
    assert (await paper._store.get("late")).reference_time == late_seen
    await quote(paper, late_seen + latency - MICRO, "86.64", "86.74")
    assert await drain(paper) == []
    await quote(paper, late_seen + latency, "86.65", "86.75")
    assert [(e.client_order_id, e.fill.price) for e in await drain(paper)] == [("late", Decimal("86.75"))]


async def test_a_decision_time_limit_ioc_is_not_expired_by_the_decisions_own_quote():
    paper = PaperBroker(MemoryVenueStore())
    await paper.submit(order("ioc", order_type="limit", limit_price=Decimal("86.70"), time_in_force="IOC",
                             decision_time=DECIDED))
    await quote(paper, DECIDED, "86.70", "86.80")  # would not cross: expiring here would be the wrong quote
    assert await drain(paper) == [] and (await paper.lookup("ioc")).state == "new"
    await quote(paper, DECIDED + SECOND, "86.60", "86.69")
    assert [(e.state, e.fill.price) for e in await drain(paper)] == [("filled", Decimal("86.70"))]


async def test_a_sell_trailing_stop_follows_the_highest_bid_and_fires_when_the_bid_falls_back_to_it():
    paper = PaperBroker(MemoryVenueStore())
    await paper.submit(order("trail", side="sell", order_type="trailing_stop", trail_distance=Decimal("0.10"),
                             time_in_force="GTC"))
    # First active quote sets the trigger at 86.60 - 0.10; the bid rises to 86.80 (trigger 86.70),
    # then falls: 86.75 and 86.71 keep it (the trigger never falls), 86.70 touches it.
    await feed(paper, [(0, "86.60", "86.62"), (1, "86.65", "86.67"), (2, "86.80", "86.82"), (3, "86.75", "86.77"),
                       (4, "86.71", "86.73")])
    assert await drain(paper) == []
    assert paper._working_by_cid["trail"].trail_stop == Decimal("86.70")
    await feed(paper, [(5, "86.70", "86.72")])
    assert [(e.client_order_id, e.fill.price) for e in await drain(paper)] == [("trail", Decimal("86.70"))]


async def test_a_buy_trailing_stop_starts_at_its_stop_price_and_follows_the_lowest_ask():
    paper = PaperBroker(MemoryVenueStore(), PaperSettings(slippage=Decimal("0.01")))
    await paper.submit(order("trail", order_type="trailing_stop", trail_distance=Decimal("0.20"),
                             stop_price=Decimal("86.90"), time_in_force="GTC"))
    # The first trigger is the stop price (86.90), not ask + 0.20 = 86.92; the ask falls to 86.50
    # (trigger 86.70); 86.69 stays below it; 86.70 reaches it: a market buy at ask + slippage.
    await feed(paper, [(0, "86.70", "86.72"), (1, "86.48", "86.50"), (2, "86.67", "86.69")])
    assert await drain(paper) == []
    assert paper._working_by_cid["trail"].trail_stop == Decimal("86.70")
    await feed(paper, [(3, "86.68", "86.70")])
    assert [(e.client_order_id, e.fill.price) for e in await drain(paper)] == [("trail", Decimal("86.71"))]


async def test_a_trailing_stop_without_a_distance_is_refused():
    paper = PaperBroker(MemoryVenueStore())
    with pytest.raises(BrokerRejected, match="trail distance"):
        await paper.submit(order("trail", side="sell", order_type="trailing_stop", time_in_force="GTC"))
