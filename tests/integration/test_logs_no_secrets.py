"""A real reset, by SMS and by phone, leaves its password in no log event and no metric sample.

The message arrives through the real SMPP listener, the real reset service decides it (SQLite
and PostgreSQL), the reply with the password leaves as a deliver_sm through the same listener
and is acknowledged, and the hotline's call record is logged: every log event the process
emits meanwhile (any namespace), as JSON and as text, and the whole ``/metrics`` exposition
are searched for the password. The code and phone number appear only masked.
(The SMS integration extends this through real delivery to the stored rows.)
"""

from __future__ import annotations

from typing import Any

from prometheus_client import generate_latest
from twisted.internet.task import Clock
from twisted.logger import formatEvent, globalLogPublisher

from commands.ports import Channel, SmsRoute
from commands.replies import render_sms
from commands.reset import ResetRequest, ResetService
from gateway.config import Settings
from gateway.events import CallFinished, MessagesStored, ReplyFinished, ResetDecided
from gateway.logs import event_as_json
from gateway.monitor import Monitor
from ivr.records import CallOutcome
from smpp.codec import Pdu, encode
from smpp.outbound import Outgoing
from smpp.protocol import SmppListener
from tests.support.accounts import add_account
from tests.support.monitoring import AckAll, call_record
from tests.support.smpp_fakes import connect, written
from tests.support.smpp_pdus import bind, message
from tests.support.smpp_pdus import settings as smpp_settings

CODE, PHONE, E164 = "0123456789", "0912345678", "+84912345678"


def test_the_password_of_a_reset_is_in_no_log_event_and_no_metric(
    engine: Any, reset_service: ResetService
) -> None:
    add_account(engine, CODE, PHONE)
    events: list[dict[str, Any]] = []
    globalLogPublisher.addObserver(events.append)
    try:
        password, monitor = _reset_by_sms_and_by_phone(reset_service)
    finally:
        globalLogPublisher.removeObserver(events.append)

    logged = [event_as_json(event) for event in events] + [formatEvent(event) for event in events]
    names = {event.get("event") for event in events}
    assert {"smpp_bound", "reset", "call"} <= names  # the search covered real events
    everything = "\n".join(logged)
    assert password not in everything
    assert CODE not in everything and PHONE not in everything and E164 not in everything
    assert "********89" in everything and "+84******678" in everything

    exposition = generate_latest(monitor.metrics.registry).decode()
    assert 'channel="sms",outcome="reset"} 1.0' in exposition
    assert password not in exposition
    assert CODE not in exposition and PHONE[1:] not in exposition


def _reset_by_sms_and_by_phone(reset_service: ResetService) -> tuple[str, Monitor]:
    settings = Settings(smpp=smpp_settings())
    monitor = Monitor(settings, process_metrics=False)
    listener = SmppListener(settings.smpp, AckAll(), Clock(), monitor.smpp_observer)
    protocol, transport = connect(listener)
    protocol.dataReceived(encode(bind()) + encode(message(f"BH MK {CODE}".encode(), source=PHONE)))
    written(transport)
    monitor.observer.observe(MessagesStored("viettel", 1, 0, (0.004,)))

    route = SmsRoute("viettel", "84912345678", 1, 1, "8079", in_reply_to="MO1")
    result = reset_service.reset(ResetRequest(PHONE, CODE, Channel.SMS, "MO1", route))
    assert result.password is not None
    monitor.observer.observe(
        ResetDecided("sms", result.outcome, result.carrier, result.duplicate, "MO1", E164, CODE)
    )
    text = render_sms(result.reply).encode("ascii")
    assert result.password.reveal().encode() in text
    listener.send("viettel", Outgoing("reply-1", "8079", "84912345678", text))
    (deliver,) = [pdu for pdu in written(transport) if pdu.command == "deliver_sm"]
    protocol.dataReceived(encode(Pdu("deliver_sm_resp", deliver.sequence, 0, {})))
    monitor.observer.observe(ReplyFinished("viettel", "acknowledged", 0, 1.4))

    monitor.observer.observe(CallFinished(call_record(CallOutcome.RESET, 40.0)))
    return result.password.reveal(), monitor
