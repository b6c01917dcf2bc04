"""Health checks for a process that runs graphs: is the store reachable, is Ray reachable, how
many runs are in flight; as a report in Python and as HTTP endpoints for Kubernetes probes.

``Health(app)`` checks ``app``'s checkpoint store (one read of a key that does not exist, with a
time limit, so a hung server fails the check instead of hanging the probe); ``ray=True`` also
checks the Ray cluster the process is connected to. No extra is needed (Ray's check needs
``ray``). ``serve(port)`` answers:

* ``GET /livez``: 200 while the process can answer (liveness; it checks nothing external);
* ``GET /readyz``: 200 when every check passes, else 503 (readiness);
* ``GET /healthz``: the whole report as JSON (200 or 503 as ``/readyz``).

Example:
    >>> from agentgraph_nb.observe.health import Health          # doctest: +SKIP
    >>> h = Health(app); h.check().ok                           # doctest: +SKIP
    True
    >>> server = h.serve(8080)   # livenessProbe: /livez, readinessProbe: /readyz   # doctest: +SKIP
"""

from __future__ import annotations

import concurrent.futures
import json
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["Check", "Health", "HealthReport", "HealthServer"]

_PROBE_THREAD = "__agentgraph_health__"


@dataclass(frozen=True)
class Check:
    """One check: its name, whether it passed, what it found, and how long it took (seconds)."""

    name: str
    ok: bool
    detail: str
    seconds: float


@dataclass(frozen=True)
class HealthReport:
    """The result of :meth:`Health.check`: ``ok`` when every check passed."""

    ok: bool
    checks: tuple[Check, ...]
    runs_in_flight: int
    graphs: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "runs_in_flight": self.runs_in_flight, "graphs": list(self.graphs),
                "checks": [asdict(c) for c in self.checks]}

    def to_pandas(self) -> Any:
        """The checks as a DataFrame (needs pandas)."""
        from agentgraph_nb._lazy import requires_extra

        with requires_extra("HealthReport.to_pandas()"):
            import pandas as pd
        return pd.DataFrame([asdict(c) for c in self.checks]).set_index("name")


def _in_flight(app: Any) -> int:
    st = getattr(app, "_run_stats", None)
    if st is None:
        return 0
    return max(0, st.started - st.completed - st.failed - st.interrupted)


class Health:
    """Health checks of one or more graphs' stores (and of Ray).

    Args:
        apps: a compiled graph, or several (their stores are each checked once).
        stores: more stores to check (objects or URLs such as ``"postgresql://..."``).
        ray: also check the Ray cluster this process is connected to (``ray.init`` is yours).
        timeout: seconds each check may take before it counts as failed.
    """

    def __init__(self, apps: Any = None, *, stores: Sequence[Any] = (), ray: bool = False, timeout: float = 2.0) -> None:
        if apps is None:
            self.apps: tuple[Any, ...] = ()
        elif isinstance(apps, (list, tuple)):
            self.apps = tuple(apps)
        else:
            self.apps = (apps,)
        found: list[Any] = []
        for app in self.apps:
            store = getattr(app, "checkpointer", None)
            if store is not None and all(store is not s for s in found):
                found.append(store)
        for s in stores:
            if isinstance(s, str):
                from agentgraph_nb.checkpoint import open_checkpointer

                s = open_checkpointer(s)
            found.append(s)
        self.stores = tuple(found)
        self.ray = ray
        self.timeout = float(timeout)
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="agentgraph_nb-health")

    def _timed(self, name: str, fn: Any) -> Check:
        t = time.perf_counter()
        fut = self._pool.submit(fn)
        try:
            detail = fut.result(self.timeout)
            return Check(name, True, detail or "ok", time.perf_counter() - t)
        except concurrent.futures.TimeoutError:
            return Check(name, False, f"no answer within {self.timeout:g} s", time.perf_counter() - t)
        except Exception as exc:
            return Check(name, False, f"{type(exc).__name__}: {exc}", time.perf_counter() - t)

    def check(self) -> HealthReport:
        """Run every check now (concurrently, each within ``timeout``)."""
        checks = [self._timed(f"store {_label(s)}", _store_probe(s)) for s in self.stores]
        if self.ray:
            checks.append(self._timed("ray", _ray_probe))
        return HealthReport(
            ok=all(c.ok for c in checks),
            checks=tuple(checks),
            runs_in_flight=sum(_in_flight(a) for a in self.apps),
            graphs=tuple(getattr(a, "name", "") for a in self.apps),
        )

    def serve(self, port: int = 0, addr: str = "127.0.0.1") -> HealthServer:
        """Answer ``/livez``, ``/readyz`` and ``/healthz`` on ``addr:port`` (0: a free port) from a
        daemon thread."""
        return HealthServer(self, port, addr)


def _label(store: Any) -> str:
    """The store as its repr shows it (network stores mask the password)."""
    where = getattr(store, "where", None)
    return f"{type(store).__name__}({where!r})" if where else repr(store)


def _store_probe(store: Any) -> Any:
    def probe() -> str:
        store.get(_PROBE_THREAD)  # a read that finds nothing: one round trip, no write
        return "reachable"

    return probe


def _ray_probe() -> str:
    from agentgraph_nb._lazy import requires_extra

    with requires_extra("Health(ray=True)"):
        import ray
    if not ray.is_initialized():
        raise ConnectionError("this process is not connected to a Ray cluster (call ray.init first)")
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    cpus = ray.cluster_resources().get("CPU", 0)
    return f"{len(nodes)} node(s) alive, {cpus:g} CPU"


class HealthServer:
    """A running health endpoint: ``url``, ``port``, ``stop()`` (also a context manager)."""

    def __init__(self, health: Health, port: int, addr: str) -> None:
        owner = health

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path == "/livez":
                    body: dict[str, Any] = {"ok": True, "runs_in_flight": sum(_in_flight(a) for a in owner.apps)}
                    code = 200
                elif path in ("/readyz", "/healthz"):
                    report = owner.check()
                    code = 200 if report.ok else 503
                    body = report.to_dict() if path == "/healthz" else {
                        "ok": report.ok, "failed": [c.name for c in report.checks if not c.ok]}
                else:
                    code, body = 404, {"error": f"no such endpoint {path!r}; try /livez, /readyz, /healthz"}
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:  # probes every few seconds: quiet
                pass

        self._httpd = ThreadingHTTPServer((addr, port), Handler)
        self._httpd.daemon_threads = True
        self.port: int = self._httpd.server_address[1]
        self.url = f"http://{addr}:{self.port}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="agentgraph_nb-health", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)

    def __enter__(self) -> HealthServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
