"""The AMI link state machine, fed the recorded bytes of a real Asterisk 22."""

from __future__ import annotations

import pytest

from commands.secret import Secret
from ivr import ami, link
from ivr.link import (
    CallEnded,
    CallStarted,
    Close,
    CommandDone,
    CommandFailed,
    Failure,
    LinkState,
    LoggedIn,
    LoginFailed,
    Send,
)
from tests.fixtures import AMI as FIXTURES

CHANNEL = "Local/19009068@hotline-00000000;2"


def ready(**kw: float) -> tuple[link.AmiLink, list[link.Effect]]:
    session = link.AmiLink("vssid", Secret("s3cret"), **kw)
    session.connection_made(0.0)
    effects = session.data_received(b"Asterisk Call Manager/11.0.0\r\n", 0.0)
    effects += session.data_received(
        b"Response: Success\r\nActionID: vssid-1\r\nMessage: Authentication accepted\r\n\r\n", 0.0
    )
    return session, effects


def sent(effects: list[link.Effect]) -> list[ami.Message]:
    out = []
    for effect in effects:
        if isinstance(effect, Send):
            out += [m for m in ami.decode_all(effect.data, expect_banner=False)]
    return [m for m in out if isinstance(m, ami.Message)]


def event(name: str, *headers: tuple[str, str]) -> bytes:
    return ami.encode([("Event", name), ("Privilege", "agi,all"), ("Channel", CHANNEL), *headers])


def started(session: link.AmiLink) -> list[link.Effect]:
    env = "agi_callerid%3A%200912345678%0Aagi_uniqueid%3A%201.2%0A%0A"
    return session.data_received(event("AsyncAGIStart", ("Uniqueid", "1.2"), ("Env", env)), 1.0)


def test_login_is_sent_after_the_banner_with_the_event_classes() -> None:
    session, effects = ready()
    [login] = sent(effects)
    assert login.action == "Login" and login["Secret"] == "s3cret"
    assert login["Events"] == "agi,call"
    assert LoggedIn("Asterisk Call Manager/11.0.0") in effects
    assert session.state is LinkState.READY


def test_refused_login_is_reported_and_closes() -> None:
    session = link.AmiLink("vssid", Secret("wrong"))
    session.data_received(b"Asterisk Call Manager/11.0.0\r\n", 0.0)
    effects = session.data_received(
        b"Response: Error\r\nActionID: vssid-1\r\nMessage: Authentication failed\r\n\r\n", 1.0
    )
    assert effects == [LoginFailed("Authentication failed"), Close("AMI login refused")]
    assert session.state is LinkState.CLOSED


def test_call_start_command_result_and_end() -> None:
    session, _ = ready()
    assert started(session) == [
        CallStarted(CHANNEL, "1.2", {"agi_callerid": "0912345678", "agi_uniqueid": "1.2"})
    ]
    key, effects = session.send_command(CHANNEL, 'STREAM FILE vssid/menu "8"', 1.0, 30.0)
    [action] = sent(effects)
    assert (action["Channel"], action["Command"], action["CommandID"]) == (
        CHANNEL,
        'STREAM FILE vssid/menu "8"',
        key[1],
    )
    ack = ami.encode(
        [
            ("Response", "Success"),
            ("ActionID", action.action_id or ""),
            ("Message", "Added AGI command to queue"),
        ]
    )
    assert session.data_received(ack, 1.0) == []
    internal = event("AGIExecEnd", ("CommandId", "123"), ("Result", "Success"))
    assert session.data_received(internal, 2.0) == []
    done = event(
        "AsyncAGIExec", ("Result", "200%20result%3D56%20endpos%3D160%0A"), ("CommandId", key[1])
    )
    [result] = session.data_received(done, 2.0)
    assert isinstance(result, CommandDone) and result.result.digit == "8"
    assert session.data_received(event("AsyncAGIEnd"), 3.0) == [
        CallEnded(CHANNEL, "AsyncAGI ended")
    ]


def test_older_asterisk_event_shape_is_understood() -> None:
    session, _ = ready()
    env = "agi_callerid%3A%200912345678%0A%0A"
    [start] = session.data_received(event("AsyncAGI", ("SubEvent", "Start"), ("Env", env)), 1.0)
    assert isinstance(start, CallStarted)
    key, _ = session.send_command(CHANNEL, "ANSWER", 1.0, 30.0)
    [done] = session.data_received(
        event(
            "AsyncAGI",
            ("SubEvent", "Exec"),
            ("CommandID", key[1]),
            ("Result", "200%20result%3D0%0A"),
        ),
        1.1,
    )
    assert isinstance(done, CommandDone)
    assert session.data_received(event("AsyncAGI", ("SubEvent", "End")), 2.0)[-1] == CallEnded(
        CHANNEL, "AsyncAGI ended"
    )


def test_hangup_fails_every_outstanding_command_even_one_acknowledged() -> None:
    session, _ = ready()
    started(session)
    first, _ = session.send_command(CHANNEL, "ANSWER", 1.0, 30.0)
    second, _ = session.send_command(CHANNEL, "HANGUP", 1.0, 30.0)
    hangup = ami.encode(
        [("Event", "Hangup"), ("Privilege", "call,all"), ("Channel", CHANNEL), ("Cause", "16")]
    )
    effects = session.data_received(hangup, 2.0)
    assert effects == [
        CommandFailed(first, Failure.HANGUP, "hangup"),
        CommandFailed(second, Failure.HANGUP, "hangup"),
        CallEnded(CHANNEL, "hangup"),
    ]
    key, effects = session.send_command(CHANNEL, "ANSWER", 3.0, 30.0)
    assert effects == [CommandFailed(key, Failure.HANGUP, "the call has ended")]


@pytest.mark.parametrize(
    "message",
    [f"Channel {CHANNEL} does not exist.", f"Failed to add AGI command to channel {CHANNEL} queue"],
)
def test_a_refused_command_fails_and_ends_the_call(message: str) -> None:
    session, _ = ready()
    started(session)
    key, effects = session.send_command(CHANNEL, "ANSWER", 1.0, 30.0)
    [action] = sent(effects)
    error = ami.encode(
        [("Response", "Error"), ("ActionID", action.action_id or ""), ("Message", message)]
    )
    effects = session.data_received(error, 1.0)
    assert effects[0] == CommandFailed(key, Failure.REJECTED, message)
    assert isinstance(effects[-1], CallEnded)


def test_every_command_has_a_deadline() -> None:
    session, _ = ready(ping_interval=1000.0)
    started(session)
    key, _ = session.send_command(CHANNEL, "ANSWER", 1.0, 5.0)
    assert session.next_deadline() == 6.0
    assert session.tick(5.9) == []
    assert session.tick(6.0) == [CommandFailed(key, Failure.TIMEOUT)]


def test_ping_keeps_the_link_alive_and_a_silent_asterisk_closes_it() -> None:
    session, _ = ready(ping_interval=20.0, ping_timeout=10.0)
    [ping] = sent(session.tick(20.0))
    assert ping.action == "Ping"
    pong = ami.encode(
        [("Response", "Success"), ("ActionID", ping.action_id or ""), ("Ping", "Pong")]
    )
    session.data_received(pong, 20.1)
    sent(session.tick(40.0))
    started(session)
    effects = session.tick(50.0)
    assert effects[0] == Close("Asterisk did not answer Ping")
    assert CallEnded(CHANNEL, link.LINK_LOST) in effects


def test_lost_link_ends_every_call() -> None:
    session, _ = ready()
    started(session)
    key, _ = session.send_command(CHANNEL, "ANSWER", 1.0, 30.0)
    assert session.connection_lost(2.0) == [
        CommandFailed(key, Failure.HANGUP, link.LINK_LOST),
        CallEnded(CHANNEL, link.LINK_LOST),
    ]


def test_garbage_closes_the_link_instead_of_raising() -> None:
    session, _ = ready()
    effects = session.data_received(b"this is not AMI\r\n\r\n", 1.0)
    assert isinstance(effects[0], Close)


def test_recorded_happy_path_yields_one_call_and_its_end() -> None:
    data = (FIXTURES / "happy-path.s2c.raw").read_bytes()
    session = link.AmiLink("vssid", Secret("***"))
    effects: list[link.Effect] = []
    for offset in range(0, len(data), 97):
        effects += session.data_received(data[offset : offset + 97], 1.0)
    starts = [e for e in effects if isinstance(e, CallStarted)]
    assert len(starts) == 1 and starts[0].env["agi_callerid"] == "0912345678"
    assert starts[0].unique_id == starts[0].env["agi_uniqueid"]
    assert starts[0].answered  # the recorded dialplan answers before AGI(): ChannelState 6
    assert [e for e in effects if isinstance(e, CallEnded)] == [
        CallEnded(starts[0].channel, "AsyncAGI ended")
    ]


@pytest.mark.parametrize(("state", "answered"), [("6", True), ("4", False), (None, False)])
def test_a_call_says_whether_the_dialplan_already_answered_it(
    state: str | None, answered: bool
) -> None:
    session, _ = ready()
    headers = [("Uniqueid", "1.2"), ("Env", "agi_uniqueid%3A%201.2%0A%0A")]
    if state is not None:  # Asterisk < 12's "Event: AsyncAGI / SubEvent: Start" has no state
        headers.insert(0, ("ChannelState", state))
    [start] = session.data_received(event("AsyncAGIStart", *headers), 1.0)
    assert isinstance(start, CallStarted) and start.answered is answered
