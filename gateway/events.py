"""What the SMS pipeline and the reset path report, for logs and metrics to observe.

The SMPP listener reports protocol events through :class:`smpp.interfaces.Observer`; the
gateway's own adapters (storing messages, deciding resets, delivering replies) report these,
each at one place, to a :class:`GatewayObserver`. Observers must not act and must not block.
No event carries a password, and phone numbers and codes appear only where a log needs them
(observers mask them; metrics never use them as labels).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from ivr.records import CallRecord


@dataclass(frozen=True, slots=True)
class MessagesStored:
    """A group commit stored messages from ``peer``; each was acknowledged after it."""

    peer: str
    stored: int
    duplicates: int
    ack_latencies: tuple[float, ...]
    """Seconds from each message's arrival to its acknowledgement being released."""


@dataclass(frozen=True, slots=True)
class MessagesRefused:
    """Messages from ``peer`` answered with ``status`` (ESME_RTHROTTLED / ESME_RMSGQFUL)."""

    peer: str
    status: int
    count: int
    reason: str


@dataclass(frozen=True, slots=True)
class ResetDecided:
    """One reset decision (any channel). ``phone`` and ``code`` are for masked logging only."""

    channel: str
    outcome: str
    carrier: str
    duplicate: bool
    correlation_id: str
    phone: str | None
    code: str | None


@dataclass(frozen=True, slots=True)
class HelpReplied:
    """A message that was not a command got the help reply."""

    peer: str
    template: str


@dataclass(frozen=True, slots=True)
class ReplyFinished:
    """A reply reached a final state: ``acknowledged``, ``failed`` or ``expired``."""

    peer: str
    state: str
    status: int | None
    latency: float | None
    """Seconds from the citizen's message arriving to the peer acknowledging our reply."""
    kind: str = "reply"
    """``reply``, or ``receipt`` for a delivery receipt the peer asked for."""


@dataclass(frozen=True, slots=True)
class ReplyDeferred:
    """A reply goes back to the queue for a later try (throttled, time-out, bind lost)."""

    peer: str
    status: int | None
    reason: str


@dataclass(frozen=True, slots=True)
class OutboxDepth:
    """Replies waiting to be delivered, and the age of the oldest (None when empty)."""

    queued: int
    oldest_age: float | None


@dataclass(frozen=True, slots=True)
class DatabaseFailed:
    """A database operation failed (the operation's name, never its parameters)."""

    operation: str
    error: str


@dataclass(frozen=True, slots=True)
class CallFinished:
    """A hotline call ended and was recorded (the record never holds a password)."""

    record: CallRecord


GatewayEvent = (
    MessagesStored
    | MessagesRefused
    | ResetDecided
    | HelpReplied
    | ReplyFinished
    | ReplyDeferred
    | OutboxDepth
    | DatabaseFailed
    | CallFinished
)


class GatewayObserver(Protocol):
    """Sees every :data:`GatewayEvent`; must not act or block."""

    def observe(self, event: GatewayEvent) -> None: ...


Handler = Callable[[Any], None]


class Observers:
    """Fans an event out to several observers (metrics, logs).

    An observer with a ``handlers`` table (event type -> handler, as the metrics and the logs
    have) is called straight at the handler for the event's type, and not at all for a type
    it has no handler for; any other observer gets every event.
    """

    def __init__(self, *observers: GatewayObserver) -> None:
        self._observers = list(observers)
        self._by_type: dict[type, tuple[Handler, ...]] = {}

    def add(self, observer: GatewayObserver) -> None:
        self._observers.append(observer)
        self._by_type.clear()

    def observe(self, event: GatewayEvent) -> None:
        handlers = self._by_type.get(type(event))
        if handlers is None:
            handlers = self._by_type[type(event)] = self._handlers(type(event))
        for handler in handlers:
            handler(event)

    def _handlers(self, kind: type) -> tuple[Handler, ...]:
        found: list[Handler] = []
        for observer in self._observers:
            table: dict[type, Handler] | None = getattr(observer, "handlers", None)
            if table is None:
                found.append(observer.observe)
            elif kind in table:
                found.append(table[kind])
        return tuple(found)
