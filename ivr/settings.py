"""Settings of the hotline IVR (``[ivr]``): the AMI link, the keypad script and the prompts.

Plain frozen dataclasses filled by :mod:`gateway.config`; each field's ``help`` documents it.
The prompt texts are here (``[ivr.prompts]``) so that BHXH can reword a prompt without a
release; ``vssid-gateway prompts build`` turns them into sound files.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from commands.secret import Secret


def _help(text: str) -> dict[str, str]:
    return {"help": text}


@dataclass(frozen=True, slots=True)
class PromptTexts:
    """What each fixed prompt says (``[ivr.prompts]``), Vietnamese with diacritics.

    A field ``not_matched`` is the file ``<language>/vssid/not-matched.wav``. Nothing about a
    caller (number, code, password) is ever part of a prompt text: those are spoken with the
    pre-rendered digits ``<language>/digits/0.wav`` … ``9.wav``.
    """

    menu: str = field(
        default="Chào mừng quý khách đến với tổng đài Bảo hiểm xã hội Việt Nam. "
        "Để được cấp lại mật khẩu VssID, xin bấm phím 8.",
        metadata=_help("Welcome and menu; the caller may press a key at any time."),
    )
    enter_code: str = field(
        default="Xin nhập mười chữ số mã số bảo hiểm xã hội, rồi bấm phím thăng.",
        metadata=_help("Asks for the 10-digit code."),
    )
    code_invalid: str = field(
        default="Mã số chưa đúng. Mã số bảo hiểm xã hội gồm mười chữ số.",
        metadata=_help("The typed code does not have 10 digits."),
    )
    no_input: str = field(
        default="Quý khách chưa nhập mã số.",
        metadata=_help("Nothing was typed before the time-out."),
    )
    too_many_tries: str = field(
        default="Quý khách đã nhập sai quá số lần cho phép.",
        metadata=_help("After the last failed try."),
    )
    number_withheld: str = field(
        default="Xin gọi lại bằng số điện thoại đã đăng ký và không ẩn số.",
        metadata=_help("The caller's number is withheld or unavailable."),
    )
    number_invalid: str = field(
        default="Số điện thoại gọi đến không phải số di động Việt Nam hợp lệ.",
        metadata=_help("The caller's number is not a valid number."),
    )
    not_matched: str = field(
        default="Số điện thoại và mã số bảo hiểm không khớp "
        "hoặc chưa đăng ký với cơ quan Bảo hiểm xã hội.",
        metadata=_help("The phone and the code do not match a registered account."),
    )
    rate_limited: str = field(
        default="Quý khách đã yêu cầu cấp lại mật khẩu quá số lần cho phép trong ngày. "
        "Xin thử lại vào ngày mai.",
        metadata=_help("Too many resets today for this code or phone."),
    )
    new_password: str = field(
        default="Mật khẩu mới của quý khách là", metadata=_help("Before the password.")
    )
    repeat: str = field(default="Xin nhắc lại, mật khẩu là", metadata=_help("Before the repeat."))
    goodbye: str = field(
        default="Cảm ơn quý khách đã gọi. Xin chào.", metadata=_help("Before hanging up.")
    )
    error: str = field(
        default="Hệ thống đang bận. Xin quý khách gọi lại sau.",
        metadata=_help("The reset could not be done (service error)."),
    )

    @staticmethod
    def names() -> tuple[str, ...]:
        """The prompt names as files (``not-matched``), in field order."""
        return tuple(f.name.replace("_", "-") for f in dataclasses.fields(PromptTexts))

    def by_name(self) -> dict[str, str]:
        return {
            f.name.replace("_", "-"): getattr(self, f.name) for f in dataclasses.fields(self)
        }


DIGIT_WORDS = ("không", "một", "hai", "ba", "bốn", "năm", "sáu", "bảy", "tám", "chín")


@dataclass(frozen=True, slots=True)
class DigitTexts:
    """How the digits 0–9 are said (``[ivr.digits]``); rendered as ``digits/N.wav``."""

    words: tuple[str, ...] = field(
        default=DIGIT_WORDS, metadata=_help("Ten words, for 0 to 9, used by SAY DIGITS.")
    )


@dataclass(frozen=True, slots=True)
class Route:
    """A menu key sent to a dialplan location (``[[ivr.routes]]``), e.g. a human queue."""

    key: str = field(default="0", metadata=_help("The key pressed in the menu (0-9, * or #)."))
    goto: str = field(
        default="hotline-agents,s,1",
        metadata=_help("Dialplan 'context,exten,priority' the call goes to (EXEC Goto)."),
    )


@dataclass(frozen=True, slots=True)
class IvrSettings:
    """The IVR (``[ivr]``); disabled by default so that ``make run`` works without Asterisk."""

    enabled: bool = field(
        default=False, metadata=_help("Connect to Asterisk and answer hotline calls.")
    )
    ami: str = field(
        default="tcp:127.0.0.1:5038",
        metadata=_help("Twisted client endpoint string of Asterisk's AMI."),
    )
    username: str = field(default="vssid", metadata=_help("AMI user (manager.conf)."))
    secret: Secret = field(
        default=Secret(""), metadata=_help("AMI secret; 'env:NAME' reads it from the environment.")
    )
    language: str = field(default="vi", metadata=_help("Prompt language folder."))
    sounds_dir: str = field(
        default="var/sounds",
        metadata=_help("Folder with the rendered prompts (<language>/vssid/*.wav)."),
    )
    prompt_engine: str = field(
        default="auto",
        metadata=_help(
            "Text-to-speech for 'prompts build': gtts (online, needs ffmpeg), espeak (offline), "
            "or auto: gtts where the internet is reachable and ffmpeg installed, else espeak."
        ),
    )
    reset_key: str = field(default="8", metadata=_help("Menu key for a new VssID password."))
    routes: tuple[Route, ...] = field(
        default=(Route(),),
        metadata=_help("Other menu keys and the dialplan location each one goes to."),
    )
    max_tries: int = field(default=3, metadata=_help("Tries to type the 10-digit code."))
    digit_timeout_seconds: float = field(
        default=6.0, metadata=_help("Seconds to wait for the code after the prompt.")
    )
    menu_timeout_seconds: float = field(
        default=5.0, metadata=_help("Seconds to wait for a menu key after the menu prompt.")
    )
    command_timeout_seconds: float = field(
        default=30.0,
        metadata=_help("Longest an AGI command (a prompt included) may take before the call ends."),
    )
    ping_interval_seconds: float = field(
        default=20.0, metadata=_help("AMI keep-alive: seconds between Ping actions.")
    )
    call_limit_seconds: int = field(
        default=300,
        metadata=_help(
            "Longest a call may stay in the IVR: the first command raises the dialplan's short "
            "TIMEOUT(absolute) to this; Asterisk then ends the call (the T extension), even if "
            "the service lost it."
        ),
    )
    stop_timeout_seconds: float = field(
        default=20.0,
        metadata=_help(
            "On a graceful stop, seconds to wait for calls to leave (a caller hearing a new "
            "password is let finish) before logging off the AMI."
        ),
    )
    prompts: PromptTexts = field(
        default_factory=PromptTexts,
        metadata=_help("What each fixed prompt says (rendered by `vssid-gateway prompts build`)."),
    )
    digits: DigitTexts = field(
        default_factory=DigitTexts,
        metadata=_help("How the digits 0-9 are spoken, for SAY DIGITS in this language."),
    )
