"""One SMPP v3.4 connection, from our side (the SMSC role), as a pure state machine.

Rules
=====

1. States: ``OPEN`` (connected, not bound) -> ``BOUND_TX`` | ``BOUND_RX`` | ``BOUND_TRX``
   -> ``UNBOUND`` (an unbind was sent or received; finishing) -> ``CLOSED``. Any state may
   jump to ``CLOSED`` (close, connection lost).
2. What the peer may send in each state is the one table :data:`ALLOWED`, taken line by line
   from v3.4 §2.3 (table 2-1, column "issued by ESME"); each deviation is marked there.
3. A request that is not allowed gets its response with ``ESME_RINVBNDSTS`` (a bind while
   bound: ``ESME_RALYBND``); in ``OPEN`` the connection is then closed. A response that is
   not allowed, or answers nothing we asked, is ignored (we never answer a response).
   A request we do not support, allowed in the state, gets ``generic_nack``
   ``ESME_RINVCMDID``: submit_multi, query_sm, cancel_sm and replace_sm when bound to
   transmit, and outbind and alert_notification (which only an SMSC issues) when bound.
4. Every request gets exactly one response carrying its sequence number. Responses may go out
   in any order, and any number of requests may be outstanding (up to
   :data:`MAX_UNACKNOWLEDGED` awaiting storage; beyond that ``ESME_RTHROTTLED``).
5. A message for us (submit_sm, deliver_sm or data_sm to a configured short code) yields
   :class:`MessageReceived` and NO response until the application calls
   :meth:`Session.acknowledge` after storing it; ``ESME_RTHROTTLED`` / ``ESME_RMSGQFUL`` tell
   the peer to retry later.
6. Binds are checked by the shared :class:`~smpp.registry.Registry` (system_id, address
   allowlist, constant-time password, max_binds, failed-bind throttle). A refused bind is
   answered with its status and the connection closed.
7. Our requests (deliver_sm, enquire_link, unbind) are numbered 1..0x7FFFFFFF per connection.
   deliver_sm are limited to the peer's ``window`` outstanding and its ``max_tps_out``;
   enquire_link and unbind are never blocked by the window.
8. Time is an argument. Deadlines: no bind within ``inactivity_timeout`` of connecting;
   nothing received for ``inactivity_timeout``; ``enquire_link`` after
   ``enquire_link_seconds`` without hearing from the peer; ``response_timeout`` for each of our
   requests (an enquire_link or unbind without answer closes; a deliver_sm fails alone).
9. The peer's mistakes are data: a bad PDU becomes a response with an error status (or a
   ``generic_nack``), a :class:`PeerError` fact, and perhaps a close; nothing raises.
   Misusing the session from our side (:meth:`Session.submit` when it cannot carry the
   request) raises :class:`SubmitError`: that is our bug.

Theory of operation
===================

The adapter cuts bytes into frames (:mod:`smpp.framing`), decodes each (:func:`smpp.codec.decode`,
giving a :class:`~smpp.codec.Pdu` or a :class:`~smpp.codec.DecodeError`) and hands it to
:meth:`Session.receive`. Every entry point returns a list of effects (:mod:`smpp.events`) for
the adapter to perform in order, and the adapter re-arms one timer at :meth:`next_deadline`
and calls :meth:`tick` when it fires. A session is single-threaded and owns no clock; a test
drives it by hand. The checks run in a fixed order: is the command allowed in this state (the
header suffices), then is its body valid, then the command's own rules.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Hashable
from dataclasses import dataclass, replace
from typing import Final

from smpp.codec import ENCODABLE, DecodeError, Pdu, Status
from smpp.events import (
    BindRefused,
    Bound,
    CloseConnection,
    Effect,
    MessageReceived,
    PeerError,
    RequestFailed,
    ResponseReceived,
    SendPdu,
    Unbound,
)
from smpp.framing import FramingError
from smpp.inbound import Rejected, read_message
from smpp.outbound import Outgoing
from smpp.registry import Bind, BindKind, Registry
from smpp.settings import PeerSettings

MAX_UNACKNOWLEDGED: Final = 1000
MAX_SEQUENCE: Final = 0x7FFFFFFF
NOT_A_TEXT: Final = 0x3C
"""esm_class bits 2-5, the message type (v3.4 §5.2.12): set for a delivery receipt (0x04),
an SME delivery or user acknowledgement (0x08, 0x10) and an intermediate notification (0x20)."""


class State(enum.Enum):
    OPEN = "open"
    BOUND_TX = "bound_tx"
    BOUND_RX = "bound_rx"
    BOUND_TRX = "bound_trx"
    UNBOUND = "unbound"
    CLOSED = "closed"


_O, _TX, _RX, _TRX, _U = (State.OPEN, State.BOUND_TX, State.BOUND_RX, State.BOUND_TRX,
                          State.UNBOUND)  # fmt: skip
BOUND: Final = frozenset({_TX, _RX, _TRX})
NEVER: Final[frozenset[State]] = frozenset()

# The states in which the peer may send each command (v3.4 §2.3, "issued by ESME").
ALLOWED: Final[dict[str, frozenset[State]]] = {
    "bind_transmitter": frozenset({_O}),
    "bind_receiver": frozenset({_O}),
    "bind_transceiver": frozenset({_O}),
    "bind_transmitter_resp": NEVER,  # issued by the SMSC
    "bind_receiver_resp": NEVER,
    "bind_transceiver_resp": NEVER,
    # deviation: issued by the SMSC, so no bind state makes them valid; while bound they are
    # unsupported commands (generic_nack ESME_RINVCMDID), before bind like any other request
    "outbind": BOUND,
    "unbind": BOUND | {_U},  # deviation: when both sides unbind at once, answer theirs too
    "unbind_resp": BOUND | {_U},  # we send unbind only from a bound state, then are UNBOUND
    "submit_sm": frozenset({_TX, _TRX}),
    "submit_sm_resp": NEVER,
    "submit_multi": frozenset({_TX, _TRX}),  # unsupported: generic_nack ESME_RINVCMDID
    "submit_multi_resp": NEVER,
    "data_sm": frozenset({_TX, _TRX}),  # from the ESME only when it may transmit
    "data_sm_resp": BOUND | {_U},  # we never send data_sm, so any one is unexpected
    "deliver_sm": frozenset({_TX, _TRX}),  # deviation: some peers send MO as deliver_sm
    "deliver_sm_resp": frozenset({_RX, _TRX, _U}),  # UNBOUND: responses still drain
    "query_sm": frozenset({_TX, _TRX}),  # unsupported: generic_nack ESME_RINVCMDID
    "query_sm_resp": NEVER,
    "cancel_sm": frozenset({_TX, _TRX}),  # unsupported
    "cancel_sm_resp": NEVER,
    "replace_sm": frozenset({_TX, _TRX}),  # unsupported; §2.2: TRX may do all TX may
    "replace_sm_resp": NEVER,
    "enquire_link": BOUND | {_O, _U},  # deviation: answered before bind and while closing
    "enquire_link_resp": BOUND | {_U},
    "alert_notification": BOUND,  # issued by the SMSC; as outbind
    "generic_nack": BOUND | {_U},
}

_BINDS: Final = {
    "bind_transmitter": (BindKind.TRANSMITTER, State.BOUND_TX),
    "bind_receiver": (BindKind.RECEIVER, State.BOUND_RX),
    "bind_transceiver": (BindKind.TRANSCEIVER, State.BOUND_TRX),
}
_MESSAGES: Final = frozenset({"submit_sm", "deliver_sm", "data_sm"})
_HEADER_ERRORS: Final = frozenset({Status.ESME_RINVCMDLEN, Status.ESME_RINVCMDID})


class SubmitError(Exception):
    """:meth:`Session.submit` was called when the request cannot go out; ``reason`` is one of
    ``"not bound to receive"``, ``"duplicate id"``, ``"window full"``, ``"throttled"``, or
    ``"invalid deliver_sm: ..."`` (it can never be encoded: retrying will not help)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(slots=True)
class _Request:
    command: str
    sent_at: float
    outgoing_id: Hashable = None


class Session:
    """The state of one connection; see the module docstring for its rules."""

    def __init__(self, registry: Registry, connection: int, address: str, now: float) -> None:
        self._registry = registry
        self._settings = registry.settings
        self.connection = connection
        self.address = address
        self.state = State.OPEN
        self.bind: Bind | None = None
        self._peer: PeerSettings | None = None
        self._registered = False
        self._opened_at = now
        self._last_received = now
        self._pending: dict[int, tuple[str, int]] = {}  # token -> (command, sequence)
        self._token = 0
        self._outstanding: dict[int, _Request] = {}  # in sending order
        self._by_id: dict[Hashable, int] = {}
        self._sequence = 0
        self._enquiry = 0  # sequence of the last enquire_link we sent
        self._peer_unbind: tuple[int, float] | None = None  # (sequence, received at)
        self._takes_tlvs = True  # the peer bound as v3.4 (TLVs in our PDUs are understood)
        self._our_unbind_from: float | None = None  # our unbind waits for acks since then

    @property
    def peer(self) -> PeerSettings | None:
        return self._peer

    @property
    def free_window(self) -> int:
        """How many more deliver_sm may be outstanding now (0 unless bound to receive)."""
        if self._peer is None or self.state not in (_RX, _TRX):
            return 0
        return max(0, self._peer.window - len(self._by_id))

    @property
    def unacknowledged(self) -> int:
        return len(self._pending)

    # Input from the peer.

    def receive(self, item: Pdu | DecodeError, now: float) -> list[Effect]:
        """One decoded PDU, or the error decoding one, from the peer."""
        if self.state is State.CLOSED:
            return []
        self._last_received = now
        if item.command is not None and self.state not in ALLOWED.get(item.command, NEVER):
            return self._not_allowed(item.command, item.sequence)
        if isinstance(item, DecodeError):
            return self._undecodable(item, now)
        if item.is_response:
            return self._response(item)
        if item.command in _BINDS:
            return self._bind(item, now)
        if item.command in _MESSAGES:
            return self._message(item, now)
        if item.command == "enquire_link":
            return [SendPdu(Pdu("enquire_link_resp", item.sequence))]
        if item.command == "unbind":
            return self._peer_unbinds(item.sequence, now)
        return [
            SendPdu(Pdu("generic_nack", item.sequence, Status.ESME_RINVCMDID)),
            PeerError("unsupported command", Status.ESME_RINVCMDID, item.command),
        ]

    def framing_failed(self, error: FramingError, now: float) -> list[Effect]:
        """The stream announced an impossible command_length: nack if we can, then close."""
        if self.state is State.CLOSED:
            return []
        effects: list[Effect] = []
        if error.sequence is not None:
            effects.append(SendPdu(Pdu("generic_nack", error.sequence, Status.ESME_RINVCMDLEN)))
        effects.append(PeerError(str(error), Status.ESME_RINVCMDLEN, None))
        return effects + self._close("framing error")

    def connection_lost(self, now: float) -> list[Effect]:
        """The transport is gone; fail what was outstanding and release the bind."""
        effects = self._close("connection lost", failure="connection lost")
        return [effect for effect in effects if not isinstance(effect, CloseConnection)]

    # Input from the application.

    def acknowledge(self, token: int, status: int, message_id: str, now: float) -> list[Effect]:
        """Answer the message of :class:`MessageReceived` ``token``: ``ESME_ROK`` with our
        ``message_id`` once it is stored, else ``ESME_RTHROTTLED`` or ``ESME_RMSGQFUL``.
        A token of a closed connection is ignored: the peer will resend."""
        entry = self._pending.pop(token, None)
        if entry is None or self.state is State.CLOSED:
            return []
        command, sequence = entry
        params: dict[str, int | bytes] = {}
        if command == "deliver_sm":
            params["message_id"] = b""  # v3.4 §4.6.2: unused, set to NULL
        elif status == Status.ESME_ROK:
            params["message_id"] = message_id.encode("ascii")
        effects: list[Effect] = [SendPdu(Pdu(f"{command}_resp", sequence, status, params))]
        if self._peer_unbind is not None and not self._pending:
            effects += self._finish_peer_unbind()
        if self._our_unbind_from is not None and not self._pending:
            effects += self._send_unbind(now)
        return effects

    def submit(self, outgoing: Outgoing, now: float) -> list[Effect]:
        """Send one deliver_sm; its outcome comes back as :class:`ResponseReceived` or
        :class:`RequestFailed` under ``outgoing.id``. Raises :class:`SubmitError`."""
        if self._peer is None or self.state not in (_RX, _TRX):
            raise SubmitError("not bound to receive")
        if outgoing.id in self._by_id:
            raise SubmitError("duplicate id")
        if self.free_window <= 0:
            raise SubmitError("window full")
        if outgoing.options and not self._takes_tlvs:
            outgoing = replace(outgoing, options=())  # a receipt's text says it all for v3.3
        try:  # built before a sequence number, a window slot or a TPS token is spent on it
            pdu = outgoing.to_pdu(0)
        except ValueError as error:
            raise SubmitError(f"invalid deliver_sm: {error}") from None
        if not self._registry.take_outbound(self._peer.name, now):
            raise SubmitError("throttled")
        sequence = self._start("deliver_sm", now, outgoing.id)
        self._by_id[outgoing.id] = sequence
        return [SendPdu(replace(pdu, sequence=sequence))]

    def unbind(self, now: float) -> list[Effect]:
        """End the session politely (shutdown): unbind, then close on unbind_resp.

        Messages still being stored are acknowledged first (new ones are refused meanwhile):
        the unbind_resp closes the connection, and a message it left unanswered would come
        back as a resend, handled again if that is after the duplicate window.
        """
        if self.state is State.OPEN:
            return self._close("shutting down")
        if self.state not in BOUND:
            return []
        effects = self._release("unbinding")
        self.state = State.UNBOUND
        if self._pending:
            self._our_unbind_from = now
            return effects
        return [*effects, *self._send_unbind(now)]

    def _send_unbind(self, now: float) -> list[Effect]:
        self._our_unbind_from = None
        return [SendPdu(Pdu("unbind", self._start("unbind", now)))]

    # Time.

    def next_deadline(self) -> float | None:
        """When :meth:`tick` next has something to do, or ``None``."""
        state = self.state
        if state is State.CLOSED:
            return None
        settings = self._settings
        # Asked after nearly every event: a running minimum, no list.
        deadline = math.inf
        if state is State.OPEN:
            deadline = self._opened_at + settings.inactivity_timeout_seconds
        elif state in BOUND:
            deadline = self._last_received + settings.inactivity_timeout_seconds
            if not self._enquiring():
                deadline = min(deadline, self._last_received + settings.enquire_link_seconds)
        if self._outstanding:
            first = next(iter(self._outstanding.values()))
            deadline = min(deadline, first.sent_at + settings.response_timeout_seconds)
        if self._peer_unbind is not None:
            deadline = min(deadline, self._peer_unbind[1] + settings.response_timeout_seconds)
        if self._our_unbind_from is not None:
            deadline = min(deadline, self._our_unbind_from + settings.response_timeout_seconds)
        return None if deadline == math.inf else deadline

    def tick(self, now: float) -> list[Effect]:
        """Act on every deadline that has passed."""
        settings = self._settings
        if (
            self.state is State.OPEN
            and now >= self._opened_at + settings.inactivity_timeout_seconds
        ):
            return self._close("no bind in time")
        if self.state in BOUND and now >= self._last_received + settings.inactivity_timeout_seconds:
            return self._close("inactivity timeout")
        effects: list[Effect] = []
        for sequence, request in list(self._outstanding.items()):
            if request.sent_at + settings.response_timeout_seconds > now:
                break
            del self._outstanding[sequence]
            if request.command != "deliver_sm":
                return effects + self._close(f"no {request.command}_resp in time")
            del self._by_id[request.outgoing_id]
            effects.append(RequestFailed(request.outgoing_id, "timeout"))
        if self._peer_unbind and now >= self._peer_unbind[1] + settings.response_timeout_seconds:
            self._pending.clear()  # never acknowledged: the peer will send them again
            return effects + self._finish_peer_unbind()
        unbind_from = self._our_unbind_from
        if unbind_from is not None and now >= unbind_from + settings.response_timeout_seconds:
            self._pending.clear()  # likewise
            effects += self._send_unbind(now)
        due = self._last_received + settings.enquire_link_seconds
        if self.state in BOUND and not self._enquiring() and now >= due:
            effects.append(SendPdu(Pdu("enquire_link", self._start("enquire_link", now))))
        return effects

    # The rules.

    def _not_allowed(self, command: str, sequence: int) -> list[Effect]:
        if command.endswith("_resp") or command == "generic_nack":
            return [PeerError(f"{command} not expected now", Status.ESME_ROK, command)]
        bound_again = command in _BINDS and self.state in BOUND
        status = Status.ESME_RALYBND if bound_again else Status.ESME_RINVBNDSTS
        effects: list[Effect] = [
            SendPdu(_response(command, sequence, status)),
            PeerError(f"{command} not allowed in state {self.state.value}", status, command),
        ]
        if self.state is State.OPEN:
            effects += self._close(f"{command} before bind")
        return effects

    def _undecodable(self, error: DecodeError, now: float) -> list[Effect]:
        command = error.command
        fault = PeerError(error.reason, error.status, command)
        if command is not None and (command.endswith("_resp") or command == "generic_nack"):
            return [fault]  # a response is never answered
        if command is not None and command in _BINDS:
            self._registry.bind_failed(self.address, now)
            refused = BindRefused("", _BINDS[command][0], self.address, error.status)
            answer = SendPdu(_response(command, error.sequence, error.status))
            return [answer, refused, fault, *self._close("malformed bind")]
        return [SendPdu(_response(command, error.sequence, error.status)), fault]

    def _bind(self, pdu: Pdu, now: float) -> list[Effect]:
        kind, state = _BINDS[pdu.command]
        system_id = pdu.string("system_id")
        verdict = self._registry.authenticate(system_id, pdu.string("password"), self.address, now)
        response = f"{pdu.command}_resp"
        if verdict.peer is None:
            return [
                SendPdu(Pdu(response, pdu.sequence, verdict.status)),
                BindRefused(system_id, kind, self.address, verdict.status),
                *self._close("bind refused"),
            ]
        params: dict[str, int | bytes] = {"system_id": self._settings.system_id.encode("ascii")}
        self._takes_tlvs = (pdu.integer("interface_version") or 0) >= 0x34  # v3.3 knows none
        if self._takes_tlvs:
            params["sc_interface_version"] = 0x34
        self._peer = verdict.peer
        self.bind = Bind(self.connection, verdict.peer.name, system_id, kind, self.address, now)
        self._registry.add(self.bind)
        self._registered = True
        self.state = state
        return [SendPdu(Pdu(response, pdu.sequence, Status.ESME_ROK, params)), Bound(self.bind)]

    def _message(self, pdu: Pdu, now: float) -> list[Effect]:
        assert self._peer is not None  # allowed only in bound states
        if len(self._pending) >= MAX_UNACKNOWLEDGED:
            return _reject(pdu, Status.ESME_RTHROTTLED, "too many unacknowledged messages")
        if (pdu.integer("esm_class") or 0) & NOT_A_TEXT:
            # A delivery receipt or an acknowledgement, not a citizen's text. Answered as
            # received and dropped: a help reply to it would draw another receipt, and so on.
            params: dict[str, int | bytes] = {"message_id": b""}
            return [SendPdu(Pdu(f"{pdu.command}_resp", pdu.sequence, Status.ESME_ROK, params))]
        message = read_message(
            pdu, short_codes=self._settings.short_codes, packed=self._peer.gsm7_packed, now=now
        )
        if isinstance(message, Rejected):
            return _reject(pdu, message.status, message.reason)
        if not self._registry.accept_message(self._peer.name, now):
            return [SendPdu(_response(pdu.command, pdu.sequence, Status.ESME_RTHROTTLED))]
        self._token += 1
        self._pending[self._token] = (pdu.command, pdu.sequence)
        return [MessageReceived(self._token, message)]

    def _peer_unbinds(self, sequence: int, now: float) -> list[Effect]:
        effects = self._release("unbound by peer")
        self.state = State.UNBOUND
        self._peer_unbind = (sequence, now)
        if not self._pending:  # else unbind_resp waits until they are acknowledged
            effects += self._finish_peer_unbind()
        return effects

    def _finish_peer_unbind(self) -> list[Effect]:
        assert self._peer_unbind is not None
        sequence, _ = self._peer_unbind
        self._peer_unbind = None
        return [SendPdu(Pdu("unbind_resp", sequence)), *self._close("unbound by peer")]

    def _response(self, pdu: Pdu) -> list[Effect]:
        request = self._outstanding.get(pdu.sequence)
        expected = request and pdu.command in ("generic_nack", f"{request.command}_resp")
        if request is None or not expected:
            return [PeerError("response to no request of ours", pdu.status, pdu.command)]
        del self._outstanding[pdu.sequence]
        if request.command == "deliver_sm":
            del self._by_id[request.outgoing_id]
            return [ResponseReceived(request.outgoing_id, pdu.status, pdu.string("message_id"))]
        if request.command == "unbind":
            return self._close("unbound")
        return []

    # Bookkeeping.

    def _start(self, command: str, now: float, outgoing_id: Hashable = None) -> int:
        while True:
            self._sequence = self._sequence % MAX_SEQUENCE + 1
            if self._sequence not in self._outstanding:
                break
        self._outstanding[self._sequence] = _Request(command, now, outgoing_id)
        if command == "enquire_link":
            self._enquiry = self._sequence
        return self._sequence

    def _enquiring(self) -> bool:
        # At most one enquire_link is outstanding (tick sends one only when none is), so
        # looking up the last one's sequence answers without walking the window.
        request = self._outstanding.get(self._enquiry)
        return request is not None and request.command == "enquire_link"

    def _release(self, reason: str) -> list[Effect]:
        if not self._registered or self.bind is None:
            return []
        self._registered = False
        self._registry.remove(self.bind)
        return [Unbound(self.bind, reason)]

    def _close(self, reason: str, failure: str = "unbound") -> list[Effect]:
        if self.state is State.CLOSED:
            return []
        effects = self._release(reason)
        effects += [
            RequestFailed(request.outgoing_id, failure)
            for request in self._outstanding.values()
            if request.command == "deliver_sm"
        ]
        self._outstanding.clear()
        self._by_id.clear()
        self._pending.clear()
        self._peer_unbind = None
        self._our_unbind_from = None
        self.state = State.CLOSED
        return [*effects, CloseConnection(reason)]


def _response(command: str | None, sequence: int, status: int) -> Pdu:
    """The response to a request we refuse: its own ``*_resp`` where one exists, else
    ``generic_nack`` (also for header errors, as v3.4 §4.3 says).

    ``ESME_RSUBMITFAIL`` refuses a message for good. It names a failed submit, so a
    deliver_sm, which we receive as an ESME would, gets the v3.4 status an ESME has for the
    same: ``ESME_RX_P_APPN``, a permanent application error.
    """
    if command == "deliver_sm" and status == Status.ESME_RSUBMITFAIL:
        status = Status.ESME_RX_P_APPN
    name = f"{command}_resp"
    if command is None or status in _HEADER_ERRORS or name not in ENCODABLE:
        return Pdu("generic_nack", sequence, status)
    return Pdu(name, sequence, status, {"message_id": b""} if command == "deliver_sm" else {})


def _reject(pdu: Pdu, status: int, reason: str) -> list[Effect]:
    return [
        SendPdu(_response(pdu.command, pdu.sequence, status)),
        PeerError(reason, status, pdu.command),
    ]
