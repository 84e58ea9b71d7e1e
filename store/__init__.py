"""Persistence: SQLAlchemy models, Alembic migrations and the repositories that implement
:mod:`commands.ports` on SQLite (embedded default) and PostgreSQL."""
