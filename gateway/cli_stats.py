"""``vssid-gateway stats``: the running gateway on one terminal screen.

Reads ``/api/stats`` from the service's HTTP listener (``[http] listen``, with ``[http] token``
when one is set) and prints current rates per peer, binds, latency, the queue, resets and
calls. For a view that refreshes, run it under ``watch -n 5``.

It never follows a redirect: urllib would send the token's ``Authorization`` header on to
wherever a redirect points (another host, or from https to plain http), so a proxy or a login
page in front of the service would learn the token. A 3xx is reported instead, with its
``Location``, for the operator to check and give as ``--url``.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import urllib.error
import urllib.request
from http.client import HTTPMessage
from typing import IO, Any

from gateway.config import Settings

TIMEOUT = 5.0
RATE_BUCKETS = 6  # the last minute of 10-second buckets
_UNESCAPED_COLON = re.compile(r"(?<!\\):")


def register(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "stats", parents=parents, help="one-screen summary from the running service"
    )
    parser.add_argument("--url", help="the service's base URL (default: from [http] listen)")
    parser.add_argument("--json", action="store_true", help="print /api/stats as it comes")
    parser.set_defaults(handler=run)


def base_url(listen: str) -> str:
    """``tcp:8080:interface=127.0.0.1`` -> ``http://127.0.0.1:8080`` (``ssl:`` -> https)."""
    kind, *parts = [p.replace("\\:", ":") for p in _UNESCAPED_COLON.split(listen)]
    if kind not in ("tcp", "tcp6", "ssl"):
        raise ValueError(f"cannot reach a {kind!r} listener over HTTP; use --url")
    options = dict(p.split("=", 1) for p in parts if "=" in p)
    positional = [p for p in parts if "=" not in p]
    port = options.get("port") or (positional[0] if positional else "")
    host = options.get("interface", "")
    if host in ("", "0.0.0.0"):  # noqa: S104 - a wildcard listener is reached on loopback
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"{'https' if kind == 'ssl' else 'http'}://{host}:{port}"


class RedirectError(Exception):
    """The service answered with a redirect, which we do not follow (see the module doc)."""

    def __init__(self, status: int, reason: str, location: str) -> None:
        where = f", redirecting to {location!r}" if location else ""
        super().__init__(f"answered {status} {reason}{where}")
        self.status = status
        self.location = location


class _RefuseRedirects(urllib.request.HTTPRedirectHandler):
    """Follows no redirect: the 3xx then reaches urllib's default handler as an HTTPError."""

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: HTTPMessage,
        newurl: str,
    ) -> None:
        return None


# No proxy either (whatever http_proxy says): the token is for the service, nobody between.
_OPENER = urllib.request.build_opener(_RefuseRedirects, urllib.request.ProxyHandler({}))


def fetch(url: str, token: str) -> dict[str, Any]:
    """``/api/stats`` as a document. Raises :class:`RedirectError` for a 3xx (never followed, so
    that the token goes nowhere but ``url``), ``urllib.error.HTTPError`` for other errors."""
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"not an http(s) URL: {url!r}")
    request = urllib.request.Request(f"{url.rstrip('/')}/api/stats")  # noqa: S310 - checked
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        response = _OPENER.open(request, timeout=TIMEOUT)
    except urllib.error.HTTPError as error:
        if not 300 <= error.code < 400:
            raise
        error.close()  # its body is the redirect page, which we do not read
        raise RedirectError(error.code, error.reason, error.headers.get("Location", "")) from None
    with response:
        document: dict[str, Any] = json.load(response)
        return document


def run(args: argparse.Namespace, settings: Settings) -> int:
    try:
        url = args.url or base_url(settings.http.listen)
    except ValueError as error:
        print(f"vssid-gateway stats: {error}", file=sys.stderr)
        return 2
    try:
        document = fetch(url, settings.http.token.reveal())
    except ValueError as error:
        print(f"vssid-gateway stats: {error}", file=sys.stderr)
        return 2
    except RedirectError as error:
        print(
            f"vssid-gateway stats: {url} {error}; not followed, so that the token is not sent "
            "there: if that is the service, give its address with --url",
            file=sys.stderr,
        )
        return 1
    except urllib.error.HTTPError as error:
        print(f"vssid-gateway stats: {url} answered {error.code} {error.reason}", file=sys.stderr)
        return 1
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        print(f"vssid-gateway stats: cannot reach the gateway at {url}: {reason}", file=sys.stderr)
        return 1
    print(json.dumps(document, indent=1) if args.json else render(document))
    return 0


def _count(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.1f} s"


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f}s"
    minutes, _ = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days}d {hours}h"
    return f"{hours}h {minutes:02d}m" if hours else f"{minutes}m"


def _state(ok: bool | None, up: str, down: str) -> str:
    return f"{up.split(maxsplit=1)[0]} unknown" if ok is None else up if ok else down


def render(doc: dict[str, Any]) -> str:
    """The summary as text, at most about 30 lines for a handful of peers."""
    smpp, ivr, db = doc["smpp"], doc["ivr"], doc["database"]
    smpp_state = "SMPP off" if not smpp["enabled"] else _state(
        smpp["listening"], "SMPP listening", "SMPP NOT LISTENING"
    )  # fmt: skip
    ami = "IVR off" if not ivr["enabled"] else _state(ivr["ami_up"], "AMI up", "AMI DOWN")
    database = _state(db["ok"], "database up", "DATABASE DOWN")
    lines = [
        f"vssid-gateway {doc['version']} · up {_duration(doc['uptime_seconds'])} · {smpp_state}"
        f" · {ami} · {database} ({db['pool_in_use']}/{db['pool_size']} connections)",
        "",
        f"{'peer':<14}{'in/s':>8}{'out/s':>8}{'received':>11}{'acked':>9}{'failed':>8}"
        f"{'expired':>9}{'refused':>9}",
    ]
    throughput = doc["throughput"]["peers"]
    for peer, counts in doc["sms"].items():
        series = throughput.get(peer, {"in": [], "out": []})
        rate_in = _recent(series["in"])
        rate_out = _recent(series["out"])
        lines.append(
            f"{peer:<14}{rate_in:>8.2f}{rate_out:>8.2f}{_count(counts['received']):>11}"
            f"{_count(counts['acknowledged']):>9}{_count(counts['failed']):>8}"
            f"{_count(counts['expired']):>9}{_count(counts['refused']):>9}"
        )
    lines += ["", "binds"]
    for peer in smpp["peers"]:
        if not peer["binds"]:
            lines.append(f"  {peer['name']:<12}down")
        for bind in peer["binds"]:
            window = f"window {bind['window_in_use']}/{bind['window']}" if bind["window"] else ""
            lines.append(
                f"  {peer['name']:<12}{bind['type']:<12}{bind['address']:<16}"
                f"up {_duration(bind['uptime_seconds']):<9}{window}"
            )
    latency = doc["latency"]
    lines += ["", f"{'latency':<10}{'p50':>9}{'p95':>9}{'p99':>9}"]
    for name in ("ack", "reply"):
        q = latency[name]
        lines.append(
            f"{name:<10}{_seconds(q['p50']):>9}{_seconds(q['p95']):>9}{_seconds(q['p99']):>9}"
        )
    outbox, resets = doc["outbox"], doc["resets"]
    oldest = outbox["oldest_age_seconds"]
    lines += [
        "",
        f"outbox: {_count(outbox['queued'])} queued"
        + (f", oldest {_duration(oldest)}" if outbox["queued"] else ""),
        f"resets: {_pairs(resets['by_outcome'])} | {_pairs(resets['by_carrier'])}",
        f"calls: {_count(ivr['calls_active'])} active · " + _pairs(ivr["calls_by_outcome"])
        + f" · {_count(ivr['billed_minutes'])} billed minutes",
    ]  # fmt: skip
    return "\n".join(lines)


def _recent(rates: list[float]) -> float:
    recent = rates[-RATE_BUCKETS:]
    return sum(recent) / len(recent) if recent else 0.0


def _pairs(counts: dict[str, float]) -> str:
    if not counts:
        return "none"
    ordered = sorted(counts.items(), key=lambda item: -item[1])
    return " · ".join(f"{name} {_count(value)}" for name, value in ordered)
