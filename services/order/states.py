"""The order state machine: which state may follow which.

PENDING_SUBMIT -> SUBMITTED -> NEW -> PARTIALLY_FILLED -> FILLED | CANCELED;
REJECTED only before NEW (guard, risk, broker refusal, lost in transit);
EXPIRED for the unfilled rest of an IOC/FOK order. A refused intent is born
REJECTED (it is recorded, never sent).
"""

from __future__ import annotations

from services.common.vocabulary import IN_FLIGHT, OPEN, TERMINAL, OrderState




S = OrderState

INITIAL = frozenset({S.PENDING_SUBMIT, S.REJECTED})

TRANSITIONS: dict[OrderState, frozenset[OrderState]] = {
    S.PENDING_SUBMIT: frozenset({S.SUBMITTED, S.REJECTED}),
    S.SUBMITTED: frozenset({S.NEW, S.REJECTED}),
    S.NEW: frozenset({S.PARTIALLY_FILLED, S.FILLED, S.CANCELED, S.EXPIRED}),
    # A second partial fill keeps the order PARTIALLY_FILLED.
    S.PARTIALLY_FILLED: frozenset({S.PARTIALLY_FILLED, S.FILLED, S.CANCELED, S.EXPIRED}),
    S.FILLED: frozenset(),
    S.CANCELED: frozenset(),
    S.REJECTED: frozenset(),
    S.EXPIRED: frozenset(),
}


class InvalidTransition(Exception):
    """A state change the machine does not allow; names both states."""

    def __init__(self, current: OrderState, target: OrderState) -> None:
        allowed = ", ".join(sorted(s.value for s in TRANSITIONS[current])) or "nothing (it is final)"
        super().__init__(f"an order cannot go from {current.value} to {target.value}; "
                         f"from {current.value} it can go to {allowed}")
        self.current = current
        self.target = target


def can_move(current: OrderState, target: OrderState) -> bool:
    return target in TRANSITIONS[current]


def require_move(current: OrderState, target: OrderState) -> None:
    if not can_move(current, target):
        raise InvalidTransition(current, target)
