"""The ``plan_and_execute`` template's state and plain-function defaults. Below the marker line is
the cell that ``%agentgraph new plan_and_execute NAME`` writes for the user to edit."""
# ---- stub cell ----
import operator
from typing import Annotated

from typing_extensions import NotRequired, TypedDict


class PlanState(TypedDict):
    objective: str
    plan: NotRequired[list]
    done: Annotated[list, operator.add]
    answer: NotRequired[str]


def plan(state: PlanState) -> dict:
    """Write the plan: a list of steps. This stand-in uses three fixed steps."""
    goal = state["objective"]
    return {"plan": [f"find sources on {goal}", f"extract the facts about {goal}", "write the answer"]}


def execute(state: PlanState) -> dict:
    """Carry out the next step of the plan."""
    step = state["plan"][len(state["done"])]
    return {"done": [{"step": step, "result": f"did: {step}"}]}


def replan(state: PlanState) -> str:
    """After each step: another step, or finish (a model could also rewrite the plan here)."""
    return "execute" if len(state["done"]) < len(state["plan"]) else "finish"


def finish(state: PlanState) -> dict:
    return {"answer": " / ".join(d["result"] for d in state["done"])}
