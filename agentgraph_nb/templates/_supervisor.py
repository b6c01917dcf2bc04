"""The ``supervisor`` template's state and plain-function defaults. Below the marker line is the
cell that ``%agentgraph new supervisor NAME`` writes for the user to edit."""
# ---- stub cell ----
import operator
from typing import Annotated

from typing_extensions import NotRequired, TypedDict

from agentgraph_nb import END

WORKERS = ["researcher", "writer"]


class SupervisorState(TypedDict):
    task: str
    notes: Annotated[list, operator.add]
    next: NotRequired[str]


def supervisor(state: SupervisorState) -> dict:
    """Pick the next worker, or FINISH. This stand-in runs each worker once, in order; a model
    would read the notes and choose."""
    done = {n["by"] for n in state.get("notes", [])}
    todo = [w for w in WORKERS if w not in done]
    return {"next": todo[0] if todo else "FINISH"}


def route(state: SupervisorState) -> str:
    """Where the supervisor's choice leads."""
    return END if state["next"] == "FINISH" else state["next"]


def researcher(state: SupervisorState) -> dict:
    return {"notes": [{"by": "researcher", "text": f"facts about {state['task']}"}]}


def writer(state: SupervisorState) -> dict:
    facts = "; ".join(n["text"] for n in state["notes"] if n["by"] == "researcher")
    return {"notes": [{"by": "writer", "text": f"a report on {state['task']} from: {facts}"}]}
