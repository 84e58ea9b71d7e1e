"""A real gateway in this test process: SQLite (or a given URL), SMPP on 127.0.0.1, fast Argon2."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

from twisted.internet import reactor

from commands.secret import Secret
from gateway.config import DatabaseSettings, HttpSettings, ResetSettings, Settings
from gateway.service import Gateway, make_service
from smpp.settings import PeerSettings, SmppSettings

PEER_PASSWORD = "secret1"


def peer(name: str = "viettel", **changes: Any) -> PeerSettings:
    base = PeerSettings(
        name=name, system_id=name, password=Secret(PEER_PASSWORD), allow=("127.0.0.1/32",)
    )
    return dataclasses.replace(base, **changes)


def gateway_settings(db_url: str, peers: Iterable[PeerSettings] = (), **smpp: Any) -> Settings:
    return Settings(
        database=DatabaseSettings(url=Secret(db_url), pool_size=4),
        reset=ResetSettings(argon2_memory_kib=8192, argon2_time_cost=1),
        smpp=dataclasses.replace(
            SmppSettings(listen="tcp:0:interface=127.0.0.1"),
            peers=tuple(peers) or (peer(),),
            **smpp,
        ),
        http=HttpSettings(enabled=False),
    )


async def start_gateway(settings: Settings) -> Gateway:
    service = make_service(settings, reactor)
    service.startService()
    await service.when_started()
    return service


def smpp_port(service: Gateway) -> int:
    assert service.sms is not None and service.sms.port is not None
    port: int = service.sms.port.getHost().port  # type: ignore[attr-defined]
    return port
