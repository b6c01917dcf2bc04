"""The Redis nodes against bare redis-py on the same throwaway redis-server (tests/_servers.py).

    python -m benchmarks.redis_node           # about 10 s

Per call: ``GET`` of a JSON value by hand (the shared pooled client, ``json.loads``: the floor)
vs ``redis_get`` called directly; ``SET`` with a TTL (``json.dumps``, ``SET ... PX``) vs
``redis_set``; ``XADD`` of a JSON body vs ``stream_add``. Each node's own work is filling the key
template from the state, encoding or decoding, and building the update (printed on its own last,
without the round trip). Target, as for the HTTP and SQL nodes: at most 50 µs added per call.
"""

from __future__ import annotations

import json
import sys

from agentgraph_nb.nodes import redis_get, redis_set, stream_add
from agentgraph_nb.nodes.nosql import redis_client
from benchmarks._nodes_timing import interleaved, paired
from tests._servers import RedisServer

TARGET_US = 50.0


def main() -> int:
    server = RedisServer()
    try:
        url = server.url
        client = redis_client(url)  # the same pooled client the nodes use: the comparison is the node's own cost
        state = {"user": {"id": 7}, "answer": {"text": "42", "n": [1, 2, 3]}}
        get = redis_get("answer:{user.id}", url=url, into="cached")
        put = redis_set("answer:{user.id}", "{answer}", url=url, ttl=3600)
        add = stream_add("bench", "{answer}", url=url, maxlen=1000)

        def bare_get() -> object:
            raw = client.get(f"answer:{state['user']['id']}")
            return {"cached": None if raw is None else json.loads(raw)}

        def bare_set() -> None:
            data = json.dumps(state["answer"], separators=(",", ":"), ensure_ascii=False).encode()
            client.set(f"answer:{state['user']['id']}", data, px=3_600_000)

        def bare_add() -> None:
            data = json.dumps(state["answer"], separators=(",", ":"), ensure_ascii=False).encode()
            client.xadd("bench", {b"data": data}, maxlen=1000, approximate=True)

        put(state)
        assert bare_get() == get(state)
        ok = True
        print("Redis nodes vs bare redis-py on a local redis-server (same pooled client); medians, µs per call")
        for label, bare, node in (
            ("GET a JSON value: redis_get", bare_get, lambda: get(state)),
            ("SET with a TTL: redis_set", bare_set, lambda: put(state)),
            ("XADD a JSON body: stream_add", bare_add, lambda: add(state)),
        ):
            t_bare, t_node, diff = paired(bare, node, batch=100, rounds=41, warmup=50)
            added = diff * 1e6
            passed = added <= TARGET_US
            ok &= passed
            print(f"  {label:<32} bare {t_bare * 1e6:8.1f}  node {t_node * 1e6:8.1f}  paired difference {added:+6.1f}"
                  f"  (target <= {TARGET_US:.0f}): {'PASS' if passed else 'MISS'}")
        # the nodes' own work without the round trip (template, encoding, decoding, the update)
        raw = client.get("answer:7")
        own = interleaved({
            "redis_get own work": lambda: get._result(raw, get._plan(state)[0]),
            "redis_set own work": lambda: put._plan(state),
            "stream_add own work": lambda: add._payload(state, add.stream.render(state, who="b")),
        }, batch=2000, rounds=9)
        print("  " + ", ".join(f"{k} {v * 1e6:.1f}" for k, v in own.items()) + " (µs per call, no I/O)")
        return 0 if ok else 1
    finally:
        server.close()


if __name__ == "__main__":
    sys.exit(main())
