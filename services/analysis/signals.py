"""Signals: every decision of every worker, as analysis stores and serves it.

`signal_from_proto` is the servicer edge: each field of a worker's signal is checked with a
sentence naming it (signals[i].field) before anything reaches the database.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from quantmesh.analysis.v1 import analysis_pb2
from services.common import validation
from services.common.errors import InvalidArgument
from services.common.timeutil import to_timestamp
from services.common.vocabulary import Side, StrategyRole
from services.common.wire import ROLE_FROM_PROTO, ROLE_TO_PROTO, SIDE_FROM_PROTO, SIDE_TO_PROTO, decimal_text

ACTIONS: Mapping[int, str] = {analysis_pb2.SIGNAL_ACTION_ENTRY: "entry", analysis_pb2.SIGNAL_ACTION_EXIT: "exit",
                              analysis_pb2.SIGNAL_ACTION_HOLD: "hold", analysis_pb2.SIGNAL_ACTION_SKIP: "skip",
                              analysis_pb2.SIGNAL_ACTION_REFUSED: "refused"}
ACTION_VALUES: Mapping[str, int] = {v: k for k, v in ACTIONS.items()}
#: Actions that name an intent (client order id, side, quantity).
WITH_INTENT = frozenset({"entry", "exit", "refused"})

SIGNAL_ID = re.compile(r"[A-Za-z0-9._:-]{1,160}", re.ASCII)
INDICATOR = re.compile(r"[A-Za-z0-9_.:-]{1,64}", re.ASCII)
TRACE_ID = re.compile(r"[0-9a-f]{32}", re.ASCII)
MAX_REASON_CHARS = 1000
MAX_INDICATORS = 64
MAX_SIGNALS = 1000


@dataclass(frozen=True, slots=True, kw_only=True)
class SignalRecord:
    signal_id: str
    strategy: str
    role: str
    instrument: str
    action: str
    reason: str
    confidence: float | None
    indicators: Mapping[str, float]
    params_version: int
    allocation_version: int
    size_multiplier: Decimal
    decision_time: datetime
    client_order_id: str = ""
    side: str = ""
    quantity: Decimal | None = None
    price_ref: float = 0.0
    trace_id: str = ""
    seq: int = 0
    recorded_time: datetime | None = None

    def to_proto(self) -> analysis_pb2.Signal:
        message = analysis_pb2.Signal(
            signal_id=self.signal_id, strategy_slug=self.strategy, role=ROLE_TO_PROTO[StrategyRole(self.role)],
            instrument=self.instrument, action=ACTION_VALUES[self.action], reason=self.reason,
            indicators=dict(self.indicators), params_version=self.params_version,
            allocation_version=self.allocation_version, size_multiplier=decimal_text(self.size_multiplier),
            decision_time=to_timestamp(self.decision_time), client_order_id=self.client_order_id,
            side=SIDE_TO_PROTO[Side(self.side)] if self.side else 0, quantity=decimal_text(self.quantity),
            price_ref=self.price_ref, trace_id=self.trace_id, seq=self.seq,
            recorded_time=to_timestamp(self.recorded_time))
        if self.confidence is not None:
            message.confidence = self.confidence
        return message


def _finite(name: str, value: float) -> float:
    if not math.isfinite(value):
        raise InvalidArgument(f"{name} is {value}, not a finite number; leave out what is not known")
    return value


def signal_from_proto(i: int, signal: analysis_pb2.Signal) -> SignalRecord:
    name = f"signals[{i}]"
    validation.name(f"{name}.signal_id", signal.signal_id, pattern=SIGNAL_ID,
                    form="1 to 160 characters of A-Z a-z 0-9 . _ : -")
    action = ACTIONS.get(signal.action)
    if action is None:
        raise InvalidArgument(f"{name}.action is unset; say what the decision came to (SIGNAL_ACTION_ENTRY, ...)")
    role = ROLE_FROM_PROTO.get(signal.role)
    if role is None:
        raise InvalidArgument(f"{name}.role is unset; say which worker decided (STRATEGY_ROLE_ENTRY or _EXIT)")
    confidence = None
    if signal.HasField("confidence"):
        confidence = _finite(f"{name}.confidence", signal.confidence)
        if not 0 <= confidence <= 1:
            raise InvalidArgument(f"{name}.confidence {confidence} is outside 0 to 1")
    if len(signal.indicators) > MAX_INDICATORS:
        raise InvalidArgument(f"{name}.indicators has {len(signal.indicators)} entries; at most {MAX_INDICATORS}")
    indicators = {validation.name(f"{name}.indicators key", k, pattern=INDICATOR, form="1 to 64 characters of "
                                  "A-Z a-z 0-9 _ . : -"): _finite(f"{name}.indicators[{k!r}]", v)
                  for k, v in sorted(signal.indicators.items())}
    side = SIDE_FROM_PROTO.get(signal.side)
    if action in WITH_INTENT:
        validation.name(f"{name}.client_order_id", signal.client_order_id)
        if side is None:
            raise InvalidArgument(f"{name}.side is unset; an {action} signal names the side of its intent")
    elif signal.client_order_id:
        validation.name(f"{name}.client_order_id", signal.client_order_id)
    if signal.trace_id and not TRACE_ID.fullmatch(signal.trace_id):
        raise InvalidArgument(f"{name}.trace_id {validation.shown(signal.trace_id)} is not 32 lowercase hex digits")
    return SignalRecord(
        signal_id=signal.signal_id, strategy=validation.slug(f"{name}.strategy_slug", signal.strategy_slug),
        role=str(role), instrument=validation.name(f"{name}.instrument", signal.instrument,
                                                   pattern=validation.INSTRUMENT, form=validation.INSTRUMENT_FORM),
        action=action, reason=validation.text(f"{name}.reason", signal.reason, max_chars=MAX_REASON_CHARS),
        confidence=confidence, indicators=indicators,
        params_version=validation.sequence(f"{name}.params_version", signal.params_version),
        allocation_version=validation.sequence(f"{name}.allocation_version", signal.allocation_version),
        size_multiplier=validation.decimal(f"{name}.size_multiplier", signal.size_multiplier or "1", example="0.5"),
        decision_time=validation.timestamp(f"{name}.decision_time", signal.decision_time),
        client_order_id=signal.client_order_id, side=str(side) if side is not None else "",
        quantity=validation.decimal(f"{name}.quantity", signal.quantity) if signal.quantity else None,
        price_ref=_finite(f"{name}.price_ref", signal.price_ref), trace_id=signal.trace_id)


@dataclass(frozen=True, slots=True, kw_only=True)
class SignalQuery:
    strategy: str = ""
    instrument: str = ""
    actions: tuple[str, ...] = ()
    since: datetime | None = None
    until: datetime | None = None
    client_order_id: str = ""
    limit: int = 100
    before_seq: int | None = None


__all__ = ["ACTIONS", "ACTION_VALUES", "MAX_SIGNALS", "SignalQuery", "SignalRecord", "WITH_INTENT",
           "signal_from_proto"]
