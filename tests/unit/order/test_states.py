import itertools

import pytest

from services.order.states import TRANSITIONS, InvalidTransition, OrderState, can_move, require_move

S = OrderState

ALLOWED = {
    (S.PENDING_SUBMIT, S.SUBMITTED), (S.PENDING_SUBMIT, S.REJECTED),
    (S.SUBMITTED, S.NEW), (S.SUBMITTED, S.REJECTED),
    (S.NEW, S.PARTIALLY_FILLED), (S.NEW, S.FILLED), (S.NEW, S.CANCELED), (S.NEW, S.EXPIRED),
    (S.PARTIALLY_FILLED, S.PARTIALLY_FILLED), (S.PARTIALLY_FILLED, S.FILLED),
    (S.PARTIALLY_FILLED, S.CANCELED), (S.PARTIALLY_FILLED, S.EXPIRED),
}


@pytest.mark.parametrize("current, target", list(itertools.product(OrderState, OrderState)))
def test_the_whole_table(current, target):
    assert can_move(current, target) == ((current, target) in ALLOWED)
    if (current, target) in ALLOWED:
        require_move(current, target)
    else:
        with pytest.raises(InvalidTransition) as error:
            require_move(current, target)
        assert current.value in str(error.value) and target.value in str(error.value)


def test_final_states_go_nowhere_and_say_so():
    for final in (S.FILLED, S.CANCELED, S.REJECTED, S.EXPIRED):
        assert not TRANSITIONS[final]
    with pytest.raises(InvalidTransition, match="from FILLED to CANCELED; from FILLED it can go to nothing"):
        require_move(S.FILLED, S.CANCELED)


def test_rejected_only_before_new():
    assert not any(can_move(s, S.REJECTED) for s in (S.NEW, S.PARTIALLY_FILLED))
