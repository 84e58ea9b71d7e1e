"""Blocking ESMEs for end-to-end tests, run in a thread (``deferToThread``) against the
listener on the reactor: smpplib's own client, and a raw socket for input smpplib won't send."""

from __future__ import annotations

import socket
from typing import Any

import smpplib.client
import smpplib.smpp

from smpp.codec import Pdu, decode, encode
from smpp.framing import Framer
from tests.support.smpp_pdus import PASSWORD

TIMEOUT = 5.0


def smpplib_client(port: int) -> Any:
    """smpplib's ESME, connected; the caller disconnects it."""
    client = smpplib.client.Client(
        "127.0.0.1", port, timeout=TIMEOUT, allow_unknown_opt_params=True
    )
    client.connect()
    return client


def smpplib_bind(client: Any, kind: str = "transceiver", system_id: str = "viettel",
                 password: str = PASSWORD) -> int:  # fmt: skip
    """Bind with smpplib's client; the bind response's status."""
    try:
        getattr(client, f"bind_{kind}")(system_id=system_id, password=password)
    except smpplib.client.exceptions.PDUError as error:
        return int(error.args[1])
    return 0


def smpplib_send(client: Any, command: str, **fields: Any) -> int:
    """Send one PDU with smpplib (C-strings as str, octet strings as bytes); its sequence."""
    pdu = smpplib.smpp.make_pdu(command, client=client, **fields)
    client.send_pdu(pdu)
    return int(pdu.sequence)


class RawEsme:
    """A socket speaking SMPP through our codec: sends anything, reads PDUs or the close."""

    def __init__(self, port: int) -> None:
        self.socket = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._framer = Framer(1 << 20)
        self._frames: list[bytes] = []

    def send(self, *items: Pdu | bytes) -> None:
        self.socket.sendall(b"".join(i if isinstance(i, bytes) else encode(i) for i in items))

    def read(self) -> Pdu | None:
        """The next PDU, or None once the listener has closed the connection."""
        while not self._frames:
            data = self.socket.recv(65536)
            if not data:
                return None
            self._frames += self._framer.feed(data)
        return decode(self._frames.pop(0))

    def read_all(self) -> list[Pdu]:
        """Every PDU until the listener closes the connection."""
        pdus = []
        while (pdu := self.read()) is not None:
            pdus.append(pdu)
        return pdus

    def close(self) -> None:
        self.socket.close()
