"""Replies as data, and their rendering to SMS text.

The rules produce a :class:`Reply` (a template key and parameters); each channel renders it:
SMS text here, voice prompts in :mod:`ivr`. SMS replies are plain GSM-7 text without
diacritics, like BHXH's own service, and a guard checks that each template fits the number of
SMS segments it is allowed (one, unless the template says otherwise), so a wording change that
would double what the telco bills fails the tests instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from commands.secret import Secret


@dataclass(frozen=True, slots=True)
class Reply:
    """What to tell the citizen, independent of the channel."""

    template: str
    params: Mapping[str, str | int | Secret] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SmsTemplate:
    text: str
    max_segments: int = 1


SMS_TEMPLATES: Final[Mapping[str, SmsTemplate]] = {
    "reset_ok": SmsTemplate("Cap lai mat khau thanh cong. Tai khoan: {code}/Mat khau: {password}"),
    "mismatch": SmsTemplate(
        "So dien thoai va ma so BHXH khong khop hoac chua dang ky giao dich dien tu "
        "voi co quan BHXH"
    ),
    "rate_limited": SmsTemplate(
        "Ban da yeu cau cap lai mat khau qua {limit} lan trong 24 gio. "
        "Vui long thu lai sau hoac lien he tong dai 1900.9068 de duoc ho tro."
    ),
    "help": SmsTemplate("Sai cu phap. Soan: BH MK <Ma so BHXH> gui 8079. VD: BH MK 0123456789"),
    "duplicate": SmsTemplate("Yeu cau cho ma so {code} da duoc xu ly truoc do."),
    "help_code_length": SmsTemplate(
        "Sai cu phap (ma so BHXH gom 10 chu so). Soan: BH MK <Ma so BHXH> gui 8079. "
        "VD: BH MK 0123456789"
    ),
}

# GSM 03.38 default alphabet and its extension table (each extension character costs two septets).
GSM7_BASIC: Final = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION: Final = "^{}\\[~]|€\f"
SINGLE_SEGMENT_SEPTETS: Final = 160
CONCATENATED_SEGMENT_SEPTETS: Final = 153


class NotGsm7Error(ValueError):
    """A rendered reply contains a character outside the GSM-7 alphabet."""


def gsm7_septets(text: str) -> int:
    """Septets ``text`` takes in the GSM-7 default alphabet; raises :class:`NotGsm7Error`."""
    septets = 0
    for char in text:
        if char in GSM7_BASIC:
            septets += 1
        elif char in GSM7_EXTENSION:
            septets += 2
        else:
            raise NotGsm7Error(f"{char!r} (U+{ord(char):04X}) is not in the GSM-7 alphabet")
    return septets


def sms_segments(text: str) -> int:
    """How many SMS segments a GSM-7 ``text`` needs (concatenated parts hold 153 septets)."""
    septets = gsm7_septets(text)
    if septets <= SINGLE_SEGMENT_SEPTETS:
        return 1
    return -(-septets // CONCATENATED_SEGMENT_SEPTETS)


class ReplyTooLongError(ValueError):
    """A rendered reply needs more SMS segments than its template allows."""


def render_sms(reply: Reply, *, reveal: bool = True) -> str:
    """The SMS text for ``reply``: the only place where a password is revealed for SMS.

    With ``reveal=False`` secrets render as ``********``: the form kept once delivered.
    """
    template = SMS_TEMPLATES[reply.template]
    values = {
        key: (value.reveal() if reveal else str(value)) if isinstance(value, Secret) else value
        for key, value in reply.params.items()
    }
    text = template.text.format(**values)
    segments = sms_segments(text)
    if segments > template.max_segments:
        raise ReplyTooLongError(
            f"reply {reply.template!r} needs {segments} SMS segments, "
            f"template allows {template.max_segments}"
        )
    return text
