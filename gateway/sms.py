"""SMS in: store what peers send (group commits), then handle it (parse, reset, queue replies).

Two stages, both driven from the reactor and both doing their blocking work on the worker
pool:

* :class:`InboundStore` is the SMPP listener's :class:`smpp.interfaces.InboundHandler`. Each
  message waits in memory only until the next commit, which stores every message that arrived
  meanwhile in one transaction (a group commit); only then are their acknowledgements
  released. If the database fails, they are answered ``ESME_RTHROTTLED`` and the peer resends
  later; when too many stored messages wait for handling, ``ESME_RMSGQFUL``.
* :class:`MessageProcessor` takes the parts this instance stored straight from the
  :class:`InboundStore` (no need to read back what was just written), joins long messages,
  parses each text and decides a whole batch with :meth:`ResetService.reset_batch` (which
  queues the reset replies in its own transaction), then queues the help replies and marks
  the batch handled. At start-up it reads what was stored but not handled before (a crash, a
  restart) from the database; sharing PostgreSQL with other instances it also looks, every
  few seconds, for rows still unhandled after a while (an instance died, or is slow), skipping
  those it holds itself (see :func:`store.inbound.handle_messages` for how each row is
  handled by one instance only). It is safe to run again over the same rows after a crash: a
  reset's correlation id is the inbound id, so a second run finds it recorded and changes
  nothing, and the outbox keeps one reply per inbound message. A batch whose decision fails
  (the database is down) is decided again a second later.
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.engine import Engine
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure

from commands.parse import Help, ResetCommand, parse
from commands.ports import Channel, Clock, QueuedReply, SmsRoute
from commands.replies import Reply, render_sms
from commands.reset import ResetRequest, ResetResult, ResetService
from gateway.events import (
    DatabaseFailed,
    GatewayEvent,
    GatewayObserver,
    HelpReplied,
    MessagesRefused,
    MessagesStored,
    ResetDecided,
)
from gateway.workers import WorkerPool
from smpp.codec import Status
from smpp.inbound import InboundMessage
from smpp.interfaces import Acknowledgement
from smpp.reassembly import Assembled, Discarded, Part, Reassembler
from smpp.receipts import receipt_text, wants_receipt
from smpp.registry import Bind
from smpp.settings import SmppSettings
from smpp.text import Coding, Concat, UserData, decode_text
from store.inbound import (
    NewMessage,
    PendingMessage,
    Receipts,
    StoredMessage,
    handle_messages,
    pending_from,
    pending_messages,
    pending_summary,
    store_messages,
)

log = Logger()

MAX_COMMIT_BATCH = 1000
MAX_HANDLING_BATCH = 256
ORPHAN_SCAN_SECONDS = 5.0
RETRY_SECONDS = 1.0
MAX_SUSPECT_DELAY = 60.0
"""A message that keeps failing alone is tried again at most this long after its last try."""
"""How soon a batch is tried again after it failed, or had to wait for another instance."""
ORPHAN_AGE_SECONDS = 10.0
"""A row stored this long ago and still not handled is looked at by the orphan scan, whichever
instance stored it (this instance's own rows among them are skipped: it holds them)."""


@dataclass(slots=True)
class _Waiting:
    peer: str
    message: NewMessage
    arrived: float
    acknowledged: Deferred[Acknowledgement]


def fingerprint(peer: str, message: InboundMessage) -> str:
    """What makes two messages 'the same' for resend detection (the brief's fields)."""
    concat = message.user_data.concat
    parts = [
        peer,
        message.source_addr,
        message.short_code,
        message.user_data.coding.value,
        message.user_data.data.hex(),
        "" if concat is None else f"{concat.reference}/{concat.total}/{concat.sequence}",
        "" if message.user_message_reference is None else str(message.user_message_reference),
    ]
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def new_message(peer: str, message: InboundMessage, received_at: datetime) -> NewMessage:
    concat = message.user_data.concat
    return NewMessage(
        peer=peer,
        command=message.command,
        source_addr=message.source_addr,
        source_ton=message.source_addr_ton,
        source_npi=message.source_addr_npi,
        destination_addr=message.destination_addr,
        dest_ton=message.dest_addr_ton,
        dest_npi=message.dest_addr_npi,
        short_code=message.short_code,
        coding=message.user_data.coding.value,
        payload=message.user_data.data,
        concat_reference=concat.reference if concat else None,
        concat_total=concat.total if concat else None,
        concat_sequence=concat.sequence if concat else None,
        user_message_reference=message.user_message_reference,
        registered_delivery=message.registered_delivery,
        fingerprint=fingerprint(peer, message),
        received_at=received_at,
    )


def route_back(message: NewMessage | PendingMessage, in_reply_to: str) -> SmsRoute:
    """Where the answer to ``message`` goes: to its sender, from the short code exactly as the
    peer addressed it ("848079" with TON 1, say: its TON and NPI describe that form, and a
    bare "8079" with them would be refused)."""
    return SmsRoute(
        peer=message.peer,
        to_address=message.source_addr,
        to_ton=message.source_ton,
        to_npi=message.source_npi,
        from_address=message.destination_addr.strip(),
        in_reply_to=in_reply_to,
        from_ton=message.dest_ton,
        from_npi=message.dest_npi,
    )


def receipt_for(message_id: int, message: NewMessage) -> QueuedReply | None:
    """The delivery receipt of a message just stored, if its peer asked for one: stored is
    delivered, so both dates are when it arrived."""
    if not wants_receipt(message.command, message.registered_delivery):
        return None
    route = route_back(message, in_reply_to=str(-message_id))
    text = receipt_text(str(message_id), message.received_at, message.received_at)
    return QueuedReply(route, text, text, message.received_at)


class InboundStore:
    """Stores messages in group commits and releases their acknowledgements afterwards.

    Receipts that peers ask for (``registered_delivery``) are queued in the same commits.
    """

    def __init__(
        self,
        engine: Engine,
        workers: WorkerPool,
        settings: SmppSettings,
        clock: Clock,
        reactor: IReactorTime,
        observer: GatewayObserver,
        on_stored: Callable[[], None],
    ) -> None:
        self._engine = engine
        self._workers = workers
        self._settings = settings
        self._clock = clock
        self._reactor = reactor
        self._observer = observer
        self._on_stored = on_stored
        self._receipts = Receipts(receipt_for, timedelta(hours=settings.reply_expiry_hours))
        self._waiting: list[_Waiting] = []
        self._committing = False
        self._fresh: deque[PendingMessage] = deque()
        self.backlog = 0
        """Stored messages not yet handled (the processor lowers it)."""
        self.backlog_up_to = 0
        """The highest id stored but not handled before start-up (the processor reads those
        from the database; everything stored since comes through :meth:`take_stored`)."""

    def load_backlog(self) -> Deferred[int]:
        def keep(summary: tuple[int, int]) -> int:
            self.backlog, self.backlog_up_to = summary
            return self.backlog

        return self._workers.run(pending_summary, self._engine).addCallback(keep)

    def take_stored(self, limit: int) -> list[PendingMessage]:
        """Up to ``limit`` of the messages stored (not duplicates) since the last call, in order."""
        fresh = self._fresh
        return [fresh.popleft() for _ in range(min(limit, len(fresh)))]

    @property
    def has_stored(self) -> bool:
        return bool(self._fresh)

    def stored_ids(self) -> set[int]:
        """The ids of the stored messages not yet taken (:meth:`take_stored`)."""
        return {message.id for message in self._fresh}

    def message_received(self, bind: Bind, message: InboundMessage) -> Deferred[Acknowledgement]:
        if self.backlog + len(self._waiting) >= self._settings.inbound_queue_limit:
            self._observer.observe(
                MessagesRefused(bind.peer, Status.ESME_RMSGQFUL, 1, "inbound queue full")
            )
            return succeed(Acknowledgement(Status.ESME_RMSGQFUL, ""))
        waiting = _Waiting(
            bind.peer,
            new_message(bind.peer, message, self._clock.now()),
            self._reactor.seconds(),
            Deferred(),
        )
        self._waiting.append(waiting)
        if not self._committing:
            self._commit()
        return waiting.acknowledged

    def _commit(self) -> None:
        batch, self._waiting = self._waiting[:MAX_COMMIT_BATCH], self._waiting[MAX_COMMIT_BATCH:]
        if not batch:
            return
        self._committing = True
        window = timedelta(seconds=self._settings.duplicate_window_seconds)
        messages = [w.message for w in batch]
        now = self._clock.now()
        stored = self._workers.run(
            store_messages, self._engine, messages, window, now, self._receipts
        )
        stored.addCallbacks(self._stored, self._failed, callbackArgs=(batch,), errbackArgs=(batch,))
        stored.addErrback(self._unanswered, batch)
        stored.addBoth(self._next)

    def _stored(self, results: list[StoredMessage], batch: list[_Waiting]) -> None:
        # Answered first: the batch is on disk, whatever goes wrong in the bookkeeping below.
        for waiting, result in zip(batch, results, strict=True):
            waiting.acknowledged.callback(Acknowledgement(Status.ESME_ROK, result.message_id))
        now = self._reactor.seconds()
        by_peer: dict[str, list[float]] = {}
        duplicates: dict[str, int] = {}
        fresh = 0
        for waiting, result in zip(batch, results, strict=True):
            by_peer.setdefault(waiting.peer, []).append(now - waiting.arrived)
            if result.duplicate_of is not None:
                duplicates[waiting.peer] = duplicates.get(waiting.peer, 0) + 1
            else:
                fresh += 1
                self._fresh.append(pending_from(result.id, waiting.message))
        self.backlog += fresh
        for peer, latencies in by_peer.items():
            dup = duplicates.get(peer, 0)
            self._observe(MessagesStored(peer, len(latencies) - dup, dup, tuple(latencies)))
        try:
            self._on_stored()
        except Exception:
            log.failure("handing stored messages on failed")

    def _failed(self, failure: object, batch: list[_Waiting]) -> None:
        by_peer: dict[str, int] = {}
        for waiting in batch:
            waiting.acknowledged.callback(Acknowledgement(Status.ESME_RTHROTTLED, ""))
            by_peer[waiting.peer] = by_peer.get(waiting.peer, 0) + 1
        error = getattr(failure, "value", failure)
        log.failure("storing {count} inbound messages failed", failure, count=len(batch))  # type: ignore[arg-type]
        self._observe(DatabaseFailed("store inbound", type(error).__name__))
        for peer, count in by_peer.items():
            self._observe(
                MessagesRefused(peer, Status.ESME_RTHROTTLED, count, "database unavailable")
            )

    def _observe(self, event: GatewayEvent) -> None:
        """Observers (metrics, logs) only watch: one that fails must not stop the store."""
        try:
            self._observer.observe(event)
        except Exception:
            log.failure("observing {event} failed", event=type(event).__name__)

    def _unanswered(self, failure: Failure, batch: list[_Waiting]) -> None:
        """A bug after a commit (or after a failed one): say so, and answer every message
        still waiting, or its peer would wait for a response until it gives up. Throttled,
        so the peer sends it again: if it was stored, the resend is recognised as a
        duplicate and answered with the first copy's id, and nothing is done twice."""
        log.failure("after storing {count} inbound messages", failure, count=len(batch))
        for waiting in batch:
            if not waiting.acknowledged.called:
                waiting.acknowledged.callback(Acknowledgement(Status.ESME_RTHROTTLED, ""))

    def _next(self, _: object) -> None:
        self._committing = False
        if self._waiting:
            self._commit()


@dataclass(frozen=True, slots=True)
class _Item:
    """One message to decide: its stored parts, and its reset request or help reply (neither
    for a part that is only to be marked done)."""

    ids: tuple[int, ...]
    request: ResetRequest | None = None
    help: QueuedReply | None = None


@dataclass(slots=True)
class _Decided:
    """What a batch came to: the items this instance handled, and the reset results of their
    requests in order; ``handled`` parts were marked so here, ``gone`` ids were handled by
    another instance, and the ``retry`` items wait for parts another instance holds."""

    items: list[_Item]
    results: list[ResetResult]
    handled: int = 0
    gone: int = 0
    retry: list[_Item] = field(default_factory=list)


class MessageProcessor:
    """Handles stored messages in order, in batches, one batch at a time."""

    def __init__(
        self,
        engine: Engine,
        workers: WorkerPool,
        reset_service: ResetService,
        settings: SmppSettings,
        clock: Clock,
        reactor: IReactorTime,
        observer: GatewayObserver,
        inbound: InboundStore,
        on_replies: Callable[[], None],
    ) -> None:
        self._engine = engine
        self._workers = workers
        self._reset_service = reset_service
        self._settings = settings
        self._clock = clock
        self._reactor = reactor
        self._observer = observer
        self._inbound = inbound
        self._on_replies = on_replies
        self._reassembler = Reassembler(settings.reassembly_timeout_seconds)
        self._parts: dict[int, PendingMessage] = {}
        self._retry: list[_Item] = []
        self._suspects: list[_Item] = []  # from batches that failed twice: one at a time
        self._failed_once: set[tuple[int, ...]] = set()  # items of a batch that failed once
        self._suspects_due = 0.0
        self._suspect_delay = RETRY_SECONDS / 2
        self._backlog_after: int | None = 0  # reading the start-up backlog, after this id
        self._orphans_due = False
        self._orphans_after = 0  # the orphan scan goes on after this id
        self._running = False
        self._again = False
        self._stopped = False
        self._idle: list[Deferred[None]] = []  # waiting for the batch in progress (stop)
        self._timer: IDelayedCall | None = None  # the next reassembly deadline
        self._retry_call: IDelayedCall | None = None  # a second after a failed batch
        self._expiry = timedelta(hours=settings.reply_expiry_hours)
        self._orphan_scan: LoopingCall | None = None
        if engine.dialect.name == "postgresql":  # other instances may share the database
            self._orphan_scan = LoopingCall(self._look_for_orphans)
            self._orphan_scan.clock = reactor

    def wake(self) -> None:
        """Something was stored (or a reassembly deadline passed): handle what is pending."""
        if self._stopped:
            return
        if self._orphan_scan is not None and not self._orphan_scan.running:
            self._orphan_scan.start(ORPHAN_SCAN_SECONDS, now=False)
        if self._running:
            self._again = True
            return
        self._running = True
        self._again = False
        Deferred.fromCoroutine(self._run()).addErrback(self._crashed)

    def _look_for_orphans(self) -> None:
        self._orphans_due = True
        self.wake()

    async def _run(self) -> None:
        try:
            while not self._stopped:
                await self._cycle()
                more = self._backlog_after is not None or self._inbound.has_stored
                if not (more or self._again):
                    break
                self._again = False
        finally:
            self._running = False
            if self._stopped:
                idle, self._idle = self._idle, []
                for waiter in idle:
                    waiter.callback(None)
            else:
                self._arm()

    def _crashed(self, failure: object) -> None:
        log.failure("handling stored messages failed; retrying in 1 s", failure)  # type: ignore[arg-type]
        self._observer.observe(
            DatabaseFailed("handle inbound", type(getattr(failure, "value", failure)).__name__)
        )
        if not self._stopped:
            self._retry_call = self._reactor.callLater(RETRY_SECONDS, self.wake)

    async def _cycle(self) -> None:
        rows = await self._rows()
        now = self._reactor.seconds()
        released: list[Assembled | Discarded] = []
        singles: dict[int, PendingMessage] = {}
        for row in rows:
            if row.id in self._parts:
                continue  # already held, waiting for the rest of its message
            data = _user_data(row)
            if data.concat is None:
                singles[row.id] = row
                released.append(
                    Assembled(
                        decode_text([data]),
                        (row.id,),
                        True,
                        (),
                        row.peer,
                        row.source_addr,
                        row.received_at.timestamp(),
                    )
                )
            else:
                self._parts[row.id] = row
                part = Part(row.id, row.peer, row.source_addr, data, row.received_at.timestamp())
                released.extend(self._reassembler.add(part, now))
        if self._backlog_after is None:  # every stored part read: join before releasing
            released.extend(self._reassembler.tick(now))
        items, self._retry = self._retry + self._plan(released, singles), []
        await self._decide_suspects()
        if not items:
            return
        try:
            decided = await self._workers.run(self._decide, items)
        except BaseException:
            # Stored, not decided: tried again as a batch once (the database may have been
            # down for a moment), then one at a time, so that one message that cannot be
            # decided (whatever the reason) does not hold back every later one.
            self._suspects += [item for item in items if item.ids in self._failed_once]
            self._retry = [item for item in items if item.ids not in self._failed_once]
            self._failed_once.update(item.ids for item in self._retry)
            raise
        self._failed_once.difference_update(item.ids for item in items)
        self._retry += decided.retry
        self._settle(decided)

    async def _decide_suspects(self) -> None:
        """Decide alone the items of batches that failed twice, until one fails: that one
        waits at the back, and the next try waits longer each time (a database that is down
        fails them all; a message that always fails must not cost a try on every commit)."""
        if not self._suspects or self._reactor.seconds() < self._suspects_due:
            return
        while self._suspects:
            item = self._suspects.pop(0)
            try:
                decided = await self._workers.run(self._decide, [item])
            except Exception as error:
                self._suspects.append(item)
                self._suspect_delay = min(self._suspect_delay * 2, MAX_SUSPECT_DELAY)
                self._suspects_due = self._reactor.seconds() + self._suspect_delay
                log.failure("deciding a stored message failed; it is tried again later")
                self._observer.observe(DatabaseFailed("handle inbound", type(error).__name__))
                return
            self._suspect_delay = RETRY_SECONDS / 2
            self._failed_once.discard(item.ids)
            self._retry += decided.retry
            self._settle(decided)

    def _settle(self, decided: _Decided) -> None:
        self._report(decided)
        self._inbound.backlog = max(self._inbound.backlog - decided.handled - decided.gone, 0)
        self._on_replies()

    async def _rows(self) -> list[PendingMessage]:
        """The next rows to handle: what was pending at start-up first (from the database),
        then what this instance stored since, plus, now and then on PostgreSQL, rows another
        instance stored and left behind."""
        if self._backlog_after is not None:
            up_to = self._inbound.backlog_up_to
            rows = await self._workers.run(
                pending_messages, self._engine, self._backlog_after, MAX_HANDLING_BATCH,
                up_to=up_to,
            )  # fmt: skip
            if len(rows) < MAX_HANDLING_BATCH:
                self._backlog_after = None
            else:
                self._backlog_after = rows[-1].id
            return rows
        orphans: list[PendingMessage] = []
        if self._orphans_due:
            # Read before taking anything from memory: if the query fails, nothing is lost.
            self._orphans_due = False
            before = self._clock.now() - timedelta(seconds=ORPHAN_AGE_SECONDS)
            # A page at a time, from where the last scan stopped: the rows this instance holds
            # are skipped below, and a first page full of them must not hide the others.
            orphans = await self._workers.run(
                pending_messages, self._engine, self._orphans_after, MAX_HANDLING_BATCH,
                received_before=before,
            )  # fmt: skip
            full = len(orphans) == MAX_HANDLING_BATCH
            self._orphans_after = orphans[-1].id if full else 0
        rows = self._inbound.take_stored(MAX_HANDLING_BATCH)
        if orphans:
            # The scan sees every old unhandled row, this instance's own backlog too: skip
            # what this instance holds (taken now, still to take, waiting for its other
            # parts or for a retry), or it would be decided, and reported, twice.
            held = {row.id for row in rows} | self._inbound.stored_ids() | set(self._parts)
            for waiting in (self._retry, self._suspects):
                held.update(part_id for item in waiting for part_id in item.ids)
            rows += [row for row in orphans if row.id not in held]
        return rows

    def _plan(
        self, released: Sequence[Assembled | Discarded], rows: dict[int, PendingMessage]
    ) -> list[_Item]:
        now = self._clock.now()
        items: list[_Item] = []
        for item in released:
            if isinstance(item, Discarded):
                part_id = int(item.part_id)  # type: ignore[call-overload]
                self._parts.pop(part_id, None)
                items.append(_Item((part_id,)))
                continue
            ids = tuple(int(i) for i in item.part_ids)  # type: ignore[call-overload]
            first = rows.get(ids[0]) or self._parts[ids[0]]
            for part_id in ids:
                self._parts.pop(part_id, None)
            route = route_back(first, in_reply_to=str(first.id))
            command = parse(item.text)
            if isinstance(command, ResetCommand):
                request = ResetRequest(
                    first.source_addr, command.code, Channel.SMS, str(first.id), route
                )
                items.append(_Item(ids, request=request))
            else:
                assert isinstance(command, Help)
                reply = render_sms(Reply(command.template))
                items.append(_Item(ids, help=QueuedReply(route, reply, reply, now)))
        return items

    def _decide(self, items: list[_Item]) -> _Decided:
        """On a worker thread: the resets (their replies queued with them), then the rest.

        A long message whose parts were stored by two instances may be claimed here only in
        part. While another instance holds the rest (it is deciding them), the message waits
        for a retry: dropped, its parts would come back through the orphan scan one by one and
        be discarded as late, and the citizen would get no reply. Once the rest is handled
        elsewhere, this instance decides the message with the parts it claimed, if the first
        part is among them; if not, the instance that decided the first part answered under
        its id (the outbox keeps one reply per message), and the parts here are only marked."""
        decided = _Decided([], [])
        claimed_here: set[int] = set()

        def decide(claimed: set[int], busy: set[int]) -> tuple[list[int], list[QueuedReply]]:
            claimed_here.update(claimed)
            handled: list[int] = []
            replies: list[QueuedReply] = []
            requests: list[ResetRequest] = []
            for item in items:
                ours = [part_id for part_id in item.ids if part_id in claimed]
                if not ours:
                    continue  # another instance handles it, or has handled it
                if len(ours) < len(item.ids) and busy.intersection(item.ids):
                    decided.retry.append(item)
                    continue
                if item.ids[0] not in claimed:
                    # Another instance decided this message's first part: it answered (or
                    # discarded a resend) under that part's id, the one reply per message
                    # this one would have too. Our parts are done.
                    handled += ours
                    continue
                decided.items.append(item)
                handled += ours
                if item.request is not None:
                    requests.append(item.request)
                if item.help is not None:
                    replies.append(item.help)
            if requests:
                decided.results.extend(self._reset_service.reset_batch(requests))
            return handled, replies

        ids = [part_id for item in items for part_id in item.ids]
        handle_messages(self._engine, ids, decide, self._expiry, self._clock.now())
        decided.handled = sum(
            1 for item in decided.items for part_id in item.ids if part_id in claimed_here
        )
        waiting = sum(len(item.ids) for item in decided.retry)
        decided.gone = len(ids) - decided.handled - waiting
        if decided.gone:
            log.debug("{count} stored parts were handled by another instance", count=decided.gone)
        return decided

    def _report(self, decided: _Decided) -> None:
        requests = [item.request for item in decided.items if item.request is not None]
        for request, result in zip(requests, decided.results, strict=True):
            self._observer.observe(
                ResetDecided(
                    channel=request.channel.value,
                    outcome=result.outcome.value,
                    carrier=result.carrier,
                    duplicate=result.duplicate,
                    correlation_id=request.correlation_id,
                    phone=request.phone,
                    code=request.code,
                )
            )
        for item in decided.items:
            if item.help is not None:
                self._observer.observe(HelpReplied(item.help.route.peer, "help"))

    def _arm(self) -> None:
        deadline = self._reassembler.next_deadline()
        again = None
        if self._retry:  # parts of a message another instance holds: look again shortly
            again = self._reactor.seconds() + RETRY_SECONDS
        elif self._suspects:
            again = max(self._suspects_due, self._reactor.seconds())
        if again is not None:
            deadline = again if deadline is None else min(deadline, again)
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        if deadline is not None:
            delay = max(deadline - self._reactor.seconds(), 0.0)
            self._timer = self._reactor.callLater(delay, self.wake)

    def stop(self) -> Deferred[None]:
        """Handle nothing more (what is stored stays stored, for the next start) and cancel
        every timer; fires once the batch in progress, if any, is done."""
        self._stopped = True
        for call in (self._timer, self._retry_call):
            if call is not None and call.active():
                call.cancel()
        self._timer = self._retry_call = None
        if self._orphan_scan is not None and self._orphan_scan.running:
            self._orphan_scan.stop()
        if not self._running:
            return succeed(None)
        waiter: Deferred[None] = Deferred()
        self._idle.append(waiter)
        return waiter


def _user_data(row: PendingMessage) -> UserData:
    concat = None
    if row.concat_reference is not None and row.concat_total and row.concat_sequence:
        concat = Concat(row.concat_reference, row.concat_total, row.concat_sequence)
    return UserData(Coding(row.coding), row.payload, concat)
