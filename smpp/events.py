"""The effects a session returns to its adapter.

A :class:`~smpp.session.Session` never performs I/O; it returns a list of these effects and the
adapter carries them out in order. Effects named as commands (:class:`SendPdu`,
:class:`CloseConnection`) must be performed; effects named as facts (:class:`Bound`,
:class:`MessageReceived`, :class:`ResponseReceived`, ...) report what happened so that the
adapter can call the application and so that logs and metrics can observe every one of them at
a single place.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

from smpp.codec import DecodeError, Pdu
from smpp.inbound import InboundMessage
from smpp.registry import Bind, BindKind

# Effects to perform.


@dataclass(frozen=True, slots=True)
class SendPdu:
    """Encode and write this PDU."""

    pdu: Pdu


@dataclass(frozen=True, slots=True)
class CloseConnection:
    """Close the connection once what was written has been flushed."""

    reason: str


# Facts to act on or observe.


@dataclass(frozen=True, slots=True)
class Bound:
    """A bind succeeded; the bind is in the registry until :class:`Unbound`."""

    bind: Bind


@dataclass(frozen=True, slots=True)
class BindRefused:
    """A bind attempt was refused with ``status`` (the password is never part of this)."""

    system_id: str
    kind: BindKind
    address: str
    status: int


@dataclass(frozen=True, slots=True)
class Unbound:
    """The bind is gone (unbind either way, close, or connection lost); stop using it."""

    bind: Bind
    reason: str


@dataclass(frozen=True, slots=True)
class MessageReceived:
    """A message for us. Store it, then call ``Session.acknowledge(token, ...)``; no response
    goes to the peer before that."""

    token: int
    message: InboundMessage


@dataclass(frozen=True, slots=True)
class ResponseReceived:
    """The peer answered our deliver_sm ``outgoing_id`` with ``status`` (a ``generic_nack``
    counts, with its status)."""

    outgoing_id: Hashable
    status: int
    message_id: str


@dataclass(frozen=True, slots=True)
class RequestFailed:
    """Our deliver_sm ``outgoing_id`` got no response: ``reason`` is ``"timeout"``,
    ``"unbound"`` or ``"connection lost"``. It may or may not have reached the peer."""

    outgoing_id: Hashable
    reason: str


@dataclass(frozen=True, slots=True)
class PeerError:
    """The peer broke the protocol (a bad PDU, an unexpected response...). Already answered
    as the rules say; reported so that it can be logged and counted."""

    reason: str
    status: int
    command: str | None


Effect = (
    SendPdu
    | CloseConnection
    | Bound
    | BindRefused
    | Unbound
    | MessageReceived
    | ResponseReceived
    | RequestFailed
    | PeerError
)


# Observed by the adapter, not returned by the session: with the effects above, everything an
# observer (logs, metrics) needs to see of a connection.


@dataclass(frozen=True, slots=True)
class ConnectionOpened:
    """A peer connected from ``address``."""

    address: str


@dataclass(frozen=True, slots=True)
class PduReceived:
    """A PDU, or the error decoding one, arrived (before the session acts on it)."""

    item: Pdu | DecodeError


@dataclass(frozen=True, slots=True)
class ConnectionClosed:
    """The connection is gone."""

    reason: str


Event = Effect | ConnectionOpened | PduReceived | ConnectionClosed
