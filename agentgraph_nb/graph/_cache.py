"""The builder's side of node caching: turn each node's :class:`~agentgraph_nb.CachePolicy` and
``compile(cache=...)`` into the engine's per-node hooks (:class:`~agentgraph_nb.engine.NodeCache`),
and clear them (``app.clear_cache()``)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from agentgraph_nb.engine import NodeCache, code_version
from agentgraph_nb.errors import GraphValidationError, did_you_mean
from agentgraph_nb.types import CachePolicy

if TYPE_CHECKING:
    from agentgraph_nb.cache import BaseCache
    from agentgraph_nb.graph.state import StateGraph

__all__ = ["cache_policy_of", "clear_cache", "node_caches", "open_node_cache"]

SEP = "\x1f"


def cache_policy_of(node: str, cache: Any, cache_policy: Any) -> CachePolicy | None:
    """``add_node``'s ``cache=`` (ours) or ``cache_policy=`` (LangGraph's), checked."""
    if cache is not None and cache_policy is not None:
        raise GraphValidationError(f"node {node!r}: give cache= or cache_policy= (the same thing), not both")
    policy = cache if cache is not None else cache_policy
    if policy is None:
        return None
    if policy is True:
        return CachePolicy()
    if isinstance(policy, CachePolicy):
        return policy
    if type(policy).__name__ == "CachePolicy":  # LangGraph's: the same two fields
        return CachePolicy(ttl=getattr(policy, "ttl", None), key_func=_langgraph_key(policy))
    raise GraphValidationError(f"node {node!r}: cache= takes a CachePolicy(ttl=..., key_func=...) or True, got {policy!r}")


def _langgraph_key(policy: Any) -> Any:
    kf = getattr(policy, "key_func", None)
    # LangGraph's default key function pickles the input; ours packs it with the serializer
    return None if getattr(kf, "__module__", "").startswith("langgraph") else kf


def open_node_cache(spec: Any, builder: StateGraph) -> BaseCache | None:
    """The store ``compile(cache=...)`` names; by default (None) a memory cache when some node
    has a cache policy; ``False``: no caching at all."""
    if spec is False:
        return None
    if spec is None:
        if not any(getattr(s, "cache_policy", None) for s in builder.nodes.values()):
            return None
        spec = "memory"
    from agentgraph_nb.cache import open_cache

    return open_cache(spec)


def _serializer(builder: StateGraph) -> Any:
    from agentgraph_nb.checkpoint.serde import Serializer
    from agentgraph_nb.messages import RemoveMessage
    from agentgraph_nb.types import Overwrite, Send

    ser = Serializer()
    if builder.state.kind != "dict":
        ser.register_from_annotations(builder.state.cls)
    ser.register(Overwrite, name="agentgraph_nb.Overwrite")
    ser.register(RemoveMessage, name="agentgraph_nb.RemoveMessage")
    ser.register(Send, name="agentgraph_nb.Send", encode=lambda s: [s.node, s.arg], decode=lambda v: Send(v[0], v[1]))
    return ser


def node_caches(builder: StateGraph, graph: str, store: Any) -> dict[str, NodeCache]:
    """The engine's hook of each node with a cache policy (none without a store)."""
    if store is None:
        return {}
    specs = [s for s in builder.nodes.values() if getattr(s, "cache_policy", None) is not None]
    if not specs:
        return {}
    ser = _serializer(builder)
    dumps = ser.dumps
    out: dict[str, NodeCache] = {}
    for s in specs:
        policy: CachePolicy = s.cache_policy
        ns = f"{graph}{SEP}{s.name}{SEP}{code_version(s.fn)}"
        out[s.name] = NodeCache(store, s.name, ns, policy.ttl, policy.key_func, dumps, dumps, ser.loads)
    return out


def clear_cache(store: Any, graph: str, cached: Iterable[str], nodes: Iterable[str] | str | None) -> int:
    """Delete the cached results of ``nodes`` (all cached nodes with None); return how many."""
    if store is None:
        return 0
    cached = list(cached)
    if nodes is None:
        return int(store.clear(f"{graph}{SEP}"))
    names = [nodes] if isinstance(nodes, str) else list(nodes)
    for n in names:
        if n not in cached:
            raise GraphValidationError(
                f"clear_cache: node {n!r} of graph {graph!r} is not cached "
                f"(cached nodes: {', '.join(cached) or 'none'}).{did_you_mean(n, cached)}"
            )
    return sum(int(store.clear(f"{graph}{SEP}{n}{SEP}")) for n in names)
