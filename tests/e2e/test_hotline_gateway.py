"""The hotline through the whole gateway: the Asterisk stand-in on TCP, the real reset rules,
the database and the calls table."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest_twisted
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from twisted.internet import reactor

from commands.passwords import Argon2idHasher
from commands.secret import Secret
from gateway.service import Gateway
from ivr.prompts import durations
from ivr.settings import IvrSettings
from store.models import AccountRow, CallRow, ResetEventRow
from tests.support.accounts import add_account
from tests.support.asterisk_standin import (
    SERVICE_USER,
    AsteriskStandIn,
    Pbx,
    Press,
    Timing,
    shipped_dialplan,
)
from tests.support.gateway import gateway_settings, start_gateway
from tests.support.waiting import until

MENU, CODE_PROMPT = "vssid/menu", "vssid/enter-code"
CODE, PHONE = "0123456789", "0912345678"
FAST_ARGON2 = Argon2idHasher(memory_kib=8192, time_cost=1)


class Hotline:
    def __init__(self, pbx: Pbx, port: Any, gateway: Gateway) -> None:
        self.pbx, self.port, self.gateway = pbx, port, gateway


@pytest_twisted.async_yield_fixture
async def hotline(engine: Engine, db_url: str, sounds: Path) -> AsyncIterator[Hotline]:
    add_account(engine, CODE, PHONE)
    table = {name: int(seconds * 8000) for name, seconds in durations(sounds, "vi").items()}
    pbx = Pbx(
        reactor,
        timing=Timing.fast(0.001),
        sounds=table,
        users={"vssid": SERVICE_USER},
        dialplan=shipped_dialplan(),
    )
    port = reactor.listenTCP(0, AsteriskStandIn(pbx), interface="127.0.0.1")  # type: ignore[attr-defined]
    base = gateway_settings(db_url)
    ivr = IvrSettings(
        enabled=True,
        ami=f"tcp:127.0.0.1:{port.getHost().port}",
        secret=Secret("secret"),
        sounds_dir=str(sounds),
    )
    gateway = await start_gateway(dataclasses.replace(base, ivr=ivr))
    await until(lambda: bool(gateway.ivr_connected))
    yield Hotline(pbx, port, gateway)
    await gateway.stopService()
    for session in list(pbx.sessions):
        session.close()
    await port.stopListening()


def rows(engine: Engine, model: Any) -> list[Any]:
    with engine.connect() as connection:
        return list(connection.execute(sa.select(model.__table__)))


@pytest_twisted.ensureDeferred
async def test_the_password_the_caller_hears_twice_is_the_one_that_works(
    hotline: Hotline, engine: Engine
) -> None:
    hotline.pbx.place_call(
        PHONE, script=[Press("8", on=MENU), Press("0123456789#", on=CODE_PROMPT)]
    )
    await until(lambda: len(rows(engine, CallRow)) == 1)

    spoken = [digits for _, digits in hotline.pbx.said_digits]
    assert len(spoken) == 2 and spoken[0] == spoken[1] and len(spoken[0]) == 8
    [account] = rows(engine, AccountRow)
    assert FAST_ARGON2.verify(account.password_hash, spoken[0]) and account.must_change_password
    [call] = rows(engine, CallRow)
    [event] = rows(engine, ResetEventRow)
    assert call.outcome == "reset" and call.caller == "+84912345678" and call.carrier == "VinaPhone"
    assert spoken[0] not in call.keys and CODE not in call.keys
    assert event.channel == "ivr" and event.correlation_id == call.unique_id
    assert call.answered_at == call.started_at and call.billed_minutes >= 1  # answered by Answer()
    assert call.answered_at < call.password_spoken_at < call.ended_at


@pytest_twisted.ensureDeferred
async def test_a_caller_from_another_number_is_refused_and_the_call_recorded(
    hotline: Hotline, engine: Engine
) -> None:
    hotline.pbx.place_call(
        "0987654321", script=[Press("8", on=MENU), Press("0123456789#", on=CODE_PROMPT)]
    )
    await until(lambda: len(rows(engine, CallRow)) == 1)

    [call] = rows(engine, CallRow)
    assert call.outcome == "mismatch"
    assert [e.outcome for e in rows(engine, ResetEventRow)] == ["mismatch"]
    assert rows(engine, AccountRow)[0].password_hash is None
