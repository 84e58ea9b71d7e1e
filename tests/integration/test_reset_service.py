"""The reset rules against a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from commands.passwords import Argon2idHasher
from commands.ports import Channel, Outcome, QueuedReply, SmsRoute
from commands.replies import render_sms
from commands.reset import ResetPolicy, ResetRequest, ResetService
from store.models import AccountRow, OutboxRow, ResetEventRow
from store.repos import UnitOfWorkFactory, outbox_values
from tests.support.accounts import add_account
from tests.support.clock import FixedClock

CODE = "0123456789"
PHONE = "0912345678"
MISMATCH_TEXT = (
    "So dien thoai va ma so BHXH khong khop hoac chua dang ky giao dich dien tu voi co quan BHXH"
)


def request(
    phone: str = PHONE,
    code: str = CODE,
    correlation: str = "c-1",
    sms_route: SmsRoute | None = None,
) -> ResetRequest:
    return ResetRequest(phone, code, Channel.SMS, correlation, sms_route)


def account(engine: Engine, code: str = CODE) -> AccountRow:
    with engine.connect() as connection:
        row = connection.execute(sa.select(AccountRow).where(AccountRow.ma_so_bhxh == code)).one()
    return row  # type: ignore[return-value]


def all_stored_text(engine: Engine) -> str:
    """Every value in every table, as one string: for 'the password is nowhere' checks."""
    chunks = []
    with engine.connect() as connection:
        for table in (AccountRow, ResetEventRow, OutboxRow):
            for row in connection.execute(sa.select(table.__table__)):
                chunks.extend(str(value) for value in row)
    return "\n".join(chunks)


def test_matching_phone_and_code_resets_the_password(
    engine: Engine, reset_service: ResetService, hasher: Argon2idHasher, clock: FixedClock
) -> None:
    add_account(engine, CODE, PHONE)

    result = reset_service.reset(request())

    assert result.outcome is Outcome.RESET and not result.duplicate
    assert result.password is not None
    password = result.password.reveal()
    assert len(password) == 8 and password.isdigit()
    assert render_sms(result.reply) == (
        f"Cap lai mat khau thanh cong. Tai khoan: {CODE}/Mat khau: {password}"
    )
    row = account(engine)
    assert row.password_hash.startswith("$argon2id$")
    assert hasher.verify(row.password_hash, password)
    assert row.must_change_password is True
    assert row.password_set_at == clock.now()
    assert row.temporary_password_expires_at == clock.now() + timedelta(hours=24)


@pytest.mark.parametrize(
    "sender",
    ["84912345678", "+84 91 234 5678", "(091) 234-5678", "912345678"],
    ids=["international", "e164-spaced", "national-punctuated", "no-trunk-prefix"],
)
def test_every_form_of_the_registered_number_matches(
    engine: Engine, reset_service: ResetService, sender: str
) -> None:
    add_account(engine, CODE, PHONE)

    assert reset_service.reset(request(phone=sender)).outcome is Outcome.RESET


def test_a_record_with_an_old_eleven_digit_number_matches_its_new_number(
    engine: Engine, reset_service: ResetService
) -> None:
    add_account(engine, CODE, "01621234567")  # Viettel before the 2018 renumbering

    assert reset_service.reset(request(phone="0321234567")).outcome is Outcome.RESET
    assert (
        reset_service.reset(request(phone="841621234567", correlation="c-2")).outcome
        is Outcome.RESET
    )


@pytest.mark.parametrize(
    ("setup", "sender", "code"),
    [
        ("none", PHONE, CODE),
        ("unregistered", PHONE, CODE),
        ("registered", "0987654321", CODE),
        ("registered", "not a number", CODE),
    ],
    ids=["unknown-code", "not-registered-for-e-transactions", "other-phone", "unparseable-phone"],
)
def test_refusals_all_get_the_same_reply_and_change_nothing(
    engine: Engine, reset_service: ResetService, setup: str, sender: str, code: str
) -> None:
    if setup != "none":
        add_account(engine, CODE, PHONE, registered=setup == "registered")

    result = reset_service.reset(request(phone=sender, code=code))

    assert result.outcome is Outcome.MISMATCH
    assert result.password is None
    assert render_sms(result.reply) == MISMATCH_TEXT
    if setup != "none":
        assert account(engine).password_hash is None


def test_a_code_of_the_wrong_length_is_invalid_and_gets_the_syntax(
    engine: Engine, reset_service: ResetService
) -> None:
    result = reset_service.reset(request(code="12345"))

    assert result.outcome is Outcome.INVALID
    assert "BH MK <Ma so BHXH> gui 8079" in render_sms(result.reply)


def test_the_sixth_reset_of_a_code_within_a_day_is_refused_politely(
    engine: Engine, reset_service: ResetService, clock: FixedClock
) -> None:
    add_account(engine, CODE, PHONE)
    outcomes = [reset_service.reset(request(correlation=f"c-{i}")).outcome for i in range(6)]

    assert outcomes == [Outcome.RESET] * 5 + [Outcome.RATE_LIMITED]
    clock.advance(hours=24, seconds=1)
    assert reset_service.reset(request(correlation="c-next-day")).outcome is Outcome.RESET


def test_one_phone_cannot_reset_more_accounts_than_its_daily_limit(
    engine: Engine, unit_of_work: UnitOfWorkFactory, hasher: Argon2idHasher, clock: FixedClock
) -> None:
    service = ResetService(unit_of_work, hasher, clock, ResetPolicy(resets_per_phone_per_day=2))
    codes = ["0000000001", "0000000002", "0000000003"]
    for code in codes:
        add_account(engine, code, PHONE)  # one phone registered for a family's accounts

    outcomes = [service.reset(request(code=code, correlation=code)).outcome for code in codes]

    assert outcomes == [Outcome.RESET, Outcome.RESET, Outcome.RATE_LIMITED]
    assert account(engine, "0000000003").password_hash is None


def test_the_rate_limit_reply_is_only_given_to_the_registered_phone(
    engine: Engine, reset_service: ResetService
) -> None:
    add_account(engine, CODE, PHONE)
    for i in range(5):
        reset_service.reset(request(correlation=f"c-{i}"))

    stranger = reset_service.reset(request(phone="0987654321", correlation="stranger"))

    assert stranger.outcome is Outcome.MISMATCH


def test_the_same_correlation_id_twice_resets_once(
    engine: Engine, reset_service: ResetService
) -> None:
    add_account(engine, CODE, PHONE)
    first = reset_service.reset(request(correlation="smpp-42"))
    hash_after_first = account(engine).password_hash

    second = reset_service.reset(request(correlation="smpp-42"))

    assert first.outcome is Outcome.RESET and not first.duplicate
    assert second.outcome is Outcome.RESET and second.duplicate and second.password is None
    assert account(engine).password_hash == hash_after_first
    with engine.connect() as connection:
        assert connection.scalar(sa.select(sa.func.count()).select_from(ResetEventRow)) == 1


def test_concurrent_requests_with_one_correlation_id_reset_at_most_once(
    engine: Engine, reset_service: ResetService
) -> None:
    add_account(engine, CODE, PHONE)
    results = []
    start = threading.Barrier(4)

    def attempt() -> None:
        start.wait()
        results.append(reset_service.reset(request(correlation="same")))

    threads = [threading.Thread(target=attempt) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert len(results) == 4
    assert sum(1 for r in results if not r.duplicate) == 1
    assert all(r.outcome is Outcome.RESET for r in results)
    with engine.connect() as connection:
        assert connection.scalar(sa.select(sa.func.count()).select_from(ResetEventRow)) == 1


def test_an_sms_reply_is_queued_in_the_same_transaction_as_the_reset(
    engine: Engine, reset_service: ResetService
) -> None:
    add_account(engine, CODE, PHONE)
    route = SmsRoute("viettel", "84912345678", 1, 1, "8079", in_reply_to="in-1")

    result = reset_service.reset(request(sms_route=route))

    with engine.connect() as connection:
        queued = connection.execute(sa.select(OutboxRow.__table__)).one()
    assert queued.peer == "viettel" and queued.to_address == "84912345678"
    assert queued.state == "queued" and queued.in_reply_to == "in-1"
    assert queued.body == render_sms(result.reply)


def test_no_password_is_stored_in_clear_or_in_the_audit(
    engine: Engine, reset_service: ResetService
) -> None:
    add_account(engine, CODE, PHONE)

    result = reset_service.reset(request())

    assert result.password is not None
    assert result.password.reveal() not in all_stored_text(engine)
    with engine.connect() as connection:
        event = connection.execute(sa.select(ResetEventRow.__table__)).one()
    assert event.outcome == "reset" and event.channel == "sms"
    assert event.phone == "+84912345678" and event.code == CODE and event.carrier == "VinaPhone"


def test_a_batch_is_decided_in_order_with_one_result_per_request(
    engine: Engine, reset_service: ResetService
) -> None:
    add_account(engine, CODE, PHONE)
    add_account(engine, "0000000001", "0987654321", registered=False)
    batch = [
        request(correlation="a"),
        request(phone="0987654321", code="0000000001", correlation="b"),
        request(code="123", correlation="c"),
        request(correlation="a"),  # the same message twice in one batch
    ]

    results = reset_service.reset_batch(batch)

    assert [(r.outcome, r.duplicate) for r in results] == [
        (Outcome.RESET, False),
        (Outcome.MISMATCH, False),
        (Outcome.INVALID, False),
        (Outcome.RESET, True),
    ]
    with engine.connect() as connection:
        assert connection.scalar(sa.select(sa.func.count()).select_from(ResetEventRow)) == 3


def test_limits_apply_within_one_batch(
    engine: Engine, unit_of_work: UnitOfWorkFactory, hasher: Argon2idHasher, clock: FixedClock
) -> None:
    service = ResetService(unit_of_work, hasher, clock, ResetPolicy(resets_per_code_per_day=2))
    add_account(engine, CODE, PHONE)

    results = service.reset_batch([request(correlation=f"m-{i}") for i in range(4)])

    assert [r.outcome for r in results] == [Outcome.RESET] * 2 + [Outcome.RATE_LIMITED] * 2
    last_password = results[1].password
    assert last_password is not None
    assert hasher.verify(account(engine).password_hash, last_password.reveal())


def test_a_reply_is_queued_with_exactly_the_values_outbox_values_gives(
    engine: Engine, unit_of_work: UnitOfWorkFactory, clock: FixedClock
) -> None:
    route = SmsRoute(
        "viettel", "84912345678", 1, 3, "8079", in_reply_to="MO7", from_ton=2, from_npi=4
    )
    reply = QueuedReply(route, "text with a secret", "text with ********", clock.now())
    with unit_of_work(write=True) as uow:
        uow.outbox.enqueue_many([reply])
        uow.commit()
    expected = outbox_values(reply, timedelta(hours=24))
    with engine.connect() as connection:
        row = connection.execute(sa.select(OutboxRow.__table__)).one()._mapping
    assert {name: row[name] for name in expected} == expected


# -- the limits under concurrency (PostgreSQL: READ COMMITTED, several workers or instances) --


class RecheckInTurn:
    """A unit-of-work factory whose write transactions, once they have counted the resets,
    wait until every other writer has counted too or is waiting for a lock: the interleaving
    in which both would see one reset short of a limit, every time, without sleeping."""

    def __init__(self, inner: UnitOfWorkFactory, engine: Engine, writers: int) -> None:
        self._inner = inner
        self._engine = engine
        self._writers = writers
        self._counted = 0
        self._turn = threading.Condition()

    def __call__(self, *, write: bool = False) -> Any:
        uow = self._inner(write=write)
        if write:
            uow.rate_limits = _CountThenWait(uow.rate_limits, self)  # type: ignore[assignment]
        return uow

    def counted(self) -> None:
        with self._turn:
            self._counted += 1
            self._turn.notify_all()
            for _ in range(1000):
                if self._counted >= self._writers or self._someone_waits_for_a_lock():
                    return
                self._turn.wait(0.01)
        raise AssertionError("the other writer neither counted nor waited for a lock")

    def _someone_waits_for_a_lock(self) -> bool:
        with self._engine.connect() as connection:
            return bool(
                connection.scalar(
                    sa.text(
                        "SELECT count(*) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                    )
                )
            )


class _CountThenWait:
    def __init__(self, inner: Any, turn: RecheckInTurn) -> None:
        self._inner = inner
        self._turn = turn

    def lock(self, codes: Any, phones: Any) -> None:
        self._inner.lock(codes, phones)

    def resets_since(self, since: Any, codes: Any, phones: Any) -> Any:
        counts = self._inner.resets_since(since, codes, phones)
        self._turn.counted()
        return counts


@pytest.mark.parametrize(
    "db_url", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)
@pytest.mark.parametrize(
    ("codes", "policy"),
    [
        (["0000000001", "0000000001"], ResetPolicy(resets_per_code_per_day=1)),
        (["0000000001", "0000000002"], ResetPolicy(resets_per_phone_per_day=1)),
    ],
    ids=["per-code", "per-phone"],
)
def test_two_requests_at_once_cannot_both_pass_the_last_reset_under_a_limit(
    engine: Engine,
    unit_of_work: UnitOfWorkFactory,
    hasher: Argon2idHasher,
    clock: FixedClock,
    codes: list[str],
    policy: ResetPolicy,
) -> None:
    for code in set(codes):
        add_account(engine, code, PHONE)
    service = ResetService(RecheckInTurn(unit_of_work, engine, 2), hasher, clock, policy)  # type: ignore[arg-type]
    outcomes: list[Outcome] = []

    def attempt(code: str, correlation: str) -> None:
        outcomes.append(service.reset(request(code=code, correlation=correlation)).outcome)

    threads = [
        threading.Thread(target=attempt, args=(code, f"c-{i}"), daemon=True)
        for i, code in enumerate(codes)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(outcomes) == sorted([Outcome.RESET, Outcome.RATE_LIMITED])
    with engine.connect() as connection:
        resets = connection.scalar(
            sa.select(sa.func.count()).where(ResetEventRow.outcome == Outcome.RESET.value)
        )
    assert resets == 1
