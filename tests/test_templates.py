"""Graph templates (agentgraph_nb.templates) and ``%agentgraph new``: each template runs with its
plain-function defaults, with the user's functions, and with a chat model (the real openai SDK
against the local model server); the cells ``%agentgraph new`` writes build the same graph, in an
IPython shell and in a real kernel."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from typing import Any

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

from agentgraph_nb import CompiledGraph, templates
from agentgraph_nb.testing import ScriptedChatModel

INPUTS: dict[str, dict[str, Any]] = {
    "react": {"messages": [{"role": "user", "content": "what is (2 + 3) * 4?"}]},
    "map_reduce": {"items": ["one two", "", "three four five"]},
    "supervisor": {"task": "otters"},
    "plan_and_execute": {"objective": "otters"},
    "reflection": {"request": "a haiku"},
    "retrieval_qa": {"question": "how does a run resume?"},
}


def _plain(out: dict[str, Any]) -> dict[str, Any]:
    """A run's output without the message ids add_messages assigns (random per run)."""
    if "messages" in out:
        out = {**out, "messages": [{k: v for k, v in m.items() if k != "id"} for m in out["messages"]]}
    return out


def test_every_template_is_listed_with_its_builder() -> None:
    assert list(templates.TEMPLATES) == list(INPUTS)
    for name, t in templates.TEMPLATES.items():
        assert t.name == name and t.summary and getattr(templates, name) is t.build


@pytest.mark.parametrize("name", list(INPUTS))
def test_defaults_run_without_a_model(name: str) -> None:
    app = templates.TEMPLATES[name].build().compile(checkpointer=None)
    out = app.invoke(INPUTS[name])
    expected = {
        "react": lambda o: o["messages"][-1]["content"] == "The answer is 20.",
        "map_reduce": lambda o: o["summary"] == "2 items, 5 words" and [r["item"] for r in o["results"]] == ["one two", "three four five"],
        "supervisor": lambda o: [n["by"] for n in o["notes"]] == ["researcher", "writer"] and o["next"] == "FINISH",
        "plan_and_execute": lambda o: len(o["done"]) == len(o["plan"]) == 3 and o["answer"].count("did:") == 3,
        "reflection": lambda o: o["rounds"] == 2 and o["critique"] == "OK",
        "retrieval_qa": lambda o: "resume" in o["answer"] and len(o["context"]) == 2,
    }[name]
    assert expected(out), out


def test_map_reduce_runs_one_task_per_item_in_one_step() -> None:
    app = templates.map_reduce(work=lambda s: {"results": [s["item"].upper()]}, reduce=lambda s: {"summary": "|".join(s["results"])}).compile()
    out = app.invoke({"items": ["a", "b", "c"]}, thread_id="t")
    assert out["summary"] == "A|B|C"
    nexts = [snap.next for snap in app.get_state_history("t")]
    assert ("work", "work", "work") in nexts  # the three work tasks ran in one superstep
    assert all("work" not in n for n in nexts if n != ("work", "work", "work"))


def test_supervisor_with_custom_workers_and_a_model() -> None:
    def coder(s: dict[str, Any]) -> dict[str, Any]:
        return {"notes": [{"by": "coder", "text": "code"}]}

    def tester(s: dict[str, Any]) -> dict[str, Any]:
        return {"notes": [{"by": "tester", "text": "tests pass"}]}

    plain = templates.supervisor({"coder": coder, "tester": tester}).compile(checkpointer=None)
    assert [n["by"] for n in plain.invoke({"task": "x"})["notes"]] == ["coder", "tester"]

    model = ScriptedChatModel(["tester", "Next: coder.", "FINISH"])
    app = templates.supervisor({"coder": coder, "tester": tester}, model=model).compile(checkpointer=None)
    assert [n["by"] for n in app.invoke({"task": "x"})["notes"]] == ["tester", "coder"]
    assert "coder, tester or FINISH" in model.calls[0][-1]["content"]

    confused = templates.supervisor({"coder": coder}, model=ScriptedChatModel(["the moon"])).compile(checkpointer=None)
    with pytest.raises(Exception, match="the moon.*names none of"):
        confused.invoke({"task": "x"})


def test_bad_arguments_are_named() -> None:
    with pytest.raises(ValueError, match="'supervisor' cannot be a worker"):
        templates.supervisor({"supervisor": lambda s: {}})
    with pytest.raises(ValueError, match="workers is empty"):
        templates.supervisor({})
    with pytest.raises(TypeError, match="templates.reflection: generate must be a function"):
        templates.reflection(generate="draft")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_rounds must be an int >= 1"):
        templates.reflection(max_rounds=0)
    with pytest.raises(TypeError, match="has no bind_tools"):
        templates.react(model=object())
    with pytest.raises(templates.UnknownTemplateError, match="no template 'reactt'.*react"):
        templates.stub_cell("reactt", "x")


def test_reflection_stops_at_max_rounds() -> None:
    never = templates.reflection(reflect=lambda s: {"critique": "worse"}, max_rounds=4).compile(checkpointer=None)
    assert never.invoke({"request": "r"})["rounds"] == 4


def test_retrieval_qa_on_given_documents() -> None:
    docs = ["Otters hold hands while sleeping.", "Rust has no garbage collector.", "Otters eat sea urchins."]
    out = templates.retrieval_qa(docs, k=1).compile(checkpointer=None).invoke({"question": "What do otters eat?"})
    assert out["context"] == ["Otters eat sea urchins."]


def test_templates_with_a_real_model_server() -> None:
    """The model-backed defaults through OpenAIChat and the real openai SDK."""
    pytest.importorskip("openai")
    from agentgraph_nb.llm import OpenAIChat
    from agentgraph_nb.testing import ModelServer

    with ModelServer() as server:
        server.script(
            {"tool_calls": [{"name": "calculator", "arguments": {"expression": "6 * 7"}}]},
            "It is 42.",
            "1. look\n2. write",
            "looked",
            "written",
            "Done: looked, written.",
        )
        model = OpenAIChat(model="m", base_url=server.base_url, api_key="k")
        react = templates.react(model, prompt="Be brief.").compile(checkpointer=None)
        out = react.invoke({"messages": [{"role": "user", "content": "6 times 7?"}]})
        assert [m["role"] for m in out["messages"]] == ["user", "assistant", "tool", "assistant"]
        assert out["messages"][2]["content"] == "42" and out["messages"][-1]["content"] == "It is 42."
        assert server.requests[0]["messages"][0] == {"role": "system", "content": "Be brief."}
        assert server.requests[0]["tools"][0]["function"]["name"] == "calculator"

        pe = templates.plan_and_execute(model=model).compile(checkpointer=None).invoke({"objective": "o"})
        assert pe["plan"] == ["look", "write"] and pe["answer"] == "Done: looked, written."


# -- %agentgraph new ---------------------------------------------------------------------------


@pytest.fixture
def ip() -> Iterator[InteractiveShell]:
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "agentgraph_nb")
    shell.user_ns.clear()
    shell.init_user_ns()
    shell.run_line_magic("config", "AgentGraphMagics.record = False")
    shell.run_line_magic("config", "AgentGraphMagics.display = False")
    shell.run_line_magic("config", 'AgentGraphMagics.checkpointer = "memory"')
    shell.rl_next_input = None
    yield shell
    shell.rl_next_input = None


def _run(ip: InteractiveShell, code: str) -> Any:
    res = ip.run_cell(textwrap.dedent(code), store_history=False)
    res.raise_error()
    return res.result


@pytest.mark.parametrize("name", list(INPUTS))
def test_new_writes_stub_then_graph_cell_that_build_the_template(ip: InteractiveShell, name: str, capsys: Any) -> None:
    _run(ip, f"%agentgraph new {name} my_graph")
    stub = ip.rl_next_input
    assert stub == templates.stub_cell(name, "my_graph") and "def " in stub
    assert "edit them, then run it" in capsys.readouterr().out
    ip.rl_next_input = None

    _run(ip, stub)  # the user runs the stub cell: its last line writes the graph cell
    cell = ip.rl_next_input
    assert cell.startswith("%%agentgraph my_graph --state ") and cell == templates.graph_cell(name, "my_graph")
    ip.rl_next_input = None
    _run(ip, stub)  # running the stub cell again does not write a second graph cell
    assert ip.rl_next_input is None

    _run(ip, cell)
    app = ip.user_ns["my_graph"]
    assert isinstance(app, CompiledGraph)
    reference = templates.TEMPLATES[name].build().compile(checkpointer=None)
    assert app.to_dsl() == reference.to_dsl()
    assert _plain(app.invoke(INPUTS[name])) == _plain(reference.invoke(INPUTS[name]))


def test_edited_stub_changes_the_graph(ip: InteractiveShell) -> None:
    _run(ip, "%agentgraph new reflection essay")
    stub = ip.rl_next_input.replace("MAX_ROUNDS = 3", "MAX_ROUNDS = 1")
    _run(ip, stub)
    _run(ip, ip.rl_next_input)
    assert ip.user_ns["essay"].invoke({"request": "r"})["rounds"] == 1


def test_new_lists_templates_and_names_mistakes(ip: InteractiveShell) -> None:
    pytest.importorskip("pandas")
    table = _run(ip, "%agentgraph new")
    assert list(table.index) == list(INPUTS) and "what it builds" in table.columns
    with pytest.raises(UsageError, match="no template 'reflect'.*reflection"):
        _run(ip, "%agentgraph new reflect x")
    with pytest.raises(UsageError, match="not a valid Python name"):
        _run(ip, "%agentgraph new react my-graph")
    with pytest.raises(UsageError, match="usage: %agentgraph new TEMPLATE NAME"):
        _run(ip, "%agentgraph new react")


@pytest.mark.timeout(120)
def test_new_in_a_real_kernel_puts_the_cell_below() -> None:
    """In a real kernel the cell arrives as the set_next_input payload JupyterLab turns into a new cell."""
    from jupyter_client.manager import start_new_kernel

    km, kc = start_new_kernel(kernel_name="python3")
    try:
        kc.execute_interactive("%load_ext agentgraph_nb", timeout=60)
        reply = kc.execute_interactive("%agentgraph new retrieval_qa qa", timeout=60)
        payloads = [p for p in reply["content"]["payload"] if p["source"] == "set_next_input"]
        assert [p["text"] for p in payloads] == [templates.stub_cell("retrieval_qa", "qa")]
        assert payloads[0]["replace"] is False
        reply = kc.execute_interactive(payloads[0]["text"], timeout=60)
        assert reply["content"]["status"] == "ok"
        graph = [p["text"] for p in reply["content"]["payload"] if p["source"] == "set_next_input"]
        assert graph == [templates.graph_cell("retrieval_qa", "qa")]
        reply = kc.execute_interactive(graph[0] + "\n", timeout=60)
        assert reply["content"]["status"] == "ok"
        out: list[str] = []

        def hook(msg: dict[str, Any]) -> None:
            if msg["msg_type"] == "stream":
                out.append(msg["content"]["text"])

        kc.execute_interactive("print(qa.invoke({'question': 'what draws the graph?'})['answer'])", timeout=60, output_hook=hook)
        assert "".join(out).strip() == "GraphView draws the graph and colours each node as it runs."
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)



def test_readme_templates_example_runs_as_pasted(capsys: Any) -> None:
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("## Templates", 1)[1].split("\n## ", 1)[0]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)  # type: ignore[union-attr]
    exec(compile(code, "README.md#templates", "exec"), {})
    assert capsys.readouterr().out == "A / B / C\n"
