"""What the SMPP listener needs from the application, and what it tells observers.

The listener (:mod:`smpp.protocol`) decides nothing about messages: it hands each one to an
:class:`InboundHandler` and answers the peer with what the handler's Deferred returns (after
the message is stored). Bind changes go to :class:`BindWatcher` s, so that queued replies can go
out when a peer binds again. Every effect and input of every connection passes one
:class:`Observer`, the single place where logs and metrics hook in.
"""

from __future__ import annotations

from typing import NamedTuple, Protocol

from twisted.internet.defer import Deferred

from smpp.events import Event
from smpp.inbound import InboundMessage
from smpp.registry import Bind
from smpp.session import Session


class Acknowledgement(NamedTuple):
    """How to answer a message: ``ESME_ROK`` and our message id once it is stored; else
    ``ESME_RTHROTTLED`` or ``ESME_RMSGQFUL`` (and any id) so the peer retries later."""

    status: int
    message_id: str


class DeliveryResult(NamedTuple):
    """The peer's response to one of our deliver_sm (a ``generic_nack`` included)."""

    status: int
    message_id: str


class DeliveryFailed(Exception):  # noqa: N818 - a fact, as DESIGN.md names errors
    """A deliver_sm could not be sent or got no response. ``reason``: ``"timeout"``,
    ``"connection lost"``, ``"unbound"`` (it may have reached the peer), or ``"no bind"``,
    ``"window full"``, ``"throttled"``, ``"not bound to receive"`` (it was not sent), or
    ``"invalid deliver_sm: ..."`` (it was not sent and never can be: an address that is not
    printable ASCII, say)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    @property
    def sent(self) -> bool:
        """Whether the deliver_sm was written (so the peer may have it)."""
        return self.reason in ("timeout", "connection lost", "unbound")


class InboundHandler(Protocol):
    """Stores a message, then says how to answer it. A failed Deferred is answered
    ``ESME_RTHROTTLED``: nothing is acknowledged that is not stored."""

    def message_received(
        self, bind: Bind, message: InboundMessage
    ) -> Deferred[Acknowledgement]: ...


class BindWatcher(Protocol):
    """Told when a bind of any peer comes up or goes down."""

    def bind_up(self, bind: Bind) -> None: ...

    def bind_down(self, bind: Bind) -> None: ...


class Observer(Protocol):
    """Sees every event of every connection, in order. ``session`` is for reading (its
    ``bind``, ``connection``, ``address``, ``free_window``); an observer must not act."""

    def observe(self, session: Session, event: Event) -> None: ...


class NullObserver:
    """The default observer: sees everything, keeps nothing."""

    def observe(self, session: Session, event: Event) -> None:
        pass
