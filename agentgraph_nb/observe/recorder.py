"""Keeping a graph's events for later: :class:`EventRecorder`, a bounded, thread-safe store.

``app.record()`` creates one and attaches it; :meth:`CompiledGraph.events` (a pandas frame), the
timeline and the dashboard read from it.

Recording is cheap: one small tuple appended to a bounded deque per event, no lock (a deque
append is atomic), and nothing kept that the garbage collector has to walk again and again or
that holds old states alive: an event's ``data`` is kept only where it is small and useful
(the exception of ``node_error``/``node_retry``, the status and error of ``run_end``, the
interrupts of ``interrupt``, the handler of ``error_caught``, the function and outcome of
``compensate``, where a ``node_worker`` execution ran: one shared dict per Ray worker). Events read back are :class:`~agentgraph_nb.types.Event` objects
with ``data`` None for the other kinds.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from functools import partial
from itertools import islice
from typing import Any

from agentgraph_nb.types import Event

__all__ = ["EventRecorder", "Record", "as_record", "to_event"]

#: A recorded event: ``(kind, run_id, thread_id, step, node, ts, duration, attempt, task_id, data,
#: namespace)``, the fields of :class:`~agentgraph_nb.types.Event` in order.
Record = tuple[str, str, "str | None", int, str, float, float, int, str, Any, str]

_KEEP_DATA = frozenset({"node_error", "node_retry", "interrupt"})


_WORKERS: dict[Any, dict[str, Any]] = {}  # one kept dict per Ray worker, shared by its events


def _worker_data(data: Any) -> Any:
    """What is kept of a ``node_worker`` event: ``{"worker", "host", "pid", "node_id", "ip"}``,
    the same dict object for every event of one worker."""
    if not isinstance(data, dict):
        return None
    key = (data.get("worker"), data.get("node_id"))
    kept = _WORKERS.get(key)
    if kept is None:
        kept = {k: data.get(k) for k in ("worker", "host", "pid", "node_id", "ip")}
        if len(_WORKERS) < 100_000:
            _WORKERS[key] = kept
    return kept


def _recovery_data(data: Any) -> Any:
    """What is kept of a ``compensate`` / ``error_caught`` event: which compensation or handler,
    and how it went (strings and booleans only)."""
    return {k: v for k, v in data.items() if k != "error" or isinstance(v, str)} if isinstance(data, dict) else None


def as_record(ev: Event) -> Record:
    """The tuple the recorder keeps for ``ev`` (``data`` trimmed as described above)."""
    kind = ev.kind
    data = ev.data
    if kind == "run_end":
        data = (
            {"status": data.get("status"), "error": data.get("error")}
            if isinstance(data, dict)
            else None
        )
    elif kind == "run_start" and ev.namespace and isinstance(data, dict):
        # a subgraph run: which run and task started it (a timeline nests it under that bar)
        data = {"parent_run_id": data.get("parent_run_id"), "parent_task_id": data.get("parent_task_id")}
    elif kind == "compensate" or kind == "error_caught":
        data = _recovery_data(data)
    elif kind == "node_worker":
        data = _worker_data(data)
    elif kind not in _KEEP_DATA:
        data = None
    return (
        kind,
        ev.run_id,
        ev.thread_id,
        ev.step,
        ev.node,
        ev.ts,
        ev.duration,
        ev.attempt,
        ev.task_id,
        data,
        ev.namespace,
    )


def _copy(read: Callable[[], list[Record]]) -> list[Record]:
    # Writers never lock (a deque append is atomic); a reader that raced one (another thread
    # appended while the copy ran, e.g. because a garbage collection let it in) just reads again.
    while True:
        try:
            return read()
        except RuntimeError:  # "deque mutated during iteration"
            continue


def _newest(d: deque[Record], m: int) -> list[Record]:
    return list(islice(reversed(d), m))


def to_event(rec: Record) -> Event:
    """An :class:`~agentgraph_nb.types.Event` back from a record."""
    return Event(*rec)


class EventRecorder:
    """A bounded store of a graph's events, safe to feed from any thread (the engine calls
    :meth:`on_event` from worker threads during batches).

    Args:
        max_events: how many events to keep; the oldest are dropped first.

    Example:
        >>> rec = app.record()                    # doctest: +SKIP
        >>> app.invoke({"x": 1})                  # doctest: +SKIP
        >>> [e.kind for e in rec.for_run(app.last_run_id)][:2]   # doctest: +SKIP
        ['run_start', 'step_start']
    """

    __slots__ = ("_events", "_unsubscribe", "max_events")

    def __init__(self, max_events: int = 200_000) -> None:
        if not isinstance(max_events, int) or isinstance(max_events, bool) or max_events < 1:
            raise ValueError(f"max_events must be a positive int, got {max_events!r}")
        self.max_events = max_events
        self._events: deque[Record] = deque(maxlen=max_events)
        self._unsubscribe: Callable[[], None] | None = None

    # -- feeding ---------------------------------------------------------------------------------
    def on_event(self, ev: Event) -> None:
        """The listener: keep ``ev`` (one append). Same as ``append(as_record(ev))``, inlined:
        this runs for every event of every run."""
        kind = ev.kind
        if kind in _KEEP_DATA:
            data = ev.data
        elif kind == "run_end":
            d = ev.data
            data = (
                {"status": d.get("status"), "error": d.get("error")}
                if isinstance(d, dict)
                else None
            )
        elif kind == "run_start" and ev.namespace and isinstance(ev.data, dict):
            data = {"parent_run_id": ev.data.get("parent_run_id"), "parent_task_id": ev.data.get("parent_task_id")}
        elif kind == "compensate" or kind == "error_caught":
            data = _recovery_data(ev.data)
        elif kind == "node_worker":
            data = _worker_data(ev.data)
        else:
            data = None
        self._events.append(
            (
                kind,
                ev.run_id,
                ev.thread_id,
                ev.step,
                ev.node,
                ev.ts,
                ev.duration,
                ev.attempt,
                ev.task_id,
                data,
                ev.namespace,
            )
        )

    def extend(self, events: Iterable[Event]) -> None:
        """Keep these events, as if they had been emitted (e.g. from ``stream(mode="events")``)."""
        for ev in events:
            self.on_event(ev)

    def attach(self, app: Any) -> EventRecorder:
        """Record every event of ``app`` from now on (``app.listen(self.on_event)``).
        Attaching again (to the same or another graph) first detaches. Returns ``self``."""
        self.detach()
        self._unsubscribe = app.listen(self.on_event)
        return self

    def detach(self) -> None:
        """Stop recording (what was recorded stays)."""
        unsubscribe, self._unsubscribe = self._unsubscribe, None
        if unsubscribe is not None:
            unsubscribe()

    @property
    def attached(self) -> bool:
        """Whether the recorder is listening to a graph."""
        return self._unsubscribe is not None

    def clear(self) -> None:
        """Forget every recorded event."""
        self._events.clear()

    # -- reading ---------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._events)

    def records(self) -> list[Record]:
        """Every kept event as a :data:`Record` tuple, oldest first (cheaper than :meth:`events`)."""
        return _copy(lambda: list(self._events))

    def records_since(self, cursor: Any = None) -> tuple[list[Record], Any]:
        """The records kept after ``cursor`` (None: all), oldest first, and the cursor to pass
        next time. Costs time in proportion to the new records only. If records were dropped
        since the cursor (more than ``max_events`` new ones), returns every kept record."""
        d = self._events
        if cursor is None:
            new = _copy(lambda: list(d))
            return new, (new[-1] if new else None)
        m = 256
        while True:
            chunk = _copy(partial(_newest, d, m))  # newest first
            for i, rec in enumerate(chunk):
                if rec is cursor:
                    new = chunk[:i]
                    new.reverse()
                    return new, (new[-1] if new else cursor)
            if len(chunk) < m:  # the cursor was dropped: everything kept is new
                chunk.reverse()
                return chunk, (chunk[-1] if chunk else cursor)
            m *= 4

    def events(self) -> list[Event]:
        """Every kept event, oldest first."""
        return [Event(*r) for r in self.records()]

    def runs(self) -> list[str]:
        """Ids of the runs with kept events, in the order they first appear."""
        return list(dict.fromkeys(r[1] for r in self.records()))

    def threads(self) -> list[str]:
        """Ids of the threads with kept events, in the order they first appear."""
        return list(dict.fromkeys(r[2] for r in self.records() if r[2] is not None))

    def for_run(self, run_id: str) -> list[Event]:
        """The kept events of one run, in the order they happened."""
        return [Event(*r) for r in self.records() if r[1] == run_id]

    def for_thread(self, thread_id: str) -> list[Event]:
        """The kept events of every run on one thread, in the order they happened."""
        return [Event(*r) for r in self.records() if r[2] == thread_id]

    def __repr__(self) -> str:
        recs = self.records()
        runs = len({r[1] for r in recs})
        state = "attached" if self.attached else "detached"
        return (
            f"EventRecorder({len(recs)} event{'' if len(recs) == 1 else 's'}, {runs} run{'' if runs == 1 else 's'}, "
            f"max {self.max_events}, {state})"
        )
