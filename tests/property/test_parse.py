"""Invariants of the citizens' text parser, over generated text.

``parse`` must answer every message (a command or a help reply, never an exception), must find
a code however a phone dressed it up, and must agree with ``normalise_code`` about what a code
is, since SMS and the keypad/CLI reach the same reset.
"""

from __future__ import annotations

from hypothesis import example, given
from hypothesis import strategies as st

from commands.parse import Help, ResetCommand, _fold_unicode, fold, normalise_code, parse
from commands.replies import SMS_TEMPLATES

DIGITS = "0123456789"
FULL_WIDTH_OFFSET = 0xFEE0  # "０" is "0" + this, likewise for ASCII letters
VIETNAMESE_TONE_MARKS = "\u0300\u0301\u0303\u0309\u0323"  # huyền, sắc, ngã, hỏi, nặng
INVISIBLES = "\u200b\u200c\u200d\u2060\ufeff\u00ad"
PART_SEPARATORS = " \t\r\n:.,-<>\u00a0\u3000\u202f\u2013\uff1a"
GROUP_SEPARATORS = [" ", "  ", ".", "-", "\u00a0", "\u3000", " . ", "\t", "\n"]

codes = st.text(alphabet=DIGITS, min_size=10, max_size=10)
separators = st.text(alphabet=PART_SEPARATORS, max_size=4)
nonempty_separators = st.text(alphabet=PART_SEPARATORS, min_size=1, max_size=4)

# Text that often looks like a command: keywords, digits, separators, marks and odd characters.
near_commands = st.text(
    alphabet=st.sampled_from(
        list("BHMKbhmkDN0123456789 :.,-<>\t\n")
        + list("ＢＨＭＫ０１２３\u00a0\u3000\u2013Ķḿ")
        + list(VIETNAMESE_TONE_MARKS + INVISIBLES)
        + ["\ud800", "\x00", "\x1b", "ß", "Đ", "㏎", "٣"]
    ),
    max_size=60,
)
any_text = st.one_of(
    st.text(max_size=2_000), near_commands, near_commands.map(lambda rest: "BH MK " + rest)
)


@st.composite
def dressed_char(draw: st.DrawFn, char: str) -> str:
    """``char`` in random case, maybe full-width, maybe with a tone mark."""
    if char.isalpha():
        char = draw(st.sampled_from((char.upper(), char.lower())))
    if draw(st.booleans()):
        char = chr(ord(char) + FULL_WIDTH_OFFSET)
    if char.isalpha() and draw(st.booleans()):
        char += draw(st.sampled_from(VIETNAMESE_TONE_MARKS))
    return char


@st.composite
def dressed_word(draw: st.DrawFn, word: str) -> str:
    return "".join(draw(dressed_char(char)) for char in word)


@st.composite
def grouped(draw: st.DrawFn, digits: str) -> str:
    """``digits`` dressed and cut into groups joined by grouping separators."""
    cuts = sorted(draw(st.sets(st.integers(1, len(digits) - 1), max_size=3)))
    pieces = [
        digits[start:end] for start, end in zip([0, *cuts], [*cuts, len(digits)], strict=True)
    ]
    out = draw(dressed_word(pieces[0]))
    for piece in pieces[1:]:
        out += draw(st.sampled_from(GROUP_SEPARATORS)) + draw(dressed_word(piece))
    return out


@st.composite
def typed_codes(draw: st.DrawFn) -> tuple[str, str]:
    """(code, how it was typed): 10 digits, or a card number ending in them."""
    code = draw(codes)
    if not draw(st.booleans()):
        return code, draw(grouped(code))
    letters = draw(st.text(alphabet="ABCDEGHKNQSTVX", min_size=2, max_size=2))
    level_and_province = draw(st.text(alphabet=DIGITS, min_size=3, max_size=3))
    gap = draw(st.sampled_from(["", " ", "."]))
    return code, draw(dressed_word(letters)) + gap + draw(grouped(level_and_province + code))


@st.composite
def sprinkled(draw: st.DrawFn, text: str) -> str:
    """``text`` with zero-width and other invisible characters inserted anywhere."""
    for _ in range(draw(st.integers(0, 3))):
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.sampled_from(INVISIBLES)) + text[at:]
    return text


@st.composite
def dressed_commands(draw: st.DrawFn) -> tuple[str, str]:
    """(code, a whole BH MK message carrying it as phones and people send it)."""
    code, typed = draw(typed_codes())
    words = st.one_of(st.text(max_size=30), st.text(alphabet=DIGITS, min_size=1, max_size=12))
    trailing = draw(st.one_of(st.just(""), st.tuples(nonempty_separators, words)))
    message = (
        draw(separators)
        + draw(dressed_word("BH"))
        + draw(separators)
        + draw(dressed_word("MK"))
        + draw(separators)
        + typed
        + "".join(trailing)
    )
    return code, draw(sprinkled(message))


@given(any_text)
def test_parse_answers_every_text_with_a_command_or_a_renderable_help(text: str) -> None:
    result = parse(text)
    if isinstance(result, ResetCommand):
        assert len(result.code) == 10
        assert all(char in DIGITS for char in result.code)
    else:
        assert isinstance(result, Help)
        assert result.template in {"help", "help_code_length"}
        assert result.template in SMS_TEMPLATES


@given(dressed_commands())
def test_a_code_dressed_in_tolerated_noise_parses_to_that_code(case: tuple[str, str]) -> None:
    code, message = case
    result = parse(message)
    assert isinstance(result, ResetCommand), (message, result)
    assert result.code == code


@given(typed_codes(), separators, separators)
def test_normalise_code_reads_a_code_typed_alone_as_parse_reads_it(
    case: tuple[str, str], before: str, after: str
) -> None:
    code, typed = case
    assert normalise_code(before + typed + after) == code
    result = parse("BH MK " + typed)
    assert isinstance(result, ResetCommand)
    assert result.code == code


@given(st.one_of(typed_codes().map(lambda case: case[1]), st.text(max_size=200), near_commands))
def test_whatever_normalise_code_accepts_parse_accepts_after_bh_mk(raw: str) -> None:
    code = normalise_code(raw)
    if code is not None:
        result = parse("BH MK " + raw)
        assert isinstance(result, ResetCommand)
        assert result.code == code


@given(st.one_of(dressed_commands().map(lambda case: case[1]), any_text))
def test_the_code_received_reads_back_to_the_same_code(message: str) -> None:
    result = parse(message)
    if isinstance(result, ResetCommand):
        assert normalise_code(result.code_received) == result.code


@given(st.text(alphabet=st.characters(max_codepoint=127), max_size=40))
@example("".join(map(chr, range(128))))
def test_folding_ascii_text_takes_a_shortcut_to_the_same_result(text: str) -> None:
    assert fold(text) == _fold_unicode(text)


@given(codes)
def test_a_code_of_ten_ascii_digits_is_its_own_normal_form(code: str) -> None:
    assert normalise_code(code) == code
    full_width_first = chr(ord(code[0]) + FULL_WIDTH_OFFSET) + code[1:]  # the long way
    assert normalise_code(full_width_first) == code
