"""Phone normalisation: every shape of one subscriber is the same E.164 number."""

from __future__ import annotations

import pytest

from commands.phone import OLD_MOBILE_PREFIXES, carrier_of, mask_phone, normalise_phone


@pytest.mark.parametrize(
    "raw",
    [
        "0912345678",
        "84912345678",
        "+84912345678",
        "+84 91 234 5678",
        "(091) 234-5678",
        "091.234.5678",
        "0084912345678",
        "912345678",
        "\u00a00912 345 678\t",
    ],
)
def test_the_same_subscriber_in_every_common_shape(raw: str) -> None:
    phone = normalise_phone(raw)
    assert phone is not None and phone.e164 == "+84912345678"


@pytest.mark.parametrize(("old", "new"), sorted(OLD_MOBILE_PREFIXES.items()))
def test_every_pre_2018_eleven_digit_prefix_maps_to_its_ten_digit_successor(
    old: str, new: str
) -> None:
    expected = f"+84{new}1234567"
    for shape in (f"0{old}1234567", f"84{old}1234567", f"+84{old}1234567", f"{old}1234567"):
        phone = normalise_phone(shape)
        assert phone is not None and phone.e164 == expected, shape


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "abc",
        "091234567",
        "09123456789",
        "0521234567",
        "+84",
        "0" * 40,
        "０９１２３４５６７８",
        "+1 415 555 26710",
    ],
    ids=[
        "empty",
        "letters",
        "too-short",
        "too-long",
        "unassigned-range",
        "prefix-only",
        "oversized-input",
        "full-width-digits",
        "invalid-foreign",
    ],
)
def test_what_is_not_a_valid_number_is_rejected_without_raising(raw: str) -> None:
    assert normalise_phone(raw) is None


def test_valid_foreign_numbers_are_kept_in_e164() -> None:
    phone = normalise_phone("+1 415 555 2671")
    assert phone is not None and phone.e164 == "+14155552671" and phone.carrier == "other"


@pytest.mark.parametrize(
    ("number", "carrier"),
    [
        ("+84961234567", "Viettel"),
        ("+84321234567", "Viettel"),
        ("+84912345678", "VinaPhone"),
        ("+84812345678", "VinaPhone"),
        ("+84901234567", "MobiFone"),
        ("+84701234567", "MobiFone"),
        ("+84921234567", "Vietnamobile"),
        ("+84561234567", "Vietnamobile"),
        ("+84591234567", "Gmobile"),
        ("+842438261234", "other"),
    ],
)
def test_carrier_labels_are_the_bounded_set_operators_count_by(number: str, carrier: str) -> None:
    assert carrier_of(number) == carrier


def test_masking_keeps_only_the_country_code_and_last_three_digits() -> None:
    assert mask_phone("+84912345678") == "+84******678"
    assert mask_phone(None) == "-"
