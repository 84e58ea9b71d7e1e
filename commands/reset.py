"""The password-reset decision, shared by every channel.

SMS, the hotline and the operators' CLI all hand :class:`ResetService` the phone as received,
the code as received, the channel and a correlation id; they get back the same decision and
the same reply. The order of checks is deliberate:

1. a correlation id seen before returns the earlier outcome and changes nothing (a telco that
   resends a message must not cause a second reset);
2. a malformed code gets the help reply;
3. unknown code, account not registered for e-transactions, or another phone all get the SAME
   mismatch reply, so nobody can learn which codes exist;
4. only then the per-code and per-phone daily limits (checked after the match, so the
   rate-limit reply, too, reveals nothing to a stranger);
5. a new numeric password from :mod:`secrets`, hashed with Argon2id *outside* any database
   transaction (hashing takes tens of milliseconds; holding a write lock that long would
   serialise every other request), then one transaction stores the hash, the audit row and,
   for SMS, the reply in the outbox.

Requests are decided in batches: one read transaction looks up every correlation id, account
and rate-limit count of the batch with a few set-based queries, the passwords are hashed (in
parallel when the caller supplies a parallel ``map``), and one write transaction re-checks the
limits and stores everything. The re-check first locks the batch's codes and phones
(:meth:`RateLimits.lock`), so that two batches deciding the same code or phone at once, on two
workers or two instances, count one after the other: the limits hold under concurrency, not
only in sequence. The SMS channel batches the messages that arrive together; the IVR and CLI
send batches of one. The service is synchronous and thread-safe; the gateway runs it on
worker threads so the reactor never waits for the database or Argon2.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from commands.parse import normalise_code
from commands.phone import OTHER_CARRIER, Phone, normalise_phone
from commands.ports import (
    Account,
    Channel,
    Clock,
    DuplicateCorrelationError,
    Outcome,
    PasswordChange,
    PasswordHasher,
    QueuedReply,
    RateLimits,
    ResetCounts,
    ResetEvent,
    SmsRoute,
    UnitOfWorkFactory,
)
from commands.replies import Reply, render_sms
from commands.secret import Secret

MAX_FIELD_RECEIVED = 64
RATE_WINDOW = timedelta(days=1)
_DIGITS = "0123456789"

HashMap = Callable[[Callable[[str], str], Iterable[str]], Iterator[str]]


@dataclass(frozen=True, slots=True)
class ResetPolicy:
    """The knobs of the reset rules (``[reset]`` and ``[limits]`` in the configuration)."""

    password_length: int = 8
    temporary_password_hours: float = 24.0
    resets_per_code_per_day: int = 5
    resets_per_phone_per_day: int = 5


@dataclass(frozen=True, slots=True)
class ResetRequest:
    """One citizen's request, as received from a channel."""

    phone: str
    code: str
    channel: Channel
    correlation_id: str
    sms_route: SmsRoute | None = None
    """For SMS: the reply is written to the outbox in the same transaction as the decision."""


@dataclass(frozen=True, slots=True)
class ResetResult:
    """The decision. ``password`` is set only for a fresh reset, never for a duplicate."""

    outcome: Outcome
    reply: Reply
    carrier: str = OTHER_CARRIER
    duplicate: bool = False
    password: Secret | None = None


@dataclass(frozen=True, slots=True)
class _Parsed:
    request: ResetRequest
    phone: Phone | None
    code: str | None

    @property
    def key(self) -> tuple[Channel, str]:
        return (self.request.channel, self.request.correlation_id)

    @property
    def carrier(self) -> str:
        return self.phone.carrier if self.phone else OTHER_CARRIER


class ResetService:
    """Decides and records password resets; see the module docstring for the order of checks."""

    def __init__(
        self,
        unit_of_work: UnitOfWorkFactory,
        hasher: PasswordHasher,
        clock: Clock,
        policy: ResetPolicy | None = None,
        hash_map: HashMap = map,
    ) -> None:
        self._unit_of_work = unit_of_work
        self._hasher = hasher
        self._clock = clock
        self._policy = policy or ResetPolicy()
        self._hash_map = hash_map

    def reset(self, request: ResetRequest) -> ResetResult:
        return self.reset_batch([request])[0]

    def reset_batch(self, requests: Sequence[ResetRequest]) -> list[ResetResult]:
        """Decide and record ``requests``; results come back in the same order."""
        now = self._clock.now()
        parsed = [
            _Parsed(request, normalise_phone(request.phone), normalise_code(request.code))
            for request in requests
        ]
        with self._unit_of_work() as uow:
            earlier = uow.audit.find_many({item.key for item in parsed})
            accounts = uow.accounts.get_many({item.code for item in parsed if item.code})
            counts = self._counts(uow.rate_limits, parsed, now)

        decided: dict[int, ResetResult] = {}  # index -> decision, for the first copy of each id
        results: dict[int, ResetResult] = {}
        copies: list[tuple[int, int]] = []  # (index, index of the first copy in this batch)
        first_of: dict[tuple[Channel, str], int] = {}
        for index, item in enumerate(parsed):
            if item.key in earlier:
                event = earlier[item.key]
                results[index] = self._duplicate(event.outcome, event.code, item.carrier)
            elif item.key in first_of:
                copies.append((index, first_of[item.key]))
            else:
                first_of[item.key] = index
                refusal = self._match(item, accounts.get(item.code or "")) or self._admit(
                    item, counts
                )
                decided[index] = refusal or ResetResult(
                    Outcome.RESET, Reply("reset_ok"), item.carrier
                )

        candidates = [i for i, result in decided.items() if result.outcome is Outcome.RESET]
        passwords = [self._new_password() for _ in candidates]
        hashes = list(self._hash_map(self._hasher.hash, [p.reveal() for p in passwords]))
        try:
            self._store(
                parsed,
                decided,
                dict(zip(candidates, zip(passwords, hashes, strict=True), strict=True)),
                now,
            )
        except DuplicateCorrelationError:
            if len(parsed) == 1:
                return [self._earlier(parsed[0])]
            # Another instance recorded one of these ids meanwhile: decide them one by one.
            return [self.reset(request) for request in requests]

        results.update(decided)
        for index, first in copies:
            item = parsed[index]
            results[index] = self._duplicate(results[first].outcome, item.code, item.carrier)
        return [results[index] for index in range(len(parsed))]

    def _counts(
        self, rate_limits: RateLimits, parsed: Iterable[_Parsed], now: datetime
    ) -> ResetCounts:
        items = list(parsed)
        return rate_limits.resets_since(
            now - RATE_WINDOW,
            {item.code for item in items if item.code},
            {item.phone.e164 for item in items if item.phone},
        )

    @staticmethod
    def _match(item: _Parsed, account: Account | None) -> ResetResult | None:
        """Invalid code, or no account registered for e-transactions with this phone."""
        if item.code is None:
            return ResetResult(Outcome.INVALID, Reply("help_code_length"), item.carrier)
        if (
            item.phone is None
            or account is None
            or not account.registered
            or account.phone != item.phone.e164
        ):
            return ResetResult(Outcome.MISMATCH, Reply("mismatch"), item.carrier)
        return None

    def _admit(self, item: _Parsed, counts: ResetCounts) -> ResetResult | None:
        """The daily limits; an admitted reset is counted at once so a batch respects them."""
        assert item.code is not None and item.phone is not None
        by_code = counts.by_code.get(item.code, 0)
        by_phone = counts.by_phone.get(item.phone.e164, 0)
        if by_code >= self._policy.resets_per_code_per_day:
            return self._rate_limited(self._policy.resets_per_code_per_day, item.carrier)
        if by_phone >= self._policy.resets_per_phone_per_day:
            return self._rate_limited(self._policy.resets_per_phone_per_day, item.carrier)
        counts.by_code[item.code] = by_code + 1
        counts.by_phone[item.phone.e164] = by_phone + 1
        return None

    def _store(
        self,
        parsed: Sequence[_Parsed],
        decided: dict[int, ResetResult],
        new_passwords: dict[int, tuple[Secret, str]],
        now: datetime,
    ) -> None:
        """One write transaction for the batch; fills in the final decisions in ``decided``."""
        expires = now + timedelta(hours=self._policy.temporary_password_hours)
        with self._unit_of_work(write=True) as uow:
            # Re-checked inside the write transaction: other workers (or instances) may have
            # reset meanwhile. The lock keeps them from counting the same codes and phones
            # until this transaction ends, so two cannot both pass at one short of a limit.
            candidates = [parsed[i] for i in new_passwords]
            uow.rate_limits.lock(
                {item.code for item in candidates if item.code},
                {item.phone.e164 for item in candidates if item.phone},
            )
            counts = self._counts(uow.rate_limits, candidates, now)
            changes = []
            for index, (password, password_hash) in new_passwords.items():
                item = parsed[index]
                refusal = self._admit(item, counts)
                if refusal is not None:
                    decided[index] = refusal
                    continue
                assert item.code is not None
                reply = Reply("reset_ok", {"code": item.code, "password": password})
                decided[index] = replace(decided[index], reply=reply, password=password)
                changes.append(PasswordChange(item.code, password_hash, now, expires))
            uow.accounts.set_temporary_passwords(changes)
            uow.audit.append_many(
                [self._event(parsed[i], result, now) for i, result in decided.items()]
            )
            rendered: dict[str, tuple[str, str]] = {}  # replies without parameters, once each
            uow.outbox.enqueue_many(
                [
                    QueuedReply(route, *_render(result.reply, rendered), now)
                    for i, result in decided.items()
                    if (route := parsed[i].request.sms_route) is not None
                ]
            )
            uow.commit()

    @staticmethod
    def _event(item: _Parsed, result: ResetResult, now: datetime) -> ResetEvent:
        return ResetEvent(
            at=now,
            channel=item.request.channel,
            phone_received=item.request.phone[:MAX_FIELD_RECEIVED],
            phone=item.phone.e164 if item.phone else None,
            code_received=item.request.code[:MAX_FIELD_RECEIVED],
            code=item.code,
            outcome=result.outcome,
            correlation_id=item.request.correlation_id,
            carrier=result.carrier,
        )

    def _new_password(self) -> Secret:
        length = self._policy.password_length
        return Secret("".join(secrets.choice(_DIGITS) for _ in range(length)))

    @staticmethod
    def _rate_limited(limit: int, carrier: str) -> ResetResult:
        return ResetResult(Outcome.RATE_LIMITED, Reply("rate_limited", {"limit": limit}), carrier)

    def _earlier(self, item: _Parsed) -> ResetResult:
        """Another instance committed this correlation id first: report what it decided."""
        with self._unit_of_work() as uow:
            event = uow.audit.find_many({item.key}).get(item.key)
        if event is None:  # pragma: no cover - the unique index said it exists
            raise RuntimeError("duplicate correlation id reported but not found")
        return self._duplicate(event.outcome, event.code, item.carrier)

    @staticmethod
    def _duplicate(outcome: Outcome, code: str | None, carrier: str) -> ResetResult:
        return ResetResult(
            outcome, Reply("duplicate", {"code": code or ""}), carrier, duplicate=True
        )


def _render(reply: Reply, rendered: dict[str, tuple[str, str]]) -> tuple[str, str]:
    """The SMS text and its masked copy; a reply without parameters (a mismatch, say: most
    of a batch) is the same text every time and has nothing to mask, so it is rendered once."""
    if reply.params:
        return render_sms(reply), render_sms(reply, reveal=False)
    texts = rendered.get(reply.template)
    if texts is None:
        text = render_sms(reply)
        texts = rendered[reply.template] = (text, text)
    return texts
