"""What citizens really type for ``BH MK``, and what each shape must give.

Every case is synthetic (codes like 0123456789). An accepted case names the code it must yield;
a rejected one the exact :class:`Help` it must yield, since the help template is what the
citizen paid 1,000 VND to read.
"""

from __future__ import annotations

import unicodedata

import pytest

from commands.parse import MAX_INSPECTED_CHARS, Help, ResetCommand, fold, normalise_code, parse

CODE = "0123456789"
FULL_WIDTH_CODE = "０１２３４５６７８９"

ACCEPTED: list[tuple[str, str, str]] = [
    # (id, text, code)
    ("canonical", "BH MK 0123456789", CODE),
    ("another-code", "BH MK 9876543210", "9876543210"),
    ("lower-case", "bh mk 0123456789", CODE),
    ("autocapitalised-first-letters", "Bh Mk 0123456789", CODE),
    ("random-case", "bH mK 0123456789", CODE),
    ("no-spaces-at-all", "BHMK0123456789", CODE),
    ("no-space-before-code", "BH MK0123456789", CODE),
    ("no-space-between-keywords", "BHMK 0123456789", CODE),
    ("many-spaces", "BH  MK   0123456789", CODE),
    ("leading-and-trailing-spaces", "   BH MK 0123456789   ", CODE),
    ("tabs", "BH\tMK\t0123456789", CODE),
    ("newlines-between-parts", "BH\nMK\n0123456789", CODE),
    ("crlf-and-trailing-newline", "BH MK\r\n0123456789\r\n", CODE),
    ("non-breaking-spaces", "BH\u00a0MK\u00a00123456789", CODE),
    ("ideographic-full-width-spaces", "BH\u3000MK\u30000123456789", CODE),
    ("narrow-figure-and-thin-spaces", "BH\u202fMK\u2007\u20090123456789", CODE),
    ("zero-width-space-inside-keyword", "B\u200bH MK 0123456789", CODE),
    ("zero-width-joiners-inside-code", "BH MK 01234\u200d567\u200c89", CODE),
    ("byte-order-mark-first", "\ufeffBH MK 0123456789", CODE),
    ("bidi-marks-around", "\u200eBH MK 0123456789\u200f", CODE),
    ("soft-hyphen-inside-code", "BH MK 01234\u00ad56789", CODE),
    ("colon-after-keywords", "BH MK: 0123456789", CODE),
    ("colon-without-spaces", "BH MK:0123456789", CODE),
    ("dots-between-parts", "BH.MK.0123456789", CODE),
    ("hyphens-between-parts", "BH-MK-0123456789", CODE),
    ("commas-between-parts", "BH, MK, 0123456789", CODE),
    ("full-width-colon", "BH MK：0123456789", CODE),
    ("en-dash-from-autocorrect", "BH MK – 0123456789", CODE),
    ("em-dash-and-minus-sign", "BH—MK−0123456789", CODE),
    ("trailing-full-stop", "BH MK 0123456789.", CODE),
    ("leading-punctuation", "- BH MK 0123456789", CODE),
    ("angle-brackets-copied-from-help", "BH MK <0123456789>", CODE),
    ("digits-grouped-4-3-3-spaces", "BH MK 0123 456 789", CODE),
    ("digits-grouped-3-3-4-spaces", "BH MK 012 345 6789", CODE),
    ("digits-grouped-with-dots", "BH MK 0123.456.789", CODE),
    ("digits-grouped-with-hyphens", "BH MK 0123-456-789", CODE),
    ("digits-grouped-with-wide-gaps", "BH MK 01234   56789", CODE),
    ("full-width-digits", "BH MK " + FULL_WIDTH_CODE, CODE),
    ("half-and-full-width-digits-mixed", "BH MK 01234５６７８９", CODE),
    ("everything-full-width", "ＢＨ\u3000ＭＫ\u3000" + FULL_WIDTH_CODE, CODE),
    ("full-width-lower-case-letters", "ｂｈ ｍｋ 0123456789", CODE),
    ("trailing-thanks", "BH MK 0123456789 cam on", CODE),
    ("trailing-vietnamese-with-diacritics", "BH MK 0123456789 cảm ơn ạ", CODE),
    ("trailing-words-glued-to-code", "BH MK 0123456789camon", CODE),
    ("trailing-phone-number", "BH MK 0123456789 0912345678", CODE),
    ("grouped-code-then-phone-number", "BH MK 0123 456 789 0912 345 678", CODE),
    ("signature-on-next-line", "BH MK 0123456789\nNguyen Van A", CODE),
    ("trailing-hash-from-keypad-habit", "BH MK 0123456789#", CODE),
    ("trailing-emoji", "BH MK 0123456789 🙏", CODE),
    ("card-number", "BH MK DN4790123456789", CODE),
    ("card-number-lower-case", "bh mk dn4790123456789", CODE),
    ("card-number-grouped-as-printed", "BH MK DN 4 79 0123456789", CODE),
    ("card-number-grouped-with-dots", "BH MK GD4.79.0123456789", CODE),
    ("card-number-no-spaces-anywhere", "BHMKGD4790123456789", CODE),
    ("card-number-full-width", "BH MK ＤＮ４７９" + FULL_WIDTH_CODE, CODE),
    ("card-number-then-words", "BH MK HT3010123456789 xin cam on", CODE),
    ("card-number-other-code", "BH MK CH1799876543210", "9876543210"),
    ("keywords-with-precomposed-acutes", "BH ḾḰ 0123456789", CODE),
    ("keywords-with-combining-acutes", "BH M\u0301K\u0301 0123456789", CODE),
    ("keyword-with-cedilla", "BH MĶ 0123456789", CODE),
    ("keyword-with-combining-grave", "Bh Mk\u0300 0123456789", CODE),
    ("keywords-with-dot-below-tone-mark", "ḄḤ ṂḲ 0123456789", CODE),
    ("whole-message-decomposed-nfd", unicodedata.normalize("NFD", "BH MK 0123456789 cảm ơn"), CODE),
    ("kelvin-sign-for-k", "BH M\u212a 0123456789", CODE),
]

REJECTED: list[tuple[str, str, Help]] = [
    # (id, text, expected help)
    ("empty", "", Help()),
    ("only-whitespace", " \t\r\n\u00a0\u3000", Help()),
    ("asks-for-help", "Tro giup", Help()),
    ("question-in-vietnamese", "Lam sao lay lai mat khau?", Help()),
    ("only-first-keyword", "BH", Help()),
    ("keywords-without-code", "BH MK", Help()),
    ("keywords-then-words", "BH MK abc", Help()),
    ("help-template-copied-literally", "BH MK <Ma so BHXH>", Help()),
    ("keywords-swapped", "MK BH 0123456789", Help()),
    ("bhxh-instead-of-bh", "BHXH MK 0123456789", Help()),
    ("keyword-letters-split", "B H M K 0123456789", Help()),
    ("greeting-before-command", "Xin chao BH MK 0123456789", Help()),
    ("cyrillic-look-alikes", "ВН МК 0123456789", Help()),
    ("greek-look-alikes", "ΒΗ ΜΚ 0123456789", Help()),
    ("b-with-stroke-does-not-fold-to-b", "ƀH MK 0123456789", Help()),
    ("letter-o-for-zero", "BH MK O123456789", Help()),
    ("arabic-indic-digits", "BH MK ٠١٢٣٤٥٦٧٨٩", Help()),
    ("three-letter-prefix", "BH MK ABC0123456789", Help()),
    ("one-letter-prefix", "BH MK D4790123456789", Help()),
    ("mat-khau-spelled-out", "BH mat khau 0123456789", Help()),
    ("code-length-9", "BH MK 012345678", Help("help_code_length", "012345678")),
    ("code-length-11", "BH MK 01234567890", Help("help_code_length", "01234567890")),
    (
        "citizen-id-12-digits-instead",
        "BH MK 001234567890",
        Help("help_code_length", "001234567890"),
    ),
    ("grouped-digits-one-short", "BH MK 0123 456 78", Help("help_code_length", "0123 456 78")),
    (
        "group-overshooting-ten",
        "BH MK 012345 67890",
        Help("help_code_length", "012345 67890"),
    ),
    ("short-code-then-words", "BH MK 12345 cam on", Help("help_code_length", "12345")),
    ("full-width-9-digits", "BH MK ０１２３４５６７８", Help("help_code_length", "012345678")),
    (
        "card-digits-without-letters",
        "BH MK 4790123456789",
        Help("help_code_length", "4790123456789"),
    ),
    (
        "card-number-one-digit-short",
        "BH MK DN479012345678",
        Help("help_code_length", "DN479012345678"),
    ),
    (
        "card-number-one-digit-long",
        "BH MK DN47901234567890",
        Help("help_code_length", "DN47901234567890"),
    ),
    (
        "so-before-code-reads-as-card-prefix",
        "BH MK so 0123456789",
        Help("help_code_length", "SO 0123456789"),
    ),
]


@pytest.mark.parametrize(
    ("text", "code"), [pytest.param(text, code, id=id_) for id_, text, code in ACCEPTED]
)
def test_accepted_variant_yields_the_reset_command_for_its_code(text: str, code: str) -> None:
    result = parse(text)
    assert isinstance(result, ResetCommand), result
    assert result.code == code


@pytest.mark.parametrize(
    ("text", "expected"), [pytest.param(text, help_, id=id_) for id_, text, help_ in REJECTED]
)
def test_rejected_variant_yields_its_help_reply(text: str, expected: Help) -> None:
    assert parse(text) == expected


def test_the_table_covers_at_least_forty_real_looking_variants() -> None:
    ids = [case[0] for case in ACCEPTED] + [case[0] for case in REJECTED]
    assert len(ids) >= 40
    assert len(set(ids)) == len(ids)


@pytest.mark.parametrize(
    ("text", "received"),
    [
        pytest.param("BH MK 0123456789", "0123456789", id="plain"),
        pytest.param("BH MK 0123.456.789 cam on", "0123.456.789", id="grouping-kept"),
        pytest.param("BH MK 0123 - 456   789", "0123 456 789", id="separator-runs-shortened"),
        pytest.param("BH MK ０１２３４５６７８９", "0123456789", id="full-width-folded"),
        pytest.param("bh mk dn 4 79 0123456789", "DN 4 79 0123456789", id="card-as-typed"),
    ],
)
def test_code_received_quotes_the_code_as_typed_and_reads_back_to_the_code(
    text: str, received: str
) -> None:
    result = parse(text)
    assert result == ResetCommand(CODE, received)
    assert normalise_code(received) == CODE


def test_text_beyond_the_inspected_prefix_is_not_read() -> None:
    assert parse(" " * MAX_INSPECTED_CHARS + "BH MK 0123456789") == Help()


def test_a_command_at_the_start_of_a_huge_message_still_parses() -> None:
    assert parse("BH MK 0123456789 " + "x" * 1_000_000) == ResetCommand(CODE, CODE)


def test_a_very_long_digit_run_is_quoted_back_bounded() -> None:
    result = parse("BH MK " + "1" * 5_000)
    assert isinstance(result, Help)
    assert result.template == "help_code_length"
    assert result.code_received is not None
    assert 10 < len(result.code_received) <= 32


def test_fold_upper_cases_and_strips_marks_invisibles_and_exotic_spaces() -> None:
    assert fold("Cảm ơn\u00a0\u200bđã\u3000giúp\t–") == "CAM ON DA GIUP -"


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        pytest.param("0123456789", CODE, id="ten-digits"),
        pytest.param(" 0123456789\n", CODE, id="surrounding-whitespace"),
        pytest.param("0123 456 789", CODE, id="grouped-with-spaces"),
        pytest.param("0123.456.789", CODE, id="grouped-with-dots"),
        pytest.param(FULL_WIDTH_CODE, CODE, id="full-width-digits"),
        pytest.param("DN4790123456789", CODE, id="card-number"),
        pytest.param("dn4790123456789", CODE, id="card-number-lower-case"),
        pytest.param("DN 4 79 0123456789", CODE, id="card-number-grouped"),
        pytest.param("9876543210", "9876543210", id="another-code"),
        pytest.param("", None, id="empty"),
        pytest.param("012345678", None, id="nine-digits"),
        pytest.param("01234567890", None, id="eleven-digits"),
        pytest.param("4790123456789", None, id="card-digits-without-letters"),
        pytest.param("DN479012345678", None, id="card-number-one-digit-short"),
        pytest.param("ABC0123456789", None, id="three-letter-prefix"),
        pytest.param("O123456789", None, id="letter-o-for-zero"),
        pytest.param("٠١٢٣٤٥٦٧٨٩", None, id="arabic-indic-digits"),
        pytest.param("0123456789 cam on", None, id="trailing-words"),
        pytest.param("0123456789 0912345678", None, id="trailing-second-number"),
        pytest.param("BH MK 0123456789", None, id="whole-command-is-not-a-code"),
        pytest.param("0123456789*", None, id="keypad-star"),
    ],
)
def test_normalise_code_accepts_a_code_typed_alone(raw: str, code: str | None) -> None:
    assert normalise_code(raw) == code
