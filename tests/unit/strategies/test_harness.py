"""The harness turns user-code failures and malformed answers into "no order"."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import Decimal

import pytest

from services.strategies.params import BaseParams, StrategyConfigError
from services.strategies.sdk import EntrySignal, ExitSignal, Strategy, StrategyHarness


@dataclass(frozen=True, slots=True, kw_only=True)
class _Params(BaseParams):
    stop_loss_pips: Decimal = Decimal("10")
    take_profit_pips: Decimal = Decimal("10")
    max_hold_minutes: int = 60


class _Scripted(Strategy):
    """Answers whatever the test puts in `answer`; raises it when it is an exception."""

    slug = "scripted"
    Params = _Params
    timeframes = ("M1",)
    answer: object = None

    def decide_entry(self, view):
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer

    def exit_signal(self, view, position):
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


@pytest.fixture
def harness():
    return StrategyHarness(_Scripted(_Params()), logging.getLogger("test.harness"))


@pytest.fixture
def view(build):
    return build.view(M1=build.bars([150.0, 150.0]))


def test_raising_strategy_yields_no_order_and_is_counted(harness, view, build, caplog):
    harness.strategy.answer = ZeroDivisionError("division by zero")
    with caplog.at_level(logging.ERROR):
        assert harness.entry(view) is None
        assert harness.exit(view, build.position("1000", "150.0", opened=view.now)) is None
    assert harness.errors == 2
    assert harness.last_error == "decide_exit: ZeroDivisionError: division by zero"
    assert "strategy scripted failed in decide_entry" in caplog.text


def test_good_signal_passes_through(harness, view):
    signal = EntrySignal(side="buy", quantity=Decimal("1000"), reason="test")
    harness.strategy.answer = signal
    assert harness.entry(view) is signal
    assert harness.errors == 0


@pytest.mark.parametrize(
    "bad",
    [
        EntrySignal(side="hold", quantity=Decimal("1000"), reason="bad side"),  # type: ignore[arg-type]
        EntrySignal(side="buy", quantity=Decimal("0"), reason="zero"),
        EntrySignal(side="sell", quantity=Decimal("-5"), reason="negative"),
        EntrySignal(side="buy", quantity=1000, reason="float-ish"),  # type: ignore[arg-type]
        EntrySignal(side="buy", quantity=Decimal("1000"), reason="bad limit", limit_price=Decimal("0")),
        "buy",
    ],
)
def test_invalid_entry_is_a_strategy_error(harness, view, bad):
    harness.strategy.answer = bad
    assert harness.entry(view) is None
    assert harness.errors == 1
    assert harness.last_error.startswith("decide_entry: InvalidSignal")


@pytest.mark.parametrize(
    "bad",
    [
        ExitSignal(reason="x", rule="panic"),  # type: ignore[arg-type]
        ExitSignal(reason="x", rule="signal", quantity=Decimal("0")),
        ExitSignal(reason="x", rule="signal", quantity=Decimal("5000")),  # more than the position
    ],
)
def test_invalid_exit_is_a_strategy_error(harness, view, build, bad):
    harness.strategy.answer = bad
    assert harness.exit(view, build.position("1000", "150.0", opened=view.now)) is None
    assert harness.errors == 1


def test_exit_signal_after_protective_exits(harness, view, build):
    harness.strategy.answer = ExitSignal(reason="mine", rule="signal")
    assert harness.exit(view, build.position("1000", "150.0", opened=view.now)).rule == "signal"
    # 20 pips under water: the stop-loss wins over the strategy's own signal.
    assert harness.exit(view, build.position("1000", "150.2", opened=view.now)).rule == "stop_loss"


def test_inactive_strategy_is_not_asked(harness, view):
    class _Closed(_Scripted):
        def is_active(self, now):
            return False

    closed = StrategyHarness(_Closed(_Params()), logging.getLogger("test"))
    closed.strategy.answer = EntrySignal(side="buy", quantity=Decimal("1"), reason="x")
    assert closed.entry(view) is None
    assert closed.errors == 0


def test_wrong_interface_version_is_refused():
    class _Future(_Scripted):
        interface_version = 2

    with pytest.raises(StrategyConfigError, match="interface 2"):
        StrategyHarness(_Future(_Params()), logging.getLogger("test"))


def test_view_helpers(build):
    bars = build.bars([150.0, 150.1])
    view = build.view(M1=bars, factors={"M1": {"rsi_14": 55.0, "atr_14": float("nan")}})
    assert view.closes("M1").tolist() == [150.0, 150.1]
    assert view.closes("M1", "bid").tolist() == pytest.approx([149.9985, 150.0985])
    assert view.last("M1") is bars[-1] and view.last("M5") is None
    assert view.closes("M5").size == 0
    assert view.factor("M1", "rsi_14") == 55.0
    assert view.factor("M1", "atr_14") is None and view.factor("M5", "rsi_14") is None
    assert build.position("-5", "1").side == "short" and build.position("5", "1").side == "long"
