"""The ``reflection`` template's state and plain-function defaults. Below the marker line is the
cell that ``%agentgraph new reflection NAME`` writes for the user to edit."""
# ---- stub cell ----
from typing_extensions import NotRequired, TypedDict

from agentgraph_nb import END

MAX_ROUNDS = 3


class ReflectionState(TypedDict):
    request: str
    draft: NotRequired[str]
    critique: NotRequired[str]
    rounds: NotRequired[int]


def generate(state: ReflectionState) -> dict:
    """Write (or rewrite) the draft, taking the last critique into account."""
    rounds = state.get("rounds", 0) + 1
    draft = f"draft {rounds} of {state['request']}"
    if state.get("critique"):
        draft += f" (revised for: {state['critique']})"
    return {"draft": draft, "rounds": rounds}


def reflect(state: ReflectionState) -> dict:
    """Criticise the draft; "OK" accepts it. This stand-in accepts the second draft."""
    return {"critique": "OK" if state["rounds"] >= 2 else "needs more detail"}


def should_continue(state: ReflectionState) -> str:
    """Another round, or stop when the critic is satisfied or MAX_ROUNDS is reached."""
    if state["critique"] == "OK" or state["rounds"] >= MAX_ROUNDS:
        return END
    return "generate"
