"""Prometheus metrics: what operators graph and alert on, counted at one place per adapter.

Every family lives in a :class:`Metrics` object with a ``CollectorRegistry`` of its own (never
the process-wide default), so tests and several gateways in one process stay apart. Names
follow Prometheus conventions: the ``vssid_`` prefix, ``_total`` counters, ``_seconds``
histograms, base units. Every label value comes from a bounded set: peer names from the
configuration (anything else is ``other``), SMPP commands from the codec, statuses by their
v3.4 name, carriers from :data:`commands.phone.CARRIERS`, outcomes and channels from their
enums. No phone number, code or password is ever a label or a sample.

Counters move from events: :class:`SmppMetrics` is the SMPP listener's observer,
:class:`EventMetrics` the gateway's (finished hotline calls included).
What is cheaper to read than to track (database pool, AMI link, calls in progress) is read at
scrape time by :class:`StatusCollector`.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from commands.phone import CARRIERS, OTHER_CARRIER
from commands.ports import Channel, Outcome
from gateway import __version__
from gateway.events import (
    CallFinished,
    DatabaseFailed,
    GatewayEvent,
    HelpReplied,
    MessagesRefused,
    MessagesStored,
    OutboxDepth,
    ReplyDeferred,
    ReplyFinished,
    ResetDecided,
)
from ivr.records import CallOutcome, CallRecord
from smpp.codec import DecodeError, Pdu, Status
from smpp.events import (
    BindRefused,
    Bound,
    ConnectionClosed,
    ConnectionOpened,
    Event,
    PduReceived,
    PeerError,
    RequestFailed,
    ResponseReceived,
    SendPdu,
    Unbound,
)
from smpp.receipts import RECEIPT_ESM_CLASS
from smpp.session import Session, State
from store.delivery import RECEIPT

UNBOUND: Final = "unbound"
"""The peer label of PDUs on a connection that has not bound (yet)."""
OTHER: Final = "other"

ACK_BUCKETS: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
REPLY_BUCKETS: Final = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)
CALL_BUCKETS: Final = (10.0, 20.0, 30.0, 45.0, 60.0, 90.0, 120.0, 180.0, 300.0, 600.0)
TO_PASSWORD_BUCKETS: Final = (10.0, 15.0, 20.0, 25.0, 30.0, 40.0, 50.0, 60.0, 90.0, 120.0)

REPLY_STATES: Final = ("sent", "acknowledged", "failed", "expired")
REQUEST_FAILURES: Final = ("timeout", "unbound", "connection lost")
_WORD: Final = re.compile(r"[a-z][a-z0-9_.]{0,39}")
_RECEIVING: Final = frozenset({State.BOUND_RX, State.BOUND_TRX})


_STATUS_NAMES: Final = {status.value: status.name for status in Status}


def status_label(status: int) -> str:
    """``ESME_RTHROTTLED`` for 0x58; ``other`` for a status outside the table (bounded)."""
    return _STATUS_NAMES.get(status, OTHER)


def _one_of(value: str, allowed: Iterable[str]) -> str:
    return value if value in allowed else OTHER


def _label(value: str) -> str:
    """A label from our own code (a database operation, a deferral reason): a short word,
    spaces as underscores; anything else is ``other``."""
    value = value.strip().lower().replace(" ", "_")
    return value if _WORD.fullmatch(value) else OTHER


class Metrics:
    """Every metric family of the gateway, registered in :attr:`registry`."""

    def __init__(self, peers: Iterable[str], *, process: bool = False) -> None:
        # The _created series double the output for nothing our operators use; the switch is
        # process-wide, and this process is the gateway.
        disable_created_metrics()
        self.peers = frozenset(peers)
        self.started_at = time.time()
        r = self.registry = CollectorRegistry()
        if process:
            ProcessCollector(registry=r)
            PlatformCollector(registry=r)
            GCCollector(registry=r)

        def counter(name: str, documentation: str, *labels: str) -> Counter:
            return Counter(name, documentation, labels, registry=r)

        def gauge(name: str, documentation: str, *labels: str) -> Gauge:
            return Gauge(name, documentation, labels, registry=r)

        def histogram(name: str, doc: str, buckets: Iterable[float], *labels: str) -> Histogram:
            return Histogram(name, doc, labels, buckets=tuple(buckets), registry=r)

        gauge("vssid_build_info", "Version of the running gateway.", "version").labels(
            __version__
        ).set(1)
        gauge("vssid_start_time_seconds", "When the gateway started (Unix time).").set(
            self.started_at
        )

        # SMPP protocol.
        self.pdus = counter(
            "vssid_smpp_pdus",
            "SMPP PDUs by peer, command, command_status and direction.",
            "peer",
            "command",
            "status",
            "direction",
        )
        self.connections = gauge("vssid_smpp_connections", "Open SMPP connections.")
        self.binds = gauge("vssid_smpp_binds", "Live binds by peer and bind type.", "peer", "type")
        self.bind_refusals = counter(
            "vssid_smpp_bind_refusals", "Refused bind attempts by status.", "status"
        )
        self.peer_errors = counter(
            "vssid_smpp_peer_errors",
            "Protocol errors by the peer (bad or unexpected PDUs).",
            "peer",
            "status",
        )
        self.window_in_use = gauge(
            "vssid_smpp_window_in_use", "Our deliver_sm awaiting the peer's response.", "peer"
        )
        self.window_size = gauge(
            "vssid_smpp_window_size", "Window of the peer's receiving binds together.", "peer"
        )
        self.throttled = counter(
            "vssid_smpp_throttled",
            "ESME_RTHROTTLED responses: direction=out we answered, direction=in the peer did.",
            "peer",
            "direction",
        )
        self.requests_failed = counter(
            "vssid_smpp_requests_failed",
            "Our deliver_sm that got no response, by reason.",
            "peer",
            "reason",
        )

        # SMS pipeline.
        self.received = counter(
            "vssid_sms_received", "Messages (MO) stored, duplicates excluded.", "peer"
        )
        self.duplicates = counter(
            "vssid_sms_duplicates", "Resent messages recognised as duplicates.", "peer"
        )
        self.refused = counter(
            "vssid_sms_refused", "Messages answered with a retry-later status.", "peer", "status"
        )
        self.help_replies = counter(
            "vssid_sms_help_replies", "Messages that got the help reply.", "peer"
        )
        self.replies = counter(
            "vssid_sms_replies",
            "Replies (MT) by peer and state: sent (each deliver_sm written), acknowledged, "
            "failed, expired.",
            "peer",
            "state",
        )
        self.replies_deferred = counter(
            "vssid_sms_replies_deferred",
            "Replies put back in the queue for a later try.",
            "peer",
            "reason",
        )
        self.ack_latency = histogram(
            "vssid_sms_ack_latency_seconds",
            "From a message's arrival to its acknowledgement (after the commit).",
            ACK_BUCKETS,
            "peer",
        )
        self.receipts = counter(
            "vssid_sms_receipts",
            "Delivery receipts peers asked for (registered_delivery) by peer and final state.",
            "peer",
            "state",
        )
        self.reply_latency = histogram(
            "vssid_sms_reply_latency_seconds",
            "From a message's arrival to the peer acknowledging our reply.",
            REPLY_BUCKETS,
            "peer",
        )
        self.outbox_queued = gauge("vssid_outbox_queued", "Replies waiting to be delivered.")
        self.outbox_oldest = gauge(
            "vssid_outbox_oldest_age_seconds", "Age of the oldest queued reply (0 when none)."
        )

        # Resets, all channels.
        self.resets = counter(
            "vssid_resets",
            "Reset decisions by channel, outcome and carrier.",
            "channel",
            "outcome",
            "carrier",
        )
        self.reset_duplicates = counter(
            "vssid_reset_duplicates", "Requests already decided (answered again).", "channel"
        )

        # Hotline.
        self.calls = counter("vssid_ivr_calls", "Finished hotline calls by outcome.", "outcome")
        self.call_duration = histogram(
            "vssid_ivr_call_duration_seconds", "Hotline call duration.", CALL_BUCKETS
        )
        self.billed_minutes = counter(
            "vssid_ivr_billed_minutes", "Minutes billed to callers (per started minute)."
        )
        self.time_to_password = histogram(
            "vssid_ivr_time_to_password_seconds",
            "From the answer to the new password being spoken.",
            TO_PASSWORD_BUCKETS,
        )

        # Database.
        self.database_errors = counter(
            "vssid_database_errors", "Failed database operations.", "operation"
        )
        self.database_up = gauge("vssid_database_up", "1 if the last database check succeeded.")

    def peer(self, name: str | None) -> str:
        """The label for a peer name: configured names as they are, anything else ``other``."""
        if name is None:
            return UNBOUND
        return name if name in self.peers else OTHER

    def observe_call(self, call: CallRecord) -> None:
        outcome = _one_of(str(call.outcome), [o.value for o in CallOutcome])
        self.calls.labels(outcome).inc()
        self.call_duration.observe(call.duration_seconds)
        self.billed_minutes.inc(call.billed_minutes)
        if call.password_spoken_at is not None:
            start = call.answered_at or call.started_at
            waited = (call.password_spoken_at - start).total_seconds()
            self.time_to_password.observe(max(waited, 0.0))


class Children:
    """The children of one labelled metric, each looked up by ``labels()`` only once.

    ``labels()`` validates the values, builds a key and takes the family's lock on every call;
    for the few series the hot path touches (bounded label sets) a dict lookup does the same.
    """

    __slots__ = ("_children", "_metric")

    def __init__(self, metric: Counter | Gauge | Histogram) -> None:
        self._metric = metric
        self._children: dict[tuple[str, ...], Any] = {}

    def get(self, *values: str) -> Any:
        child = self._children.get(values)
        if child is None:
            child = self._children[values] = self._metric.labels(*values)
        return child


class SmppMetrics:
    """The SMPP listener's :class:`smpp.interfaces.Observer` that counts for Prometheus.

    It sees six events per message and reply: :attr:`handlers` maps each event type it
    counts to its handler (fan-outs call those directly), and the series it moves are kept
    (:class:`Children`).
    """

    def __init__(self, metrics: Metrics) -> None:
        self._m = metrics
        self._in_flight: dict[int, tuple[str, int]] = {}  # connection -> (peer, awaiting)
        self._capacity: dict[int, tuple[str, int]] = {}  # connection -> (peer, window)
        self._pdus = Children(metrics.pdus)
        self._replies = Children(metrics.replies)
        self._window_in_use = Children(metrics.window_in_use)
        self._throttled = Children(metrics.throttled)
        self.handlers: dict[type, Callable[[Session, Any], None]] = {
            SendPdu: self._sent,
            PduReceived: self._received,
            ResponseReceived: self._response,
            RequestFailed: self._request_failed,
            PeerError: self._peer_error,
            Bound: self._bound,
            Unbound: self._unbound,
            BindRefused: self._bind_refused,
            ConnectionOpened: self._opened,
            ConnectionClosed: self._closed,
        }

    def observe(self, session: Session, event: Event) -> None:
        handler = self.handlers.get(type(event))
        if handler is not None:
            handler(session, event)

    def _peer(self, session: Session) -> str:
        return self._m.peer(session.bind.peer if session.bind else None)

    def _sent(self, session: Session, event: SendPdu) -> None:
        pdu = event.pdu
        peer = self._peer(session)
        self._count(peer, pdu, "out")
        if pdu.command == "deliver_sm":
            if not (pdu.integer("esm_class") or 0) & RECEIPT_ESM_CLASS:
                self._replies.get(peer, "sent").inc()
            self._track_window(session, peer)

    def _received(self, session: Session, event: PduReceived) -> None:
        item = event.item
        if isinstance(item, DecodeError):
            return  # the session reports it as a PeerError
        self._count(self._peer(session), item, "in")

    def _count(self, peer: str, pdu: Pdu, direction: str) -> None:
        self._pdus.get(peer, pdu.command, status_label(pdu.status), direction).inc()
        if pdu.status == Status.ESME_RTHROTTLED and pdu.is_response:
            self._throttled.get(peer, direction).inc()

    def _response(self, session: Session, event: ResponseReceived) -> None:
        self._track_window(session, self._peer(session))

    def _request_failed(self, session: Session, event: RequestFailed) -> None:
        peer = self._peer(session)
        reason = _one_of(event.reason, REQUEST_FAILURES).replace(" ", "_")
        self._m.requests_failed.labels(peer, reason).inc()
        self._track_window(session, peer)

    def _peer_error(self, session: Session, event: PeerError) -> None:
        self._m.peer_errors.labels(self._peer(session), status_label(event.status)).inc()

    def _bound(self, session: Session, event: Bound) -> None:
        peer = self._m.peer(event.bind.peer)
        self._m.binds.labels(peer, event.bind.kind.value).inc()
        if event.bind.kind.can_receive and session.peer is not None:
            self._capacity[session.connection] = (peer, session.peer.window)
            self._m.window_size.labels(peer).inc(session.peer.window)
        else:
            self._m.window_size.labels(peer).inc(0)  # the series exists from the first bind
        self._window_in_use.get(peer).inc(0)

    def _unbound(self, session: Session, event: Unbound) -> None:
        self._m.binds.labels(self._m.peer(event.bind.peer), event.bind.kind.value).dec()
        self._forget(session.connection)

    def _bind_refused(self, session: Session, event: BindRefused) -> None:
        self._m.bind_refusals.labels(status_label(event.status)).inc()

    def _opened(self, session: Session, event: ConnectionOpened) -> None:
        self._m.connections.inc()

    def _closed(self, session: Session, event: ConnectionClosed) -> None:
        self._m.connections.dec()
        self._forget(session.connection)

    def _track_window(self, session: Session, peer: str) -> None:
        # After Unbound the connection is forgotten; a late RequestFailed must not re-add it.
        if session.peer is None or session.state not in _RECEIVING:
            return
        awaiting = session.peer.window - session.free_window
        _, before = self._in_flight.get(session.connection, (peer, 0))
        self._in_flight[session.connection] = (peer, awaiting)
        if awaiting != before:
            self._window_in_use.get(peer).inc(awaiting - before)

    def _forget(self, connection: int) -> None:
        peer_awaiting = self._in_flight.pop(connection, None)
        if peer_awaiting is not None:
            self._window_in_use.get(peer_awaiting[0]).dec(peer_awaiting[1])
        capacity = self._capacity.pop(connection, None)
        if capacity is not None:
            self._m.window_size.labels(capacity[0]).dec(capacity[1])


_CHANNELS: Final = frozenset(c.value for c in Channel)
_OUTCOMES: Final = frozenset(o.value for o in Outcome)


class EventMetrics:
    """The gateway's :class:`gateway.events.GatewayObserver` that counts for Prometheus.

    Resets and finished replies come once per message: their series are kept
    (:class:`Children`), and :attr:`handlers` maps each event type to its handler.
    """

    def __init__(self, metrics: Metrics) -> None:
        self._m = metrics
        self._resets = Children(metrics.resets)
        self._reset_duplicates = Children(metrics.reset_duplicates)
        self._replies = Children(metrics.replies)
        self._reply_latency = Children(metrics.reply_latency)
        self._received = Children(metrics.received)
        self._duplicates = Children(metrics.duplicates)
        self._ack_latency = Children(metrics.ack_latency)
        self.handlers: dict[type, Callable[[Any], None]] = {
            MessagesStored: self._stored,
            MessagesRefused: self._refused,
            ResetDecided: self._reset,
            HelpReplied: self._help,
            ReplyFinished: self._reply_finished,
            ReplyDeferred: self._reply_deferred,
            OutboxDepth: self._outbox_depth,
            DatabaseFailed: self._database_failed,
            CallFinished: self._call_finished,
        }

    def observe(self, event: GatewayEvent) -> None:
        handler = self.handlers.get(type(event))
        if handler is not None:
            handler(event)

    def _stored(self, event: MessagesStored) -> None:
        peer = self._m.peer(event.peer)
        received = self._received.get(peer)  # both series exist from the first commit
        duplicates = self._duplicates.get(peer)
        if event.stored:
            received.inc(event.stored)
        if event.duplicates:
            duplicates.inc(event.duplicates)
        histogram = self._ack_latency.get(peer)
        for latency in event.ack_latencies:
            histogram.observe(latency)

    def _refused(self, event: MessagesRefused) -> None:
        m = self._m
        m.refused.labels(m.peer(event.peer), status_label(event.status)).inc(event.count)

    def _reset(self, event: ResetDecided) -> None:
        channel = event.channel if event.channel in _CHANNELS else OTHER
        if event.duplicate:
            self._reset_duplicates.get(channel).inc()
            return
        outcome = event.outcome if event.outcome in _OUTCOMES else OTHER
        carrier = event.carrier if event.carrier in CARRIERS else OTHER
        self._resets.get(channel, outcome, carrier).inc()

    def _help(self, event: HelpReplied) -> None:
        self._m.help_replies.labels(self._m.peer(event.peer)).inc()

    def _reply_finished(self, event: ReplyFinished) -> None:
        peer = self._m.peer(event.peer)
        state = event.state if event.state in REPLY_STATES else OTHER
        if event.kind == RECEIPT:
            self._m.receipts.labels(peer, state).inc()
            return
        self._replies.get(peer, state).inc()
        if event.state == "acknowledged" and event.latency is not None:
            self._reply_latency.get(peer).observe(event.latency)

    def _reply_deferred(self, event: ReplyDeferred) -> None:
        m = self._m
        m.replies_deferred.labels(m.peer(event.peer), _label(event.reason)).inc()

    def _outbox_depth(self, event: OutboxDepth) -> None:
        self._m.outbox_queued.set(event.queued)
        self._m.outbox_oldest.set(event.oldest_age or 0.0)

    def _database_failed(self, event: DatabaseFailed) -> None:
        self._m.database_errors.labels(_label(event.operation)).inc()

    def _call_finished(self, event: CallFinished) -> None:
        self._m.observe_call(event.record)


@dataclass(frozen=True, slots=True)
class LiveStatus:
    """What is read rather than counted, at scrape time (None: not part of this gateway)."""

    pool_in_use: int | None = None
    pool_size: int | None = None
    ami_up: bool | None = None
    calls_active: int | None = None
    ami_reconnects: int | None = None
    connections_refused: Mapping[str, int] | None = None
    """SMPP connections refused at connect, by reason."""


class StatusCollector:
    """Adds the values of a :class:`LiveStatus` to each scrape.

    ``read`` runs on the scraping thread: it must only read plain attributes (ints, the
    length of a set), never iterate over state the reactor thread is changing.
    """

    def __init__(self, read: Callable[[], LiveStatus]) -> None:
        self._read = read

    def describe(self) -> Iterator[Metric]:
        return self._families(LiveStatus(0, 0, False, 0, 0, {}))

    def collect(self) -> Iterator[Metric]:
        return self._families(self._read())

    @staticmethod
    def _families(status: LiveStatus) -> Iterator[Metric]:
        gauges = (
            ("vssid_database_pool_in_use", "Database connections checked out.", status.pool_in_use),
            ("vssid_database_pool_size", "Database connections configured.", status.pool_size),
            ("vssid_ami_up", "1 if the AMI link to Asterisk is logged in.", status.ami_up),
            ("vssid_ivr_calls_active", "Hotline calls in the dialog now.", status.calls_active),
        )
        for name, documentation, value in gauges:
            if value is not None:
                yield GaugeMetricFamily(name, documentation, value=float(value))
        if status.ami_reconnects is not None:
            yield CounterMetricFamily(
                "vssid_ami_reconnects",
                "AMI links lost since start (each is followed by a reconnect).",
                value=status.ami_reconnects,
            )
        if status.connections_refused is not None:
            refused = CounterMetricFamily(
                "vssid_smpp_connections_refused",
                "SMPP connections closed at connect: outside every allowlist, or over a cap.",
                labels=("reason",),
            )
            for reason, count in sorted(status.connections_refused.items()):
                refused.add_metric((reason,), count)
            yield refused


__all__ = [
    "CARRIERS",
    "OTHER_CARRIER",
    "EventMetrics",
    "LiveStatus",
    "Metrics",
    "SmppMetrics",
    "StatusCollector",
    "status_label",
]
