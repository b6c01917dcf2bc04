"""Transactions (``add_transaction``): a chain of nodes whose writes stay only if none of them
fails for good; a failure puts the state back to before the group and the thread resumes at
its first node; compensations still run; bad input is a typed error naming the group."""

from __future__ import annotations

import asyncio
from typing import Any, TypedDict

import pytest

from agentgraph_nb import END, START, GraphValidationError, StateGraph


class S(TypedDict, total=False):
    cart: str
    reserved: bool
    charged: int
    shipped: bool
    seen: list[str]


def _shop(fail: set[str], log: list[str], *, undo: bool = False) -> StateGraph:
    def step(name: str, update: dict[str, Any]) -> Any:
        def fn(s: S) -> dict[str, Any]:
            log.append(f"{name} sees reserved={s.get('reserved')} charged={s.get('charged')}")
            if name in fail:
                raise RuntimeError(f"{name} failed")
            return update
        return fn

    g = StateGraph(S, name="shop")
    g.add_node("cart", step("cart", {"cart": "full"}))
    g.add_node("reserve", step("reserve", {"reserved": True}),
               compensate=(lambda s: log.append("release")) if undo else None)
    g.add_node("charge", step("charge", {"charged": 42}))
    g.add_node("ship", step("ship", {"shipped": True}))
    g.add_edge(START, "cart").add_edge("cart", "reserve").add_edge("reserve", "charge")
    g.add_edge("charge", "ship").add_edge("ship", END)
    g.add_transaction("checkout", ["reserve", "charge", "ship"])
    return g


def test_all_writes_commit_when_the_group_finishes_and_members_see_each_others_writes() -> None:
    log: list[str] = []
    out = _shop(set(), log).compile().invoke({}, thread_id="t")
    assert out == {"cart": "full", "reserved": True, "charged": 42, "shipped": True}
    assert log[2:] == ["charge sees reserved=True charged=None", "ship sees reserved=True charged=42"]


@pytest.mark.parametrize("thread", [None, "t1"])
def test_a_failure_inside_discards_the_groups_writes(thread: str | None) -> None:
    log: list[str] = []
    app = _shop({"ship"}, log).compile()
    events: list[Any] = []
    with pytest.raises(RuntimeError, match="ship failed"):
        app.invoke({}, thread_id=thread, listeners=[events.append])
    rb = [e for e in events if e.kind == "rollback"]
    assert len(rb) == 1 and rb[0].node == "ship" and rb[0].data["transaction"] == "checkout"
    assert [e.data["values"] for e in events if e.kind == "run_end"] == [{"cart": "full"}]
    if thread is None:
        return
    snap = app.get_state(thread)
    assert snap.values == {"cart": "full"}  # the write before the group stays
    assert snap.next == ("reserve",)
    assert snap.metadata["source"] == "rollback" and snap.metadata["transaction"] == "checkout"
    # fixed, the thread re-runs the whole group
    log.clear()
    fixed = _shop(set(), log).compile(checkpointer=app.checkpointer)
    assert fixed.invoke(None, thread_id=thread)["shipped"] is True
    assert [line.split()[0] for line in log] == ["reserve", "charge", "ship"]


def test_the_first_nodes_failure_leaves_the_state_as_it_was() -> None:
    log: list[str] = []
    app = _shop({"reserve"}, log).compile()
    with pytest.raises(RuntimeError):
        app.invoke({}, thread_id="t")
    snap = app.get_state("t")
    assert snap.values == {"cart": "full"} and snap.next == ("reserve",)


def test_compensations_run_and_the_state_is_rolled_back() -> None:
    log: list[str] = []
    app = _shop({"charge"}, log, undo=True).compile()
    with pytest.raises(RuntimeError, match="charge failed"):
        asyncio.run(app.ainvoke({}, thread_id="t"))
    assert log[-1] == "release"
    snap = app.get_state("t")
    assert snap.values == {"cart": "full"} and snap.next == ()  # compensated: the saga is over


def test_a_failure_outside_the_group_rolls_nothing_back() -> None:
    log: list[str] = []
    g = _shop(set(), log)
    g.add_node("after", lambda s: (_ for _ in ()).throw(ValueError("late")))
    g.edges.remove(("ship", END))
    g.add_edge("ship", "after")
    app = g.compile()
    with pytest.raises(ValueError, match="late"):
        app.invoke({}, thread_id="t")
    assert app.get_state("t").values["shipped"] is True


def test_bad_input() -> None:
    g = _shop(set(), [])
    with pytest.raises(GraphValidationError, match="non-empty list"):
        g.add_transaction("empty", [])
    with pytest.raises(GraphValidationError, match="already in transaction 'checkout'"):
        g.add_transaction("other", ["cart", "reserve"])
    with pytest.raises(GraphValidationError, match="appears twice"):
        g.add_transaction("dup", ["cart", "cart"])
    with pytest.raises(GraphValidationError, match="already has a transaction"):
        g.add_transaction("checkout", ["cart"])
    g2 = _shop(set(), [])
    g2.add_transaction("typo", ["crat"])
    with pytest.raises(GraphValidationError, match="transaction 'typo'.*unknown node 'crat'.*Did you mean 'cart'"):
        g2.compile()
    g3 = StateGraph(S)
    for n in "abc":
        g3.add_node(n, lambda s: None)
    g3.add_edge(START, "a").add_edge("a", "b").add_edge("b", "c")
    g3.add_transaction("wrong", ["a", "c"])
    with pytest.raises(GraphValidationError, match="transaction 'wrong'.*no edge 'a' -> 'c'"):
        g3.compile()


def test_a_group_begun_by_an_earlier_run_is_rolled_back_from_the_stored_history() -> None:
    log: list[str] = []
    app = _shop({"ship"}, log).compile()
    app.invoke({}, thread_id="t", max_steps=3)  # cart, reserve, charge: stopped inside the group
    assert app.get_state("t").values["charged"] == 42
    again = _shop({"ship"}, log).compile(checkpointer=app.checkpointer)  # a new run knows nothing in memory
    with pytest.raises(RuntimeError, match="ship failed"):
        again.invoke(None, thread_id="t")
    snap = again.get_state("t")
    assert snap.values == {"cart": "full"} and snap.next == ("reserve",)


def test_json_round_trip_dot_cluster_and_dsl_comment() -> None:
    from agentgraph_nb.export.dot import to_dot
    from agentgraph_nb.export.dsl import to_dsl

    g = _shop(set(), [])
    data = g.to_json()
    assert data["transactions"] == [{"name": "checkout", "nodes": ["reserve", "charge", "ship"]}]
    ns = {"cart": g.nodes["cart"].fn, "reserve": g.nodes["reserve"].fn, "charge": g.nodes["charge"].fn,
          "ship": g.nodes["ship"].fn}
    assert StateGraph.from_json(data, schema=S, namespace=ns).transactions == {"checkout": ("reserve", "charge", "ship")}
    dot = to_dot(data)
    box = dot[dot.index('subgraph "cluster_tx_checkout"'):]
    box = box[: box.index("}")]
    assert 'label="transaction checkout"' in box and '"reserve";' in box and '"ship";' in box and '"cart"' not in box
    text = to_dsl(data)
    assert "transaction checkout: reserve, charge, ship" in text


def test_the_cell_language_form() -> None:
    from agentgraph_nb.export.dsl import to_dsl
    from agentgraph_nb.notebook._dsl import DslSyntaxError, Transaction, build, parse

    log: list[str] = []
    g = _shop({"ship"}, log)
    ns = {n: spec.fn for n, spec in g.nodes.items()}
    cell = "START -> cart -> reserve -> charge -> ship -> END\ntransaction checkout: reserve, charge, ship\n"
    d = parse(cell)
    assert d.transactions == (Transaction("checkout", ("reserve", "charge", "ship")),)
    built = build(d, name="shop", schema=S, namespace=ns, builder_cls=StateGraph)
    assert built.transactions == {"checkout": ("reserve", "charge", "ship")}
    app = built.compile()
    with pytest.raises(RuntimeError):
        app.invoke({}, thread_id="t")
    assert app.get_state("t").values == {"cart": "full"}
    assert "transaction checkout: reserve, charge, ship" in to_dsl(built.to_json())
    assert parse(to_dsl(built.to_json())).transactions == d.transactions
    bad = build(parse(cell.replace("reserve, charge, ship", "cart, charge")), name="s", schema=S, namespace=ns,
                builder_cls=StateGraph)
    with pytest.raises(GraphValidationError, match="transaction 'checkout'.*no edge 'cart' -> 'charge'"):
        bad.compile()
    with pytest.raises(DslSyntaxError, match="a transaction is written"):
        parse("transaction checkout reserve")



def test_mermaid_draws_the_transaction_as_a_block() -> None:
    from agentgraph_nb.export.mermaid import to_mermaid

    mm = to_mermaid(_shop(set(), []).to_json())
    block = mm[mm.index('subgraph n_tx_20_checkout ["transaction checkout"]'):]
    block = block[: block.index("\n  end")]
    assert block.split("\n")[1:] == ["    n_reserve", "    n_charge", "    n_ship"]
