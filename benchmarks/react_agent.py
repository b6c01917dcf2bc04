"""A 3-turn ReAct run: framework overhead of agentgraph_nb's ``create_react_agent`` + ``OpenAIChat``
vs LangGraph's ``create_react_agent`` + ``langchain-openai``'s ``ChatOpenAI``, over the bare
``openai`` SDK loop (the floor), all against the same local OpenAI-compatible server
(agentgraph_nb.testing.ModelServer: real HTTP on loopback).

The run: the model calls the ``lookup`` tool, the tool answers, three times, then the model answers
in text (4 model calls, 3 tool calls). Every path makes the same requests (non-streaming, tools
offered, the conversation so far) and runs the same tool.

* **HTTP**: per round, the three paths run back to back in a rotating order; the overhead of a
  framework is its time minus the bare loop's time *in the same round* (paired), and the figure is
  the median over the rounds. Target: ours at least 10x less overhead than LangGraph's.
  Ours reads responses as plain JSON where the bare SDK builds typed objects, so our runs can come
  out at or below the floor: our paired overhead is then within the noise of a shared machine, and
  the fake-model figure below is the one that measures the framework.
* **fake model** (no HTTP): the same run with an in-process model that decides from the messages
  (one class per framework, doing the same work), which isolates the frameworks' own cost; the
  floor is the same loop in plain Python.

Neither graph has a checkpointer (LangGraph's default); ``--checkpointer`` gives both an
in-memory one (ours ``"memory"``, LangGraph's ``InMemorySaver``) and a thread id.

Run: PYTHONPATH=. python benchmarks/react_agent.py [--rounds 200] [--checkpointer]
Needs the ``llm`` extra, ``langgraph`` and ``langchain-openai`` (the ``bench`` extra).
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import time
import warnings
from collections.abc import Callable
from typing import Any

import openai

from agentgraph_nb.llm import OpenAIChat
from agentgraph_nb.prebuilt import create_react_agent
from agentgraph_nb.testing import ModelServer
from agentgraph_nb.tools import tool

TURNS = 3
QUESTION = "Look it up three times, then answer."


def lookup_impl(n: int) -> str:
    return f"fact {n}"


# -- the model's script (the same decision in the server and in both fake models) -------------------
def decide(n_tool_results: int) -> tuple[str, int] | str:
    """``("lookup", n)`` for the next tool call, or the final text."""
    if n_tool_results < TURNS:
        return "lookup", n_tool_results + 1
    return "Done: " + ", ".join(f"fact {i}" for i in range(1, TURNS + 1)) + "."


def responder(body: dict[str, Any]) -> dict[str, Any]:
    n = sum(1 for m in body["messages"] if m["role"] == "tool")
    d = decide(n)
    if isinstance(d, str):
        return {"content": d}
    return {"tool_calls": [{"name": d[0], "arguments": {"n": d[1]}, "id": f"call_{d[1]}"}]}


LOOKUP_SCHEMA = {
    "type": "function",
    "function": {
        "name": "lookup",
        "description": "Look a fact up.",
        "parameters": {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]},
    },
}


# -- the floor: the bare SDK loop -----------------------------------------------------------------
def bare_run(client: openai.OpenAI) -> str:
    messages: list[dict[str, Any]] = [{"role": "user", "content": QUESTION}]
    while True:
        r = client.chat.completions.create(model="m", messages=messages, tools=[LOOKUP_SCHEMA])  # type: ignore[arg-type,list-item]
        msg = r.choices[0].message
        if not msg.tool_calls:
            return msg.content or ""
        messages.append({"role": "assistant", "content": msg.content,
                         "tool_calls": [tc.model_dump() for tc in msg.tool_calls]})
        for tc in msg.tool_calls:
            args = json.loads(tc.function.arguments)  # type: ignore[union-attr]
            messages.append({"role": "tool", "tool_call_id": tc.id, "content": lookup_impl(**args)})


# -- agentgraph_nb --------------------------------------------------------------------------------
@tool
def lookup(n: int) -> str:
    """Look a fact up."""
    return lookup_impl(n)


class OurFake:
    """An in-process chat model for agentgraph_nb: OpenAI-format dicts in and out."""

    def bind_tools(self, tools: Any, **kw: Any) -> OurFake:
        return self

    def invoke(self, messages: list[dict[str, Any]], **kw: Any) -> dict[str, Any]:
        d = decide(sum(1 for m in messages if m["role"] == "tool"))
        if isinstance(d, str):
            return {"role": "assistant", "content": d}
        return {"role": "assistant", "content": None, "tool_calls": [
            {"id": f"call_{d[1]}", "type": "function",
             "function": {"name": d[0], "arguments": json.dumps({"n": d[1]})}}]}


def fake_floor() -> str:
    model = OurFake()
    messages: list[dict[str, Any]] = [{"role": "user", "content": QUESTION}]
    while True:
        msg = model.invoke(messages)
        messages.append(msg)
        if not msg.get("tool_calls"):
            return msg["content"]
        for tc in msg["tool_calls"]:
            messages.append({"role": "tool", "tool_call_id": tc["id"],
                             "content": lookup_impl(**json.loads(tc["function"]["arguments"]))})


# -- LangGraph ------------------------------------------------------------------------------------
def langgraph_parts(base_url: str, checkpointer: bool) -> tuple[Any, Any]:
    """LangGraph's agent on ChatOpenAI, and on a fake model doing what OurFake does."""
    from langchain_core.language_models.chat_models import BaseChatModel
    from langchain_core.messages import AIMessage
    from langchain_core.outputs import ChatGeneration, ChatResult
    from langchain_core.tools import tool as lc_tool
    from langchain_openai import ChatOpenAI

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from langgraph.prebuilt import create_react_agent as lg_create_react_agent

    @lc_tool
    def lookup(n: int) -> str:
        """Look a fact up."""
        return lookup_impl(n)

    class LGFake(BaseChatModel):
        @property
        def _llm_type(self) -> str:
            return "fake"

        def bind_tools(self, tools: Any, **kw: Any) -> Any:
            return self

        def _generate(self, messages: list[Any], stop: Any = None, run_manager: Any = None,
                      **kw: Any) -> ChatResult:
            d = decide(sum(1 for m in messages if m.type == "tool"))
            if isinstance(d, str):
                msg = AIMessage(content=d)
            else:
                msg = AIMessage(content="", tool_calls=[{"name": d[0], "args": {"n": d[1]}, "id": f"call_{d[1]}"}])
            return ChatResult(generations=[ChatGeneration(message=msg)])

    def saver() -> Any:
        if not checkpointer:
            return None
        from langgraph.checkpoint.memory import InMemorySaver

        return InMemorySaver()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        http = lg_create_react_agent(ChatOpenAI(model="m", base_url=base_url, api_key="x", max_retries=0),  # type: ignore[arg-type]
                                     [lookup], checkpointer=saver())
        fake = lg_create_react_agent(LGFake(), [lookup], checkpointer=saver())
    return http, fake


# -- timing ---------------------------------------------------------------------------------------
def timed(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def paired(paths: dict[str, Callable[[], Any]], rounds: int) -> dict[str, list[float]]:
    """Each round runs every path once, in a rotating order; returns the times per path."""
    names = list(paths)
    out: dict[str, list[float]] = {n: [] for n in names}
    gc_was = gc.isenabled()
    gc.disable()
    try:
        for r in range(rounds):
            k = r % len(names)
            for n in names[k:] + names[:k]:
                out[n].append(timed(paths[n]))
            if r % 20 == 19:
                gc.collect()
    finally:
        if gc_was:
            gc.enable()
    return out


def report(title: str, times: dict[str, list[float]], floor: str, ours: str, lg: str) -> None:
    med = {n: statistics.median(v) * 1e3 for n, v in times.items()}
    over = {n: statistics.median([t - f for t, f in zip(times[n], times[floor], strict=True)]) * 1e3
            for n in (ours, lg)}
    print(f"{title}: {len(times[floor])} rounds, medians")
    print(f"  bare loop (floor) {med[floor]:8.3f} ms per run")
    for n in (ours, lg):
        print(f"  {n:<17} {med[n]:8.3f} ms per run, framework overhead {over[n]:7.3f} ms")
    ratio = over[lg] / over[ours] if over[ours] > 0 else float("inf")
    print(f"  LangGraph's overhead / ours: {ratio:.1f}x (target >= 10x)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=200)
    ap.add_argument("--fake-rounds", type=int, default=2000)
    ap.add_argument("--checkpointer", action="store_true", help="an in-memory checkpointer for both graphs")
    args = ap.parse_args()
    ours_cp: Any = "memory" if args.checkpointer else None

    def cfg(i: int) -> dict[str, Any]:
        return {"configurable": {"thread_id": f"t{i}"}} if args.checkpointer else {}

    counter = iter(range(10**9))
    with ModelServer(responder=responder) as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="x", max_retries=0)
        ours = create_react_agent(OpenAIChat("m", base_url=server.base_url, api_key="x"), [lookup],
                                  checkpointer=ours_cp)
        lg_http, lg_fake = langgraph_parts(server.base_url, args.checkpointer)

        def run_ours() -> str:
            kw = {"thread_id": f"t{next(counter)}"} if args.checkpointer else {}
            return ours.invoke({"messages": QUESTION}, **kw)["messages"][-1]["content"]  # type: ignore[no-any-return]

        def run_lg() -> str:
            return lg_http.invoke({"messages": [("user", QUESTION)]}, cfg(next(counter)))["messages"][-1].content  # type: ignore[no-any-return]

        want = decide(TURNS)
        assert bare_run(client) == run_ours() == run_lg() == want, (bare_run(client), run_ours(), run_lg())
        n0 = len(server.requests)
        run_ours()
        assert len(server.requests) - n0 == TURNS + 1  # 4 model calls per run
        paths = {"bare openai SDK": lambda: bare_run(client), "agentgraph_nb": run_ours, "LangGraph": run_lg}
        paired(paths, 20)  # warm up connections and code paths
        times = paired(paths, args.rounds)
        cp = " (in-memory checkpointer)" if args.checkpointer else ""
        report(f"3-turn ReAct over HTTP{cp} (4 model calls, 3 tool calls, local ModelServer)", times,
               "bare openai SDK", "agentgraph_nb", "LangGraph")

    ours_fake = create_react_agent(OurFake(), [lookup], checkpointer=ours_cp)

    def run_ours_fake() -> str:
        kw = {"thread_id": f"f{next(counter)}"} if args.checkpointer else {}
        return ours_fake.invoke({"messages": QUESTION}, **kw)["messages"][-1]["content"]  # type: ignore[no-any-return]

    def run_lg_fake() -> str:
        return lg_fake.invoke({"messages": [("user", QUESTION)]}, cfg(next(counter)))["messages"][-1].content  # type: ignore[no-any-return]

    assert fake_floor() == run_ours_fake() == run_lg_fake() == want
    fpaths = {"plain Python loop": fake_floor, "agentgraph_nb": run_ours_fake, "LangGraph": run_lg_fake}
    paired(fpaths, 50)
    ftimes = paired(fpaths, args.fake_rounds)
    report(f"3-turn ReAct with an in-process fake model{cp} (no HTTP)", ftimes, "plain Python loop",
           "agentgraph_nb", "LangGraph")


if __name__ == "__main__":
    main()
