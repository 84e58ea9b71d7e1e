"""The HTTP pages through the real Site on StringTransport and a Clock: health, access, stats."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

import pytest
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import capturedLogs
from twisted.python.failure import Failure
from twisted.web.server import Site

from gateway.http import MAX_CONNECTIONS, DatabaseCheck, make_site
from gateway.web import Asset
from tests.support.monitoring import Source, bind_peer, make_source, traffic

T = TypeVar("T")
TOKEN = "operator-token-1"


class Response:
    def __init__(self, raw: bytes) -> None:
        head, _, self.body = raw.partition(b"\r\n\r\n")
        status_line, *lines = head.decode("latin-1").split("\r\n")
        self.status = int(status_line.split()[1])
        self.headers = {k.lower(): v.strip() for k, _, v in (h.partition(":") for h in lines)}

    def json(self) -> Any:
        assert self.headers["content-type"] == "application/json; charset=utf-8"
        return json.loads(self.body)


class HangingWorkers:
    """A worker pool whose threads are all stuck: nothing it runs ever finishes."""

    def run(self, function: Callable[..., T], *args: Any) -> Deferred[T]:
        return Deferred()


def get(
    site: Site, path: str, headers: str = "", host: str = "127.0.0.1", name: str = "localhost:8080"
) -> Response:
    """GET ``path`` from a client at ``host`` that names the server ``name`` (Host header)."""
    address = IPv4Address("TCP", host, 50123)
    protocol = site.buildProtocol(address)
    assert protocol is not None
    transport = StringTransport(peerAddress=address)
    protocol.makeConnection(transport)
    request = f"GET {path} HTTP/1.0\r\nHost: {name}\r\n{headers}\r\n"
    protocol.dataReceived(request.encode("ascii"))
    return Response(transport.value())


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def source(sqlite_url: str, clock: Clock) -> Source:
    return make_source(sqlite_url, clock)


def _site(source: Source, clock: Clock) -> Site:
    return make_site(source, clock, metrics=Asset(b"vssid_up 1\n", b"text/plain"))


def test_healthz_answers_anyone_with_the_version(source: Source, clock: Clock) -> None:
    clock.advance(source.monitor.started_at + 30)
    response = get(_site(source, clock), "/healthz", host="203.0.113.9")
    assert response.status == 200
    body = response.json()
    assert body["status"] == "alive"
    assert body["uptime_seconds"] == pytest.approx(30, abs=1)


def test_readyz_is_ready_when_the_database_answers_and_the_listener_listens(
    source: Source, clock: Clock
) -> None:
    source.smpp_listener.doStart()  # what a listening port does to its factory
    response = get(_site(source, clock), "/readyz", host="203.0.113.9")
    assert response.status == 200
    body = response.json()
    assert body["status"] == "ready"
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["smpp"] == {"ok": True}
    assert "ami" not in body["checks"]  # the IVR is not enabled


def test_readyz_says_which_check_fails_with_503(source: Source, clock: Clock) -> None:
    response = get(_site(source, clock), "/readyz")
    assert response.status == 503
    body = response.json()
    assert body["status"] == "not ready"
    assert body["checks"]["smpp"] == {"ok": False, "error": "not listening"}
    assert body["checks"]["database"]["ok"] is True


def test_readyz_needs_the_ami_link_when_the_ivr_is_enabled(sqlite_url: str, clock: Clock) -> None:
    source = make_source(sqlite_url, clock, ivr=True)
    assert source.ivr is not None
    source.smpp_listener.doStart()
    site = _site(source, clock)
    assert get(site, "/readyz").json()["checks"]["ami"] == {
        "ok": False,
        "error": "AMI not logged in",
    }
    source.ivr.connected = object()  # type: ignore[assignment]  # what logged_in() records
    assert get(site, "/readyz").status == 200


def test_readyz_gives_up_on_a_database_that_does_not_answer(sqlite_url: str, clock: Clock) -> None:
    source = make_source(sqlite_url, clock, workers=HangingWorkers())
    address = IPv4Address("TCP", "127.0.0.1", 50123)
    protocol = _site(source, clock).buildProtocol(address)
    assert protocol is not None
    transport = StringTransport(peerAddress=address)
    protocol.makeConnection(transport)
    protocol.dataReceived(b"GET /readyz HTTP/1.0\r\n\r\n")
    assert transport.value() == b""
    clock.advance(2.0)
    response = Response(transport.value())
    assert response.status == 503
    assert response.json()["checks"]["database"] == {"ok": False, "error": "no answer within 2 s"}


@pytest.mark.postgres
def test_readyz_reports_an_unreachable_database_by_error_type(clock: Clock) -> None:
    source = make_source("postgresql+psycopg://postgres@127.0.0.1:5432/vssid_missing_db", clock)
    response = get(_site(source, clock), "/readyz")
    assert response.status == 503
    assert response.json()["checks"]["database"] == {"ok": False, "error": "OperationalError"}


@pytest.mark.postgres
def test_the_database_check_logs_the_drivers_reason_on_one_line_without_the_url(
    clock: Clock,
) -> None:
    url = "postgresql+psycopg://postgres:Check-Pw-7@127.0.0.1:5432/vssid_missing_db"
    source = make_source(url, clock)
    with capturedLogs() as events:
        DatabaseCheck(source, clock)()
        DatabaseCheck(source, clock)()  # still down: logged once

    (down,) = [event for event in events if event.get("event") == "database_down"]
    assert 'database "vssid_missing_db" does not exist' in down["error"]
    assert "\n" not in down["error"] and "Check-Pw-7" not in down["error"]
    assert url not in down["error"] and source.monitor.database_ok is False


@pytest.mark.parametrize("path", ["/api/stats", "/metrics"])
def test_without_a_token_only_localhost_may_read(source: Source, clock: Clock, path: str) -> None:
    site = _site(source, clock)
    assert get(site, path).status == 200
    remote = get(site, path, host="198.51.100.7")
    assert remote.status == 403
    assert remote.json() == {"error": "allowed from localhost only"}
    for name in ("127.0.0.1:8080", "[::1]:8080", "localhost"):
        assert get(site, path, name=name).status == 200
    # a page that pointed its own name at 127.0.0.1 (DNS rebinding): the browser says so
    for name in ("rebind.example:8080", "127.0.0.1.rebind.example"):
        assert get(site, path, name=name).status == 403


def test_a_request_with_a_body_is_refused_before_the_body_is_read(
    source: Source, clock: Clock
) -> None:
    site = _site(source, clock)
    address = IPv4Address("TCP", "127.0.0.1", 50123)
    protocol = site.buildProtocol(address)
    transport = StringTransport(peerAddress=address)
    protocol.makeConnection(transport)
    head = (
        "POST /api/stats HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100000000\r\n"
        "Expect: 100-continue\r\n\r\n"
    )
    protocol.dataReceived(head.encode("ascii") + b"x" * 65536)
    assert transport.value().startswith(b"HTTP/1.1 413 ")
    assert b"100 Continue" not in transport.value()  # one answer, and it is final
    assert transport.disconnecting or transport.disconnected


def test_connections_over_the_cap_are_closed_at_once(source: Source, clock: Clock) -> None:
    site = _site(source, clock)
    address = IPv4Address("TCP", "127.0.0.1", 50123)
    for _ in range(MAX_CONNECTIONS):
        protocol = site.buildProtocol(address)
        protocol.makeConnection(StringTransport(peerAddress=address))
    over = StringTransport(peerAddress=address)
    site.buildProtocol(address).makeConnection(over)  # a protocol, even so: TLS wraps it
    assert over.disconnecting and over.value() == b""
    protocol.connectionLost(Failure(ConnectionDone()))
    again = StringTransport(peerAddress=address)
    site.buildProtocol(address).makeConnection(again)
    assert not again.disconnecting


@pytest.mark.parametrize("path", ["/api/stats", "/metrics"])
def test_with_a_token_everyone_needs_it(sqlite_url: str, clock: Clock, path: str) -> None:
    site = _site(make_source(sqlite_url, clock, token=TOKEN), clock)
    missing = get(site, path)
    assert missing.status == 401
    assert missing.headers["www-authenticate"] == 'Bearer realm="vssid-gateway"'
    assert get(site, path, f"Authorization: Bearer {TOKEN}x\r\n").status == 401
    assert get(site, f"{path}?token=wrong").status == 401
    assert get(site, path, f"Authorization: Bearer {TOKEN}\r\n", host="198.51.100.7").status == 200
    assert get(site, path, f"authorization: bearer {TOKEN}\r\n").status == 200
    assert get(site, f"{path}?token={TOKEN}", host="198.51.100.7").status == 200


def test_the_page_is_served_with_a_strict_policy_and_no_data(source: Source, clock: Clock) -> None:
    site = _site(source, clock)
    page = get(site, "/", host="198.51.100.7")
    assert page.status == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert b'src="/static/dashboard.js"' in page.body
    script = get(site, "/static/dashboard.js", host="198.51.100.7")
    assert script.status == 200
    assert "javascript" in script.headers["content-type"]


def test_unknown_paths_and_the_static_folder_itself_are_not_found(
    source: Source, clock: Clock
) -> None:
    site = _site(source, clock)
    for path in ("/nothing", "/static/", "/static/../gateway/web.py", "/api/other"):
        response = get(site, path)
        assert (path, response.status) == (path, 404)


def test_stats_add_up_what_was_observed(source: Source, clock: Clock) -> None:
    bind_peer(source)
    traffic(source, rounds=3)
    stats = get(_site(source, clock), "/api/stats").json()
    assert stats["sms"]["viettel"]["received"] == 9
    assert stats["sms"]["viettel"]["duplicates"] == 3
    assert stats["sms"]["viettel"]["sent"] == 3
    assert stats["sms"]["viettel"]["acknowledged"] == 6
    assert stats["sms"]["vina"]["received"] == 0
    assert stats["resets"]["by_outcome"] == {"reset": 3, "mismatch": 3}
    assert stats["resets"]["by_carrier"] == {"Viettel": 3, "MobiFone": 3}
    assert stats["ivr"]["calls_by_outcome"] == {"reset": 3}
    assert stats["outbox"] == {"queued": 6, "oldest_age_seconds": 12.5}
    viettel, vina = stats["smpp"]["peers"]
    assert (viettel["name"], viettel["state"], vina["state"]) == ("viettel", "bound", "down")
    (bind,) = viettel["binds"]
    assert (bind["type"], bind["window"], bind["window_in_use"]) == ("transceiver", 5, 0)
    assert stats["database"]["pool_size"] == 2
    assert stats["latency"]["ack"]["count"] == 12


def test_stats_and_metrics_show_the_hotline_link_and_calls_in_progress(
    sqlite_url: str, clock: Clock
) -> None:
    source = make_source(sqlite_url, clock, ivr=True)
    assert source.ivr is not None
    site = _site(source, clock)
    source.monitor.watch(source)
    assert get(site, "/api/stats").json()["ivr"] == {
        "enabled": True,
        "ami_up": False,
        "calls_active": 0,
        "reconnects": 0,
        "calls_by_outcome": {},
        "billed_minutes": 0,
    }
    source.ivr.connected = object()  # type: ignore[assignment]  # what logged_in() records
    source.ivr.running.add(Deferred())
    source.ivr.reconnects = 2
    ivr = get(site, "/api/stats").json()["ivr"]
    assert (ivr["ami_up"], ivr["calls_active"], ivr["reconnects"]) == (True, 1, 2)
    registry = source.monitor.metrics.registry
    assert registry.get_sample_value("vssid_ami_up") == 1
    assert registry.get_sample_value("vssid_ivr_calls_active") == 1
    assert registry.get_sample_value("vssid_ami_reconnects_total") == 2
