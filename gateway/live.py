"""The dashboard's recent history: throughput per peer and latency quantiles, last 15 minutes.

Prometheus keeps history for those who run one; the dashboard must work without. Every ten
seconds :meth:`LiveStats.sample` copies the few counters and histogram buckets the page
charts out of :class:`gateway.metrics.Metrics` into a bounded ring (91 samples: 15 minutes
and one). Rates are differences between samples and quantiles are interpolated within the
histogram buckets of the window (as Prometheus' ``histogram_quantile`` does), so the page can
never disagree with ``/metrics``: both read the same counters. Memory stays constant whatever
the traffic. Pure: no reactor, the time is an argument.
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from prometheus_client import Counter, Histogram

from gateway.metrics import Metrics

BUCKET_SECONDS: Final = 10.0
WINDOW_SECONDS: Final = 900.0
QUANTILES: Final = (0.5, 0.95, 0.99)

Buckets = tuple[tuple[float, float], ...]
"""Cumulative histogram buckets: (upper bound, observations at or below it), +Inf last."""


@dataclass(frozen=True, slots=True)
class Sample:
    """The charted counters at one moment."""

    at: float
    received: Mapping[str, float]
    sent: Mapping[str, float]
    ack: Buckets
    reply: Buckets


def counter_values(counter: Counter, **match: str) -> dict[tuple[tuple[str, str], ...], float]:
    """A counter's children as {sorted label pairs: value}, keeping those whose labels match."""
    values: dict[tuple[tuple[str, str], ...], float] = {}
    for family in counter.collect():
        for sample in family.samples:
            if not sample.name.endswith("_total"):
                continue
            if all(sample.labels.get(key) == value for key, value in match.items()):
                values[tuple(sorted(sample.labels.items()))] = sample.value
    return values


def by_label(counter: Counter, label: str, **match: str) -> dict[str, float]:
    """A counter summed by one label, e.g. replies by peer for ``state="sent"``."""
    totals: dict[str, float] = {}
    for labels, value in counter_values(counter, **match).items():
        key = dict(labels)[label]
        totals[key] = totals.get(key, 0.0) + value
    return totals


def histogram_buckets(histogram: Histogram) -> Buckets:
    """The histogram's cumulative buckets summed over all its label values."""
    sums: dict[float, float] = {}
    for family in histogram.collect():
        for sample in family.samples:
            if sample.name.endswith("_bucket"):
                bound = float(sample.labels["le"])
                sums[bound] = sums.get(bound, 0.0) + sample.value
    return tuple(sorted(sums.items()))


def quantile(q: float, buckets: Buckets) -> float | None:
    """The ``q`` quantile by linear interpolation inside its bucket; None with no data.

    A quantile in the +Inf bucket is reported as the highest finite bound, as Prometheus does.
    """
    if not buckets or buckets[-1][1] <= 0:
        return None
    rank = q * buckets[-1][1]
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if math.isinf(bound):
                return lower_bound
            if count == lower_count:
                return bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / (
                count - lower_count
            )
        lower_bound, lower_count = bound, count
    return lower_bound


def _minus(later: Buckets, earlier: Buckets) -> Buckets:
    before = dict(earlier)
    return tuple((bound, count - before.get(bound, 0.0)) for bound, count in later)


class LiveStats:
    """Samples of :class:`Metrics` every :data:`BUCKET_SECONDS`, and the charts made of them."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics
        self._samples: deque[Sample] = deque(maxlen=int(WINDOW_SECONDS / BUCKET_SECONDS) + 1)

    def current(self, now: float) -> Sample:
        m = self._metrics
        received = by_label(m.received, "peer")
        for peer, count in by_label(m.duplicates, "peer").items():
            received[peer] = received.get(peer, 0.0) + count
        return Sample(
            at=now,
            received=received,
            sent=by_label(m.replies, "peer", state="sent"),
            ack=histogram_buckets(m.ack_latency),
            reply=histogram_buckets(m.reply_latency),
        )

    def sample(self, now: float) -> None:
        """Keep the counters as they are now (call every :data:`BUCKET_SECONDS`)."""
        self._samples.append(self.current(now))

    def throughput(self, now: float, peers: Iterable[str]) -> dict[str, object]:
        """Messages per second in (received) and out (replies sent) per peer, per bucket."""
        points = [*self._samples, self.current(now)]
        if len(points) >= 2 and points[-1].at - points[-2].at < 1.0:
            del points[-2]  # a sample just taken: the partial bucket would be noise
        names = sorted({*peers, *points[-1].received, *points[-1].sent})
        times: list[float] = []
        series: dict[str, dict[str, list[float]]] = {n: {"in": [], "out": []} for n in names}
        for earlier, later in itertools.pairwise(points):
            span = later.at - earlier.at
            if span <= 0:
                continue
            times.append(round(later.at, 3))
            for name in names:
                received = later.received.get(name, 0.0) - earlier.received.get(name, 0.0)
                sent = later.sent.get(name, 0.0) - earlier.sent.get(name, 0.0)
                series[name]["in"].append(round(received / span, 3))
                series[name]["out"].append(round(sent / span, 3))
        window = {
            name: {
                "in": points[-1].received.get(name, 0.0) - points[0].received.get(name, 0.0),
                "out": points[-1].sent.get(name, 0.0) - points[0].sent.get(name, 0.0),
            }
            for name in names
        }
        return {
            "bucket_seconds": BUCKET_SECONDS,
            "window_seconds": round(points[-1].at - points[0].at, 3),
            "times": times,
            "peers": series,
            "window_totals": window,
        }

    def latency(self, now: float) -> dict[str, dict[str, float | None]]:
        """p50/p95/p99 (seconds) of ack and reply latency over the sampled window."""
        current = self.current(now)
        first = self._samples[0] if self._samples else None
        result: dict[str, dict[str, float | None]] = {}
        for name, later, earlier in (
            ("ack", current.ack, first.ack if first else ()),
            ("reply", current.reply, first.reply if first else ()),
        ):
            window = _minus(later, earlier)
            entry: dict[str, float | None] = {
                f"p{round(q * 100)}": quantile(q, window) for q in QUANTILES
            }
            entry["count"] = window[-1][1] if window else 0.0
            result[name] = entry
        return result
