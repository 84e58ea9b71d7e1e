"""The hotline dialog through the real AMI client against the Asterisk stand-in, in memory.

Both sides share one ``Clock``: prompts take their real length, time-outs expire, and nothing
costs wall time. The reset is a small async function standing in for the gateway's port.
"""

from __future__ import annotations

import dataclasses

import pytest
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import globalLogPublisher

from commands.ports import Channel, Outcome
from commands.replies import Reply
from commands.reset import ResetRequest, ResetResult
from commands.secret import Secret
from ivr.client import AmiClientFactory
from ivr.dialog import handle_call
from ivr.records import CallOutcome, CallRecord
from ivr.settings import IvrSettings, Route
from tests.support.asterisk_standin import (
    CALLTEST_USER,
    SERVICE_SOUNDS,
    SERVICE_USER,
    AmiSession,
    HangUp,
    Loop,
    Pbx,
    Press,
    Step,
    Timing,
    run_for,
    shipped_dialplan,
)

PASSWORD = "4829175"
SETTINGS = IvrSettings(enabled=True, username="vssid", secret=Secret("secret"))


class Records:
    def __init__(self) -> None:
        self.records: list[CallRecord] = []

    def record(self, call: CallRecord) -> None:
        self.records.append(call)


class FakeReset:
    """Stands in for the gateway's reset port (ResetService in a thread pool)."""

    def __init__(self, outcome: Outcome = Outcome.RESET, fail: bool = False) -> None:
        self.outcome = outcome
        self.fail = fail
        self.requests: list[ResetRequest] = []

    async def __call__(self, request: ResetRequest) -> ResetResult:
        self.requests.append(request)
        if self.fail:
            raise RuntimeError("database is down")
        password = Secret(PASSWORD) if self.outcome is Outcome.RESET else None
        return ResetResult(self.outcome, Reply(self.outcome.value), password=password)


@dataclasses.dataclass
class Run:
    loop: Loop
    factory: AmiClientFactory
    log: Records
    reset: FakeReset

    @property
    def record(self) -> CallRecord:
        return self.log.records[0]

    def prompts(self) -> list[str]:
        return [c.split(" ")[2] for c in self.loop.commands() if c.startswith(("STREAM", "GET D"))]


def start(
    reset: FakeReset | None = None, settings: IvrSettings = SETTINGS, timing: Timing | None = None
) -> Run:
    clock = Clock()
    pbx = Pbx(
        clock,
        timing=timing or Timing(),
        sounds=SERVICE_SOUNDS,
        users={"vssid": SERVICE_USER},
        dialplan=shipped_dialplan(),
    )
    log = Records()
    port = reset or FakeReset()
    factory = AmiClientFactory(settings, lambda call: handle_call(call, port, settings, log), clock)
    loop = Loop(pbx, factory)
    loop.run_until(lambda: factory.connected is not None)
    return Run(loop, factory, log, port)


def call(
    steps: list[Step], caller: str | None = "0912345678", presentation: int = 0, **kw: object
) -> Run:
    run = start(**kw)  # type: ignore[arg-type]
    run.loop.pbx.place_call(caller, presentation=presentation, script=steps)
    run.loop.run_until(lambda: bool(run.log.records))
    return run


MENU, CODE = "vssid/menu", "vssid/enter-code"


def test_happy_path_resets_and_reads_the_password_twice_then_hangs_up() -> None:
    run = call([Press("8", on=MENU, after=1.0), Press("0123456789#", on=CODE, after=1.5, gap=0.3)])
    record = run.record
    assert record.outcome is CallOutcome.RESET
    assert run.reset.requests == [
        ResetRequest("0912345678", "0123456789", Channel.IVR, record.unique_id)
    ]
    commands = run.loop.commands()
    assert commands[0] == "SET VARIABLE TIMEOUT(absolute) 300"  # before Asterisk's 10 s expire
    assert "ANSWER" not in commands  # the dialplan answered: ANSWER would only cost a poll
    assert commands.count(f'SAY DIGITS {PASSWORD} ""') == 2
    assert commands[-1] == "HANGUP"
    assert run.prompts() == [MENU, CODE, "vssid/new-password", "vssid/repeat", "vssid/goodbye"]
    assert record.keys == "menu:8 code:********89"
    assert record.caller == "+84912345678" and record.caller_received == "0912345678"
    assert record.answered_at == record.started_at  # up at AsyncAGIStart: billed from there
    assert record.ended_at > record.answered_at
    assert PASSWORD not in repr(record) and "0123456789" not in repr(record)


def test_barge_in_stops_the_menu_at_once() -> None:
    run = call([Press("8", on=MENU, after=0.5), HangUp(on=CODE)])
    assert run.record.outcome is CallOutcome.HUNG_UP
    assert run.record.keys.startswith("menu:8")


def test_wrong_code_gets_the_mismatch_prompt() -> None:
    run = call(
        [Press("8", on=MENU), Press("0123456789", on=CODE)], reset=FakeReset(Outcome.MISMATCH)
    )
    assert run.record.outcome is CallOutcome.MISMATCH
    assert run.prompts()[-1] == "vssid/not-matched"
    assert "SAY DIGITS" not in " ".join(run.loop.commands())


def test_rate_limited_gets_its_own_prompt() -> None:
    run = call(
        [Press("8", on=MENU), Press("0123456789", on=CODE)], reset=FakeReset(Outcome.RATE_LIMITED)
    )
    assert run.record.outcome is CallOutcome.RATE_LIMITED
    assert run.prompts()[-1] == "vssid/rate-limited"


def test_a_failing_reset_service_says_so_and_records_an_error() -> None:
    run = call([Press("8", on=MENU), Press("0123456789", on=CODE)], reset=FakeReset(fail=True))
    assert run.record.outcome is CallOutcome.ERROR
    assert run.prompts()[-1] == "vssid/error"
    assert run.record.detail == "reset failed: RuntimeError"


def test_too_few_digits_then_time_out_then_success() -> None:
    run = call([Press("8", on=MENU), Press("01234", on=CODE), Press("0123456789", on=CODE)])
    assert run.record.outcome is CallOutcome.RESET
    assert "vssid/code-invalid" in run.prompts()
    assert run.record.keys == "menu:8 code:***34 code:********89"


def test_nothing_typed_gets_the_no_input_prompt() -> None:
    run = call([Press("8", on=MENU), Press("", on=CODE), Press("0123456789", on=CODE)])
    assert "vssid/no-input" in run.prompts()
    assert run.record.keys == "menu:8 code:- code:********89"


def test_three_failed_tries_end_the_call() -> None:
    run = call(
        [Press("8", on=MENU), Press("1#", on=CODE), Press("12#", on=CODE), Press("123#", on=CODE)]
    )
    assert run.record.outcome is CallOutcome.TOO_MANY_TRIES
    assert run.prompts().count(CODE) == 3
    assert run.prompts()[-1] == "vssid/too-many-tries"
    assert run.reset.requests == []


def test_star_starts_the_try_over() -> None:
    run = call([Press("8", on=MENU), Press("0123*", on=CODE), Press("0123456789", on=CODE)])
    assert run.record.outcome is CallOutcome.RESET
    assert "vssid/code-invalid" not in run.prompts()


@pytest.mark.parametrize(
    ("caller", "presentation", "outcome", "prompt"),
    [
        ("0912345678", 33, CallOutcome.WITHHELD, "vssid/number-withheld"),
        ("0912345678", 32, CallOutcome.WITHHELD, "vssid/number-withheld"),
        (None, 0, CallOutcome.NO_NUMBER, "vssid/number-withheld"),
        ("anonymous", 0, CallOutcome.NO_NUMBER, "vssid/number-withheld"),
        ("12345", 0, CallOutcome.INVALID_NUMBER, "vssid/number-invalid"),
    ],
)
def test_callers_without_a_usable_number_get_their_own_prompt(
    caller: str | None, presentation: int, outcome: CallOutcome, prompt: str
) -> None:
    run = call([Press("8", on=MENU)], caller=caller, presentation=presentation)
    assert run.record.outcome is outcome
    assert run.prompts() == [MENU, prompt]
    assert run.reset.requests == []
    assert run.record.caller is None


@pytest.mark.parametrize(
    ("steps", "keys"),
    [
        ([HangUp(on=MENU, after=2.0)], ""),
        ([Press("8", on=MENU), Press("012", on=CODE, gap=0.3), HangUp(after=0.5)], "menu:8"),
    ],
)
def test_hang_up_during_the_menu_or_the_code_is_recorded(steps: list[Step], keys: str) -> None:
    run = call(steps)
    assert run.record.outcome is CallOutcome.HUNG_UP
    assert run.record.keys == keys
    assert run.loop.commands()[-1] != "HANGUP"


def test_hang_up_during_the_password_is_still_a_reset() -> None:
    run = call(
        [Press("8", on=MENU), Press("0123456789", on=CODE), HangUp(on="say-digits", after=1.0)]
    )
    assert run.record.outcome is CallOutcome.RESET
    assert "hung up" in run.record.detail
    assert run.loop.commands().count(f'SAY DIGITS {PASSWORD} ""') == 1


def test_another_menu_key_goes_to_its_dialplan_route() -> None:
    settings = dataclasses.replace(SETTINGS, routes=(Route("0", "hotline-agents,s,1"),))
    run = call([Press("0", on=MENU)], settings=settings)
    assert run.record.outcome is CallOutcome.ROUTED
    assert run.loop.commands()[-2:] == ["EXEC Goto hotline-agents,s,1", "ASYNCAGI BREAK"]


def test_no_key_after_the_menu_says_goodbye() -> None:
    run = call([])
    assert run.record.outcome is CallOutcome.NO_CHOICE
    assert "WAIT FOR DIGIT 5000" in run.loop.commands()


def test_a_command_that_never_answers_times_out_and_ends_the_call() -> None:
    settings = dataclasses.replace(SETTINGS, command_timeout_seconds=3.0)
    stuck = Timing(agi_poll=60.0)  # Asterisk acknowledges the command but does not run it
    run = call([], settings=settings, timing=stuck)
    assert run.record.outcome is CallOutcome.HUNG_UP
    assert run.record.detail == "AGI command timed out"
    assert run.loop.commands() == ["SET VARIABLE TIMEOUT(absolute) 300", "HANGUP"]


def test_link_dropped_mid_call_ends_it_and_the_orphan_is_hung_up_after_reconnect() -> None:
    run = start()
    run.loop.pbx.place_call("0912345678", script=[Press("8", on=MENU)])
    run.loop.run_until(lambda: any(c.startswith("GET DATA") for c in run.loop.commands()))
    channel = run.loop.pbx.started_calls[0].name
    run.loop.client.transport.loseConnection()
    run.loop.run_until(lambda: bool(run.log.records))
    assert run.record.outcome is CallOutcome.LINK_LOST
    assert run.factory.connected is None

    again = Loop(run.loop.pbx, run.factory)
    again.run_until(lambda: run.factory.connected is not None)
    again.run_until(lambda: "HANGUP" in again.commands())
    assert [m.get("Channel") for m in again.server.received if m.action == "AGI"] == [channel]


def test_a_link_the_client_closes_itself_still_hangs_up_its_calls_after_reconnect() -> None:
    run = start()
    run.loop.pbx.place_call("0912345678", script=[Press("8", on=MENU)])
    run.loop.run_until(lambda: any(c.startswith("GET DATA") for c in run.loop.commands()))
    channel = run.loop.pbx.started_calls[0].name
    run.loop.client.dataReceived(b"not an AMI header line\r\n")  # framing error: we close
    run.loop.run_until(lambda: bool(run.log.records))
    assert run.record.outcome is CallOutcome.LINK_LOST

    again = Loop(run.loop.pbx, run.factory)
    again.run_until(lambda: run.factory.connected is not None)
    again.run_until(lambda: "HANGUP" in again.commands())
    assert [m.get("Channel") for m in again.server.received if m.action == "AGI"] == [channel]


def test_an_unreadable_agi_reply_ends_the_call_and_hangs_it_up() -> None:
    run = start()
    run.loop.pbx.place_call("0912345678", script=[])
    run.loop.run_until(lambda: any(c.startswith("STREAM FILE") for c in run.loop.commands()))
    pending = [m for m in run.loop.server.received if m.action == "AGI"][-1]
    garbled = (
        f"Event: AsyncAGIExec\r\nChannel: {pending.get('Channel')}\r\n"
        f"CommandId: {pending.get('CommandID')}\r\nResult: 200%20banana\r\n\r\n"
    )
    run.loop.client.dataReceived(garbled.encode())
    run.loop.run_until(lambda: bool(run.log.records))
    assert run.record.outcome is CallOutcome.HUNG_UP
    assert run.record.detail.startswith("unreadable AGI reply")
    run.loop.run_until(lambda: "HANGUP" in run.loop.commands())


def test_hundred_simultaneous_calls_all_complete() -> None:
    run = start()
    for n in range(100):
        run.loop.pbx.place_call(
            f"09123456{n:02d}",
            script=[
                Press("8", on=MENU, after=0.5 + n * 0.01),
                Press("0123456789", on=CODE, after=1.0),
            ],
        )
    run.loop.run_until(lambda: len(run.log.records) == 100)
    assert {r.outcome for r in run.log.records} == {CallOutcome.RESET}
    assert len({r.unique_id for r in run.log.records}) == 100
    assert len(run.reset.requests) == 100


def test_refused_login_backs_off_before_the_next_attempt() -> None:
    clock = Clock()
    pbx = Pbx(clock, timing=Timing(), sounds=SERVICE_SOUNDS, users={"vssid": SERVICE_USER})
    wrong = dataclasses.replace(SETTINGS, secret=Secret("wrong"))
    factory = AmiClientFactory(
        wrong, lambda call: handle_call(call, FakeReset(), wrong, Records()), clock
    )
    loop = Loop(pbx, factory)
    loop.run_until(lambda: factory.login_failures == 1)
    assert 0.9 <= clock.seconds() <= 1.1  # Asterisk answers a wrong secret after about 1 s
    assert factory.connected is None
    assert factory.buildProtocol(None) is None  # too early: ClientService counts a failure
    clock.advance(2.0)
    assert factory.buildProtocol(None) is not None
    loop.run_until(lambda: factory.login_failures == 1 and loop.pump.clientIO.disconnected)


def test_the_password_appears_in_no_log_event_and_no_record() -> None:
    seen: list[str] = []

    def observe(event: dict[str, object]) -> None:
        seen.append(repr(event))

    globalLogPublisher.addObserver(observe)
    try:
        run = call([Press("8", on=MENU), Press("0123456789", on=CODE)])
        run.loop.client.transport.loseConnection()
        run.loop.pump.flush()
    finally:
        globalLogPublisher.removeObserver(observe)
    assert run.record.outcome is CallOutcome.RESET
    assert seen, "the client logs its link events"
    assert not [event for event in seen if PASSWORD in event]
    assert PASSWORD not in repr(run.log.records)


# -- billing: the dialplan answers before AGI() ---------------------------------------------


def test_a_caller_who_hangs_up_at_once_is_still_billed_from_the_start() -> None:
    run = call([HangUp(after=0.55)])  # AsyncAGIStart at 0.5 s, before any command has run
    assert run.record.outcome is CallOutcome.HUNG_UP
    assert run.record.answered_at == run.record.started_at  # the channel was up at AsyncAGIStart
    assert run.record.billed_minutes == 1


# -- star restarts the code entry -------------------------------------------------------------


def test_star_then_retyping_at_once_keeps_the_keys_after_the_star() -> None:
    # GET DATA collects "*" like a digit: the first read ends at 10 keys, "0123*01234".
    run = call([Press("8", on=MENU), Press("0123*0123456789", on=CODE, gap=0.3)])
    assert run.record.outcome is CallOutcome.RESET
    assert run.reset.requests[0].code == "0123456789"
    reads = [c for c in run.loop.commands() if c.startswith("GET DATA")]
    assert reads == ["GET DATA vssid/enter-code 6000 10", "GET DATA vssid/enter-code 6000 5"]
    assert run.record.keys == "menu:8 code:* code:********89"
    assert "vssid/code-invalid" not in run.prompts()


def test_star_then_a_pause_starts_the_entry_over_with_the_prompt() -> None:
    run = call([Press("8", on=MENU), Press("0123*", on=CODE), Press("0123456789", on=CODE)])
    assert run.record.outcome is CallOutcome.RESET
    assert run.record.keys == "menu:8 code:* code:********89"
    assert "vssid/code-invalid" not in run.prompts() and "vssid/no-input" not in run.prompts()


def test_a_restart_is_not_a_failed_try() -> None:
    one_try = dataclasses.replace(SETTINGS, max_tries=1)
    run = call(
        [Press("8", on=MENU), Press("99*", on=CODE), Press("0123456789", on=CODE)],
        settings=one_try,
    )
    assert run.record.outcome is CallOutcome.RESET


def test_keys_after_a_star_ended_with_hash_are_the_whole_entry() -> None:
    run = call(
        [Press("8", on=MENU), Press("0123*45#", on=CODE), Press("0123456789#", on=CODE)]
    )
    assert run.record.outcome is CallOutcome.RESET
    assert run.record.keys == "menu:8 code:* code:** code:********89"
    assert run.prompts().count("vssid/code-invalid") == 1


def test_restarts_are_bounded_so_the_call_stays_short() -> None:
    one_try = dataclasses.replace(SETTINGS, max_tries=1)
    steps: list[Step] = [Press("8", on=MENU), *(Press("*", on=CODE) for _ in range(4))]
    run = call(steps, settings=one_try)
    assert run.record.outcome is CallOutcome.TOO_MANY_TRIES
    assert run.record.keys == "menu:8 code:* code:* code:* code:*"
    assert run.prompts().count(CODE) == 4


# -- failures of ours ---------------------------------------------------------------------


def test_a_failure_of_ours_is_recorded_hangs_the_caller_up_and_is_logged() -> None:
    failures: list[dict[str, object]] = []

    def observe(event: dict[str, object]) -> None:
        if event.get("log_failure") is not None:
            failures.append(event)

    broken = dataclasses.replace(SETTINGS, routes=(Route("0", "hotline-agents\nHANGUP"),))
    globalLogPublisher.addObserver(observe)
    try:
        run = call([Press("0", on=MENU)], settings=broken)
    finally:
        globalLogPublisher.removeObserver(observe)
    assert run.record.outcome is CallOutcome.ERROR
    assert run.record.detail == "failed: AgiCommandError"
    assert run.loop.commands()[-1] == "HANGUP"
    assert not run.loop.pbx.channels  # nobody left in silence
    assert [e["log_format"] for e in failures] == ["The call dialog failed"]


# -- the dialplan's guards: nobody waits in silence on a channel the service does not drive --


def test_a_call_while_the_service_is_logged_off_hears_the_error_prompt_at_once() -> None:
    clock = Clock()
    pbx = Pbx(clock, sounds=SERVICE_SOUNDS, dialplan=shipped_dialplan())
    caller = pbx.place_call("0912345678")
    run_for(clock, 5.0)
    assert pbx.started_calls == []  # no AsyncAGIStart nobody would answer
    assert [prompt for _, prompt in pbx.dialplan_prompts] == ["vssid/error"]
    assert not caller.alive


def test_a_call_the_service_never_drives_ends_after_the_short_timeout() -> None:
    clock = Clock()
    pbx = Pbx(
        clock,
        sounds=SERVICE_SOUNDS,
        users={"vssid": SERVICE_USER},
        dialplan=shipped_dialplan(),
    )
    stuck = AmiClientFactory(SETTINGS, lambda call: Deferred(), clock)  # never sends a command
    loop = Loop(pbx, stuck)
    loop.run_until(lambda: stuck.connected is not None)
    caller = pbx.place_call("0912345678")
    loop.run_until(lambda: not caller.alive, limit=60.0)
    assert [prompt for _, prompt in pbx.dialplan_prompts] == ["vssid/error"]
    assert 10.0 <= clock.seconds() <= 10.0 + 0.5 + 2.0 + 0.1  # answer, the limit, the prompt


def test_the_dialog_raises_the_limit_so_a_slow_caller_is_not_cut_at_ten_seconds() -> None:
    run = call([Press("8", on=MENU, after=1.0), Press("0123456789", on=CODE, after=11.0)])
    assert run.record.outcome is CallOutcome.RESET
    assert run.loop.pbx.dialplan_prompts == []


def test_a_call_past_the_call_limit_is_ended_by_asterisk() -> None:
    short = dataclasses.replace(SETTINGS, call_limit_seconds=15)
    run = call([Press("8", on=MENU)], settings=short)  # then types nothing: 3 slow tries
    assert run.record.outcome is CallOutcome.HUNG_UP
    assert [prompt for _, prompt in run.loop.pbx.dialplan_prompts] == ["vssid/error"]
    assert run.loop.clock.seconds() < 15.0 + 0.5 + 2.0 + 0.1


def test_a_call_routed_to_an_agent_outlives_the_call_limit() -> None:
    settings = dataclasses.replace(SETTINGS, call_limit_seconds=60)
    run = call([Press("0", on=MENU)], settings=settings)
    assert run.record.outcome is CallOutcome.ROUTED
    [agent_call] = run.loop.pbx.started_calls
    run.loop.run_until(lambda: run.loop.clock.seconds() >= 600.0, limit=700.0)
    assert agent_call.alive and agent_call.context == "hotline-agents"


# -- a graceful stop ----------------------------------------------------------------------


def test_stop_hands_calls_back_lets_a_password_finish_and_logs_off() -> None:
    run = start()
    pbx = run.loop.pbx
    menu_caller = pbx.place_call("0912345678", script=[Press("8", on=MENU, after=1.0)])
    pbx.place_call(
        "0912345679", script=[Press("8", on=MENU), Press("0123456789", on=CODE)]
    )
    run.loop.run_until(lambda: bool(pbx.said_digits))  # the second caller hears the password
    stopped = run.factory.shutdown()
    run.loop.run_until(lambda: stopped.called, limit=SETTINGS.stop_timeout_seconds + 2.1)

    by_caller = {r.caller_received: r for r in run.log.records}
    assert by_caller["0912345679"].outcome is CallOutcome.RESET
    assert pbx.said_digits == [(by_caller["0912345679"].channel, PASSWORD)] * 2
    assert by_caller["0912345678"].outcome is CallOutcome.ERROR
    assert by_caller["0912345678"].detail == "gateway stopping"
    assert "ASYNCAGI BREAK" in run.loop.commands()
    assert [p for _, p in pbx.dialplan_prompts] == ["vssid/error"]  # told, then hung up
    assert not menu_caller.alive
    assert run.loop.server.received[-1].action == "Logoff"
    assert run.factory.connected is None and run.factory.buildProtocol(None) is None


def test_a_call_arriving_during_the_stop_is_handed_back_at_once() -> None:
    run = start()
    pbx = run.loop.pbx
    pbx.place_call("0912345678", script=[Press("8", on=MENU), Press("0123456789", on=CODE)])
    run.loop.run_until(lambda: bool(pbx.said_digits))
    stopped = run.factory.shutdown()
    late = pbx.place_call("0912345679")
    run.loop.run_until(lambda: stopped.called and not late.alive, limit=30.0)
    [late_record] = [r for r in run.log.records if r.caller_received == "0912345679"]
    assert late_record.outcome is CallOutcome.ERROR and late_record.keys == ""
    assert [p for _, p in pbx.dialplan_prompts] == ["vssid/error"]


def test_stop_is_bounded_when_asterisk_runs_no_command() -> None:
    stuck = Timing(agi_poll=600.0)  # commands are queued, never run
    settings = dataclasses.replace(SETTINGS, command_timeout_seconds=600.0)
    run = start(settings=settings, timing=stuck)
    run.loop.pbx.place_call("0912345678")
    run.loop.run_until(lambda: bool(run.factory.connected and run.factory.connected.calls))
    began = run.loop.clock.seconds()
    stopped = run.factory.shutdown(timeout=5.0)
    run.loop.run_until(lambda: stopped.called, limit=10.0)
    assert run.loop.clock.seconds() - began <= 5.0 + 2.0
    assert run.factory.connected is None


# -- manager.conf: the call-test user never sees the password -------------------------------


def test_the_call_test_user_sees_the_ivr_commands_but_not_the_spoken_password() -> None:
    run = start()
    pbx = run.loop.pbx
    pbx.users["vssid-calltest"] = CALLTEST_USER  # as ivr/asterisk/manager.conf ships it
    watcher = AmiSession(pbx)
    watcher.makeConnection(StringTransport())
    watcher.dataReceived(
        b"Action: Login\r\nUsername: vssid-calltest\r\nSecret: ct\r\nEvents: agi,call\r\n\r\n"
    )
    pbx.place_call("0912345678", script=[Press("8", on=MENU), Press("0123456789", on=CODE)])
    run.loop.run_until(lambda: bool(run.log.records))
    seen = watcher.transport.value()  # type: ignore[union-attr]
    assert b"Command: GET DATA vssid/enter-code" in seen
    assert b"SAY DIGITS" not in seen and PASSWORD.encode() not in seen
