"""What the sessions of one listener share: who may bind, who is bound, and how fast.

A session sees one connection; some rules span them all. A peer's ``max_binds`` counts binds on
every connection; its ``max_tps_in`` and ``max_tps_out`` are per peer, not per bind (a peer
that opens four binds must not get four times the rate); repeated failed binds from one
address are throttled whichever connection they arrive on. The :class:`Registry` keeps these
facts, pure and single-threaded like the sessions that share it (the reactor thread owns it),
and takes time as an argument.

It is also the one list of live binds: the adapter asks it which binds of a peer can carry a
reply (:meth:`Registry.binds`).
"""

from __future__ import annotations

import enum
import ipaddress
from collections import deque
from dataclasses import dataclass
from typing import Final

from smpp.codec import Status
from smpp.settings import PeerSettings, SmppSettings

FAILED_BIND_WINDOW: Final = 60.0
_FORGET_AFTER: Final = 4096  # addresses remembered before stale ones are swept

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class BindKind(enum.Enum):
    """The three ways to bind (v3.4 §2.2); a receiver or transceiver can take our replies."""

    TRANSMITTER = "transmitter"
    RECEIVER = "receiver"
    TRANSCEIVER = "transceiver"

    @property
    def can_receive(self) -> bool:
        return self is not BindKind.TRANSMITTER


@dataclass(frozen=True, slots=True)
class Bind:
    """A live bind: one authenticated connection of one peer."""

    connection: int
    peer: str
    system_id: str
    kind: BindKind
    address: str
    bound_at: float


@dataclass(frozen=True, slots=True)
class BindVerdict:
    """The outcome of a bind attempt: ``ESME_ROK`` and the peer, or the refusal status."""

    status: Status
    peer: PeerSettings | None = None


class TokenBucket:
    """``rate`` events per second on average, bursts up to ``burst``; a rate <= 0 is no limit."""

    __slots__ = ("_at", "_burst", "_rate", "_tokens")

    def __init__(self, rate: float, burst: float | None = None, now: float = 0.0) -> None:
        self._rate = rate
        self._burst = max(1.0, rate if burst is None else burst)
        self._tokens = self._burst
        self._at = now

    def available(self, now: float) -> int:
        if self._rate <= 0:
            return 1 << 30
        self._refill(now)
        return int(self._tokens)

    def take(self, now: float) -> bool:
        if self._rate <= 0:
            return True
        self._refill(now)
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True

    def _refill(self, now: float) -> None:
        if now > self._at:
            self._tokens = min(self._burst, self._tokens + (now - self._at) * self._rate)
            self._at = now


class Registry:
    """Bind rules and live binds across the connections of one listener."""

    def __init__(self, settings: SmppSettings, now: float = 0.0) -> None:
        self.settings = settings
        self._peers = {peer.system_id: peer for peer in settings.peers}
        self._networks = {peer.name: _networks(peer.allow) for peer in settings.peers}
        self._binds: dict[str, dict[int, Bind]] = {peer.name: {} for peer in settings.peers}
        self._inbound = {p.name: TokenBucket(p.max_tps_in, now=now) for p in settings.peers}
        self._outbound = {p.name: TokenBucket(p.max_tps_out, now=now) for p in settings.peers}
        self._failures: dict[str, deque[float]] = {}
        self._swept_at = float("-inf")
        self._next_connection = 0

    def new_connection_id(self) -> int:
        self._next_connection += 1
        return self._next_connection

    def authenticate(self, system_id: str, password: str, address: str, now: float) -> BindVerdict:
        """Check a bind attempt in a fixed order, recording credential failures.

        Order: a throttled address is refused before its credentials are looked at; the
        address allowlist is checked before the password, so a stranger learns nothing about
        it; max_binds last, since it is no fault of the caller's credentials.
        """
        if self.bind_throttled(address, now):
            return BindVerdict(Status.ESME_RBINDFAIL)
        peer = self._peers.get(system_id)
        if peer is None:
            self.bind_failed(address, now)
            return BindVerdict(Status.ESME_RINVSYSID)
        if not _allowed(address, self._networks[peer.name]):
            self.bind_failed(address, now)
            return BindVerdict(Status.ESME_RBINDFAIL)
        if not peer.password.matches(password):
            self.bind_failed(address, now)
            return BindVerdict(Status.ESME_RINVPASWD)
        if len(self._binds[peer.name]) >= peer.max_binds:
            return BindVerdict(Status.ESME_RBINDFAIL)
        return BindVerdict(Status.ESME_ROK, peer)

    def may_connect(self, address: str) -> bool:
        """Whether ``address`` is in some peer's allowlist: no one else may even connect."""
        return any(_allowed(address, networks) for networks in self._networks.values())

    def bind_failed(self, address: str, now: float) -> None:
        """Count a failed bind from ``address`` towards ``failed_binds_per_minute``."""
        # Past _FORGET_AFTER addresses, stale ones are swept, but at most once a window: a
        # sweep walks them all, and doing that on every failed bind would be quadratic.
        if len(self._failures) > _FORGET_AFTER and now >= self._swept_at + FAILED_BIND_WINDOW:
            self._swept_at = now
            self._sweep(now)
        limit = max(1, self.settings.failed_binds_per_minute)
        self._failures.setdefault(address, deque(maxlen=limit)).append(now)

    def bind_throttled(self, address: str, now: float) -> bool:
        times = self._failures.get(address)
        if times is None:
            return False
        while times and times[0] <= now - FAILED_BIND_WINDOW:
            times.popleft()
        return len(times) >= max(1, self.settings.failed_binds_per_minute)

    def add(self, bind: Bind) -> None:
        self._binds[bind.peer][bind.connection] = bind

    def remove(self, bind: Bind) -> None:
        self._binds.get(bind.peer, {}).pop(bind.connection, None)

    def binds(self, peer: str) -> list[Bind]:
        """The peer's live binds, oldest first."""
        return list(self._binds.get(peer, {}).values())

    def accept_message(self, peer: str, now: float) -> bool:
        """Take one message from the peer's inbound allowance (``max_tps_in``)."""
        return self._inbound[peer].take(now)

    def outbound_allowance(self, peer: str, now: float) -> int:
        """How many deliver_sm the peer's ``max_tps_out`` allows right now."""
        return self._outbound[peer].available(now)

    def take_outbound(self, peer: str, now: float) -> bool:
        return self._outbound[peer].take(now)

    def _sweep(self, now: float) -> None:
        for address in [
            a for a, t in self._failures.items() if not t or t[-1] <= now - FAILED_BIND_WINDOW
        ]:
            del self._failures[address]


def _networks(allow: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(cidr, strict=False) for cidr in allow)


def _allowed(address: str, networks: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in network for network in networks)
