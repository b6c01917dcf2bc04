"""agentgraph_nb.testing: the fake chat model and helpers the notebooks and examples use."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from typing import Any

import pytest

from agentgraph_nb import START, RetryPolicy, StateGraph
from agentgraph_nb.testing import FakeChatModel, fake_search, flaky, normalize_messages


def test_same_prompt_and_seed_give_the_same_text_across_instances() -> None:
    prompts = ["Research: tidal power", "Write a draft on: tidal power", "Critique this draft: x", "hello"]
    a = [FakeChatModel(seed=3).invoke(p) for p in prompts]
    b = [FakeChatModel(seed=3).invoke(p) for p in prompts]
    assert a == b
    assert a != [FakeChatModel(seed=4).invoke(p) for p in prompts]


def test_generated_text_follows_the_role_and_topic() -> None:
    llm = FakeChatModel()
    research = llm.invoke("Research: tidal power")
    assert research.startswith("Findings on tidal power:\n1. ") and research.count("\n") == 3
    draft = llm.invoke("Write a short article on: tidal power, using the research below")
    assert "tidal power" in draft.lower() and "research below" not in draft
    verdict = llm.invoke("Critique this draft: Tidal power is great. Research says so.")
    assert verdict.split(" ", 1)[0] in ("APPROVE", "REVISE") and "/10" in verdict
    assert llm.invoke("Plan: a talk on tides").startswith("Plan:\n1. ")
    assert llm.invoke("Summarize: tides").startswith("Summary: ")
    assert llm.invoke("Why is the sky blue?").startswith("About the sky blue: ")
    assert llm.calls == 6 and llm.prompts[0] == [("user", "Research: tidal power")]


def test_the_first_role_keyword_wins() -> None:
    llm = FakeChatModel()
    assert llm.invoke("Write an article from this research: tides").startswith(("Most", "Here", "Tides"))
    assert llm.invoke("Review the plan: tides").split(" ", 1)[0] in ("APPROVE", "REVISE")


def test_the_whole_conversation_counts() -> None:
    llm = FakeChatModel()
    one = llm.generate([("system", "You are terse."), ("user", "Research: tides")])
    two = llm.generate([("system", "You are verbose."), ("user", "Research: tides")])
    assert one.startswith("Findings on tides") and two.startswith("Findings on tides")
    assert llm.calls == 0  # generate() is not a call


def test_scripted_list_cycles_in_order() -> None:
    llm = FakeChatModel(["a", "b"])
    assert [llm.invoke("x") for _ in range(5)] == ["a", "b", "a", "b", "a"]
    llm.reset()
    assert llm.invoke("x") == "a" and llm.calls == 1
    assert FakeChatModel("only").invoke("x") == "only"


def test_scripted_by_keyword_cycles_per_keyword_with_fallbacks() -> None:
    llm = FakeChatModel({"critique": ["REVISE: more", "APPROVE: done"], "research": "notes", "*": "other"})
    assert llm.invoke("CRITIQUE this") == "REVISE: more"
    assert llm.invoke("research it") == "notes"
    assert llm.invoke("critique again") == "APPROVE: done"
    assert llm.invoke("critique once more") == "REVISE: more"
    assert llm.invoke("something else") == "other"
    gen = FakeChatModel({"critique": "ok"})
    assert gen.invoke("Research: tides").startswith("Findings on tides")  # falls back to the generator


def test_callable_responses_get_normalized_messages() -> None:
    seen: list[Any] = []

    def answer(msgs: list[tuple[str, str]]) -> str:
        seen.append(msgs)
        return f"{len(msgs)} messages"

    llm = FakeChatModel(answer)
    assert llm.invoke([{"role": "system", "content": "s"}, ("user", "u")]) == "2 messages"
    assert seen == [[("system", "s"), ("user", "u")]]


def test_normalize_messages_accepts_common_shapes_and_rejects_others() -> None:
    class Msg:
        type = "ai"
        content = "hi"

    assert normalize_messages("q") == [("user", "q")]
    assert normalize_messages({"role": "system", "content": "s"}) == [("system", "s")]
    assert normalize_messages(["a", ("assistant", "b"), Msg()]) == [("user", "a"), ("assistant", "b"), ("ai", "hi")]
    with pytest.raises(TypeError, match="cannot read message"):
        normalize_messages([42])


def test_fail_every_raises_connection_error_on_every_nth_call() -> None:
    llm = FakeChatModel(["ok"], fail_every=3)
    outcomes = []
    for _ in range(7):
        try:
            outcomes.append(llm.invoke("x"))
        except ConnectionError as exc:
            outcomes.append(f"failed: {exc}")
    assert outcomes[2] == "failed: fake-chat: simulated connection failure on call 3"
    assert outcomes[5].startswith("failed:") and outcomes.count("ok") == 5
    assert llm.calls == 7


def test_fail_first_then_recovers() -> None:
    llm = FakeChatModel(["ok"], fail_first=2)
    for _ in range(2):
        with pytest.raises(ConnectionError):
            llm.invoke("x")
    assert llm.invoke("x") == "ok"


def test_failures_do_not_consume_scripted_answers() -> None:
    llm = FakeChatModel(["a", "b"], fail_first=1)
    with pytest.raises(ConnectionError):
        llm.invoke("x")
    assert [llm.invoke("x"), llm.invoke("x")] == ["a", "b"]


def test_a_retry_policy_recovers_from_injected_failures() -> None:
    llm = FakeChatModel(["done"], fail_every=2)
    g = StateGraph(dict, name="retry")
    g.add_node("ask", lambda s: {"answer": llm.invoke("x")},
               retry=RetryPolicy(max_attempts=3, initial_interval=0.0, jitter=False))
    g.add_edge(START, "ask")
    app = g.compile()
    assert [app.invoke({})["answer"] for _ in range(3)] == ["done"] * 3
    assert app.metrics.node("ask").retries == 2 and llm.calls == 5  # calls 2 and 4 failed


def test_latency_sync_and_async() -> None:
    llm = FakeChatModel(["ok"], latency=0.2)
    t0 = time.perf_counter()
    assert llm.invoke("x") == "ok"
    assert time.perf_counter() - t0 >= 0.19

    async def three() -> list[str]:
        return list(await asyncio.gather(*(llm.ainvoke("x") for _ in range(3))))

    t0 = time.perf_counter()
    assert asyncio.run(three()) == ["ok"] * 3
    assert time.perf_counter() - t0 < 0.5  # concurrent: not 3 x 0.2 s in a row


def test_ainvoke_fails_like_invoke() -> None:
    llm = FakeChatModel(["ok"], fail_first=1)
    with pytest.raises(ConnectionError):
        asyncio.run(llm.ainvoke("x"))
    assert asyncio.run(llm.ainvoke("x")) == "ok"


def test_bad_arguments_are_rejected_with_the_reason() -> None:
    with pytest.raises(ValueError, match="fail_every"):
        FakeChatModel(fail_every=0)
    with pytest.raises(ValueError, match="fail_first"):
        FakeChatModel(fail_first=-1)
    with pytest.raises(ValueError, match="latency"):
        FakeChatModel(latency=-1)
    with pytest.raises(ValueError, match="empty"):
        FakeChatModel([])


def test_repr_is_deterministic() -> None:
    llm = FakeChatModel(seed=2, latency=0.5, fail_every=4, name="writer")
    assert repr(llm) == "FakeChatModel('writer', seed=2, latency=0.5, fail_every=4, calls=0)"


def test_parallel_calls_are_counted_exactly() -> None:
    import concurrent.futures

    llm = FakeChatModel(["ok"], fail_every=10)
    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        results = list(ex.map(lambda _: _try(llm), range(100)))
    assert llm.calls == 100 and results.count("failed") == 10


def _try(llm: FakeChatModel) -> str:
    try:
        return llm.invoke("x")
    except ConnectionError:
        return "failed"


def test_fake_search_is_stable_and_sized() -> None:
    assert fake_search("tidal power") == fake_search("tidal power")
    assert fake_search("tidal power") != fake_search("tidal power", seed=1)
    assert len(fake_search("q", k=10)) == 10 and len(set(fake_search("q", k=10))) == 10
    assert all(u.startswith("https://example.org/tidal-power/") for u in fake_search("Tidal Power"))


def test_flaky_wraps_sync_and_async_nodes_keeping_their_name() -> None:
    def search(state: dict) -> dict:
        return {"hits": 1}

    f = flaky(search, fail_first=1)
    assert f.__name__ == "search"
    with pytest.raises(ConnectionError, match="search: simulated failure on call 1"):
        f({})
    assert f({}) == {"hits": 1} and f.calls == 2
    f.reset()
    with pytest.raises(ConnectionError):
        f({})

    async def fetch(state: dict) -> dict:
        return {"hits": 2}

    af = flaky(fetch, fail_every=2, exc=TimeoutError)
    assert asyncio.run(af({})) == {"hits": 2}
    with pytest.raises(TimeoutError):
        asyncio.run(af({}))


def test_flaky_node_fails_then_the_thread_resumes() -> None:
    g = StateGraph(dict, name="resume")
    g.add_node("work", flaky(lambda s: {"done": True}, fail_first=1))
    g.add_edge(START, "work")
    app = g.compile()
    with pytest.raises(ConnectionError, match="simulated failure on call 1"):
        app.invoke({"x": 1}, thread_id="t")
    assert app.get_state("t").next == ("work",)
    assert app.invoke(None, thread_id="t") == {"x": 1, "done": True}


def test_import_is_light() -> None:
    code = (
        "import sys; import agentgraph_nb.testing; "
        "print(sorted(m for m in ('asyncio', 'pandas', 'IPython', 'ipywidgets', 'numpy', 'concurrent.futures') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
