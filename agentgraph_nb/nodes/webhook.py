"""A webhook receiver: HTTP requests that start a run or resume a paused one. Standard library
only (``http.server``, a thread per request), so it needs no extra; the ``serve`` command will
mount the same routes.

Example:
    >>> from agentgraph_nb.nodes.webhook import WebhookReceiver
    >>> with WebhookReceiver(app, port=8080, token="s3cret") as hook:  # doctest: +SKIP
    ...     print(hook.url)  # http://127.0.0.1:8080/runs

Routes (JSON in and out; with ``token``, requests need ``Authorization: Bearer <token>``):

- ``POST /runs``: the body (a JSON object) is the input of a new thread (its id is made, or taken
  from ``?thread_id=``). Answers ``{"thread_id", "status", "state", "interrupts"}``: ``status``
  is ``"done"``, or ``"interrupted"`` when a node called :func:`~agentgraph_nb.interrupt`.
- ``POST /runs/<thread_id>/resume``: the body (any JSON) answers the thread's pending interrupt,
  as ``Command(resume=body)`` does; 409 when the thread is not paused, 404 when it is unknown.
- ``GET /runs/<thread_id>``: the thread's state, next nodes and pending interrupts.

``wait=False`` answers ``202 {"thread_id", "status": "accepted"}`` at once and runs in the
background (poll ``GET /runs/<thread_id>``). Bad requests get a JSON error naming what is wrong:
400 (malformed JSON, not an object), 401, 404, 409, 413 (larger than ``max_body``); a run that
fails answers 500 with the error's type, message and node.
"""

from __future__ import annotations

import hmac
import json
import logging
import threading
import uuid
from collections import deque
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from agentgraph_nb.errors import TriggerError

__all__ = ["WebhookReceiver"]

logger = logging.getLogger("agentgraph_nb.nodes.webhook")


class _HttpError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=_default))


def _default(obj: Any) -> Any:
    for attr in ("model_dump", "to_dict", "_asdict"):
        fn = getattr(obj, attr, None)
        if callable(fn):
            try:
                return fn()
            except Exception:
                break
    if hasattr(obj, "__dataclass_fields__"):
        import dataclasses

        return dataclasses.asdict(obj)
    return repr(obj)


class WebhookReceiver:
    """An HTTP server that starts or resumes runs of a graph (see the module's docs).

    Args:
        app: the compiled graph (give it a checkpointer to resume threads; the default
            in-memory one works within the process).
        host: the address to listen on (``"0.0.0.0"`` for every interface).
        port: the port; 0 picks a free one (read :attr:`url`).
        path: the routes' prefix.
        token: a shared secret; requests must send ``Authorization: Bearer <token>``.
        wait: answer after the run (True) or at once with 202 (False).
        max_body: the largest body accepted, in bytes.
        on_result: ``on_result(thread_id, output)`` after each run that ends or pauses.
        on_error: ``on_error(thread_id, exc)`` after each run that fails.
    """

    kind = "webhook"

    def __init__(
        self,
        app: Any,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        path: str = "/runs",
        token: str | None = None,
        wait: bool = True,
        max_body: int = 1_000_000,
        on_result: Callable[[str, Any], Any] | None = None,
        on_error: Callable[[str, BaseException], Any] | None = None,
        keep: int = 100,
    ) -> None:
        if not hasattr(app, "invoke"):
            raise TypeError(f"WebhookReceiver: give a compiled graph, got {type(app).__name__}")
        self.app = app
        self.host = host
        self.port = port
        self.path = "/" + path.strip("/")
        self.token = token
        self.wait_for_run = wait
        self.max_body = max_body
        self.on_result = on_result
        self.on_error = on_error
        self.stats = {"requests": 0, "runs": 0, "succeeded": 0, "interrupted": 0, "failed": 0, "rejected": 0}
        self.results: deque[tuple[str, Any]] = deque(maxlen=keep)
        self.failures: deque[tuple[str, BaseException]] = deque(maxlen=keep)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._busy: set[str] = set()  # threads with a run going: one writer per thread
        self._workers: set[threading.Thread] = set()

    # -- lifecycle ----------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        """The base URL of the routes, e.g. ``http://127.0.0.1:8080/runs``."""
        return f"http://{self.host if self.host != '0.0.0.0' else '127.0.0.1'}:{self.port}{self.path}"

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> WebhookReceiver:
        """Listen in a background thread; returns once the port is bound."""
        if self._server is not None:
            raise TriggerError(f"{self!r} is already running; stop() it first")
        receiver = self

        class Handler(_Handler):
            hook = receiver

        try:
            server = ThreadingHTTPServer((self.host, self.port), Handler)
        except OSError as exc:
            raise TriggerError(f"WebhookReceiver: cannot listen on {self.host}:{self.port}: {exc}") from None
        server.daemon_threads = True
        self.port = int(server.server_address[1])
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="agentgraph-webhook", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Stop listening; waits for background runs (``wait=False``) to end."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        for w in list(self._workers):
            w.join(timeout)

    def __enter__(self) -> WebhookReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        s = self.stats
        where = self.url if self.running else "stopped"
        return f"<WebhookReceiver {where}: {s['succeeded']} runs ok, {s['interrupted']} paused, {s['failed']} failed>"

    # -- runs -----------------------------------------------------------------------------------------
    def _snapshot(self, tid: str) -> dict[str, Any]:
        snap = self.app.get_state(tid)
        return {
            "thread_id": tid,
            "state": _jsonable(snap.values),
            "next": list(snap.next),
            "interrupts": [{"id": i.id, "node": i.node, "value": _jsonable(i.value)} for i in snap.interrupts],
        }

    def _run(self, tid: str, inp: Any) -> tuple[int, dict[str, Any]]:
        with self._lock:
            if tid in self._busy:
                raise _HttpError(409, f"thread {tid!r} has a run going; wait for it to end")
            self._busy.add(tid)
            self.stats["runs"] += 1
        try:
            out = self.app.invoke(inp, thread_id=tid)
        except Exception as exc:
            from agentgraph_nb.errors import node_failure

            with self._lock:
                self.stats["failed"] += 1
            self.failures.append((tid, exc))
            logger.warning("webhook: run of thread %s failed: %s", tid, exc)
            if self.on_error is not None:
                self._call(self.on_error, tid, exc)
            failure = node_failure(exc)
            return 500, {"thread_id": tid, "status": "failed", "error": type(exc).__name__, "message": str(exc),
                         "node": getattr(failure, "node", None)}
        finally:
            with self._lock:
                self._busy.discard(tid)
        interrupted = isinstance(out, dict) and bool(out.get("__interrupt__"))
        with self._lock:
            self.stats["interrupted" if interrupted else "succeeded"] += 1
        self.results.append((tid, out))
        if self.on_result is not None:
            self._call(self.on_result, tid, out)
        body = self._snapshot(tid) if self.app.checkpointer is not None else {
            "thread_id": tid, "state": _jsonable({k: v for k, v in out.items() if k != "__interrupt__"}),
            "next": [], "interrupts": [],
        }
        body["status"] = "interrupted" if interrupted else "done"
        return 200, body

    def _call(self, fn: Callable[..., Any], *args: Any) -> None:
        try:
            fn(*args)
        except Exception:
            logger.exception("webhook: callback %r failed", fn)

    def _start(self, tid: str, inp: Any) -> tuple[int, dict[str, Any]]:
        if self.wait_for_run:
            return self._run(tid, inp)

        def bg() -> None:
            try:
                self._run(tid, inp)
            except _HttpError as exc:
                logger.warning("webhook: %s", exc)
            finally:
                self._workers.discard(threading.current_thread())

        t = threading.Thread(target=bg, name=f"agentgraph-webhook-run-{tid}", daemon=True)
        self._workers.add(t)
        t.start()
        return 202, {"thread_id": tid, "status": "accepted"}

    def handle(self, method: str, target: str, headers: Any, body: bytes) -> tuple[int, dict[str, Any]]:
        """Answer one request: ``(status, JSON body)`` (the HTTP server calls it; so can ``serve``)."""
        with self._lock:
            self.stats["requests"] += 1
        if self.token is not None:
            given = headers.get("Authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {self.token}".encode()):
                raise _HttpError(401, "missing or wrong token: send 'Authorization: Bearer <token>'")
        parts = urlsplit(target)
        route = parts.path.rstrip("/")
        if not (route == self.path or route.startswith(self.path + "/")):
            raise _HttpError(404, f"no route {parts.path!r}: POST {self.path}, POST {self.path}/<thread_id>/resume, "
                                  f"GET {self.path}/<thread_id>")
        rest = [unquote(p) for p in route[len(self.path):].split("/") if p]
        if method == "GET":
            if len(rest) != 1:
                raise _HttpError(404, f"GET {self.path}/<thread_id> reads a thread")
            self._need_store()
            if self.app.get_state(rest[0]).checkpoint_id is None:
                raise _HttpError(404, f"no thread {rest[0]!r}")
            snap = self._snapshot(rest[0])
            snap["status"] = "interrupted" if snap["interrupts"] else ("running" if rest[0] in self._busy else "idle")
            return 200, snap
        if method != "POST":
            raise _HttpError(405, f"{method} is not supported: POST to start or resume, GET to read")
        value = self._json(body)
        if not rest:
            if not isinstance(value, dict):
                raise _HttpError(400, f"the body of POST {self.path} is the run's input: a JSON object, got {type(value).__name__}")
            given_id = parse_qs(parts.query).get("thread_id")
            tid = given_id[0] if given_id and given_id[0] else uuid.uuid4().hex
            return self._start(tid, value)
        if len(rest) == 2 and rest[1] == "resume":
            from agentgraph_nb.types import Command

            tid = rest[0]
            self._need_store()
            snap = self.app.get_state(tid)
            if snap.checkpoint_id is None:
                raise _HttpError(404, f"no thread {tid!r} to resume")
            if not snap.interrupts:
                raise _HttpError(409, f"thread {tid!r} is not paused at an interrupt: nothing to resume")
            return self._start(tid, Command(resume=value))
        raise _HttpError(404, f"no route POST {parts.path!r}: POST {self.path} or POST {self.path}/<thread_id>/resume")

    def _need_store(self) -> None:
        if self.app.checkpointer is None:
            raise _HttpError(409, "the graph has no checkpointer: compile it with one to read or resume threads")

    def _json(self, body: bytes) -> Any:
        if not body.strip():
            return {}
        try:
            return json.loads(body)
        except (UnicodeDecodeError, ValueError) as exc:
            raise _HttpError(400, f"the body is not JSON: {exc}") from None


class _Handler(BaseHTTPRequestHandler):
    hook: WebhookReceiver
    protocol_version = "HTTP/1.1"
    server_version = "agentgraph-webhook"

    def _answer(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _do(self, method: str) -> None:
        hook = self.hook
        try:
            length = int(self.headers.get("Content-Length") or 0)
            if length > hook.max_body:
                self.close_connection = True
                raise _HttpError(413, f"the body is {length} bytes; at most {hook.max_body} are accepted")
            body = self.rfile.read(length) if length else b""
            status, out = hook.handle(method, self.path, self.headers, body)
        except _HttpError as exc:
            with hook._lock:
                hook.stats["rejected"] += 1
            status, out = exc.status, {"error": str(exc), "reason": status_name(exc.status)}
        except Exception as exc:  # a bug of ours, or the store failed: still a JSON answer
            logger.exception("webhook: request failed")
            status, out = 500, {"error": f"{type(exc).__name__}: {exc}"}
        self._answer(status, out)

    def do_POST(self) -> None:
        self._do("POST")

    def do_GET(self) -> None:
        self._do("GET")

    def do_PUT(self) -> None:
        self._do("PUT")

    def do_DELETE(self) -> None:
        self._do("DELETE")

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("webhook: " + format, *args)


def status_name(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return str(status)
