"""Signed-in browsers: a random session id in a cookie, and a CSRF token per session.

Sessions live in this process's memory only: a restarted console signs everyone out, which is
the safe way round, and the console keeps nothing else of its own. The CSRF token is handed to
the page by `GET /api/session` (a same-origin read another site cannot make) and must come back
in the X-CSRF-Token header of every change.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from services.console.operators import Operator

COOKIE = "qm_session"
#: More sessions than any desk has operators; the oldest go first.
MAX_SESSIONS = 1_000


@dataclass(frozen=True, slots=True)
class Session:
    id: str
    operator: Operator
    csrf_token: str
    expires_at: float

    def csrf_matches(self, presented: str | None) -> bool:
        return presented is not None and hmac.compare_digest(presented.encode(), self.csrf_token.encode())


class Sessions:
    def __init__(self, *, lifetime_seconds: float, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._lifetime = lifetime_seconds
        self._monotonic = monotonic
        self._sessions: dict[str, Session] = {}

    def start(self, operator: Operator) -> Session:
        while len(self._sessions) >= MAX_SESSIONS:
            self._sessions.pop(next(iter(self._sessions)))
        session = Session(id=secrets.token_urlsafe(32), operator=operator, csrf_token=secrets.token_urlsafe(32),
                          expires_at=self._monotonic() + self._lifetime)
        self._sessions[session.id] = session
        return session

    def find(self, session_id: str | None) -> Session | None:
        if not session_id:
            return None
        session = self._sessions.get(session_id)
        if session is None:
            return None
        if session.expires_at <= self._monotonic():
            del self._sessions[session_id]
            return None
        return session

    def end(self, session_id: str | None) -> None:
        if session_id:
            self._sessions.pop(session_id, None)
