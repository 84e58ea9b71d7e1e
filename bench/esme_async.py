"""A fast asyncio ESME for benchmarks: many binds, a window each, thousands of messages a second.

smpplib's blocking client spends more time per PDU than our gateway does, so it cannot tell how
fast a server is. This client is a plain ``asyncio.Protocol`` that encodes the few PDUs it
needs with ``struct`` (submit_sm, deliver_sm_resp, enquire_link_resp, bind, unbind), writes
everything one read produced in one ``write``, refills each bind's window from its own read
callback, and records the time of every submission, acknowledgement and reply. It answers
every deliver_sm with ``ESME_ROK`` as an SMSC does. Over a refused message
(ESME_RTHROTTLED, ESME_RMSGQFUL) it waits ``retry_delay`` and sends it again, as telcos do.

It is a measuring instrument, not part of the product: it trusts the server's framing and
knows nothing of TLVs beyond skipping them.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

HEADER = struct.Struct(">LLLL")
BIND_TRANSCEIVER = 0x00000009
BIND_TRANSCEIVER_RESP = 0x80000009
SUBMIT_SM = 0x00000004
SUBMIT_SM_RESP = 0x80000004
DELIVER_SM = 0x00000005
DELIVER_SM_RESP = 0x80000005
ENQUIRE_LINK = 0x00000015
ENQUIRE_LINK_RESP = 0x80000015
UNBIND = 0x00000006
UNBIND_RESP = 0x80000006
GENERIC_NACK = 0x80000000
RETRIABLE = frozenset({0x58, 0x14})  # ESME_RTHROTTLED, ESME_RMSGQFUL


def pdu(command: int, sequence: int, body: bytes = b"", status: int = 0) -> bytes:
    return HEADER.pack(16 + len(body), command, status, sequence) + body


def submit_sm_body(source: str, text: str, short_code: str = "8079") -> bytes:
    """A citizen's message as the telcos send it: international source (TON 1, NPI 1) to the
    short code (TON 2, NPI 1), GSM-7 unpacked (one octet per character)."""
    message = text.encode("ascii")
    return b"".join(
        (
            b"\0",  # service_type
            bytes((1, 1)),
            source.encode("ascii") + b"\0",
            bytes((2, 1)),
            short_code.encode("ascii") + b"\0",
            bytes((0, 0, 0)),  # esm_class, protocol_id, priority_flag
            b"\0\0",  # schedule_delivery_time, validity_period
            bytes((0, 0, 0, 0, len(message))),  # registered_delivery .. sm_length
            message,
        )
    )


@dataclass(frozen=True, slots=True)
class Message:
    """One message to send: its source (the reply comes back to it) and text."""

    source: str
    text: str


@dataclass(slots=True)
class Record:
    """What happened to one message."""

    sent_at: float = 0.0
    acked_at: float = 0.0
    replied_at: float = 0.0
    attempts: int = 0
    reply: str = ""


@dataclass(slots=True)
class Run:
    """Shared state of one benchmark run over all binds."""

    messages: Sequence[Message]
    retry_delay: float
    records: list[Record] = field(default_factory=list)
    by_source: dict[str, int] = field(default_factory=dict)
    errors: Counter[str] = field(default_factory=Counter)
    queue: deque[int] = field(default_factory=deque)
    acked: int = 0
    replied: int = 0
    failed: int = 0
    extra_replies: int = 0
    done: asyncio.Future[None] | None = None
    started_at: float = 0.0

    def __post_init__(self) -> None:
        self.records = [Record() for _ in self.messages]
        self.by_source = {m.source: i for i, m in enumerate(self.messages)}

    def check_done(self) -> None:
        total = len(self.messages) - self.failed
        if self.acked == total and self.replied == total and self.done and not self.done.done():
            self.done.set_result(None)


class EsmeProtocol(asyncio.Protocol):
    """One transceiver bind with a window of outstanding submit_sm."""

    def __init__(self, run: Run, window: int, on_room: Callable[[EsmeProtocol], None]) -> None:
        self.run = run
        """The run being measured; the client replaces it between runs on the same binds."""
        self.window = window
        self.on_room = on_room
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.sequence = 0
        self.outstanding: dict[int, int] = {}  # sequence -> message index
        self.bound: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._concat: dict[tuple[str, int], dict[int, bytes]] = {}

    @property
    def room(self) -> int:
        return self.window - len(self.outstanding)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.bound.done():
            self.bound.set_exception(ConnectionError("closed before bind"))
        if not self.closed.done():
            self.closed.set_result(None)
        for index in self.outstanding.values():  # never acknowledged: send again elsewhere
            self.run.errors["connection lost"] += 1
            self.run.queue.appendleft(index)
        self.outstanding.clear()

    def bind(self, system_id: str, password: str) -> None:
        body = (
            system_id.encode() + b"\0" + password.encode() + b"\0" + b"\0" + bytes((0x34, 0, 0))
        ) + b"\0"
        self._write(pdu(BIND_TRANSCEIVER, self._next(), body))

    def unbind(self) -> None:
        self._write(pdu(UNBIND, self._next()))

    def send(self, indices: Sequence[int], now: float) -> None:
        """Submit these messages (the caller checked :attr:`room`)."""
        chunks = []
        for index in indices:
            sequence = self._next()
            self.outstanding[sequence] = index
            record = self.run.records[index]
            record.sent_at = now
            record.attempts += 1
            message = self.run.messages[index]
            chunks.append(pdu(SUBMIT_SM, sequence, submit_sm_body(message.source, message.text)))
        self._write(b"".join(chunks))

    def _next(self) -> int:
        self.sequence = self.sequence % 0x7FFFFFFF + 1
        return self.sequence

    def _write(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(data)

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter()
        buffer = self.buffer
        buffer += data
        out: list[bytes] = []
        position = 0
        end = len(buffer)
        freed = False
        while end - position >= 16:
            length, command, status, sequence = HEADER.unpack_from(buffer, position)
            if end - position < length:
                break
            body = bytes(buffer[position + 16 : position + length])
            position += length
            if command in (SUBMIT_SM_RESP, GENERIC_NACK):
                freed = self._acknowledged(sequence, status, now) or freed
            elif command == DELIVER_SM:
                self._delivered(body, now)
                out.append(pdu(DELIVER_SM_RESP, sequence, b"\0"))
            elif command == ENQUIRE_LINK:
                out.append(pdu(ENQUIRE_LINK_RESP, sequence))
            elif command == BIND_TRANSCEIVER_RESP:
                if not self.bound.done():
                    self.bound.set_result(status)
            elif command == UNBIND:
                out.append(pdu(UNBIND_RESP, sequence))
            elif command == UNBIND_RESP:
                assert self.transport is not None
                self.transport.close()
        del buffer[:position]
        if out:
            self._write(b"".join(out))
        if freed:
            self.on_room(self)
        self.run.check_done()

    def _acknowledged(self, sequence: int, status: int, now: float) -> bool:
        index = self.outstanding.pop(sequence, None)
        if index is None:
            return False
        run = self.run
        if status == 0:
            run.records[index].acked_at = now
            run.acked += 1
            return True
        run.errors[f"{status:#x}"] += 1
        if status in RETRIABLE:
            loop = asyncio.get_running_loop()
            loop.call_later(run.retry_delay, self._retry, run, index)
        else:  # a permanent refusal: it will get no reply either
            run.failed += 1
        return True

    def _retry(self, run: Run, index: int) -> None:
        if run is self.run:
            run.queue.append(index)
            self.on_room(self)

    def _delivered(self, body: bytes, now: float) -> None:
        destination, esm_class, short_message = _deliver_fields(body)
        if esm_class & 0x40 and len(short_message) > 6 and short_message[1] == 0x00:
            header = short_message[0] + 1
            reference, total, part = short_message[3], short_message[4], short_message[5]
            parts = self._concat.setdefault((destination, reference), {})
            parts[part] = short_message[header:]
            if len(parts) < total:
                return
            del self._concat[(destination, reference)]
            short_message = b"".join(parts[i] for i in sorted(parts))
        run = self.run
        index = run.by_source.get(destination)
        if index is None:
            run.extra_replies += 1
            return
        record = run.records[index]
        if record.replied_at:
            run.extra_replies += 1
            return
        record.replied_at = now
        record.reply = short_message.decode("latin-1")
        run.replied += 1


def _deliver_fields(body: bytes) -> tuple[str, int, bytes]:
    """destination_addr, esm_class and short_message of a deliver_sm body."""
    position = body.index(b"\0") + 1 + 2  # service_type, source TON/NPI
    position = body.index(b"\0", position) + 1 + 2  # source_addr, dest TON/NPI
    nul = body.index(b"\0", position)
    destination = body[position:nul].decode("ascii")
    esm_class = body[nul + 1]
    position = nul + 1 + 3  # esm_class, protocol_id, priority_flag
    position = body.index(b"\0", position) + 1  # schedule_delivery_time
    position = body.index(b"\0", position) + 1  # validity_period
    length = body[position + 4]  # registered_delivery, replace, data_coding, default id
    start = position + 5
    return destination, esm_class, body[start : start + length]


class Client:
    """C binds to one server, sending messages as fast as the windows allow, or paced."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        connections: int,
        window: int,
        system_id: str,
        password: str,
        retry_delay: float = 0.5,
    ) -> None:
        self.host = host
        self.port = port
        self.connections = connections
        self.window = window
        self.system_id = system_id
        self.password = password
        self.retry_delay = retry_delay
        self.run = Run((), retry_delay)
        self.binds: list[EsmeProtocol] = []

    async def connect(self) -> None:
        loop = asyncio.get_running_loop()
        for _ in range(self.connections):
            _, protocol = await loop.create_connection(
                lambda: EsmeProtocol(self.run, self.window, self._room), self.host, self.port
            )
            protocol.bind(self.system_id, self.password)
            status = await asyncio.wait_for(protocol.bound, 10.0)
            if status != 0:
                raise ConnectionError(f"bind refused with status {status:#x}")
            self.binds.append(protocol)

    async def send(self, messages: Sequence[Message], timeout: float, rate: float = 0.0) -> Run:
        """Send ``messages`` (at ``rate`` per second, or as fast as the windows allow) and wait
        for every acknowledgement and reply; the finished :class:`Run`."""
        loop = asyncio.get_running_loop()
        run = self.run = Run(messages, self.retry_delay)
        for protocol in self.binds:
            protocol.run = run
        run.done = loop.create_future()
        run.started_at = time.perf_counter()
        pacer = None
        if rate > 0:
            pacer = asyncio.ensure_future(self._pace(run, rate))
        else:
            run.queue.extend(range(len(messages)))
            for protocol in self.binds:
                self._room(protocol)
        run.check_done()
        try:
            await asyncio.wait_for(run.done, timeout)
        finally:
            if pacer is not None:
                pacer.cancel()
        return run

    async def _pace(self, run: Run, rate: float) -> None:
        """Release messages at ``rate`` per second, in 1 ms steps, over the least busy binds."""
        total = len(run.messages)
        released = 0
        while released < total:
            await asyncio.sleep(0.001)
            due = min(int((time.perf_counter() - run.started_at) * rate) + 1, total)
            if due > released:
                run.queue.extend(range(released, due))
                released = due
                for protocol in sorted(self.binds, key=lambda p: -p.room):
                    self._room(protocol)

    def _room(self, protocol: EsmeProtocol) -> None:
        queue = self.run.queue
        room = protocol.room
        if not queue or room <= 0 or protocol.transport is None or protocol.closed.done():
            return
        batch = [queue.popleft() for _ in range(min(room, len(queue)))]
        protocol.send(batch, time.perf_counter())

    async def close(self) -> None:
        for protocol in self.binds:
            if not protocol.closed.done():
                protocol.unbind()
        for protocol in self.binds:
            try:
                await asyncio.wait_for(asyncio.shield(protocol.closed), 5.0)
            except TimeoutError:
                assert protocol.transport is not None
                protocol.transport.abort()
