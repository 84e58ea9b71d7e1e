"""The dashboard in a real browser (Debian's chromium, headless) against a real HTTP listener.

The gateway's observers are fed 15 minutes of synthetic traffic (and keep getting more while
the first page load runs, for the screenshot); then the traffic stops, the page is loaded
again and every number it shows (``data-stat`` elements, as rendered by the page's own
JavaScript) is compared with the same series scraped from ``/metrics``. The token travels
the way an operator gives it: ``/?token=...`` in the address, which the page keeps and removes.

``--dump-dom`` with a virtual-time budget is enough here: the page needs one fetch and one
render, and the DOM it leaves is what we check. A WebDriver would add a dependency and a
driver process for nothing this test needs.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest
import pytest_twisted
from prometheus_client.parser import text_string_to_metric_families
from twisted.internet import reactor
from twisted.internet.task import LoopingCall
from twisted.internet.utils import getProcessOutputAndValue

from gateway.http import http_service
from gateway.live import BUCKET_SECONDS
from gateway.service import WorkerPool
from tests.e2e.test_web_http import get, port_of
from tests.support.monitoring import Source, bind_peer, make_source, traffic

TOKEN = "dashboard-token-7"
ARTEFACTS = Path(__file__).parents[2] / "test-artefacts"
BROWSER_TIMEOUT = 60.0
CHROMIUM = shutil.which("chromium")

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (scripts/ensure-system installs it)"
)


class Stats(HTMLParser):
    """Collects ``data-stat`` elements: their ``data-value`` and the text shown."""

    def __init__(self) -> None:
        super().__init__()
        self.values: dict[str, str] = {}
        self.shown: dict[str, str] = {}
        self.polylines: list[str] = []
        self.chips = ""
        self.loaded = False
        self._open: list[str | None] = []
        self._open_chip = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "body" and attributes.get("data-loaded") == "yes":
            self.loaded = True
        if tag == "polyline":
            self.polylines.append(attributes.get("points") or "")
        self._open_chip = "chip" in (attributes.get("class") or "").split()
        stat = attributes.get("data-stat")
        if stat is not None:
            self.values[stat] = attributes.get("data-value") or ""
            self.shown[stat] = ""
        self._open.append(stat)

    def handle_endtag(self, tag: str) -> None:
        if self._open:
            self._open.pop()

    def handle_data(self, data: str) -> None:
        if self._open_chip:
            self.chips += data + " "
        stat = next((s for s in reversed(self._open) if s is not None), None)
        if stat is not None:
            self.shown[stat] += data


@pytest.fixture
def gateway(sqlite_url: str, tmp_path: Path) -> Iterator[tuple[Source, int]]:
    workers = WorkerPool(reactor, 2)  # type: ignore[arg-type]
    source = make_source(sqlite_url, reactor, workers=workers, token=TOKEN)
    service = http_service(source, reactor)
    workers.startService()
    service.startService()
    smpp_port = pytest_twisted.blockon(source.smpp_listener.listen(reactor))
    bind_peer(source)
    now = reactor.seconds()
    for minutes_ago in range(90, 0, -1):  # the last 15 minutes, one sample per bucket
        traffic(source, rounds=1 + minutes_ago % 4)
        source.monitor.live.sample(now - minutes_ago * BUCKET_SECONDS)
    yield source, port_of(service)
    pytest_twisted.blockon(smpp_port.stopListening())
    pytest_twisted.blockon(service.stopService())
    workers.stopService()
    source.store.engine.dispose()


async def chromium(tmp_path: Path, url: str, *options: str) -> str:
    assert CHROMIUM is not None
    arguments = (
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run",
        f"--user-data-dir={tmp_path / 'chromium'}", "--window-size=1400,1500",
        "--virtual-time-budget=4000", *options, url,
    )  # fmt: skip
    running = getProcessOutputAndValue(CHROMIUM, arguments, env={"HOME": str(tmp_path)})
    out, err, code = await running.addTimeout(BROWSER_TIMEOUT, reactor)
    assert code == 0, err.decode(errors="replace")[-2000:]
    return str(out.decode("utf-8"))


def _metrics(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def _sum(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str,
         **labels: str) -> float:  # fmt: skip
    return sum(
        value
        for (sample, pairs), value in samples.items()
        if sample == name and all(dict(pairs).get(k) == v for k, v in labels.items())
    )


@pytest_twisted.ensureDeferred
async def test_the_page_shows_the_numbers_the_metrics_have(
    gateway: tuple[Source, int], tmp_path: Path
) -> None:
    source, port = gateway
    page = f"http://127.0.0.1:{port}/?token={TOKEN}"
    ARTEFACTS.mkdir(exist_ok=True)
    screenshot = ARTEFACTS / "dashboard.png"
    screenshot.unlink(missing_ok=True)
    flowing = LoopingCall(traffic, source)
    flowing.start(0.05)
    try:
        await chromium(tmp_path, page, f"--screenshot={screenshot}")
    finally:
        flowing.stop()
    assert screenshot.stat().st_size > 20_000

    dom = Stats()
    dom.feed(await chromium(tmp_path, page, "--dump-dom"))
    status, body = await get(port, "/metrics", token=TOKEN)
    assert status == 200
    metrics = _metrics(body.decode())

    assert dom.loaded, "the page never rendered /api/stats"
    assert "SMPP listening" in dom.chips and "Database up" in dom.chips
    expected = {
        "sms.viettel.received": _sum(metrics, "vssid_sms_received_total", peer="viettel"),
        "sms.viettel.duplicates": _sum(metrics, "vssid_sms_duplicates_total", peer="viettel"),
        "sms.viettel.sent": _sum(metrics, "vssid_sms_replies_total", peer="viettel", state="sent"),
        "sms.viettel.acknowledged": _sum(
            metrics, "vssid_sms_replies_total", peer="viettel", state="acknowledged"
        ),
        "sms.viettel.failed": _sum(
            metrics, "vssid_sms_replies_total", peer="viettel", state="failed"
        ),
        "sms.vina.received": _sum(metrics, "vssid_sms_received_total", peer="vina"),
        "resets.by_outcome.reset": _sum(metrics, "vssid_resets_total", outcome="reset"),
        "resets.by_outcome.mismatch": _sum(metrics, "vssid_resets_total", outcome="mismatch"),
        "resets.by_carrier.Viettel": _sum(metrics, "vssid_resets_total", carrier="Viettel"),
        "resets.by_carrier.MobiFone": _sum(metrics, "vssid_resets_total", carrier="MobiFone"),
        "ivr.calls_by_outcome.reset": _sum(metrics, "vssid_ivr_calls_total", outcome="reset"),
        "ivr.billed_minutes": _sum(metrics, "vssid_ivr_billed_minutes_total"),
        "outbox.queued": _sum(metrics, "vssid_outbox_queued"),
        "smpp.viettel.binds": _sum(metrics, "vssid_smpp_binds", peer="viettel"),
        "smpp.vina.binds": _sum(metrics, "vssid_smpp_binds", peer="vina"),
        "database.pool_size": _sum(metrics, "vssid_database_pool_size"),
    }
    assert expected["sms.viettel.received"] > 500  # the traffic really flowed
    shown = {key: float(dom.values[key]) for key in expected}
    assert shown == expected
    for key, value in expected.items():  # and the text says the same, as people read it
        assert dom.shown[key].replace(",", "") == f"{value:g}", key
    charted = [line for line in dom.polylines if line.count(",") > 60]
    assert len(charted) >= 2, "throughput in and out for viettel over 15 minutes"
