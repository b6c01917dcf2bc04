"""The HTTP nodes against a real local HTTP server (no mocked transport)."""

from __future__ import annotations

import asyncio
import pickle
import time
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("httpx")

from _http_server import LocalServer

from agentgraph_nb import START, RetryPolicy, StateGraph
from agentgraph_nb.errors import (
    AgentGraphError,
    HttpConnectError,
    HttpStatusError,
    HttpTimeoutError,
    NodeResourceError,
    NodeValueError,
)
from agentgraph_nb.nodes import (
    api_key,
    basic,
    bearer,
    http_get,
    http_post,
    http_request,
    next_link,
    oauth2_client_credentials,
    page_param,
)

FAST = RetryPolicy(max_attempts=3, initial_interval=0.01, jitter=False)


@pytest.fixture(scope="module")
def srv() -> Iterator[LocalServer]:
    with LocalServer() as s:
        yield s


def run_node(node: Any, state: dict[str, Any], name: str = "call") -> dict[str, Any]:
    app = StateGraph(dict).add_node(name, node).add_edge(START, name).compile(checkpointer=None)
    try:
        return app.invoke(state)
    finally:
        app.close()


def test_url_fields_are_quoted_so_state_cannot_change_the_path_or_host(srv: LocalServer) -> None:
    node = http_get(srv.url("/echo/{city}/x"), params={"q": "{question}", "n": "{n}"}, into="r")
    out = run_node(node, {"city": "a/../b?c=1#@evil.com", "question": "x&y=z", "n": 3})
    r = out["r"]
    assert r["raw_path"] == "/echo/a%2F..%2Fb%3Fc%3D1%23%40evil.com/x"
    assert r["query"] == {"q": "x&y=z", "n": "3"}


def test_json_body_template_keeps_value_types_and_headers_fill(srv: LocalServer) -> None:
    node = http_post(
        srv.url("/echo"),
        json={"q": "{question}", "n": "{n}", "text": "about {question}", "fixed": [1, 2]},
        headers={"X-Trace": "t-{n}"},
        into="r",
    )
    r = run_node(node, {"question": "rain", "n": 7})["r"]
    import json

    assert r["method"] == "POST"
    assert json.loads(r["body"]) == {"q": "rain", "n": 7, "text": "about rain", "fixed": [1, 2]}
    assert r["headers"]["x-trace"] == "t-7"


def test_form_and_raw_bodies_and_header_injection(srv: LocalServer) -> None:
    r = run_node(http_post(srv.url("/echo"), data={"q": "{question}"}, into="r"), {"question": "a b&c"})["r"]
    assert r["body"] == "q=a+b%26c"
    r = run_node(http_post(srv.url("/echo"), data="raw {question}", into="r"), {"question": "text"})["r"]
    assert r["body"] == "raw text"
    node = http_get(srv.url("/echo"), headers={"X-User": "{user}"}, into="r")
    with pytest.raises(AgentGraphError) as ei:  # the node's own error
        run_node(node, {"user": "ada\r\nX-Admin: 1"}, name="who")
    err = ei.value
    assert isinstance(err, NodeValueError) and err.node == "who" and "X-User" in str(err)


def test_missing_state_key_names_node_and_key(srv: LocalServer) -> None:
    node = http_get(srv.url("/echo/{city}"), into="r")
    with pytest.raises(AgentGraphError) as ei:  # the node's own error
        run_node(node, {"town": "x"}, name="weather")
    cause = ei.value
    assert isinstance(cause, NodeValueError)
    assert cause.node == "weather" and cause.key == "city"
    assert "'weather'" in str(cause) and "'city'" in str(cause) and "The state has: town" in str(cause)


def test_auth_bearer_basic_and_api_key(srv: LocalServer) -> None:
    r = run_node(http_get(srv.url("/echo"), auth=bearer("abc"), into="r"), {})["r"]
    assert r["headers"]["authorization"] == "Bearer abc"
    r = run_node(http_get(srv.url("/echo"), auth=basic("u", "p"), into="r"), {})["r"]
    assert r["headers"]["authorization"] == "Basic dTpw"
    r = run_node(http_get(srv.url("/echo"), auth=api_key("k1"), into="r"), {})["r"]
    assert r["headers"]["x-api-key"] == "k1"
    r = run_node(http_get(srv.url("/echo"), auth=api_key("k2", param="key"), into="r"), {})["r"]
    assert r["query"] == {"key": "k2"}
    assert "abc" not in repr(bearer("abc"))


def test_oauth2_client_credentials_token_is_fetched_once_and_cached(srv: LocalServer) -> None:
    auth = oauth2_client_credentials(srv.url("/token"), "app", "s3cret")
    node = http_get(srv.url("/protected"), auth=auth, into="r")
    first = run_node(node, {})["r"]["token"]
    second = run_node(node, {})["r"]["token"]
    assert first == second and auth.fetches == 1
    # a token that expired (here: its lifetime is shorter than the leeway) is fetched again
    short = oauth2_client_credentials(srv.url("/token?ttl=1"), "app", "s3cret", leeway=30)
    node2 = http_get(srv.url("/protected"), auth=short, into="r")
    run_node(node2, {})
    run_node(node2, {})
    assert short.fetches == 2
    # a revoked token: the 401 makes the node fetch a new one, once
    srv.server.valid_tokens.discard(first)
    assert run_node(node, {})["r"]["token"] != first and auth.fetches == 2


def test_oauth2_async_concurrent_calls_fetch_one_token(srv: LocalServer) -> None:
    auth = oauth2_client_credentials(srv.url("/token"), "app", "s3cret")
    node = http_get(srv.url("/protected"), auth=auth, aio=True, into="r")

    async def main() -> list[Any]:
        outs = await asyncio.gather(*(node({}) for _ in range(8)))
        await node.aclose()
        return outs

    outs = asyncio.run(main())
    assert auth.fetches == 1 and len({o["r"]["token"] for o in outs}) == 1


def test_oauth2_bad_credentials_is_a_status_error_naming_the_token_url(srv: LocalServer) -> None:
    auth = oauth2_client_credentials(srv.url("/token"), "app", "wrong")
    with pytest.raises(AgentGraphError) as ei:  # the node's own error
        run_node(http_get(srv.url("/protected"), auth=auth, into="r"), {}, name="me")
    err = ei.value
    assert isinstance(err, HttpStatusError) and err.status_code == 401
    assert err.node == "me" and "/token" in err.url and "OAuth2 token request" in str(err)


def test_retries_5xx_then_succeeds(srv: LocalServer) -> None:
    node = http_get(srv.url("/flaky/a/2/503"), retry=FAST, into="r")
    assert run_node(node, {})["r"] == {"hits": 3}


def test_429_waits_what_retry_after_asks(srv: LocalServer) -> None:
    node = http_get(srv.url("/status/429?retry_after=0.3"), retry=RetryPolicy(max_attempts=2, initial_interval=5), into="r")
    t = time.perf_counter()
    with pytest.raises(AgentGraphError) as ei:  # the node's own error
        run_node(node, {})
    took = time.perf_counter() - t
    assert 0.25 < took < 3, took  # the server's 0.3 s, not the policy's 5 s
    err = ei.value
    assert isinstance(err, HttpStatusError) and err.status_code == 429
    assert srv.server.hits["/status/429"] == 2


def test_other_4xx_is_not_retried_and_names_node_url_status(srv: LocalServer) -> None:
    before = srv.server.hits.get("/status/404", 0)
    node = http_get(srv.url("/status/404"), retry=FAST, into="r")
    with pytest.raises(AgentGraphError) as ei:  # the node's own error
        run_node(node, {}, name="lookup")
    err = ei.value
    assert isinstance(err, HttpStatusError) and isinstance(err, NodeResourceError)
    assert (err.node, err.status_code, err.url) == ("lookup", 404, srv.url("/status/404"))
    assert "'lookup'" in str(err) and "404" in str(err) and srv.url("/status/404") in str(err)
    assert srv.server.hits["/status/404"] == before + 1
    # typed errors survive pickling (process pools)
    again = pickle.loads(pickle.dumps(err))
    assert type(again) is HttpStatusError and again.status_code == 404 and again.node == "lookup"


def test_graph_retry_policy_treats_the_error_the_same_way(srv: LocalServer) -> None:
    node = http_get(srv.url("/flaky/b/1/500"), retry=None, into="r")
    app = StateGraph(dict).add_node("n", node, retry=FAST).add_edge(START, "n").compile(checkpointer=None)
    assert app.invoke({})["r"] == {"hits": 2}
    assert app.metrics.node("n").retries == 1


def test_timeout_and_connection_refused_are_typed(srv: LocalServer) -> None:
    node = http_get(srv.url("/slow/1"), timeout=0.1, retry=None, into="r")
    with pytest.raises(AgentGraphError) as ei:  # the node's own error
        run_node(node, {})
    assert isinstance(ei.value, HttpTimeoutError) and isinstance(ei.value, TimeoutError)
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed when the block ends: nobody listens
    node = http_get(f"http://127.0.0.1:{port}/x", retry=None, into="r")
    with pytest.raises(AgentGraphError) as ei:  # the node's own error
        run_node(node, {}, name="down")
    err = ei.value
    assert isinstance(err, HttpConnectError) and isinstance(err, ConnectionError)
    assert err.node == "down" and str(port) in str(err)


def test_malformed_json_is_a_value_error_naming_the_url(srv: LocalServer) -> None:
    with pytest.raises(AgentGraphError) as ei:  # the node's own error
        run_node(http_get(srv.url("/badjson"), into="r"), {}, name="parse")
    err = ei.value
    assert isinstance(err, NodeValueError) and "malformed JSON" in str(err) and "/badjson" in str(err)
    assert run_node(http_get(srv.url("/text"), into="r"), {})["r"] == "plain words"


def test_pagination_page_param_and_next_link(srv: LocalServer) -> None:
    node = http_get(srv.url("/pages"), paginate=page_param("page", items="items"), into="all")
    assert run_node(node, {})["all"] == ["p1-0", "p1-1", "p2-0", "p2-1", "p3-0", "p3-1"]
    node = http_get(srv.url("/linked/1"), paginate=next_link(items="data"), into="all")
    assert run_node(node, {})["all"] == [1, 2, 3]
    node = http_get(srv.url("/linked/2"), paginate=next_link("next", items="data"), into="all")
    assert run_node(node, {})["all"] == [2, 3]
    node = http_get(srv.url("/elsewhere"), paginate=next_link("next", items="data"), auth=bearer("t"), into="all")
    with pytest.raises(AgentGraphError) as ei:  # the node's own error
        run_node(node, {})
    assert isinstance(ei.value, NodeValueError) and "another origin" in str(ei.value)
    node = http_get(srv.url("/pages"), paginate=page_param(items="items", max_pages=2), into="all")
    assert len(run_node(node, {})["all"]) == 4
    node = http_get(srv.url("/pages"), paginate=page_param(items="items", start=3), into="all")
    assert run_node(node, {})["all"] == ["p3-0", "p3-1"]  # the first request asks for page 3
    node = http_get(srv.url("/pages"), paginate=page_param(items="items"), aio=True, into="all")
    assert asyncio.run(node({}))["all"] == ["p1-0", "p1-1", "p2-0", "p2-1", "p3-0", "p3-1"]


def test_select_and_update_without_into(srv: LocalServer) -> None:
    node = http_get(srv.url("/echo"), params={"a": "1"}, select="query")
    assert run_node(node, {"a": "0"}) == {"a": "1"}


def test_async_node_pools_per_loop_and_works_in_ainvoke(srv: LocalServer) -> None:
    node = http_get(srv.url("/echo/{city}"), aio=True, into="r")
    app = StateGraph(dict).add_node("n", node).add_edge(START, "n").compile(checkpointer=None)

    async def main() -> list[Any]:
        outs = await asyncio.gather(*(app.ainvoke({"city": f"c{i}"}) for i in range(5)))
        await node.aclose()
        return outs

    outs = asyncio.run(main())
    assert [o["r"]["raw_path"] for o in outs] == [f"/echo/c{i}" for i in range(5)]
    assert app.invoke({"city": "sync"})["r"]["raw_path"] == "/echo/sync"  # a new loop, a new client
    with pytest.raises(AgentGraphError) as ei:  # the node's own error
        asyncio.run(app.ainvoke({"town": "x"}))
    assert isinstance(ei.value, NodeValueError)


def test_async_retries_and_status_errors(srv: LocalServer) -> None:
    node = http_get(srv.url("/flaky/c/2/502"), aio=True, retry=FAST, into="r")
    assert asyncio.run(node({})) == {"r": {"hits": 3}}
    bad = http_get(srv.url("/status/403"), aio=True, retry=FAST, into="r", name="forbidden")
    with pytest.raises(HttpStatusError) as ei:
        asyncio.run(bad({}))
    assert ei.value.node == "forbidden" and ei.value.status_code == 403


def test_one_pooled_connection_is_reused_and_close_releases_it(srv: LocalServer) -> None:
    node = http_get(srv.url("/fast"), into="r")
    for _ in range(3):
        node({})
    client = node.client()
    assert node.client() is client
    node.close()
    assert client.is_closed and node.client() is not client
    node.close()


def test_app_close_closes_node_clients(srv: LocalServer) -> None:
    node = http_get(srv.url("/fast"), into="r")
    with StateGraph(dict).add_node("n", node).add_edge(START, "n").compile(checkpointer=None) as app:
        app.invoke({})
        client = node.client()
    assert client.is_closed


def test_bad_arguments_fail_at_once() -> None:
    with pytest.raises(ValueError, match="json= or data="):
        http_post("http://x", json={}, data={})
    with pytest.raises(ValueError, match="response must be"):
        http_get("http://x", response="xml")
    with pytest.raises(ValueError, match="bad template"):
        http_get("http://x/{a")


def test_whole_url_from_state_must_be_http(srv: LocalServer) -> None:
    node = http_request("GET", "{endpoint}", into="r")
    assert run_node(node, {"endpoint": srv.url("/fast")})["r"] == {"ok": True}
    with pytest.raises(AgentGraphError) as ei:  # the node's own error
        run_node(node, {"endpoint": "file:///etc/passwd"})
    assert isinstance(ei.value, NodeValueError)


def test_node_by_name_in_a_cell_language_graph(srv: LocalServer) -> None:
    from agentgraph_nb.notebook import _dsl

    ns = {"weather": http_get(srv.url("/echo/{city}"), into="w")}
    builder = _dsl.build(_dsl.parse("START -> weather -> END"), name="g", schema=dict, namespace=ns, builder_cls=StateGraph)
    app = builder.compile(checkpointer=None)
    assert app.invoke({"city": "Oslo"})["w"]["raw_path"] == "/echo/Oslo"
    client = ns["weather"].client()
    app.close()  # reaches the node behind the cell's hot-reload proxy
    assert client.is_closed


def test_nodes_in_a_notebook_cell(srv: LocalServer) -> None:
    pytest.importorskip("IPython")
    from IPython.core.interactiveshell import InteractiveShell

    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "agentgraph_nb")
    ip.run_line_magic("config", "AgentGraphMagics.record = False")
    ip.run_line_magic("config", "AgentGraphMagics.display = False")
    ip.user_ns["API"] = srv.url("")

    def cell(code: str) -> Any:
        res = ip.run_cell(code, store_history=False)
        res.raise_error()
        return res.result

    cell(
        "from agentgraph_nb.nodes import http_get, transform\n"
        "fetch = http_get(API + '/echo/{city}', into='echo')\n"
        "shout = transform('upper(echo.raw_path)', into='loud')\n"
    )
    cell("%%agentgraph weather\nSTART -> fetch -> shout -> END\n")
    out = cell("weather.invoke({'city': 'Oslo'})")
    assert out["loud"] == "/ECHO/OSLO"
    # hot reload: rebinding the name to another node takes effect without re-running the cell
    cell("shout = transform('lower(echo.raw_path)', into='loud')")
    assert cell("weather.invoke({'city': 'Rome'})")["loud"] == "/echo/rome"


def test_app_close_closes_node_clients_inside_subgraphs(srv: LocalServer) -> None:
    node = http_get(srv.url("/fast"), into="r")
    inner = StateGraph(dict, name="fetcher").add_node("n", node).add_edge(START, "n").compile(checkpointer=None)
    with StateGraph(dict, name="outer").add_node("fetch", inner).add_edge(START, "fetch").compile(checkpointer=None) as app:
        assert app.invoke({})["r"] == {"ok": True}
        client = node.client()
    assert client.is_closed


def test_cassette_records_and_replays_http_nodes_without_the_network(srv: LocalServer, tmp_path: Any) -> None:
    from agentgraph_nb.errors import CassetteMismatchError
    from agentgraph_nb.testing import cassette

    tape = tmp_path / "http.jsonl"
    keyed = http_get(srv.url("/echo"), params={"q": "{q}"}, auth=api_key("k2", param="key"), into="r")
    flaky = http_get(srv.url("/flaky/tape/1/503"), retry=FAST, into="r")
    pages = http_get(srv.url("/pages"), paginate=page_param("page", items="items"), aio=True, into="all")
    posted = http_post(srv.url("/echo"), json={"n": "{n}"}, auth=bearer("sekrit"), into="r")
    with cassette(tape) as cas:
        first = run_node(keyed, {"q": "x"})
        assert run_node(flaky, {}) == {"r": {"hits": 2}}
        assert asyncio.run(pages({}))["all"] == ["p1-0", "p1-1", "p2-0", "p2-1", "p3-0", "p3-1"]
        body = run_node(posted, {"n": 3})["r"]["body"]
    assert cas.mode == "record" and cas.calls == 1 + 2 + 4 + 1  # the 503 and each page are calls
    import json

    requests = [json.dumps(json.loads(line)["request"]) for line in tape.read_text().splitlines()]
    # the requests keep no credentials (the echo server's answers repeat them: those are its own)
    assert not any("k2" in r or "sekrit" in r for r in requests) and "<secret>" in requests[0]
    hits = dict(srv.server.hits)
    with cassette(tape) as cas:
        assert cas.mode == "replay"
        with pytest.raises(CassetteMismatchError, match=r"node 'call' \(GET .*/echo\)") as ei:
            run_node(keyed, {"q": "changed"})
        assert run_node(keyed, {"q": "x"}) == first
        assert run_node(flaky, {}) == {"r": {"hits": 2}}  # the recorded 503, retried, then the 200
        assert asyncio.run(pages({}))["all"] == ["p1-0", "p1-1", "p2-0", "p2-1", "p3-0", "p3-1"]
        assert run_node(posted, {"n": 3})["r"]["body"] == body == '{"n":3}'
    assert '+  "q": "changed"' in str(ei.value) and '-  "q": "x"' in str(ei.value)
    assert dict(srv.server.hits) == hits  # nothing reached the server
