"""Operators from QUANTMESH_CONSOLE_USERS, their hashed secrets, sign-in throttling and sessions."""

from __future__ import annotations

import pytest

from services.console.operators import (MIN_ITERATIONS, Gatekeeper, Operator, OperatorTable, Role, SecretHash,
                                        TooManyFailures, hash_secret)
from services.console.sessions import MAX_SESSIONS, Sessions


class Clock:
    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now


def table() -> OperatorTable:
    return OperatorTable.parse(f"alice:operator:{hash_secret('alice-secret', iterations=MIN_ITERATIONS)}, "
                               f"bob:viewer:{hash_secret('bob-secret', iterations=MIN_ITERATIONS)}")


def test_a_hash_checks_its_secret_only_and_never_holds_it():
    hashed = hash_secret("correct horse", iterations=MIN_ITERATIONS)
    assert "correct horse" not in hashed and hashed.startswith(f"pbkdf2_sha256${MIN_ITERATIONS}$")
    parsed = SecretHash.parse(hashed)
    assert parsed.matches("correct horse") and not parsed.matches("correct horse ")
    assert str(parsed) == hashed
    assert hash_secret("correct horse", iterations=MIN_ITERATIONS) != hashed  # a fresh salt each time


def test_the_table_knows_each_operators_role():
    operators = table()
    assert operators.check("alice", "alice-secret") == Operator("alice", Role.OPERATOR)
    assert operators.check("bob", "bob-secret") == Operator("bob", Role.VIEWER)
    assert not operators.check("bob", "bob-secret").may_act
    assert operators.check("alice", "bob-secret") is None
    assert operators.check("mallory", "alice-secret") is None
    assert operators.check("alice", "x" * 5000) is None


@pytest.mark.parametrize(("text", "sentence"), [
    ("alice:operator", "the hash of 'alice' is not pbkdf2_sha256$"),
    ("alice:admin:pbkdf2_sha256$1000$c2FsdHNhbHQ$AAAA", "role 'admin' of 'alice' is not operator or viewer"),
    ("Alice:operator:x", "is not name:role:hash"),
    ("alice:operator:pbkdf2_sha256$10$c2FsdHNhbHQ$" + "A" * 43, "has 10 iterations; at least 1,000"),
    ("alice:operator:pbkdf2_sha256$1000$c2FsdHNhbHQ$AAAA", "needs a salt of 8 bytes or more and a 32-byte digest"),
    ("alice:operator:plaintext-password", "is not pbkdf2_sha256$"),
])
def test_a_malformed_entry_is_named_without_showing_its_hash(text, sentence):
    with pytest.raises(ValueError) as refused:
        OperatorTable.parse(text)
    assert sentence in str(refused.value)
    assert "c2FsdHNhbHQ" not in str(refused.value)


def test_a_name_given_twice_is_refused():
    entry = f"alice:operator:{hash_secret('a-secret-here', iterations=MIN_ITERATIONS)}"
    with pytest.raises(ValueError, match="'alice' appears twice"):
        OperatorTable.parse(f"{entry},{entry}")


def test_the_gatekeeper_remembers_a_success_and_refuses_a_guessing_streak():
    clock = Clock()
    gate = Gatekeeper(table(), max_failures=3, failure_window=60, monotonic=clock)
    assert gate.remembered("alice", "alice-secret") is None
    assert gate.check("alice", "alice-secret").name == "alice"
    assert gate.remembered("alice", "alice-secret").name == "alice"  # no slow hash the next time
    assert gate.remembered("alice", "wrong") is None
    for _ in range(3):
        gate.refuse_if_failing("bob")
        assert gate.check("bob", "guess") is None
    with pytest.raises(TooManyFailures, match="try again in 60 s"):
        gate.refuse_if_failing("bob")
    gate.refuse_if_failing("alice")  # one name's streak does not lock the others out
    clock.now += 61
    gate.refuse_if_failing("bob")


def test_made_up_names_share_one_failure_count():
    gate = Gatekeeper(table(), max_failures=2, failure_window=60, monotonic=Clock())
    gate.check("nobody1", "x")
    gate.check("nobody2", "x")
    with pytest.raises(TooManyFailures):
        gate.refuse_if_failing("nobody3")
    gate.refuse_if_failing("alice")


def test_sessions_expire_end_and_stay_bounded():
    clock = Clock()
    sessions = Sessions(lifetime_seconds=10, monotonic=clock)
    alice = Operator("alice", Role.OPERATOR)
    session = sessions.start(alice)
    assert sessions.find(session.id) == session
    assert session.csrf_matches(session.csrf_token) and not session.csrf_matches("other") and \
        not session.csrf_matches(None)
    assert sessions.find("made-up") is None and sessions.find(None) is None
    clock.now += 10
    assert sessions.find(session.id) is None
    again = sessions.start(alice)
    sessions.end(again.id)
    assert sessions.find(again.id) is None
    first = sessions.start(alice)
    for _ in range(MAX_SESSIONS):
        sessions.start(alice)
    assert sessions.find(first.id) is None  # the oldest went first
