"""Chat messages as plain OpenAI-format dicts, and the ``add_messages`` reducer that keeps a
conversation in the state.

A message is a dict: ``{"role": "system" | "user" | "assistant" | "tool", "content": str | None}``
plus, where they apply, ``tool_calls`` (an assistant's calls, each
``{"id", "type": "function", "function": {"name", "arguments": "<JSON text>"}}``),
``tool_call_id`` and ``name`` (a tool's answer), and an ``id`` that :func:`add_messages` assigns
when it is missing. No class to learn, nothing to import to read one, and it goes to any
OpenAI-compatible server as it is (minus the ``id``) and into checkpoints as plain data.

Example:
    >>> from agentgraph_nb import START, StateGraph, MessagesState
    >>> def bot(state):
    ...     return {"messages": [{"role": "assistant", "content": "hi " + state["messages"][-1]["content"]}]}
    >>> app = StateGraph(MessagesState).add_node("bot", bot).add_edge(START, "bot").compile()
    >>> [m["content"] for m in app.invoke({"messages": "there"})["messages"]]
    ['there', 'hi there']
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

from typing_extensions import TypedDict

from agentgraph_nb._lazy import LazyModule
from agentgraph_nb.errors import UnknownMessageError

if TYPE_CHECKING:
    import json
    import uuid
else:  # imported on first use: ``import agentgraph_nb`` stays fast
    json = LazyModule("json", __name__, "json")
    uuid = LazyModule("uuid", __name__, "uuid")

__all__ = [
    "REMOVE_ALL_MESSAGES",
    "Message",
    "MessagesState",
    "RemoveMessage",
    "add_messages",
    "convert_message",
    "convert_messages",
    "last_assistant_message",
    "tool_calls_of",
]

Message = dict[str, Any]
"""A chat message: a plain dict in the OpenAI chat format (see the module's docstring)."""

REMOVE_ALL_MESSAGES = "__remove_all__"
"""``RemoveMessage(REMOVE_ALL_MESSAGES)`` in an update clears the list: the messages after it in
the same update become the whole conversation (as in LangGraph)."""

ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
_ROLE_ALIASES = {"human": "user", "ai": "assistant", "bot": "assistant", "model": "assistant"}
# LangChain message types -> roles (``AIMessageChunk`` and friends report the same ``type``)
_LC_ROLES = {
    "human": "user",
    "ai": "assistant",
    "AIMessageChunk": "assistant",
    "system": "system",
    "developer": "developer",
    "tool": "tool",
    "function": "function",
    "chat": "user",
}


@dataclass(frozen=True)
class RemoveMessage:
    """In an update of a messages key, deletes the message with this ``id``.

    Never stored in the state: :func:`add_messages` consumes it. An ``id`` that is not in the
    list is an :class:`~agentgraph_nb.errors.UnknownMessageError` naming it.

    Example:
        >>> msgs = add_messages([], [{"role": "user", "content": "a", "id": "1"},
        ...                          {"role": "user", "content": "b", "id": "2"}])
        >>> [m["id"] for m in add_messages(msgs, RemoveMessage("1"))]
        ['2']
    """

    id: str


def _new_id() -> str:
    return str(uuid.uuid4())


def _role(role: Any, where: Any) -> str:
    r = str(role)
    r = _ROLE_ALIASES.get(r, r)
    if r not in ROLES:
        raise ValueError(
            f"unknown message role {role!r} in {_short(where)}: use one of "
            "'system', 'user', 'assistant', 'tool' (or 'human'/'ai')"
        )
    return r


def _short(v: Any, n: int = 80) -> str:
    r = repr(v)
    return r if len(r) <= n else r[: n - 3] + "..."


def _from_langchain(m: Any) -> Message | RemoveMessage:
    """A LangChain ``BaseMessage`` as a dict, read by duck typing (``langchain_core`` is never
    imported here: it is converted only when the caller already has such objects)."""
    kind = getattr(m, "type", None)
    if kind == "remove":
        return RemoveMessage(str(m.id))
    role = _LC_ROLES.get(str(kind))
    if role is None:
        raise ValueError(f"cannot convert LangChain message of type {kind!r}: {_short(m)}")
    out: Message = {"role": role, "content": m.content}
    calls = getattr(m, "tool_calls", None) or []
    if role == "assistant" and calls:
        out["tool_calls"] = [
            {
                "id": c.get("id") or _new_id(),
                "type": "function",
                "function": {"name": c["name"], "arguments": json.dumps(c.get("args") or {})},
            }
            for c in calls
        ]
        if not out["content"]:
            out["content"] = None
    if role == "tool":
        out["tool_call_id"] = m.tool_call_id
    name = getattr(m, "name", None)
    if name:
        out["name"] = name
    if getattr(m, "id", None):
        out["id"] = m.id
    return out


def convert_message(m: Any) -> Message | RemoveMessage:
    """One message in its dict form.

    Accepts a dict (returned as it is, once its role is checked), a string (a user message), a
    ``(role, content)`` pair, a :class:`RemoveMessage`, or a LangChain message object.

    Raises:
        TypeError: for anything else. ValueError: for an unknown role.

    Example:
        >>> convert_message(("ai", "hello"))
        {'role': 'assistant', 'content': 'hello'}
    """
    if isinstance(m, dict):
        if "role" not in m:
            if "type" in m and "content" in m:  # LangChain's dict form: {"type": "human", ...}
                out = {k: v for k, v in m.items() if k != "type"}
                out["role"] = _role(m["type"], m)
                return out
            raise ValueError(f"message {_short(m)} has no 'role' (one of 'system', 'user', 'assistant', 'tool')")
        role = m["role"]
        if role not in ROLES:
            m["role"] = _role(role, m)
        return m
    if isinstance(m, str):
        return {"role": "user", "content": m}
    if isinstance(m, RemoveMessage):
        return m
    if isinstance(m, (tuple, list)) and len(m) == 2 and isinstance(m[0], str):
        return {"role": _role(m[0], m), "content": m[1]}
    if type(m).__module__.startswith("langchain") and hasattr(m, "content"):
        return _from_langchain(m)
    if isinstance(m, Mapping):
        return convert_message(dict(m))
    raise TypeError(
        f"cannot use {type(m).__name__} {_short(m)} as a message: pass a dict like "
        "{'role': 'user', 'content': '...'}, a string, a (role, content) pair, or a LangChain message"
    )


def convert_messages(messages: Any) -> list[Message | RemoveMessage]:
    """A list of messages in dict form, from one message or a list (see :func:`convert_message`).

    Example:
        >>> convert_messages("hi")
        [{'role': 'user', 'content': 'hi'}]
    """
    if isinstance(messages, list):
        return [convert_message(m) for m in messages]
    if isinstance(messages, tuple) and not (len(messages) == 2 and isinstance(messages[0], str)):
        return [convert_message(m) for m in messages]
    return [convert_message(messages)]


def _as_list(value: Any, in_place: bool = True, prev: str = "") -> list[Any]:
    """The messages of one side of :func:`add_messages`, converted to dicts.

    Elements of a list the caller passed are converted *in that list*, and missing ids are set
    on the dicts themselves (as LangGraph sets them on message objects): the update a node
    returned is what checkpoints store, and the state is rebuilt from stored updates by running
    this reducer again, so the ids must be in the update, or a rebuilt state would get new ones.
    """
    if isinstance(value, list):
        if not in_place:
            value = list(value)
        for i, m in enumerate(value):
            c = convert_message(m)
            if c is not m:
                value[i] = c
            if type(c) is dict and not c.get("id"):
                c["id"] = _new_id()
        return value
    out = convert_messages(value)
    for n, c in enumerate(out):
        if type(c) is dict and not c.get("id"):
            # a dict the caller passed gets its id on itself; a message made here from a string, a
            # pair or a LangChain object cannot carry it back into the stored update, so its id
            # comes from what precedes it: the same when the state is rebuilt from that update
            c["id"] = _new_id() if c is value else _stable_id(prev, c, n)
        if type(c) is dict:
            prev = c["id"]
    return out


def _stable_id(prev: str, m: Message, n: int) -> str:
    """A uuid4-shaped id from the id before the message, its position in its update, role and
    content: the same each time the same update is merged into the same state."""
    from hashlib import blake2b

    h = int.from_bytes(blake2b(f"{prev}|{n}|{m.get('role')}|{m.get('content')!r}".encode(), digest_size=16).digest(), "big")
    h = (h & ~(0xF000 << 64 | 0xC000 << 48)) | (0x4000 << 64 | 0x8000 << 48)  # version 4, RFC 4122 variant
    x = f"{h:032x}"
    return f"{x[:8]}-{x[8:12]}-{x[12:16]}-{x[16:20]}-{x[20:]}"


def add_messages(left: Any, right: Any) -> list[Message]:
    """The reducer of a conversation: appends ``right`` to ``left``, replaces a message that has
    the same ``id``, and deletes on :class:`RemoveMessage`.

    Use it as ``messages: Annotated[list, add_messages]`` (what :class:`MessagesState` declares).
    Either side may be one message or a list; messages may be dicts, strings (user messages),
    ``(role, content)`` pairs or LangChain message objects, and come out as dicts, each with an
    ``id`` (a new uuid4 string when it had none). ``left`` is never modified: a new list is
    returned.

    Args:
        left: the current messages.
        right: the update.

    Returns:
        The merged list.

    Raises:
        UnknownMessageError: a ``RemoveMessage`` names an id that is in neither list.

    Example:
        >>> left = [{"role": "user", "content": "hi", "id": "1"}]
        >>> out = add_messages(left, [{"role": "user", "content": "hello", "id": "1"}, ("ai", "hey")])
        >>> [(m["role"], m["content"]) for m in out]
        [('user', 'hello'), ('assistant', 'hey')]
    """
    lhs = _as_list(left, in_place=False)
    rhs = _as_list(right, prev=lhs[-1]["id"] if lhs else "")
    for i in range(len(rhs) - 1, -1, -1):
        m = rhs[i]
        if type(m) is RemoveMessage and m.id == REMOVE_ALL_MESSAGES:
            return [x for x in rhs[i + 1 :] if type(x) is not RemoveMessage]
    if not rhs:
        return list(lhs)
    merged = list(lhs)
    index = {m["id"]: i for i, m in enumerate(merged)}
    removed: set[str] = set()
    for m in rhs:
        mid = m.id if type(m) is RemoveMessage else m["id"]
        at = index.get(mid)
        if type(m) is RemoveMessage:
            if at is None:
                known = ", ".join(repr(k) for k in list(index)[-5:]) or "none"
                raise UnknownMessageError(
                    f"RemoveMessage({mid!r}): no message has id {mid!r} (the last ids are {known}); "
                    "remove a message by the id the state holds",
                    id=str(mid),
                )
            removed.add(mid)
        elif at is None:
            index[mid] = len(merged)
            merged.append(m)
        else:
            removed.discard(mid)
            merged[at] = m
    if removed:
        merged = [m for m in merged if m["id"] not in removed]
    return merged


class MessagesState(TypedDict):
    """A state with one key, ``messages``, merged by :func:`add_messages`.

    Subclass it to add keys of your own.

    Example:
        >>> class State(MessagesState):
        ...     summary: str
    """

    messages: Annotated[list[Message], add_messages]


def tool_calls_of(message: Any) -> list[dict[str, Any]]:
    """The tool calls of an assistant message (``[]`` for any other message).

    Example:
        >>> tool_calls_of({"role": "user", "content": "hi"})
        []
    """
    if not isinstance(message, dict) or message.get("role") != "assistant":
        return []
    return list(message.get("tool_calls") or [])


def last_assistant_message(messages: Any) -> Message | None:
    """The last message if it is an assistant message, else None (what ``tools_condition`` and
    ``ToolNode`` look at).

    Example:
        >>> last_assistant_message([{"role": "assistant", "content": "done"}])["content"]
        'done'
    """
    if not messages:
        return None
    last = messages[-1] if isinstance(messages, list) else messages
    if not isinstance(last, dict):
        last = convert_message(last)
    return last if isinstance(last, dict) and last.get("role") == "assistant" else None
