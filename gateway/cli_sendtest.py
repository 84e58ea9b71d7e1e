"""``vssid-gateway send-test``: bind to a gateway as a telco would and text it one message.

For operators checking a deployment end to end: it binds with smpplib (an SMPP library
independent of ours) as a transceiver, sends the message as a citizen's submit_sm to the short
code, and prints the acknowledgement, the reply and both latencies (with ``--receipt``, the
delivery receipt too). The reply may contain a
real new password if the number and code match a real account: use test accounts.

It binds with a production peer's credentials, so the gateway may hand it replies queued for
other citizens: it takes only the reply to ``--from`` and declines the others with a temporary
error (they are queued again for the peer's real binds), never showing them. The bind password
is read from the environment (``env:NAME``) or asked for on the terminal, so that it is not in
``ps`` output or shell history; ``--password SECRET`` still works for scripts.
"""

from __future__ import annotations

import argparse
import ssl
import sys
from typing import Any

from gateway.config import Settings
from gateway.esme import Esme
from gateway.prompting import PasswordError, read_secret

EXIT_NO_REPLY = 3
EXIT_USAGE = 2


def register(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "send-test",
        parents=parents,
        help="send one SMS to a gateway over SMPP and print the reply",
        description="Bind as an ESME (smpplib), submit a citizen's message, wait for the reply.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="gateway host (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=2775, help="gateway SMPP port (default: 2775)")
    parser.add_argument("--system-id", required=True, help="the peer's system_id")
    parser.add_argument(
        "--password",
        metavar="PASSWORD|env:NAME",
        help="the peer's bind password: 'env:NAME' reads it from the environment variable "
        "NAME; omitted, it is asked for without echo. A password written here is visible in "
        "ps and shell history: use it only where neither matters.",
    )
    parser.add_argument(
        "--from", dest="source", required=True, metavar="PHONE", help="citizen's number"
    )
    parser.add_argument(
        "--to", dest="destination", default="8079", help="short code (default: 8079)"
    )
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for the reply")
    parser.add_argument(
        "--receipt",
        action="store_true",
        help="ask for a delivery receipt (registered_delivery 1) and wait for it too",
    )
    parser.add_argument("--tls", action="store_true", help="connect with TLS")
    parser.add_argument(
        "--cafile", metavar="FILE", help="CA certificate(s) to trust for --tls (default: system)"
    )
    parser.add_argument("text", help='the message, e.g. "BH MK 0123456789"')
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    try:
        password = read_secret(
            args.password, option="--password", prompt=f"bind password for {args.system_id}: "
        )
    except PasswordError as error:
        print(f"vssid-gateway: {error}", file=sys.stderr)
        return EXIT_USAGE
    tls = ssl.create_default_context(cafile=args.cafile) if args.tls else None
    source = args.source.strip()
    try:
        esme = Esme(
            args.host,
            args.port,
            args.system_id,
            password,
            timeout=args.timeout,
            tls=tls,
            only_to=source,  # replies queued for other citizens are declined, never shown
        )
    except Exception as error:  # smpplib raises several kinds; all mean "could not bind"
        print(f"vssid-gateway: cannot bind to {args.host}:{args.port}: {error}", file=sys.stderr)
        return 1
    try:
        sequence = esme.submit(
            source, args.text, destination=args.destination, registered_delivery=int(args.receipt)
        )
        got_ack = esme.wait(acks=1, timeout=args.timeout)
        if not got_ack:
            print(f"no submit_sm_resp within {args.timeout:g} s", file=sys.stderr)
            return EXIT_NO_REPLY
        status, message_id, acked_at = esme.acks[sequence]
        sent_at = esme.sent_at[sequence]
        print(
            f"submit_sm_resp: status {status:#010x}, message_id {message_id}, "
            f"after {(acked_at - sent_at) * 1000:.1f} ms"
        )
        if status != 0:
            return EXIT_NO_REPLY
        if not esme.wait(replies=1, timeout=args.timeout):
            print(
                f"no reply within {args.timeout:g} s (the gateway answers a resend of the same "
                "text from the same number only once within [smpp] duplicate_window_seconds)",
                file=sys.stderr,
            )
            return EXIT_NO_REPLY
        reply = esme.replies[0]
        print(
            f"deliver_sm from {reply.source} to {reply.destination}, "
            f"after {(reply.at - sent_at) * 1000:.1f} ms:"
        )
        print(reply.text)
        if args.receipt:
            return _print_receipt(esme, message_id, sent_at, args.timeout)
        return 0
    finally:
        esme.close()


def _print_receipt(esme: Esme, message_id: str, sent_at: float, timeout: float) -> int:
    if not esme.wait(receipts=1, timeout=timeout):
        print(f"no delivery receipt within {timeout:g} s", file=sys.stderr)
        return EXIT_NO_REPLY
    receipt = esme.receipts[0]
    print(
        f"delivery receipt for {receipt.message_id} (message_state {receipt.state}), "
        f"after {(receipt.at - sent_at) * 1000:.1f} ms:"
    )
    print(receipt.text)
    return 0 if receipt.message_id == message_id else EXIT_NO_REPLY
