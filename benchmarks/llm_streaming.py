"""Token streaming through the engine vs the bare ``openai`` SDK, against the same local
OpenAI-compatible server (agentgraph_nb.testing.ModelServer, real HTTP and SSE on loopback).

* time to first token: from the call to the first content token, bare
  ``client.chat.completions.create(stream=True)`` vs a one-node graph whose node calls
  ``OpenAIChat.invoke`` and is consumed with ``app.stream(..., mode="messages")``
  (target: at most +0.5 ms);
* token throughput: tokens per second over a long answer, same two paths (target: >= 90%).

Both paths run interleaved, each on its own warmed-up keep-alive connection; figures are medians.

Run: PYTHONPATH=. python benchmarks/llm_streaming.py [--runs 200] [--tokens 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from typing import Any

import openai

from agentgraph_nb import END, START, StateGraph
from agentgraph_nb.llm import OpenAIChat
from agentgraph_nb.testing import ModelServer

MESSAGES = [{"role": "user", "content": "stream please"}]


def bare_ttft(client: openai.OpenAI) -> float:
    t0 = time.perf_counter()
    stream = client.chat.completions.create(model="m", messages=MESSAGES, stream=True,  # type: ignore[arg-type]
                                            stream_options={"include_usage": True})
    first = 0.0
    for chunk in stream:
        if not first and chunk.choices and chunk.choices[0].delta.content:
            first = time.perf_counter() - t0
    return first


def engine_ttft(app: Any) -> float:
    t0 = time.perf_counter()
    first = 0.0
    for chunk, _meta in app.stream({"q": "stream please"}, mode="messages"):
        if not first and chunk["content"]:
            first = time.perf_counter() - t0
    return first


def bare_throughput(client: openai.OpenAI) -> tuple[int, float]:
    t0 = time.perf_counter()
    n = 0
    for chunk in client.chat.completions.create(model="m", messages=MESSAGES, stream=True,  # type: ignore[arg-type]
                                                stream_options={"include_usage": True}):
        if chunk.choices and chunk.choices[0].delta.content:
            n += 1
    return n, time.perf_counter() - t0


def raw_throughput(client: openai.OpenAI) -> tuple[int, float]:
    """The SDK's HTTP with our parsing (SSE lines + json.loads, no response objects): the floor
    the engine's own path stands on."""
    t0 = time.perf_counter()
    n = 0
    with client.chat.completions.with_streaming_response.create(
            model="m", messages=MESSAGES, stream=True, stream_options={"include_usage": True}) as resp:  # type: ignore[arg-type]
        for line in resp.iter_lines():
            if line.startswith("data:") and line[5:].strip() != "[DONE]":
                chunk = json.loads(line[5:])
                if chunk["choices"] and chunk["choices"][0]["delta"].get("content"):
                    n += 1
    return n, time.perf_counter() - t0


def engine_throughput(app: Any) -> tuple[int, float]:
    t0 = time.perf_counter()
    n = 0
    for chunk, _meta in app.stream({"q": "stream please"}, mode="messages"):
        if chunk["content"]:
            n += 1
    return n, time.perf_counter() - t0


async def abare_ttft(client: openai.AsyncOpenAI) -> float:
    t0 = time.perf_counter()
    first = 0.0
    async for chunk in await client.chat.completions.create(model="m", messages=MESSAGES,  # type: ignore[arg-type]
                                                            stream=True, stream_options={"include_usage": True}):
        if not first and chunk.choices and chunk.choices[0].delta.content:
            first = time.perf_counter() - t0
    return first


async def aengine_ttft(app: Any) -> float:
    t0 = time.perf_counter()
    first = 0.0
    async for chunk, _meta in app.astream({"q": "stream please"}, mode="messages"):
        if not first and chunk["content"]:
            first = time.perf_counter() - t0
    return first


def _ttft_line(kind: str, call: str, bare: list[float], eng: list[float]) -> str:
    parts = []
    for label, pick in (("median", statistics.median), ("best", min)):
        b, e = pick(bare) * 1e3, pick(eng) * 1e3
        parts.append(f"{label}: bare SDK {b:.3f} ms, engine {e:.3f} ms, overhead {e - b:+.3f} ms")
    return (f"time to first token ({kind}, {len(bare)} runs, {call}(mode='messages')): " + "; ".join(parts)
            + " (target <= +0.5 ms)")


def graphs(model: OpenAIChat) -> tuple[Any, Any]:
    def agent(state: dict[str, Any]) -> dict[str, Any]:
        return {"a": model.invoke(state["q"])["content"]}

    async def aagent(state: dict[str, Any]) -> dict[str, Any]:
        return {"a": (await model.ainvoke(state["q"]))["content"]}

    out = []
    for fn in (agent, aagent):
        g = StateGraph(dict, name="bench")
        g.add_node("agent", fn).add_edge(START, "agent").add_edge("agent", END)
        out.append(g.compile())
    return out[0], out[1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--tokens", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=15)
    args = ap.parse_args()

    short = "hi there friend"
    long_text = " ".join(f"w{i}" for i in range(args.tokens))
    with ModelServer(responder=lambda body: None) as server:
        server.responder = lambda body: {"content": short}
        client = openai.OpenAI(base_url=server.base_url, api_key="x", max_retries=0)
        model = OpenAIChat("m", base_url=server.base_url, api_key="x")
        app, aapp = graphs(model)
        for _ in range(20):  # warm up both connections and code paths
            bare_ttft(client)
            engine_ttft(app)
        bare, eng = [], []
        for _ in range(args.runs):
            bare.append(bare_ttft(client))
            eng.append(engine_ttft(app))
        print(_ttft_line("sync", "stream", bare, eng))

        async def amain() -> tuple[float, float]:
            aclient = openai.AsyncOpenAI(base_url=server.base_url, api_key="x", max_retries=0)
            for _ in range(20):
                await abare_ttft(aclient)
                await aengine_ttft(aapp)
            ab, ae = [], []
            for _ in range(args.runs):
                ab.append(await abare_ttft(aclient))
                ae.append(await aengine_ttft(aapp))
            await aclient.close()
            return ab, ae

        ab, ae = asyncio.run(amain())
        print(_ttft_line("async", "astream", ab, ae))

        server.responder = lambda body: {"content": long_text}
        bare_tps, raw_tps, eng_tps = [], [], []
        for _ in range(args.rounds):
            n, dt = bare_throughput(client)
            bare_tps.append(n / dt)
            n1, dt1 = raw_throughput(client)
            raw_tps.append(n1 / dt1)
            n2, dt2 = engine_throughput(app)
            assert n2 == n1 == n == args.tokens, (n, n1, n2)
            eng_tps.append(n2 / dt2)
        for label, pick in (("median", statistics.median), ("best", max)):
            bt, rt, et = pick(bare_tps), pick(raw_tps), pick(eng_tps)
            print(f"token throughput ({args.tokens} tokens, {label} of {args.rounds}): bare SDK {bt:,.0f} tok/s, "
                  f"engine {et:,.0f} tok/s, ratio {et / bt:.1%} (target >= 90%); floor (the SDK's HTTP, "
                  f"SSE lines + json.loads, no objects) {rt:,.0f} tok/s, engine / floor {et / rt:.1%}")


if __name__ == "__main__":
    main()
