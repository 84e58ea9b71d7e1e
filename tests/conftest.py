"""Shared fixtures: real databases (SQLite always, PostgreSQL on 127.0.0.1:5432) and the clock.

Store and reset-service tests take ``db_url``, which is parametrised over both backends. The
PostgreSQL database is created once per test session (with a random name) and dropped at the
end; each test starts from empty tables.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from commands.passwords import Argon2idHasher
from commands.reset import ResetPolicy, ResetService
from ivr import prompts
from ivr.settings import IvrSettings
from store.db import create_engine, session_factory
from store.migrate import upgrade
from store.models import Base
from store.repos import UnitOfWorkFactory
from tests.support.clock import FixedClock

POSTGRES_ADMIN_URL = os.environ.get(
    "VSSID_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
FAST_ARGON2 = {"memory_kib": 8192, "time_cost": 1, "parallelism": 1}


@pytest.fixture(scope="session")
def postgresql_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, migrated to head."""
    admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"vssid_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = sa.make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    engine = create_engine(url, pool_size=2)
    upgrade(engine)
    engine.dispose()
    try:
        yield url
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    path: Path = tmp_path_factory.mktemp("sqlite") / "vssid.db"
    url = f"sqlite:///{path}"
    engine = create_engine(url, pool_size=1)
    upgrade(engine)
    engine.dispose()
    return url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> str:
    """The URL of an empty, migrated database; the test runs once per backend."""
    url: str = request.getfixturevalue(f"{request.param}_url")
    engine = create_engine(url, pool_size=1)
    _empty(engine)
    engine.dispose()
    return url


def _empty(engine: Engine) -> None:
    with engine.begin() as connection:
        for table in reversed(Base.metadata.sorted_tables):
            connection.execute(table.delete())


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = create_engine(db_url, pool_size=4)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def sounds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every hotline prompt rendered for real with espeak-ng, once per test session."""
    out = tmp_path_factory.mktemp("sounds")
    settings = IvrSettings(sounds_dir=str(out))
    prompts.build(prompts.prompt_texts(settings), out, "vi", prompts.espeak_engine(), "espeak")
    return out


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()


@pytest.fixture
def unit_of_work(engine: Engine) -> UnitOfWorkFactory:
    return UnitOfWorkFactory(session_factory(engine), outbox_expiry=timedelta(hours=24))


@pytest.fixture
def hasher() -> Argon2idHasher:
    """Real Argon2id at the lowest cost the configuration allows, to keep tests quick."""
    return Argon2idHasher(**FAST_ARGON2)


@pytest.fixture
def reset_service(
    unit_of_work: UnitOfWorkFactory, hasher: Argon2idHasher, clock: FixedClock
) -> ResetService:
    return ResetService(unit_of_work, hasher, clock, ResetPolicy())
