"""AGI command lines and replies, as Asterisk 22 writes and reads them."""

from __future__ import annotations

import pytest

from ivr import agi
from ivr.agi import AgiCommandError, AgiReplyError, AgiResult


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("200 result=0\n", AgiResult(200, "0")),
        ("200 result=56 endpos=16960\n", AgiResult(200, "56", endpos=16960)),
        ("200 result=-1 endpos=26400\n", AgiResult(200, "-1", endpos=26400)),
        ("200 result=0123456789\n", AgiResult(200, "0123456789")),
        ("200 result=01234 (timeout)\n", AgiResult(200, "01234", timeout=True)),
        ("200 result= (timeout)\n", AgiResult(200, "", timeout=True)),
        ("200 result=1 (vi 0912345678)\n", AgiResult(200, "1", data="vi 0912345678")),
        ("200 result=1 ()\n", AgiResult(200, "1", data="")),
        ("510 Invalid or unknown command\n", AgiResult(510)),
        ("511 Command Not Permitted on a dead channel or intercept routine\n", AgiResult(511)),
    ],
)
def test_replies_are_decoded(reply: str, expected: AgiResult) -> None:
    assert dataclasses_equal(agi.parse_result(reply), expected)


def dataclasses_equal(got: AgiResult, want: AgiResult) -> bool:
    return (got.code, got.result, got.endpos, got.timeout, got.data) == (
        want.code,
        want.result,
        want.endpos,
        want.timeout,
        want.data,
    )


def test_usage_reply_spans_several_lines() -> None:
    encoded = (
        "520-Invalid%20command%20syntax.%20%20Proper%20usage%20follows%3A%0AStream%20the%20given"
        "%20%3Creplaceable%3Efile%3C%2Freplaceable%3E%2C%20and%20receive%20DTMF%20data.%0A"
        "520%20End%20of%20proper%20usage.%0A"
    )
    result = agi.decode_result(encoded)
    assert result.code == agi.USAGE and not result.ok
    assert "<replaceable>file</replaceable>" in result.text


def test_hang_up_and_keys() -> None:
    assert agi.parse_result("200 result=-1\n").hung_up
    assert agi.parse_result("511 dead\n").hung_up
    assert agi.parse_result("200 result=56 endpos=1\n").digit == "8"
    assert agi.parse_result("200 result=35\n").digit == "#"
    assert agi.parse_result("200 result=0\n").digit is None
    with pytest.raises(AgiReplyError):
        _ = agi.parse_result("200 result=9999\n").digit


@pytest.mark.parametrize(
    "reply",
    [
        "",
        "\n",
        "hello\n",
        "200 endpos=1\n",
        "200 result=1 junk\n",
        "520-unterminated\n",
        "200 result=1\n200 result=2\n",
    ],
)
def test_malformed_replies_are_a_typed_error(reply: str) -> None:
    with pytest.raises(AgiReplyError):
        agi.parse_result(reply)


def test_result_is_percent_decoded_without_plus_for_space() -> None:
    assert agi.decode_result("200%20result%3D1%20(a+b)%0A").data == "a+b"


def test_env_is_decoded_from_the_recorded_form() -> None:
    env = agi.parse_env(
        "agi_request%3A%20async%0Aagi_channel%3A%20Local%2F19009068%40hotline-00000000%3B2%0A"
        "agi_callerid%3A%200912345678%0Aagi_callingpres%3A%2033%0Aagi_accountcode%3A%20%0A%0A"
    )
    assert env == {
        "agi_request": "async",
        "agi_channel": "Local/19009068@hotline-00000000;2",
        "agi_callerid": "0912345678",
        "agi_callingpres": "33",
        "agi_accountcode": "",
    }


def test_commands_quote_as_asterisk_reads_them() -> None:
    assert agi.stream_file("vssid/menu", "0123456789*#") == 'STREAM FILE vssid/menu "0123456789*#"'
    assert agi.stream_file("vssid/goodbye") == 'STREAM FILE vssid/goodbye ""'
    assert agi.say_digits("4829175") == 'SAY DIGITS 4829175 ""'
    assert agi.get_data("vssid/enter-code", 6000, 10) == "GET DATA vssid/enter-code 6000 10"
    assert agi.exec_application("Goto", "hotline-agents,s,1") == "EXEC Goto hotline-agents,s,1"
    assert agi.set_variable("X", 'a "b"') == 'SET VARIABLE X "a \\"b\\""'
    assert agi.set_variable("TIMEOUT(absolute)", "300") == "SET VARIABLE TIMEOUT(absolute) 300"
    assert agi.quote("") == '""' and agi.quote("a b") == '"a b"'


@pytest.mark.parametrize(
    "build",
    [
        lambda: agi.stream_file("../etc/passwd"),
        lambda: agi.stream_file("menu", "x"),
        lambda: agi.say_digits("12a"),
        lambda: agi.quote("a\nHANGUP"),
        lambda: agi.command("lower"),
        lambda: agi.get_data("f", 0, 10),
        lambda: agi.set_variable("TIMEOUT(absolute) 0", "1"),
        lambda: agi.set_variable("X(${Y})", "1"),
    ],
)
def test_unsafe_commands_are_refused(build: object) -> None:
    with pytest.raises(AgiCommandError):
        build()  # type: ignore[operator]
