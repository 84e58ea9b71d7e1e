"""Log events: one per bind, unbind, PDU error, reset and call; JSON lines; masked by default."""

from __future__ import annotations

import io
import json
from typing import Any

from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import Logger, LogLevel, formatEvent

from commands.secret import Secret
from gateway.config import LoggingSettings
from gateway.events import (
    CallFinished,
    DatabaseFailed,
    MessagesStored,
    ReplyFinished,
    ResetDecided,
)
from gateway.logs import (
    FLUSH_SECONDS,
    LOG_LEVEL,
    EventLog,
    JsonLines,
    LineBuffer,
    Masking,
    SmppLog,
    flush_periodically,
    observer_for,
    one_line,
    url_secrets,
)
from ivr.records import CallOutcome
from smpp.codec import Pdu, encode
from smpp.protocol import SmppListener
from tests.support.monitoring import call_record
from tests.support.smpp_fakes import RecordingHandler, connect
from tests.support.smpp_pdus import PASSWORD, bind, header, settings

PHONE, CODE = "+84961234567", "0123456789"


class Events:
    """A logger whose events are kept in a list."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.logger = Logger(namespace="test", observer=self.events.append)

    def named(self, name: str) -> list[dict[str, Any]]:
        return [event for event in self.events if event.get("event") == name]


def _json(event: dict[str, Any]) -> dict[str, Any]:
    stream = io.StringIO()
    JsonLines(stream)(event)
    line = stream.getvalue()
    assert line.endswith("\n") and line.count("\n") == 1
    parsed: dict[str, Any] = json.loads(line)
    return parsed


def test_binds_unbinds_refusals_and_pdu_errors_are_one_event_each() -> None:
    log = Events()
    listener = SmppListener(settings(), RecordingHandler(), Clock(), SmppLog(log.logger))
    protocol, _ = connect(listener)
    protocol.dataReceived(encode(bind()) + header(0x00000777, sequence=5))
    protocol.dataReceived(encode(Pdu("unbind", 6)))
    stranger, _ = connect(listener)
    stranger.dataReceived(encode(bind(system_id="intruder", password="guess")))
    (bound,) = log.named("smpp_bound")
    assert (bound["peer"], bound["bind_type"], bound["address"]) == (
        "viettel",
        "transceiver",
        "127.0.0.1",
    )
    (error,) = log.named("smpp_pdu_error")
    assert (error["status"], error["log_level"]) == ("ESME_RINVCMDID", LogLevel.warn)
    (unbound,) = log.named("smpp_unbound")
    assert unbound["reason"] == "unbound by peer"
    (refused,) = log.named("smpp_bind_refused")
    assert (refused["system_id"], refused["status"]) == ("intruder", "ESME_RINVSYSID")
    lines = "".join(json.dumps(_json(event)) for event in log.events)
    assert "guess" not in lines
    assert PASSWORD not in lines


def test_a_reset_is_logged_with_the_phone_and_code_partly_masked() -> None:
    log = Events()
    EventLog(Masking(), log.logger).observe(
        ResetDecided("sms", "reset", "Viettel", False, "MO42", PHONE, CODE)
    )
    (reset,) = log.named("reset")
    record = _json(reset)
    assert record["phone"] == "+84******567"
    assert record["code"] == "********89"
    assert PHONE not in json.dumps(record) and CODE not in json.dumps(record)
    assert record["message"] == (
        "reset by sms: reset for +84******567 / code ********89 (Viettel) [MO42]"
    )
    assert (record["level"], record["namespace"], record["event"]) == ("info", "test", "reset")


def test_unmask_shows_phone_and_code_for_debugging() -> None:
    log = Events()
    EventLog(Masking(unmask=True), log.logger).observe(
        ResetDecided("ivr", "mismatch", "Viettel", False, "1790.1", PHONE, CODE)
    )
    (reset,) = log.named("reset")
    assert (reset["phone"], reset["code"]) == (PHONE, CODE)


def test_failed_replies_warn_and_acknowledged_ones_stay_at_debug() -> None:
    log = Events()
    events = EventLog(Masking(), log.logger)
    events.observe(ReplyFinished("viettel", "acknowledged", 0, 1.0))
    events.observe(ReplyFinished("viettel", "expired", None, None))
    events.observe(DatabaseFailed("store_inbound", "OperationalError"))
    levels = [(e["event"], e["log_level"]) for e in log.events]
    assert levels == [
        ("reply_finished", LogLevel.debug),
        ("reply_finished", LogLevel.warn),
        ("database_failed", LogLevel.error),
    ]


def test_a_call_is_one_event_with_the_caller_masked() -> None:
    log = Events()
    EventLog(Masking(), log.logger).observe(CallFinished(call_record(CallOutcome.RESET, 47.0)))
    (call,) = log.named("call")
    record = _json(call)
    assert record["caller"] == "+84******678"
    assert (record["outcome"], record["billed_minutes"], record["answered"]) == ("reset", 1, True)
    assert "0912345678" not in json.dumps(record)


def test_a_secret_that_slipped_into_an_event_prints_masked() -> None:
    log = Events()
    log.logger.info("token {token}", token=Secret("hunter2"))
    record = _json(log.events[0])
    assert "hunter2" not in json.dumps(record)
    assert record["token"] == "********"


def test_json_lines_carry_tracebacks_and_text_goes_to_a_terminal() -> None:
    log = Events()
    try:
        raise ValueError("boom")
    except ValueError:
        log.logger.failure("it failed")
    record = _json(log.events[0])
    assert record["level"] == "critical"
    assert "ValueError: boom" in record["traceback"]

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal = Terminal()
    observer_for(LoggingSettings(format="auto"), terminal)(
        {
            "log_format": "hello {who}",
            "who": "operator",
            "log_level": LogLevel.info,
            "log_namespace": "t",
            "log_time": 0.0,
        }
    )
    assert "hello operator" in terminal.getvalue()
    assert not terminal.getvalue().lstrip().startswith("{")


class Stream(io.StringIO):
    """A non-terminal stream that counts how often it is flushed."""

    flushes = 0

    def flush(self) -> None:
        self.flushes += 1
        super().flush()


def _event(level: Any, text: str = "hello", namespace: str = "vssid.test") -> dict[str, Any]:
    return {
        "log_format": text,
        "log_level": level,
        "log_namespace": namespace,
        "log_time": 1_700_000_000.25,
    }


def test_info_lines_wait_in_the_buffer_until_the_timer_writes_them_in_one_go() -> None:
    stream, reactor = Stream(), MemoryReactorClock()
    buffer = LineBuffer(stream)
    flush_periodically(buffer, reactor)
    observer = observer_for(LoggingSettings(format="json"), buffer)
    observer(_event(LogLevel.info, "first"))
    observer(_event(LogLevel.info, "second"))
    assert stream.getvalue() == ""
    reactor.advance(FLUSH_SECONDS)
    lines = [json.loads(line)["message"] for line in stream.getvalue().splitlines()]
    assert lines == ["first", "second"]
    assert stream.flushes == 1


def test_a_warning_is_written_at_once_with_the_lines_before_it() -> None:
    stream = Stream()
    buffer = LineBuffer(stream)
    observer = observer_for(LoggingSettings(format="json"), buffer)
    observer(_event(LogLevel.info, "before"))
    observer(_event(LogLevel.warn, "trouble"))
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [(line["level"], line["message"]) for line in lines] == [
        ("info", "before"),
        ("warn", "trouble"),
    ]


def test_what_is_buffered_is_written_when_the_reactor_shuts_down() -> None:
    stream, reactor = Stream(), MemoryReactorClock()
    buffer = LineBuffer(stream)
    flush_periodically(buffer, reactor)
    JsonLines(buffer)(_event(LogLevel.info, "stopping"))
    assert stream.getvalue() == ""
    for trigger, args, kwargs in reactor.triggers["after"]["shutdown"]:
        trigger(*args, **kwargs)
    assert json.loads(stream.getvalue())["message"] == "stopping"


def test_a_full_buffer_is_written_without_waiting_for_the_timer() -> None:
    stream = Stream()
    buffer = LineBuffer(stream, limit=100)
    buffer.write("x" * 60 + "\n")
    assert stream.getvalue() == ""
    buffer.write("y" * 60 + "\n")
    assert stream.getvalue() == "x" * 60 + "\n" + "y" * 60 + "\n"


def test_the_service_writes_info_and_above_and_nothing_without_a_namespace() -> None:
    stream = Stream()
    observer = observer_for(LoggingSettings(format="json"), stream)
    observer(_event(LogLevel.debug, "chatter"))
    observer(_event(LogLevel.info, "no namespace", namespace=""))
    observer(_event(LogLevel.info, "kept"))
    observer(_event(LogLevel.error, "kept too"))
    messages = [json.loads(line)["message"] for line in stream.getvalue().splitlines()]
    assert messages == ["kept", "kept too"]


def test_text_format_off_a_terminal_is_buffered_too() -> None:
    stream = Stream()
    buffer = LineBuffer(stream)
    observer_for(LoggingSettings(format="text"), buffer)(_event(LogLevel.info, "plain words"))
    assert stream.getvalue() == ""
    buffer.flush()
    (line,) = stream.getvalue().splitlines()
    assert line.endswith("plain words") and not line.startswith("{")


def test_at_the_service_level_debug_events_are_not_even_emitted() -> None:
    log = Events()
    events = EventLog(Masking(), log.logger, level=LOG_LEVEL)
    events.observe(ReplyFinished("viettel", "acknowledged", 0, 1.0))
    events.observe(MessagesStored("viettel", 3, 0, (0.01, 0.02, 0.03)))
    events.observe(ReplyFinished("viettel", "failed", 0x45, None))
    assert [(e["event"], e["log_level"]) for e in log.events] == [("reply_finished", LogLevel.warn)]
    smpp = Events()
    listener = SmppListener(
        settings(), RecordingHandler(), Clock(), SmppLog(smpp.logger, LOG_LEVEL)
    )
    protocol, _ = connect(listener)
    protocol.dataReceived(encode(bind()))
    assert [e["event"] for e in smpp.events] == ["smpp_bound"]


def test_a_message_is_formatted_as_twisted_formats_it() -> None:
    log = Events()
    log.logger.info(
        "{a!r} {b:.1f} {c.real} {d[1]} {e()}", a="x", b=2.25, c=3, d=[0, 7], e=lambda: 9
    )
    log.logger.info("missing {nothing}")
    records = [_json(event) for event in log.events]
    assert records[0]["message"] == "'x' 2.2 3 7 9"
    assert records[1]["message"] == formatEvent(log.events[1])


def test_a_driver_error_is_one_line_without_its_sql_or_the_database_password() -> None:
    url = "postgresql+psycopg://gw:Pw-9%40x@db.example:5432/vssid"
    message = (
        "(psycopg.OperationalError) connection to db.example failed for gw:Pw-9@x\n"
        f"\tdsn was {url}\n"
        "[SQL: SELECT code FROM accounts WHERE phone = %(phone)s]\n"
        "[parameters: {'phone': '+84912345678'}]\n"
        "(Background on this error at: https://sqlalche.me/e/20/e3q8)"
    )

    shown = one_line(message, url_secrets(url))

    assert shown == (
        "(psycopg.OperationalError) connection to db.example failed for gw:******** "
        "dsn was ********"
    )


def test_a_url_without_a_password_hides_only_itself() -> None:
    assert url_secrets("sqlite:///var/vssid.db") == ("sqlite:///var/vssid.db",)
