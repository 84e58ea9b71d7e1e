"""Driving pure sessions in tests: a registry, sessions bound at will, effects picked apart."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from smpp.codec import Pdu
from smpp.events import Effect, SendPdu
from smpp.registry import Registry
from smpp.session import Session
from smpp.settings import SmppSettings
from tests.support.smpp_pdus import bind, settings

E = TypeVar("E")


def new_session(
    registry: Registry | None = None,
    address: str = "127.0.0.1",
    now: float = 0.0,
    config: SmppSettings | None = None,
) -> Session:
    registry = registry or Registry(config or settings(), now)
    return Session(registry, registry.new_connection_id(), address, now)


def bound(
    kind: str = "bind_transceiver",
    registry: Registry | None = None,
    system_id: str = "viettel",
    now: float = 0.0,
    config: SmppSettings | None = None,
) -> Session:
    session = new_session(registry, now=now, config=config)
    session.receive(bind(kind, system_id=system_id), now)
    assert session.bind is not None, "the bind was refused"
    return session


def sent(effects: Sequence[Effect]) -> list[Pdu]:
    return [effect.pdu for effect in effects if isinstance(effect, SendPdu)]


def only(kind: type[E], effects: Sequence[Effect]) -> list[E]:
    return [effect for effect in effects if isinstance(effect, kind)]
