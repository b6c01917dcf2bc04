"""Redis key/value and hash nodes (extra ``redis``, on redis-py, sync and asyncio).

Example:
    >>> from agentgraph_nb.nodes.nosql import redis_get, redis_set
    >>> save = redis_set("answer:{user_id}", "{answer}", url="redis://localhost:6379/0", ttl=3600)
    >>> load = redis_get("answer:{user_id}", url="redis://localhost:6379/0", into="cached")

Keys are templates filled from the state (``"answer:{user_id}"``); values are sent as the
command's arguments, never pasted into a command text. Values are JSON by default
(``codec="text"`` or ``"bytes"`` to store them as they are). Clients (and their connection pools)
are shared per URL in the process, one per event loop for ``aio=True`` nodes. A command that
fails raises :class:`~agentgraph_nb.errors.KeyValueError` naming the node, the key and the server
(password hidden); an unreachable server raises :class:`~agentgraph_nb.errors.KeyValueConnectError`
(a ``ConnectionError``, so ``RetryPolicy()`` retries it).
"""

from __future__ import annotations

import atexit
from collections.abc import Callable, Mapping
from typing import Any

import redis
import redis.asyncio
from redis import exceptions as rex

from agentgraph_nb.errors import KeyValueConnectError, KeyValueError, NodeValueError
from agentgraph_nb.nodes._base import LibraryNode, Template, compile_templates, fill, node_name
from agentgraph_nb.nodes._conn import LoopClients, check_codec, decode, encode, hide_password

__all__ = ["RedisNode", "close_clients", "redis_client", "redis_get", "redis_hget", "redis_hset", "redis_set"]

_sync = LoopClients(lambda url: redis.Redis.from_url(url), loop=False)
_async = LoopClients(lambda url: redis.asyncio.Redis.from_url(url), loop=True)


def redis_client(url: str, *, aio: bool = False) -> Any:
    """The process's shared client of a Redis URL (``aio``: the running loop's asyncio client)."""
    return (_async if aio else _sync).get(url)


@atexit.register
def close_clients() -> None:
    """Close the shared sync clients' connections (they reconnect on next use)."""
    for c in _sync.all():
        c.close()
    _async.all()  # async connections belong to their loops: let them go with them


def _error(exc: BaseException, *, who: str, url: str, key: str, op: str) -> KeyValueError:
    name = node_name(who)
    shown = hide_password(url)
    if isinstance(exc, rex.AuthenticationError):
        return KeyValueError(
            f"node {name!r}: Redis at {shown} refused the credentials ({exc}). Check the user and password in the URL.",
            node=name, resource=shown, url=shown, key=key,
        )
    if isinstance(exc, (rex.ConnectionError, rex.TimeoutError)):
        return KeyValueConnectError(
            f"node {name!r}: cannot reach Redis at {shown} ({type(exc).__name__}: {exc}) for {op} {key!r}.",
            node=name, resource=shown, url=shown, key=key,
        )
    return KeyValueError(
        f"node {name!r}: Redis {op} {key!r} on {shown} failed: {type(exc).__name__}: {exc}",
        node=name, resource=shown, url=shown, key=key,
    )


class RedisNode(LibraryNode):
    """A node that runs one Redis command; made by :func:`redis_get`, :func:`redis_set`,
    :func:`redis_hget` and :func:`redis_hset`."""

    kind = "redis"

    def __init__(
        self,
        op: str,
        key: str,
        *,
        url: str,
        value: Any = None,
        field: str | None = None,
        into: str | None = None,
        ttl: float | None = None,
        codec: str = "json",
        default: Any = None,
        aio: bool = False,
        name: str | None = None,
    ) -> None:
        super().__init__(name)
        self.kind = f"redis_{op}"
        if not isinstance(key, str) or not key:
            raise ValueError(f"{self.kind}: give the key (a string; state keys in braces: 'user:{{id}}')")
        if not isinstance(url, str) or not url.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError(f"{self.kind}: {url!r} is not a Redis URL; e.g. 'redis://localhost:6379/0'")
        if ttl is not None and not ttl > 0:
            raise ValueError(f"{self.kind}: ttl must be a positive number of seconds, got {ttl!r}")
        self.op = op
        self.url = url
        self.shown = hide_password(url)
        self.key = Template(key)
        self._value_fn = value if callable(value) else None
        self._value = compile_templates(value) if not callable(value) else None
        self.field = Template(field) if field is not None else None
        self.into = into
        self.ttl_ms = None if ttl is None else max(1, int(ttl * 1000))
        self.codec = check_codec(codec, self.kind)
        self.default = default
        self.aio = aio

    def _current_name(self) -> str:
        return node_name(self.who)

    def _value_of(self, state: Any) -> Any:
        return self._value_fn(state) if self._value_fn is not None else fill(self._value, state, who=self.who)

    def _fields_of(self, state: Any, key: str) -> dict[str, bytes]:
        fields = self._value_of(state)
        if not isinstance(fields, Mapping) or not fields:
            name = node_name(self.who)
            raise NodeValueError(
                f"node {name!r}: redis_hset needs a non-empty dict of fields for {key!r}, got {type(fields).__name__}",
                node=name, resource=key, key=key,
            )
        return {str(f): encode(v, self.codec, node=self._current_name, resource=f"{key}.{f}") for f, v in fields.items()}

    def _decode(self, raw: Any, key: str) -> Any:
        return decode(raw, self.codec, node=self._current_name, queue=key, message_id=None, url=self.shown,
                      what="value")

    def _result(self, raw: Any, key: str) -> dict[str, Any] | None:
        if self.op == "get":
            value = self.default if raw is None else self._decode(raw, key)
        elif self.op == "hget":
            if self.field is None:
                value = {(f.decode() if isinstance(f, bytes) else f): self._decode(v, f"{key}.{f!r}")
                         for f, v in raw.items()} if raw else self.default
            else:
                value = self.default if raw is None else self._decode(raw, key)
        else:
            value = raw
        if self.into is None:
            return value if isinstance(value, dict) and self.op in ("get", "hget") else None
        return {self.into: value}

    def _plan(self, state: Any) -> tuple[str, Callable[[Any], Any]]:
        """The key and a function running the command on a client (sync or async alike)."""
        key = self.key.render(state, who=self.who)
        ttl = self.ttl_ms
        if self.op == "get":
            return key, lambda c: c.get(key)
        if self.op == "set":
            data = encode(self._value_of(state), self.codec, node=self._current_name, resource=key)
            return key, lambda c: c.set(key, data, px=ttl)
        if self.op == "hget":
            if self.field is None:
                return key, lambda c: c.hgetall(key)
            field = self.field.render(state, who=self.who)
            return key, lambda c: c.hget(key, field)
        fields = self._fields_of(state, key)
        if ttl is None:
            return key, lambda c: c.hset(key, mapping=fields)
        # the fields and the expiry in one transaction (MULTI/EXEC): both or neither
        return key, lambda c: c.pipeline(transaction=True).hset(key, mapping=fields).pexpire(key, ttl).execute()

    def __call__(self, state: Any) -> dict[str, Any] | None:
        key, command = self._plan(state)
        try:
            raw = command(_sync.get(self.url))
        except rex.RedisError as exc:
            raise _error(exc, who=self.who, url=self.url, key=key, op=self.op.upper()) from exc
        return self._result(raw, key)

    def close(self) -> None:
        """Close the pooled connections of this node's server (shared with the other nodes on
        the same URL; they reconnect on next use)."""
        for c in _sync.pop(self.url):
            c.close()
        _async.pop(self.url)


class AsyncRedisNode(RedisNode):
    """The async flavour of :class:`RedisNode` (``aio=True``)."""

    async def __call__(self, state: Any) -> dict[str, Any] | None:  # type: ignore[override]
        key, command = self._plan(state)
        try:
            raw = await command(_async.get(self.url))
        except rex.RedisError as exc:
            raise _error(exc, who=self.who, url=self.url, key=key, op=self.op.upper()) from exc
        return self._result(raw, key)

    async def aclose(self) -> None:
        """Close the pooled connections of this node's server, on the running loop."""
        for c in _async.pop(self.url):
            await c.aclose()


def _make(op: str, key: str, **kw: Any) -> RedisNode:
    return (AsyncRedisNode if kw.get("aio") else RedisNode)(op, key, **kw)


def redis_get(
    key: str, *, url: str, into: str | None = "value", codec: str = "json", default: Any = None,
    aio: bool = False, name: str | None = None,
) -> RedisNode:
    """A node that reads a key (``GET``) into the state.

    Args:
        key: the key, a template of state keys (``"cache:{user_id}"``).
        url: the server (``redis://[user:password@]host:6379/0``).
        into: the state key for the value; None: the value, a dict, is the update.
        codec: ``"json"`` (default), ``"text"`` or ``"bytes"``.
        default: the value when the key does not exist.
        aio: an async node (``redis.asyncio``).
        name: the node's name in errors raised outside a run.

    Example:
        >>> load = redis_get("cache:{user_id}", url="redis://localhost:6379/0", into="cached")
    """
    return _make("get", key, url=url, into=into, codec=codec, default=default, aio=aio, name=name)


def redis_set(
    key: str, value: Any, *, url: str, ttl: float | None = None, codec: str = "json",
    aio: bool = False, name: str | None = None,
) -> RedisNode:
    """A node that writes a key (``SET``, with an expiry when ``ttl`` is given).

    Args:
        key: the key, a template of state keys.
        value: ``"{answer}"`` (the state value itself, of any type), a template, a constant, a
            dict or list of templates, or ``value(state)``.
        url: the server.
        ttl: seconds until the key expires (``PX``, set in the same command).
        codec: ``"json"`` (default), ``"text"`` or ``"bytes"``.
        aio: an async node.
        name: the node's name in errors raised outside a run.

    Example:
        >>> save = redis_set("cache:{user_id}", "{answer}", url="redis://localhost:6379/0", ttl=600)
    """
    return _make("set", key, url=url, value=value, ttl=ttl, codec=codec, aio=aio, name=name)


def redis_hget(
    key: str, field: str | None = None, *, url: str, into: str | None = "value", codec: str = "json",
    default: Any = None, aio: bool = False, name: str | None = None,
) -> RedisNode:
    """A node that reads a hash: one field (``HGET``) or all of them as a dict (``HGETALL``).

    Args:
        key: the hash's key, a template of state keys.
        field: the field (a template); None: every field, as a dict.
        url: the server.
        into: the state key for the value; None: the value, a dict, is the update (handy
            with ``field=None``: each field becomes a state key).
        codec: how each field's value was written.
        default: the value when the key (or field) does not exist.
        aio: an async node.
        name: the node's name in errors raised outside a run.
    """
    return _make("hget", key, url=url, field=field, into=into, codec=codec, default=default, aio=aio, name=name)


def redis_hset(
    key: str, fields: Any, *, url: str, ttl: float | None = None, codec: str = "json",
    aio: bool = False, name: str | None = None,
) -> RedisNode:
    """A node that writes fields of a hash (``HSET``; with ``ttl``, ``PEXPIRE`` in the same
    transaction).

    Args:
        key: the hash's key, a template of state keys.
        fields: a dict of field -> template or constant (``{"name": "{user.name}"}``), ``"{profile}"``
            (a dict in the state), or ``fields(state) -> dict``.
        url: the server.
        ttl: seconds until the whole hash expires.
        codec: how each value is written.
        aio: an async node.
        name: the node's name in errors raised outside a run.
    """
    return _make("hset", key, url=url, value=fields, ttl=ttl, codec=codec, aio=aio, name=name)
