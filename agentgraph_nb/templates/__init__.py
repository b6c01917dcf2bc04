"""Graph templates: the common shapes of agent graphs, ready to run and to edit.

Each template is a function returning a :class:`~agentgraph_nb.StateGraph` (not compiled, so
you can add to it) whose nodes are plain Python functions by default: it runs with no model and
no key. Give it your own functions, or a chat model (anything with ``invoke(messages)`` returning
an assistant message, e.g. :class:`agentgraph_nb.llm.OpenAIChat`), to make it real.

=====================  =======================================================================
``react``              a model calls tools until it can answer (model -> tools -> model ...)
``map_reduce``         split a list, run one task per item in parallel (``Send``), reduce
``supervisor``         a supervisor picks which worker runs next until it says FINISH
``plan_and_execute``   write a plan, run its steps one by one, then answer
``reflection``         generate a draft, criticise it, revise until accepted or a round limit
``retrieval_qa``       retrieve the documents closest to a question, answer from them
=====================  =======================================================================

In a notebook, ``%agentgraph new TEMPLATE NAME`` writes the template's state and functions into
the next cell for you to edit; running that cell writes the ``%%agentgraph`` cell that builds
the graph. :func:`stub_cell` and :func:`graph_cell` return the same text.

Example:
    >>> from agentgraph_nb import templates
    >>> app = templates.reflection().compile()
    >>> app.invoke({"request": "a haiku"})["rounds"]
    2
"""

from __future__ import annotations

import importlib
import inspect
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from types import ModuleType

    from agentgraph_nb.graph.state import StateGraph

__all__ = [
    "TEMPLATES",
    "Template",
    "UnknownTemplateError",
    "graph_cell",
    "map_reduce",
    "plan_and_execute",
    "react",
    "reflection",
    "retrieval_qa",
    "stub_cell",
    "supervisor",
]

_MARKER = "# ---- stub cell ----\n"


class UnknownTemplateError(KeyError):
    """A template name that does not exist; the message lists the ones that do."""

    def __str__(self) -> str:  # KeyError quotes its argument; this is a sentence
        return str(self.args[0])


@dataclass(frozen=True)
class Template:
    """One template: its name, a one-line summary, and the function that builds it."""

    name: str
    summary: str
    build: Callable[..., StateGraph]
    module: str

    def defaults(self) -> ModuleType:
        """The module holding the template's state class and plain-function defaults."""
        return importlib.import_module(f"agentgraph_nb.templates.{self.module}")

    def source(self) -> str:
        """The Python text of the state and the default functions (the stub cell's body)."""
        text = inspect.getsource(self.defaults())
        return text.split(_MARKER, 1)[1]


def _ask(model: Any, prompt: str, *, system: str | None = None) -> str:
    """One model call with one user message; the answer's text."""
    msgs = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]
    out = model.invoke(msgs)
    if isinstance(out, str):
        return out
    if isinstance(out, Mapping):
        return str(out.get("content") or "")
    return str(getattr(out, "content", out))


def _pick(fn: Callable[..., Any] | None, default: Callable[..., Any], what: str, template: str) -> Callable[..., Any]:
    if fn is None:
        return default
    if not callable(fn):
        raise TypeError(f"templates.{template}: {what} must be a function of the state; got {type(fn).__name__} {fn!r}")
    return fn


def _graph(schema: Any, name: str) -> StateGraph:
    from agentgraph_nb.graph.state import StateGraph

    return StateGraph(schema, name=name)


# -- the templates ----------------------------------------------------------------------------


def react(model: Any = None, tools: Sequence[Any] | None = None, *, prompt: str | None = None, name: str = "react") -> StateGraph:
    """A tool-calling agent: ``agent`` (the model) -> ``tools`` -> ``agent`` ... until the model
    answers without calling a tool.

    Args:
        model: a chat model offering ``bind_tools`` (e.g. ``OpenAIChat``); without one, a stand-in
            asks the calculator about the question's arithmetic and answers with its result.
        tools: the tools (``@tool`` functions); default: a safe ``calculator``.
        prompt: a system message put before the conversation (with a model).
        name: the graph's name.

    Returns:
        The builder: ``react(model, tools).compile(checkpointer=...)``. State: ``messages``.
    """
    from agentgraph_nb.tools import ToolNode, tools_condition

    d = Template.defaults(TEMPLATES["react"])
    tool_list = list(tools) if tools is not None else [d.calculator]
    agent: Callable[..., Any] = d.agent
    if model is not None:
        if not hasattr(model, "bind_tools"):
            raise TypeError(f"templates.react: the model {model!r} has no bind_tools(); a chat model offering tools is needed")
        bound = model.bind_tools(tool_list)
        system = [{"role": "system", "content": prompt}] if prompt else []

        def agent(state: Any) -> dict[str, Any]:
            return {"messages": [bound.invoke(system + list(state["messages"]))]}

    g = _graph(d.ReactState, name)
    g.add_node("agent", agent)
    g.add_node("tools", ToolNode(tool_list) if tools is not None else d.tools)
    g.add_edge("__start__", "agent")
    g.add_conditional_edges("agent", tools_condition, ["tools", "__end__"])
    g.add_edge("tools", "agent")
    return g


def map_reduce(
    work: Callable[..., Any] | None = None,
    reduce: Callable[..., Any] | None = None,
    *,
    split: Callable[..., Any] | None = None,
    model: Any = None,
    name: str = "map_reduce",
) -> StateGraph:
    """Map over a list in parallel, then reduce: ``split`` -> one ``work`` task per item (``Send``,
    all in one step) -> ``reduce``.

    Args:
        work: ``work({"item": x}) -> {"results": [r]}``; default: count the item's words; with a
            model: summarise the item in one sentence.
        reduce: ``reduce(state) -> {"summary": ...}`` over ``state["results"]`` (in the items'
            order); default: totals; with a model: one summary of the summaries.
        split: prepares ``state["items"]``; default: drops empty items.
        model: a chat model for the default ``work`` and ``reduce``.
        name: the graph's name.

    Returns:
        The builder. Input: ``{"items": [...]}``; output adds ``results`` and ``summary``.
    """
    d = Template.defaults(TEMPLATES["map_reduce"])
    work_fn, reduce_fn = d.work, d.reduce
    if model is not None:

        def work_fn(state: Any) -> dict[str, Any]:
            return {"results": [{"item": state["item"], "summary": _ask(model, f"Summarise in one sentence:\n{state['item']}")}]}

        def reduce_fn(state: Any) -> dict[str, Any]:
            parts = "\n".join(f"- {r['summary']}" for r in state["results"])
            return {"summary": _ask(model, f"Combine these into one short summary:\n{parts}")}

    g = _graph(d.MapReduceState, name)
    g.add_node("split", _pick(split, d.split, "split", "map_reduce"))
    g.add_node("work", _pick(work, work_fn, "work", "map_reduce"))
    g.add_node("reduce", _pick(reduce, reduce_fn, "reduce", "map_reduce"))
    g.add_edge("__start__", "split")
    g.add_conditional_edges("split", d.fan_out, ["work"])
    g.add_edge("work", "reduce")
    g.add_edge("reduce", "__end__")
    return g


def supervisor(
    workers: Mapping[str, Callable[..., Any]] | None = None,
    *,
    model: Any = None,
    name: str = "supervisor",
) -> StateGraph:
    """A supervisor and its workers: ``supervisor`` picks a worker (or FINISH), the worker runs and
    reports back to the supervisor, until FINISH.

    Args:
        workers: ``{name: fn}``; each ``fn(state)`` returns ``{"notes": [{"by": name, "text": ...}]}``
            (a compiled graph works too). Default: a ``researcher`` and a ``writer``.
        model: a chat model that picks the next worker from the task and the notes (it answers
            with a worker's name or FINISH); default: each worker once, in order.
        name: the graph's name.

    Returns:
        The builder. Input: ``{"task": "..."}``; output adds ``notes`` and ``next``.
    """
    d = Template.defaults(TEMPLATES["supervisor"])
    choose: Callable[..., Any] = d.supervisor
    if workers is None:
        workers = {"researcher": d.researcher, "writer": d.writer}
    if not workers:
        raise ValueError("templates.supervisor: workers is empty; give at least one {name: function}")
    names = list(workers)
    for reserved in ("supervisor", "FINISH", "__start__", "__end__"):
        if reserved in workers:
            raise ValueError(f"templates.supervisor: {reserved!r} cannot be a worker's name")
    if model is None:
        if names != list(d.WORKERS):

            def choose(state: Any) -> dict[str, Any]:
                done = {n.get("by") for n in state.get("notes", [])}
                todo = [w for w in names if w not in done]
                return {"next": todo[0] if todo else "FINISH"}

    else:

        def choose(state: Any) -> dict[str, Any]:
            notes = "\n".join(f"{n.get('by')}: {n.get('text')}" for n in state.get("notes", [])) or "(none yet)"
            text = _ask(
                model,
                f"Task: {state['task']}\nNotes so far:\n{notes}\nWho should act next? Answer with one of "
                f"{', '.join(names)} or FINISH, and nothing else.",
                system="You are a supervisor managing workers.",
            ).strip()
            pick = next((w for w in [*names, "FINISH"] if re.search(rf"\b{re.escape(w)}\b", text)), None)
            if pick is None:
                from agentgraph_nb.errors import AgentGraphError

                raise AgentGraphError(
                    f"templates.supervisor: the model answered {text!r}, which names none of {[*names, 'FINISH']}"
                )
            return {"next": pick}

    g = _graph(d.SupervisorState, name)
    g.add_node("supervisor", choose)
    for w, fn in workers.items():
        g.add_node(w, fn)
        g.add_edge(w, "supervisor")
    g.add_edge("__start__", "supervisor")
    g.add_conditional_edges("supervisor", d.route, [*names, "__end__"])
    return g


def plan_and_execute(
    planner: Callable[..., Any] | None = None,
    executor: Callable[..., Any] | None = None,
    *,
    finisher: Callable[..., Any] | None = None,
    model: Any = None,
    name: str = "plan_and_execute",
) -> StateGraph:
    """Plan, then execute: ``plan`` writes a list of steps, ``execute`` runs them one per
    superstep (``replan`` decides after each), ``finish`` writes the answer.

    Args:
        planner: ``plan(state) -> {"plan": [step, ...]}``; with a model: one step per line of
            its answer.
        executor: ``execute(state) -> {"done": [{"step": s, "result": r}]}`` for the next step.
        finisher: ``finish(state) -> {"answer": ...}``.
        model: a chat model for the defaults.
        name: the graph's name.

    Returns:
        The builder. Input: ``{"objective": "..."}``.
    """
    d = Template.defaults(TEMPLATES["plan_and_execute"])
    plan_fn, exec_fn, finish_fn = d.plan, d.execute, d.finish
    if model is not None:

        def plan_fn(state: Any) -> dict[str, Any]:
            text = _ask(model, f"Write a short numbered plan, one step per line, for: {state['objective']}")
            steps = [re.sub(r"^\s*(\d+[.)]|[-*])\s*", "", ln).strip() for ln in text.splitlines()]
            return {"plan": [s for s in steps if s] or [state["objective"]]}

        def exec_fn(state: Any) -> dict[str, Any]:
            step = state["plan"][len(state["done"])]
            return {"done": [{"step": step, "result": _ask(model, f"Objective: {state['objective']}\nDo this step: {step}")}]}

        def finish_fn(state: Any) -> dict[str, Any]:
            work = "\n".join(f"- {x['step']}: {x['result']}" for x in state["done"])
            return {"answer": _ask(model, f"Objective: {state['objective']}\nWork done:\n{work}\nWrite the final answer.")}

    g = _graph(d.PlanState, name)
    g.add_node("plan", _pick(planner, plan_fn, "planner", "plan_and_execute"))
    g.add_node("execute", _pick(executor, exec_fn, "executor", "plan_and_execute"))
    g.add_node("finish", _pick(finisher, finish_fn, "finisher", "plan_and_execute"))
    g.add_edge("__start__", "plan")
    g.add_edge("plan", "execute")
    g.add_conditional_edges("execute", d.replan, ["execute", "finish"])
    g.add_edge("finish", "__end__")
    return g


def reflection(
    generate: Callable[..., Any] | None = None,
    reflect: Callable[..., Any] | None = None,
    *,
    model: Any = None,
    max_rounds: int | None = None,
    name: str = "reflection",
) -> StateGraph:
    """Generate and criticise: ``generate`` writes a draft, ``reflect`` criticises it ("OK"
    accepts), and the loop goes on until accepted or ``max_rounds`` drafts.

    Args:
        generate: ``generate(state) -> {"draft": ..., "rounds": n}``.
        reflect: ``reflect(state) -> {"critique": ...}``; ``"OK"`` ends the loop.
        model: a chat model for both defaults.
        max_rounds: the most drafts (default 3).
        name: the graph's name.

    Returns:
        The builder. Input: ``{"request": "..."}``.
    """
    d = Template.defaults(TEMPLATES["reflection"])
    gen_fn, ref_fn, cont_fn = d.generate, d.reflect, d.should_continue
    if model is not None:

        def gen_fn(state: Any) -> dict[str, Any]:
            extra = f"\nRevise this draft:\n{state['draft']}\nCritique: {state['critique']}" if state.get("critique") else ""
            return {"draft": _ask(model, f"{state['request']}{extra}"), "rounds": state.get("rounds", 0) + 1}

        def ref_fn(state: Any) -> dict[str, Any]:
            text = _ask(model, f"Criticise this answer to {state['request']!r}. Reply OK if it needs no change.\n{state['draft']}")
            return {"critique": "OK" if text.strip().rstrip(".").upper() == "OK" else text}

    if max_rounds is not None:
        if not isinstance(max_rounds, int) or max_rounds < 1:
            raise ValueError(f"templates.reflection: max_rounds must be an int >= 1; got {max_rounds!r}")
        limit = max_rounds

        def should_continue(state: Any) -> str:
            if state["critique"] == "OK" or state["rounds"] >= limit:
                return "__end__"
            return "generate"

        cont_fn = should_continue
    g = _graph(d.ReflectionState, name)
    g.add_node("generate", _pick(generate, gen_fn, "generate", "reflection"))
    g.add_node("reflect", _pick(reflect, ref_fn, "reflect", "reflection"))
    g.add_edge("__start__", "generate")
    g.add_edge("generate", "reflect")
    g.add_conditional_edges("reflect", cont_fn, ["generate", "__end__"])
    return g


def retrieval_qa(
    documents: Sequence[str] | None = None,
    *,
    retrieve: Callable[..., Any] | None = None,
    answer: Callable[..., Any] | None = None,
    model: Any = None,
    k: int = 2,
    name: str = "retrieval_qa",
) -> StateGraph:
    """Retrieval QA: ``retrieve`` finds the ``k`` documents closest to the question, ``answer``
    answers from them.

    Args:
        documents: the corpus for the default word-overlap retriever.
        retrieve: ``retrieve(state) -> {"context": [doc, ...]}`` (a vector store search).
        answer: ``answer(state) -> {"answer": ...}``; with a model: answers from the context.
        model: a chat model for the default ``answer``.
        k: how many documents the default retriever keeps.
        name: the graph's name.

    Returns:
        The builder. Input: ``{"question": "..."}``.
    """
    d = Template.defaults(TEMPLATES["retrieval_qa"])
    retrieve_fn, answer_fn = d.retrieve, d.answer
    if documents is not None or k != d.TOP_K:
        docs = list(documents) if documents is not None else list(d.DOCUMENTS)
        if not all(isinstance(x, str) for x in docs):
            raise TypeError("templates.retrieval_qa: documents must be strings")

        def retrieve_fn(state: Any) -> dict[str, Any]:
            q = d._words(state["question"])
            return {"context": sorted(docs, key=lambda doc: -len(q & d._words(doc)))[:k]}

    if model is not None:

        def answer_fn(state: Any) -> dict[str, Any]:
            ctx = "\n".join(f"- {c}" for c in state["context"])
            return {"answer": _ask(model, f"Answer from this context only.\nContext:\n{ctx}\nQuestion: {state['question']}")}

    g = _graph(d.QAState, name)
    g.add_node("retrieve", _pick(retrieve, retrieve_fn, "retrieve", "retrieval_qa"))
    g.add_node("answer", _pick(answer, answer_fn, "answer", "retrieval_qa"))
    g.add_edge("__start__", "retrieve")
    g.add_edge("retrieve", "answer")
    g.add_edge("answer", "__end__")
    return g


TEMPLATES: dict[str, Template] = {
    t.name: t
    for t in (
        Template("react", "a model calls tools until it can answer", react, "_react"),
        Template("map_reduce", "one task per item in parallel, then a reduce", map_reduce, "_map_reduce"),
        Template("supervisor", "a supervisor picks the next worker until FINISH", supervisor, "_supervisor"),
        Template("plan_and_execute", "plan the steps, run them one by one, answer", plan_and_execute, "_plan_and_execute"),
        Template("reflection", "draft, criticise, revise until accepted", reflection, "_reflection"),
        Template("retrieval_qa", "retrieve the closest documents, answer from them", retrieval_qa, "_retrieval_qa"),
    )
}


def _get(name: str) -> Template:
    try:
        return TEMPLATES[name]
    except KeyError:
        from agentgraph_nb.errors import did_you_mean

        raise UnknownTemplateError(
            f"no template {name!r}.{did_you_mean(name, TEMPLATES)} Templates: {', '.join(TEMPLATES)}"
        ) from None


def _state_name(t: Template) -> str:
    return next(
        k for k, v in vars(t.defaults()).items()
        if isinstance(v, type) and getattr(v, "__module__", "") == t.defaults().__name__ and k.endswith("State")
    )


def graph_cell(template: str, name: str) -> str:
    """The ``%%agentgraph`` cell that builds ``template``'s graph from its stub functions, bound
    to ``name``.

    Raises:
        UnknownTemplateError: no such template (the message lists them).
        ValueError: ``name`` is not a Python identifier.
    """
    if not name.isidentifier():
        raise ValueError(f"{name!r} is not a valid Python name to bind the graph to")
    from agentgraph_nb.export.dsl import to_dsl

    t = _get(template)
    app = t.build().compile(checkpointer=None)
    body = to_dsl(app.to_json())
    return f"%%agentgraph {name} --state {_state_name(t)}\n{body}"


def stub_cell(template: str, name: str) -> str:
    """The Python cell with ``template``'s state and plain-function defaults, to edit; its last
    line writes the ``%%agentgraph`` cell (see :func:`graph_cell`) into the next cell.

    Raises:
        UnknownTemplateError: no such template (the message lists them).
        ValueError: ``name`` is not a Python identifier.
    """
    if not name.isidentifier():
        raise ValueError(f"{name!r} is not a valid Python name to bind the graph to")
    t = _get(template)
    head = (
        f"# The {t.name!r} template: {t.summary}.\n"
        "# Edit the state and the functions, then run this cell: it writes the graph's cell below.\n"
    )
    return f"{head}{t.source().rstrip()}\n\n%agentgraph new {t.name} {name} --graph\n"
