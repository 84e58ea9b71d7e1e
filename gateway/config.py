"""The configuration: one TOML file into frozen dataclasses, or one clear line saying what is wrong.

Every setting has a default equal to ``config.example.toml`` (a test keeps them in step) and a
``help`` text. The loader is generic over the dataclasses: it walks their type hints, so a new
setting is one field, and a wrong value is reported as ``[section] key: what is wrong``. Any
string setting may be written ``"env:NAME"`` to read it from the environment, which is how
secrets stay out of the file. An error quotes the value it rejects (``(got 3)``) except for a
:class:`Secret` field or a value read from the environment: the message goes to a terminal or
a log, and a rejected password is still a password.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from commands.secret import Secret
from ivr.agi import KEYPAD
from ivr.settings import IvrSettings, Route
from smpp.settings import PeerSettings, SmppSettings

DEFAULT_PATH = Path("config.toml")
ENV_PATH = "VSSID_CONFIG"
ENV_PREFIX = "env:"


def _help(text: str) -> dict[str, str]:
    return {"help": text}


@dataclass(frozen=True, slots=True)
class DatabaseSettings:
    """Where accounts, messages and audit rows live (``[database]``)."""

    url: Secret = field(
        default=Secret("sqlite:///var/vssid.db"),
        metadata=_help(
            "SQLAlchemy URL: sqlite:///path (embedded, the default) or "
            "postgresql+psycopg://user@host/db; 'env:NAME' reads it from the environment."
        ),
    )
    pool_size: int = field(default=8, metadata=_help("Database connections (and worker threads)."))


@dataclass(frozen=True, slots=True)
class ResetSettings:
    """The new password and how it is stored (``[reset]``)."""

    password_length: int = field(default=8, metadata=_help("Digits in a new password (6 to 20)."))
    argon2_memory_kib: int = field(default=19456, metadata=_help("Argon2id memory cost in KiB."))
    argon2_time_cost: int = field(default=2, metadata=_help("Argon2id iterations."))
    argon2_parallelism: int = field(default=1, metadata=_help("Argon2id lanes."))
    temporary_password_hours: float = field(
        default=24.0, metadata=_help("Hours before an unchanged new password expires.")
    )


@dataclass(frozen=True, slots=True)
class LimitsSettings:
    """Daily limits against abuse and runaway retries (``[limits]``)."""

    resets_per_code_per_day: int = field(default=5, metadata=_help("Resets per code per 24 hours."))
    resets_per_phone_per_day: int = field(
        default=5, metadata=_help("Resets per phone per 24 hours.")
    )


@dataclass(frozen=True, slots=True)
class HttpSettings:
    """The operators' HTTP listener: metrics, health and dashboard (``[http]``)."""

    enabled: bool = field(default=True, metadata=_help("Start the HTTP listener."))
    listen: str = field(
        default="tcp:8080:interface=127.0.0.1",
        metadata=_help("Twisted endpoint string to listen on."),
    )
    token: Secret = field(
        default=Secret(""),
        metadata=_help("Bearer token for the dashboard and API; empty allows localhost only."),
    )


@dataclass(frozen=True, slots=True)
class LoggingSettings:
    """What the logs show (``[logging]``)."""

    format: str = field(
        default="auto",
        metadata=_help("'json', 'text', or 'auto' (text on a terminal, JSON otherwise)."),
    )
    unmask: bool = field(
        default=False, metadata=_help("Show codes and phone numbers in full (debugging only).")
    )


@dataclass(frozen=True, slots=True)
class RetentionSettings:
    """How long citizens' message texts are kept (``[retention]``); counts are kept forever."""

    message_body_days: int = field(
        default=30,
        metadata=_help(
            "Days after which the text of received messages and of finished replies is "
            "deleted (rows stay for reports); 0 keeps texts forever."
        ),
    )
    prune_interval_hours: float = field(
        default=24.0, metadata=_help("How often the running service deletes expired texts.")
    )


@dataclass(frozen=True, slots=True)
class Settings:
    """The whole configuration."""

    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    reset: ResetSettings = field(default_factory=ResetSettings)
    limits: LimitsSettings = field(default_factory=LimitsSettings)
    smpp: SmppSettings = field(default_factory=SmppSettings)
    ivr: IvrSettings = field(default_factory=IvrSettings)
    http: HttpSettings = field(default_factory=HttpSettings)
    logging: LoggingSettings = field(default_factory=LoggingSettings)
    retention: RetentionSettings = field(default_factory=RetentionSettings)


class ConfigError(Exception):
    """A configuration problem, worded as one line naming the key."""


Check = typing.Callable[[Any], str | None]

CHECKS: dict[tuple[type, str], Check] = {
    (ResetSettings, "password_length"): lambda v: None if 6 <= v <= 20 else "must be 6 to 20",
    (ResetSettings, "argon2_memory_kib"): lambda v: None if v >= 8192 else "must be at least 8192",
    (ResetSettings, "argon2_time_cost"): lambda v: None if v >= 1 else "must be at least 1",
    (ResetSettings, "argon2_parallelism"): lambda v: None if v >= 1 else "must be at least 1",
    (DatabaseSettings, "pool_size"): lambda v: None if v >= 1 else "must be at least 1",
    (RetentionSettings, "message_body_days"): lambda v: (
        None if v >= 0 else "must be 0 (keep forever) or more"
    ),
    (RetentionSettings, "prune_interval_hours"): lambda v: (
        None if 0.1 <= v <= 168 else "must be 0.1 to 168"
    ),
    (LoggingSettings, "format"): lambda v: (
        None if v in ("auto", "json", "text") else "must be auto, json or text"
    ),
}


def _short_ascii(limit: int) -> Check:
    def check(value: str) -> str | None:
        if not value.isascii() or len(value) > limit:
            return f"must be at most {limit} ASCII characters"
        return None

    return check


def _networks(values: tuple[str, ...]) -> str | None:
    for value in values:
        try:
            ipaddress.ip_network(value, strict=False)
        except ValueError:
            return f"{value!r} is not a network (e.g. 10.0.0.0/8 or 127.0.0.1/32)"
    return None


def _at_least(minimum: float) -> Check:
    return lambda value: None if value >= minimum else f"must be at least {minimum:g}"


CHECKS.update(
    {
        (SmppSettings, "system_id"): _short_ascii(15),
        (SmppSettings, "max_pdu_length"): _at_least(16),
        (SmppSettings, "short_codes"): lambda v: (
            None if v and all(c.isdigit() for c in v) else "must be digits"
        ),
        (SmppSettings, "failed_binds_per_minute"): _at_least(1),
        (SmppSettings, "max_connections"): _at_least(1),
        (SmppSettings, "max_connections_per_address"): _at_least(1),
        (SmppSettings, "inbound_queue_limit"): _at_least(1),
        (PeerSettings, "system_id"): _short_ascii(15),
        (PeerSettings, "password"): lambda v: (
            None if len(v.reveal()) <= 8 else "must be at most 8 characters (SMPP v3.4)"
        ),
        (PeerSettings, "allow"): _networks,
        (PeerSettings, "window"): _at_least(1),
        (PeerSettings, "max_binds"): _at_least(1),
    }
)


def _database_url(url: Secret) -> str | None:
    """A URL the store can open: parsed, of a dialect it supports, with its driver installed.

    Checked here so that a typo (``postgres://``) is a one-line configuration error rather
    than a traceback from the first command that opens the database. The message never
    quotes the URL: it may hold a password.
    """
    try:
        parsed = make_url(url.reveal())
        dialect = parsed.get_dialect()
    except (ValueError, ArgumentError):  # ArgumentError covers NoSuchModuleError (no dialect)
        return "not a database URL SQLAlchemy can use (sqlite:///path or postgresql+psycopg://…)"
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        return "must be a SQLite or PostgreSQL URL (sqlite:///path or postgresql+psycopg://…)"
    try:
        dialect.import_dbapi()
    except ImportError:
        driver = f"{dialect.name}+{dialect.driver}"
        return f"the {driver} driver is not installed (use postgresql+psycopg)"
    return None


def _positive(value: float) -> str | None:
    return None if value > 0 else "must be more than 0"


def _keypad_key(value: str) -> str | None:
    return None if len(value) == 1 and value in KEYPAD else f"must be one key of {KEYPAD}"


CHECKS.update(
    {
        (DatabaseSettings, "url"): _database_url,
        (IvrSettings, "reset_key"): _keypad_key,
        (IvrSettings, "max_tries"): _at_least(1),
        (Route, "key"): _keypad_key,
    }
)
IVR_ZERO_SECONDS_ALLOWED: typing.Final = frozenset({"stop_timeout_seconds"})
"""[ivr] durations where 0 means "do not wait" rather than a wait that ends at once."""

# Every [ivr] duration (timeouts, intervals, the call limit, any later one) must be positive:
# zero would end a wait at once or arm a timer that fires in a loop.
CHECKS.update(
    {
        (IvrSettings, f.name): _at_least(0) if f.name in IVR_ZERO_SECONDS_ALLOWED else _positive
        for f in dataclasses.fields(IvrSettings)
        if f.name.endswith("_seconds")
    }
)



def _between(low: float, high: float) -> Check:
    return lambda value: None if low <= value <= high else f"must be {low:g} to {high:g}"


# Bounds where a positive value can still be wrong: a call limit under a minute cuts real
# callers off; a stop that waits more than a minute outlives systemd's default stop timeout.
CHECKS.update(
    {
        (IvrSettings, "call_limit_seconds"): _between(60, 3600),
        (IvrSettings, "stop_timeout_seconds"): _between(0, 60),
    }
)

WholeCheck = typing.Callable[[Any], tuple[str, str] | None]
"""A check of a whole section, for rules that span its fields: ``(key, problem)`` or None,
where ``key`` is relative to the section (``routes[1].key``)."""


def _ivr_menu(ivr: IvrSettings) -> tuple[str, str] | None:
    """One action per menu key, and an AMI secret whenever the IVR logs in to Asterisk."""
    taken = {ivr.reset_key: "the reset_key"}
    for index, route in enumerate(ivr.routes):
        if route.key in taken:
            return f"routes[{index}].key", f"{route.key!r} is already {taken[route.key]}"
        taken[route.key] = f"the key of routes[{index}]"
    if ivr.enabled and not ivr.secret:
        return "secret", "must be set when the IVR is enabled (manager.conf's secret)"
    return None


SECTION_CHECKS: dict[type, WholeCheck] = {IvrSettings: _ivr_menu}
"""Checks run once a section is built from the file, defaults filled in."""


def load(path: Path | str | None = None) -> Settings:
    """Settings from ``path``, else ``$VSSID_CONFIG``, else ``config.toml`` if it exists, else
    the built-in defaults."""
    if path is None:
        env = os.environ.get(ENV_PATH)
        path = Path(env) if env else (DEFAULT_PATH if DEFAULT_PATH.exists() else None)
    if path is None:
        return Settings()
    path = Path(path)
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except OSError as error:
        raise ConfigError(f"{path}: cannot read: {error.strerror}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML: {error}") from None
    return from_mapping(data, source=str(path))


def from_mapping(data: dict[str, Any], source: str = "config") -> Settings:
    try:
        return typing.cast(Settings, _build(Settings, data, ""))
    except ConfigError as error:
        raise ConfigError(f"{source}: {error}") from None


def _build(cls: type[Any], data: Any, where: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{_name(where)}: expected a table")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"{_name(_key(where, unknown[0]))}: unknown setting")
    values: dict[str, Any] = {}
    for name, value in data.items():
        key = _key(where, name)
        converted = _convert(hints[name], value, key)
        check = CHECKS.get((cls, name))
        problem = check(converted) if check else None
        if problem:
            raise ConfigError(f"{_name(key)}: {problem}{_got(hints[name], value)}")
        values[name] = converted
    missing = [
        name
        for name, f in fields.items()
        if name not in values
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise ConfigError(f"{_name(_key(where, missing[0]))}: required setting is missing")
    built = cls(**values)
    section_check = SECTION_CHECKS.get(cls)
    found = section_check(built) if section_check else None
    if found:
        name, problem = found
        raise ConfigError(f"{_name(_key(where, name))}: {problem}")
    return built


def _convert(hint: Any, value: Any, key: str) -> Any:
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        return _build(typing.cast(type, hint), value, key)
    if origin is tuple:
        item_hint = typing.get_args(hint)[0]
        if not isinstance(value, list):
            raise ConfigError(f"{_name(key)}: expected a list{_got(hint, value)}")
        return tuple(_convert(item_hint, item, f"{key}[{i}]") for i, item in enumerate(value))
    if origin in (typing.Union, types.UnionType):
        raise TypeError(f"{key}: optional settings are not supported; use a default")
    if hint is Secret:
        return Secret(_string(value, key, hint))
    if hint is str:
        return _string(value, key, hint)
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{_name(key)}: expected true or false{_got(hint, value)}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{_name(key)}: expected a whole number{_got(hint, value)}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{_name(key)}: expected a number{_got(hint, value)}")
        return float(value)
    raise TypeError(f"{key}: unsupported setting type {hint!r}")


def _string(value: Any, key: str, hint: Any) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"{_name(key)}: expected a string{_got(hint, value)}")
    if value.startswith(ENV_PREFIX):
        variable = value[len(ENV_PREFIX) :]
        if variable not in os.environ:
            raise ConfigError(f"{_name(key)}: environment variable {variable} is not set")
        return os.environ[variable]
    return value


def _got(hint: Any, value: Any) -> str:
    """`` (got 3)`` to end an error message, or nothing for a value that may be secret: one
    for a :class:`Secret` field, or one read from the environment (where secrets come from)."""
    if hint is Secret or (isinstance(value, str) and value.startswith(ENV_PREFIX)):
        return ""
    return f" (got {value!r})"


def _key(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name


def _name(key: str) -> str:
    """``smpp.peers[0].window`` -> ``[smpp.peers[0]] window`` as in the TOML file."""
    section, _, name = key.rpartition(".")
    return f"[{section}] {name}" if section else name
