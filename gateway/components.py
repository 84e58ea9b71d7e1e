"""Building the long-lived parts from settings, shared by the service and the CLI.

The CLI's ``reset`` and the running service must apply exactly the same rules with the same
store, so both get their :class:`Store` (engine, transactions, reset service) from here.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.engine import Engine

from commands.clock import SystemClock
from commands.passwords import Argon2idHasher
from commands.ports import Clock
from commands.reset import HashMap, ResetPolicy, ResetService
from gateway.config import Settings
from store.db import create_engine, session_factory
from store.repos import UnitOfWorkFactory


@dataclass(frozen=True, slots=True)
class Store:
    """The database and the reset rules bound to it."""

    engine: Engine
    unit_of_work: UnitOfWorkFactory
    reset_service: ResetService
    hashing: ThreadPoolExecutor | None = None

    def close(self) -> None:
        if self.hashing is not None:
            self.hashing.shutdown(wait=False, cancel_futures=True)
        self.engine.dispose()


def reset_policy(settings: Settings) -> ResetPolicy:
    return ResetPolicy(
        password_length=settings.reset.password_length,
        temporary_password_hours=settings.reset.temporary_password_hours,
        resets_per_code_per_day=settings.limits.resets_per_code_per_day,
        resets_per_phone_per_day=settings.limits.resets_per_phone_per_day,
    )


def hasher(settings: Settings) -> Argon2idHasher:
    return Argon2idHasher(
        memory_kib=settings.reset.argon2_memory_kib,
        time_cost=settings.reset.argon2_time_cost,
        parallelism=settings.reset.argon2_parallelism,
    )


def open_store(settings: Settings, clock: Clock | None = None, hash_threads: int = 1) -> Store:
    """The store; with ``hash_threads`` > 1 a batch's passwords are hashed on that many threads."""
    engine = create_engine(settings.database.url.reveal(), pool_size=settings.database.pool_size)
    unit_of_work = UnitOfWorkFactory(
        session_factory(engine), outbox_expiry=timedelta(hours=settings.smpp.reply_expiry_hours)
    )
    hashing = None
    hash_map: HashMap = map
    if hash_threads > 1:
        hashing = ThreadPoolExecutor(hash_threads, thread_name_prefix="argon2")
        hash_map = hashing.map
    service = ResetService(
        unit_of_work, hasher(settings), clock or SystemClock(), reset_policy(settings), hash_map
    )
    return Store(engine, unit_of_work, service, hashing)
