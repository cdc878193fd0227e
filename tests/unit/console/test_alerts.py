"""Alerts: the throttle against a loopback webhook receiver, the two chat formats, and the rules."""

from __future__ import annotations

from decimal import Decimal

import pytest
from prometheus_client import CollectorRegistry

from services.common.config import ConfigError, Env
from services.console.alerts import AlertRules, AlertSettings, Difference, WebhookNotifier
from tests.console.harness import WebhookReceiver


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def receiver():
    running = await WebhookReceiver().start()
    yield running
    await running.stop()


def notifier_for(receiver: WebhookReceiver, clock: Clock, **settings) -> WebhookNotifier:
    return WebhookNotifier(AlertSettings(webhook_url=receiver.url, window_seconds=300, **settings),
                           CollectorRegistry(), monotonic=clock)


async def test_one_message_per_cause_per_window_and_the_next_one_says_how_many_were_held(receiver):
    clock = Clock()
    notifier = notifier_for(receiver, clock)
    sent = [notifier.notify("lock:on", f"kill switch on #{n}") for n in range(4)]
    sent.append(notifier.notify("refusals", "5 orders refused"))  # another cause has its own window
    clock.now += 299.0
    sent.append(notifier.notify("lock:on", "still inside the window"))
    await notifier.drain()
    assert sent == [True, False, False, False, True, False]
    assert receiver.texts() == ["quantmesh: kill switch on #0", "quantmesh: 5 orders refused"]
    clock.now += 1.0  # the window is over
    assert notifier.notify("lock:on", "kill switch on again")
    await notifier.close()
    assert receiver.texts()[-1] == "quantmesh: kill switch on again (4 more like this held back in the last 300 s)"
    assert notifier.held.labels(kind="lock")._value.get() == 4
    assert notifier.sent.labels(kind="lock")._value.get() == 2


async def test_slack_and_telegram_bodies(receiver):
    clock = Clock()
    slack = notifier_for(receiver, clock)
    telegram = notifier_for(receiver, clock, format="telegram", telegram_chat_id="-100123")
    slack.notify("plane_down:order", "order is DOWN")
    telegram.notify("plane_down:order", "order is DOWN")
    await slack.close()
    await telegram.close()
    assert receiver.messages == [
        {"text": "quantmesh: order is DOWN"},
        {"chat_id": "-100123", "text": "quantmesh: order is DOWN", "disable_web_page_preview": True}]


async def test_a_webhook_that_refuses_is_counted_and_never_raises(receiver, caplog):
    receiver.status = 500
    notifier = notifier_for(receiver, Clock())
    assert notifier.notify("lock:on", "kill switch on")
    await notifier.close()
    assert notifier.failed.labels(kind="lock")._value.get() == 1
    assert notifier.sent.labels(kind="lock")._value.get() == 0
    assert any("did not take" in r.getMessage() for r in caplog.records)
    assert all(receiver.url not in r.getMessage() for r in caplog.records), "the URL carries the hook's secret"


def test_without_a_webhook_alerts_are_only_logged(caplog):
    notifier = WebhookNotifier(AlertSettings(), CollectorRegistry())
    assert notifier.notify("lock:on", "kill switch on")
    assert "alert: kill switch on" in caplog.text


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def notify(self, cause: str, text: str) -> bool:
        self.calls.append((cause, text))
        return True


def rules(clock: Clock | None = None, **settings) -> tuple[AlertRules, Recorder]:
    recorder = Recorder()
    return AlertRules(recorder, AlertSettings(**settings), monotonic=clock or Clock()), recorder


def test_lock_changes_alert_but_the_first_snapshot_only_when_locked():
    alerts, sent = rules()
    alerts.flags(global_lock=False, version=3)
    alerts.flags(global_lock=False, version=4)
    alerts.flags(global_lock=True, version=5)
    alerts.flags(global_lock=True, version=6)
    alerts.flags(global_lock=False, version=7)
    assert [cause for cause, _ in sent.calls] == ["lock:on", "lock:off"]
    assert "HALTED" in sent.calls[0][1] and "version 5" in sent.calls[0][1]
    restarted, sent_after_restart = rules()
    restarted.flags(global_lock=True, version=9)  # a console started while the switch is on says so
    assert [cause for cause, _ in sent_after_restart.calls] == ["lock:on"]


def test_a_burst_of_refusals_within_the_window_alerts_with_the_rules():
    clock = Clock()
    alerts, sent = rules(clock, refusal_burst=3, refusal_window_seconds=60)
    alerts.order_refused(rule="risk.max_order_quantity", order_id="ord-1", strategy="ma_cross")
    clock.now += 61  # the first falls out of the window
    alerts.order_refused(rule="guard.halted", order_id="ord-2", strategy="ma_cross")
    alerts.order_refused(rule="guard.halted", order_id="ord-3", strategy="manual")
    assert sent.calls == []
    alerts.order_refused(rule="", order_id="ord-4", strategy="manual")
    assert sent.calls == [("refusals", "3 orders refused in the last 60 s (guard.halted x2, venue x1); "
                                       "latest ord-4 of manual")]


def test_a_plane_going_down_and_coming_back():
    alerts, sent = rules()
    alerts.plane_health("order", True, "SERVING")
    alerts.plane_health("order", True, "SERVING")
    alerts.plane_health("order", False, "DOWN (UNAVAILABLE)")
    alerts.plane_health("order", False, "DOWN (UNAVAILABLE)")
    alerts.plane_health("order", True, "SERVING")
    alerts.plane_health("control", False, "NOT_SERVING")  # down when first seen: said at once
    assert sent.calls == [("plane_down:order", "order is DOWN: DOWN (UNAVAILABLE)"),
                          ("plane_up:order", "order is SERVING again"),
                          ("plane_down:control", "control is DOWN: NOT_SERVING")]


def test_drawdown_levels_alert_when_crossed_upwards_and_re_arm_below():
    alerts, sent = rules(drawdown_levels=(Decimal("0.05"), Decimal("0.1")))
    for fraction in ("0.01", "0.06", "0.07", "0.12", "0.04", "0.051"):
        alerts.drawdown(account="paper", fraction=Decimal(fraction))
    assert [cause for cause, _ in sent.calls] == ["drawdown:0.05", "drawdown:0.1", "drawdown:0.05"]
    assert sent.calls[1][1] == "drawdown of account paper reached 12.00% (level 10%)"


def test_reconciliation_differences_are_one_alert():
    alerts, sent = rules()
    alerts.reconciliation([])
    alerts.reconciliation([Difference("paper", "USD_JPY", "1000", "0")])
    assert sent.calls == [("reconciliation", "the ledger and the broker disagree on 1 position(s): "
                                             "paper USD_JPY: ledger 1000, broker 0")]


@pytest.mark.parametrize(("env", "sentence"), [
    ({"QUANTMESH_ALERT_WEBHOOK_URL": "http://hooks.example.com/x"}, "use https"),
    ({"QUANTMESH_ALERT_WEBHOOK_URL": "ftp://hooks.example.com/x"}, "is not an http(s) URL"),
    ({"QUANTMESH_ALERT_WEBHOOK_URL": "https://api.telegram.org/bot1/sendMessage",
      "QUANTMESH_ALERT_FORMAT": "telegram"}, "needs QUANTMESH_ALERT_TELEGRAM_CHAT_ID"),
    ({"QUANTMESH_ALERT_FORMAT": "discord"}, "is not one of slack, telegram"),
    ({"QUANTMESH_ALERT_DRAWDOWN_LEVELS": "0.1,ten"}, "has 'ten'"),
    ({"QUANTMESH_ALERT_DRAWDOWN_LEVELS": "10"}, "levels are fractions below 1"),
    ({"QUANTMESH_ALERT_REFUSAL_BURST": "0"}, "below the minimum 1"),
])
def test_settings_refuse_what_would_leak_or_mislead(env, sentence):
    with pytest.raises(ConfigError, match=sentence.replace("(", r"\(").replace(")", r"\)")):
        AlertSettings.from_env(Env(env))


def test_settings_defaults_and_loopback_http():
    settings = AlertSettings.from_env(Env({"QUANTMESH_ALERT_WEBHOOK_URL": "http://127.0.0.1:9/hook",
                                           "QUANTMESH_ALERT_DRAWDOWN_LEVELS": "0.2,0.05"}))
    assert settings.webhook_url == "http://127.0.0.1:9/hook"
    assert settings.drawdown_levels == (Decimal("0.05"), Decimal("0.2"))
    assert (settings.format, settings.window_seconds, settings.refusal_burst) == ("slack", 300.0, 5)


def test_a_reconciliation_alert_says_what_the_policy_decided():
    alerts, sent = rules()
    alerts.reconciliation([Difference("", "EUR_USD", "500", "0", decision="held for an operator")])
    assert sent.calls == [("reconciliation", "the ledger and the broker disagree on 1 position(s): "
                                             "EUR_USD: ledger 500, broker 0 (held for an operator)")]
