"""End to end: prompts rendered for real with espeak-ng, and calls over real TCP on 127.0.0.1.

The prompts are rendered once per session; the stand-in then plays them with their real
lengths (scaled down so the calls take milliseconds). The AMI client runs under Twisted's
``ClientService`` with a back-off, exactly as the gateway will run it.
"""

from __future__ import annotations

import shutil
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from twisted.application.internet import ClientService, backoffPolicy
from twisted.internet import defer, reactor, threads
from twisted.internet.endpoints import clientFromString
from twisted.logger import globalLogPublisher

from commands.ports import Outcome
from commands.replies import Reply
from commands.reset import ResetRequest, ResetResult
from commands.secret import Secret
from gateway import cli, cli_calltest
from ivr import calltest, prompts
from ivr.client import AmiClientFactory
from ivr.dialog import handle_call
from ivr.records import CallOutcome, CallRecord
from ivr.settings import IvrSettings
from tests.support.asterisk_standin import (
    CALLTEST_USER,
    SERVICE_USER,
    AsteriskStandIn,
    Channel,
    Pbx,
    Press,
    Timing,
    shipped_dialplan,
    user,
)
from tests.support.waiting import until

TIMEOUT = 15.0
MENU, CODE = "vssid/menu", "vssid/enter-code"


def test_every_prompt_is_8khz_mono_16bit_wav_in_asterisk_layout(sounds: Path) -> None:
    files = prompts.required_files("vi")
    assert len(files) == 13 + 10
    for relative in files:
        path = sounds / relative
        assert path.read_bytes()[:4] == b"RIFF" and path.read_bytes()[8:12] == b"WAVE"
        with wave.open(str(path)) as wav:
            assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (8000, 1, 2)
            assert wav.getnframes() > 0.2 * 8000, relative
    assert prompts.missing_prompts(sounds, "vi") == []


def test_unchanged_prompts_are_not_rendered_again(sounds: Path) -> None:
    settings = IvrSettings(sounds_dir=str(sounds))
    texts = prompts.prompt_texts(settings)
    engine = prompts.espeak_engine()
    assert prompts.build(texts, sounds, "vi", engine, "espeak") == []
    texts["vssid/goodbye"] = "Xin chào và hẹn gặp lại."
    assert prompts.build(texts, sounds, "vi", engine, "espeak") == ["vssid/goodbye"]


def test_the_ivr_refuses_to_start_when_a_prompt_is_missing(tmp_path: Path) -> None:
    settings = IvrSettings(sounds_dir=str(tmp_path))
    with pytest.raises(prompts.PromptError, match="prompts build"):
        prompts.require_prompts(settings)
    (tmp_path / "vi" / "vssid").mkdir(parents=True)
    with wave.open(str(tmp_path / "vi" / "vssid" / "menu.wav"), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(22050)  # not what Asterisk's wav format plays
        wav.writeframes(b"\0\0" * 100)
    assert "vi/vssid/menu.wav" in prompts.missing_prompts(tmp_path, "vi")


def test_prompts_command_builds_then_checks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'[ivr]\nsounds_dir = "{tmp_path / "sounds"}"\n', encoding="utf-8")
    assert cli.main(["--config", str(config), "prompts", "check"]) == 1
    assert cli.main(["--config", str(config), "prompts", "build", "--engine", "espeak"]) == 0
    assert cli.main(["--config", str(config), "prompts", "check"]) == 0
    assert "23 of 23 prompts rendered" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("ffmpeg", "online", "chosen"),
    [
        (None, True, "espeak"),  # gTTS gives MP3, which needs ffmpeg to become WAV
        ("/usr/bin/ffmpeg", False, "espeak"),
        ("/usr/bin/ffmpeg", True, "gtts"),
    ],
)
def test_auto_is_gtts_only_where_it_can_work(ffmpeg: str | None, online: bool, chosen: str) -> None:
    engine, why = prompts.choose_engine("auto", ffmpeg=ffmpeg, online=lambda: online)
    assert engine == chosen and why
    assert prompts.choose_engine("gtts", ffmpeg=None, online=lambda: False)[0] == "gtts"


def test_the_default_engine_builds_offline_with_espeak(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if prompts.gtts_reachable() and shutil.which("ffmpeg"):
        pytest.skip("online with ffmpeg: auto would choose gtts")
    config = tmp_path / "config.toml"
    config.write_text(f'[ivr]\nsounds_dir = "{tmp_path / "sounds"}"\n', encoding="utf-8")
    assert cli.main(["--config", str(config), "prompts", "build"]) == 0
    assert "prompt engine: espeak (" in capsys.readouterr().out


# -- calls over TCP ------------------------------------------------------------------------


class Records:
    def __init__(self) -> None:
        self.records: list[CallRecord] = []
        self._waiting: list[tuple[int, defer.Deferred[None]]] = []

    def record(self, call: CallRecord) -> None:
        self.records.append(call)
        for count, waiting in list(self._waiting):
            if len(self.records) >= count:
                self._waiting.remove((count, waiting))
                waiting.callback(None)

    def wait_for(self, count: int) -> defer.Deferred[None]:
        waiting: defer.Deferred[None] = defer.Deferred()
        if len(self.records) >= count:
            waiting.callback(None)
        else:
            self._waiting.append((count, waiting))
        return waiting.addTimeout(TIMEOUT, reactor)


async def reset_port(request: ResetRequest) -> ResetResult:
    return ResetResult(Outcome.RESET, Reply("reset_ok"), password=Secret("4829175"))


class Hotline:
    """The stand-in on a real port and the AMI client under ClientService."""

    def __init__(self, sounds: Path, secret: str = "secret", scale: float = 0.001) -> None:
        durations = prompts.durations(sounds, "vi")
        table = {name: int(seconds * 8000) for name, seconds in durations.items()}
        users = {"vssid": SERVICE_USER, "vssid-calltest": CALLTEST_USER}
        self.pbx = Pbx(
            reactor,
            timing=Timing.fast(scale),
            sounds=table,
            users=users,
            dialplan=shipped_dialplan(),
        )
        self.port: Any = reactor.listenTCP(0, AsteriskStandIn(self.pbx), interface="127.0.0.1")  # type: ignore[attr-defined]
        self.settings = IvrSettings(
            enabled=True,
            ami=f"tcp:127.0.0.1:{self.port.getHost().port}",
            secret=Secret(secret),
            sounds_dir=str(sounds),
        )
        self.log = Records()
        self.factory = AmiClientFactory(
            self.settings,
            lambda call: handle_call(call, reset_port, self.settings, self.log),
            reactor,
            login_backoff=0.05,
        )
        endpoint = clientFromString(reactor, self.settings.ami)
        self.service = ClientService(
            endpoint,
            self.factory,
            retryPolicy=backoffPolicy(initialDelay=0.02, maxDelay=0.2, jitter=lambda: 0.0),
        )
        self.service.startService()

    def call(self, caller: str, **kw: Any) -> Channel:
        return self.pbx.place_call(caller, **kw)

    async def stop(self) -> None:
        await self.service.stopService()
        for session in list(self.pbx.sessions):
            session.close()
        await self.port.stopListening()


@pytest.fixture
def hotline(sounds: Path) -> Iterator[Hotline]:
    line = Hotline(sounds)
    yield line
    pytest_twisted.blockon(defer.ensureDeferred(line.stop()))


@pytest_twisted.ensureDeferred
async def test_happy_path_over_tcp(hotline: Hotline) -> None:
    await until(lambda: hotline.factory.connected is not None)
    hotline.call("0912345678", script=[Press("8", on=MENU), Press("0123456789#", on=CODE)])
    await hotline.log.wait_for(1)
    [record] = hotline.log.records
    assert record.outcome is CallOutcome.RESET and record.caller == "+84912345678"


@pytest_twisted.ensureDeferred
async def test_withheld_number_over_tcp(hotline: Hotline) -> None:
    await until(lambda: hotline.factory.connected is not None)
    hotline.call("0912345678", presentation=33, script=[Press("8", on=MENU)])
    await hotline.log.wait_for(1)
    assert hotline.log.records[0].outcome is CallOutcome.WITHHELD


@pytest_twisted.ensureDeferred
async def test_hundred_simultaneous_calls_over_tcp(hotline: Hotline) -> None:
    await until(lambda: hotline.factory.connected is not None)
    for n in range(100):
        hotline.call(f"09123456{n:02d}", script=[Press("8", on=MENU), Press("0123456789", on=CODE)])
    await hotline.log.wait_for(100)
    assert {r.outcome for r in hotline.log.records} == {CallOutcome.RESET}


@pytest_twisted.ensureDeferred
async def test_link_dropped_mid_call_is_recorded_and_the_link_comes_back(hotline: Hotline) -> None:
    await until(lambda: hotline.factory.connected is not None)

    def drop(channel: Channel, prompt: str) -> None:
        if prompt == CODE:
            hotline.pbx.prompt_listeners.remove(drop)
            for session in list(hotline.pbx.sessions):
                session.transport.loseConnection()  # type: ignore[union-attr]

    hotline.pbx.prompt_listeners.append(drop)
    hotline.call("0912345678", script=[Press("8", on=MENU)])
    await hotline.log.wait_for(1)
    assert hotline.log.records[0].outcome is CallOutcome.LINK_LOST
    await until(lambda: hotline.factory.connected is not None and hotline.factory.reconnects == 1)
    hotline.call("0912345678", script=[Press("8", on=MENU), Press("0123456789", on=CODE)])
    await hotline.log.wait_for(2)
    assert hotline.log.records[1].outcome is CallOutcome.RESET


@pytest_twisted.ensureDeferred
async def test_refused_login_is_a_clear_error_and_is_retried_with_back_off(sounds: Path) -> None:
    errors: list[str] = []

    def observe(event: dict[str, Any]) -> None:
        if event.get("log_level") is not None and event["log_level"].name == "error":
            errors.append(event.get("log_format", ""))

    globalLogPublisher.addObserver(observe)
    line = Hotline(sounds, secret="wrong")
    try:
        await until(lambda: line.factory.login_failures >= 2)
        assert line.factory.connected is None
        assert any("refused the AMI login" in text for text in errors)
        line.pbx.users["vssid"] = user("wrong", "agi,call", "agi")  # the administrator fixes it
        await until(lambda: line.factory.connected is not None)
        assert line.factory.login_failures == 0
    finally:
        globalLogPublisher.removeObserver(observe)
        await line.stop()


@pytest_twisted.ensureDeferred
async def test_call_test_tool_drives_a_call_through_asterisk_and_masks_the_password(
    sounds: Path,
) -> None:
    line = Hotline(sounds, scale=0.1)
    try:
        await until(lambda: line.factory.connected is not None)
        plan = calltest.Plan(
            caller="0912345678",
            keys=calltest.parse_keys("8,0123456789#"),
            host="127.0.0.1",
            port=line.port.getHost().port,
            username="vssid-calltest",
            secret=Secret("ct"),
            timeout=20.0,
            key_delay=0.05,
            dtmf_ms=20,
        )
        printed: list[str] = []
        report = await threads.deferToThread(calltest.run, plan, printed.append)
        assert report.ok, "\n".join(printed)
        assert line.log.records[0].outcome is CallOutcome.RESET
        text = "\n".join(printed)
        assert "IVR: GET DATA vssid/enter-code" in text  # it follows the IVR's commands ...
        assert "SAY DIGITS" not in text and "4829175" not in text  # ... but not the password's
        assert "caller pressed 0123456789#" in text
    finally:
        await line.stop()


@pytest.mark.parametrize("how", ["env:NAME", "VSSID_CALLTEST_SECRET", "prompt"])
@pytest_twisted.ensureDeferred
async def test_call_test_takes_the_ami_secret_from_the_environment_or_a_prompt(
    sounds: Path, how: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    prompts_shown: list[str] = []
    monkeypatch.setenv("VSSID_AMI_SECRET", "ct")
    if how == "VSSID_CALLTEST_SECRET":
        monkeypatch.setenv(cli_calltest.SECRET_ENV, "ct")
    else:
        monkeypatch.delenv(cli_calltest.SECRET_ENV, raising=False)
    monkeypatch.setattr("getpass.getpass", lambda prompt: prompts_shown.append(prompt) or "ct")
    secret = ["--ami-secret", "env:VSSID_AMI_SECRET"] if how == "env:NAME" else []
    line = Hotline(sounds, scale=0.1)
    try:
        await until(lambda: line.factory.connected is not None)
        argv = [
            "call-test", "--caller", "0912345678", "--keys", "8,0123456789#", *secret,
            "--ami", line.settings.ami, "--timeout", "20", "--key-delay", "0.05", "--dtmf-ms", "20",
        ]  # fmt: skip
        status = await threads.deferToThread(cli.main, argv)
    finally:
        await line.stop()
    out = capsys.readouterr().out
    assert status == 0 and out.rstrip().splitlines()[-1].startswith("OK: reached the IVR=True")
    assert prompts_shown == (["AMI secret for vssid-calltest: "] if how == "prompt" else [])


def test_call_test_with_an_unset_secret_variable_says_so_before_connecting(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("VSSID_NO_SUCH_VARIABLE", raising=False)
    monkeypatch.setenv(cli_calltest.SECRET_ENV, "ct")  # an explicit --ami-secret comes first
    argv = [
        "call-test", "--caller", "0912345678", "--ami", "tcp:127.0.0.1:1",
        "--ami-secret", "env:VSSID_NO_SUCH_VARIABLE",
    ]  # fmt: skip

    assert cli.main(argv) == 2  # 1, "cannot reach the AMI", had it tried to connect
    assert "environment variable VSSID_NO_SUCH_VARIABLE is not set" in capsys.readouterr().err


@pytest_twisted.ensureDeferred
async def test_shutdown_over_tcp_hands_the_call_back_and_logs_off(
    hotline: Hotline,
) -> None:
    await until(lambda: hotline.factory.connected is not None)
    seen: list[str] = []
    hotline.pbx.prompt_listeners.append(lambda channel, prompt: seen.append(prompt))
    caller = hotline.call("0912345678", script=[Press("8", on=MENU)])  # then waits at the code
    await until(lambda: CODE in seen)
    await hotline.factory.shutdown(timeout=5.0)
    await hotline.log.wait_for(1)
    [record] = hotline.log.records
    assert record.outcome is CallOutcome.ERROR and record.detail == "gateway stopping"
    await until(lambda: not caller.alive)
    assert [p for _, p in hotline.pbx.dialplan_prompts] == ["vssid/error"]
    assert not any(s.username == "vssid" for s in hotline.pbx.sessions)  # logged off
    assert hotline.factory.connected is None
    assert hotline.factory.buildProtocol(None) is None  # no reconnect until the service stops
