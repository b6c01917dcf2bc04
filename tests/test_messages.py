"""Messages: the add_messages reducer, MessagesState, RemoveMessage, LangChain conversion, and
conversations through checkpoints.

The reducer's cases re-express LangGraph's own tests of ``add_messages``
(libs/langgraph/tests/test_messages_state.py in langchain-ai/langgraph) for our dict messages;
each test names the one it follows. Not followed: ``format="langchain-openai"`` (content-block
conversion of LangChain's own formats) and ``push_message`` (needs ``mode="messages"``, built in
another part of the agents work).
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import pytest
from typing_extensions import TypedDict

from agentgraph_nb import (
    END,
    REMOVE_ALL_MESSAGES,
    START,
    InvalidUpdateError,
    MessagesState,
    RemoveMessage,
    StateGraph,
    UnknownMessageError,
    add_messages,
)


def user(content: str, id: str | None = None) -> dict[str, Any]:
    m: dict[str, Any] = {"role": "user", "content": content}
    if id is not None:
        m["id"] = id
    return m


def ai(content: str, id: str | None = None) -> dict[str, Any]:
    m: dict[str, Any] = {"role": "assistant", "content": content}
    if id is not None:
        m["id"] = id
    return m


def system(content: str, id: str) -> dict[str, Any]:
    return {"role": "system", "content": content, "id": id}


def _is_uuid4(s: Any) -> bool:
    return isinstance(s, str) and uuid.UUID(s).version == 4


# -- LangGraph's cases ---------------------------------------------------------------------------------
def test_add_single_message() -> None:  # follows test_add_single_message
    assert add_messages([user("Hello", "1")], ai("Hi there!", "2")) == [user("Hello", "1"), ai("Hi there!", "2")]


def test_add_multiple_messages() -> None:  # follows test_add_multiple_messages
    out = add_messages([user("Hello", "1")], [ai("Hi there!", "2"), system("System message", "3")])
    assert out == [user("Hello", "1"), ai("Hi there!", "2"), system("System message", "3")]


def test_update_existing_message() -> None:  # follows test_update_existing_message
    assert add_messages([user("Hello", "1")], user("Hello again", "1")) == [user("Hello again", "1")]


def test_missing_ids_are_assigned_uuid4_strings() -> None:  # follows test_missing_ids
    out = add_messages([user("Hello")], [ai("Hi there!")])
    assert len(out) == 2
    assert all(_is_uuid4(m["id"]) for m in out)
    assert out[0]["id"] != out[1]["id"]


def test_duplicates_in_input_keep_the_last() -> None:  # follows test_duplicates_in_input
    out = add_messages([], [ai("Hi there!", "1"), ai("Hi there again!", "1")])
    assert out == [ai("Hi there again!", "1")]


def test_duplicates_in_input_with_remove() -> None:  # follows test_duplicates_in_input_with_remove
    out = add_messages([ai("Hello!", "1")], [RemoveMessage("1"), ai("Hi there!", "1"), ai("Hi there again!", "1")])
    assert out == [ai("Hi there again!", "1")]


def test_remove_message() -> None:  # follows test_remove_message
    assert add_messages([user("Hello", "1"), ai("Hi there!", "2")], RemoveMessage("2")) == [user("Hello", "1")]


def test_duplicate_remove_message() -> None:  # follows test_duplicate_remove_message
    out = add_messages([user("Hello", "1"), ai("Hi there!", "2")], [RemoveMessage("2"), RemoveMessage("2")])
    assert out == [user("Hello", "1")]


def test_remove_nonexistent_message_is_a_typed_error_naming_it() -> None:  # follows test_remove_nonexistent_message
    with pytest.raises(UnknownMessageError, match="no message has id 'nope'") as info:
        add_messages([user("Hello", "1")], RemoveMessage("nope"))
    assert info.value.id == "nope"
    assert isinstance(info.value, ValueError)  # as LangGraph's ValueError
    assert "'1'" in str(info.value)  # shows the ids there are


def test_mixed_operations() -> None:  # follows test_mixed_operations
    out = add_messages(
        [user("Hello", "1"), ai("Hi there!", "2")],
        [user("Updated hello", "1"), RemoveMessage("2"), system("New message", "3")],
    )
    assert out == [user("Updated hello", "1"), system("New message", "3")]


def test_empty_inputs() -> None:  # follows test_empty_inputs
    assert add_messages([], []) == []
    assert add_messages([], [user("Hello", "1")]) == [user("Hello", "1")]
    assert add_messages([user("Hello", "1")], []) == [user("Hello", "1")]


def test_non_list_inputs() -> None:  # follows test_non_list_inputs
    assert add_messages(user("Hello", "1"), ai("Hi there!", "2")) == [user("Hello", "1"), ai("Hi there!", "2")]


def test_delete_all_one_by_one() -> None:  # follows test_delete_all
    assert add_messages([user("Hello", "1"), ai("Hi there!", "2")], [RemoveMessage("1"), RemoveMessage("2")]) == []


def test_remove_all_messages() -> None:  # follows test_remove_all_messages
    assert add_messages([user("Hello"), ai("Hi there!")], [RemoveMessage(REMOVE_ALL_MESSAGES)]) == []
    out = add_messages([user("Hello"), ai("Hi there!")], [RemoveMessage(REMOVE_ALL_MESSAGES), user("Updated hello")])
    assert [(m["role"], m["content"]) for m in out] == [("user", "Updated hello")]
    # what came before the marker in the same update goes too
    out = add_messages(
        [user("Hello"), ai("Hi there!")],
        [user("Updated hello"), RemoveMessage(REMOVE_ALL_MESSAGES), user("Updated hi there")],
    )
    assert [m["content"] for m in out] == ["Updated hi there"]


class _PydanticMessagesState(__import__("pydantic").BaseModel):
    messages: Annotated[list, add_messages]


@pytest.mark.parametrize("schema", [MessagesState, _PydanticMessagesState], ids=["typeddict", "pydantic"])
def test_messages_state_in_a_graph(schema: Any) -> None:  # follows test_messages_state
    def foo(state: Any) -> dict[str, Any]:
        return {"messages": [user("foo")]}

    app = StateGraph(schema).add_node("foo", foo).add_edge(START, "foo").add_edge("foo", END).compile()
    out = app.invoke({"messages": [("user", "meow")]})
    msgs = out["messages"] if isinstance(out, dict) else out.messages
    assert [(m["role"], m["content"]) for m in msgs] == [("user", "meow"), ("user", "foo")]
    assert all(_is_uuid4(m["id"]) for m in msgs)


# -- our own ------------------------------------------------------------------------------------------
def test_shorthands_become_dicts() -> None:
    out = add_messages([], ["hi", ("ai", "hello"), ("system", "be brief"), ("human", "again")])
    assert [(m["role"], m["content"]) for m in out] == [
        ("user", "hi"), ("assistant", "hello"), ("system", "be brief"), ("user", "again"),
    ]


def test_left_is_not_modified_and_right_list_gets_its_ids() -> None:
    left = [user("a", "1")]
    right = [("ai", "b"), ai("c")]
    out = add_messages(left, right)
    assert left == [user("a", "1")]
    # the update itself now holds the dicts and their ids: a state rebuilt from stored updates has the same ids
    assert right == out[1:]
    assert all(_is_uuid4(m["id"]) for m in right)


def test_unknown_role_and_bad_message_are_errors_naming_them() -> None:
    with pytest.raises(ValueError, match="unknown message role 'robot'"):
        add_messages([], ("robot", "beep"))
    with pytest.raises(ValueError, match="has no 'role'"):
        add_messages([], {"content": "x"})
    with pytest.raises(TypeError, match="cannot use int 42 as a message"):
        add_messages([], [42])


def test_tool_call_message_round_trip_keeps_its_fields() -> None:
    call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"x": 1}'}}
    msgs = add_messages([], [{"role": "assistant", "content": None, "tool_calls": [call]},
                              {"role": "tool", "tool_call_id": "c1", "name": "f", "content": "2"}])
    assert msgs[0]["tool_calls"] == [call] and msgs[1]["tool_call_id"] == "c1"


def test_remove_of_an_unknown_id_in_a_graph_names_the_node_and_key() -> None:
    def bad(state: Any) -> dict[str, Any]:
        return {"messages": [RemoveMessage("ghost")]}

    app = StateGraph(MessagesState).add_node("bad", bad).add_edge(START, "bad").compile()
    with pytest.raises(InvalidUpdateError, match="ghost") as info:
        app.invoke({"messages": "hi"})
    assert info.value.node == "bad" and info.value.key == "messages"
    assert isinstance(info.value.__cause__, UnknownMessageError)


def test_subclass_of_messages_state_adds_keys() -> None:
    class State(MessagesState):
        turns: int

    def bot(state: Any) -> dict[str, Any]:
        return {"messages": ai(f"turn {state.get('turns', 0) + 1}"), "turns": state.get("turns", 0) + 1}

    app = StateGraph(State).add_node("bot", bot).add_edge(START, "bot").compile()
    out = app.invoke({"messages": "hi"}, thread_id="t")
    out = app.invoke({"messages": "again"}, thread_id="t")
    assert [m["content"] for m in out["messages"]] == ["hi", "turn 1", "again", "turn 2"]
    assert out["turns"] == 2


@pytest.mark.parametrize("store", ["memory", "sqlite"])
def test_conversation_through_checkpoints_keeps_ids_and_removals(store: str, tmp_path: Any) -> None:
    """RemoveMessage in a node's update is stored with the step's writes (the serializer knows
    it), and a state rebuilt from the stored writes has the same ids as the live one."""
    checkpointer = "memory" if store == "memory" else f"sqlite:///{tmp_path / 'c.db'}"

    def bot(state: Any) -> dict[str, Any]:
        msgs = state["messages"]
        update: list[Any] = [("ai", f"echo {msgs[-1]['content']}")]
        if len(msgs) > 3:  # forget the oldest exchange
            update = [RemoveMessage(msgs[0]["id"]), RemoveMessage(msgs[1]["id"]), *update]
        return {"messages": update}

    app = StateGraph(MessagesState).add_node("bot", bot).add_edge(START, "bot").compile(checkpointer=checkpointer)
    for text in ["a", "b", "c"]:
        live = app.invoke({"messages": [text]}, thread_id="t")
    assert [m["content"] for m in live["messages"]] == ["b", "echo b", "c", "echo c"]
    assert app.get_state("t").values == live
    # every checkpoint of the history rebuilds (writes replayed through the reducer) with the same ids
    seen: dict[str, str] = {}
    for snap in app.get_state_history("t"):
        for m in snap.values.get("messages", []):
            assert seen.setdefault(m["content"], m["id"]) == m["id"]
    # a fresh app over the same store sees the same conversation
    if store == "sqlite":
        again = StateGraph(MessagesState).add_node("bot", bot).add_edge(START, "bot").compile(checkpointer=checkpointer)
        assert again.get_state("t").values == live


def test_langchain_messages_are_converted() -> None:
    lc = pytest.importorskip("langchain_core.messages")
    out = add_messages(
        [lc.SystemMessage("be brief", id="s")],
        [
            lc.HumanMessage("weather?", id="h"),
            lc.AIMessage("", id="a", tool_calls=[{"name": "weather", "args": {"city": "Oslo"}, "id": "c1"}]),
            lc.ToolMessage("sunny", tool_call_id="c1", id="t"),
            lc.AIMessage("It is sunny."),
        ],
    )
    assert [m["role"] for m in out] == ["system", "user", "assistant", "tool", "assistant"]
    assert out[2]["tool_calls"] == [
        {"id": "c1", "type": "function", "function": {"name": "weather", "arguments": '{"city": "Oslo"}'}}
    ]
    assert out[2]["content"] is None
    assert out[3] == {"role": "tool", "content": "sunny", "tool_call_id": "c1", "id": "t"}
    assert _is_uuid4(out[4]["id"]) and all(type(m) is dict for m in out)
    # LangChain's RemoveMessage removes too
    assert [m["id"] for m in add_messages(out, lc.RemoveMessage(id="h"))] == ["s", "a", "t", out[4]["id"]]


def test_langchain_messages_as_graph_input() -> None:
    lc = pytest.importorskip("langchain_core.messages")

    class State(TypedDict):
        messages: Annotated[list, add_messages]

    app = StateGraph(State).add_node("n", lambda s: {"messages": ("ai", "ok")}).add_edge(START, "n").compile()
    out = app.invoke({"messages": [lc.HumanMessage("hi")]}, thread_id="t")
    assert [(m["role"], m["content"]) for m in out["messages"]] == [("user", "hi"), ("assistant", "ok")]
    assert app.get_state("t").values == out


def test_import_agentgraph_nb_imports_neither_pydantic_nor_mcp() -> None:
    import subprocess
    import sys

    code = (
        "import sys, agentgraph_nb; from agentgraph_nb import MessagesState, add_messages; "
        "print(sorted(m for m in ('pydantic', 'mcp', 'langchain_core') if m in sys.modules))"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"


# -- property: add_messages against a plain model of a conversation -----------------------------------
def test_add_messages_matches_a_simple_model() -> None:
    from hypothesis import given, settings
    from hypothesis import strategies as st

    ids = st.sampled_from(["a", "b", "c", "d", "e"])
    op = st.one_of(
        st.tuples(st.just("put"), ids, st.text(max_size=3)),
        st.tuples(st.just("remove"), ids, st.just("")),
    )

    @settings(max_examples=300, deadline=None)
    @given(st.lists(st.lists(op, max_size=5), max_size=6))
    def check(updates: list[list[tuple[str, str, str]]]) -> None:
        state: list[dict[str, Any]] = []
        model: dict[str, str] = {}  # insertion-ordered: id -> content
        for ops in updates:
            # the model: a message keeps the place it first had; an update's last word on an id wins
            right: list[Any] = []
            order = list(model)
            content = dict(model)
            gone: set[str] = set()
            ok = True
            for kind, mid, text in ops:
                if kind == "put":
                    right.append({"role": "user", "content": text, "id": mid})
                    if mid not in content:
                        order.append(mid)
                    content[mid] = text
                    gone.discard(mid)
                else:
                    right.append(RemoveMessage(mid))
                    ok = ok and mid in content  # known: in the list, or put earlier in this update
                    gone.add(mid)
            if not ok:
                with pytest.raises(UnknownMessageError):
                    add_messages(state, right)
                continue
            state = add_messages(state, right)
            model = {k: content[k] for k in order if k not in gone}
            assert [(m["id"], m["content"]) for m in state] == list(model.items())

    check()


@pytest.mark.parametrize("update", ["a string", ("ai", "a pair")], ids=["str", "pair"])
def test_a_bare_shorthand_update_gets_the_same_id_when_the_state_is_rebuilt(update: Any, tmp_path: Any) -> None:
    """A node returning one string or pair (not in a list): the stored update cannot hold the id,
    so the id is derived from the message before it, and a state rebuilt from the stored updates
    (SQLite keeps only updates between snapshots) has the ids the live run had."""
    def bot(state: Any) -> dict[str, Any]:
        return {"messages": update}

    url = f"sqlite:///{tmp_path / 'c.db'}"
    app = StateGraph(MessagesState).add_node("bot", bot).add_edge(START, "bot").compile(checkpointer=url)
    live = [app.invoke({"messages": [f"q{i}"]}, thread_id="t") for i in range(3)][-1]
    ids = [m["id"] for m in live["messages"]]
    assert len(set(ids)) == 6 and all(_is_uuid4(i) for i in ids)  # equal messages, distinct ids
    again = StateGraph(MessagesState).add_node("bot", bot).add_edge(START, "bot").compile(checkpointer=url)
    assert again.get_state("t").values == live
    for snap in again.get_state_history("t"):  # every checkpoint rebuilds a prefix of the live conversation
        got = [m["id"] for m in snap.values.get("messages", [])]
        assert got == ids[: len(got)]
