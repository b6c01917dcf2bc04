"""The shape every trigger shares (queue consumers, the file watcher): a source of events, one
run of the graph per event, acknowledged only after the run ends (its checkpoints written).

A trigger runs on an event loop of its own in a background thread (:meth:`Trigger.start`, or a
``with`` block), or on the caller's loop (``await trigger.serve()``). For each event it calls
``app.ainvoke(input, thread_id=...)``; a run that fails is tried again (``max_attempts`` in all,
resuming the same thread from its last checkpoint when the graph has a checkpointer) and then
given up: the event is acknowledged, or moved to a dead-letter queue where the broker has one.
A message that cannot be decoded never starts a run. Progress is in :attr:`Trigger.stats`, the
latest results and failures in :attr:`Trigger.results` and :attr:`Trigger.failures`, and the
callbacks ``on_result(event, output)`` and ``on_error(event, exc)`` see each one as it happens.

Nothing here imports a third-party library.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from agentgraph_nb.errors import TriggerError

__all__ = ["Event", "Trigger"]

logger = logging.getLogger("agentgraph_nb.nodes.trigger")


@dataclass
class Event:
    """One thing that happened to a trigger's source: a message, a changed file.

    Attributes:
        id: the message id (stream entry id, delivery tag, ``topic:partition:offset``) or path.
        input: what the run starts with (a dict), or None when ``error`` is set.
        attempt: 1 for the first run of this event, 2 for its first retry, ...
        error: why the event cannot start a run (a :class:`~agentgraph_nb.errors.MessageDecodeError`).
        raw: the broker's own object (a message, an entry), for ``ack``/``nack``.
    """

    id: str
    input: dict[str, Any] | None
    attempt: int = 1
    error: BaseException | None = None
    raw: Any = field(default=None, repr=False)


class Trigger:
    """Base of the triggers: subclasses implement ``_open``, ``_next``, ``_ack``, ``_retry``,
    ``_give_up`` and ``_close``.

    Args:
        app: the compiled graph to run.
        thread_id: ``thread_id(event) -> str``; default: ``"<kind>:<event id>"`` when the graph
            has a checkpointer (so a retried run resumes the same thread), else no thread.
        max_attempts: runs of one event before it is given up (1: no retry).
        on_result: ``on_result(event, output)`` after each successful run.
        on_error: ``on_error(event, exc)`` after each failed run or undecodable message.
        keep: how many recent results and failures to keep in :attr:`results` / :attr:`failures`.
    """

    kind = "trigger"

    def __init__(
        self,
        app: Any,
        *,
        thread_id: Callable[[Event], str | None] | None = None,
        max_attempts: int = 3,
        on_result: Callable[[Event, Any], Any] | None = None,
        on_error: Callable[[Event, BaseException], Any] | None = None,
        keep: int = 100,
    ) -> None:
        if not hasattr(app, "ainvoke"):
            raise TypeError(f"{self.kind}: give a compiled graph (StateGraph(...).compile()), got {type(app).__name__}")
        if max_attempts < 1:
            raise ValueError(f"{self.kind}: max_attempts must be at least 1, got {max_attempts!r}")
        self.app = app
        self.max_attempts = max_attempts
        self.on_result = on_result
        self.on_error = on_error
        self._thread_id = thread_id
        self.stats = {"events": 0, "runs": 0, "succeeded": 0, "failed": 0, "retried": 0, "given_up": 0, "undecodable": 0,
                      "source_errors": 0}
        self.results: deque[tuple[Event, Any]] = deque(maxlen=keep)
        self.failures: deque[tuple[Event, BaseException]] = deque(maxlen=keep)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._done = threading.Condition()
        self._running = False

    # -- what subclasses implement ----------------------------------------------------------------
    async def _open(self) -> None:
        """Connect to the source; an error here is raised by :meth:`start`."""

    async def _next(self) -> list[Event]:
        """The next events, waiting at most a fraction of a second (so :meth:`stop` is prompt)."""
        raise NotImplementedError

    async def _ack(self, event: Event) -> None:
        """The event's run succeeded (or it was given up): the source may forget it."""

    async def _retry(self, event: Event) -> None:
        """The event's run failed and will be tried again: hand it back (or keep it) for later."""

    async def _give_up(self, event: Event, exc: BaseException) -> None:
        """The event failed ``max_attempts`` times or cannot be decoded: dead-letter it or ack it."""
        await self._ack(event)

    async def _close(self) -> None:
        """Disconnect from the source."""

    def _skip(self, event: Event) -> bool:
        """True to pass over an event of this batch (it comes again later: Kafka, after a retry)."""
        return False

    # -- running ----------------------------------------------------------------------------------
    def thread_of(self, event: Event) -> str | None:
        if self._thread_id is not None:
            return self._thread_id(event)
        if getattr(self.app, "checkpointer", None) is None:
            return None
        return f"{self.kind}:{event.id}"

    async def _handle(self, event: Event) -> None:
        self.stats["events"] += event.attempt == 1
        if event.error is not None:
            self.stats["undecodable"] += 1
            await self._failed(event, event.error, final=True)
            return
        tid = self.thread_of(event)
        inp: Any = event.input
        if event.attempt > 1 and tid is not None and self.app.get_state(tid).checkpoint_id is not None:
            inp = None  # resume the failed run from its last checkpoint
        self.stats["runs"] += 1
        try:
            out = await self.app.ainvoke(inp, thread_id=tid)
        except Exception as exc:
            final = event.attempt >= self.max_attempts
            await self._failed(event, exc, final=final)
            return
        # only now: the run has ended and its checkpoints are written
        await self._source(self._ack(event), event)
        self.stats["succeeded"] += 1
        self.results.append((event, out))
        self._notify()
        if self.on_result is not None:
            self._call(self.on_result, event, out)

    async def _failed(self, event: Event, exc: BaseException, *, final: bool) -> None:
        if event.error is None:
            self.stats["failed"] += 1
        self.failures.append((event, exc))
        logger.warning("%s: event %s (attempt %d) failed: %s", self.kind, event.id, event.attempt, exc)
        if final:
            self.stats["given_up"] += 1
            await self._source(self._give_up(event, exc), event)
        else:
            self.stats["retried"] += 1
            await self._source(self._retry(event), event)
        self._notify()
        if self.on_error is not None:
            self._call(self.on_error, event, exc)

    async def _source(self, op: Any, event: Event) -> None:
        """Acknowledge, retry or dead-letter; if the broker is gone meanwhile, the message stays
        unacknowledged there (it comes again) and the trigger goes on."""
        try:
            await op
        except Exception as exc:
            self.stats["source_errors"] += 1
            self.failures.append((event, exc))
            logger.warning("%s: could not settle event %s with its source: %s", self.kind, event.id, exc)

    def _call(self, fn: Callable[..., Any], *args: Any) -> None:
        try:
            fn(*args)
        except Exception:  # a callback's bug must not stop the trigger
            logger.exception("%s: callback %r failed", self.kind, fn)

    def _notify(self) -> None:
        with self._done:
            self._done.notify_all()

    async def serve(self) -> None:
        """Run on the caller's event loop until :meth:`stop` (e.g. ``asyncio.create_task(t.serve())``)."""
        await self._serve(None)

    async def _serve(self, ready: Callable[[BaseException | None], None] | None) -> None:
        if self._running:
            raise TriggerError(f"{self!r} is already running")
        self._running = True
        self._stop.clear()
        try:
            try:
                await self._open()
            except BaseException as exc:
                if ready is not None:
                    ready(exc)
                    return
                raise
            if ready is not None:
                ready(None)
            try:
                while not self._stop.is_set():
                    for event in await self._next():
                        if self._skip(event):
                            continue
                        await self._handle(event)
                        if self._stop.is_set():
                            break
            finally:
                await self._close()
        finally:
            self._running = False
            self._notify()

    def start(self, timeout: float = 30.0) -> Trigger:
        """Start in a background thread with an event loop of its own; returns once the source
        is open (raising what opening it raised: a refused connection, a missing directory)."""
        if self._thread is not None and self._thread.is_alive():
            raise TriggerError(f"{self!r} is already running; stop() it first")
        box: list[BaseException | None] = []
        opened = threading.Event()

        def ready(exc: BaseException | None) -> None:
            box.append(exc)
            opened.set()

        def main() -> None:
            try:
                asyncio.run(self._serve(ready))
            except BaseException as exc:  # pragma: no cover - an error of the loop itself
                logger.exception("%s stopped on an error", self.kind)
                if not opened.is_set():
                    ready(exc)

        self._thread = threading.Thread(target=main, name=f"agentgraph-{self.kind}", daemon=True)
        self._thread.start()
        if not opened.wait(timeout):
            self.stop()
            raise TriggerError(f"{self!r} did not open its source within {timeout:g} s")
        if box and box[0] is not None:
            self._thread.join(timeout)
            self._thread = None
            raise box[0]
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Stop taking events: the run in progress finishes (and is acknowledged), then the
        source is closed. Waits for the background thread."""
        self._stop.set()
        t = self._thread
        if t is not None and t is not threading.current_thread():
            t.join(timeout)
            if t.is_alive():
                logger.warning("%s: still finishing a run after %g s", self.kind, timeout)
            else:
                self._thread = None

    @property
    def running(self) -> bool:
        return self._running

    def wait(self, events: int = 1, timeout: float = 30.0) -> bool:
        """Block until ``events`` events have ended (succeeded, or given up); True if they have."""

        def ended() -> bool:
            return self.stats["succeeded"] + self.stats["given_up"] >= events

        with self._done:
            return self._done.wait_for(ended, timeout)

    def __enter__(self) -> Trigger:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        s = self.stats
        return (f"<{type(self).__name__} {'running' if self._running else 'stopped'}: {s['succeeded']} runs ok, "
                f"{s['failed']} failed, {s['given_up']} given up>")


def as_input(body: Any, into: str | None, meta: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A run's input from a message body: ``{into: body}``, or the body itself (a dict) when
    ``into`` is None."""
    if into is None:
        if not isinstance(body, Mapping):
            raise TypeError(f"into=None needs a message body that is a JSON object, got {type(body).__name__}")
        out = dict(body)
    else:
        out = {into: body}
    if meta:
        out.update(meta)
    return out
