"""The thread pool for blocking work (database, Argon2), started and stopped with the service.

Everything that can block (a query, a commit's fsync, a 25 ms Argon2 hash) runs here, so the
reactor thread only moves bytes and timers. ``argon2`` and both database drivers release the
GIL while they work, so these threads really run on every core.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ParamSpec, TypeVar

from twisted.application.service import Service
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorFromThreads
from twisted.internet.threads import deferToThreadPool
from twisted.python.threadpool import ThreadPool

P = ParamSpec("P")
T = TypeVar("T")


class WorkerPool(Service):
    """A Twisted thread pool as a service; :meth:`run` returns a Deferred of the result."""

    def __init__(self, reactor: IReactorFromThreads, size: int) -> None:
        self._reactor = reactor
        self._pool = ThreadPool(minthreads=1, maxthreads=size, name="vssid-workers")

    def startService(self) -> None:  # noqa: N802 - Twisted's name
        super().startService()
        self._pool.start()

    def stopService(self) -> None:  # noqa: N802 - Twisted's name
        super().stopService()
        self._pool.stop()

    def run(self, function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> Deferred[T]:
        return deferToThreadPool(self._reactor, self._pool, function, *args, **kwargs)
