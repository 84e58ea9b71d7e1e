"""``vssid-gateway stats`` against a running HTTP listener on 127.0.0.1 (real TCP, token)."""

from __future__ import annotations

from collections.abc import Iterator
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
