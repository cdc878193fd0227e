"""The flags at one version and the rules for changing them (pure, no I/O).

A change request names only the fields it wants to set; `plan_*` compares them with
the current state and returns the field changes (one per field that really changes)
and the state after them. A request that changes nothing plans no change, so the
engine answers it with the current snapshot and no new version.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, replace
from datetime import datetime

from services.common import validation
from services.common.errors import Aborted, InvalidArgument, NotFound
from services.common.flags import trading_state

MAX_REASON_CHARS = 500
MAX_NOTE_CHARS = 1000

GLOBAL_FLAGS = ("global_entry_enabled", "global_exit_enabled", "global_lock", "lock_cancels_open_orders")
STRATEGY_FLAGS = ("entry_enabled", "exit_enabled", "note")
#: Written as old_value of the fields of a strategy created by a change.
ABSENT = "(absent)"


class TradingState(enum.Enum):
    """What the global flags add up to, in the words traders use in other engines."""

    ACTIVE = "ACTIVE"
    REDUCING = "REDUCING"
    HALTED = "HALTED"


@dataclass(frozen=True, kw_only=True, slots=True)
class StrategyFlagState:
    slug: str
    entry_enabled: bool = True
    exit_enabled: bool = True
    note: str = ""
    updated_time: datetime


@dataclass(frozen=True, kw_only=True, slots=True)
class FlagState:
    version: int
    global_entry_enabled: bool
    global_exit_enabled: bool
    global_lock: bool
    updated_time: datetime
    #: Sorted by slug.
    strategies: tuple[StrategyFlagState, ...] = ()
    #: While locked, the order plane cancels every open order (the kill switch's default).
    lock_cancels_open_orders: bool = True

    @property
    def trading_state(self) -> TradingState:
        return TradingState(trading_state(global_lock=self.global_lock,
                                          global_entry_enabled=self.global_entry_enabled))

    def strategy(self, slug: str) -> StrategyFlagState | None:
        return next((s for s in self.strategies if s.slug == slug), None)


@dataclass(frozen=True, kw_only=True, slots=True)
class FieldChange:
    """One changed field: what the audit log records (with who, where, why and when)."""

    slug: str  # "" for a global flag
    flag: str
    old_value: str
    new_value: str


@dataclass(frozen=True, kw_only=True, slots=True)
class GlobalChange:
    """SetGlobalFlags in domain terms; None means "leave as it is"."""

    global_entry_enabled: bool | None = None
    global_exit_enabled: bool | None = None
    global_lock: bool | None = None
    lock_cancels_open_orders: bool | None = None
    reason: str = ""
    expected_version: int = 0


@dataclass(frozen=True, kw_only=True, slots=True)
class StrategyChange:
    """SetStrategyFlags in domain terms; None means "leave as it is"."""

    slug: str
    entry_enabled: bool | None = None
    exit_enabled: bool | None = None
    note: str | None = None
    reason: str = ""
    expected_version: int = 0
    create_if_missing: bool = False


@dataclass(frozen=True, kw_only=True, slots=True)
class Plan:
    """The outcome of a change request: the field changes and the state after them."""

    changes: tuple[FieldChange, ...] = ()
    after: FlagState | None = None
    #: The strategy row to write (created or changed), if any.
    strategy: StrategyFlagState | None = None
    created: bool = False

    @property
    def changes_nothing(self) -> bool:
        return not self.changes


def text(value: bool | str) -> str:
    """A field value as the audit log writes it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def validate_slug(slug: str, field_name: str = "slug") -> None:
    validation.slug(field_name, slug)


def _validate_reason(reason: str) -> None:
    if len(reason) > MAX_REASON_CHARS:
        raise InvalidArgument(f"reason has {len(reason)} characters; at most {MAX_REASON_CHARS} are allowed")


def validate_global(change: GlobalChange) -> None:
    _validate_reason(change.reason)
    if change.global_lock is not None and not change.reason.strip():
        action = "locking" if change.global_lock else "unlocking"
        raise InvalidArgument(
            f"reason is required for {action} (global_lock={text(change.global_lock)}); say why, "
            "e.g. \"reason\": \"broker outage drill\" — it goes into the audit log"
        )


def validate_strategy(change: StrategyChange) -> None:
    validate_slug(change.slug)
    _validate_reason(change.reason)
    if change.note is not None and len(change.note) > MAX_NOTE_CHARS:
        raise InvalidArgument(f"note has {len(change.note)} characters; at most {MAX_NOTE_CHARS} are allowed")


def check_version(current: FlagState, expected_version: int) -> None:
    """Optimistic concurrency: a caller that saw an older snapshot must look again."""
    if expected_version and expected_version != current.version:
        raise Aborted(
            f"expected_version {expected_version} is not the current version {current.version}: the flags "
            "changed since you read them; read them again (GetFlags) and retry, or send expected_version 0"
        )


def plan_global(current: FlagState, change: GlobalChange, now: datetime) -> Plan:
    validate_global(change)
    check_version(current, change.expected_version)
    changes = []
    values = {}
    for name in GLOBAL_FLAGS:
        wanted = getattr(change, name)
        old = getattr(current, name)
        if wanted is not None and wanted != old:
            changes.append(FieldChange(slug="", flag=name, old_value=text(old), new_value=text(wanted)))
            values[name] = wanted
    if not changes:
        return Plan()
    after = replace(current, version=current.version + 1, updated_time=now, **values)
    return Plan(changes=tuple(changes), after=after)


def plan_strategy(current: FlagState, change: StrategyChange, now: datetime) -> Plan:
    validate_strategy(change)
    check_version(current, change.expected_version)
    existing = current.strategy(change.slug)
    if existing is None and not change.create_if_missing:
        known = ", ".join(s.slug for s in current.strategies) or "none yet"
        raise NotFound(
            f"strategy {change.slug!r} has no flags (known: {known}); check the slug, or set "
            "create_if_missing to create its flags"
        )
    wanted = {"entry_enabled": change.entry_enabled, "exit_enabled": change.exit_enabled, "note": change.note}
    changes = []
    if existing is None:
        # A new strategy starts with both flags enabled unless the request says otherwise.
        base = StrategyFlagState(slug=change.slug, updated_time=now)
        values = {name: (base_value if wanted[name] is None else wanted[name])
                  for name, base_value in (("entry_enabled", True), ("exit_enabled", True), ("note", ""))}
        for name in STRATEGY_FLAGS:
            if name == "note" and not values[name]:
                continue  # an empty note on creation is not worth an audit row
            changes.append(FieldChange(slug=change.slug, flag=name, old_value=ABSENT, new_value=text(values[name])))
        updated = replace(base, **values)
    else:
        values = {}
        for name in STRATEGY_FLAGS:
            old = getattr(existing, name)
            if wanted[name] is not None and wanted[name] != old:
                changes.append(FieldChange(slug=change.slug, flag=name, old_value=text(old),
                                           new_value=text(wanted[name])))
                values[name] = wanted[name]
        if not changes:
            return Plan()
        updated = replace(existing, updated_time=now, **values)
    others = [s for s in current.strategies if s.slug != change.slug]
    strategies = tuple(sorted([*others, updated], key=lambda s: s.slug))
    after = replace(current, version=current.version + 1, updated_time=now, strategies=strategies)
    return Plan(changes=tuple(changes), after=after, strategy=updated, created=existing is None)


@dataclass(frozen=True, kw_only=True, slots=True)
class AuditQuery:
    """ListAudit filters in domain terms; empty/None fields match everything."""

    actor: str = ""
    slug: str = ""
    flag: str = ""
    event: str = ""
    plane: str = ""
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 100
    before_id: int | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class AuditEntry:
    id: int
    version: int
    actor: str
    role: str
    source: str
    reason: str
    slug: str
    flag: str
    old_value: str
    new_value: str
    time: datetime
    event: str = "flag_change"
    plane: str = "control"
    mode: str = ""
    site: str = ""
    session: str = ""
    subject: str = ""


DEFAULT_AUDIT_LIMIT = 100
MAX_AUDIT_LIMIT = 1000
_PAGE_TOKEN = re.compile(r"before:([0-9]{1,19})", re.ASCII)


def audit_query(*, actor: str, slug: str, flag: str, since: datetime | None, until: datetime | None,
                limit: int, page_token: str, event: str = "", plane: str = "") -> AuditQuery:
    if slug:
        validate_slug(slug, "slug filter")
    all_flags = GLOBAL_FLAGS + STRATEGY_FLAGS
    if flag and flag not in all_flags:
        raise InvalidArgument(f"flag {flag!r} is not a flag name; use one of {', '.join(all_flags)}")
    if limit > MAX_AUDIT_LIMIT:
        raise InvalidArgument(f"limit {limit} is above the maximum {MAX_AUDIT_LIMIT}; page with page_token instead")
    if since is not None and until is not None and since >= until:
        raise InvalidArgument(f"since {since.isoformat()} is not before until {until.isoformat()}; "
                              "give a window whose start comes first")
    before_id = None
    if page_token:
        match = _PAGE_TOKEN.fullmatch(page_token)
        before_id = int(match.group(1)) if match else None
        if before_id is None or before_id > validation.MAX_INT64:  # audit ids are bigint
            raise InvalidArgument(f"page_token {validation.shown(page_token)} is not a token this server gave out; "
                                  "pass next_page_token from a previous ListAudit response unchanged")
    for name, value in (("event", event), ("plane", plane)):
        if value:
            validation.slug(name, value)
    return AuditQuery(actor=actor, slug=slug, flag=flag, since=since, until=until, event=event, plane=plane,
                      limit=limit or DEFAULT_AUDIT_LIMIT, before_id=before_id)


def next_page_token(entries: list[AuditEntry], has_more: bool) -> str:
    return f"before:{entries[-1].id}" if has_more and entries else ""
