"""SMS replies: exact texts, GSM-7 only, and within the segments each template may use."""

from __future__ import annotations

import pytest

from commands.replies import (
    SMS_TEMPLATES,
    NotGsm7Error,
    Reply,
    ReplyTooLongError,
    render_sms,
    sms_segments,
)
from commands.secret import Secret

WORST_CASE_PARAMS = {"code": "9" * 10, "password": Secret("9" * 20), "limit": 999}


@pytest.mark.parametrize("template", sorted(SMS_TEMPLATES))
def test_every_template_fits_its_segment_budget_with_the_longest_parameters(template: str) -> None:
    text = render_sms(Reply(template, WORST_CASE_PARAMS))
    assert sms_segments(text) <= SMS_TEMPLATES[template].max_segments


def test_the_success_reply_is_worded_like_bhxhs_own_service() -> None:
    reply = Reply("reset_ok", {"code": "0123456789", "password": Secret("48291750")})
    assert (
        render_sms(reply) == "Cap lai mat khau thanh cong. Tai khoan: 0123456789/Mat khau: 48291750"
    )


def test_the_password_is_masked_everywhere_but_the_rendered_sms() -> None:
    password = Secret("48291750")
    reply = Reply("reset_ok", {"code": "0123456789", "password": password})
    assert (
        "48291750" not in repr(reply)
        and "48291750" not in f"{password}"
        and str(password) == "********"
    )


def test_extension_characters_cost_two_septets() -> None:
    assert sms_segments("a" * 160) == 1
    assert sms_segments("€" * 80) == 1
    assert sms_segments("€" * 81) == 2


def test_text_outside_gsm7_is_refused() -> None:
    with pytest.raises(NotGsm7Error):
        sms_segments("Cấp lại mật khẩu")


def test_a_reply_over_its_budget_fails_loudly() -> None:
    with pytest.raises(ReplyTooLongError):
        render_sms(Reply("reset_ok", {"code": "0" * 200, "password": "1"}))
