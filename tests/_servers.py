"""The throwaway servers of the tests: see agentgraph_nb/_servers.py (public through
agentgraph_nb.testing.postgres_server and redis_server)."""

from agentgraph_nb._servers import (  # noqa: F401
    PASSWORD,
    PostgresServer,
    RedisServer,
    ServerUnavailableError,
    _free_port,
    postgres_binaries,
    redis_binaries,
    servers,
)
