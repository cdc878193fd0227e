"""Who may use the console: operators from QUANTMESH_CONSOLE_USERS, with hashed secrets.

    QUANTMESH_CONSOLE_USERS="alice:operator:pbkdf2_sha256$600000$<salt>$<digest>,bob:viewer:pbkdf2_sha256$..."

An operator may change flags; a viewer may only look. The secret is a password for the login
page and, with `curl -u alice:<secret>`, for the JSON API. Only PBKDF2-SHA256 hashes are kept
(`python -m services.console hash-password` makes one), so the configuration never holds a
secret a reader could replay.

A successful check is remembered in memory by a SHA-256 of name and secret, so an API client
does not pay the slow hash on every request; a failed one is never remembered, and a name with
too many failures in a minute is refused before any hashing (a guessing script gets 429s).
"""

from __future__ import annotations

import base64
import collections
import enum
import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

ALGORITHM = "pbkdf2_sha256"
#: OWASP's 2023 figure for PBKDF2-HMAC-SHA256.
DEFAULT_ITERATIONS = 600_000
#: Below this a hash is a typo or a test fixture, not a protection; refused at start.
MIN_ITERATIONS = 1_000
NAME = re.compile(r"[a-z0-9_.-]{1,64}", re.ASCII)
MAX_SECRET_CHARS = 1024


class Role(enum.StrEnum):
    OPERATOR = "operator"  # may change flags and, when offered, cancel and flatten
    VIEWER = "viewer"      # reads everything, changes nothing


@dataclass(frozen=True, slots=True)
class Operator:
    name: str
    role: Role

    @property
    def may_act(self) -> bool:
        return self.role is Role.OPERATOR


#: Who a console without QUANTMESH_CONSOLE_USERS serves (allowed on loopback only, like the planes).
LOCAL_OPERATOR = Operator(name="local", role=Role.OPERATOR)


@dataclass(frozen=True, slots=True)
class SecretHash:
    iterations: int
    salt: bytes
    digest: bytes

    @classmethod
    def parse(cls, text: str) -> "SecretHash":
        parts = text.split("$")
        if len(parts) != 4 or parts[0] != ALGORITHM:
            raise ValueError(f"is not {ALGORITHM}$<iterations>$<salt>$<digest> "
                             "(make one with: python -m services.console hash-password)")
        try:
            iterations = int(parts[1])
            salt, digest = _unb64(parts[2]), _unb64(parts[3])
        except ValueError:
            raise ValueError("has iterations, salt or digest that do not decode") from None
        if iterations < MIN_ITERATIONS:
            raise ValueError(f"has {iterations} iterations; at least {MIN_ITERATIONS:,} are needed")
        if len(salt) < 8 or len(digest) != 32:
            raise ValueError("needs a salt of 8 bytes or more and a 32-byte digest")
        return cls(iterations, salt, digest)

    def matches(self, secret: str) -> bool:
        candidate = hashlib.pbkdf2_hmac("sha256", secret.encode(), self.salt, self.iterations)
        return hmac.compare_digest(candidate, self.digest)

    def __str__(self) -> str:
        return f"{ALGORITHM}${self.iterations}${_b64(self.salt)}${_b64(self.digest)}"


def hash_secret(secret: str, *, iterations: int = DEFAULT_ITERATIONS) -> str:
    salt = secrets.token_bytes(16)
    return str(SecretHash(iterations, salt, hashlib.pbkdf2_hmac("sha256", secret.encode(), salt, iterations)))


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError):
        raise ValueError(text) from None


@dataclass(frozen=True, slots=True)
class OperatorTable:
    """Name -> (operator, secret hash); empty means the console runs without login (loopback only)."""

    entries: Mapping[str, tuple[Operator, SecretHash]] = field(default_factory=lambda: MappingProxyType({}))

    @classmethod
    def parse(cls, text: str) -> "OperatorTable":
        """Raises ValueError naming the entry (by its name, never its hash) and what is wrong."""
        entries: dict[str, tuple[Operator, SecretHash]] = {}
        for item in (part.strip() for part in text.split(",")):
            if not item:
                continue
            name, _, rest = item.partition(":")
            role_name, _, hashed = rest.partition(":")
            if NAME.fullmatch(name) is None:
                raise ValueError(f"entry {name[:20]!r} is not name:role:hash with a name of 1 to 64 characters "
                                 "of a-z 0-9 _ . -")
            if name in entries:
                raise ValueError(f"{name!r} appears twice")
            try:
                role = Role(role_name)
            except ValueError:
                raise ValueError(f"role {role_name!r} of {name!r} is not operator or viewer") from None
            try:
                secret = SecretHash.parse(hashed)
            except ValueError as exc:
                raise ValueError(f"the hash of {name!r} {exc}") from None
            entries[name] = (Operator(name, role), secret)
        return cls(MappingProxyType(entries))

    def __bool__(self) -> bool:
        return bool(self.entries)

    def check(self, name: str, secret: str) -> Operator | None:
        """The operator when `secret` is theirs; slow on purpose (PBKDF2): call it off the event loop."""
        entry = self.entries.get(name)
        if entry is None or len(secret) > MAX_SECRET_CHARS:
            if self.entries:  # the same work as for a known name, so timing does not tell names apart
                next(iter(self.entries.values()))[1].matches(secret[:MAX_SECRET_CHARS])
            return None
        operator, hashed = entry
        return operator if hashed.matches(secret) else None

    def knows(self, name: str) -> bool:
        return name in self.entries


class TooManyFailures(Exception):
    """A name failed too often in the last minute; the message says when to try again."""


class Gatekeeper:
    """Checks secrets for the login page and the API, remembering successes and counting failures."""

    def __init__(self, table: OperatorTable, *, max_failures: int = 5, failure_window: float = 60.0,
                 remembered: int = 256, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._table = table
        self._max_failures = max_failures
        self._window = failure_window
        self._monotonic = monotonic
        self._failures: dict[str, collections.deque[float]] = {}
        self._remembered: collections.OrderedDict[bytes, Operator] = collections.OrderedDict()
        self._remember_at_most = remembered

    @property
    def required(self) -> bool:
        return bool(self._table)

    def remembered(self, name: str, secret: str) -> Operator | None:
        """A success already paid for (no hashing, safe on the event loop)."""
        operator = self._remembered.get(self._key(name, secret))
        if operator is not None:
            self._remembered.move_to_end(self._key(name, secret))
        return operator

    def refuse_if_failing(self, name: str) -> None:
        failures = self._recent_failures(name)
        if len(failures) >= self._max_failures:
            wait = self._window - (self._monotonic() - failures[0])
            raise TooManyFailures(f"too many failed sign-ins for {name!r}; try again in {max(wait, 1):.0f} s")

    def check(self, name: str, secret: str) -> Operator | None:
        """The slow check; run it in a thread. Records the outcome."""
        operator = self._table.check(name, secret)
        if operator is None:
            self._recent_failures(name).append(self._monotonic())
            return None
        self._failures.pop(name, None)
        self._remembered[self._key(name, secret)] = operator
        while len(self._remembered) > self._remember_at_most:
            self._remembered.popitem(last=False)
        return operator

    def _recent_failures(self, name: str) -> collections.deque[float]:
        # Unknown names share one count, so a flood of made-up names neither grows this table
        # nor buys unlimited slow hashes.
        key = name if self._table.knows(name) else "\0unknown"
        failures = self._failures.setdefault(key, collections.deque())
        horizon = self._monotonic() - self._window
        while failures and failures[0] < horizon:
            failures.popleft()
        return failures

    @staticmethod
    def _key(name: str, secret: str) -> bytes:
        return hashlib.sha256(f"{name}\0{secret}".encode()).digest()
