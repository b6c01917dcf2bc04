"""Which Ray worker runs which node execution *now* (opt-in: :meth:`RayExecutor.watch`).

The driver learns where an execution ran when its result comes back (the ``node_worker``
event). A live view (the Dashboard's worker panel) wants to know it while the node runs. Once
an executor watches, each execution tells it when it starts: the worker appends its Ray task id
and where it is to a list, and a thread of the worker process sends that list to a small actor
(``num_cpus=0``) as soon as it has items, at most every ``SEND_EVERY`` seconds; the driver
takes what arrived when it asks, without waiting (:class:`Starts`).

Cost: one list append per node execution on the worker while watched (the sending is off the
node's path), nothing at all otherwise. An execution shorter than about ``SEND_EVERY`` may be
back before its start report arrives: it was never "in flight" for the view, which is fine.
Importing this module imports no Ray.
"""

from __future__ import annotations

import threading
import time
from typing import Any

__all__ = ["SEND_EVERY", "Starts", "started"]

SEND_EVERY = 0.1  # seconds: a worker sends its start reports at most this often


class _StartsActor:
    """The actor: start reports since the driver last took them (task id -> where)."""

    def __init__(self) -> None:
        self._new: dict[str, dict[str, Any]] = {}

    def add(self, items: list[tuple[str, dict[str, Any]]]) -> None:
        for task_id, where in items:
            self._new[task_id] = where

    def take(self) -> dict[str, dict[str, Any]]:
        new, self._new = self._new, {}
        return new


class Starts:
    """The driver's side: creates the actor and takes its reports without blocking.

    Args:
        ray: the ``ray`` module (initialised).
        name: the actor's name (the workers look it up by name, once per process).
    """

    def __init__(self, ray: Any, name: str) -> None:
        self.name = name
        self._ray = ray
        self._actor = ray.remote(num_cpus=0, max_restarts=0)(_StartsActor).options(name=name).remote()
        self._pending: Any = None  # the take() asked last, until it is back
        self._lock = threading.Lock()

    def poll(self) -> dict[str, dict[str, Any]]:
        """Reports that arrived since the last poll ({} when the actor has not answered yet)."""
        ray = self._ray
        with self._lock:
            got: dict[str, dict[str, Any]] = {}
            if not ray.is_initialized():  # this process left the cluster: a ray call would start a new one
                return got
            if self._pending is not None:
                ready, _ = ray.wait([self._pending], timeout=0)
                if not ready:
                    return got
                try:
                    got = ray.get(self._pending)
                except Exception:  # the actor died (cluster gone): no live placement, not a failure
                    got = {}
            self._pending = self._actor.take.remote()
            return got

    def close(self) -> None:
        try:
            self._ray.kill(self._actor)
        except Exception:  # already gone with its cluster
            pass


# -- the worker's side ----------------------------------------------------------------------------
_queue: list[tuple[str, str, dict[str, Any]]] = []  # (actor name, task id, where)
_wake = threading.Event()
_sender: threading.Thread | None = None
_handles: dict[str, Any] = {}
_gone: set[str] = set()  # actors no longer there (the driver stopped watching)
_sender_lock = threading.Lock()


def started(name: str, where: dict[str, Any]) -> None:
    """In a worker: report that this Ray task (a node execution) starts here."""
    import ray

    _queue.append((name, ray.get_runtime_context().get_task_id() or "", where))
    _wake.set()
    global _sender
    if _sender is None:
        with _sender_lock:
            if _sender is None:
                _sender = threading.Thread(target=_send_loop, name="agentgraph_nb-starts", daemon=True)
                _sender.start()


def _send_loop() -> None:
    import ray

    while True:
        _wake.wait()
        _wake.clear()
        items = _queue[:]
        del _queue[: len(items)]  # appends made meanwhile stay for the next round
        by_actor: dict[str, list[tuple[str, dict[str, Any]]]] = {}
        for name, task_id, where in items:
            by_actor.setdefault(name, []).append((task_id, where))
        for name, batch in by_actor.items():
            if name in _gone:
                continue
            try:
                handle = _handles.get(name)
                if handle is None:
                    handle = _handles[name] = ray.get_actor(name)
                handle.add.remote(batch)
            except Exception:  # the driver stopped watching (its actor is gone): drop
                _handles.pop(name, None)
                _gone.add(name)
        time.sleep(SEND_EVERY)
