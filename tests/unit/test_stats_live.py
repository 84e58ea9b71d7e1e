"""The dashboard's 15-minute history: rates per bucket and quantiles from histogram buckets."""

from __future__ import annotations

import pytest

from gateway.events import MessagesStored, ReplyFinished
from gateway.live import BUCKET_SECONDS, LiveStats, quantile
from gateway.metrics import EventMetrics, Metrics


def _live() -> tuple[LiveStats, EventMetrics, Metrics]:
    metrics = Metrics(["viettel", "vina"])
    return LiveStats(metrics), EventMetrics(metrics), metrics


def test_quantiles_interpolate_inside_the_bucket_that_holds_the_rank() -> None:
    buckets = ((0.1, 50.0), (0.5, 90.0), (1.0, 100.0), (float("inf"), 100.0))
    assert quantile(0.5, buckets) == pytest.approx(0.1)
    assert quantile(0.7, buckets) == pytest.approx(0.3)  # halfway between 50 and 90
    assert quantile(0.99, buckets) == pytest.approx(0.95)


def test_a_quantile_beyond_the_last_bound_is_that_bound_and_none_without_data() -> None:
    assert quantile(0.99, ((1.0, 1.0), (float("inf"), 10.0))) == 1.0
    assert quantile(0.5, ((1.0, 0.0), (float("inf"), 0.0))) is None
    assert quantile(0.5, ()) is None


def test_throughput_is_per_bucket_rate_in_and_out_per_peer() -> None:
    live, events, metrics = _live()
    live.sample(1000.0)
    events.observe(MessagesStored("viettel", 18, 2, ()))
    metrics.replies.labels("viettel", "sent").inc(10)
    live.sample(1000.0 + BUCKET_SECONDS)
    events.observe(MessagesStored("vina", 5, 0, ()))
    chart = live.throughput(1000.0 + 2 * BUCKET_SECONDS, ["viettel", "vina"])
    assert chart["times"] == [1010.0, 1020.0]
    peers = chart["peers"]
    assert isinstance(peers, dict)
    assert peers["viettel"] == {"in": [2.0, 0.0], "out": [1.0, 0.0]}
    assert peers["vina"] == {"in": [0.0, 0.5], "out": [0.0, 0.0]}
    assert chart["window_totals"] == {
        "viettel": {"in": 20.0, "out": 10.0},
        "vina": {"in": 5.0, "out": 0.0},
    }


def test_the_history_forgets_what_is_older_than_fifteen_minutes() -> None:
    live, events, _ = _live()
    events.observe(MessagesStored("viettel", 100, 0, ()))
    live.sample(0.0)
    for n in range(1, 100):
        live.sample(n * BUCKET_SECONDS)
    chart = live.throughput(100 * BUCKET_SECONDS, ["viettel"])
    times = chart["times"]
    assert isinstance(times, list)
    assert len(times) == 91
    assert times[0] == 10 * BUCKET_SECONDS  # the interval from the oldest sample kept (90 s)
    assert chart["window_totals"] == {"viettel": {"in": 0.0, "out": 0.0}}


def test_latency_quantiles_cover_only_the_window() -> None:
    live, events, _ = _live()
    events.observe(MessagesStored("viettel", 1, 0, (4.0,) * 100))  # before the window
    live.sample(0.0)
    events.observe(MessagesStored("viettel", 1, 0, (0.003,) * 99 + (0.2,)))
    events.observe(ReplyFinished("vina", "acknowledged", 0, 2.0))
    latency = live.latency(10.0)
    assert latency["ack"]["count"] == 100
    assert latency["ack"]["p50"] is not None and 0.0025 < latency["ack"]["p50"] <= 0.005
    assert latency["ack"]["p99"] is not None and latency["ack"]["p99"] <= 0.005
    assert latency["reply"]["count"] == 1
    assert latency["reply"]["p50"] is not None and 1.0 < latency["reply"]["p50"] <= 2.5
