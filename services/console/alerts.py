"""Alerts to a chat: a webhook notifier (Slack or Telegram format), throttled per cause.

What fires (`AlertRules`): the kill switch turned on or off; a burst of refused orders; a plane
that stops answering (and when it is back); the account's drawdown crossing a configured level;
reconciliation differences (each decision the position plane's reconciliation records in
the audit trail after the console started: held for an operator, or adopted).

At most one message per cause per window: a cause that fires again inside its window is
counted, and the next message of that cause says how many were held back, so a flood becomes
one line, not a muted channel (hummingbot #7000). Sending never blocks the console: each
message is posted by a task of its own, with a timeout, and a failure is logged and counted.

Settings, parsed once:

| variable | meaning | default |
|---|---|---|
| QUANTMESH_ALERT_WEBHOOK_URL | where to POST (https; http only to loopback) | unset: alerts are logged only |
| QUANTMESH_ALERT_FORMAT | slack (`{"text"}`) or telegram (`{"chat_id", "text"}`) | slack |
| QUANTMESH_ALERT_TELEGRAM_CHAT_ID | the chat a Telegram bot posts to | required with telegram |
| QUANTMESH_ALERT_WINDOW_SECONDS | one message per cause per this many seconds | 300 |
| QUANTMESH_ALERT_REFUSAL_BURST | refused orders that make a burst | 5 |
| QUANTMESH_ALERT_REFUSAL_WINDOW_SECONDS | within this many seconds | 60 |
| QUANTMESH_ALERT_DRAWDOWN_LEVELS | drawdown fractions that alert when crossed upwards | 0.05,0.1,0.2 |
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from urllib.parse import urlsplit

import aiohttp
from prometheus_client import CollectorRegistry, Counter

from services.common.config import ConfigError, Env, is_loopback
from services.common.validation import parse_decimal

log = logging.getLogger(__name__)

FORMATS = ("slack", "telegram")


@dataclass(frozen=True, kw_only=True, slots=True)
class AlertSettings:
    webhook_url: str | None = None
    format: str = "slack"
    telegram_chat_id: str | None = None
    window_seconds: float = 300.0
    refusal_burst: int = 5
    refusal_window_seconds: float = 60.0
    drawdown_levels: tuple[Decimal, ...] = (Decimal("0.05"), Decimal("0.1"), Decimal("0.2"))

    @classmethod
    def from_env(cls, env: Env) -> "AlertSettings":
        url = env.optional("QUANTMESH_ALERT_WEBHOOK_URL")
        if url is not None:
            _check_webhook(url)
        kind = env.choice("QUANTMESH_ALERT_FORMAT", "slack", FORMATS)
        chat = env.optional("QUANTMESH_ALERT_TELEGRAM_CHAT_ID")
        if kind == "telegram" and url is not None and chat is None:
            raise ConfigError("QUANTMESH_ALERT_FORMAT=telegram needs QUANTMESH_ALERT_TELEGRAM_CHAT_ID (the chat "
                              "the bot posts to)")
        return cls(webhook_url=url, format=kind, telegram_chat_id=chat,
                   window_seconds=env.float("QUANTMESH_ALERT_WINDOW_SECONDS", 300.0, minimum=0.0),
                   refusal_burst=env.int("QUANTMESH_ALERT_REFUSAL_BURST", 5, minimum=1),
                   refusal_window_seconds=env.float("QUANTMESH_ALERT_REFUSAL_WINDOW_SECONDS", 60.0, minimum=1.0),
                   drawdown_levels=_levels(env))


def _check_webhook(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ConfigError("QUANTMESH_ALERT_WEBHOOK_URL is not an http(s) URL")
    # Webhook URLs carry their secret (a Slack hook path, a Telegram bot token): never in clear off this host.
    if parts.scheme == "http" and not is_loopback(f"{parts.hostname}:{parts.port or 80}"):
        raise ConfigError("QUANTMESH_ALERT_WEBHOOK_URL uses http to another host; use https, since the URL "
                          "carries the webhook's secret")


def _levels(env: Env) -> tuple[Decimal, ...]:
    levels = []
    for text in env.list("QUANTMESH_ALERT_DRAWDOWN_LEVELS", ("0.05", "0.1", "0.2")):
        try:
            level = parse_decimal(text)
        except ValueError as exc:
            raise ConfigError(f"QUANTMESH_ALERT_DRAWDOWN_LEVELS has {text!r}, which {exc}") from None
        if level >= 1:
            raise ConfigError(f"QUANTMESH_ALERT_DRAWDOWN_LEVELS has {text}; levels are fractions below 1 "
                              "(0.1 is a 10% drawdown)")
        levels.append(level)
    return tuple(sorted(set(levels)))


class Throttle:
    """One message per cause per window; counts what it holds back."""

    def __init__(self, window_seconds: float, *, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._window = window_seconds
        self._monotonic = monotonic
        self._last_sent: dict[str, float] = {}
        self._held: collections.Counter[str] = collections.Counter()

    def admit(self, cause: str) -> int | None:
        """None to hold this message back; otherwise how many of this cause were held since the last one."""
        now = self._monotonic()
        last = self._last_sent.get(cause)
        if last is not None and now - last < self._window:
            self._held[cause] += 1
            return None
        self._last_sent[cause] = now
        return self._held.pop(cause, 0)


def payload(settings: AlertSettings, text: str) -> dict:
    """The webhook body in the chat's own format."""
    if settings.format == "telegram":
        return {"chat_id": settings.telegram_chat_id, "text": text, "disable_web_page_preview": True}
    return {"text": text}


class WebhookNotifier:
    """Posts throttled messages to the webhook; logs every alert whether or not one is configured."""

    def __init__(self, settings: AlertSettings, registry: CollectorRegistry, *,
                 monotonic: Callable[[], float] = time.monotonic, timeout_seconds: float = 5.0) -> None:
        self._settings = settings
        self._throttle = Throttle(settings.window_seconds, monotonic=monotonic)
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._session: aiohttp.ClientSession | None = None
        self._sending: set[asyncio.Task] = set()
        self.sent = Counter("quantmesh_alerts_sent", "Alert messages posted, by kind of cause", ["kind"],
                            registry=registry)
        self.held = Counter("quantmesh_alerts_held", "Alert messages held back by the throttle", ["kind"],
                            registry=registry)
        self.failed = Counter("quantmesh_alerts_failed", "Alert messages the webhook did not take", ["kind"],
                              registry=registry)

    def notify(self, cause: str, text: str) -> bool:
        """Sends `text` unless `cause` already spoke within the window; True when it goes out."""
        kind = cause.split(":", 1)[0]
        held = self._throttle.admit(cause)
        if held is None:
            self.held.labels(kind=kind).inc()
            return False
        if held:
            text = f"{text} ({held} more like this held back in the last {self._settings.window_seconds:g} s)"
        log.warning("alert: %s", text, extra={"cause": cause})
        if self._settings.webhook_url is None:
            return True
        task = asyncio.get_running_loop().create_task(self._post(kind, f"quantmesh: {text}"))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)
        return True

    async def _post(self, kind: str, text: str) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        try:
            async with self._session.post(self._settings.webhook_url, json=payload(self._settings, text)) as reply:
                if reply.status >= 300:
                    raise aiohttp.ClientResponseError(reply.request_info, (), status=reply.status)
            self.sent.labels(kind=kind).inc()
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            self.failed.labels(kind=kind).inc()
            # The URL holds the webhook's secret: log where it went by host only.
            log.error("the alert webhook did not take a message", extra={
                "host": urlsplit(self._settings.webhook_url).hostname, "error": type(exc).__name__,
                "status": getattr(exc, "status", None)})

    async def drain(self) -> None:
        """Waits for messages still being posted (tests; shutdown)."""
        if self._sending:
            await asyncio.gather(*tuple(self._sending), return_exceptions=True)

    async def close(self) -> None:
        await self.drain()
        if self._session is not None:
            await self._session.close()
            self._session = None


@dataclass(frozen=True, slots=True)
class Difference:
    """One reconciliation difference as the alert words it."""

    account: str
    instrument: str
    ledger_quantity: str
    broker_quantity: str
    decision: str = ""  # what the policy did ("held for an operator: ...", "adopted ...")


class AlertRules:
    """Turns what the console sees into alerts."""

    def __init__(self, notifier: WebhookNotifier, settings: AlertSettings, *,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._notify = notifier.notify
        self._settings = settings
        self._monotonic = monotonic
        self._lock: bool | None = None
        self._refusals: collections.deque[tuple[float, str]] = collections.deque()
        self._planes: dict[str, bool] = {}
        self._drawdown_armed = {level: True for level in settings.drawdown_levels}

    def flags(self, *, global_lock: bool, version: int) -> None:
        """The kill switch: an alert whenever it changes (not for the first snapshot, unless it is on)."""
        previous, self._lock = self._lock, global_lock
        if previous == global_lock or (previous is None and not global_lock):
            return
        if global_lock:
            self._notify("lock:on", f"KILL SWITCH ON: trading is HALTED, no new orders of any kind "
                                    f"(flags version {version})")
        else:
            self._notify("lock:off", f"kill switch off: trading resumes (flags version {version})")

    def order_refused(self, *, rule: str, order_id: str, strategy: str) -> None:
        now = self._monotonic()
        self._refusals.append((now, rule or "venue"))
        horizon = now - self._settings.refusal_window_seconds
        while self._refusals and self._refusals[0][0] < horizon:
            self._refusals.popleft()
        if len(self._refusals) < self._settings.refusal_burst:
            return
        rules = collections.Counter(r for _, r in self._refusals)
        summary = ", ".join(f"{r} x{n}" for r, n in rules.most_common(5))
        self._notify("refusals", f"{len(self._refusals)} orders refused in the last "
                                 f"{self._settings.refusal_window_seconds:g} s ({summary}); latest {order_id} "
                                 f"of {strategy}")

    def plane_health(self, plane: str, serving: bool, detail: str) -> None:
        """An alert when a plane stops answering SERVING, and one when it is back."""
        previous = self._planes.get(plane)
        self._planes[plane] = serving
        if previous is None and serving or previous == serving:
            return
        if serving:
            self._notify(f"plane_up:{plane}", f"{plane} is SERVING again")
        else:
            self._notify(f"plane_down:{plane}", f"{plane} is DOWN: {detail}")

    def drawdown(self, *, account: str, fraction: Decimal) -> None:
        """An alert for each level crossed upwards; a level re-arms once the drawdown is back under it."""
        for level, armed in self._drawdown_armed.items():
            if fraction >= level and armed:
                self._drawdown_armed[level] = False
                self._notify(f"drawdown:{level}", f"drawdown of account {account} reached {fraction:.2%} "
                                                  f"(level {level:.0%})")
            elif fraction < level:
                self._drawdown_armed[level] = True

    def reconciliation(self, differences: Iterable[Difference]) -> None:
        """For the continuous reconciliation: call it with what a Position.Reconcile found."""
        found = list(differences)
        if not found:
            return
        lines = "; ".join(f"{d.account + ' ' if d.account else ''}{d.instrument}: ledger {d.ledger_quantity}, "
                          f"broker {d.broker_quantity}{' (' + d.decision + ')' if d.decision else ''}"
                          for d in found[:5])
        more = f" and {len(found) - 5} more" if len(found) > 5 else ""
        self._notify("reconciliation", f"the ledger and the broker disagree on {len(found)} position(s): "
                                       f"{lines}{more}")
