"""The carrier label of a number is exactly what phonenumbers says, however it is computed.

:func:`commands.phone.carrier_of` builds Vietnamese numbers itself and looks carrier names up
once per carrier-data prefix; these tests hold it to the long way (``phonenumbers.parse`` and
``carrier.name_for_number`` on every number), over every national prefix phonenumbers' data
can distinguish and over generated numbers of every length.
"""

from __future__ import annotations

import random

import phonenumbers
from hypothesis import given
from hypothesis import strategies as st
from phonenumbers import carrier

from commands.phone import CARRIER_LABELS, CARRIERS, OTHER_CARRIER, carrier_of, normalise_phone


def reference(e164: str) -> str:
    """The label straight from phonenumbers, with no shortcut and no cache."""
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return OTHER_CARRIER
    name = carrier.name_for_number(number, "en")
    return CARRIER_LABELS.get(name.strip().lower(), OTHER_CARRIER)


def test_every_three_digit_national_prefix_at_every_length_agrees_with_phonenumbers() -> None:
    # Vietnam's carrier prefixes are at most 5 E.164 digits ("84" and three more); every
    # national length from too short to too long, with seeded random remaining digits.
    rng = random.Random(8079)
    seen: set[str] = set()
    for prefix in range(100, 1000):
        for length in range(3, 13):
            for _ in range(3):
                rest = "".join(rng.choice("0123456789") for _ in range(length - 3))
                e164 = f"+84{prefix}{rest}"
                label = carrier_of(e164)
                assert label == reference(e164), e164
                seen.add(label)
    assert seen == set(CARRIERS)  # the sample reached every carrier, and "other"


@given(st.text(alphabet="0123456789", min_size=0, max_size=14))
def test_any_digits_after_plus_84_agree_with_phonenumbers(national: str) -> None:
    e164 = "+84" + national
    assert carrier_of(e164) == reference(e164)


@given(st.text(alphabet="0123456789", min_size=9, max_size=10))
def test_every_valid_vietnamese_number_agrees_with_phonenumbers(digits: str) -> None:
    phone = normalise_phone("0" + digits)
    if phone is not None:
        assert phone.carrier == reference(phone.e164)


@given(st.sampled_from(["+1", "+44", "+65", "+856", "+8"]), st.text("0123456789", max_size=12))
def test_foreign_numbers_agree_with_phonenumbers(country: str, national: str) -> None:
    e164 = country + national
    assert carrier_of(e164) == reference(e164)
