"""Account import: streaming, idempotent, and precise about what it rejects."""

from __future__ import annotations

import io
import unicodedata
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from store.importer import (
    UNCLOSED_QUOTE,
    RejectedRow,
    UnreadableFileError,
    import_accounts,
    read_accounts,
)
from store.models import AccountRow

HEADER = "ma_so_bhxh,ho_ten,so_dien_thoai,email,da_dang_ky_gddt\n"
NOW = datetime(2026, 11, 22, tzinfo=UTC)


def run_import(engine: Engine, text: str, batch_size: int = 2) -> tuple[object, list[RejectedRow]]:
    rejects: list[RejectedRow] = []
    summary = import_accounts(
        engine,
        read_accounts(io.StringIO(text)),
        NOW,
        on_reject=rejects.append,
        batch_size=batch_size,
    )
    return summary, rejects


def import_file(engine: Engine, path: Path) -> tuple[object, list[RejectedRow]]:
    """Import ``path`` opened as ``accounts import`` opens it (bytes kept, line ends untouched)."""
    rejects: list[RejectedRow] = []
    with path.open(encoding="utf-8", newline="", errors="surrogateescape") as handle:
        summary = import_accounts(
            engine, read_accounts(handle), NOW, on_reject=rejects.append, batch_size=1000
        )
    return summary, rejects


def good_line(index: int) -> str:
    return f"{index:010d},Nguyễn Văn An,09{index:08d},,1"


def rows(engine: Engine) -> dict[str, AccountRow]:
    with engine.connect() as connection:
        return {row.ma_so_bhxh: row for row in connection.execute(sa.select(AccountRow.__table__))}  # type: ignore[misc]


def test_valid_rows_are_normalised_and_stored(engine: Engine) -> None:
    decomposed = unicodedata.normalize("NFD", "Trần Thị Bích Ngọc")
    text = (
        HEADER
        + "0123456789,Nguyễn Văn An,0912345678,an@example.vn,1\n"
        + f"0123456780,{decomposed},+84 91 234 5679,,0\n"
        + "0123456781,  Lê   Văn  Cường ,01621234567,,có\n"
    )
    summary, rejects = run_import(engine, text)

    assert (summary.imported, summary.updated, summary.rejected) == (3, 0, 0) and not rejects
    stored = rows(engine)
    assert stored["0123456789"].phone == "+84912345678" and stored["0123456789"].registered
    assert stored["0123456780"].name == "Trần Thị Bích Ngọc"  # NFC, as typed elsewhere
    assert stored["0123456780"].email is None and not stored["0123456780"].registered
    assert stored["0123456781"].name == "Lê Văn Cường"
    assert stored["0123456781"].phone == "+84321234567"  # old Viettel prefix 0162 -> 032


def test_reimporting_updates_and_never_duplicates(engine: Engine) -> None:
    run_import(engine, HEADER + "0123456789,Nguyễn Văn An,0912345678,,1\n")

    summary, _ = run_import(engine, HEADER + "0123456789,Nguyễn Văn Anh,0987654321,,0\n")

    assert (summary.imported, summary.updated) == (0, 1)
    stored = rows(engine)
    assert len(stored) == 1
    assert (
        stored["0123456789"].name == "Nguyễn Văn Anh"
        and stored["0123456789"].phone == "+84987654321"
    )


def test_a_later_line_for_the_same_code_wins_within_one_batch(engine: Engine) -> None:
    text = HEADER + "0123456789,First,0912345678,,1\n0123456789,Second,0912345678,,1\n"
    summary, _ = run_import(engine, text, batch_size=10)

    assert (summary.imported, summary.updated) == (1, 1)
    assert rows(engine)["0123456789"].name == "Second"


def test_import_never_touches_passwords(engine: Engine) -> None:
    run_import(engine, HEADER + "0123456789,An,0912345678,,1\n")
    with engine.begin() as connection:
        connection.execute(sa.update(AccountRow).values(password_hash="$argon2id$kept"))

    run_import(engine, HEADER + "0123456789,An,0912345678,,1\n")

    assert rows(engine)["0123456789"].password_hash == "$argon2id$kept"


def test_each_bad_row_is_rejected_with_its_line_and_reason_and_the_rest_imported(
    engine: Engine,
) -> None:
    text = (
        HEADER
        + "012345678,Short Code,0912345678,,1\n"  # line 2
        + "0123456789,,0912345678,,1\n"  # line 3
        + "0123456788,Bad Phone,12345,,1\n"  # line 4
        + "0123456787,Bad Mail,0912345678,not-an-email,1\n"  # line 5
        + "0123456786,Bad Flag,0912345678,,maybe\n"  # line 6
        + "0123456785,Too,Many,Fields,1,2\n"  # line 7
        + '"0123456784","Quoted, With Comma",0912345678,,1\n'  # line 8: valid
    )
    summary, rejects = run_import(engine, text)

    assert (summary.imported, summary.rejected) == (1, 6)
    assert [(r.line, r.reason) for r in rejects] == [
        (2, "ma_so_bhxh must be exactly 10 digits"),
        (3, "ho_ten is empty"),
        (4, "so_dien_thoai is not a valid phone number"),
        (5, "email is not a valid address"),
        (6, "da_dang_ky_gddt must be 1/0 (or true/false, co/khong)"),
        (7, "expected 5 fields, found 6"),
    ]
    assert rows(engine)["0123456784"].name == "Quoted, With Comma"


def test_columns_may_come_in_any_order(engine: Engine) -> None:
    text = "da_dang_ky_gddt,email,so_dien_thoai,ho_ten,ma_so_bhxh\n1,,0912345678,An,0123456789\n"
    summary, _ = run_import(engine, text)

    assert summary.imported == 1 and rows(engine)["0123456789"].phone == "+84912345678"


def test_import_times_are_stored_as_the_models_store_them(engine: Engine) -> None:
    on_the_second = datetime(2026, 11, 22, 8, 0, 0, tzinfo=UTC)
    import_accounts(
        engine, read_accounts(io.StringIO(HEADER + "0123456789,An,0912345678,,1\n")), on_the_second
    )

    with engine.connect() as connection:
        stored = connection.execute(sa.select(AccountRow.created_at)).scalar_one()
        if engine.dialect.name == "sqlite":  # the text must be what SQLAlchemy itself writes
            raw = connection.exec_driver_sql("SELECT created_at FROM accounts").scalar_one()
            assert raw == "2026-11-22 08:00:00.000000"
    assert stored == on_the_second


def test_an_unclosed_quote_loses_only_its_own_line(engine: Engine, tmp_path: Path) -> None:
    # One reader over the whole file ran on from the stray quote for about 3,360 lines (up to
    # csv's field size limit) and reported them all as one rejected row.
    lines = [good_line(index) for index in range(5000)]
    lines.insert(1000, '0999999999,"Trần Thị Bình,0987654321,binh@example.vn,1')  # line 1002
    path = tmp_path / "accounts.csv"
    path.write_text(HEADER + "\n".join(lines) + "\n", encoding="utf-8")

    summary, rejects = import_file(engine, path)

    assert (summary.imported, summary.updated, summary.rejected) == (5000, 0, 1)
    assert [(r.line, r.reason) for r in rejects] == [(1002, UNCLOSED_QUOTE)]
    assert rejects[0].fields == ("0999999999", "Trần Thị Bình,0987654321,binh@example.vn,1")
    stored = rows(engine)
    assert "0999999999" not in stored
    assert stored[f"{1000:010d}"].phone == "+84900001000"  # the line right after it


def test_line_numbers_stay_right_with_a_bom_and_crlf_line_ends(
    engine: Engine, tmp_path: Path
) -> None:
    text = (
        "\ufeff"
        + HEADER
        + good_line(1)
        + "\n"
        + "12345,Sai Mã,0912345678,,1\n"  # line 3
        + '0123456788,"Unclosed,0912345678,,1\n'  # line 4
        + "\n"  # line 5: blank, skipped
        + good_line(2)
        + "\n"
        + '0123456787,"Last line, no newline'  # line 7
    )
    path = tmp_path / "accounts.csv"
    path.write_bytes(text.replace("\n", "\r\n").removesuffix("\r\n").encode("utf-8"))

    summary, rejects = import_file(engine, path)

    assert (summary.imported, summary.rejected) == (2, 3)
    assert [(r.line, r.reason) for r in rejects] == [
        (3, "ma_so_bhxh must be exactly 10 digits"),
        (4, UNCLOSED_QUOTE),
        (7, UNCLOSED_QUOTE),
    ]
    assert rejects[1].fields == ("0123456788", "Unclosed,0912345678,,1")  # no line end kept


def test_closed_quotes_and_quotes_inside_a_field_still_import(engine: Engine) -> None:
    text = (
        HEADER
        + '0123456789,"Lê ""Bé"" Văn",0912345678,,1\n'
        + '0123456788,Phạm "Út" Dung,0912345679,,1\n'
        + '"0123456787","Đặng, Minh","0912345670","","1"\n'
    )
    summary, rejects = run_import(engine, text)

    assert (summary.imported, summary.rejected) == (3, 0) and not rejects
    stored = rows(engine)
    assert stored["0123456789"].name == 'Lê "Bé" Văn'
    assert stored["0123456788"].name == 'Phạm "Út" Dung'
    assert stored["0123456787"].name == "Đặng, Minh"


def test_an_unclosed_quote_in_the_header_makes_the_file_unreadable() -> None:
    text = '"ma_so_bhxh,ho_ten,so_dien_thoai,email,da_dang_ky_gddt\n0123456789,An,0912345678,,1\n'

    with pytest.raises(UnreadableFileError, match="unclosed quote in the header"):
        next(read_accounts(io.StringIO(text)))
