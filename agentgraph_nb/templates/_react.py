"""The ``react`` template's state and plain-function defaults. Below the marker line is the cell
that ``%agentgraph new react NAME`` writes for the user to edit."""
# ---- stub cell ----
import ast
import json
import operator
from typing import Annotated

from typing_extensions import TypedDict

from agentgraph_nb import add_messages
from agentgraph_nb.tools import ToolNode, tool, tools_condition  # noqa: F401  (the graph cell routes with it)


class ReactState(TypedDict):
    messages: Annotated[list, add_messages]


_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
        ast.USub: operator.neg, ast.UAdd: operator.pos}


@tool
def calculator(expression: str) -> str:
    """Evaluate an arithmetic expression such as '(2 + 3) * 4'."""

    def ev(n):
        if isinstance(n, ast.Constant) and isinstance(n.value, (int, float)):
            return n.value
        if isinstance(n, ast.BinOp) and type(n.op) in _OPS:
            return _OPS[type(n.op)](ev(n.left), ev(n.right))
        if isinstance(n, ast.UnaryOp) and type(n.op) in _OPS:
            return _OPS[type(n.op)](ev(n.operand))
        raise ValueError(f"not arithmetic: {expression!r}")

    return str(ev(ast.parse(expression, mode="eval").body))


def agent(state: ReactState) -> dict:
    """The model's turn. This stand-in asks the calculator about the question's arithmetic once,
    then answers with the tool's result; replace it with a model call (see the template's docs)."""
    last = state["messages"][-1]
    if last["role"] == "tool":
        return {"messages": [{"role": "assistant", "content": f"The answer is {last['content']}."}]}
    expression = "".join(ch for ch in last["content"] if ch in "0123456789.+-*/() ").strip()
    call = {"id": "call_1", "type": "function",
            "function": {"name": "calculator", "arguments": json.dumps({"expression": expression})}}
    return {"messages": [{"role": "assistant", "content": "", "tool_calls": [call]}]}


tools = ToolNode([calculator])
