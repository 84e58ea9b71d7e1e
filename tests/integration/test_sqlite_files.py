"""The embedded database's files are its owner's alone: they hold citizens' data."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import sqlalchemy as sa

from store.db import create_engine
from store.migrate import upgrade


def test_the_database_and_its_folder_are_private_whatever_the_umask(tmp_path: Path) -> None:
    database = tmp_path / "var" / "vssid.db"
    previous = os.umask(0o022)  # a common default: files readable by every local user
    try:
        engine = create_engine(f"sqlite:///{database}")
        upgrade(engine)
        with engine.begin() as connection:  # a write: the -wal file exists now
            connection.execute(sa.text("CREATE TABLE probe (x INTEGER)"))
            wal = Path(f"{database}-wal")
            modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in (database, wal)}
        engine.dispose()
    finally:
        os.umask(previous)
    assert stat.S_IMODE(database.parent.stat().st_mode) == 0o700
    assert modes == {"vssid.db": 0o600, "vssid.db-wal": 0o600}


def test_a_database_made_before_keeps_its_group_but_loses_everyone_else(tmp_path: Path) -> None:
    database = tmp_path / "vssid.db"
    database.touch()
    os.chmod(database, 0o664)

    create_engine(f"sqlite:///{database}").dispose()

    assert stat.S_IMODE(database.stat().st_mode) == 0o660
