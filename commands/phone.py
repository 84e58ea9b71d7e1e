"""Vietnamese phone numbers to one canonical form (E.164), old 11-digit mobile numbers included.

A citizen's number reaches us in many shapes: ``0912345678`` from one SMSC, ``84912345678`` from
another, ``+84 91 234 5678`` in a CSV, and, in records older than the 2018 renumbering, the
11-digit form (``01621234567`` for today's ``0321234567``). Everything is compared in E.164, so
every shape of the same subscriber matches. Validation and carrier names come from
``phonenumbers`` (Google's libphonenumber metadata, region VN).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Final

import phonenumbers
from phonenumbers import PhoneNumberType
from phonenumbers import carrier as phonenumbers_carrier
from phonenumbers.carrierdata import CARRIER_DATA
from phonenumbers.phonemetadata import PhoneMetadata

# 2018 renumbering of 11-digit mobile numbers: old national prefix (without the 0) -> new one.
OLD_MOBILE_PREFIXES: Final[dict[str, str]] = {
    # Viettel
    "162": "32",
    "163": "33",
    "164": "34",
    "165": "35",
    "166": "36",
    "167": "37",
    "168": "38",
    "169": "39",
    # MobiFone
    "120": "70",
    "121": "79",
    "122": "77",
    "126": "76",
    "128": "78",
    # VinaPhone
    "123": "83",
    "124": "84",
    "125": "85",
    "127": "81",
    "129": "82",
    # Vietnamobile
    "186": "56",
    "188": "58",
    # Gmobile
    "199": "59",
}

CARRIER_LABELS: Final[dict[str, str]] = {
    "viettel": "Viettel",
    "vinaphone": "VinaPhone",
    "mobifone": "MobiFone",
    "vietnamobile": "Vietnamobile",
    "g-mobile": "Gmobile",
    "gmobile": "Gmobile",
}
OTHER_CARRIER: Final = "other"
CARRIERS: Final = ("Viettel", "VinaPhone", "MobiFone", "Vietnamobile", "Gmobile", OTHER_CARRIER)

MAX_PHONE_INPUT: Final = 32
_SEPARATORS = re.compile(r"[\s().\-/\u00a0\u3000]+")
_VN_COUNTRY_CODE: Final = 84


@dataclass(frozen=True, slots=True)
class Phone:
    """A valid number in E.164 (``+84912345678``)."""

    e164: str

    @property
    def carrier(self) -> str:
        """The original network by number range (one of :data:`CARRIERS`).

        Numbers can be ported between networks since 2018, so this is the range holder, which
        is what telcos' own reports use too.
        """
        return carrier_of(self.e164)


def _vietnamese_significant_number(digits: str) -> str | None:
    """The national significant number for a Vietnamese-looking digit string, else None."""
    if digits.startswith("0084"):
        significant = digits[4:]
    elif digits.startswith("84") and len(digits) in (11, 12):
        significant = digits[2:]
    elif digits.startswith("0") and not digits.startswith("00"):
        significant = digits[1:]
    elif len(digits) == 9 or (len(digits) == 10 and digits[:3] in OLD_MOBILE_PREFIXES):
        significant = digits
    else:
        return None
    if len(significant) == 10 and significant[:3] in OLD_MOBILE_PREFIXES:
        significant = OLD_MOBILE_PREFIXES[significant[:3]] + significant[3:]
    return significant


def normalise_phone(raw: str) -> Phone | None:
    """``raw`` as E.164 if it is a valid number (region VN by default), else None. Never raises."""
    if not raw or len(raw) > MAX_PHONE_INPUT:
        return None
    text = raw if raw.isdigit() else _SEPARATORS.sub("", raw.strip())
    international = text.startswith("+")
    digits = text[1:] if international else text
    if not digits.isascii() or not digits.isdigit():
        return None
    if international and not digits.startswith("84"):
        return _normalise_foreign(text)
    significant = _vietnamese_significant_number(digits)
    if significant is None or not significant.isdigit() or len(significant) > 10:
        return None
    if not _is_valid_vietnamese(significant):
        return None
    return Phone(f"+84{significant}")


def _mobile_pattern() -> re.Pattern[str] | None:
    """libphonenumber's own VN mobile pattern, to skip its slower generic type detection."""
    metadata = PhoneMetadata.metadata_for_region("VN")
    if metadata is None or metadata.mobile is None or not metadata.mobile.national_number_pattern:
        return None
    return re.compile(metadata.mobile.national_number_pattern)


_VN_MOBILE: Final = _mobile_pattern()


def _is_valid_vietnamese(significant: str) -> bool:
    if significant.startswith("0"):
        return False
    if _VN_MOBILE is not None and len(significant) == 9 and _VN_MOBILE.fullmatch(significant):
        return True  # a mobile number, valid by the same metadata is_valid_number uses
    number = phonenumbers.PhoneNumber(
        country_code=_VN_COUNTRY_CODE, national_number=int(significant)
    )
    return bool(phonenumbers.is_valid_number(number))


def _normalise_foreign(text: str) -> Phone | None:
    try:
        number = phonenumbers.parse(text, None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return Phone(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


def _longest_carrier_prefix(country_code: str) -> int:
    """How many leading E.164 digits phonenumbers' carrier data can look at for a country.

    ``carrier.name_for_valid_number`` tries the number's E.164 digits longest prefix first
    against ``carrierdata.CARRIER_DATA``; only keys that start with the country code (or are
    a prefix of it) can ever match, so numbers that share this many leading digits get the
    same carrier name.
    """
    return max(
        (
            len(key)
            for key in CARRIER_DATA
            if key.startswith(country_code) or country_code.startswith(key)
        ),
        default=0,
    )


_VN_CARRIER_PREFIX: Final = _longest_carrier_prefix(str(_VN_COUNTRY_CODE))
_CARRIER_TYPES: Final = frozenset(
    {PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE, PhoneNumberType.PAGER}
)
"""The number types phonenumbers looks a carrier up for (``carrier.name_for_number``)."""
_carrier_by_prefix: dict[str, str] = {}  # at most one entry per carrier-data prefix


def carrier_of(e164: str) -> str:
    """The bounded carrier label for an E.164 number (``other`` when unknown or foreign).

    Exactly what ``phonenumbers.carrier.name_for_number`` says, without its cost for every
    new citizen (one per message): a Vietnamese number is built directly instead of parsed,
    its type is checked as phonenumbers checks it, and the name is looked up once per
    carrier-data prefix (:func:`_longest_carrier_prefix`) rather than once per number.
    """
    national = e164[3:]
    if not (e164.startswith("+84") and national.isascii() and national.isdigit()):
        return _carrier_of_parsed(e164)
    if national[0] == "0":  # not a national significant number: phonenumbers' parse decides
        return _carrier_of_parsed(e164)
    number = phonenumbers.PhoneNumber(country_code=_VN_COUNTRY_CODE, national_number=int(national))
    if phonenumbers.number_type(number) not in _CARRIER_TYPES:
        return OTHER_CARRIER
    prefix = e164[1 : 1 + _VN_CARRIER_PREFIX]
    label = _carrier_by_prefix.get(prefix)
    if label is None:
        name = phonenumbers_carrier.name_for_valid_number(number, "en")
        label = _carrier_by_prefix[prefix] = _carrier_label(name)
    return label


@lru_cache(maxsize=4096)
def _carrier_of_parsed(e164: str) -> str:
    """Any other number (foreign ones are rare here), the long way."""
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return OTHER_CARRIER
    return _carrier_label(phonenumbers_carrier.name_for_number(number, "en"))


def _carrier_label(name: str) -> str:
    return CARRIER_LABELS.get(name.strip().lower(), OTHER_CARRIER)


def mask_phone(e164: str | None) -> str:
    """For logs: keep the country code and the last three digits (``+84******678``)."""
    if not e164:
        return "-"
    keep = 3 if e164.startswith("+84") else 1
    return e164[:keep] + "*" * max(len(e164) - keep - 3, 0) + e164[-3:]
