"""Live views redraw on a timer, never per event: :class:`Coalescer` calls a flush at most once
per interval (stretched when flushes get slow) and never loses the last request. The timeline
and the dashboard each own one."""

from __future__ import annotations

import inspect
import math
import sys
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

__all__ = ["Coalescer"]


def _importing(name: str) -> bool:
    """Whether module ``name`` is being imported right now (in sys.modules, not yet complete)."""
    spec = getattr(sys.modules.get(name), "__spec__", None)
    return bool(getattr(spec, "_initializing", False))


class Coalescer:
    """Call ``flush()`` at most once per ``interval`` seconds, and never lose the last request.

    :meth:`poke` is the hot path (called for every event): when no flush is pending it starts a
    trailing ``threading.Timer`` that fires one pace after the previous flush began. The pace is
    ``interval``, stretched when flushes are slow so that they take at most ``max_share`` of the
    time (a live view must not slow the runs it shows). Flushes never overlap; ``flush``
    returns whether it sent anything.
    """

    def __init__(
        self, flush: Callable[[], bool], interval: float, *, max_share: float = 0.08
    ) -> None:
        # A bound method is held weakly: a view nobody holds any more stops (and unsubscribes).
        self._flush_ref: Callable[[], Callable[[], bool] | None] = (
            weakref.WeakMethod(flush) if inspect.ismethod(flush) else (lambda: flush)
        )
        self.interval = float(interval)
        self.max_share = max_share
        self._lock = threading.Lock()  # guards _timer
        self.flush_lock = threading.RLock()  # one flush at a time; readers of the model take it too
        self._timer: threading.Timer | None = None
        self._last = -math.inf
        self._cost = 0.0  # seconds the last flushes took (moving average)
        self.closed = False
        #: called once by :meth:`close` (e.g. the view's unsubscribe)
        self.on_close: Callable[[], Any] | None = None

    def listener(self) -> Callable[[Any], None]:
        """An event listener for ``app.listen``: asks for a flush, and flushes at once when a
        run ends and the pace allows (so a view is current when ``invoke`` returns)."""
        c = self

        def on_event(event: Any) -> None:
            if event.kind == "run_end":
                c.soon_or_now()
            elif c._timer is None and not c.closed:
                c._schedule(0.0)

        return on_event

    @property
    def pace(self) -> float:
        """Seconds between two flushes at least, now."""
        return max(self.interval, self._cost / self.max_share)

    def poke(self) -> None:
        """Ask for a flush soon (cheap; safe from any thread)."""
        if self._timer is None and not self.closed:
            self._schedule(0.0)

    def later(self, delay: float) -> None:
        """Ask for a flush in ``delay`` seconds at the earliest."""
        self._schedule(delay)

    def _schedule(self, at_least: float) -> None:
        with self._lock:
            if self._timer is not None or self.closed:
                return
            delay = max(at_least, self._last + self.pace - time.perf_counter(), 0.0)
            timer = threading.Timer(delay, self._fire)
            timer.daemon = True
            self._timer = timer
        timer.start()

    def _fire(self) -> None:
        with self._lock:
            self._timer = None
        with self.flush_lock:  # checked under the lock: a run_end flush may have just happened
            if self.closed:
                return
            wait = self._last + self.pace - time.perf_counter()
            if wait <= 1e-3:
                self._timed()
                return
        self._schedule(wait)  # flushed (at run_end) since this timer was set: keep the pace

    def _timed(self) -> bool:
        flush = self._flush_ref()
        if flush is None:
            self.close()
            return False
        self._last = time.perf_counter()
        cpu = time.thread_time()  # CPU, not wall: waiting for the GIL is not our cost
        try:
            try:
                return flush()
            except AttributeError:
                # plotly looks pandas up in sys.modules without importing it: while another
                # thread is importing it (``app.metrics.to_pandas()`` in a cell as a run ends),
                # it reads a half-made module. Wait for that import (this one blocks until it
                # is done), then flush again.
                if not _importing("pandas"):
                    raise
                import pandas  # noqa: F401

                return flush()
        finally:
            self._cost = 0.7 * self._cost + 0.3 * (time.thread_time() - cpu)

    def run(self) -> bool:
        """Flush now, in this thread (after a flush in progress, if any)."""
        with self.flush_lock:
            if self.closed:
                return False
            return self._timed()

    def soon_or_now(self) -> None:
        """Flush in this thread if the pace allows and nobody is flushing; else :meth:`poke`."""
        if time.perf_counter() - self._last >= self.pace and self.flush_lock.acquire(False):
            try:
                # re-checked under the lock: another thread may have flushed meanwhile
                if not self.closed and time.perf_counter() - self._last >= self.pace:
                    self._timed()
                    return
            finally:
                self.flush_lock.release()
        self.poke()

    def close(self) -> None:
        """No more flushes; cancels a pending one and calls :attr:`on_close`."""
        self.closed = True
        with self._lock:
            timer, self._timer = self._timer, None
            on_close, self.on_close = self.on_close, None
        if timer is not None:
            timer.cancel()
        if on_close is not None:
            on_close()
