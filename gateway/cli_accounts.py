"""``vssid-gateway accounts import|show|add``: load and inspect the accounts BHXH registered.

``import`` streams a CSV of any size with a progress bar on a terminal and a summary at the
end; rejected rows go to ``--rejects`` with their line number and reason. The exit status is 0
whenever the file was processed (rejected rows included) and 1 only when it could not be read.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, TextIO

from tqdm import tqdm

from commands.parse import normalise_code
from commands.phone import carrier_of
from commands.ports import Account
from gateway.components import open_store
from gateway.config import Settings
from store.db import create_engine
from store.importer import (
    COLUMNS,
    RejectedRow,
    UnreadableFileError,
    import_accounts,
    read_accounts,
    record_from_fields,
)

EXIT_UNREADABLE = 1
EXIT_NOT_FOUND = 4
REJECTS_SHOWN: Final = 20
"""Rejected rows listed on stderr when no --rejects file is given."""
# A spreadsheet runs a cell starting with one of these as a formula (CSV injection).
FORMULA_STARTS: Final = ("=", "+", "-", "@", "\t", "\r")


def register(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    accounts = subparsers.add_parser("accounts", parents=parents, help="VssID accounts")
    commands = accounts.add_subparsers(dest="accounts_command", metavar="ACTION", required=True)

    load = commands.add_parser(
        "import",
        parents=parents,
        help="import or update accounts from a CSV file",
        description=f"Columns (UTF-8, header row): {','.join(COLUMNS)}. Idempotent: "
        "re-importing updates existing accounts and never duplicates them.",
    )
    load.add_argument("file", type=Path, metavar="FILE.csv")
    load.add_argument(
        "--rejects", type=Path, metavar="FILE.csv", help="write rejected rows here (line, reason)"
    )
    load.add_argument("--batch-size", type=int, default=5000, help=argparse.SUPPRESS)
    load.set_defaults(handler=run_import)

    show = commands.add_parser("show", parents=parents, help="show one account (no secrets)")
    show.add_argument("code", metavar="CODE", help="10-digit ma so BHXH")
    show.set_defaults(handler=run_show)

    add = commands.add_parser("add", parents=parents, help="add or update one account")
    add.add_argument("--code", required=True, help="10-digit ma so BHXH")
    add.add_argument("--name", required=True, help="full name (ho ten)")
    add.add_argument("--phone", required=True, help="registered phone number")
    add.add_argument("--email", default="", help="e-mail address")
    add.add_argument(
        "--registered",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="registered for electronic transactions (default: yes)",
    )
    add.set_defaults(handler=run_add)


def run_import(args: argparse.Namespace, settings: Settings) -> int:
    engine = create_engine(settings.database.url.reveal(), pool_size=2)
    with ExitStack() as stack:
        try:
            source = stack.enter_context(
                args.file.open(encoding="utf-8", newline="", errors="surrogateescape")
            )
        except OSError as error:
            print(f"vssid-gateway: cannot read {args.file}: {error.strerror}", file=sys.stderr)
            return EXIT_UNREADABLE
        rejects: _RejectsWriter | _RejectsOnStderr
        if args.rejects:
            rejects = _RejectsWriter(stack.enter_context(_open_private(args.rejects)))
        else:
            rejects = _RejectsOnStderr()
        progress = stack.enter_context(
            tqdm(
                total=args.file.stat().st_size,
                unit="B",
                unit_scale=True,
                desc="importing",
                disable=not sys.stderr.isatty(),
            )
        )
        stack.callback(engine.dispose)

        def advance(_rows: int) -> None:
            progress.update(source.buffer.tell() - progress.n)

        try:
            summary = import_accounts(
                engine,
                read_accounts(source),
                datetime.now(UTC),
                on_reject=rejects.write,
                on_batch=advance,
                batch_size=args.batch_size,
            )
        except UnreadableFileError as error:
            print(f"vssid-gateway: cannot import {args.file}: {error}", file=sys.stderr)
            return EXIT_UNREADABLE
        progress.update(progress.total - progress.n)
    if isinstance(rejects, _RejectsOnStderr):
        rejects.close()
    print(
        f"imported {summary.imported}, updated {summary.updated}, rejected {summary.rejected}"
        + (f" (see {args.rejects})" if args.rejects and summary.rejected else "")
    )
    return 0


class _RejectsOnStderr:
    """Without ``--rejects``: each rejected row's line and reason (never its fields: names,
    phones) on stderr, the first :data:`REJECTS_SHOWN` of them, then how many more."""

    def __init__(self) -> None:
        self.count = 0

    def write(self, row: RejectedRow) -> None:
        self.count += 1
        if self.count <= REJECTS_SHOWN:
            print(f"line {row.line}: rejected: {row.reason}", file=sys.stderr)

    def close(self) -> None:
        if self.count > REJECTS_SHOWN:
            more = self.count - REJECTS_SHOWN
            print(f"... and {more} more rejected rows (--rejects FILE lists them all)",
                  file=sys.stderr)  # fmt: skip


def _open_private(path: Path) -> TextIO:
    """``path`` emptied for writing, readable by its owner only, as UTF-8 with a BOM.

    Rejected rows hold names, phones and e-mails, so the default umask (often world-readable)
    will not do, nor the mode of a file left by an earlier run; the BOM is what makes Excel read
    the file as UTF-8 rather than garble the Vietnamese names.
    """
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(descriptor, 0o600)  # the umask may have cleared bits; an old file keeps its mode
        return open(descriptor, "w", encoding="utf-8-sig", newline="")
    except BaseException:
        os.close(descriptor)
        raise


def _neutralised(cell: str) -> str:
    """``cell`` behind a ``'`` if a spreadsheet would run it as a formula, so it shows as text."""
    return f"'{cell}" if cell.startswith(FORMULA_STARTS) else cell


class _RejectsWriter:
    """Rejected rows as CSV: line number, reason, then the row's original fields.

    The fields come from the file being imported, so any that a spreadsheet would run as a
    formula are neutralised before an operator opens the rejects in Excel.
    """

    def __init__(self, handle: TextIO) -> None:
        self._writer = csv.writer(handle)
        self._writer.writerow(["line", "reason", *COLUMNS])

    def write(self, row: RejectedRow) -> None:
        fields = [
            value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
            for value in row.fields
        ]
        self._writer.writerow([row.line, *map(_neutralised, [row.reason, *fields])])


def run_show(args: argparse.Namespace, settings: Settings) -> int:
    code = normalise_code(args.code)
    if code is None:
        print("vssid-gateway: CODE must be a 10-digit ma so BHXH", file=sys.stderr)
        return 2
    store = open_store(settings)
    try:
        with store.unit_of_work() as uow:
            account = uow.accounts.get_many([code]).get(code)
    finally:
        store.engine.dispose()
    if account is None:
        print(f"no account {code}", file=sys.stderr)
        return EXIT_NOT_FOUND
    for label, value in _describe(account):
        print(f"{label:<28} {value}")
    return 0


def _describe(account: Account) -> list[tuple[str, str]]:
    def when(value: datetime | None) -> str:
        return value.isoformat(timespec="seconds") if value else "-"

    return [
        ("ma_so_bhxh", account.code),
        ("name", account.name),
        ("phone", account.phone or "-"),
        ("carrier", carrier_of(account.phone) if account.phone else "-"),
        ("email", account.email or "-"),
        ("registered_for_e_transactions", "yes" if account.registered else "no"),
        ("password_set_at", when(account.password_set_at)),
        ("must_change_password", "yes" if account.must_change_password else "no"),
        ("temporary_password_expires_at", when(account.temporary_password_expires_at)),
        ("created_at", when(account.created_at)),
        ("updated_at", when(account.updated_at)),
    ]


def run_add(args: argparse.Namespace, settings: Settings) -> int:
    record = record_from_fields(
        [args.code, args.name, args.phone, args.email, "1" if args.registered else "0"]
    )
    if isinstance(record, RejectedRow):
        print(f"vssid-gateway: {record.reason}", file=sys.stderr)
        return 2
    engine = create_engine(settings.database.url.reveal(), pool_size=1)
    try:
        summary = import_accounts(engine, [record], datetime.now(UTC))
    finally:
        engine.dispose()
    print(f"{'added' if summary.imported else 'updated'} account {record.code}")
    return 0
