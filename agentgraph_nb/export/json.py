"""JSON description of a graph (format ``agentgraph_nb/graph`` version 1), and back."""

from __future__ import annotations

import importlib
import json
from collections.abc import Mapping
from dataclasses import asdict
from typing import TYPE_CHECKING, Any, cast

from agentgraph_nb.errors import GraphValidationError
from agentgraph_nb.graph.state import is_async_callable, target_name
from agentgraph_nb.types import RetryPolicy, default_retry_on

if TYPE_CHECKING:
    from agentgraph_nb.graph.state import StateGraph

__all__ = ["FORMAT", "graph_from_json", "graph_to_json"]

FORMAT = "agentgraph_nb/graph"


def _retry_json(r: RetryPolicy | None) -> dict[str, Any] | None:
    if r is None:
        return None
    d = asdict(r)
    ro = d.pop("retry_on")
    if ro is not default_retry_on:
        d["retry_on"] = getattr(ro, "__qualname__", None) or repr(ro)
    return d


def _name_of(fn: Any) -> str:
    return getattr(fn, "__name__", None) or type(fn).__name__


def graph_to_json(g: StateGraph) -> dict[str, Any]:
    """Describe a builder as a JSON-able dict."""
    return {
        "format": FORMAT,
        "version": 1,
        "name": g.name,
        "state": g.state.describe(),
        "nodes": [
            {
                "name": n.name,
                "target": target_name(n.fn),
                "async": is_async_callable(n.fn),
                "retry": _retry_json(n.retry),
                "timeout": n.timeout,
                **({"destinations": list(n.destinations)} if n.destinations else {}),
                # a node bound by name in a notebook (hot-reload proxy): the name it looks up
                **({"ref": ref} if hasattr(type(n.fn), "is_async") and isinstance(ref := getattr(n.fn, "name", None), str) else {}),
                **({"metadata": n.metadata} if n.metadata else {}),
            }
            for n in g.nodes.values()
        ],
        "edges": [{"source": s, "target": t} for s, t in g.edges],
        "joins": [{"sources": list(s), "target": t} for s, t in g.joins],
        "branches": [
            {
                "source": b.source,
                "router": _name_of(b.router),
                "router_target": target_name(b.router),
                "targets": list(b.targets) if b.targets is not None and b.path_map is None else None,
                "path_map": {str(k): v for k, v in b.path_map.items()} if b.path_map is not None else None,
            }
            for b in g.branches
        ],
        "weighted": [{"source": s, "weights": dict(w)} for s, w in g.weighted],
    }


def _resolve(target: str, short: str, namespace: Mapping[str, Any] | None, what: str) -> Any:
    if namespace is not None and short in namespace:
        return namespace[short]
    mod, _, qual = target.partition(":")
    try:
        obj: Any = importlib.import_module(mod)
        for part in qual.split("."):
            obj = getattr(obj, part)
        return obj
    except Exception as exc:
        raise GraphValidationError(
            f"from_json: cannot find {what} {short!r} (target {target!r}); pass namespace={{...}} with it"
        ) from exc


def graph_from_json(
    cls: type[StateGraph], data: Mapping[str, Any] | str, *, schema: Any = None, namespace: Mapping[str, Any] | None = None
) -> StateGraph:
    """Rebuild a builder from :func:`graph_to_json` output (or its JSON text)."""
    if isinstance(data, str):
        data = cast("Mapping[str, Any]", json.loads(data))
    if data.get("format") != FORMAT:
        raise GraphValidationError(f"from_json: not an agentgraph_nb graph (format {data.get('format')!r})")
    if data.get("version") != 1:
        raise GraphValidationError(f"from_json: unsupported version {data.get('version')!r}; this release reads 1")
    if schema is None:
        sname = data.get("state", {}).get("schema")
        schema = namespace.get(sname, dict) if namespace is not None and sname else dict
    g = cls(schema, name=data.get("name"))
    for n in data["nodes"]:
        fn = _resolve(n["target"], n["name"], namespace, "node")
        r = n.get("retry")
        retry = None
        if r:
            r = {k: v for k, v in r.items() if k != "retry_on"}
            retry = RetryPolicy(**r)
        g.add_node(n["name"], fn, retry=retry, timeout=n.get("timeout"), destinations=n.get("destinations"),
                   metadata=n.get("metadata"))
    for e in data.get("edges", []):
        g.add_edge(e["source"], e["target"])
    for j in data.get("joins", []):
        g.add_edge(list(j["sources"]), j["target"])
    for b in data.get("branches", []):
        router = _resolve(b["router_target"], b["router"], namespace, "router")
        g.add_conditional_edges(b["source"], router, b.get("path_map") or b.get("targets"))
    for w in data.get("weighted", []):
        g.add_weighted_edges(w["source"], w["weights"])
    return g
