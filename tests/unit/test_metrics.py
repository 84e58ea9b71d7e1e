"""Gateway events become Prometheus samples with bounded labels, in a registry of their own."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from prometheus_client import generate_latest

from gateway import __version__
from gateway.events import (
    CallFinished,
    DatabaseFailed,
    HelpReplied,
    MessagesRefused,
    MessagesStored,
    Observers,
    OutboxDepth,
    ReplyDeferred,
    ReplyFinished,
    ResetDecided,
)
from gateway.metrics import EventMetrics, LiveStatus, Metrics, StatusCollector, status_label
from ivr.records import CallOutcome
from smpp.codec import Status
from tests.support.monitoring import call_record


def _metrics() -> tuple[Metrics, EventMetrics]:
    metrics = Metrics(["viettel", "vina"])
    return metrics, EventMetrics(metrics)


def value(metrics: Metrics, name: str, **labels: str) -> float | None:
    result = metrics.registry.get_sample_value(name, labels)
    return result


def test_two_gateways_in_one_process_count_apart() -> None:
    first, first_events = _metrics()
    second, _ = _metrics()
    first_events.observe(MessagesStored("viettel", 2, 0, (0.01, 0.02)))
    assert value(first, "vssid_sms_received_total", peer="viettel") == 2
    assert value(second, "vssid_sms_received_total", peer="viettel") is None


def test_stored_messages_count_received_duplicates_and_ack_latency() -> None:
    metrics, events = _metrics()
    events.observe(MessagesStored("viettel", 3, 1, (0.002, 0.004, 0.3, 0.004)))
    assert value(metrics, "vssid_sms_received_total", peer="viettel") == 3
    assert value(metrics, "vssid_sms_duplicates_total", peer="viettel") == 1
    assert value(metrics, "vssid_sms_ack_latency_seconds_count", peer="viettel") == 4
    assert value(metrics, "vssid_sms_ack_latency_seconds_bucket", peer="viettel", le="0.005") == 3


def test_reply_states_and_reply_latency_only_for_acknowledged_replies() -> None:
    metrics, events = _metrics()
    events.observe(ReplyFinished("vina", "acknowledged", 0, 1.2))
    events.observe(ReplyFinished("vina", "failed", 0x45, None))
    events.observe(ReplyFinished("vina", "expired", None, 86400.0))
    for state in ("acknowledged", "failed", "expired"):
        assert value(metrics, "vssid_sms_replies_total", peer="vina", state=state) == 1
    assert value(metrics, "vssid_sms_reply_latency_seconds_count", peer="vina") == 1
    assert value(metrics, "vssid_sms_reply_latency_seconds_sum", peer="vina") == 1.2


def test_receipts_are_counted_apart_from_replies() -> None:
    metrics, events = _metrics()
    events.observe(ReplyFinished("vina", "acknowledged", 0, None, kind="receipt"))
    events.observe(ReplyFinished("vina", "expired", None, None, kind="receipt"))
    assert value(metrics, "vssid_sms_receipts_total", peer="vina", state="acknowledged") == 1
    assert value(metrics, "vssid_sms_receipts_total", peer="vina", state="expired") == 1
    assert value(metrics, "vssid_sms_replies_total", peer="vina", state="acknowledged") is None


def test_resets_by_channel_outcome_and_carrier_with_duplicates_apart() -> None:
    metrics, events = _metrics()
    events.observe(ResetDecided("sms", "reset", "Viettel", False, "a", "+84961234567", "0123"))
    events.observe(ResetDecided("sms", "reset", "Viettel", True, "a", "+84961234567", "0123"))
    events.observe(ResetDecided("ivr", "rate_limited", "Gmobile", False, "b", None, None))
    labels = {"channel": "sms", "outcome": "reset", "carrier": "Viettel"}
    assert value(metrics, "vssid_resets_total", **labels) == 1
    assert value(metrics, "vssid_reset_duplicates_total", channel="sms") == 1
    labels = {"channel": "ivr", "outcome": "rate_limited", "carrier": "Gmobile"}
    assert value(metrics, "vssid_resets_total", **labels) == 1


def test_label_values_outside_the_bounded_sets_become_other() -> None:
    metrics, events = _metrics()
    events.observe(MessagesStored("stranger-peer", 1, 0, ()))
    events.observe(ResetDecided("fax", "exploded", "Orange", False, "x", None, None))
    events.observe(ReplyDeferred("viettel", 0x58, "Something Odd: with {braces}"))
    events.observe(DatabaseFailed("store inbound", "OperationalError: locked"))
    events.observe(DatabaseFailed("x" * 80, "boom"))
    assert value(metrics, "vssid_sms_received_total", peer="other") == 1
    labels = {"channel": "other", "outcome": "other", "carrier": "other"}
    assert value(metrics, "vssid_resets_total", **labels) == 1
    assert value(metrics, "vssid_sms_replies_deferred_total", peer="viettel", reason="other") == 1
    assert value(metrics, "vssid_database_errors_total", operation="store_inbound") == 1
    assert value(metrics, "vssid_database_errors_total", operation="other") == 1


def test_no_phone_number_or_code_reaches_the_exposition() -> None:
    metrics, events = _metrics()
    phone, code = "+84961234567", "0123456789"
    events.observe(ResetDecided("sms", "reset", "Viettel", False, "c1", phone, code))
    events.observe(HelpReplied("viettel", "help"))
    text = generate_latest(metrics.registry).decode()
    assert "961234567" not in text
    assert "0123456789" not in text


def test_refusals_by_status_name_and_the_outbox_gauges() -> None:
    metrics, events = _metrics()
    events.observe(MessagesRefused("viettel", Status.ESME_RMSGQFUL, 5, "queue full"))
    events.observe(OutboxDepth(queued=7, oldest_age=42.0))
    assert value(metrics, "vssid_sms_refused_total", peer="viettel", status="ESME_RMSGQFUL") == 5
    assert value(metrics, "vssid_outbox_queued") == 7
    assert value(metrics, "vssid_outbox_oldest_age_seconds") == 42.0
    events.observe(OutboxDepth(queued=0, oldest_age=None))
    assert value(metrics, "vssid_outbox_oldest_age_seconds") == 0


def test_calls_count_by_outcome_with_duration_and_billed_minutes() -> None:
    metrics, events = _metrics()
    events.observe(CallFinished(call_record(CallOutcome.RESET, 61.0)))  # answered at 1 s: 60 s
    events.observe(CallFinished(call_record(CallOutcome.MISMATCH, 62.5)))  # 61.5 s: two minutes
    assert value(metrics, "vssid_ivr_calls_total", outcome="reset") == 1
    assert value(metrics, "vssid_ivr_billed_minutes_total") == 3
    assert value(metrics, "vssid_ivr_call_duration_seconds_count") == 2


def test_time_to_password_runs_from_the_answer_to_the_first_digit_read() -> None:
    metrics, events = _metrics()
    heard = call_record(CallOutcome.RESET, 40.0)
    spoken = heard.answered_at + timedelta(seconds=23.5)  # type: ignore[operator]
    events.observe(CallFinished(dataclasses.replace(heard, password_spoken_at=spoken)))
    events.observe(CallFinished(call_record(CallOutcome.MISMATCH, 20.0)))  # never got one
    assert value(metrics, "vssid_ivr_time_to_password_seconds_count") == 1
    assert value(metrics, "vssid_ivr_time_to_password_seconds_sum") == 23.5


def test_status_names_are_bounded() -> None:
    assert status_label(0x58) == "ESME_RTHROTTLED"
    assert status_label(0) == "ESME_ROK"
    assert status_label(0xDEADBEEF) == "other"


def test_values_read_at_scrape_time_appear_only_when_known() -> None:
    metrics, _ = _metrics()
    status = LiveStatus(pool_in_use=3, pool_size=8)
    metrics.registry.register(StatusCollector(lambda: status))
    assert value(metrics, "vssid_database_pool_in_use") == 3
    assert value(metrics, "vssid_ami_up") is None
    status = LiveStatus(1, 8, ami_up=True, calls_active=2, ami_reconnects=4)
    assert value(metrics, "vssid_ami_up") == 1
    assert value(metrics, "vssid_ivr_calls_active") == 2
    assert value(metrics, "vssid_ami_reconnects_total") == 4
    assert value(metrics, "vssid_smpp_connections_refused_total", reason="allowlist") is None
    status = LiveStatus(connections_refused={"allowlist": 3, "max_connections": 0})
    assert value(metrics, "vssid_smpp_connections_refused_total", reason="allowlist") == 3
    assert value(metrics, "vssid_smpp_connections_refused_total", reason="max_connections") == 0


def test_the_exposition_has_no_created_series_and_says_the_version() -> None:
    metrics, events = _metrics()
    events.observe(MessagesStored("viettel", 1, 0, (0.01,)))
    text = generate_latest(metrics.registry).decode()
    assert "_created" not in text
    assert f'vssid_build_info{{version="{__version__}"}} 1.0' in text


def test_a_fan_out_calls_table_observers_only_for_their_types_and_others_for_all() -> None:
    seen: list[tuple[str, object]] = []

    class Plain:
        def observe(self, event: object) -> None:
            seen.append(("plain", event))

    class Table:
        def __init__(self) -> None:
            self.handlers = {HelpReplied: lambda event: seen.append(("table", event))}

        def observe(self, event: object) -> None:  # pragma: no cover - the table is used
            raise AssertionError("called around the handlers table")

    fan_out = Observers(Table())
    fan_out.observe(HelpReplied("viettel", "help"))
    fan_out.add(Plain())
    stored = MessagesStored("viettel", 1, 0, (0.01,))
    fan_out.observe(HelpReplied("viettel", "help"))
    fan_out.observe(stored)
    assert [who for who, _ in seen] == ["table", "table", "plain", "plain"]
    assert seen[-1] == ("plain", stored)
