"""Waiting for a condition on the real reactor without sleeping for luck: poll, with a deadline."""

from __future__ import annotations

from collections.abc import Callable

from twisted.internet import reactor
from twisted.internet.defer import Deferred

TIMEOUT = 15.0
POLL = 0.005


def until(condition: Callable[[], bool], timeout: float = TIMEOUT) -> Deferred[None]:
    """Fires when ``condition()`` holds, checked every few ms; fails after ``timeout``."""
    done: Deferred[None] = Deferred()

    def check(left: int) -> None:
        if condition():
            done.callback(None)
        elif left == 0:
            done.errback(AssertionError("condition not met in time"))
        else:
            reactor.callLater(POLL, check, left - 1)  # type: ignore[attr-defined]

    check(int(timeout / POLL))
    return done
