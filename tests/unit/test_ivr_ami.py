"""The AMI codec against Asterisk's real byte streams and its edge cases."""

from __future__ import annotations

from pathlib import Path

import pytest

from ivr import ami
from tests.fixtures import AMI as FIXTURES


def test_banner_is_one_line_without_an_empty_line_after_it() -> None:
    items = ami.Decoder().feed(b"Asterisk Call Manager/11.0.0\r\nResponse: Success\r\n\r\n")
    assert items[0] == ami.Banner("Asterisk Call Manager/11.0.0")
    assert isinstance(items[1], ami.Message) and items[1].response == "Success"


def test_repeated_keys_are_all_kept_in_order() -> None:
    [message] = ami.decode_all(
        b"Action: Originate\r\nVariable: A=1\r\nVariable: B=2\r\n\r\n", expect_banner=False
    )
    assert isinstance(message, ami.Message)
    assert message.get_all("variable") == ["A=1", "B=2"]
    assert message.get("Variable") == "A=1"


def test_keys_keep_their_case_and_are_looked_up_without_it() -> None:
    [message] = ami.decode_all(
        b"Event: AsyncAGIExec\r\nCommandId: cmd-1\r\n\r\n", expect_banner=False
    )
    assert isinstance(message, ami.Message)
    assert message.headers[1] == ("CommandId", "cmd-1")
    assert message["CommandID"] == "cmd-1" and "commandid" in message


def test_empty_values_and_colons_in_values_survive() -> None:
    [message] = ami.decode_all(b"AccountCode: \r\nData: a:b: c\r\n\r\n", expect_banner=False)
    assert isinstance(message, ami.Message)
    assert message.headers == (("AccountCode", ""), ("Data", "a:b: c"))
    assert message.encode() == b"AccountCode: \r\nData: a:b: c\r\n\r\n"


def test_follows_bodies_run_to_end_command() -> None:
    data = (
        b"Response: Follows\r\nPrivilege: Command\r\nActionID: 7\r\n"
        b"Name/username  Host\r\n2 sip peers\r\n--END COMMAND--\r\n\r\n"
    )
    [message] = ami.decode_all(data, expect_banner=False)
    assert isinstance(message, ami.Message)
    assert message.action_id == "7"
    assert message.body == ("Name/username  Host", "2 sip peers")
    assert message.encode() == data


@pytest.mark.parametrize(
    "stream",
    [b"HTTP/1.1 200 OK\r\n", b"Asterisk Call Manager/11.0.0\r\nno colon here\r\n"],
)
def test_what_is_not_ami_is_a_typed_error(stream: bytes) -> None:
    with pytest.raises(ami.AmiDecodeError):
        ami.Decoder().feed(stream)


def test_an_endless_line_is_refused() -> None:
    decoder = ami.Decoder(expect_banner=False)
    with pytest.raises(ami.AmiDecodeError):
        decoder.feed(b"Key: " + b"x" * (ami.MAX_LINE + 1))


@pytest.mark.parametrize(
    ("name", "value"),
    [("Bad\r\nKey", "v"), ("Key:", "v"), ("", "v"), ("Key", "a\r\nAction: Logoff")],
)
def test_encoding_refuses_header_injection(name: str, value: str) -> None:
    with pytest.raises(ami.AmiEncodeError):
        ami.encode([(name, value)])


def test_action_puts_action_id_second() -> None:
    assert ami.action("Ping", "vssid-1") == b"Action: Ping\r\nActionID: vssid-1\r\n\r\n"


@pytest.mark.parametrize("path", sorted(FIXTURES.glob("*.s2c.raw")), ids=lambda p: p.name)
def test_every_recorded_stream_decodes_and_reencodes_to_the_same_bytes(path: Path) -> None:
    data = path.read_bytes()
    decoder = ami.Decoder()
    items = [
        item
        for offset in range(0, len(data), 13)
        for item in decoder.feed(data[offset : offset + 13])
    ]
    assert not decoder.pending
    rebuilt = b"".join(
        (i.text + "\r\n").encode() if isinstance(i, ami.Banner) else i.encode() for i in items
    )
    assert rebuilt == data
