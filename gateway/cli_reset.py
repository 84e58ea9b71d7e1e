"""``vssid-gateway reset``: run a password reset exactly as the SMS and IVR channels do.

For operators (a citizen at the counter, a check after a deployment) and for tests. It prints
the SMS reply the citizen would get, which for a successful reset includes the new password:
that is the point of the command, so its output belongs on the operator's screen only.
Exit status: 0 reset, 3 refused (mismatch, rate limit, invalid code), 5 already handled.
"""

from __future__ import annotations

import argparse
import uuid
from typing import Any

from commands.ports import Channel, Outcome
from commands.replies import render_sms
from commands.reset import ResetRequest
from gateway.components import open_store
from gateway.config import Settings

EXIT_REFUSED = 3
EXIT_DUPLICATE = 5


def register(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    reset = subparsers.add_parser(
        "reset",
        parents=parents,
        help="reset a password as the SMS and IVR channels do",
        description="Apply the same checks as 'BH MK <code>' from PHONE and print the reply.",
    )
    reset.add_argument(
        "--channel",
        choices=[channel.value for channel in Channel],
        default=Channel.CLI.value,
        help="channel recorded in the audit (default: cli)",
    )
    reset.add_argument(
        "--from", dest="phone", required=True, metavar="PHONE", help="caller's phone"
    )
    reset.add_argument(
        "--correlation-id",
        default=None,
        help="idempotency key; the same id twice resets at most once (default: a new id)",
    )
    reset.add_argument(
        "code", metavar="CODE", help="ma so BHXH (10 digits) or health-insurance card"
    )
    reset.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    store = open_store(settings)
    try:
        result = store.reset_service.reset(
            ResetRequest(
                phone=args.phone,
                code=args.code,
                channel=Channel(args.channel),
                correlation_id=args.correlation_id or f"cli-{uuid.uuid4().hex}",
            )
        )
    finally:
        store.engine.dispose()
    print(f"outcome: {result.outcome.value}{' (already handled)' if result.duplicate else ''}")
    print(render_sms(result.reply))
    if result.duplicate:
        return EXIT_DUPLICATE
    return 0 if result.outcome is Outcome.RESET else EXIT_REFUSED
