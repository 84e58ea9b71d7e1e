"""A blocking test ESME on smpplib: binds like a telco, sends citizens' messages, reads replies.

Behind ``vssid-gateway send-test`` (an operator checking a deployment end to end) and the
end-to-end tests, so both exercise the gateway exactly as a peer built on an independent SMPP
library does. It answers every deliver_sm with deliver_sm_resp, like a real SMSC, and decodes
replies with the gateway's own text rules (GSM-7, UCS-2, concatenated parts).

An operator's ESME binds as a production peer, so the gateway may hand it replies queued for
real citizens. With ``only_to`` it takes only the replies to that number and declines the rest
with ``ESME_RX_T_APPN``, a temporary error after which the gateway queues them again for the
peer's real binds; it neither keeps nor shows them.
"""

from __future__ import annotations

import socket
import ssl
import time
from dataclasses import dataclass, field
from typing import Any

import smpplib.client
import smpplib.consts
import smpplib.smpp

from smpp.receipts import RECEIPT_ESM_CLASS
from smpp.text import UserData, decode_text, encode_gsm7, user_data

DEFAULT_TIMEOUT = 10.0
ESME_RX_T_APPN = 0x64
"""deliver_sm_resp status for a reply that is not ours: temporary, so the gateway retries it."""


@dataclass(frozen=True, slots=True)
class ReceivedReply:
    """A deliver_sm the gateway sent us, decoded."""

    source: str
    destination: str
    text: str
    at: float


@dataclass(frozen=True, slots=True)
class ReceivedReceipt:
    """A delivery receipt the gateway sent us (esm_class 0x04) for one of our messages."""

    message_id: str
    """Its ``receipted_message_id``: the id our submit_sm was acknowledged with."""
    state: int | None
    text: str
    at: float


@dataclass
class _Concat:
    parts: dict[int, UserData] = field(default_factory=dict)


class Esme:
    """One bind (transceiver by default) to the gateway, driven from a single thread."""

    def __init__(
        self,
        host: str,
        port: int,
        system_id: str,
        password: str,
        *,
        bind: str = "transceiver",
        timeout: float = DEFAULT_TIMEOUT,
        tls: ssl.SSLContext | None = None,
        only_to: str | None = None,
    ) -> None:
        self.acks: dict[int, tuple[int, str, float]] = {}
        """Sequence -> (status, message_id, when) for every response to our submit_sm."""
        self.replies: list[ReceivedReply] = []
        self.receipts: list[ReceivedReceipt] = []
        self.declined = 0
        """deliver_sm declined because they were for another number than ``only_to``."""
        self.sent_at: dict[int, float] = {}
        self._concat: dict[tuple[str, int], _Concat] = {}
        self._only_to = only_to
        self.client: Any = smpplib.client.Client(
            host,
            port,
            timeout=timeout,
            allow_unknown_opt_params=True,
            ssl_context=_CheckedHostContext(tls, host) if tls else None,
        )
        self.client.set_message_received_handler(self._deliver)
        self.client.set_message_sent_handler(self._sent)
        self.client.set_error_pdu_handler(self._error)
        try:
            self.client.connect()
            self.client._socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            getattr(self.client, f"bind_{bind}")(system_id=system_id, password=password)
        except BaseException:
            self.client.disconnect()
            raise

    def submit(
        self,
        source: str,
        text: str,
        *,
        destination: str = "8079",
        source_ton: int = 1,
        source_npi: int = 1,
        dest_ton: int = 2,
        dest_npi: int = 1,
        registered_delivery: int = 0,
    ) -> int:
        """Send one citizen's message as submit_sm (GSM-7 if it fits, else UCS-2); its sequence."""
        septets = encode_gsm7(text)
        coding, payload = (0, septets) if septets is not None else (8, text.encode("utf-16-be"))
        pdu = smpplib.smpp.make_pdu(
            "submit_sm",
            client=self.client,
            service_type="",
            source_addr_ton=source_ton,
            source_addr_npi=source_npi,
            source_addr=source,
            dest_addr_ton=dest_ton,
            dest_addr_npi=dest_npi,
            destination_addr=destination,
            esm_class=0,
            registered_delivery=registered_delivery,
            data_coding=coding,
            short_message=payload,
        )
        self.sent_at[pdu.sequence] = time.monotonic()
        self.client.send_pdu(pdu)
        return int(pdu.sequence)

    def submit_fields(self, **fields: Any) -> int:
        """Send a submit_sm with these smpplib fields as given (parts, TLVs); its sequence."""
        pdu = smpplib.smpp.make_pdu("submit_sm", client=self.client, **fields)
        self.sent_at[pdu.sequence] = time.monotonic()
        self.client.send_pdu(pdu)
        return int(pdu.sequence)

    def wait(
        self,
        *,
        acks: int = 0,
        replies: int = 0,
        receipts: int = 0,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> bool:
        """Read until ``acks`` responses, ``replies`` and ``receipts`` arrived, or ``timeout``."""
        deadline = time.monotonic() + timeout
        while (
            len(self.acks) < acks or len(self.replies) < replies or len(self.receipts) < receipts
        ):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self.client._socket.settimeout(remaining)
            try:
                self.client.read_once(auto_send_enquire_link=False)
            except TimeoutError:
                return False
        return True

    def close(self) -> None:
        try:
            self.client._socket.settimeout(2.0)
            self.client.unbind()
        except Exception:  # noqa: S110 - closing anyway; the gateway may already be gone
            pass
        self.client.disconnect()

    def _sent(self, pdu: Any) -> None:
        self.acks[int(pdu.sequence)] = (int(pdu.status), _text(pdu.message_id), time.monotonic())

    def _error(self, pdu: Any) -> None:
        if pdu.command == "submit_sm_resp":
            self._sent(pdu)

    def _deliver(self, pdu: Any) -> int:
        destination = _text(pdu.destination_addr)
        if self._only_to is not None and destination != self._only_to:
            self.declined += 1  # a citizen's reply: not decoded, not kept, not shown
            return ESME_RX_T_APPN
        if int(pdu.esm_class or 0) & RECEIPT_ESM_CLASS:
            state = pdu.message_state
            self.receipts.append(
                ReceivedReceipt(
                    _text(pdu.receipted_message_id),
                    None if state is None else int(state),
                    _text(pdu.short_message),
                    time.monotonic(),
                )
            )
            return int(smpplib.consts.SMPP_ESME_ROK)
        data = user_data(
            bytes(pdu.short_message or b""),
            data_coding=int(pdu.data_coding or 0),
            esm_class=int(pdu.esm_class or 0),
        )
        source = _text(pdu.source_addr)
        if data.concat is None:
            self.replies.append(
                ReceivedReply(source, destination, decode_text([data]), time.monotonic())
            )
            return int(smpplib.consts.SMPP_ESME_ROK)
        group = self._concat.setdefault((destination, data.concat.reference), _Concat())
        group.parts[data.concat.sequence] = data
        if len(group.parts) == data.concat.total:
            ordered = [group.parts[i] for i in sorted(group.parts)]
            del self._concat[(destination, data.concat.reference)]
            self.replies.append(
                ReceivedReply(source, destination, decode_text(ordered), time.monotonic())
            )
        return int(smpplib.consts.SMPP_ESME_ROK)


class _CheckedHostContext:
    """smpplib wraps its socket without ``server_hostname``, which certificate checks need."""

    def __init__(self, context: ssl.SSLContext, host: str) -> None:
        self._context = context
        self._host = host

    def wrap_socket(self, sock: socket.socket) -> ssl.SSLSocket:
        return self._context.wrap_socket(sock, server_hostname=self._host)


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("ascii", errors="replace")
    return str(value or "")
