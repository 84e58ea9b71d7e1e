"""Builders for SMPP tests: settings with demo peers, and PDUs as objects or raw bytes."""

from __future__ import annotations

import dataclasses
import struct
from typing import Any

from commands.secret import Secret
from smpp.codec import Pdu, command_id, encode
from smpp.settings import PeerSettings, SmppSettings

PASSWORD = "s3cret!"
PEER = PeerSettings(
    name="viettel",
    system_id="viettel",
    password=Secret(PASSWORD),
    allow=("127.0.0.0/8", "10.1.0.0/16"),
    max_binds=3,
    max_tps_in=10_000,
    max_tps_out=10_000,
    window=5,
)
PACKED_PEER = dataclasses.replace(
    PEER, name="vina", system_id="vina", gsm7_packed=True, allow=("127.0.0.0/8",)
)


def settings(peers: tuple[PeerSettings, ...] = (PEER, PACKED_PEER), **fields: Any) -> SmppSettings:
    return SmppSettings(peers=peers, **fields)


def header(command: int | str, body: bytes = b"", sequence: int = 1, status: int = 0) -> bytes:
    """A raw PDU with a correct command_length, for inputs the codec would refuse to build."""
    code = command_id(command) if isinstance(command, str) else command
    return struct.pack(">LLLL", 16 + len(body), code, status, sequence) + body


def bind(
    kind: str = "bind_transceiver",
    system_id: str = "viettel",
    password: str = PASSWORD,
    sequence: int = 1,
    interface_version: int = 0x34,
) -> Pdu:
    return Pdu(
        kind,
        sequence,
        0,
        {
            "system_id": system_id.encode(),
            "password": password.encode(),
            "system_type": b"",
            "interface_version": interface_version,
            "addr_ton": 0,
            "addr_npi": 0,
            "address_range": b"",
        },
    )


def message(
    short_message: bytes = b"BH MK 0123456789",
    *,
    command: str = "submit_sm",
    sequence: int = 2,
    source: str = "0912345678",
    destination: str = "8079",
    **params: int | bytes,
) -> Pdu:
    """A submit_sm (or deliver_sm / data_sm) as real peers send it: TON 2 / NPI 1 source."""
    fields: dict[str, int | bytes] = {
        "source_addr_ton": 2,
        "source_addr_npi": 1,
        "source_addr": source.encode(),
        "dest_addr_ton": 2,
        "dest_addr_npi": 1,
        "destination_addr": destination.encode(),
        "esm_class": 0x03,
        "data_coding": 0,
    }
    if command != "data_sm":
        fields["short_message"] = short_message
    elif short_message:
        fields["message_payload"] = short_message
    fields.update(params)
    return Pdu(command, sequence, 0, fields)


def raw(pdu: Pdu) -> bytes:
    return encode(pdu)
