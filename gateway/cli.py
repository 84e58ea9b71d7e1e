"""The ``vssid-gateway`` command: one entry point, subcommands discovered from ``gateway/cli_*.py``.

Each ``cli_<name>.py`` module defines ``register(subparsers, parents)``, adds its parser with
``parents=parents`` (which gives it ``--config``) and sets ``handler=function(args, settings)``
returning the exit status. A new subcommand is therefore one new module and no edit here.
Configuration errors end the command with one line and status 2, before any work starts; a
database that cannot be reached or used (down, wrong password, schema missing) ends it with one
line and status 1, rather than a driver's traceback.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence

from sqlalchemy.exc import InterfaceError, OperationalError

import gateway
from gateway import config
from gateway.logs import one_line, url_secrets

EXIT_CONFIG = 2
EXIT_DATABASE = 1


def _config_option(default: object) -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument(
        "--config",
        metavar="FILE",
        default=default,
        help=f"TOML configuration (default: ${config.ENV_PATH}, else {config.DEFAULT_PATH} "
        "if it exists, else built-in defaults)",
    )
    return parent


def build_parser() -> argparse.ArgumentParser:
    # Subcommands must not reset --config to a default when it was given before them.
    common = _config_option(argparse.SUPPRESS)
    parser = argparse.ArgumentParser(
        prog="vssid-gateway",
        description="VssID password reset over SMS (SMPP, 8079) and the 1900.9068 hotline.",
        parents=[_config_option(None)],
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {gateway.__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module_info in sorted(pkgutil.iter_modules(gateway.__path__), key=lambda m: m.name):
        if module_info.name.startswith("cli_"):
            module = importlib.import_module(f"gateway.{module_info.name}")
            module.register(subparsers, [common])
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = config.load(args.config)
    except config.ConfigError as error:
        print(f"vssid-gateway: {error}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        status: int = args.handler(args, settings)
    except (OperationalError, InterfaceError) as error:  # the database, not the command, failed
        cause = error.orig if error.orig is not None else error  # the driver's own words
        hide = url_secrets(settings.database.url.reveal())
        print(
            f"vssid-gateway: database: {one_line(f'{type(cause).__name__}: {cause}', hide)}",
            file=sys.stderr,
        )
        return EXIT_DATABASE
    return status


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
