"""Secrets the operator commands need, kept off the command line.

An argument is visible to every local user in ``ps`` output and stays in shell history, so a
command that needs a password (``send-test``'s bind password, ``call-test``'s AMI secret) takes
``env:NAME`` to read it from the environment, or asks for it on the terminal without echo when
the option is omitted. A value written literally still works, for scripts where neither matters.
Not named ``cli_*``: that would make it a subcommand (see :mod:`gateway.cli`).
"""

from __future__ import annotations

import getpass
import os

from gateway.config import ENV_PREFIX


class PasswordError(Exception):
    """The secret could not be had (an unset variable, no terminal to ask on)."""


def read_secret(given: str | None, *, option: str, prompt: str) -> str:
    """``given`` as written, the variable ``env:NAME`` names, or, when ``given`` is None, what
    the operator types at ``prompt``, which does not echo. ``option`` names the command-line
    option in errors. Raises :class:`PasswordError`, before anything connects anywhere."""
    if given is None:
        try:
            return getpass.getpass(prompt)
        except EOFError:
            raise PasswordError(f"no {option} and no terminal to ask for it") from None
    if given.startswith(ENV_PREFIX):
        name = given[len(ENV_PREFIX) :]
        if name not in os.environ:
            raise PasswordError(f"{option}: environment variable {name} is not set")
        return os.environ[name]
    return given
