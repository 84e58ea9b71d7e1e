"""SMS out: deliver queued replies over the binds of the peer each request came from.

For every peer with a live receiver (or transceiver) bind, the dispatcher claims as many due
replies as the peer can take right now (its binds' free windows, capped by ``max_tps_out``),
sends each as deliver_sm, and records the results in group commits. Final results:
``acknowledged`` (the body's password is masked at the same moment), ``failed`` (a permanent
error status). Temporary trouble (``ESME_RTHROTTLED``, ``ESME_RMSGQFUL``, a time-out, a lost
bind) puts the reply back in the queue with an exponential back-off; a peer that throttles us
is also paused briefly. Replies nobody could deliver before ``expires_at`` become ``expired``.
See :mod:`store.delivery` for how claims make this safe across instances and crashes.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy.engine import Engine
from twisted.internet.defer import Deferred, DeferredList, succeed
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure

from commands.ports import Clock
from gateway.events import (
    DatabaseFailed,
    GatewayObserver,
    OutboxDepth,
    ReplyDeferred,
    ReplyFinished,
)
from gateway.workers import WorkerPool
from smpp.codec import Status
from smpp.interfaces import DeliveryFailed, DeliveryResult
from smpp.outbound import Outgoing, outgoing_parts
from smpp.protocol import SmppListener
from smpp.receipts import receipt_part
from smpp.registry import Bind
from smpp.settings import PeerSettings, SmppSettings
from store.delivery import (
    ACKNOWLEDGED,
    FAILED,
    QUEUED,
    RECEIPT,
    REPLY,
    ClaimedReply,
    DeliveryOutcome,
    claim_replies,
    expire_replies,
    finish_replies,
    outbox_depth,
    queued_by_peer,
    release_claims,
)

log = Logger()

TEMPORARY_STATUSES = frozenset(
    {
        Status.ESME_RTHROTTLED,
        Status.ESME_RMSGQFUL,
        Status.ESME_RSYSERR,
        0x64,  # ESME_RX_T_APPN: temporary application error (v3.4 §5.1.3)
    }
)
INVALID = "invalid deliver_sm"
"""How :class:`DeliveryFailed` reasons start when the reply can never be encoded."""
MAX_CLAIM = 500
HOUSEKEEPING_SECONDS = 1.0
THROTTLE_PAUSE_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 60.0


def backoff(attempts: int) -> float:
    """Seconds before the next try: 1, 2, 4, ... up to a minute."""
    return min(2.0 ** max(attempts - 1, 0), MAX_BACKOFF_SECONDS)


class OutboxDispatcher:
    """Claims, sends and settles replies; a :class:`smpp.interfaces.BindWatcher`."""

    def __init__(
        self,
        listener: SmppListener,
        engine: Engine,
        workers: WorkerPool,
        settings: SmppSettings,
        instance: str,
        clock: Clock,
        reactor: IReactorTime,
        observer: GatewayObserver,
    ) -> None:
        self._listener = listener
        self._engine = engine
        self._workers = workers
        self._settings = settings
        self._peers: dict[str, PeerSettings] = {peer.name: peer for peer in settings.peers}
        self._instance = instance
        self._clock = clock
        self._reactor = reactor
        self._observer = observer
        self._lease = timedelta(seconds=settings.response_timeout_seconds * 2 + 30)
        self._claiming: set[str] = set()
        self._again: set[str] = set()
        self._paused_until: dict[str, float] = {}
        self._results: dict[str, list[DeliveryOutcome]] = {}
        self._finishing: set[str] = set()
        self._latencies: dict[int, datetime | None] = {}
        self._receipts: set[int] = set()  # ids of the delivery receipts among those in flight
        self._retries: dict[str, IDelayedCall] = {}  # per peer: writing its results again
        self._unwritten: set[str] = set()  # peers whose last result write failed
        self._stopped = False
        self._settled_waiters: list[Deferred[None]] = []
        self._housekeeping = LoopingCall(self._tick)
        self._housekeeping.clock = reactor

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> Deferred[None]:
        """Release our own stale claims (after a restart), then start the periodic work."""
        released = self._workers.run(
            release_claims, self._engine, self._clock.now(), self._instance
        )

        def started(replies: list[tuple[int, str]]) -> None:
            if replies:
                log.info(
                    "{count} replies claimed before a restart go back to the queue",
                    count=len(replies),
                )
            self._housekeeping.start(HOUSEKEEPING_SECONDS, now=True)

        return released.addCallback(started)

    def stop(self) -> None:
        """Claim and send nothing more; results of sends still in flight are still written
        (see :meth:`settled`), once each, without retrying."""
        self._stopped = True
        if self._housekeeping.running:
            self._housekeeping.stop()
        retries, self._retries = self._retries, {}
        for peer, call in retries.items():
            if call.active():
                call.cancel()
                self._finish(peer)  # one last try now rather than a timer after shutdown

    def settled(self) -> Deferred[None]:
        """Fires once no claim and no result write is in progress. At shutdown, after the
        binds are gone (every send has ended), so that the worker pool outlives the writes."""
        if self._is_settled():
            return succeed(None)
        waiter: Deferred[None] = Deferred()
        self._settled_waiters.append(waiter)
        return waiter

    def _is_settled(self) -> bool:
        return not (self._claiming or self._finishing or any(self._results.values()))

    def _check_settled(self) -> None:
        if self._settled_waiters and self._is_settled():
            waiters, self._settled_waiters = self._settled_waiters, []
            for waiter in waiters:
                waiter.callback(None)

    # -- BindWatcher -----------------------------------------------------------------------

    def bind_up(self, bind: Bind) -> None:
        self.pump(bind.peer)

    def bind_down(self, bind: Bind) -> None:
        pass  # in-flight sends fail on their own and go back to the queue

    # -- sending ---------------------------------------------------------------------------

    def wake(self) -> None:
        """New replies were queued: try every peer that has a bind."""
        for peer in self._peers:
            self.pump(peer)

    def pump(self, peer: str) -> None:
        if peer not in self._peers or self._stopped:
            return  # not configured (any more): its replies wait, and expire, in the queue
        if peer in self._claiming:
            self._again.add(peer)
            return
        if self._reactor.seconds() < self._paused_until.get(peer, 0.0):
            return
        capacity = min(self._listener.capacity(peer), MAX_CLAIM)
        if capacity <= 0:
            return
        self._claiming.add(peer)
        claimed = self._workers.run(
            claim_replies,
            self._engine,
            peer,
            self._instance,
            capacity,
            self._clock.now(),
            self._lease,
        )
        claimed.addCallbacks(
            self._send_all,
            self._claim_failed,
            callbackArgs=(peer, capacity),
            errbackArgs=(peer,),
        )

    def _send_all(self, replies: list[ClaimedReply], peer: str, asked: int) -> None:
        self._claiming.discard(peer)
        if self._stopped:  # claimed as we were stopping: back to the queue, unsent
            now = self._clock.now()
            for reply in replies:
                outcome = DeliveryOutcome(reply.id, QUEUED, None, "shutting down", retry_at=now)
                self._record(peer, outcome)
            self._check_settled()
            return
        for reply in replies:
            self._send(reply)
        if len(replies) == asked or peer in self._again:
            self._again.discard(peer)
            self.pump(peer)

    def _claim_failed(self, failure: Failure, peer: str) -> None:
        self._claiming.discard(peer)
        log.failure("claiming replies for {peer} failed", failure, peer=peer)
        self._observer.observe(DatabaseFailed("claim replies", type(failure.value).__name__))
        self._check_settled()

    def _send(self, reply: ClaimedReply) -> None:
        """Send ``reply``'s parts. One that can never be sent (an address that is not ASCII,
        say: the codec raises) is recorded ``failed`` at once; it must not stop the rest of
        the claimed batch, which would stay ``sending`` until its lease ran out."""
        settings = self._peers.get(reply.peer)
        sends: list[Deferred[DeliveryResult]] = []
        try:
            parts = self._parts(reply, settings)
            self._latencies[reply.id] = reply.received_at
            for part in parts:
                sends.append(self._listener.send(reply.peer, part))
        except Exception:
            log.failure("reply {id} cannot be sent; it is marked failed", id=reply.id)
            for sent in sends:  # earlier parts of it may be out: their results no longer matter
                sent.addErrback(lambda _: None)
            self._record(reply.peer, DeliveryOutcome(reply.id, FAILED, None, "cannot be sent"))
            return
        if len(sends) == 1:  # nearly every reply: no DeferredList needed
            sends[0].addBoth(self._settled_one, reply)
            return
        DeferredList(sends, consumeErrors=True).addCallback(self._settled, reply)

    def _parts(self, reply: ClaimedReply, settings: PeerSettings | None) -> list[Outgoing]:
        if reply.kind == RECEIPT:
            self._receipts.add(reply.id)
            return [
                receipt_part(
                    (reply.id, 1),
                    str(-int(reply.in_reply_to)),  # a receipt names its message negated
                    reply.body,
                    source_addr=reply.from_address,
                    destination_addr=reply.to_address,
                    source_addr_ton=reply.from_ton,
                    source_addr_npi=reply.from_npi,
                    dest_addr_ton=reply.to_ton,
                    dest_addr_npi=reply.to_npi,
                    packed=settings.gsm7_packed if settings else False,
                )
            ]
        return outgoing_parts(
            reply.id,
            reply.body,
            source_addr=reply.from_address,
            destination_addr=reply.to_address,
            reference=reply.id % 256,
            packed=settings.gsm7_packed if settings else False,
            source_addr_ton=reply.from_ton,
            source_addr_npi=reply.from_npi,
            dest_addr_ton=reply.to_ton,
            dest_addr_npi=reply.to_npi,
        )

    def _settled_one(self, result: DeliveryResult | Failure, reply: ClaimedReply) -> None:
        self._settled([(not isinstance(result, Failure), result)], reply)

    def _settled(
        self, results: Sequence[tuple[bool, DeliveryResult | Failure]], reply: ClaimedReply
    ) -> None:
        self._record(reply.peer, self._outcome(reply, results))

    def _record(self, peer: str, outcome: DeliveryOutcome) -> None:
        self._results.setdefault(peer, []).append(outcome)
        self._finish(peer)

    def _outcome(
        self, reply: ClaimedReply, results: Sequence[tuple[bool, DeliveryResult | Failure]]
    ) -> DeliveryOutcome:
        statuses: list[int] = []
        message_id = None
        for ok, value in results:
            if ok:
                assert isinstance(value, DeliveryResult)
                statuses.append(value.status)
                message_id = value.message_id or message_id
                continue
            assert isinstance(value, Failure)
            error = value.value
            if isinstance(error, DeliveryFailed) and error.reason.startswith(INVALID):
                return DeliveryOutcome(reply.id, FAILED, None, error.reason)  # never sendable
            if isinstance(error, DeliveryFailed):
                retry = self._retry_at(0 if not error.sent else reply.attempts)
                return DeliveryOutcome(reply.id, QUEUED, None, error.reason, retry_at=retry)
            log.failure("sending reply {id} failed", value, id=reply.id)
            return DeliveryOutcome(
                reply.id, QUEUED, None, "error", retry_at=self._retry_at(reply.attempts)
            )
        permanent = [s for s in statuses if s != Status.ESME_ROK and s not in TEMPORARY_STATUSES]
        if permanent:
            return DeliveryOutcome(reply.id, FAILED, permanent[0], f"status {permanent[0]:#x}")
        temporary = [s for s in statuses if s in TEMPORARY_STATUSES]
        if temporary:
            if Status.ESME_RTHROTTLED in temporary:
                self._paused_until[reply.peer] = self._reactor.seconds() + THROTTLE_PAUSE_SECONDS
            return DeliveryOutcome(
                reply.id,
                QUEUED,
                temporary[0],
                f"status {temporary[0]:#x}",
                retry_at=self._retry_at(reply.attempts),
            )
        return DeliveryOutcome(reply.id, ACKNOWLEDGED, Status.ESME_ROK, "delivered", message_id)

    def _retry_at(self, attempts: int) -> datetime:
        seconds = backoff(attempts) if attempts else 0.0
        return self._clock.now() + timedelta(seconds=seconds)

    # -- recording results (group commits per peer) ---------------------------------------

    def _finish(self, peer: str) -> None:
        if peer in self._finishing or not self._results.get(peer):
            return
        outcomes = self._results.pop(peer)
        self._finishing.add(peer)
        written = self._workers.run(
            finish_replies, self._engine, peer, self._instance, outcomes, self._clock.now()
        )
        written.addCallbacks(
            self._finished,
            self._finish_failed,
            callbackArgs=(peer, outcomes),
            errbackArgs=(peer, outcomes),
        )

    def _finished(self, ids: list[int], peer: str, outcomes: list[DeliveryOutcome]) -> None:
        self._finishing.discard(peer)
        self._unwritten.discard(peer)  # what failed before was written with these
        recorded = set(ids)
        now = self._clock.now()
        for outcome in outcomes:
            received = self._latencies.pop(outcome.id, None)
            kind = RECEIPT if outcome.id in self._receipts else REPLY
            self._receipts.discard(outcome.id)
            if outcome.id not in recorded:
                continue
            if outcome.state == QUEUED:
                self._observer.observe(ReplyDeferred(peer, outcome.status, outcome.detail))
            else:
                latency = (now - received).total_seconds() if received else None
                finished = ReplyFinished(peer, outcome.state, outcome.status, latency, kind)
                self._observer.observe(finished)
        self._finish(peer)
        self.pump(peer)
        self._check_settled()

    def _finish_failed(self, failure: Failure, peer: str, outcomes: list[DeliveryOutcome]) -> None:
        # The claims stay ours until the lease runs out (or we start again): try to record
        # the results again in a second, unless we are stopping.
        self._finishing.discard(peer)
        self._unwritten.add(peer)
        log.failure("recording {count} delivery results failed", failure, count=len(outcomes))
        self._observer.observe(DatabaseFailed("finish replies", type(failure.value).__name__))
        if self._stopped:  # these stay claimed: released when we start again
            for outcome in outcomes:
                self._latencies.pop(outcome.id, None)
                self._receipts.discard(outcome.id)
            self._finish(peer)  # results that came in meanwhile get their one try
            self._check_settled()
            return
        self._results.setdefault(peer, [])[:0] = outcomes
        if peer not in self._retries:
            self._retries[peer] = self._reactor.callLater(1.0, self._retry_finish, peer)

    def _retry_finish(self, peer: str) -> None:
        del self._retries[peer]
        self._finish(peer)

    # -- housekeeping ----------------------------------------------------------------------

    def _tick(self) -> Deferred[None]:
        return Deferred.fromCoroutine(self._housekeep())

    async def _housekeep(self) -> None:
        try:
            now = self._clock.now()
            # Claims of an instance that died (and was not restarted under its name) are
            # released by whichever instance notices first that their lease ran out; our own
            # are kept while results of ours wait to be written again (the database was
            # down): released, they would be claimed and sent again.
            keep = self._instance if self._unwritten else None
            released = await self._workers.run(release_claims, self._engine, now, keep=keep)
            for _, peer in released:
                self._observer.observe(ReplyDeferred(peer, None, "lease expired"))
            if released:
                log.info(
                    "{count} replies whose claim's lease ran out go back to the queue",
                    count=len(released),
                )
            expired = await self._workers.run(expire_replies, self._engine, now)
            for _, peer, kind in expired:
                self._observer.observe(ReplyFinished(peer, "expired", None, None, kind))
            due = await self._workers.run(queued_by_peer, self._engine, now)
            for peer in due:
                self.pump(peer)
            count, oldest = await self._workers.run(outbox_depth, self._engine)
            age = (self._clock.now() - oldest).total_seconds() if oldest else None
            self._observer.observe(OutboxDepth(count, age))
        except Exception as error:  # the database may be down: keep ticking, say so once per tick
            log.failure("outbox housekeeping failed")
            self._observer.observe(DatabaseFailed("outbox housekeeping", type(error).__name__))
