"""The analysis plane in a whole mesh of real processes, fed by push (MarketData.PublishTicks).

One ma_cross pair (ENTRY and EXIT workers) follows the analysis plane's settings and records
every decision there. The scenario, driven once for the module:

1. a crafted path of one-minute candles on which ma_cross with fast 3 / slow 8 buys at
   candle 17 and with fast 5 / slow 8 only at candle 19 (the strategy's own rule says so,
   checked first); fast_period is set to 5 through analysis after candle 16, so the ENTRY
   worker's next decision holds where it would have bought;
2. ma_cross and a manual strategy are frozen; two manual strategies (one frozen, one not)
   lose the same three round trips, sent by hand through Order.Submit;
3. eight hours of real USD/JPY bars as ticks, so ma_cross trades many times.

Then: the signals agree with the intents the order plane received; performance equals a
recomputation from Order.WatchFills with pandas; the policy changed the unfrozen manual
strategy and neither frozen one; a value outside the bounds is refused with a sentence.
"""

from __future__ import annotations

import asyncio
import csv
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import asyncpg
import grpc
import numpy as np
import pandas as pd
import pytest

from quantmesh.analysis.v1 import analysis_pb2, analysis_pb2_grpc
from quantmesh.common.v1 import common_pb2
from quantmesh.control.v1 import control_pb2, control_pb2_grpc
from quantmesh.market_data.v1 import market_data_pb2, market_data_pb2_grpc
from quantmesh.order.v1 import order_pb2, order_pb2_grpc
from quantmesh.strategy.v1 import strategy_pb2, strategy_pb2_grpc
from services.backtest.data import ticks_from
from services.common.db import create_database
from services.market_data.server import tick_to_proto
from services.strategies.registry import load_strategy
from services.strategies.sdk import Bar, MarketView, Ohlc
from tests.support.data import bar_spec
from tests.support.mesh import Mesh, StrategyPair, all_orders
from tests.support.postgres import PROJECT_ROOT
from tests.support.streams import until_quiet

START_PARAMS = {"fast_period": "3", "slow_period": "8", "stop_loss_pips": "3", "take_profit_pips": "4",
                "max_hold_minutes": "7", "warmup_bars": "20"}
#: Mid closes of the crafted candles, as offsets from the real data's first price.
PATH = [0.0] * 12 + [-0.1, -0.2, -0.3, -0.2, -0.1, 0.0, 0.1, 0.2, 0.3]
CHANGE_AFTER, OLD_BUY, NEW_BUY = 16, 17, 19
REAL = (datetime(2013, 2, 5, 0, tzinfo=timezone.utc), datetime(2013, 2, 5, 8, tzinfo=timezone.utc))
T0 = REAL[0] - timedelta(minutes=len(PATH) + 30)
POLICY_ENV = {"QUANTMESH_ANALYSIS_MIN_TRADES": "3", "QUANTMESH_ANALYSIS_ROLLING_TRADES": "10",
              "QUANTMESH_ANALYSIS_MAX_MULTIPLIER": "0.9", "QUANTMESH_ANALYSIS_OFF_MINUTES": "100000"}


def entry_actions(params: dict[str, str], closes: list[float]) -> list[str]:
    """What ma_cross's own rule says at each candle of `closes` (the oracle for step 1)."""
    strategy, bars = load_strategy("ma_cross", params), []
    out = []
    for k, close in enumerate(closes):
        price = Ohlc(open=close, high=close, low=close, close=close)
        bars.append(Bar(instrument="USD_JPY", timeframe="M1", start=T0 + timedelta(minutes=k),
                        end=T0 + timedelta(minutes=k + 1), bid=price, ask=price, mid=price, tick_count=1, volume=0))
        signal = strategy.decide_entry(MarketView(instrument="USD_JPY", now=bars[-1].end, bars={"M1": tuple(bars)}))
        out.append(signal.side if signal else "hold")
    return out


def quote(minute: int, mid: Decimal, second: int = 30) -> market_data_pb2.Tick:
    time = T0 + timedelta(minutes=minute, seconds=second)
    tick = market_data_pb2.Tick(instrument="USD_JPY", bid=str(mid - Decimal("0.005")), ask=str(mid + Decimal("0.005")))
    tick.time.FromDatetime(time)
    return tick


@dataclass
class Run:
    mesh: Mesh
    address: str
    database_url: str
    base: Decimal
    observed: dict = field(default_factory=dict)


async def signals_of(stub, **filters) -> list:
    out, token = [], ""
    while True:
        reply = await stub.ListSignals(analysis_pb2.ListSignalsRequest(limit=1000, page_token=token, **filters))
        out.extend(reply.signals)
        token = reply.next_page_token
        if not token:
            return out


async def wait_for(probe, what: str, timeout: float = 60.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        found = await probe()
        if found:
            return found
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


async def decided(stub, role: int, minute_end: datetime):
    """The ENTRY (or EXIT) worker's signals of the decision at the end of candle `minute_end`."""
    seen = []

    async def probe():
        seen[:] = [s for s in await signals_of(stub, strategy_slug="ma_cross") if s.role == role]
        found = [s for s in seen if s.decision_time.ToDatetime(tzinfo=timezone.utc) == minute_end]
        return found or None
    try:
        return await wait_for(probe, f"a decision at {minute_end}")
    except AssertionError as exc:
        times = sorted(s.decision_time.ToDatetime(tzinfo=timezone.utc).isoformat() for s in seen)
        every = await signals_of(stub)
        raise AssertionError(f"{exc}; {len(seen)} signals of that worker, the latest at {times[-3:]}; "
                             f"{len(every)} in all: {[(s.strategy_slug, s.role, s.decision_time.ToJsonString()) for s in every[:5]]}") from None


async def workers_running(mesh: Mesh) -> None:
    """Both workers have warmed up and follow the streams (health answers before that)."""
    for role in ("entry", "exit"):
        async with grpc.aio.insecure_channel(mesh.worker_address("ma_cross", role)) as channel:
            stub = strategy_pb2_grpc.StrategyStub(channel)

            async def running():
                reply = await stub.GetStatus(strategy_pb2.GetStatusRequest())
                return reply.state == strategy_pb2.WORKER_STATE_RUNNING
            await wait_for(running, f"the {role} worker to run")


async def both_decided(workers, end: datetime) -> None:
    """Both workers' last decision is the one on the candle that ended at `end`."""
    async def probe():
        for stub in workers:
            status = await stub.GetStatus(strategy_pb2.GetStatusRequest())
            if status.last_decision.time.ToDatetime(tzinfo=timezone.utc) < end:
                return False
        return True
    await wait_for(probe, f"both workers to decide on the candle ending {end}", timeout=30)


def candle_end(k: int) -> datetime:
    return T0 + timedelta(minutes=k + 1)


async def round_trip(order, market, slug: str, when: datetime, base: Decimal, n: int) -> datetime:
    """Buys then sells 1000 of `slug` by hand, each filled at the quote pushed after it: a loss of
    the spread and 2 pips (plus commission). Returns the time of the last quote pushed."""
    for role, side, move, reduce in ((common_pb2.STRATEGY_ROLE_ENTRY, common_pb2.SIDE_BUY, "0", False),
                                     (common_pb2.STRATEGY_ROLE_EXIT, common_pb2.SIDE_SELL, "-0.02", True)):
        intent = order_pb2.OrderIntent(client_order_id=f"{slug}-{n}-{role}", strategy_slug=slug, role=role,
                                       instrument="USD_JPY", side=side, quantity="1000",
                                       order_type=order_pb2.ORDER_TYPE_MARKET, reduce_only=reduce)
        reply = await order.Submit(order_pb2.SubmitRequest(intent=intent))
        assert reply.order.state != order_pb2.ORDER_STATE_REJECTED, reply.order.reason
        when += timedelta(seconds=1)
        tick = market_data_pb2.Tick(instrument="USD_JPY", bid=str(base + Decimal(move) - Decimal("0.005")),
                                    ask=str(base + Decimal(move) + Decimal("0.005")))
        tick.time.FromDatetime(when)
        await market.PublishTicks(market_data_pb2.PublishTicksRequest(ticks=[tick]))

        async def filled():
            reply = await order.GetOrder(order_pb2.GetOrderRequest(client_order_id=intent.client_order_id))
            return reply.order.state == order_pb2.ORDER_STATE_FILLED
        await wait_for(filled, f"{intent.client_order_id} to fill at the quote after it")
    return when


async def every_fill(order) -> list:
    """Order.WatchFills from the first fill until the stream has been quiet for two seconds."""
    return await until_quiet(order.WatchFills(order_pb2.WatchFillsRequest(resume_after_seq=0)))


async def drive(run: Run) -> None:
    channel = grpc.aio.insecure_channel(run.address)
    market_channel = grpc.aio.insecure_channel(run.mesh.address("market_data"))
    order_channel = grpc.aio.insecure_channel(run.mesh.address("order"))
    analysis = analysis_pb2_grpc.AnalysisStub(channel)
    market = market_data_pb2_grpc.MarketDataStub(market_channel)
    order = order_pb2_grpc.OrderStub(order_channel)
    seen = run.observed
    worker_channels: dict[str, grpc.aio.Channel] = {}
    try:
        await workers_running(run.mesh)
        # 1. the crafted path up to candle 16, the change, then candles 17 to 19.
        mids = [run.base + Decimal(str(offset)) for offset in PATH]
        await market.PublishTicks(market_data_pb2.PublishTicksRequest(
            ticks=[quote(k, mids[k]) for k in range(CHANGE_AFTER + 1)] + [quote(CHANGE_AFTER + 1, mids[CHANGE_AFTER + 1], 1)]))
        seen["before"] = await decided(analysis, common_pb2.STRATEGY_ROLE_ENTRY, candle_end(CHANGE_AFTER))
        reply = await analysis.SetStrategyParams(analysis_pb2.SetStrategyParamsRequest(
            strategy_slug="ma_cross", params={"fast_period": "5"}, reason="e2e: a slower fast average"))
        seen["version"] = reply.settings.version
        await asyncio.sleep(1.0)  # the settings stream carries it to both workers within milliseconds
        await market.PublishTicks(market_data_pb2.PublishTicksRequest(
            ticks=[quote(k, mids[k]) for k in range(CHANGE_AFTER + 1, len(PATH))] + [quote(len(PATH), mids[-1], 1)]))
        for k in (OLD_BUY, NEW_BUY):
            seen[k] = await decided(analysis, common_pb2.STRATEGY_ROLE_ENTRY, candle_end(k))
        # 2. freezes, and the manual strategies' losing round trips.
        for slug in ("ma_cross", "manual_frozen"):
            await analysis.FreezeStrategy(analysis_pb2.FreezeStrategyRequest(strategy_slug=slug, frozen=True,
                                                                             reason="e2e: hold still"))
        seen["frozen"] = {s.strategy_slug: s for s in (await analysis.GetStrategySettings(
            analysis_pb2.GetStrategySettingsRequest())).settings}
        when = T0 + timedelta(minutes=len(PATH) + 2)
        for n in range(3):
            for slug in ("manual_frozen", "manual_probe"):
                when = await round_trip(order, market, slug, when, run.base, n)
        # 3. eight hours of real bars, in lock step: a minute's ticks, then both workers' decisions on
        # the candle they closed, so each intent reaches the order plane before the next quote.
        minutes: dict[datetime, list] = {}
        async for tick in ticks_from(bar_spec(), "USD_JPY", start=REAL[0], end=REAL[1]):
            minutes.setdefault(tick.time.replace(second=0, microsecond=0), []).append(tick_to_proto(tick))
        closing = market_data_pb2.Tick(instrument="USD_JPY", bid=minutes[max(minutes)][-1].bid,
                                       ask=minutes[max(minutes)][-1].ask)
        closing.time.FromDatetime(REAL[1] + timedelta(seconds=1))
        minutes[REAL[1]] = [closing]
        workers = [strategy_pb2_grpc.StrategyStub(worker_channels.setdefault(role, grpc.aio.insecure_channel(
            run.mesh.worker_address("ma_cross", role)))) for role in ("entry", "exit")]
        previous = None
        for minute in sorted(minutes):
            await market.PublishTicks(market_data_pb2.PublishTicksRequest(ticks=minutes[minute]))
            if previous is not None:
                await both_decided(workers, previous + timedelta(minutes=1))
            previous = minute
        await decided(analysis, common_pb2.STRATEGY_ROLE_ENTRY, REAL[1])
        await decided(analysis, common_pb2.STRATEGY_ROLE_EXIT, REAL[1])

        # Quiet: analysis has every fill the order plane streamed, and every signal arrived.
        seen["fills"] = await every_fill(order)

        async def settled():
            performance = await analysis.GetPerformance(analysis_pb2.GetPerformanceRequest(include_trades=True))
            return performance if performance.last_fill_seq == seen["fills"][-1].seq else None
        seen["performance"] = await wait_for(settled, "analysis to apply every fill")
        seen["orders"] = await all_orders(order)
        seen["signals"] = await signals_of(analysis)
        seen["allocations"] = {r.strategy_slug: r for r in (await analysis.GetAllocations(
            analysis_pb2.GetAllocationsRequest())).recommendations}
        seen["settings"] = {s.strategy_slug: s for s in (await analysis.GetStrategySettings(
            analysis_pb2.GetStrategySettingsRequest())).settings}
        seen["patterns"] = (await analysis.GetPatternBook(analysis_pb2.GetPatternBookRequest())).buckets
        seen["status"] = await workers[0].GetStatus(strategy_pb2.GetStatusRequest())
        seen["ranges"] = (await analysis.GetRangeMetrics(analysis_pb2.GetRangeMetricsRequest())).metrics
        async with grpc.aio.insecure_channel(run.mesh.address("control")) as control_channel:
            control = control_pb2_grpc.ControlStub(control_channel)

            async def audited():
                entries = (await control.ListAudit(control_pb2.ListAuditRequest(plane="analysis", limit=100))).entries
                return entries if len(entries) >= 4 else None
            seen["audit"] = await wait_for(audited, "the analysis plane's audit records at control")
        conn = await asyncpg.connect(run.database_url)
        try:
            seen["table"] = await conn.fetch("SELECT action, client_order_id, params_version, strategy_slug "
                                             "FROM analysis.signals")
        finally:
            await conn.close()
    finally:
        for item in (channel, market_channel, order_channel, *worker_channels.values()):
            await item.close()


@pytest.fixture(scope="module")
async def run(postgres_admin_url, tmp_path_factory):
    database_url = await create_database(postgres_admin_url)
    log_dir = tmp_path_factory.mktemp("analysis-mesh")
    mesh = Mesh(database_url=database_url, log_dir=log_dir, feed="push", speed="max",
                strategies=[StrategyPair(slug="ma_cross", params=START_PARAMS)], analysis=True,
                extra_env={"QUANTMESH_ANALYSIS_WAIT_SECONDS": "20"},
                plane_env={"market_data": {"QUANTMESH_STREAM_QUEUE": "1000000"},
                           "order": {"QUANTMESH_RISK_MAX_ORDERS_PER_SECOND": "1000000",
                                     "QUANTMESH_PAPER_COMMISSION_RATE": "0.00002"},
                           "analysis": POLICY_ENV})
    try:
        mesh.start()
        first = await anext(ticks_from(bar_spec(), "USD_JPY", start=REAL[0]))
        result = Run(mesh=mesh, address=mesh.address("analysis"), database_url=database_url,
                     base=((first.bid + first.ask) / 2).quantize(Decimal("0.001")))
        await drive(result)
        yield result
    finally:
        mesh.stop()


def test_a_parameter_change_reaches_the_running_worker_and_changes_its_next_decision(run):
    closes = [float(run.base) + offset for offset in PATH]
    before, after = entry_actions(START_PARAMS, closes), entry_actions({**START_PARAMS, "fast_period": "5"}, closes)
    assert (before[OLD_BUY], after[OLD_BUY], after[NEW_BUY]) == ("buy", "hold", "buy"), "the crafted path"
    assert all(s.params_version == 0 for s in run.observed["before"])
    version = run.observed["version"]
    old, new = run.observed[OLD_BUY], run.observed[NEW_BUY]
    assert [(s.action, s.params_version) for s in old] == [(analysis_pb2.SIGNAL_ACTION_HOLD, version)]
    assert [(s.action, s.params_version) for s in new] == [(analysis_pb2.SIGNAL_ACTION_ENTRY, version)]
    assert "SMA(5) crossed above SMA(8)" in new[0].reason
    assert new[0].indicators["sma_fast"] > new[0].indicators["sma_slow"]
    assert len(new[0].trace_id) == 32 and new[0].client_order_id.startswith("ma_cross.e.USD_JPY.")
    status = run.observed["status"]  # the ENTRY worker says what it runs on, without a restart
    assert (status.params_version, status.params["fast_period"], status.allocation) == (version, "5", "x1")
    assert status.settings_problem == ""


async def test_values_outside_the_bounds_are_refused_with_a_sentence(run):
    """rsi_threshold runs no worker here: its own typed params still say what may be set."""
    async with grpc.aio.insecure_channel(run.address) as channel:
        stub = analysis_pb2_grpc.AnalysisStub(channel)
        for params, sentence in [({"period": "80"}, "param 'period' of rsi_threshold must be between 2 and 50"),
                                 ({"oversold": "50"}, "param 'oversold' of rsi_threshold must be between 5.0 and 45.0"),
                                 ({"instrument": "EUR_USD"}, "param 'instrument' of rsi_threshold cannot be changed"),
                                 ({"exit_level": "60", "overbought": "56"}, "params must satisfy 0 < 'oversold'")]:
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await stub.SetStrategyParams(analysis_pb2.SetStrategyParamsRequest(
                    strategy_slug="rsi_threshold", params=params, reason="e2e: out of bounds"))
            assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert sentence in refused.value.details()
        with pytest.raises(grpc.aio.AioRpcError) as frozen:
            await stub.SetStrategyParams(analysis_pb2.SetStrategyParamsRequest(
                strategy_slug="ma_cross", params={"fast_period": "4"}, reason="e2e: while frozen"))
        assert frozen.value.code() == grpc.StatusCode.FAILED_PRECONDITION and "is frozen" in frozen.value.details()
        settings = (await stub.GetStrategySettings(analysis_pb2.GetStrategySettingsRequest(
            strategy_slug="rsi_threshold"))).settings[0]
        assert settings.version == 0 and not settings.params  # nothing changed


def intents_of(orders, slug: str) -> dict[str, int]:
    return {o.intent.client_order_id: o.state for o in orders if o.intent.strategy_slug == slug}


def test_the_signals_table_agrees_with_the_intents_the_order_plane_received(run):
    signals, orders, table = run.observed["signals"], run.observed["orders"], run.observed["table"]
    mine = [s for s in signals if s.strategy_slug == "ma_cross"]
    sent = {s.client_order_id for s in mine if s.action in (analysis_pb2.SIGNAL_ACTION_ENTRY,
                                                            analysis_pb2.SIGNAL_ACTION_EXIT)}
    received = intents_of(orders, "ma_cross")
    assert len(sent) >= 20 and sent == set(received)
    refused = {s.client_order_id for s in mine if s.action == analysis_pb2.SIGNAL_ACTION_REFUSED}
    assert refused == {c for c, state in received.items() if state == order_pb2.ORDER_STATE_REJECTED}
    # The table itself says the same (and holds every signal ListSignals returned, once).
    assert len(table) == len(signals) == len({s.signal_id for s in signals})
    assert {r["client_order_id"] for r in table if r["strategy_slug"] == "ma_cross" and r["action"] in ("entry", "exit")} \
        == set(received)
    # Every decision is there: one per closed candle and worker (holds and skips included), after warm-up.
    entry_times = [s.decision_time.ToDatetime() for s in mine if s.role == common_pb2.STRATEGY_ROLE_ENTRY
                   and s.action != analysis_pb2.SIGNAL_ACTION_REFUSED]
    assert len(entry_times) == len(set(entry_times)) and len(entry_times) > 200
    actions = {analysis_pb2.SignalAction.Name(s.action) for s in mine}
    assert {"SIGNAL_ACTION_ENTRY", "SIGNAL_ACTION_EXIT", "SIGNAL_ACTION_HOLD"} <= actions


def recomputed(fills) -> pd.DataFrame:
    """Round trips from the order plane's fills, computed here another way: cash flows grouped by
    the running position's return to flat (no reversals in this run: every entry is a fresh position)."""
    rows = pd.DataFrame([{"seq": f.seq, "slug": f.fill.strategy_slug, "signed": Decimal(f.fill.quantity) *
                          (1 if f.fill.side == common_pb2.SIDE_BUY else -1), "price": Decimal(f.fill.price),
                          "commission": Decimal(f.fill.commission or "0")} for f in fills]).sort_values("seq")
    rows["cash"] = [-s * p - c for s, p, c in zip(rows["signed"], rows["price"], rows["commission"])]
    out = []
    for slug, group in rows.groupby("slug"):
        position, cash = Decimal(0), Decimal(0)
        for signed, flow in zip(group["signed"], group["cash"]):
            assert position == 0 or (position > 0) == (position + signed > 0) or position + signed == 0, "a reversal"
            position += signed
            cash += flow
            if position == 0:
                out.append({"slug": slug, "net": cash})
                cash = Decimal(0)
    return pd.DataFrame(out)


def test_the_analysis_figures_equal_a_recomputation_from_the_fills(run):
    trades = recomputed(run.observed["fills"])
    by_slug = {p.strategy_slug: p for p in run.observed["performance"].performance}
    assert set(by_slug) == set(trades["slug"])
    for slug, group in trades.groupby("slug"):
        nets = group["net"].tolist()
        got = by_slug[slug]
        assert [Decimal(t.net_pnl) for t in got.trades] == nets
        overall, values = got.overall, np.array([float(n) for n in nets])
        assert overall.trades == len(nets) and Decimal(overall.net_pnl) == sum(nets, Decimal(0))
        assert overall.wins == (values > 0).sum() and overall.losses == (values < 0).sum()
        assert overall.win_rate == pytest.approx((values > 0).mean())
        assert overall.expectancy == pytest.approx(values.mean())
        if (values < 0).any() and (values > 0).any():
            assert overall.profit_factor == pytest.approx(values[values > 0].sum() / -values[values < 0].sum())
        if len(values) > 1 and values.std() > 0:
            assert overall.sharpe == pytest.approx(values.mean() / values.std(ddof=1))
        equity = np.concatenate(([0.0], np.cumsum(values)))
        assert float(overall.max_drawdown) == pytest.approx((np.maximum.accumulate(equity) - equity).max())
        window = values[-10:]
        assert got.rolling.trades == len(window) and got.rolling.expectancy == pytest.approx(window.mean())
    assert by_slug["ma_cross"].overall.trades >= 10
    assert by_slug["manual_probe"].overall.trades == 3 and by_slug["manual_probe"].overall.losses == 3


def test_a_frozen_strategy_ignores_recommendations(run):
    allocations, settings, frozen_at = run.observed["allocations"], run.observed["settings"], run.observed["frozen"]
    probe, twin = allocations["manual_probe"], allocations["manual_frozen"]
    # The same three losses: the same recommendation (entries off) for both ...
    assert not probe.recommended.entries_enabled and not twin.recommended.entries_enabled
    # ... applied to the strategy that is not frozen, ignored by the one that is.
    assert not settings["manual_probe"].allocation.entries_enabled and settings["manual_probe"].allocation_version > 0
    assert settings["manual_frozen"].frozen and settings["manual_frozen"].allocation.entries_enabled
    assert settings["manual_frozen"].version == frozen_at["manual_frozen"].version
    # ma_cross traded on, frozen: its recommendation (at most x0.9 by the limits) was never applied,
    # and every decision after the freeze used the allocation it had.
    cross = allocations["ma_cross"]
    assert cross.frozen and (cross.recommended.size_multiplier != "1" or not cross.recommended.entries_enabled)
    assert settings["ma_cross"].version == frozen_at["ma_cross"].version
    assert settings["ma_cross"].allocation == frozen_at["ma_cross"].allocation
    late = [s for s in run.observed["signals"] if s.strategy_slug == "ma_cross" and
            s.decision_time.ToDatetime(tzinfo=timezone.utc) >= REAL[0]]
    assert late and {(s.allocation_version, s.size_multiplier) for s in late} == \
        {(frozen_at["ma_cross"].allocation_version, frozen_at["ma_cross"].allocation.size_multiplier or "1")}
    events = {(e.event, e.slug) for e in run.observed["audit"]}
    assert {("params_change", "ma_cross"), ("strategy_freeze", "ma_cross"), ("strategy_freeze", "manual_frozen"),
            ("allocation_change", "manual_probe")} <= events
    assert ("allocation_change", "manual_frozen") not in events


def test_pattern_book_and_range_metrics_come_from_the_same_run(run):
    buckets = [b for b in run.observed["patterns"] if b.strategy_slug == "ma_cross"]
    entries = [s for s in run.observed["signals"] if s.strategy_slug == "ma_cross"
               and s.action == analysis_pb2.SIGNAL_ACTION_ENTRY]
    assert sum(b.entries for b in buckets) == len(entries)
    closed = {t.entry_client_order_id: Decimal(t.net_pnl) for p in run.observed["performance"].performance
              for t in p.trades if p.strategy_slug == "ma_cross"}
    assert sum(b.closed for b in buckets) == sum(1 for e in entries if e.client_order_id in closed)
    assert sum(Decimal(b.net_pnl) for b in buckets) == sum(closed[e.client_order_id] for e in entries
                                                             if e.client_order_id in closed)
    assert any(b.regime != analysis_pb2.VOLATILITY_REGIME_UNSPECIFIED for b in buckets)
    (usd_jpy,) = run.observed["ranges"]
    assert usd_jpy.instrument == "USD_JPY" and usd_jpy.atr > 0 and usd_jpy.candles > 200
    assert usd_jpy.as_of.ToDatetime(tzinfo=timezone.utc) == REAL[1]


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "services.cli", "analysis", *args], cwd=PROJECT_ROOT,
                          capture_output=True, text=True, timeout=120)


def test_the_report_prints_the_figures_and_writes_trades_and_plots(run, tmp_path):
    result = cli("report", "--address", run.address, "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    performance = {p.strategy_slug: p for p in run.observed["performance"].performance}
    cross = performance["ma_cross"].overall
    overall = next(line.split() for line in result.stdout.splitlines() if line.split()[:3] == ["ma_cross", "USD_JPY",
                                                                                                  "overall"])
    assert overall[3:] == [str(cross.trades), f"{cross.win_rate:.0%}", f"{cross.expectancy:.2f}",
                           f"{cross.profit_factor:.2f}", f"{cross.sharpe:.2f}", cross.net_pnl, cross.max_drawdown]
    for title in ("Allocation (policy: apply)", "Settings", "Range metrics", "Pattern book"):
        assert title in result.stdout
    with (tmp_path / "trades.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [Decimal(r["net_pnl"]) for r in rows if r["strategy"] == "ma_cross"] == \
        [Decimal(t.net_pnl) for t in performance["ma_cross"].trades]
    for plot in ("equity.png", "patterns.png"):
        assert (tmp_path / plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    refused = cli("set", "rsi_threshold", "period=80", "--reason", "cli", "--address", run.address)
    assert refused.returncode == 1 and "must be between 2 and 50" in refused.stderr
