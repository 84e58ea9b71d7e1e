"""The [ivr] settings load from TOML, nested prompts and routes included."""

from __future__ import annotations

import pytest

from gateway import config
from ivr.dialog import prompt, prompts_used
from ivr.settings import IvrSettings, PromptTexts, Route


def test_routes_prompts_and_timeouts_load_from_toml() -> None:
    settings = config.from_mapping(
        {
            "ivr": {
                "routes": [
                    {"key": "0", "goto": "hotline-agents,s,1"},
                    {"key": "9", "goto": "x,s,1"},
                ],
                "prompts": {"goodbye": "Xin chào."},
                "command_timeout_seconds": 20,
            }
        }
    )
    assert settings.ivr.routes == (Route("0", "hotline-agents,s,1"), Route("9", "x,s,1"))
    assert settings.ivr.prompts.goodbye == "Xin chào."
    assert settings.ivr.command_timeout_seconds == 20.0


def test_unknown_prompt_is_a_one_line_error() -> None:
    with pytest.raises(config.ConfigError, match=r"\[ivr.prompts\] welcome: unknown setting"):
        config.from_mapping({"ivr": {"prompts": {"welcome": "x"}}})


def test_every_prompt_the_dialog_plays_has_a_text_and_every_text_is_vietnamese() -> None:
    assert prompts_used() == PromptTexts.names()  # what the start-up check looks for
    assert prompt("not-matched") == "vssid/not-matched"
    with pytest.raises(ValueError, match="PromptTexts"):
        prompt("welcome")  # a prompt without a text would never be rendered nor checked
    assert all(any(ord(c) > 127 for c in text) for text in PromptTexts().by_name().values())
    assert len(IvrSettings().digits.words) == 10
