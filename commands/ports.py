"""The interfaces the reset rules need from the outside world.

:mod:`commands.reset` decides; these ports carry its decisions to storage and back. They are
``typing.Protocol`` classes so that ``store.repos`` implements them without importing this
package's internals, and so that tests can hand in the real SQLite store rather than mocks.
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Protocol


class Channel(enum.StrEnum):
    """Where a request came from; recorded on every audit row."""

    SMS = "sms"
    IVR = "ivr"
    CLI = "cli"


class Outcome(enum.StrEnum):
    """What a reset request ended as (a bounded set: also a metrics label)."""

    RESET = "reset"
    MISMATCH = "mismatch"
    RATE_LIMITED = "rate_limited"
    INVALID = "invalid"


@dataclass(frozen=True, slots=True)
class Account:
    """An account as the rules see it: no password hash, nothing secret."""

    code: str
    name: str
    phone: str | None
    email: str | None
    registered: bool
    password_set_at: datetime | None = None
    must_change_password: bool = False
    temporary_password_expires_at: datetime | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class ResetEvent:
    """One append-only audit row. Never holds a password."""

    at: datetime
    channel: Channel
    phone_received: str
    phone: str | None
    code_received: str
    code: str | None
    outcome: Outcome
    correlation_id: str
    carrier: str = "other"


@dataclass(frozen=True, slots=True)
class SmsRoute:
    """Where an SMS reply goes: the peer the message came from and its addresses, swapped.

    ``in_reply_to`` is the gateway's id of the inbound message; the outbox keeps at most one
    reply per inbound message.
    """

    peer: str
    to_address: str
    to_ton: int
    to_npi: int
    from_address: str
    in_reply_to: str
    from_ton: int = 0
    from_npi: int = 0


@dataclass(frozen=True, slots=True)
class PasswordChange:
    """A new temporary password hash for one account."""

    code: str
    password_hash: str
    at: datetime
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class QueuedReply:
    """An SMS reply to write to the outbox; ``masked_text`` replaces it once delivered."""

    route: SmsRoute
    text: str
    masked_text: str
    at: datetime


@dataclass(frozen=True, slots=True)
class ResetCounts:
    """Successful resets in the rate-limit window, by code and by phone (absent means zero)."""

    by_code: dict[str, int]
    by_phone: dict[str, int]


class DuplicateCorrelationError(Exception):
    """Another request already used a correlation id: raised by :meth:`AuditLog.append_many`
    (when the store checks at once) or by :meth:`UnitOfWork.commit` (when it checks then)."""


# The ports are set-based: the SMS channel decides a whole batch of messages with a few
# queries and one commit, and a single request is simply a batch of one.


class Accounts(Protocol):
    def get_many(self, codes: Collection[str]) -> dict[str, Account]: ...

    def set_temporary_passwords(self, changes: Sequence[PasswordChange]) -> None: ...


class AuditLog(Protocol):
    def find_many(
        self, keys: Collection[tuple[Channel, str]]
    ) -> dict[tuple[Channel, str], ResetEvent]: ...

    def append_many(self, events: Sequence[ResetEvent]) -> None: ...


class RateLimits(Protocol):
    def resets_since(
        self, since: datetime, codes: Collection[str], phones: Collection[str]
    ) -> ResetCounts: ...

    def lock(self, codes: Collection[str], phones: Collection[str]) -> None:
        """Until this transaction ends, keep other transactions from counting (and adding
        to) the resets of these codes and phones: call it first in a write transaction that
        re-checks the limits, so two of them cannot both see one reset short of a limit."""
        ...


class Outbox(Protocol):
    def enqueue_many(self, replies: Sequence[QueuedReply]) -> None: ...


class UnitOfWork(Protocol):
    """One database transaction: everything written through it commits together or not at all."""

    @property
    def accounts(self) -> Accounts: ...

    @property
    def audit(self) -> AuditLog: ...

    @property
    def rate_limits(self) -> RateLimits: ...

    @property
    def outbox(self) -> Outbox: ...

    def commit(self) -> None: ...

    def __enter__(self) -> UnitOfWork: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


class UnitOfWorkFactory(Protocol):
    def __call__(self, *, write: bool = False) -> UnitOfWork: ...


class PasswordHasher(Protocol):
    def hash(self, password: str) -> str: ...


class Clock(Protocol):
    def now(self) -> datetime:
        """Current time, timezone-aware UTC."""
        ...
