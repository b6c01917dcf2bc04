"""Utility nodes: validate, transform (functions and the safe expression language), template."""

from __future__ import annotations

from typing import Any

import pytest

from agentgraph_nb import START, StateGraph
from agentgraph_nb.errors import AgentGraphError, NodeValueError
from agentgraph_nb.nodes import template, transform, validate


def run(node: Any, state: dict[str, Any], name: str = "u") -> dict[str, Any]:
    app = StateGraph(dict).add_node(name, node).add_edge(START, name).compile(checkpointer=None)
    return app.invoke(state)


def cause(node: Any, state: dict[str, Any], name: str = "u") -> BaseException:
    with pytest.raises(AgentGraphError) as ei:  # the node's own error
        run(node, state, name)
    assert ei.value is not None
    return ei.value


def test_validate_with_a_json_schema() -> None:
    pytest.importorskip("jsonschema")
    schema = {"type": "object", "required": ["city"], "properties": {"city": {"type": "string"}, "n": {"type": "integer"}}}
    assert run(validate(schema, key="req", into="ok"), {"req": {"city": "Oslo"}})["ok"] == {"city": "Oslo"}
    err = cause(validate(schema, key="req"), {"req": {"n": "x"}}, name="check")
    assert isinstance(err, NodeValueError) and err.node == "check" and err.key == "req"
    assert "'city' is a required property" in str(err) and "n: 'x' is not of type 'integer'" in str(err)
    with pytest.raises(ValueError, match="schema itself is invalid"):
        validate({"type": 12})


def test_validate_with_a_pydantic_model() -> None:
    pydantic = pytest.importorskip("pydantic")

    class Req(pydantic.BaseModel):
        city: str
        n: int = 1

    assert run(validate(Req, key="req", into="clean"), {"req": {"city": "Oslo"}})["clean"] == {"city": "Oslo", "n": 1}
    err = cause(validate(Req, key="req"), {"req": {"n": "many"}}, name="check")
    assert isinstance(err, NodeValueError) and "does not match Req" in str(err) and "city: Field required" in str(err)
    err = cause(validate(Req, key="missing"), {"req": {}})
    assert isinstance(err, NodeValueError) and err.key == "missing"
    with pytest.raises(TypeError):
        validate(42)


def test_transform_function_and_expressions() -> None:
    assert run(transform(lambda s: s["a"] + 1, into="b"), {"a": 1})["b"] == 2
    assert run(transform(lambda s: {"b": 5}), {"a": 1})["b"] == 5
    state = {"price": 2.5, "qty": 4, "user": {"name": "Ada"}, "items": [{"p": 1}, {"p": 5}, {"p": 9}]}
    cases = {
        "price * qty": 10.0,
        "price * qty if qty > 3 else 0": 10.0,
        "lower(user.name) == 'ada' and not qty < 0": True,
        "[i['p'] for i in items if i['p'] > 2]": [5, 9],
        "sum(i['p'] for i in items)": 15,
        "items[-1]['p'] + len(items[:2])": 11,
        "join(', ', sorted(['b', 'a']))": "a, b",
        "{'n': qty, 'big': qty >= 4}": {"n": 4, "big": True},
        "get(user, 'age', 18)": 18,
        "1 < qty <= 4": True,
        "'Ad' in user.name": True,
    }
    for expr, want in cases.items():
        assert run(transform(expr, into="out"), state)["out"] == want, expr


@pytest.mark.parametrize(
    "expr",
    [
        "__import__('os').system('echo hi')",
        "().__class__.__bases__[0].__subclasses__()",
        "user.__class__",
        "open('/etc/passwd')",
        "eval('1')",
        "lower.__globals__",
        "(lambda: 1)()",
        "[x for x in items].pop()",
        "f'{qty}'",
        "price := 3",
    ],
)
def test_unsafe_expressions_are_refused_when_built(expr: str) -> None:
    with pytest.raises(ValueError):
        transform(expr, into="x")


def test_expression_errors_name_node_and_key() -> None:
    err = cause(transform("price * qty", into="total"), {"price": 2}, name="calc")
    assert isinstance(err, NodeValueError) and err.node == "calc" and err.key == "qty" and "'qty'" in str(err)
    err = cause(transform("user.age + 1", into="x"), {"user": {"name": "a"}})
    assert isinstance(err, NodeValueError) and "no key 'age'" in str(err)
    err = cause(transform("price / qty", into="ratio"), {"price": 1, "qty": 0})
    assert isinstance(err, NodeValueError) and "ZeroDivisionError" in str(err) and "'ratio'" in str(err)
    err = cause(transform("'x' * n", into="s"), {"n": 10**9})
    assert "too large" in str(err)
    err = cause(transform("2 ** n", into="s"), {"n": 10**6})
    assert "exponent too large" in str(err)
    with pytest.raises(ValueError, match="needs into"):
        transform("1 + 1")


def test_template_renders_in_a_sandbox_and_strict_about_missing_keys() -> None:
    pytest.importorskip("jinja2")
    node = template("Dear {{ user.name }}, you have {{ items | length }} items.", into="letter")
    assert run(node, {"user": {"name": "Ada"}, "items": [1, 2]})["letter"] == "Dear Ada, you have 2 items."
    err = cause(node, {"items": []}, name="letter")
    assert isinstance(err, NodeValueError) and err.node == "letter" and "'user' is undefined" in str(err)
    evil = template("{{ ''.__class__.__mro__[1].__subclasses__() }}", into="x")
    err = cause(evil, {})
    assert isinstance(err, NodeValueError) and "sandbox forbids" in str(err) and "__class__" in str(err)
    with pytest.raises(ValueError, match="line 1"):
        template("{% if %}", into="x")


def test_util_nodes_by_name_in_a_cell() -> None:
    from agentgraph_nb.notebook import _dsl

    ns = {"total": transform("price * qty", into="total"), "check": validate({"type": "object"}, key="cart")}
    app = _dsl.build(_dsl.parse("START -> check -> total -> END"), name="g", schema=dict, namespace=ns,
                     builder_cls=StateGraph).compile(checkpointer=None)
    assert app.invoke({"price": 2, "qty": 3, "cart": {}})["total"] == 6
