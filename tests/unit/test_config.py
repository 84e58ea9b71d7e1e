"""Configuration: the example file documents the defaults, and mistakes are one clear line."""

from __future__ import annotations

import dataclasses
import re
import typing
from pathlib import Path

import pytest

from commands.secret import Secret
from gateway import config
from gateway.example import example_toml

EXAMPLE = Path(__file__).parents[2] / "config.example.toml"
PEER = "[[smpp.peers]]\nname = 'x'\nsystem_id = 'y'\n"


def test_the_example_file_equals_the_built_in_defaults_apart_from_its_demo_peer() -> None:
    example = config.load(EXAMPLE)
    assert len(example.smpp.peers) == 1
    without_peer = dataclasses.replace(example, smpp=dataclasses.replace(example.smpp, peers=()))
    assert without_peer == config.Settings()


def _fields_without_help(cls: type, where: str) -> list[str]:
    hints = typing.get_type_hints(cls)
    missing = []
    for field in dataclasses.fields(cls):
        hint = hints[field.name]
        inner = typing.get_args(hint)[0] if typing.get_origin(hint) is tuple else hint
        if dataclasses.is_dataclass(inner):
            missing += _fields_without_help(inner, f"{where}.{field.name}")  # type: ignore[arg-type]
            if cls is not config.Settings and not field.metadata.get("help"):
                missing.append(f"{where}.{field.name}")
        elif not field.metadata.get("help"):
            missing.append(f"{where}.{field.name}")
    return missing


def test_every_setting_has_help_text_for_the_example() -> None:
    assert _fields_without_help(config.Settings, "") == []


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("[reset]\npassword_length = 3\n", "[reset] password_length: must be 6 to 20 (got 3)"),
        (
            "[reset]\npassword_length = 'eight'\n",
            "[reset] password_length: expected a whole number",
        ),
        ("[limits]\nresets_per_day = 5\n", "[limits] resets_per_day: unknown setting"),
        ("[smpp]\nenabled = 'yes'\n", "[smpp] enabled: expected true or false"),
        ("[[smpp.peers]]\nname = 'x'\nsystem_id = 'y'\n", "password: required setting is missing"),
        (
            "[database]\nurl = 'env:VSSID_TEST_UNSET_VARIABLE'\n",
            "VSSID_TEST_UNSET_VARIABLE is not set",
        ),
        ("[reset\n", "not valid TOML"),
        (
            f"{PEER}password = 'p'\nallow = ['10.0.0.300/8']\n",
            "[smpp.peers[0]] allow: '10.0.0.300/8' is not a network",
        ),
        (
            f"{PEER}password = 'much-too-long'\n",
            "[smpp.peers[0]] password: must be at most 8 characters",
        ),
        (
            "[smpp]\nsystem_id = 'a-system-id-longer-than-15'\n",
            "[smpp] system_id: must be at most 15",
        ),
        (
            "[database]\nurl = 'postgres://gw@127.0.0.1/vssid'\n",
            "[database] url: not a database URL SQLAlchemy can use",
        ),
        ("[database]\nurl = 'var/vssid.db'\n", "[database] url: not a database URL"),
        ("[database]\nurl = 'mysql://gw@127.0.0.1/vssid'\n", "[database] url: must be a SQLite"),
        (
            "[database]\nurl = 'postgresql+psycopg2://gw@127.0.0.1/vssid'\n",
            "[database] url: the postgresql+psycopg2 driver is not installed",
        ),
        ("[ivr]\nmax_tries = 0\n", "[ivr] max_tries: must be at least 1 (got 0)"),
        ("[ivr]\ndigit_timeout_seconds = 0\n", "[ivr] digit_timeout_seconds: must be more than 0"),
        ("[ivr]\nmenu_timeout_seconds = -1\n", "[ivr] menu_timeout_seconds: must be more than 0"),
        ("[ivr]\ncommand_timeout_seconds = 0\n", "[ivr] command_timeout_seconds: must be more"),
        ("[ivr]\nping_interval_seconds = 0\n", "[ivr] ping_interval_seconds: must be more"),
        ("[ivr]\nreset_key = '88'\n", "[ivr] reset_key: must be one key of 0123456789*#"),
        ("[ivr]\nreset_key = 'A'\n", "[ivr] reset_key: must be one key of"),
        ("[[ivr.routes]]\nkey = '10'\n", "[ivr.routes[0]] key: must be one key of"),
        (
            "[[ivr.routes]]\nkey = '0'\n[[ivr.routes]]\nkey = '0'\ngoto = 'x,s,1'\n",
            "[ivr.routes[1]] key: '0' is already the key of routes[0]",
        ),
        (
            "[ivr]\nreset_key = '0'\n",  # the default route is on 0
            "[ivr.routes[0]] key: '0' is already the reset_key",
        ),
        ("[ivr]\nenabled = true\n", "[ivr] secret: must be set when the IVR is enabled"),
    ],
    ids=[
        "out-of-range",
        "wrong-type",
        "unknown-key",
        "not-a-bool",
        "missing-required",
        "unset-env",
        "syntax",
        "bad-cidr",
        "long-bind-password",
        "long-system-id",
        "url-postgres-scheme",
        "url-a-path",
        "url-unsupported-database",
        "url-driver-missing",
        "ivr-no-tries",
        "ivr-digit-timeout",
        "ivr-menu-timeout",
        "ivr-command-timeout",
        "ivr-ping-interval",
        "ivr-reset-key-two-keys",
        "ivr-reset-key-not-on-keypad",
        "ivr-route-key",
        "ivr-route-keys-twice",
        "ivr-route-on-reset-key",
        "ivr-enabled-without-secret",
    ],
)
def test_a_bad_setting_is_reported_in_one_line_naming_the_key(
    tmp_path: Path, toml: str, message: str
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(toml, encoding="utf-8")
    with pytest.raises(config.ConfigError) as caught:
        config.load(path)
    text = str(caught.value)
    assert "\n" not in text and message in text and str(path) in text


@pytest.mark.parametrize(
    "toml",
    [
        f"{PEER}password = 'SuperSecretPw'\n",
        f"{PEER}password = 12345678\n",
        "[database]\nurl = 'postgres://gw:SuperSecretPw@127.0.0.1/vssid'\n",
        "[database]\nurl = 'postgresql://gw:SuperSecretPw@127.0.0.1:port/vssid'\n",
        "[ivr]\nusername = 'env:VSSID_TEST_SECRETISH'\nmax_tries = 'env:VSSID_TEST_SECRETISH'\n",
        "[smpp]\nsystem_id = 'env:VSSID_TEST_SECRETISH'\n",
    ],
    ids=["long-password", "password-not-text", "bad-url", "bad-url-port", "env-type", "env-check"],
)
def test_an_error_never_quotes_a_secret_or_a_value_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, toml: str
) -> None:
    monkeypatch.setenv("VSSID_TEST_SECRETISH", "SuperSecretPw-from-the-environment")
    path = tmp_path / "bad.toml"
    path.write_text(toml, encoding="utf-8")

    with pytest.raises(config.ConfigError) as caught:
        config.load(path)

    text = str(caught.value)
    assert "SuperSecretPw" not in text and "12345678" not in text and "(got" not in text
    assert "\n" not in text


IVR_DURATIONS = [
    f.name for f in dataclasses.fields(config.IvrSettings) if f.name.endswith("_seconds")
]


@pytest.mark.parametrize("name", IVR_DURATIONS)
def test_every_ivr_duration_is_checked(name: str) -> None:
    with pytest.raises(config.ConfigError, match=rf"\[ivr\] {name}: must be"):
        config.from_mapping({"ivr": {name: -1}})
    if name in config.IVR_ZERO_SECONDS_ALLOWED:
        assert getattr(config.from_mapping({"ivr": {name: 0}}).ivr, name) == 0
    else:
        with pytest.raises(config.ConfigError, match=rf"\[ivr\] {name}: must be"):
            config.from_mapping({"ivr": {name: 0}})


def test_a_valid_menu_and_database_url_load() -> None:
    settings = config.from_mapping(
        {
            "database": {"url": "postgresql+psycopg://gw@127.0.0.1:5432/vssid"},
            "ivr": {
                "enabled": True,
                "secret": "s",
                "reset_key": "*",
                "routes": [{"key": "0"}, {"key": "#", "goto": "x,s,1"}],
            },
        }
    )
    assert settings.ivr.reset_key == "*" and [r.key for r in settings.ivr.routes] == ["0", "#"]


def test_secrets_can_come_from_the_environment_and_never_print(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VSSID_TEST_AMI_SECRET", "s3cret-value")
    path = tmp_path / "c.toml"
    path.write_text("[ivr]\nsecret = 'env:VSSID_TEST_AMI_SECRET'\n", encoding="utf-8")

    settings = config.load(path)

    assert (
        isinstance(settings.ivr.secret, Secret) and settings.ivr.secret.reveal() == "s3cret-value"
    )
    assert "s3cret-value" not in repr(settings)


def test_the_config_path_comes_from_the_environment_when_not_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[reset]\npassword_length = 10\n", encoding="utf-8")
    monkeypatch.setenv(config.ENV_PATH, str(path))

    assert config.load().reset.password_length == 10


def test_the_committed_example_is_exactly_what_the_code_generates() -> None:
    assert EXAMPLE.read_text(encoding="utf-8") == example_toml(), (
        "config.example.toml is stale: run `vssid-gateway config example > config.example.toml`"
    )


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("[ivr]\ncall_limit_seconds = 30\n", "[ivr] call_limit_seconds: must be 60 to 3600"),
        ("[ivr]\nstop_timeout_seconds = 600.0\n", "[ivr] stop_timeout_seconds: must be 0 to 60"),
    ],
    ids=["call-limit-too-short", "stop-wait-too-long"],
)
def test_ivr_limits_that_would_hurt_callers_or_shutdown_are_refused(
    tmp_path: Path, toml: str, message: str
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(toml, encoding="utf-8")
    with pytest.raises(config.ConfigError, match=re.escape(message)):
        config.load(path)
