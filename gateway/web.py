"""The operators' HTTP pages: metrics, health, the dashboard and its JSON, behind one access rule.

``/healthz`` and ``/readyz`` answer anyone (load balancers, systemd, Kubernetes probes) and
say only up or down. ``/metrics`` and ``/api/stats`` need the ``[http] token``
(``Authorization: Bearer ...`` or ``?token=...``, compared in constant time), or, when no token
is configured (the default), a client on the loopback interface. The dashboard page at ``/``
and its static files hold no data and are served to anyone: the page asks for the token
(or takes it from ``?token=`` once, then drops it from the address bar) and sends it to the API.

Data responses say ``Cache-Control: no-store`` and every response ``Referrer-Policy:
no-referrer`` (a token in a URL must not travel further); the page has a strict
Content-Security-Policy: it loads nothing from anywhere but here.
"""

from __future__ import annotations

import ipaddress
import json
from importlib import resources
from pathlib import Path
from typing import Any, Final

from twisted.internet.defer import Deferred, TimeoutError
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.resource import IResource, Resource
from twisted.web.server import NOT_DONE_YET, Request

from commands.secret import Secret
from gateway import __version__
from gateway.monitor import StatusSource, select_one, smpp_listener
from gateway.stats import stats_document

READY_TIMEOUT: Final = 2.0
STATIC_FILES: Final = {
    "dashboard.js": b"text/javascript; charset=utf-8",
    "dashboard.css": b"text/css; charset=utf-8",
}
CSP: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)

_log = Logger(namespace="vssid.web")


def static_folder() -> Path:
    return Path(str(resources.files("gateway") / "static"))


def _common_headers(request: Request) -> None:
    request.setHeader(b"cache-control", b"no-store")
    request.setHeader(b"referrer-policy", b"no-referrer")
    request.setHeader(b"x-content-type-options", b"nosniff")
    request.setHeader(b"x-frame-options", b"DENY")


def json_body(request: Request, status: int, body: object) -> bytes:
    _common_headers(request)
    request.setResponseCode(status)
    request.setHeader(b"content-type", b"application/json; charset=utf-8")
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class Access:
    """Whether a request may read the protected pages (see the module docstring)."""

    def __init__(self, token: Secret) -> None:
        self.token = token

    def denial(self, request: Request) -> tuple[int, str] | None:
        """None if allowed, else the status and reason to answer with."""
        if self.token:
            return None if self._token_matches(request) else (401, "a valid token is required")
        if not _is_loopback(request):
            return (403, "allowed from localhost only")
        # A web page the operator visits could point a name it controls at 127.0.0.1 (DNS
        # rebinding) and read the pages: its requests carry that name, not a local one.
        return None if _names_this_host(request) else (403, "allowed from localhost only")

    def _token_matches(self, request: Request) -> bool:
        header = request.getHeader(b"authorization") or b""
        scheme, _, value = header.partition(b" ")
        candidates = [value.strip()] if scheme.lower() == b"bearer" else []
        candidates += (request.args or {}).get(b"token", [])[:1]
        # Every candidate is compared, so the timing says nothing about which one was wrong.
        matches = [self.token.matches(c.decode("utf-8", "replace")) for c in candidates]
        return any(matches)


def _names_this_host(request: Request) -> bool:
    """Whether the Host header names this machine: ``localhost`` or a loopback address, with
    any port. (No Host at all, as from HTTP/1.0 tools, is a local client's too.)"""
    host = (request.getHeader(b"host") or b"").strip().lower().decode("ascii", "replace")
    if not host:
        return True
    if host.startswith("["):
        name = host[1:].split("]", 1)[0]
    else:
        name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _is_loopback(request: Request) -> bool:
    host = getattr(request.getClientAddress(), "host", None)
    if host is None:
        return True  # a UNIX socket: only local processes can reach it
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


class Denied(Resource):
    """A JSON error answer (401, 403, 404) in place of the resource asked for."""

    isLeaf = True  # noqa: N815 - Twisted's name

    def __init__(self, status: int, reason: str, challenge: bool) -> None:
        super().__init__()
        self._status, self._reason, self._challenge = status, reason, challenge

    def render(self, request: Request) -> bytes:
        if self._challenge:
            request.setHeader(b"www-authenticate", b'Bearer realm="vssid-gateway"')
        return json_body(request, self._status, {"error": self._reason})


class Guarded(Resource):
    """Passes the request on to ``inner`` only if :class:`Access` allows it."""

    def __init__(self, inner: IResource, access: Access) -> None:
        super().__init__()
        self._inner = inner
        self._access = access
        self.isLeaf = inner.isLeaf

    def _denied(self, request: Request) -> Denied | None:
        denial = self._access.denial(request)
        if denial is None:
            return None
        return Denied(*denial, challenge=bool(self._access.token))

    def getChildWithDefault(self, path: bytes, request: Request) -> IResource:  # noqa: N802 - Twisted's name
        return self._denied(request) or self._inner.getChildWithDefault(path, request)

    def render(self, request: Request) -> bytes | int:
        denied = self._denied(request)
        if denied is not None:
            return denied.render(request)
        result: bytes | int = self._inner.render(request)
        return result


class Health(Resource):
    """``/healthz``: the process answers."""

    isLeaf = True  # noqa: N815 - Twisted's name

    def __init__(self, source: StatusSource, clock: IReactorTime) -> None:
        super().__init__()
        self._source, self._clock = source, clock

    def render_GET(self, request: Request) -> bytes:  # noqa: N802 - Twisted's name
        uptime = self._clock.seconds() - self._source.monitor.started_at
        return json_body(
            request,
            200,
            {"status": "alive", "version": __version__, "uptime_seconds": round(uptime, 1)},
        )


class Ready(Resource):
    """``/readyz``: the database answers, the SMPP listener listens, AMI is logged in."""

    isLeaf = True  # noqa: N815 - Twisted's name

    def __init__(self, source: StatusSource, clock: IReactorTime) -> None:
        super().__init__()
        self._source, self._clock = source, clock
        self._was_ready: bool | None = None

    def render_GET(self, request: Request) -> int:  # noqa: N802 - Twisted's name
        gone: list[bool] = []
        request.notifyFinish().addErrback(lambda _: gone.append(True))
        checking = Deferred.fromCoroutine(self.checks())
        answered = checking.addCallbacks(self._verdict, self._broken)
        answered.addCallback(lambda reply: None if gone else _finish(request, *reply))
        return NOT_DONE_YET

    async def checks(self) -> dict[str, dict[str, Any]]:
        source = self._source
        settings = source.settings
        results: dict[str, dict[str, Any]] = {"database": await self._database()}
        if settings.smpp.enabled:
            listener = smpp_listener(source)
            up = listener is not None and listener.numPorts > 0
            results["smpp"] = {"ok": up} if up else {"ok": False, "error": "not listening"}
        if settings.ivr.enabled:
            ami = source.ivr
            up = ami is not None and ami.connected is not None
            results["ami"] = {"ok": up} if up else {"ok": False, "error": "AMI not logged in"}
        return results

    async def _database(self) -> dict[str, Any]:
        started = self._clock.seconds()
        engine = self._source.store.engine
        try:
            await self._source.workers.run(select_one, engine).addTimeout(
                READY_TIMEOUT, self._clock
            )
        except TimeoutError:
            return {"ok": False, "error": f"no answer within {READY_TIMEOUT:g} s"}
        except Exception as error:  # any driver error means "not ready" to a probe
            return {"ok": False, "error": type(error).__name__}
        return {"ok": True, "seconds": round(self._clock.seconds() - started, 4)}

    def _verdict(self, results: dict[str, dict[str, Any]]) -> tuple[int, object]:
        ready = all(check["ok"] for check in results.values())
        if ready is not self._was_ready:
            failing = sorted(name for name, check in results.items() if not check["ok"])
            if ready:
                _log.info("ready", event="ready")
            else:
                _log.warn("not ready: {failing}", event="not_ready", failing=",".join(failing))
            self._was_ready = ready
        body = {"status": "ready" if ready else "not ready", "checks": results}
        return (200 if ready else 503), body

    def _broken(self, failure: Failure) -> tuple[int, object]:
        _log.failure("readiness check failed", failure)
        return 500, {"status": "error"}


def _finish(request: Request, status: int, body: object) -> None:
    request.write(json_body(request, status, body))
    request.finish()


class Stats(Resource):
    """``/api/stats``: the dashboard's data as one JSON document."""

    isLeaf = True  # noqa: N815 - Twisted's name

    def __init__(self, source: StatusSource, clock: IReactorTime) -> None:
        super().__init__()
        self._source, self._clock = source, clock

    def render_GET(self, request: Request) -> bytes:  # noqa: N802 - Twisted's name
        return json_body(request, 200, stats_document(self._source, self._clock.seconds()))


class Dashboard(Resource):
    """``/``: the page; the data comes from ``/api/stats``."""

    isLeaf = True  # noqa: N815 - Twisted's name

    def __init__(self, page: bytes) -> None:
        super().__init__()
        self._page = page

    def render_GET(self, request: Request) -> bytes:  # noqa: N802 - Twisted's name
        if request.postpath not in ([], [b""]):
            return json_body(request, 404, {"error": "not found"})
        _common_headers(request)
        request.setHeader(b"content-type", b"text/html; charset=utf-8")
        request.setHeader(b"content-security-policy", CSP.encode("ascii"))
        return self._page


class Asset(Resource):
    """One file of the page, read once at start-up (twisted.web.static is more than we need)."""

    isLeaf = True  # noqa: N815 - Twisted's name

    def __init__(self, content: bytes, content_type: bytes) -> None:
        super().__init__()
        self._content, self._type = content, content_type

    def render_GET(self, request: Request) -> bytes:  # noqa: N802 - Twisted's name
        request.setHeader(b"content-type", self._type)
        request.setHeader(b"x-content-type-options", b"nosniff")
        request.setHeader(b"cache-control", b"no-cache")
        return self._content


class Folder(Resource):
    """A fixed set of children, no listing, JSON 404 for anything else."""

    def getChild(self, path: bytes, request: Request) -> IResource:  # noqa: N802 - Twisted's name
        return Denied(404, "not found", challenge=False)


def build_root(source: StatusSource, clock: IReactorTime, metrics: IResource) -> Resource:
    """The resource tree; ``metrics`` is prometheus_client's Twisted ``MetricsResource``."""
    access = Access(source.settings.http.token)
    folder = static_folder()
    root = Folder()
    root.putChild(b"", Dashboard((folder / "index.html").read_bytes()))
    root.putChild(b"healthz", Health(source, clock))
    root.putChild(b"readyz", Ready(source, clock))
    root.putChild(b"metrics", Guarded(metrics, access))
    api = Folder()
    api.putChild(b"stats", Stats(source, clock))
    root.putChild(b"api", Guarded(api, access))
    static = Folder()
    for name, content_type in STATIC_FILES.items():
        static.putChild(name.encode("ascii"), Asset((folder / name).read_bytes(), content_type))
    root.putChild(b"static", static)
    return root
