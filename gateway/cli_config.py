"""``vssid-gateway config example|check``: print the documented defaults, or validate a file."""

from __future__ import annotations

import argparse
from typing import Any

from gateway.config import Settings
from gateway.example import example_toml


def register(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("config", parents=parents, help="configuration file")
    actions = parser.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    example = actions.add_parser(
        "example", parents=parents, help="print config.example.toml (every setting, documented)"
    )
    example.set_defaults(handler=run_example)
    check = actions.add_parser(
        "check", parents=parents, help="load the configuration and report the first problem"
    )
    check.set_defaults(handler=run_check)


def run_example(args: argparse.Namespace, settings: Settings) -> int:
    print(example_toml(), end="")
    return 0


def run_check(args: argparse.Namespace, settings: Settings) -> int:
    print("configuration is valid")  # loading already happened in gateway.cli.main
    return 0
