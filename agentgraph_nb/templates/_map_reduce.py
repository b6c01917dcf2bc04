"""The ``map_reduce`` template's state and plain-function defaults. Below the marker line is the
cell that ``%agentgraph new map_reduce NAME`` writes for the user to edit."""
# ---- stub cell ----
import operator
from typing import Annotated

from typing_extensions import NotRequired, TypedDict

from agentgraph_nb import Send


class MapReduceState(TypedDict):
    items: list
    results: Annotated[list, operator.add]
    summary: NotRequired[str]


def split(state: MapReduceState) -> dict:
    """Prepare the work: here, drop empty items."""
    return {"items": [i for i in state["items"] if str(i).strip()]}


def fan_out(state: MapReduceState) -> list:
    """One ``work`` task per item, all in the same step (they run concurrently)."""
    return [Send("work", {"item": item}) for item in state["items"]]


def work(state: dict) -> dict:
    """The map step, on one item (its state is the Send's payload, ``{"item": ...}``): here,
    count its words."""
    return {"results": [{"item": state["item"], "words": len(str(state["item"]).split())}]}


def reduce(state: MapReduceState) -> dict:
    """The reduce step, over every result (in the items' order)."""
    total = sum(r["words"] for r in state["results"])
    return {"summary": f"{len(state['results'])} items, {total} words"}
