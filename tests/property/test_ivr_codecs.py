"""Invariants of the AMI and AGI codecs under arbitrary input."""

from __future__ import annotations

import contextlib
from urllib.parse import quote

from hypothesis import given, settings
from hypothesis import strategies as st

from ivr import agi, ami
from tests.fixtures import AMI as FIXTURES

STREAM = (FIXTURES / "happy-path.s2c.raw").read_bytes()
EXPECTED = ami.decode_all(STREAM)

keys = st.text(
    st.characters(min_codepoint=33, max_codepoint=126, exclude_characters=":"),
    min_size=1,
    max_size=20,
)
values = st.text(
    st.characters(exclude_categories=("Cs",), exclude_characters="\r\n"), max_size=40
)
messages = st.lists(st.tuples(keys, values), min_size=1, max_size=12)


@given(st.lists(st.integers(min_value=1, max_value=len(STREAM)), max_size=40))
def test_framing_does_not_depend_on_how_tcp_splits_the_stream(cuts: list[int]) -> None:
    decoder = ami.Decoder()
    items: list[ami.Item] = []
    start = 0
    for cut in [*sorted(set(cuts)), len(STREAM)]:
        items += decoder.feed(STREAM[start:cut])
        start = cut
    assert items == EXPECTED


@given(st.lists(messages, min_size=1, max_size=5), st.integers(min_value=1, max_value=64))
def test_encoded_messages_decode_back_with_every_key_kept(
    batch: list[list[tuple[str, str]]], size: int
) -> None:
    wire = b"".join(ami.encode(m) for m in batch)
    decoder = ami.Decoder(expect_banner=False)
    got = [item for i in range(0, len(wire), size) for item in decoder.feed(wire[i : i + size])]
    assert [m.headers for m in got if isinstance(m, ami.Message)] == [
        tuple((k, v) for k, v in m) for m in batch
    ]


@given(st.binary(max_size=400))
@settings(max_examples=300)
def test_decoder_fails_only_with_its_typed_error(data: bytes) -> None:
    with contextlib.suppress(ami.AmiDecodeError):
        ami.Decoder().feed(data)


@given(st.text(max_size=120))
@settings(max_examples=300)
def test_agi_reply_parser_fails_only_with_its_typed_error(text: str) -> None:
    with contextlib.suppress(agi.AgiReplyError):
        agi.decode_result(quote(text))


@given(
    st.integers(min_value=-1, max_value=255),
    st.one_of(st.none(), st.integers(min_value=0, max_value=10**7)),
    st.booleans(),
    st.one_of(st.none(), st.text(st.characters(exclude_categories=("Cs", "Cc")), max_size=20)),
)
def test_well_formed_replies_parse_to_their_parts(
    value: int, endpos: int | None, timeout: bool, data: str | None
) -> None:
    text = f"200 result={value}"
    if endpos is not None:
        text += f" endpos={endpos}"
    if timeout:
        text += " (timeout)"
    if data is not None and not timeout:
        text += f" ({data})"
    result = agi.decode_result(quote(text + "\n", safe="-_.!~*'()"))
    assert (result.number, result.endpos, result.timeout) == (value, endpos, timeout)
    assert result.data == (data if not timeout else None)


@given(
    st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\r\n\x00"), max_size=30)
)
def test_quoted_arguments_never_break_the_command_line(argument: str) -> None:
    quoted = agi.quote(argument)
    assert "\n" not in quoted and quoted
    if " " in argument or not argument:
        assert quoted.startswith('"') and quoted.endswith('"')
