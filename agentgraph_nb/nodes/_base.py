"""What every node of the library shares: its name in errors, templates filled from the state,
reading a (dotted) state key, and closing what a node holds.

Nothing here imports a third-party library.
"""

from __future__ import annotations

import string
from collections.abc import Callable, Mapping
from typing import Any

from agentgraph_nb.errors import NodeValueError

__all__ = ["LibraryNode", "Template", "compile_templates", "fill", "get_path", "node_name"]

_MISSING: Any = object()


def node_name(default: str) -> str:
    """The name of the node running now (the name the graph gave it), else ``default``.

    Only called on the way to an error, so the running node's name costs nothing on success.
    """
    try:
        from agentgraph_nb.engine import find_scratch

        scratch = find_scratch(2)  # from the caller of node_name up
    except Exception:  # pragma: no cover - outside a run, or the engine changed its insides
        return default
    name = getattr(scratch, "node", None)
    return name if isinstance(name, str) and name else default


def get_path(state: Any, path: str, *, who: str, what: str = "state key") -> Any:
    """``state["a"]["b"]`` for ``"a.b"`` (attributes for dataclass or pydantic states).

    Raises:
        NodeValueError: naming the node and the key, with the keys there are.
    """
    obj = state
    for part in path.split("."):
        if isinstance(obj, Mapping):
            val = obj.get(part, _MISSING)
        elif isinstance(obj, (list, tuple)) and part.lstrip("-").isdigit():
            try:
                val = obj[int(part)]
            except IndexError:
                val = _MISSING
        else:
            val = getattr(obj, part, _MISSING) if not part.startswith("_") else _MISSING
        if val is _MISSING:
            from agentgraph_nb.errors import did_you_mean

            keys = list(obj) if isinstance(obj, Mapping) else []
            name = node_name(who)
            have = f" The state has: {', '.join(map(str, keys))}." if keys else ""
            raise NodeValueError(
                f"node {name!r}: {what} {path!r} is not in the state.{did_you_mean(part, keys)}{have}",
                node=name,
                resource=path,
                key=path,
            )
        obj = val
    return obj


class Template:
    """A ``str.format``-style template whose ``{fields}`` are state keys (``{user.id}`` reaches
    into a dict), parsed once.

    Args:
        text: the template, e.g. ``"https://api.example.com/{city}/weather"``.
        quote: applied to every value put in (e.g. URL quoting); ``str`` by default.

    Example:
        >>> Template("/{city}").render({"city": "New York"}, who="n")
        '/New York'
    """

    __slots__ = ("fields", "parts", "quote", "text")

    def __init__(self, text: str, quote: Callable[[Any], str] | None = None) -> None:
        self.text = text
        self.quote = quote
        parts: list[tuple[str, str | None]] = []
        try:
            for literal, field, spec, conv in string.Formatter().parse(text):
                if field is not None and (spec or conv):
                    raise ValueError(f"format specs and conversions are not supported: {{{field}!{conv}:{spec}}}")
                if field == "":
                    raise ValueError("empty {} fields are not supported: name a state key, as in {city}")
                parts.append((literal, field))
        except ValueError as exc:
            raise ValueError(f"bad template {text!r}: {exc}") from None
        self.parts = tuple(parts)
        self.fields = tuple(f for _, f in parts if f is not None)

    def render(self, state: Any, *, who: str) -> str:
        """The text with every field replaced by its state value (quoted)."""
        if not self.fields:
            return self.text
        q = self.quote or str
        out = []
        for literal, field in self.parts:
            out.append(literal)
            if field is not None:
                out.append(q(get_path(state, field, who=who, what="template field")))
        return "".join(out)

    def __repr__(self) -> str:
        return f"Template({self.text!r})"


def _compile(value: Any) -> Any:
    if isinstance(value, str):
        t = Template(value)
        if not t.fields:
            return value
        # "{key}" alone stands for the value itself, of any type (a number stays a number)
        if len(t.parts) == 1 and t.parts[0][0] == "":
            return _Whole(t.fields[0])
        return t
    if isinstance(value, Mapping):
        return {k: _compile(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_compile(v) for v in value]
    return value


class _Whole:
    __slots__ = ("path",)

    def __init__(self, path: str) -> None:
        self.path = path


def compile_templates(value: Any) -> Any:
    """Prepare a structure of templates (strings, dicts, lists) for :func:`fill`."""
    return _compile(value)


def fill(compiled: Any, state: Any, *, who: str) -> Any:
    """Fill a structure prepared by :func:`compile_templates` from the state."""
    if isinstance(compiled, _Whole):
        return get_path(state, compiled.path, who=who, what="template field")
    if isinstance(compiled, Template):
        return compiled.render(state, who=who)
    if isinstance(compiled, dict):
        return {k: fill(v, state, who=who) for k, v in compiled.items()}
    if isinstance(compiled, list):
        return [fill(v, state, who=who) for v in compiled]
    return compiled


class LibraryNode:
    """Base of the library's nodes: a callable object ``node(state) -> update``.

    Subclasses set ``kind`` (what the factory is called, used in errors before the graph names
    the node) and may hold resources, released by :meth:`close` (an app's ``close()`` calls it,
    and so does the interpreter's exit).
    """

    kind = "node"

    def __init__(self, name: str | None = None) -> None:
        self._name = name

    @property
    def who(self) -> str:
        """The name errors use when no graph is running the node."""
        return self._name or self.kind

    def close(self) -> None:
        """Release what the node holds (connections); it reopens them if called again."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.who}>"
