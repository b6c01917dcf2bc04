"""The ``retrieval_qa`` template's state and plain-function defaults. Below the marker line is the
cell that ``%agentgraph new retrieval_qa NAME`` writes for the user to edit."""
# ---- stub cell ----
import re

from typing_extensions import NotRequired, TypedDict

DOCUMENTS = [
    "agentgraph_nb runs graphs of steps over a shared state, in supersteps.",
    "A checkpointer keeps every step of a thread, so a run can resume or rewind.",
    "GraphView draws the graph and colours each node as it runs.",
]
TOP_K = 2
STOPWORDS = {"a", "an", "and", "are", "do", "does", "how", "i", "in", "is", "it", "of", "or", "so", "the",
             "they", "to", "what", "when", "where", "which", "who", "why"}


class QAState(TypedDict):
    question: str
    context: NotRequired[list]
    answer: NotRequired[str]


def _words(text: str) -> set:
    return set(re.findall(r"[a-z0-9]+", text.lower())) - STOPWORDS


def retrieve(state: QAState) -> dict:
    """The TOP_K documents sharing the most words with the question (swap in a vector store)."""
    q = _words(state["question"])
    ranked = sorted(DOCUMENTS, key=lambda d: -len(q & _words(d)))
    return {"context": ranked[:TOP_K]}


def answer(state: QAState) -> dict:
    """Answer from the context. This stand-in quotes the best document; a model would write."""
    best = state["context"][0] if state["context"] else "nothing relevant was found"
    return {"answer": best}
