"""The HTTP node against a bare pooled httpx call to the same local server.

    python -m benchmarks.http_node            # about 20 s

Per call: ``client.get(url)`` + status check + ``.json()`` by hand (the floor), the node called
directly (``node(state)``: URL template, retry loop, parse, update dict), and the node inside a
one-node graph (``app.invoke``, adding the engine's own cost). Target: the node adds at most
50 µs to the bare call. The server is the tests' stdlib ``ThreadingHTTPServer`` on 127.0.0.1
(keep-alive), so most of each call is the server's own Python time.
"""

from __future__ import annotations

import sys
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import httpx
from _http_server import LocalServer

from agentgraph_nb import START, StateGraph
from agentgraph_nb.nodes import http_get
from benchmarks._nodes_timing import paired

TARGET_US = 50.0


def main() -> int:
    with LocalServer() as srv:
        client = httpx.Client()
        url = srv.url("/fast/oslo")

        def bare() -> object:
            r = client.get(url)
            if r.status_code >= 400:
                raise RuntimeError(r.status_code)
            return {"r": r.json()}

        node = http_get(srv.url("/fast/{city}"), into="r")
        state = {"city": "oslo"}
        app = StateGraph(dict).add_node("n", node).add_edge(START, "n").compile(checkpointer=None)
        assert bare() == node(state) == {"r": {"ok": True}}
        # the node's own Python work per call, on a real response already received: what the
        # paired difference measures, without the server's and the network's noise
        resp = client.get(url)

        def own_work() -> object:
            u = node._url_for(state)
            node._kwargs(state)
            node.client()
            return node._update(node._parse(resp, u))

        t_own = timeit.timeit(own_work, number=20000) / 20000
        t_json = timeit.timeit(resp.json, number=20000) / 20000
        t_bare, t_node, added_s = paired(bare, lambda: node(state))
        _, t_app, graph_s = paired(bare, lambda: app.invoke(state), rounds=21)
        client.close()
        app.close()
    print("HTTP node vs bare httpx (local server, keep-alive); medians, µs per call")
    print(f"  bare pooled httpx.Client.get + .json()     {t_bare * 1e6:8.1f}")
    print(f"  http_get node, called directly             {t_node * 1e6:8.1f}   paired difference {added_s * 1e6:+.1f}")
    print(f"  http_get node in a 1-node graph (invoke)   {t_app * 1e6:8.1f}   paired difference {graph_s * 1e6:+.1f}")
    print(f"  the node's own work on a received response {t_own * 1e6:8.1f}   (of which .json() {t_json * 1e6:.1f}, which the bare call does too)")
    added = added_s * 1e6
    ok = added <= TARGET_US
    print(f"node overhead: {added:+.1f} µs per call (target <= {TARGET_US:.0f} µs): {'PASS' if ok else 'MISS'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
