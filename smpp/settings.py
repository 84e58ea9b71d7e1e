"""Settings of the SMPP listener and its peers (``[smpp]`` and ``[[smpp.peers]]``).

Plain frozen dataclasses: :mod:`gateway.config` fills them from TOML, the session state machine
reads them. Each field's ``help`` is the documentation shown in ``config.example.toml``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from commands.secret import Secret


def _help(text: str) -> dict[str, str]:
    return {"help": text}


@dataclass(frozen=True, slots=True)
class PeerSettings:
    """One telco or aggregator allowed to bind (``[[smpp.peers]]``)."""

    name: str = field(
        metadata=_help("Peer name used in logs, metrics and the outbox (e.g. 'viettel').")
    )
    system_id: str = field(metadata=_help("system_id the peer binds with (at most 15 characters)."))
    password: Secret = field(
        metadata=_help(
            "Bind password (at most 8 characters); 'env:NAME' reads it from the environment."
        )
    )
    allow: tuple[str, ...] = field(
        default=("127.0.0.1/32",),
        metadata=_help("CIDR networks the peer may connect from; other addresses are refused."),
    )
    max_binds: int = field(default=4, metadata=_help("Most simultaneous binds of this peer."))
    max_tps_in: int = field(
        default=200,
        metadata=_help("Messages per second accepted from the peer; above it ESME_RTHROTTLED."),
    )
    max_tps_out: int = field(default=200, metadata=_help("Replies per second sent to the peer."))
    window: int = field(
        default=50,
        metadata=_help("Most of our requests (deliver_sm) awaiting a response per bind."),
    )
    gsm7_packed: bool = field(
        default=False,
        metadata=_help(
            "The peer sends data_coding 0 as packed septets rather than one octet per character."
        ),
    )


@dataclass(frozen=True, slots=True)
class SmppSettings:
    """The listener (``[smpp]``)."""

    enabled: bool = field(default=True, metadata=_help("Start the SMPP listener."))
    listen: str = field(
        default="tcp:2775:interface=127.0.0.1",
        metadata=_help("Twisted endpoint string to listen on; 'ssl:3550:privateKey=...' for TLS."),
    )
    short_codes: tuple[str, ...] = field(
        default=("8079",), metadata=_help("Short codes whose messages we handle.")
    )
    system_id: str = field(default="VSSID", metadata=_help("Our system_id in bind responses."))
    max_pdu_length: int = field(
        default=65536,
        metadata=_help("Largest command_length accepted; larger closes the connection."),
    )
    inactivity_timeout_seconds: float = field(
        default=120.0, metadata=_help("Close a bind that sends nothing for this long.")
    )
    enquire_link_seconds: float = field(
        default=30.0, metadata=_help("Send enquire_link after this long without traffic.")
    )
    response_timeout_seconds: float = field(
        default=30.0,
        metadata=_help("Give up waiting for a response to our request after this long."),
    )
    duplicate_window_seconds: float = field(
        default=120.0,
        metadata=_help("A resent identical message within this window is not handled twice."),
    )
    reassembly_timeout_seconds: float = field(
        default=60.0,
        metadata=_help("Handle the parts of a long message received so far after this long."),
    )
    reply_expiry_hours: float = field(
        default=24.0, metadata=_help("A reply not delivered within this time is marked expired.")
    )
    inbound_queue_limit: int = field(
        default=10000,
        metadata=_help("Most stored messages awaiting handling before ESME_RMSGQFUL."),
    )
    max_connections: int = field(
        default=256,
        metadata=_help("Most open connections, bound or not; more are refused at connect."),
    )
    max_connections_per_address: int = field(
        default=16,
        metadata=_help(
            "Most open connections from one address, bound or not; more are refused at connect."
        ),
    )
    failed_binds_per_minute: int = field(
        default=10, metadata=_help("Failed binds from one address per minute before it is refused.")
    )
    instance: str = field(
        default="",
        metadata=_help(
            "This gateway's name in outbox claims; must differ between instances sharing a "
            "database and stay the same across restarts, and two processes must never run "
            "under one name at once: a starting one releases the claims of its name "
            "(default: host name and listen port)."
        ),
    )
    peers: tuple[PeerSettings, ...] = field(default=(), metadata=_help("Peers allowed to bind."))
