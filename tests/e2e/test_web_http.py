"""The HTTP service on real TCP (127.0.0.1, port 0): Prometheus' Twisted resource, readiness on
the real worker pool, and a clear failure when the port is taken."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import pytest_twisted
from prometheus_client.parser import text_string_to_metric_families
from twisted.internet import reactor
from twisted.python.failure import Failure

from gateway.http import HttpListenError, HttpServices, http_service
from gateway.service import WorkerPool
from tests.support.monitoring import Source, bind_peer, get, make_source, port_of, traffic

WAIT = 10.0


@pytest.fixture
def running(sqlite_url: str) -> Iterator[tuple[Source, HttpServices]]:
    workers = WorkerPool(reactor, 2)  # type: ignore[arg-type]
    source = make_source(sqlite_url, reactor, workers=workers, token="scrape-token")
    service = http_service(source, reactor)
    workers.startService()
    service.startService()
    yield source, service
    pytest_twisted.blockon(service.stopService())
    workers.stopService()
    source.store.engine.dispose()


@pytest_twisted.ensureDeferred
async def test_prometheus_scrapes_our_registry_with_values_read_at_scrape_time(
    running: tuple[Source, HttpServices],
) -> None:
    source, service = running
    bind_peer(source)
    traffic(source, rounds=2)
    status, body = await get(port_of(service), "/metrics")
    assert status == 200
    families = {f.name: f for f in text_string_to_metric_families(body.decode())}
    received = families["vssid_sms_received"].samples
    assert [(s.labels, s.value) for s in received] == [({"peer": "viettel"}, 6.0)]
    assert families["vssid_database_pool_size"].samples[0].value == 2
    assert families["vssid_smpp_binds"].samples[0].labels == {
        "peer": "viettel",
        "type": "transceiver",
    }
    assert "process_cpu_seconds" not in families  # only the gateway's own registry
    assert (await get(port_of(service), "/metrics", token=None))[0] == 401


@pytest_twisted.ensureDeferred
async def test_readiness_runs_select_1_on_the_worker_pool(
    running: tuple[Source, HttpServices],
) -> None:
    source, service = running
    source.smpp_listener.doStart()
    status, body = await get(port_of(service), "/readyz", token=None)
    assert status == 200, body
    source.smpp_listener.doStop()


def test_a_taken_port_fails_the_start_with_one_clear_line(
    running: tuple[Source, HttpServices], sqlite_url: str
) -> None:
    _, service = running
    taken = f"tcp:{port_of(service)}:interface=127.0.0.1"
    second = http_service(make_source(sqlite_url, reactor, listen=taken), reactor)
    failures: list[Failure] = []
    second.started.addErrback(failures.append)
    second.startService()
    (failure,) = failures
    assert failure.check(HttpListenError)
    message = failure.getErrorMessage()
    assert message.startswith(f"[http] listen '{taken}': Couldn't listen on 127.0.0.1:")
    assert "Address already in use" in message
    second.stopService()
