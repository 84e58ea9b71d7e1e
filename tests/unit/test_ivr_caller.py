"""Who is calling: decided by the presentation, not by the number's shape."""

from __future__ import annotations

import pytest

from ivr.caller import CallerStatus, caller_from_env
from ivr.records import mask_code


@pytest.mark.parametrize(
    ("callerid", "pres", "status", "e164"),
    [
        ("0912345678", "0", CallerStatus.OK, "+84912345678"),
        ("84912345678", "1", CallerStatus.OK, "+84912345678"),
        ("0912345678", "33", CallerStatus.WITHHELD, None),  # number visible but prohibited
        ("0912345678", "32", CallerStatus.WITHHELD, None),
        ("unknown", "67", CallerStatus.NO_NUMBER, None),
        ("anonymous", "0", CallerStatus.NO_NUMBER, None),
        ("", "0", CallerStatus.NO_NUMBER, None),
        ("12345", "0", CallerStatus.INVALID, None),
        ("0912345678", "", CallerStatus.OK, "+84912345678"),
    ],
)
def test_caller_classification(
    callerid: str, pres: str, status: CallerStatus, e164: str | None
) -> None:
    caller = caller_from_env({"agi_callerid": callerid, "agi_callingpres": pres})
    assert (caller.status, caller.e164, caller.received) == (status, e164, callerid)


def test_codes_are_masked_to_their_last_two_keys() -> None:
    assert mask_code("0123456789") == "********89"
    assert mask_code("12") == "**" and mask_code("") == ""
