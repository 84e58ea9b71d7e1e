"""``vssid-gateway call-test --caller 0912345678 --keys 8,0123456789#``: check a deployment.

Places a test call through the configured Asterisk (see :mod:`ivr.calltest`) and prints the
IVR's steps. It needs an AMI user allowed to originate (``write = originate,call``, ``read =
agi,call``, with the event filter that hides ``SAY DIGITS``: see ``ivr/asterisk/manager.conf``),
normally not the service's own user: ``--ami-user``, and its secret from ``--ami-secret
env:NAME``, else the ``VSSID_CALLTEST_SECRET`` environment variable, else a prompt that does not
echo. Whoever has that secret can place calls (toll fraud), so it is kept out of ``ps`` output
and shell history; ``--ami-secret SECRET`` still works for scripts. Exit status 0 when the call
reached the IVR and ended, 2 when the secret could not be had, 1 otherwise.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from commands.secret import Secret
from gateway.config import Settings
from gateway.prompting import PasswordError, read_secret
from ivr import calltest

SECRET_ENV = "VSSID_CALLTEST_SECRET"  # noqa: S105 - the name of a variable, not a secret
EXIT_USAGE = 2


def register(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "call-test", parents=parents, help="place a test call through Asterisk and report it"
    )
    parser.add_argument("--caller", required=True, help="caller number to present, e.g. 0912345678")
    parser.add_argument("--keys", default="", help="key groups, comma separated: 8,0123456789#")
    parser.add_argument("--ami", default=None, help="AMI endpoint (default: [ivr] ami)")
    parser.add_argument(
        "--ami-user", default="vssid-calltest", help="AMI user allowed to originate"
    )
    parser.add_argument(
        "--ami-secret",
        metavar="SECRET|env:NAME",
        default=None,
        help="its secret: 'env:NAME' reads it from the environment variable NAME; omitted, "
        f"${SECRET_ENV} if set, else it is asked for without echo. A secret written here is "
        "visible in ps and shell history, and lets whoever sees it place calls: use it only "
        "where neither matters.",
    )
    parser.add_argument("--target", default="Local/19009068@hotline", help="channel to originate")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds before giving up")
    parser.add_argument(
        "--key-delay",
        type=float,
        default=0.5,
        help="seconds after a prompt starts before the keys are pressed",
    )
    parser.add_argument("--dtmf-ms", type=int, default=200, help="length of each key tone")
    parser.set_defaults(handler=run)


def ami_secret(given: str | None, username: str) -> str:
    """``--ami-secret`` (literal or ``env:NAME``); when omitted, ``$VSSID_CALLTEST_SECRET`` as
    ``docs/ivr.md`` shows it, and only then a prompt. Raises :class:`PasswordError`."""
    if given is None and os.environ.get(SECRET_ENV):
        return os.environ[SECRET_ENV]
    return read_secret(given, option="--ami-secret", prompt=f"AMI secret for {username}: ")


def run(args: argparse.Namespace, settings: Settings) -> int:
    try:
        host, port = calltest.endpoint_address(args.ami or settings.ivr.ami)
        keys = calltest.parse_keys(args.keys)  # a typo is reported before asking for the secret
    except calltest.CallTestError as error:
        print(f"vssid-gateway call-test: {error}", file=sys.stderr)
        return 1
    try:
        secret = ami_secret(args.ami_secret, args.ami_user)
    except PasswordError as error:
        print(f"vssid-gateway call-test: {error}", file=sys.stderr)
        return EXIT_USAGE
    plan = calltest.Plan(
        caller=args.caller,
        keys=keys,
        host=host,
        port=port,
        username=args.ami_user,
        secret=Secret(secret),
        target=args.target,
        timeout=args.timeout,
        key_delay=args.key_delay,
        dtmf_ms=args.dtmf_ms,
    )
    try:
        report = calltest.run(plan)
    except calltest.CallTestError as error:
        print(f"vssid-gateway call-test: {error}", file=sys.stderr)
        return 1
    verdict = "OK" if report.ok else "FAILED"
    print(
        f"{verdict}: reached the IVR={report.reached_ivr}, ended={report.ended}, "
        f"{report.commands} IVR commands"
    )
    return 0 if report.ok else 1
