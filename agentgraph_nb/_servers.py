"""Throwaway PostgreSQL and Redis servers on free loopback ports, from Debian's packages
(``apt-get install -y postgresql redis-server``; see shared/RECIPES.md): for the tests (started once
per session by the fixtures in tests/conftest.py; a test may stop and restart one, the URL stays the
same), the benchmarks and the tutorial notebooks, through
:func:`agentgraph_nb.testing.postgres_server` and :func:`agentgraph_nb.testing.redis_server`.

Nothing here touches a system service: each server lives in a temp dir and is stopped by its PID.

Usable as a script too, for a benchmark or by hand::

    python -m agentgraph_nb._servers   # prints the two URLs, stops both on Enter
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

__all__ = [
    "PostgresServer",
    "RedisServer",
    "ServerUnavailableError",
    "postgres_binaries",
    "redis_binaries",
]

PASSWORD = "agentgraph-test-pw"


class ServerUnavailableError(RuntimeError):
    """The server cannot be started here (not installed, or it failed to start); the message
    says why and what to install."""


class _Server:
    @property
    def url(self) -> str:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> _Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        from agentgraph_nb.checkpoint._codec import redact_url

        return f"{type(self).__name__}({redact_url(self.url)!r})"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, proc: subprocess.Popen[bytes] | None, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise ServerUnavailableError(f"{what} exited with code {proc.returncode} while starting")
        with socket.socket() as s:
            s.settimeout(0.2)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.02)
    raise ServerUnavailableError(f"{what} did not accept connections on port {port} within {timeout:g} s")


def postgres_binaries() -> Path | None:
    """The directory of ``initdb`` and ``postgres`` (Debian's package), or None."""
    for d in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (d / "initdb").exists() and (d / "postgres").exists():
            return d
    found = shutil.which("initdb")
    return Path(found).parent if found and shutil.which("postgres") else None


def redis_binaries() -> str | None:
    return shutil.which("redis-server")


class PostgresServer(_Server):
    """A PostgreSQL cluster in a temp dir, run as the ``postgres`` user when we are root (root
    may not run initdb). ``fsync`` is off unless ``durable=True`` (benchmarks)."""

    def __init__(self, *, durable: bool = False) -> None:
        bindir = postgres_binaries()
        if bindir is None:
            raise ServerUnavailableError("PostgreSQL is not installed (apt-get install -y postgresql)")
        self.bindir = bindir
        self.durable = durable
        self.dir = Path(tempfile.mkdtemp(prefix="agentgraph-pg-"))
        self.port = _free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self._as_postgres: list[str] = []
        if getattr(os, "geteuid", lambda: -1)() == 0:  # root (Unix)
            import pwd  # Unix only, as PostgreSQL's Debian package is

            try:
                pwd.getpwnam("postgres")
            except KeyError:
                raise ServerUnavailableError(
                    "PostgreSQL refuses to run as root and there is no 'postgres' user to run it as "
                    "(apt-get install -y postgresql creates one)"
                ) from None
            self._as_postgres = ["setpriv", "--reuid", "postgres", "--regid", "postgres", "--init-groups"]
            shutil.chown(self.dir, "postgres", "postgres")
        pwfile = self.dir / "pw"
        pwfile.write_text(PASSWORD + "\n")
        if self._as_postgres:
            shutil.chown(pwfile, "postgres", "postgres")
        subprocess.run(
            [*self._as_postgres, str(bindir / "initdb"), "-D", str(self.dir / "data"), "-U", "postgres",
             "--auth-local=trust", "--auth-host=scram-sha-256", f"--pwfile={pwfile}", "-E", "UTF8", "--no-sync"],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        self.start()

    @property
    def url(self) -> str:
        return f"postgresql://postgres:{PASSWORD}@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        args = [*self._as_postgres, str(self.bindir / "postgres"), "-D", str(self.dir / "data"), "-p", str(self.port),
                "-k", str(self.dir), "-c", "listen_addresses=127.0.0.1", "-c", "max_connections=200"]
        if not self.durable:
            args += ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]
        log = open(self.dir / "log", "ab")  # the server keeps it open
        self.proc = subprocess.Popen(args, stdout=log, stderr=log, start_new_session=True)
        log.close()
        _wait_port(self.port, self.proc, 30, "postgres")
        # accepting TCP is not yet accepting logins: wait for the startup to finish
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            r = subprocess.run([str(self.bindir / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if r.returncode == 0:
                return
            time.sleep(0.05)

    def stop(self) -> None:
        """Fast shutdown (SIGINT); waits for the process."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class RedisServer(_Server):
    """A redis-server on a free loopback port, without persistence (``persistent=True``: an
    append-only file synced at every write, so a restart keeps the data). ``binary``, ``modules``
    (paths given to ``--loadmodule``) and ``env`` run another build than Debian's (the
    benchmarks' Redis Stack)."""

    def __init__(self, *, persistent: bool = False, binary: str | None = None, modules: Sequence[str] = (),
                 env: dict[str, str] | None = None) -> None:
        self.persistent = persistent
        binary = binary or redis_binaries()
        if binary is None:
            raise ServerUnavailableError("Redis is not installed (apt-get install -y redis-server)")
        self.binary = binary
        self.modules = list(modules)
        self.env = env
        self.dir = Path(tempfile.mkdtemp(prefix="agentgraph-redis-"))
        self.port = _free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "yes" if self.persistent else "no", "--appendfsync", "always",
             "--dir", str(self.dir), "--protected-mode", "no",
             *(arg for m in self.modules for arg in ("--loadmodule", m))],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True, env=self.env,
        )
        _wait_port(self.port, self.proc, 30, self.binary)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@contextlib.contextmanager
def servers(durable: bool = False) -> Iterator[tuple[PostgresServer, RedisServer]]:
    pg = PostgresServer(durable=durable)
    try:
        rd = RedisServer()
        try:
            yield pg, rd
        finally:
            rd.close()
    finally:
        pg.close()


if __name__ == "__main__":
    with servers() as (pg, rd):
        print(pg.url)
        print(rd.url)
        input("Enter stops them> ")
