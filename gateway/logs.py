"""What the gateway logs, and how: JSON lines for machines, text on a terminal, never a secret.

Events are emitted with ``twisted.logger``. This module does two things:

* It chooses the output when the service starts (:func:`start_logging`): one JSON object per
  line (``time``, ``level``, ``namespace``, ``event``, ``message`` and the event's own fields,
  ready for jq, Loki or Elasticsearch), or Twisted's text format on a terminal.
* It is the one place that turns what the gateway observes into log events:
  :class:`SmppLog` (the SMPP listener's observer: binds, unbinds, refusals, PDU errors) and
  :class:`EventLog` (the SMS pipeline, resets and hotline calls), one event each, with a
  stable ``event`` name.

Logging sits on the reactor thread's path of every message (one ``reset`` event each), so it
is kept cheap: events below the service's level (:data:`LOG_LEVEL`) are not even emitted by
our observers, a line's ``message`` is formatted with ``str.format_map`` (Twisted's own
formatter is the fallback for what that cannot do), and lines are written through a
:class:`LineBuffer`: held in memory and passed on every :data:`FLUSH_SECONDS`, at once for a
warning or worse, and at shutdown, rather than one write and flush per line. A ``kill -9``
loses at most the last :data:`FLUSH_SECONDS` of info lines; what the gateway acknowledged is
in the database, not in the logs.

No event carries a password (none of the observed events has one). Phone numbers and codes are
masked (``+84******678``, ``********89``) unless ``[logging] unmask`` is set for debugging;
a :class:`commands.secret.Secret` that slipped into an event would print as ``********``.
An error from the database driver is shown through :func:`one_line`, with the database URL
and its password masked should the driver ever quote them; in every error and traceback the
driver's ``DETAIL:`` line, which can quote a whole row, is left out (:func:`without_row_data`).
"""

from __future__ import annotations

import atexit
import json
import math
import re
import sys
import threading
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import IO, Any, Final, Protocol, TextIO, cast

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from twisted.internet.interfaces import IReactorCore, IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import (
    ILogObserver,
    Logger,
    LogLevel,
    formatEvent,
    formatEventAsClassicLogText,
    globalLogBeginner,
    textFileLogObserver,
)
from zope.interface import implementer

from commands.phone import mask_phone
from commands.secret import MASK
from gateway.config import LoggingSettings
from gateway.events import (
    CallFinished,
    DatabaseFailed,
    GatewayEvent,
    HelpReplied,
    MessagesRefused,
    MessagesStored,
    ReplyDeferred,
    ReplyFinished,
    ResetDecided,
)
from gateway.metrics import status_label
from ivr.records import CallRecord, mask_code
from smpp.events import (
    BindRefused,
    Bound,
    ConnectionClosed,
    ConnectionOpened,
    Event,
    PeerError,
    RequestFailed,
    Unbound,
)
from smpp.session import Session

LOG_LEVEL: Final = LogLevel.info
"""The least severe level the service writes; our observers do not emit anything below it."""
FLUSH_SECONDS: Final = 0.1
"""How long a line may wait in the :class:`LineBuffer` before it is written."""
MAX_BUFFERED_CHARS: Final = 1 << 18
"""A buffer this full is written at once, whatever the timer says (memory stays bounded)."""

_LEGACY_KEYS: Final = frozenset({"message", "isError", "system", "format", "time", "why"})
_PLAIN = (str, int, float, bool, type(None))
_URGENT: Final = frozenset({LogLevel.warn, LogLevel.error, LogLevel.critical})
_ENCODER: Final = json.JSONEncoder(ensure_ascii=False)
_SQLALCHEMY_TAILS: Final = ("\n[SQL: ", "\n(Background on this error at: ")
_DRIVER_DETAIL: Final = re.compile(r"^([ \t]*)DETAIL:.*$", re.MULTILINE)
"""PostgreSQL's DETAIL line quotes data: ``Failing row contains (...)`` (a whole row, an
undelivered reply's text included) or ``Key (ma_so_bhxh)=(...) already exists``."""


class TextSink(Protocol):
    """Where log lines go: a text stream, or a :class:`LineBuffer` in front of one."""

    def write(self, text: str, /) -> object: ...

    def flush(self) -> object: ...

    def isatty(self) -> bool: ...


class LineBuffer:
    """A text stream whose writes are held in memory until :meth:`flush`.

    Thread-safe: worker threads log too. :meth:`flush` writes everything held in one call and
    flushes the stream below; :func:`flush_periodically` calls it on a timer and at shutdown.
    """

    def __init__(self, stream: TextIO, limit: int = MAX_BUFFERED_CHARS) -> None:
        self._stream = stream
        self._limit = limit
        self._held: list[str] = []
        self._size = 0
        self._lock = threading.Lock()

    def write(self, text: str) -> None:
        with self._lock:
            self._held.append(text)
            self._size += len(text)
            if self._size >= self._limit:
                self._write_held()

    def flush(self) -> None:
        with self._lock:
            self._write_held()

    def isatty(self) -> bool:
        return self._stream.isatty()

    def _write_held(self) -> None:
        if not self._held:
            return
        # Emptied before writing: a stream that fails must not make the buffer grow forever.
        text = "".join(self._held)
        self._held.clear()
        self._size = 0
        self._stream.write(text)
        self._stream.flush()


@implementer(ILogObserver)
class Lines:
    """Writes each event as one line made by ``format_line``; warnings and worse are flushed
    at once (an operator waiting for an error should not wait for a timer)."""

    def __init__(
        self, stream: TextSink, format_line: Callable[[dict[str, Any]], str | None]
    ) -> None:
        self._stream = stream
        self._format = format_line

    def __call__(self, event: dict[str, Any]) -> None:
        line = self._format(event)
        if not line:
            return
        self._stream.write(line)
        if event.get("log_level") in _URGENT:
            self._stream.flush()


class JsonLines(Lines):
    """Writes each event as one JSON object on one line."""

    def __init__(self, stream: TextSink) -> None:
        super().__init__(stream, _json_line)


def _json_line(event: dict[str, Any]) -> str:
    return event_as_json(event) + "\n"


def _text_line(event: dict[str, Any]) -> str | None:
    text: str | None = formatEventAsClassicLogText(event)
    return text if text is None or "log_failure" not in event else without_row_data(text)


def event_as_json(event: dict[str, Any]) -> str:
    """One log event as a flat JSON object; values that are not plain data become ``str()``."""
    level = event.get("log_level")
    record: dict[str, Any] = {
        "time": _iso_time(event.get("log_time", 0.0)),
        "level": getattr(level, "name", "info"),
        "namespace": event.get("log_namespace", ""),
        "message": format_message(event),
    }
    for key, value in event.items():
        if key.startswith("log_") or key in _LEGACY_KEYS or key in record:
            continue
        record[key] = value if isinstance(value, _PLAIN) else str(value)
    failure = event.get("log_failure")
    if failure is not None:
        record["traceback"] = without_row_data(failure.getTraceback())
    return _ENCODER.encode(record)


def format_message(event: dict[str, Any]) -> str:
    """The event's ``log_format`` filled in, exactly as Twisted's ``formatEvent`` does it.

    ``str.format_map`` gives the same text for every format we write (names, attributes,
    ``!r``, format specs) at a fraction of the cost; Twisted's formatter handles the rest
    (its ``{name()}`` call syntax, flattened events, formats that fail).
    """
    log_format = event.get("log_format")
    if type(log_format) is str and "log_flattened" not in event:
        try:
            return log_format.format_map(event)
        except Exception:  # Twisted's formatter decides what to show for it
            return formatEvent(event)
    return formatEvent(event)


_second: tuple[int, str] = (-1, "")


def _iso_time(timestamp: float) -> str:
    """``datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="milliseconds")``, with
    the date and time of day formatted once per second rather than once per line."""
    global _second  # noqa: PLW0603 - a one-entry cache; a race only recomputes it
    fraction, whole = math.modf(timestamp)
    micros = round(fraction * 1_000_000)  # rounded half-even to the microsecond, as datetime
    seconds = int(whole)
    if micros >= 1_000_000:
        seconds, micros = seconds + 1, micros - 1_000_000
    elif micros < 0:
        seconds, micros = seconds - 1, micros + 1_000_000
    cached_second, prefix = _second
    if cached_second != seconds:
        prefix = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        _second = (seconds, prefix)
    return f"{prefix}.{micros // 1000:03d}+00:00"


@implementer(ILogObserver)
class _AtLeast:
    """Passes on events at ``level`` or above that have a namespace (what Twisted's
    ``LogLevelFilterPredicate`` lets through with only a default level), for less work."""

    def __init__(self, observer: ILogObserver, level: Any) -> None:
        self._observer = observer
        self._levels = frozenset(known for known in LogLevel.iterconstants() if known >= level)

    def __call__(self, event: dict[str, Any]) -> None:
        if event.get("log_level") in self._levels and event.get("log_namespace"):
            self._observer(event)


def observer_for(settings: LoggingSettings, stream: TextSink) -> ILogObserver:
    """The service's observer: text on a terminal (as it comes), else lines into ``stream``."""
    wants_text = settings.format == "text" or (settings.format == "auto" and stream.isatty())
    if wants_text and stream.isatty():
        base: ILogObserver = textFileLogObserver(cast(IO[Any], stream))
    elif wants_text:
        base = Lines(stream, _text_line)
    else:
        base = JsonLines(stream)
    return _AtLeast(base, LOG_LEVEL)


def start_logging(
    settings: LoggingSettings, stream: TextIO = sys.stdout, reactor: Any = None
) -> LineBuffer:
    """Send the service's events to ``stream`` through a :class:`LineBuffer` written every
    :data:`FLUSH_SECONDS` and at shutdown (``reactor``: the global one by default)."""
    if reactor is None:
        from twisted.internet import reactor as global_reactor  # noqa: PLC0415 - installed by now

        reactor = global_reactor
    buffer = LineBuffer(stream)
    globalLogBeginner.beginLoggingTo(
        [observer_for(settings, buffer)], redirectStandardIO=False, discardBuffer=True
    )
    flush_periodically(buffer, reactor)
    return buffer


def flush_periodically(buffer: LineBuffer, reactor: IReactorTime) -> LoopingCall:
    """Flush ``buffer`` every :data:`FLUSH_SECONDS`, after the reactor shuts down (the lines
    the services wrote while stopping included) and when the process exits."""
    flushing = LoopingCall(buffer.flush)
    flushing.clock = reactor
    flushing.start(FLUSH_SECONDS, now=False)
    if IReactorCore.providedBy(reactor):
        reactor.addSystemEventTrigger("after", "shutdown", buffer.flush)
    atexit.register(buffer.flush)
    return flushing


def one_line(text: str, hide: Iterable[str] = ()) -> str:
    """``text`` as one line for a log event or stderr, with each string of ``hide`` masked.

    Database errors come in several lines: psycopg adds a hint on a second line, SQLAlchemy
    appends the SQL, its parameters (which may be a citizen's data) and a link to its docs.
    The SQL and what follows it are cut, the rest joined with single spaces. ``hide`` is what
    must never be shown even if a driver quoted it, e.g. :func:`url_secrets`.
    """
    for tail in _SQLALCHEMY_TAILS:
        text = text.split(tail, 1)[0]
    text = without_row_data(text)
    for secret in hide:
        if secret:
            text = text.replace(secret, MASK)
    return " ".join(text.split())


def without_row_data(text: str) -> str:
    """``text`` with the data a database driver quotes in its DETAIL line left out."""
    if "DETAIL:" not in text:
        return text
    return _DRIVER_DETAIL.sub(r"\1DETAIL: (row data not logged)", text)


def url_secrets(url: str) -> tuple[str, ...]:
    """What of a database URL an error message must not show: the URL itself and its password."""
    try:
        password = make_url(url).password
    except (ValueError, ArgumentError):  # the loader rejects such URLs; mask the whole anyway
        password = None
    return tuple(secret for secret in (url, password) if secret)


class Masking:
    """Phone numbers and codes as the logs show them: partly hidden unless ``unmask``."""

    def __init__(self, unmask: bool = False) -> None:
        self.unmask = unmask

    def phone(self, value: str | None) -> str:
        if not value:
            return "-"
        return value if self.unmask else mask_phone(value)

    def code(self, value: str | None) -> str:
        if not value:
            return "-"
        return value if self.unmask else mask_code(value)


class SmppLog:
    """The SMPP listener's observer that logs binds, unbinds, refusals and peer errors.

    It sees every PDU event of every connection, nearly all of which it does not log:
    :attr:`handlers` maps the event types it logs to their handlers, which fan-outs call
    directly. ``level`` is the least severe level worth emitting (the service passes
    :data:`LOG_LEVEL`; everything by default).
    """

    def __init__(self, log: Logger | None = None, level: Any = LogLevel.debug) -> None:
        self._log = log or Logger(namespace="vssid.smpp")
        handlers: dict[type, Callable[[Session, Any], None]] = {
            Bound: self._bound,
            Unbound: self._unbound,
            BindRefused: self._refused,
            PeerError: self._peer_error,
            RequestFailed: self._request_failed,
        }
        if level <= LogLevel.debug:
            handlers[ConnectionOpened] = self._opened
            handlers[ConnectionClosed] = self._closed
        self.handlers = handlers

    def observe(self, session: Session, event: Event) -> None:
        handler = self.handlers.get(type(event))
        if handler is not None:
            handler(session, event)

    def _bound(self, session: Session, event: Bound) -> None:
        bind = event.bind
        self._log.info(
            "SMPP peer {peer} bound as {bind_type} from {address} (connection {connection})",
            event="smpp_bound",
            peer=bind.peer,
            bind_type=bind.kind.value,
            system_id=bind.system_id,
            address=bind.address,
            connection=session.connection,
        )

    def _unbound(self, session: Session, event: Unbound) -> None:
        self._log.info(
            "SMPP peer {peer} unbound ({reason}), connection {connection}",
            event="smpp_unbound",
            peer=event.bind.peer,
            bind_type=event.bind.kind.value,
            reason=event.reason,
            address=event.bind.address,
            connection=session.connection,
        )

    def _refused(self, session: Session, event: BindRefused) -> None:
        self._log.warn(
            "SMPP bind refused from {address}: {status} (system_id {system_id!r})",
            event="smpp_bind_refused",
            system_id=event.system_id[:16],
            bind_type=event.kind.value,
            address=event.address,
            status=status_label(event.status),
            connection=session.connection,
        )

    def _peer_error(self, session: Session, event: PeerError) -> None:
        self._log.warn(
            "SMPP error by {peer} ({address}): {reason} [{command}, {status}]",
            event="smpp_pdu_error",
            peer=session.bind.peer if session.bind else None,
            address=session.address,
            command=event.command,
            status=status_label(event.status),
            reason=event.reason,
            connection=session.connection,
        )

    def _request_failed(self, session: Session, event: RequestFailed) -> None:
        self._log.info(
            "deliver_sm to {peer} got no response: {reason}",
            event="smpp_request_failed",
            peer=session.bind.peer if session.bind else None,
            reason=event.reason,
            connection=session.connection,
        )

    def _opened(self, session: Session, event: ConnectionOpened) -> None:
        self._log.debug(
            "SMPP connection {connection} from {address}",
            event="smpp_connected",
            address=session.address,
            connection=session.connection,
        )

    def _closed(self, session: Session, event: ConnectionClosed) -> None:
        self._log.debug(
            "SMPP connection {connection} closed: {reason}",
            event="smpp_closed",
            address=session.address,
            reason=event.reason,
            connection=session.connection,
        )


class EventLog:
    """The gateway's observer that logs resets, refusals, failed replies, calls and errors.

    ``level`` is the least severe level worth emitting (the service passes :data:`LOG_LEVEL`,
    so acknowledged replies and group commits, logged at debug, cost nothing; everything by
    default). :attr:`handlers` maps the event types it logs to their handlers.
    """

    def __init__(
        self, masking: Masking, log: Logger | None = None, level: Any = LogLevel.debug
    ) -> None:
        self._mask = masking
        self._log = log or Logger(namespace="vssid.gateway")
        self._debug = level <= LogLevel.debug
        handlers: dict[type, Callable[[Any], None]] = {
            ResetDecided: self._reset,
            HelpReplied: self._help,
            MessagesRefused: self._refused,
            ReplyFinished: self._reply_finished,
            ReplyDeferred: self._reply_deferred,
            CallFinished: self._call_finished,
            DatabaseFailed: self._database_failed,
        }
        if self._debug:
            handlers[MessagesStored] = self._stored
        self.handlers = handlers

    def observe(self, event: GatewayEvent) -> None:
        handler = self.handlers.get(type(event))
        if handler is not None:
            handler(event)

    def _reset(self, event: ResetDecided) -> None:
        self._log.info(
            "reset by {channel}: {outcome} for {phone} / code {code} ({carrier}"
            "{again}) [{correlation_id}]",
            event="reset",
            channel=event.channel,
            outcome=event.outcome,
            carrier=event.carrier,
            duplicate=event.duplicate,
            again=", answered again" if event.duplicate else "",
            correlation_id=event.correlation_id,
            phone=self._mask.phone(event.phone),
            code=self._mask.code(event.code),
        )

    def _help(self, event: HelpReplied) -> None:
        self._log.info(
            "message from {peer} was not a command: help reply ({template})",
            event="help_reply",
            peer=event.peer,
            template=event.template,
        )

    def _refused(self, event: MessagesRefused) -> None:
        self._log.warn(
            "{count} message(s) from {peer} answered {status}: {reason}",
            event="sms_refused",
            peer=event.peer,
            count=event.count,
            status=status_label(event.status),
            reason=event.reason,
        )

    def _reply_finished(self, event: ReplyFinished) -> None:
        acknowledged = event.state == "acknowledged"
        if acknowledged and not self._debug:
            return
        self._log.emit(
            LogLevel.debug if acknowledged else LogLevel.warn,
            "reply to {peer} {state} (status {status})",
            event="reply_finished",
            peer=event.peer,
            state=event.state,
            status=None if event.status is None else status_label(event.status),
            latency=event.latency,
        )

    def _reply_deferred(self, event: ReplyDeferred) -> None:
        self._log.info(
            "reply to {peer} deferred: {reason}",
            event="reply_deferred",
            peer=event.peer,
            reason=event.reason,
            status=None if event.status is None else status_label(event.status),
        )

    def _stored(self, event: MessagesStored) -> None:
        self._log.debug(
            "{stored} message(s) from {peer} stored, {duplicates} duplicate(s)",
            event="sms_stored",
            peer=event.peer,
            stored=event.stored,
            duplicates=event.duplicates,
        )

    def _database_failed(self, event: DatabaseFailed) -> None:
        self._log.error(
            "database operation {operation} failed: {error}",
            event="database_failed",
            operation=event.operation,
            error=event.error,
        )

    def _call_finished(self, event: CallFinished) -> None:
        call: CallRecord = event.record
        self._log.info(
            "call {unique_id} from {caller}: {outcome} after {duration:.0f} s "
            "({billed_minutes} min billed)",
            event="call",
            unique_id=call.unique_id,
            caller=self._mask.phone(call.caller),
            outcome=str(call.outcome),
            duration=call.duration_seconds,
            billed_minutes=call.billed_minutes,
            answered=call.answered_at is not None,
            keys=call.keys,
            detail=call.detail,
        )
