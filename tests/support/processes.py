"""The gateway as a real operating-system process, for crash, multi-instance and benchmark runs.

Some promises can only be checked against a real process: that nothing acknowledged is lost
after ``kill -9`` (no ``finally`` runs, no buffer is flushed), and that two processes sharing
one PostgreSQL database claim each reply once. The in-process harness
(:mod:`tests.support.gateway`) cannot show either. This module starts ``vssid-gateway run``
with its own TOML file, waits for its "SMPP listening" log line with a deadline, and kills or
stops it; it also prepares databases (migrated, synthetic accounts) and scratch PostgreSQL
databases. ``bench/smpp_throughput.py`` uses it too, so the benchmark runs the same process
the tests do.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TypeVar

import sqlalchemy as sa

from store.db import create_engine
from store.importer import RejectedRow, import_accounts, record_from_fields
from store.migrate import upgrade

T = TypeVar("T")

PEER = "viettel"
PEER_PASSWORD = "secret1"
READY_LINE = "SMPP listening on"
POSTGRES_ADMIN_URL = os.environ.get(
    "VSSID_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_until(
    predicate: Callable[[], T | None], timeout: float, what: str, interval: float = 0.05
) -> T:
    """Poll ``predicate`` until it returns something truthy, or fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    """The settings a test or benchmark varies; everything else is the documented default."""

    database_url: str
    port: int
    instance: str = ""
    window: int = 10
    max_tps_in: int = 0
    max_tps_out: int = 0
    max_binds: int = 8
    pool_size: int = 4
    argon2: tuple[int, int] | None = (8192, 1)
    """Argon2id (memory KiB, passes); the default is the cheapest the configuration allows,
    ``None`` the production default."""
    inbound_queue_limit: int = 10000

    def toml(self) -> str:
        argon2 = ""
        if self.argon2 is not None:
            argon2 = f"argon2_memory_kib = {self.argon2[0]}\nargon2_time_cost = {self.argon2[1]}\n"
        return (
            f'[database]\nurl = "{self.database_url}"\npool_size = {self.pool_size}\n\n'
            f"[reset]\n{argon2}\n"
            f'[smpp]\nlisten = "tcp:{self.port}:interface=127.0.0.1"\n'
            f'instance = "{self.instance}"\n'
            f"inbound_queue_limit = {self.inbound_queue_limit}\n\n"
            f'[[smpp.peers]]\nname = "{PEER}"\nsystem_id = "{PEER}"\n'
            f'password = "{PEER_PASSWORD}"\nallow = ["127.0.0.1/32"]\n'
            f"max_binds = {self.max_binds}\nmax_tps_in = {self.max_tps_in}\n"
            f"max_tps_out = {self.max_tps_out}\nwindow = {self.window}\n\n"
            '[http]\nenabled = false\n\n[logging]\nformat = "json"\n'
        )


def gateway_command() -> list[str]:
    """The installed console script next to this interpreter, else ``python -m gateway.cli``."""
    script = Path(sys.executable).with_name("vssid-gateway")
    return [str(script)] if script.exists() else [sys.executable, "-m", "gateway.cli"]


class GatewayProcess:
    """One ``vssid-gateway run`` process with its own configuration file and log file."""

    def __init__(self, config: GatewayConfig, folder: Path, name: str = "gateway") -> None:
        self.config = config
        self.folder = folder
        self.config_path = folder / f"{name}.toml"
        self.log_path = folder / f"{name}.log"
        self.config_path.write_text(config.toml(), encoding="utf-8")
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._offset = 0
        self.starts = 0

    @property
    def port(self) -> int:
        return self.config.port

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self, timeout: float = 30.0) -> None:
        """Start the process and return once its SMPP port listens; fail with its log if not."""
        self.launch()
        self.wait_ready(timeout)

    def launch(self) -> None:
        """Start the process without waiting (start several, then :meth:`wait_ready` each)."""
        assert self.process is None, "already running"
        self._log = self.log_path.open("ab")
        self._offset = self._log.tell()
        environment = dict(os.environ, PYTHONUNBUFFERED="1")
        self.process = subprocess.Popen(
            [*gateway_command(), "--config", str(self.config_path), "run"],
            cwd=self.folder,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=environment,
        )
        self.starts += 1

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Return once the SMPP port listens; fail with the log if the process exits first."""
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while True:
            if self._listening(self._offset):
                return
            code = self.process.poll()
            if code is not None:
                self._reap()
                raise AssertionError(f"gateway exited with {code} before listening:\n{self.log()}")
            if time.monotonic() >= deadline:
                self.kill()
                raise AssertionError(f"gateway not listening after {timeout:g} s:\n{self.log()}")
            time.sleep(0.05)

    def _listening(self, offset: int) -> bool:
        with self.log_path.open("rb") as log:
            log.seek(offset)
            if READY_LINE.encode() not in log.read():
                return False
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1.0).close()
        except OSError:
            return False
        return True

    def kill(self) -> int:
        """``kill -9``: no clean-up of any kind runs in the gateway. Returns the exit status."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        return self._reap()

    def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM (a clean shutdown: unbind, stop listening), then SIGKILL after ``timeout``."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.send_signal(signal.SIGKILL)
        return self._reap()

    def _reap(self) -> int:
        assert self.process is not None
        code = self.process.wait(15.0)
        self.process = None
        if self._log is not None:
            self._log.close()
            self._log = None
        return code

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def cpu_seconds(self) -> float:
        """User + system CPU time of the process (all its threads) so far."""
        return cpu_seconds(self.pid)

    def log(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")[-6000:]
        except FileNotFoundError:
            return ""

    def close(self) -> None:
        """Kill the process if it still runs (test clean-up)."""
        if self.process is not None:
            self.kill()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` (all its threads) so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks  # utime, stime (fields 14 and 15)


@contextmanager
def gateway_processes(*gateways: GatewayProcess) -> Iterator[tuple[GatewayProcess, ...]]:
    """Make sure no gateway process outlives the block, whatever happens in it."""
    try:
        yield gateways
    finally:
        for gateway in gateways:
            gateway.close()


def prepare_database(url: str, accounts: Iterable[tuple[str, str]] = ()) -> None:
    """Migrate ``url`` to head and import ``accounts`` (code, phone), registered for
    e-transactions, with synthetic names."""
    engine = create_engine(url, pool_size=2)
    try:
        upgrade(engine)
        records = [
            record_from_fields([code, "Nguyễn Thị Thử", phone, "", "1"], line)
            for line, (code, phone) in enumerate(accounts, start=2)
        ]
        if records:
            rejects: list[RejectedRow] = []
            summary = import_accounts(engine, records, datetime.now(UTC), on_reject=rejects.append)
            assert summary.rejected == 0, rejects[:3]
    finally:
        engine.dispose()


@contextmanager
def scratch_postgresql(admin_url: str = POSTGRES_ADMIN_URL) -> Iterator[str]:
    """A new, empty PostgreSQL database for one test or run; dropped afterwards."""
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    name = f"vssid_proc_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        yield sa.make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()
