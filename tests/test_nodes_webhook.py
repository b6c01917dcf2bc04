"""WebhookReceiver: real HTTP requests (urllib) start runs and resume interrupted threads."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any

import pytest

from agentgraph_nb import START, StateGraph, interrupt
from agentgraph_nb.errors import TriggerError
from agentgraph_nb.nodes import WebhookReceiver


def call(url: str, body: Any = None, *, method: str | None = None, raw: bytes | None = None,
         token: str | None = None) -> tuple[int, dict[str, Any]]:
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(url, data=data, method=method or ("POST" if data is not None else "GET"))
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def approval_app() -> Any:
    def draft(state: dict[str, Any]) -> dict[str, Any]:
        return {"draft": f"refund {state['amount']}"}

    def approve(state: dict[str, Any]) -> dict[str, Any]:
        answer = interrupt({"question": f"send {state['draft']}?"})
        return {"approved": answer["ok"]}

    def boom(state: dict[str, Any]) -> dict[str, Any]:
        if state.get("explode"):
            raise ValueError("amount too large")
        return {}

    return (StateGraph(dict).add_node("boom", boom).add_node("draft", draft).add_node("approve", approve)
            .add_edge(START, "boom").add_edge("boom", "draft").add_edge("draft", "approve").compile())


def test_post_starts_a_run_that_pauses_and_resume_finishes_it() -> None:
    results: list[str] = []
    with WebhookReceiver(approval_app(), on_result=lambda tid, out: results.append(tid)) as hook:
        status, body = call(hook.url, {"amount": 30})
        assert status == 200 and body["status"] == "interrupted"
        tid = body["thread_id"]
        assert body["state"]["draft"] == "refund 30" and body["next"] == ["approve"]
        assert body["interrupts"][0]["value"] == {"question": "send refund 30?"}
        assert body["interrupts"][0]["node"] == "approve"
        status, got = call(f"{hook.url}/{tid}")
        assert status == 200 and got["status"] == "interrupted" and got["state"]["amount"] == 30
        status, done = call(f"{hook.url}/{tid}/resume", {"ok": True})
        assert status == 200 and done["status"] == "done" and done["state"]["approved"] is True
        assert done["interrupts"] == [] and done["next"] == []
        status, again = call(f"{hook.url}/{tid}/resume", {"ok": False})
        assert status == 409 and "not paused" in again["error"]
        status, named = call(f"{hook.url}?thread_id=order-7", {"amount": 1})
        assert named["thread_id"] == "order-7" and hook.app.get_state("order-7").values["amount"] == 1
    assert results == [tid, tid, "order-7"]
    assert hook.stats["succeeded"] == 1 and hook.stats["interrupted"] == 2 and hook.stats["rejected"] == 1
    assert not hook.running


def test_bad_requests_get_json_errors_naming_what_is_wrong() -> None:
    with WebhookReceiver(approval_app(), max_body=100) as hook:
        assert call(hook.url, raw=b"{not json")[0] == 400
        status, body = call(hook.url, raw=b"{not json")
        assert "not JSON" in body["error"] and body["reason"] == "Bad Request"
        status, body = call(hook.url, [1, 2])
        assert status == 400 and "a JSON object, got list" in body["error"]
        status, body = call(hook.url, {"x": "y" * 200})
        assert status == 413 and "at most 100" in body["error"]
        status, body = call(hook.url.replace("/runs", "/nope"), {})
        assert status == 404 and "POST /runs" in body["error"]
        assert call(f"{hook.url}/unknown")[0] == 404
        assert call(f"{hook.url}/unknown/resume", {"ok": 1})[0] == 404
        assert call(hook.url, method="DELETE")[0] == 405
        status, body = call(hook.url, {"amount": 5, "explode": True})
        assert status == 500 and body["error"] == "ValueError" and body["node"] == "boom"
        assert "amount too large" in body["message"]
    assert hook.stats["failed"] == 1 and isinstance(hook.failures[0][1], ValueError)


def test_token_and_background_runs() -> None:
    with WebhookReceiver(approval_app(), token="s3cret", wait=False) as hook:
        status, body = call(hook.url, {"amount": 2})
        assert status == 401 and "Bearer" in body["error"]
        status, body = call(hook.url, {"amount": 2}, token="s3cret")
        assert status == 202 and body["status"] == "accepted"
        tid = body["thread_id"]
        for _ in range(200):
            status, got = call(f"{hook.url}/{tid}", token="s3cret")
            if status == 200 and got["status"] == "interrupted":
                break
            time.sleep(0.02)
        assert got["status"] == "interrupted"
        assert call(f"{hook.url}/{tid}/resume", {"ok": True}, token="s3cret")[0] == 202
    # stop() waited for the background run
    assert hook.app.get_state(tid).values["approved"] is True


def test_a_busy_port_and_a_graph_without_checkpointer() -> None:
    with WebhookReceiver(approval_app()) as first:
        with pytest.raises(TriggerError, match=f"cannot listen on 127.0.0.1:{first.port}"):
            WebhookReceiver(approval_app(), port=first.port).start()
    plain = StateGraph(dict).add_node("n", lambda s: {"y": s["x"] + 1}).add_edge(START, "n").compile(checkpointer=None)
    with WebhookReceiver(plain) as hook:
        status, body = call(hook.url, {"x": 1})
        assert status == 200 and body["state"] == {"x": 1, "y": 2} and body["status"] == "done"
        status, body = call(f"{hook.url}/{body['thread_id']}/resume", {})
        assert status == 409 and "no checkpointer" in body["error"]
