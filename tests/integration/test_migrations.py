"""Alembic migrations and the models describe the same schema, on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Engine

from store.migrate import current_revision, head_revision, upgrade
from store.models import Base


def test_the_migrated_schema_matches_the_models(engine: Engine) -> None:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def test_upgrading_an_up_to_date_database_changes_nothing(engine: Engine) -> None:
    upgrade(engine)
    assert current_revision(engine) == head_revision(engine)
