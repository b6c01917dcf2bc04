"""JSON description of a graph (format ``agentgraph_nb/graph`` version 1), and back."""

from __future__ import annotations

import importlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict
from typing import TYPE_CHECKING, Any, cast

from agentgraph_nb._callables import is_async_callable
from agentgraph_nb.errors import GraphValidationError
from agentgraph_nb.graph.state import target_name
from agentgraph_nb.types import CachePolicy, RetryPolicy, default_retry_on

if TYPE_CHECKING:
    from agentgraph_nb.graph.state import StateGraph

__all__ = ["FORMAT", "graph_from_json", "graph_to_json"]

FORMAT = "agentgraph_nb/graph"


def _cache_json(p: Any) -> dict[str, Any]:
    """A node's CachePolicy as JSON: its TTL, and its key function's name (not rebuilt on load)."""
    kf = p.key_func
    return {"ttl": p.ttl, **({"key_func": getattr(kf, "__qualname__", None) or repr(kf)} if kf is not None else {})}


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
                **({"input_schema": _schema_name(n.input_schema)} if n.input_schema is not None else {}),
                **({"cache": _cache_json(n.cache_policy)} if getattr(n, "cache_policy", None) is not None else {}),
                **_subgraph_json(n.fn),
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
        **({"input_schema": _schema_name(g.input_schema)} if getattr(g, "input_state", None) is not None else {}),
        **({"output_schema": _schema_name(g.output_schema)} if getattr(g, "output_state", None) is not None else {}),
        **_versions_json(g),
    }


def _versions_json(g: StateGraph) -> dict[str, Any]:
    """The state's version and the migrations that bring older checkpoints to it (none at
    version 1, so a graph without versions exports as before)."""
    version = getattr(g, "version", 1)
    if version == 1:
        return {}
    return {
        "state_version": version,
        "migrations": [{"from": k, "name": _name_of(fn), "target": target_name(fn)}
                       for k, fn in sorted(g.migrations.items())],
    }


def _subgraph_json(fn: Any) -> dict[str, Any]:
    """A subgraph node's nested graph (``"subgraph"``) and the name it is bound by (``"ref"``:
    the graph's name, which ``from_json``'s namespace and a notebook cell look it up by)."""
    if not getattr(fn, "is_subgraph", False):
        return {}
    return {"ref": fn.app.name, "subgraph": fn.app.to_json()}


def _schema_name(cls: Any) -> str:
    return str(getattr(cls, "__name__", cls))


def _schema_ref(name: Any, namespace: Mapping[str, Any] | None, what: str) -> Any:
    """A schema the graph file names (``input_schema``...), from the namespace; None for none."""
    if name is None:
        return None
    found = namespace.get(name) if namespace is not None and isinstance(name, str) else None
    if found is None:
        raise GraphValidationError(
            f"from_json: the graph's {what} is {name!r}, which the namespace does not hold; "
            f"pass namespace={{{name!r}: {name}}} with it"
        )
    return found


def _short(target: Any) -> str | None:
    """``qualname`` of a ``module:qualname`` target (the name a namespace would hold it under)."""
    return (target.partition(":")[2] or None) if isinstance(target, str) else None


def _allowed(module: str, allow_modules: tuple[str, ...]) -> bool:
    """Whether ``module`` is one of ``allow_modules`` or inside one of those packages."""
    return any(module == m or module.startswith(m + ".") for m in allow_modules)


def _resolve(
    ref: Mapping[str, Any],
    keys: tuple[Any, ...],
    namespace: Mapping[str, Any] | None,
    allow_modules: tuple[str, ...],
    what: str,
) -> Any:
    """The callable a node or router of a graph file names.

    Looked up first in ``namespace`` under ``keys`` (exact keys only: no attribute walk, so a
    file can only pick among the objects the caller put there), then, only when its module is
    in ``allow_modules``, imported from its ``module:qualname`` target. Nothing else is ever
    imported: a graph file is data, and importing a module runs its code.
    """
    if namespace is not None:
        for k in keys:
            if isinstance(k, str) and callable(namespace.get(k)):
                return namespace[k]
    target = ref.get("router_target" if "router_target" in ref else "target")
    if not isinstance(target, str) or ":" not in target:
        raise GraphValidationError(
            f"from_json: {what} has no usable target ({target!r}); pass namespace={{{keys[0]!r}: fn}} with it"
        )
    mod, _, qual = target.partition(":")
    if not _allowed(mod, allow_modules):
        allowed = f"allow_modules={list(allow_modules)!r} does not include it" if allow_modules else "no allow_modules= was given"
        raise GraphValidationError(
            f"from_json: {what} refers to {target!r}, which is not in namespace= and whose module {mod!r} "
            f"may not be imported ({allowed}). A graph file is data: pass the callables with "
            f"namespace={{{keys[0]!r}: fn, ...}}, or allow_modules=[{mod!r}] if you trust that module."
        )
    try:
        obj: Any = importlib.import_module(mod)
        for part in qual.split("."):
            obj = getattr(obj, part)
    except Exception as exc:
        raise GraphValidationError(
            f"from_json: cannot find {what} (target {target!r}): {type(exc).__name__}: {exc}; "
            f"pass namespace={{{keys[0]!r}: fn}} with it"
        ) from exc
    if not callable(obj):
        raise GraphValidationError(f"from_json: {what} refers to {target!r}, which is a {type(obj).__name__}, not a callable")
    return obj


def graph_from_json(
    cls: type[StateGraph],
    data: Mapping[str, Any] | str,
    *,
    schema: Any = None,
    namespace: Mapping[str, Any] | None = None,
    allow_modules: Iterable[str] = (),
    migrations: Mapping[int, Any] | None = None,
) -> StateGraph:
    """Rebuild a builder from :func:`graph_to_json` output (or its JSON text).

    See :meth:`StateGraph.from_json` for how callables are found; nothing outside
    ``allow_modules`` is ever imported.
    """
    if isinstance(allow_modules, str):
        allow_modules = (allow_modules,)
    allowed = tuple(allow_modules)
    for m in allowed:
        if not isinstance(m, str) or not m or m.startswith(".") or m.endswith("."):
            raise GraphValidationError(f"from_json: allow_modules= takes module names like 'myapp.nodes', got {m!r}")
    if isinstance(data, str):
        data = cast("Mapping[str, Any]", json.loads(data))
    if not isinstance(data, Mapping):
        raise GraphValidationError(f"from_json: expected a dict or JSON text, got {type(data).__name__}")
    if data.get("format") != FORMAT:
        raise GraphValidationError(f"from_json: not an agentgraph_nb graph (format {data.get('format')!r})")
    if data.get("version") != 1:
        raise GraphValidationError(f"from_json: unsupported version {data.get('version')!r}; this release reads 1")
    if schema is None:
        sname = data.get("state", {}).get("schema")
        schema = namespace.get(sname, dict) if namespace is not None and sname else dict
    try:
        return _build(cls, data, schema, namespace, allowed, migrations)
    except (KeyError, TypeError, AttributeError) as exc:
        raise GraphValidationError(
            f"from_json: malformed graph data ({type(exc).__name__}: {exc}); expected the output of to_json()"
        ) from exc


def _subgraph_from_json(cls: type[StateGraph], n: Mapping[str, Any], namespace: Mapping[str, Any] | None,
                        allowed: tuple[str, ...]) -> Any:
    """A subgraph node's graph: the compiled graph ``namespace`` holds under the node's name or
    the subgraph's (``ref``), else rebuilt from the nested description (its schema and callables
    from ``namespace`` too) and compiled without a checkpointer (it uses its parent's)."""
    from agentgraph_nb.graph.compiled import CompiledGraph

    for k in (n["name"], n.get("ref")):
        got = namespace.get(k) if namespace is not None and isinstance(k, str) else None
        if isinstance(got, CompiledGraph):
            return got
    sub = n["subgraph"]
    sname = (sub.get("state") or {}).get("schema")
    schema = namespace.get(sname, dict) if namespace is not None and sname else dict
    return _build(cls, sub, schema, namespace, allowed).compile(checkpointer=None)


def _migrations_from_json(data: Mapping[str, Any], namespace: Mapping[str, Any] | None,
                          allowed: tuple[str, ...], given: Mapping[int, Any] | None) -> tuple[int, dict[int, Any]]:
    """The state version a graph file declares and its migrations: those ``given`` first, else
    each found as a node's callable is (namespace, then ``allow_modules``). A step the file
    names that cannot be found is a :class:`StateMigrationError` naming the versions."""
    from agentgraph_nb.errors import StateMigrationError

    version = data.get("state_version", 1)
    name = data.get("name")
    if type(version) is not int or version < 1:
        raise GraphValidationError(f"from_json: graph {name!r} has state_version {version!r}, not an int >= 1")
    out: dict[int, Any] = dict(given or {})
    for m in data.get("migrations") or []:
        k = m["from"]
        if type(k) is not int or not 1 <= k < version:
            raise GraphValidationError(
                f"from_json: graph {name!r} (state version {version}) names a migration from version {k!r}, "
                f"not an int from 1 to {version - 1}")
        if k in out:
            continue
        what = f"the migration from state version {k} to {k + 1} of graph {name!r}"
        try:
            out[k] = _resolve(m, (m.get("name"), _short(m.get("target"))), namespace, allowed, what)
        except GraphValidationError as exc:
            raise StateMigrationError(
                f"{exc}; or give it as from_json(..., migrations={{{k}: upgrade_v{k}}}). Without it, "
                f"checkpoints of state version {k} cannot load in this graph (version {version})",
                stored_version=k, graph_version=version) from None
    return version, out


def _build(
    cls: type[StateGraph], data: Mapping[str, Any], schema: Any, namespace: Mapping[str, Any] | None,
    allowed: tuple[str, ...], migrations: Mapping[int, Any] | None = None,
) -> StateGraph:
    version, steps = _migrations_from_json(data, namespace, allowed, migrations)
    g = cls(schema, name=data.get("name"),
            input_schema=_schema_ref(data.get("input_schema"), namespace, "input_schema"),
            output_schema=_schema_ref(data.get("output_schema"), namespace, "output_schema"),
            version=version, migrations=steps)
    for n in data["nodes"]:
        if "subgraph" in n:
            fn = _subgraph_from_json(cls, n, namespace, allowed)
            g.add_node(n["name"], fn, destinations=n.get("destinations"), metadata=n.get("metadata"))
            continue
        fn = _resolve(n, (n["name"], n.get("ref"), _short(n.get("target"))), namespace, allowed, f"node {n['name']!r}")
        r = n.get("retry")
        retry = None
        if r:
            r = {k: v for k, v in r.items() if k != "retry_on"}
            try:
                retry = RetryPolicy(**r)
            except (TypeError, ValueError) as exc:
                raise GraphValidationError(f"from_json: node {n['name']!r} has an invalid retry policy {r!r}: {exc}") from exc
        c = n.get("cache")
        cache = None if c is None else CachePolicy(ttl=c.get("ttl"))  # a key_func is code: set it again in Python
        g.add_node(n["name"], fn, retry=retry, timeout=n.get("timeout"), destinations=n.get("destinations"),
                   metadata=n.get("metadata"), cache=cache,
                   input_schema=_schema_ref(n.get("input_schema"), namespace, f"node {n['name']!r} input_schema"))
    for e in data.get("edges", []):
        g.add_edge(e["source"], e["target"])
    for j in data.get("joins", []):
        g.add_edge(list(j["sources"]), j["target"])
    for b in data.get("branches", []):
        router = _resolve(
            b, (b.get("router"), _short(b.get("router_target"))), namespace, allowed,
            f"router {b.get('router')!r} of the conditional edge from {b['source']!r}",
        )
        g.add_conditional_edges(b["source"], router, b.get("path_map") or b.get("targets"))
    for w in data.get("weighted", []):
        g.add_weighted_edges(w["source"], w["weights"])
    return g
