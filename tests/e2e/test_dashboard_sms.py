"""Real SMS traffic through the real gateway, seen by /metrics, /api/stats and the logs.

smpplib binds as a telco on 127.0.0.1 and texts 8079; the gateway stores, resets, replies
and records the delivery. The monitor is wired into the gateway as ``make_service`` wires it
(:func:`monitored_gateway`). Then the numbers must add up, and the password of the reset must
be in no log event, no metric sample and no stored row, after its delivery.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

import pytest_twisted
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.engine import Engine
from twisted.internet import reactor, threads
from twisted.internet.defer import Deferred
from twisted.internet.task import deferLater
from twisted.logger import formatEvent, globalLogPublisher

from gateway.config import HttpSettings, Settings
from gateway.esme import Esme
from gateway.http import HttpServices
from gateway.logs import event_as_json
from gateway.service import Gateway, make_service
from store.models import Base
from tests.support.accounts import add_account
from tests.support.gateway import PEER_PASSWORD, gateway_settings, smpp_port
from tests.support.monitoring import get, port_of

T = TypeVar("T")
WAIT = 20.0
CODE, PHONE = "0123456789", "0912345678"
SUCCESS = re.compile(r"Mat khau: (\d{8})$")


async def monitored_gateway(settings: Settings) -> tuple[Gateway, HttpServices]:
    """The gateway exactly as ``vssid-gateway run`` builds it, with its HTTP listener."""
    service = make_service(settings, reactor)
    service.startService()
    await service.when_started()
    assert service.http is not None
    return service, service.http


@pytest_twisted.async_yield_fixture
async def gateway(engine: Engine, db_url: str) -> AsyncIterator[tuple[Gateway, HttpServices]]:
    add_account(engine, CODE, PHONE)
    settings = dataclasses.replace(
        gateway_settings(db_url), http=HttpSettings(listen="tcp:0:interface=127.0.0.1")
    )
    service, http = await monitored_gateway(settings)
    yield service, http
    await service.stopService()


def in_thread(function: Callable[..., T], *args: Any) -> Deferred[T]:
    return threads.deferToThread(function, *args).addTimeout(WAIT, reactor)


def converse(port: int) -> Esme:
    esme = Esme("127.0.0.1", port, "viettel", PEER_PASSWORD)
    try:
        esme.submit(PHONE, f"BH MK {CODE}")
        esme.submit("0987654321", f"BH MK {CODE}")
        esme.submit(PHONE, "xin chao")
        assert esme.wait(acks=3, replies=3, timeout=WAIT)
    finally:
        esme.close()
    return esme


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(metrics: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str,
          **labels: str) -> float:  # fmt: skip
    return sum(v for (n, pairs), v in metrics.items() if n == name and set(labels.items()) <= pairs)


@pytest_twisted.ensureDeferred
async def test_real_sms_traffic_adds_up_in_metrics_stats_and_logs(
    gateway: tuple[Gateway, HttpServices],
) -> None:
    service, http = gateway
    events: list[dict[str, Any]] = []
    globalLogPublisher.addObserver(events.append)
    try:
        esme = await in_thread(converse, smpp_port(service))
        port = port_of(http)
        metrics: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
        for _ in range(200):  # deliveries are recorded just after each deliver_sm_resp
            metrics = samples((await get(port, "/metrics", token=None))[1].decode())
            if value(metrics, "vssid_sms_replies_total", state="acknowledged") >= 3:
                break
            await deferLater(reactor, 0.05, lambda: None)
        status, body = await get(port, "/api/stats", token=None)
    finally:
        globalLogPublisher.removeObserver(events.append)

    viettel = {"peer": "viettel"}
    assert value(metrics, "vssid_sms_received_total", **viettel) == 3
    assert value(metrics, "vssid_sms_replies_total", **viettel, state="sent") == 3
    assert value(metrics, "vssid_sms_replies_total", **viettel, state="acknowledged") == 3
    assert value(metrics, "vssid_sms_ack_latency_seconds_count", **viettel) == 3
    assert value(metrics, "vssid_sms_reply_latency_seconds_count", **viettel) == 3
    assert value(metrics, "vssid_resets_total", channel="sms", outcome="reset") == 1
    assert value(metrics, "vssid_resets_total", channel="sms", outcome="mismatch") == 1
    assert value(metrics, "vssid_sms_help_replies_total", **viettel) == 1
    inbound = {"command": "submit_sm", "direction": "in", "status": "ESME_ROK"}
    assert value(metrics, "vssid_smpp_pdus_total", **viettel, **inbound) == 3
    assert value(metrics, "vssid_smpp_binds", **viettel) == 0  # the ESME has gone
    assert value(metrics, "vssid_smpp_connections") == 0

    assert status == 200
    stats = json.loads(body)
    assert stats["sms"]["viettel"]["received"] == 3
    assert stats["smpp"]["listening"] is True
    assert stats["resets"]["by_outcome"] == {"reset": 1, "mismatch": 1}

    (password,) = [m.group(1) for r in esme.replies if (m := SUCCESS.search(r.text))]
    exposition = (await get(port, "/metrics", token=None))[1].decode()
    assert password not in exposition
    logged = "\n".join(event_as_json(e) + formatEvent(e) for e in events)
    assert {"smpp_bound", "smpp_unbound", "reset"} <= {e.get("event") for e in events}
    assert password not in logged
    assert CODE not in logged and PHONE[1:] not in logged
    with service.store.engine.connect() as connection:  # delivered: no table holds it in clear
        stored = " ".join(
            str(value)
            for table in Base.metadata.sorted_tables
            for row in connection.execute(table.select())
            for value in row
        )
    assert "Mat khau: ********" in stored and password not in stored
