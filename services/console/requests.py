"""What the console's API accepts, checked before anything reaches a plane.

A JSON body or a query string becomes a frozen command or query here, or InvalidArgument with
a sentence naming the field and the accepted form (the API answers it as 400). The checks are
services/common/validation.py's, the same the planes run at their own edge, so the console
never forwards what a plane would refuse for its form; what a plane refuses for its state (a
stale version, an unknown slug) still comes back as the plane's own sentence.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone

from quantmesh.order.v1 import order_pb2
from services.common import validation
from services.common.errors import InvalidArgument
from services.common.vocabulary import OrderState

#: The control plane keeps 500 characters of reason; the console prefixes "<operator>@console: ".
MAX_REASON_CHARS = 400
GLOBAL_SWITCHES = ("global_entry_enabled", "global_exit_enabled", "global_lock")
STRATEGY_SWITCHES = ("entry_enabled", "exit_enabled")
FLAG_NAMES = (*GLOBAL_SWITCHES, *STRATEGY_SWITCHES, "note")
MAX_TEXT_FILTER = 200
EXAMPLE = '{"slug": "ma_cross", "entry_enabled": false, "reason": "news at 14:30"}'


@dataclass(frozen=True, kw_only=True, slots=True)
class GlobalSwitch:
    """The kill switch and the global entry and exit flags; None leaves a flag as it is."""

    global_entry_enabled: bool | None = None
    global_exit_enabled: bool | None = None
    global_lock: bool | None = None
    reason: str
    expected_version: int = 0


@dataclass(frozen=True, kw_only=True, slots=True)
class StrategySwitch:
    slug: str
    entry_enabled: bool | None = None
    exit_enabled: bool | None = None
    reason: str
    expected_version: int = 0
    create: bool = False  # set by the console for a running strategy that has no flags yet


def strategy_control(body: object) -> GlobalSwitch | StrategySwitch:
    """`POST /api/strategy-control`: a strategy's switches (with "slug") or the global ones (without)."""
    if not isinstance(body, dict):
        raise InvalidArgument(f"the body must be a JSON object, e.g. {EXAMPLE}")
    allowed = {"slug", *STRATEGY_SWITCHES} if "slug" in body else set(GLOBAL_SWITCHES)
    allowed |= {"reason", "expected_version"}
    unknown = sorted(set(body) - allowed)
    if unknown:
        hint = ("a strategy's switches are entry_enabled and exit_enabled" if "slug" in body
                else "global switches are global_entry_enabled, global_exit_enabled and global_lock; "
                     "a strategy's need \"slug\"")
        raise InvalidArgument(f"unknown field(s) {', '.join(map(repr, unknown))}; {hint}")
    switches = STRATEGY_SWITCHES if "slug" in body else GLOBAL_SWITCHES
    values = {name: _boolean(name, body[name]) for name in switches if name in body}
    if not values:
        raise InvalidArgument(f"say what to switch: give at least one of {', '.join(switches)} (true or false)")
    why, version = reason(body), _version(body)
    if "slug" in body:
        if not isinstance(body["slug"], str):
            raise InvalidArgument("slug must be a string, e.g. \"ma_cross\"")
        return StrategySwitch(slug=validation.slug("slug", body["slug"]), reason=why,
                              expected_version=version, **values)
    return GlobalSwitch(reason=why, expected_version=version, **values)


@dataclass(frozen=True, kw_only=True, slots=True)
class Sweep:
    """Cancel-open or flatten: every order or position, or one strategy's or instrument's."""

    strategy: str = ""
    instrument: str = ""
    reason: str


def sweep(body: object) -> Sweep:
    """`POST /api/cancel-open` and `POST /api/flatten`: {"reason", optional "strategy", "instrument"}."""
    if not isinstance(body, dict):
        raise InvalidArgument('the body must be a JSON object, e.g. {"reason": "kill switch drill"}')
    unknown = sorted(set(body) - {"reason", "strategy", "instrument"})
    if unknown:
        raise InvalidArgument(f"unknown field(s) {', '.join(map(repr, unknown))}; give reason, and strategy or "
                              "instrument to narrow it")
    for name in ("strategy", "instrument"):
        if not isinstance(body.get(name, ""), str):
            raise InvalidArgument(f"{name} must be a string")
    return Sweep(strategy=_strategy(body), instrument=_instrument(body), reason=reason(body))


@dataclass(frozen=True, kw_only=True, slots=True)
class Freeze:
    """Freeze a strategy's settings (analysis then changes neither its parameters nor its allocation), or lift it."""

    strategy: str
    frozen: bool
    reason: str


def freeze(body: object) -> Freeze:
    """`POST /api/analysis/freeze`: {"strategy", "frozen": true|false, "reason"}."""
    example = '{"strategy": "ma_cross", "frozen": true, "reason": "hold the settings through the news"}'
    if not isinstance(body, dict):
        raise InvalidArgument(f"the body must be a JSON object, e.g. {example}")
    unknown = sorted(set(body) - {"strategy", "frozen", "reason"})
    if unknown:
        raise InvalidArgument(f"unknown field(s) {', '.join(map(repr, unknown))}; give strategy, frozen and reason")
    if not isinstance(body.get("strategy"), str) or not body["strategy"]:
        raise InvalidArgument(f"strategy is required: the strategy's slug, e.g. {example}")
    if "frozen" not in body:
        raise InvalidArgument("frozen is required: true to freeze the strategy's settings, false to lift the freeze")
    return Freeze(strategy=validation.slug("strategy", body["strategy"]), frozen=_boolean("frozen", body["frozen"]),
                  reason=reason(body))


def _boolean(name: str, value: object) -> bool:
    if type(value) is not bool:
        raise InvalidArgument(f"{name} must be true or false, not {value!r}")
    return value


def reason(body: Mapping) -> str:
    """The required "reason" of a change: printable, trimmed, short enough for the audit trail."""
    text = body.get("reason")
    if not isinstance(text, str) or not text.strip():
        raise InvalidArgument("reason is required: say why, in a few words (it goes into the audit trail)")
    return validation.text("reason", text.strip(), max_chars=MAX_REASON_CHARS)


def _version(body: Mapping) -> int:
    version = body.get("expected_version", 0)
    if type(version) is not int or not 0 <= version <= validation.MAX_INT64:
        raise InvalidArgument(f"expected_version must be a whole number, 0 or more (the flags version you saw), "
                              f"not {version!r}")
    return version


# ---- query strings -------------------------------------------------------------------------------

@dataclass(frozen=True, kw_only=True, slots=True)
class OrderQuery:
    strategy: str = ""
    instrument: str = ""
    states: tuple[int, ...] = ()
    limit: int = 100
    page_token: str = ""


@dataclass(frozen=True, kw_only=True, slots=True)
class FillQuery:
    strategy: str = ""
    instrument: str = ""
    limit: int = 100
    window: int = 1000  # how many of the newest fills (all strategies) are searched


@dataclass(frozen=True, kw_only=True, slots=True)
class AuditQuery:
    actor: str = ""
    strategy: str = ""
    flag: str = ""
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 100
    page_token: str = ""


@dataclass(frozen=True, kw_only=True, slots=True)
class EquityQuery:
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 2000


def order_query(query: Mapping[str, str]) -> OrderQuery:
    _only(query, ("strategy", "instrument", "state", "limit", "page_token"))
    states = tuple(_order_state(name) for name in _csv(query.get("state", "")))
    return OrderQuery(strategy=_strategy(query), instrument=_instrument(query), states=states,
                      limit=_limit(query, default=100), page_token=_page_token(query))


def fill_query(query: Mapping[str, str]) -> FillQuery:
    _only(query, ("strategy", "instrument", "limit"))
    return FillQuery(strategy=_strategy(query), instrument=_instrument(query), limit=_limit(query, default=100))


def audit_query(query: Mapping[str, str]) -> AuditQuery:
    _only(query, ("actor", "strategy", "flag", "since", "until", "limit", "page_token"))
    flag = query.get("flag", "")
    if flag and flag not in FLAG_NAMES:
        raise InvalidArgument(f"flag {validation.shown(flag)} is not one of {', '.join(FLAG_NAMES)}")
    since, until = _time(query, "since"), _time(query, "until")
    validation.window("since", since, "until", until)
    return AuditQuery(actor=validation.text("actor", query.get("actor", "").strip(), max_chars=MAX_TEXT_FILTER),
                      strategy=_strategy(query), flag=flag, since=since, until=until,
                      limit=_limit(query, default=100), page_token=_page_token(query))


def equity_query(query: Mapping[str, str]) -> EquityQuery:
    _only(query, ("since", "until", "limit"))
    since, until = _time(query, "since"), _time(query, "until")
    validation.window("since", since, "until", until)
    return EquityQuery(since=since, until=until, limit=_limit(query, default=2000, maximum=10_000))


def order_id(text: str) -> str:
    if not text.startswith("ord-"):
        raise InvalidArgument(f"order id {validation.shown(text)} is not an order id such as ord-000000000042")
    validation.int64_digits("order id", text[4:], form="the digits of an order id such as ord-000000000042")
    return text


def _only(query: Mapping[str, str], known: Iterable[str]) -> None:
    unknown = sorted(set(query) - set(known))
    if unknown:
        raise InvalidArgument(f"unknown filter(s) {', '.join(map(repr, unknown))}; this list takes "
                              f"{', '.join(known)}")
    repeated = [name for name in set(query) if len(query.getall(name)) > 1] if hasattr(query, "getall") else []
    if repeated:
        raise InvalidArgument(f"filter {repeated[0]!r} is given more than once; give it once "
                              "(several states go comma-separated)")


def _csv(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _order_state(name: str) -> int:
    try:
        return order_pb2.OrderState.Value(f"ORDER_STATE_{OrderState(name.upper()).value}")
    except ValueError:
        raise InvalidArgument(f"state {validation.shown(name)} is not one of "
                              f"{', '.join(s.value for s in OrderState)}") from None


def _strategy(query: Mapping[str, str]) -> str:
    slug = query.get("strategy", "")
    return validation.slug("strategy", slug) if slug else ""


def _instrument(query: Mapping[str, str]) -> str:
    symbol = query.get("instrument", "")
    return validation.name("instrument", symbol, pattern=validation.INSTRUMENT, form=validation.INSTRUMENT_FORM) \
        if symbol else ""


def _limit(query: Mapping[str, str], *, default: int, maximum: int = 1000) -> int:
    text = query.get("limit", "")
    if not text:
        return default
    if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= maximum:
        raise InvalidArgument(f"limit {validation.shown(text)} is not a whole number from 1 to {maximum}")
    return int(text)


def _page_token(query: Mapping[str, str]) -> str:
    return validation.text("page_token", query.get("page_token", ""), max_chars=MAX_TEXT_FILTER)


def _time(query: Mapping[str, str], name: str) -> datetime | None:
    text = query.get(name, "")
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidArgument(f"{name} {validation.shown(text)} is not a time such as 2026-01-05T09:00:00Z") from None
    if moment.tzinfo is None:
        raise InvalidArgument(f"{name} {validation.shown(text)} has no time zone; add Z for UTC "
                              "(e.g. 2026-01-05T09:00:00Z)")
    moment = moment.astimezone(timezone.utc)
    if not validation.EARLIEST <= moment < validation.LATEST:
        raise InvalidArgument(f"{name} {moment.isoformat()} is outside 1970-01-01 to 2100-01-01")
    return moment
