"""The fastest an SMPP server can answer on this machine: the yardstick for smpp_throughput.

    .venv/bin/python bench/minimal_responder.py --port 2775

Accepts any bind, answers every submit_sm with submit_sm_resp and sends one deliver_sm back to
the sender on the same connection; no storage, no parsing beyond the header and the source
address, no logic. ``bench/smpp_throughput.py`` runs it as a subprocess and drives it with the
same client and settings as the gateway, so the ratio between the two is what our durability
and rules cost, on the same cores in the same run. Prints ``listening on PORT`` when ready.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import struct

HEADER = struct.Struct(">LLLL")
REPLY = b"Cap lai mat khau: minimal responder"
GENERIC_NACK = 0x80000000


class Responder(asyncio.Protocol):
    """One connection; answers from ``data_received`` with one write per read."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.sequence = 0
        self.message_id = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        out: list[bytes] = []
        position, end = 0, len(buffer)
        while end - position >= 16:
            length, command, _, sequence = HEADER.unpack_from(buffer, position)
            if end - position < length:
                break
            body = bytes(buffer[position + 16 : position + length])
            position += length
            if command in (0x1, 0x2, 0x9):  # bind_receiver / _transmitter / _transceiver
                out.append(_pdu(command | 0x80000000, sequence, b"minimal\0"))
            elif command == 0x4:  # submit_sm
                self.message_id += 1
                out.append(_pdu(0x80000004, sequence, b"%d\0" % self.message_id))
                out.append(self._deliver(body))
            elif command == 0x15:  # enquire_link
                out.append(_pdu(0x80000015, sequence))
            elif command == 0x6:  # unbind
                out.append(_pdu(0x80000006, sequence))
            elif not command & 0x80000000:
                out.append(_pdu(GENERIC_NACK, sequence, status=0x3))
        del buffer[:position]
        if out and self.transport is not None:
            self.transport.write(b"".join(out))

    def _deliver(self, submit_body: bytes) -> bytes:
        start = submit_body.index(b"\0") + 3  # service_type, source TON and NPI
        source = submit_body[start : submit_body.index(b"\0", start)]
        self.sequence = self.sequence % 0x7FFFFFFF + 1
        body = b"".join(
            (b"\0", bytes((2, 1)), b"8079\0", bytes((1, 1)), source, b"\0", bytes(3), b"\0\0",
             bytes((0, 0, 0, 0, len(REPLY))), REPLY)
        )  # fmt: skip
        return _pdu(0x5, self.sequence, body)


def _pdu(command: int, sequence: int, body: bytes = b"", status: int = 0) -> bytes:
    return HEADER.pack(16 + len(body), command, status, sequence) + body


async def serve(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Responder, "127.0.0.1", port)
    print(f"listening on {port}", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=2775)
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.port))


if __name__ == "__main__":
    main()
