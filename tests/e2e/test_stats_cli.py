"""``vssid-gateway stats`` against a running HTTP listener on 127.0.0.1 (real TCP, token)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import pytest_twisted
from twisted.internet import reactor, threads

from gateway.cli import main
from gateway.http import http_service
from gateway.service import WorkerPool
from tests.support.monitoring import Source, bind_peer, make_source, port_of, traffic

TOKEN = "stats-token-3"


@pytest.fixture
def running(sqlite_url: str, tmp_path: Path) -> Iterator[tuple[Source, Path]]:
    workers = WorkerPool(reactor, 2)  # type: ignore[arg-type]
    source = make_source(sqlite_url, reactor, workers=workers, token=TOKEN)
    service = http_service(source, reactor)
    workers.startService()
    service.startService()
    config = tmp_path / "config.toml"
    config.write_text(
        f'[database]\nurl = "{sqlite_url}"\n'
        f'[http]\nlisten = "tcp:{port_of(service)}:interface=127.0.0.1"\ntoken = "{TOKEN}"\n',
        encoding="utf-8",
    )
    yield source, config
    pytest_twisted.blockon(service.stopService())
    workers.stopService()
    source.store.engine.dispose()


@pytest_twisted.ensureDeferred
async def test_stats_prints_one_screen_from_the_running_service(
    running: tuple[Source, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    source, config = running
    bind_peer(source)
    traffic(source, rounds=4)
    status = await threads.deferToThread(main, ["--config", str(config), "stats"])
    out = capsys.readouterr().out
    assert status == 0
    lines = out.splitlines()
    assert len(lines) <= 30
    assert lines[0].startswith("vssid-gateway ")
    viettel = next(line for line in lines if line.startswith("viettel "))
    assert viettel.split()[3:6] == ["12", "8", "4"]  # received, acknowledged, failed
    assert any("transceiver" in line and "window 0/5" in line for line in lines)
    assert "resets: reset 4 · mismatch 4 | " in out or "resets: mismatch 4 · reset 4 | " in out
    assert "calls: - active · reset 4 · 4 billed minutes" in out


@pytest_twisted.ensureDeferred
async def test_stats_says_so_when_the_token_is_wrong_or_nobody_listens(
    running: tuple[Source, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, config = running
    wrong = tmp_path / "wrong.toml"
    wrong.write_text(config.read_text().replace(TOKEN, "guess"), encoding="utf-8")
    assert await threads.deferToThread(main, ["--config", str(wrong), "stats"]) == 1
    assert "answered 401" in capsys.readouterr().err
    nobody = ["--config", str(config), "stats", "--url", "http://127.0.0.1:9"]
    assert await threads.deferToThread(main, nobody) == 1
    assert "cannot reach the gateway at http://127.0.0.1:9" in capsys.readouterr().err


def test_stats_follows_no_redirect_so_the_token_goes_nowhere_else(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A proxy or login page answering 302 must not get the token: urllib would send the
    Authorization header on, even to another host or from https to http."""
    arrived: list[str | None] = []  # the Authorization header of each request to /elsewhere

    class Redirecting(BaseHTTPRequestHandler):
        timeout = 5.0

        def do_GET(self) -> None:
            if self.path == "/api/stats":
                self.send_response(302)
                self.send_header("Location", "/elsewhere")
            else:
                arrived.append(self.headers.get("Authorization"))
                self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:  # not on stderr, checked below
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Redirecting)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    config = tmp_path / "config.toml"
    config.write_text(f'[http]\ntoken = "{TOKEN}"\n', encoding="utf-8")
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        status = main(["--config", str(config), "stats", "--url", url])
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5.0)
    assert arrived == []  # /elsewhere was never asked for, with the token or without
    assert status == 1
    err = capsys.readouterr().err
    assert f"{url} answered 302 Found, redirecting to '/elsewhere'; not followed" in err


def test_stats_goes_to_the_service_directly_whatever_http_proxy_says(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A proxy in the environment would see the token: the service is asked directly."""
    asked: dict[str, list[str | None]] = {"proxy": [], "service": []}

    def recorder(name: str) -> type[BaseHTTPRequestHandler]:
        class Recording(BaseHTTPRequestHandler):
            timeout = 5.0

            def do_GET(self) -> None:
                asked[name].append(self.headers.get("Authorization"))
                self.send_response(401)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        return Recording

    servers = [ThreadingHTTPServer(("127.0.0.1", 0), recorder(n)) for n in ("proxy", "service")]
    threads = [threading.Thread(target=s.serve_forever, args=(0.05,), daemon=True) for s in servers]
    for thread in threads:
        thread.start()
    proxy, service = (f"http://127.0.0.1:{s.server_address[1]}" for s in servers)
    for name in ("http_proxy", "HTTP_PROXY"):
        monkeypatch.setenv(name, proxy)
    for name in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    config = tmp_path / "config.toml"
    config.write_text(f'[http]\ntoken = "{TOKEN}"\n', encoding="utf-8")
    try:
        status = main(["--config", str(config), "stats", "--url", service])
    finally:
        for server, thread in zip(servers, threads, strict=True):
            server.shutdown()
            server.server_close()
            thread.join(timeout=5.0)
    assert asked == {"proxy": [], "service": [f"Bearer {TOKEN}"]} and status != 0
    capsys.readouterr()
