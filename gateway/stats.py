"""The dashboard's JSON (``/api/stats``), also read by ``vssid-gateway stats``.

Totals come from the same counters ``/metrics`` exposes (so the page and Prometheus agree),
the last 15 minutes from :class:`gateway.live.LiveStats`, and the binds from the SMPP
listener's registry. Built on the reactor thread, which owns the listener's state.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import Counter, Gauge

from gateway import __version__
from gateway.live import by_label, counter_values
from gateway.metrics import REPLY_STATES
from gateway.monitor import StatusSource, live_status, smpp_listener
from smpp.protocol import SmppListener


def gauge_value(gauge: Gauge) -> float:
    for family in gauge.collect():
        for sample in family.samples:
            return float(sample.value)
    return 0.0


def total(counter: Counter, **match: str) -> float:
    return sum(counter_values(counter, **match).values())


def stats_document(source: StatusSource, now: float) -> dict[str, Any]:
    monitor = source.monitor
    m = monitor.metrics
    settings = source.settings
    peers = [peer.name for peer in settings.smpp.peers]
    status = live_status(source)
    return {
        "version": __version__,
        "now": now,
        "started_at": monitor.started_at,
        "uptime_seconds": round(now - monitor.started_at, 1),
        "throughput": monitor.live.throughput(now, peers),
        "latency": monitor.live.latency(now),
        "sms": {
            name: _sms(source, name) for name in sorted({*peers, *by_label(m.received, "peer")})
        },
        "outbox": {
            "queued": gauge_value(m.outbox_queued),
            "oldest_age_seconds": gauge_value(m.outbox_oldest),
        },
        "smpp": _smpp(source, peers),
        "resets": {
            "by_outcome": by_label(m.resets, "outcome"),
            "by_carrier": by_label(m.resets, "carrier"),
            "by_channel": by_label(m.resets, "channel"),
            "duplicates": total(m.reset_duplicates),
        },
        "ivr": {
            "enabled": settings.ivr.enabled,
            "ami_up": status.ami_up,
            "calls_active": status.calls_active,
            "reconnects": status.ami_reconnects,
            "calls_by_outcome": by_label(m.calls, "outcome"),
            "billed_minutes": total(m.billed_minutes),
        },
        "database": {
            "ok": monitor.database_ok,
            "pool_in_use": status.pool_in_use,
            "pool_size": status.pool_size,
            "errors": total(m.database_errors),
        },
    }


def _sms(source: StatusSource, peer: str) -> dict[str, float]:
    m = source.monitor.metrics
    counts = {
        "received": total(m.received, peer=peer),
        "duplicates": total(m.duplicates, peer=peer),
        "refused": total(m.refused, peer=peer),
        "deferred": total(m.replies_deferred, peer=peer),
    }
    for state in REPLY_STATES:
        counts[state] = total(m.replies, peer=peer, state=state)
    return counts


def _smpp(source: StatusSource, peers: list[str]) -> dict[str, Any]:
    listener = smpp_listener(source)
    enabled = source.settings.smpp.enabled
    listening = listener is not None and listener.numPorts > 0
    rows = [_peer(listener, name) for name in peers]
    return {"enabled": enabled, "listening": listening, "peers": rows}


def _peer(listener: SmppListener | None, name: str) -> dict[str, Any]:
    binds: list[dict[str, Any]] = []
    if listener is not None:
        clock_now = listener.clock.seconds()  # the clock bind_at was read from
        for bind in listener.registry.binds(name):
            protocol = listener.connections.get(bind.connection)
            session = protocol.session if protocol is not None else None
            window = session.peer.window if session and session.peer else 0
            receiving = bind.kind.can_receive and session is not None
            binds.append(
                {
                    "type": bind.kind.value,
                    "address": bind.address,
                    "uptime_seconds": round(max(clock_now - bind.bound_at, 0.0), 1),
                    "window": window if bind.kind.can_receive else 0,
                    "window_in_use": window - session.free_window if receiving and session else 0,
                }
            )
    return {"name": name, "state": "bound" if binds else "down", "binds": binds}
