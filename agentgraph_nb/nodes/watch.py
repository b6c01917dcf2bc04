"""A file-watching trigger (extra ``watch``, on watchfiles): one run per new or changed file
under a directory.

Example:
    >>> from agentgraph_nb.nodes.watch import FileTrigger
    >>> with FileTrigger(app, "inbox", "*.csv") as t:  # doctest: +SKIP
    ...     t.wait(1)

Each run's input is ``{"path": "sub/x.csv", "change": "added"}``: the path relative to the
directory (so a file node confined to the same ``base_dir`` reads it as it is), and what
happened. Changes within ``debounce`` seconds are taken together, so a file written in several
steps starts one run. A file whose real path leads outside the directory (a symlink) is ignored.
A failed run is tried again after ``retry_delay`` (``max_attempts`` in all), then given up
(logged, kept in :attr:`~agentgraph_nb.nodes._trigger.Trigger.failures`).
"""

from __future__ import annotations

import asyncio
import fnmatch
import os
import time
from pathlib import Path
from typing import Any

import watchfiles

from agentgraph_nb.errors import TriggerError
from agentgraph_nb.nodes._trigger import Event, Trigger

__all__ = ["FileTrigger"]

_CHANGES = {watchfiles.Change.added: "added", watchfiles.Change.modified: "modified", watchfiles.Change.deleted: "deleted"}


class FileTrigger(Trigger):
    """Runs a graph once per new or changed file matching ``pattern`` under ``base_dir``.

    Args:
        app: the compiled graph.
        base_dir: the directory watched (with its subdirectories).
        pattern: an ``fnmatch`` pattern matched against the path relative to ``base_dir``
            (``*`` also crosses directories: ``"*.csv"`` matches ``"a/b.csv"``).
        changes: which changes start a run: ``"added"``, ``"modified"``, ``"deleted"``.
        initial: also one run per file already there when the trigger starts.
        into: the input key for the relative path.
        debounce: seconds of quiet that end a batch of changes.
        retry_delay: seconds before a failed run is tried again.
        **kwargs: ``thread_id``, ``max_attempts``, ``on_result``, ``on_error``.
    """

    kind = "file"

    def __init__(
        self,
        app: Any,
        base_dir: str | os.PathLike[str],
        pattern: str = "*",
        *,
        changes: tuple[str, ...] = ("added", "modified"),
        initial: bool = False,
        into: str = "path",
        debounce: float = 0.2,
        retry_delay: float = 0.5,
        **kwargs: Any,
    ) -> None:
        super().__init__(app, **kwargs)
        bad = [c for c in changes if c not in _CHANGES.values()]
        if bad or not changes:
            raise ValueError(f"FileTrigger: changes must be some of added, modified, deleted; got {changes!r}")
        self.base_dir = Path(base_dir)
        self.pattern = pattern
        self.changes = frozenset(changes)
        self.initial = initial
        self.into = into
        self.debounce_ms = max(1, int(debounce * 1000))
        self.retry_delay = retry_delay
        self._root: Path | None = None
        self._inbox: asyncio.Queue[Event] | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._stop_watch: asyncio.Event | None = None
        self._later: list[tuple[float, Event]] = []
        self._seq = 0

    def _relative(self, path: str) -> str | None:
        """The path relative to the base directory, or None (outside, or not matching)."""
        assert self._root is not None
        p = Path(path)
        try:
            real = p.resolve()
            rel = real.relative_to(self._root)
        except (ValueError, OSError):
            return None
        text = rel.as_posix()
        return text if fnmatch.fnmatch(text, self.pattern) else None

    def _event(self, rel: str, change: str) -> Event:
        self._seq += 1
        stamp = ""
        with_time = self._root / rel if self._root is not None else None
        if with_time is not None and change != "deleted":
            try:
                stamp = str(with_time.stat().st_mtime_ns)
            except OSError:
                stamp = str(self._seq)
        return Event(f"{rel}@{stamp or self._seq}", {self.into: rel, "change": change})

    async def _open(self) -> None:
        if not self.base_dir.is_dir():
            raise TriggerError(f"FileTrigger: {str(self.base_dir)!r} is not a directory (create it, or fix the path)")
        self._root = self.base_dir.resolve()
        self._inbox = asyncio.Queue()
        self._stop_watch = asyncio.Event()
        self._later = []
        ready = asyncio.get_running_loop().create_future()
        self._watcher = asyncio.create_task(self._watch(ready))
        await ready  # the watcher runs: no change made from now on is missed
        if self.initial:
            for p in sorted(self._root.rglob("*")):
                rel = self._relative(str(p)) if p.is_file() else None
                if rel is not None:
                    self._inbox.put_nowait(self._event(rel, "added"))

    async def _watch(self, ready: asyncio.Future[None]) -> None:
        assert self._inbox is not None and self._root is not None
        try:
            async for batch in watchfiles.awatch(
                self._root, stop_event=self._stop_watch, debounce=self.debounce_ms, step=50, rust_timeout=100,
                yield_on_timeout=True, recursive=True,
            ):
                if not ready.done():
                    ready.set_result(None)
                last: dict[str, str] = {}
                for change, path in batch:
                    rel = self._relative(path)
                    if rel is None:
                        continue
                    kind = _CHANGES[change]
                    # a file added then written in one batch is one new file
                    last[rel] = "added" if last.get(rel) == "added" and kind == "modified" else kind
                for rel, kind in sorted(last.items()):
                    if kind in self.changes:
                        self._inbox.put_nowait(self._event(rel, kind))
        except BaseException as exc:
            if not ready.done():
                ready.set_exception(exc)
            raise

    async def _next(self) -> list[Event]:
        now = time.monotonic()
        due = [e for t, e in self._later if t <= now]
        if due:
            self._later = [(t, e) for t, e in self._later if t > now]
            return due
        assert self._inbox is not None
        wait = 0.2
        if self._later:
            wait = max(0.001, min(wait, min(t for t, _ in self._later) - now))
        try:
            first = await asyncio.wait_for(self._inbox.get(), wait)
        except asyncio.TimeoutError:
            return []
        out = [first]
        while not self._inbox.empty():
            out.append(self._inbox.get_nowait())
        return out

    async def _retry(self, event: Event) -> None:
        self._later.append((time.monotonic() + self.retry_delay, Event(event.id, event.input, event.attempt + 1)))

    async def _close(self) -> None:
        if self._stop_watch is not None:
            self._stop_watch.set()
        if self._watcher is not None:
            try:
                await asyncio.wait_for(self._watcher, 5)
            except (asyncio.TimeoutError, asyncio.CancelledError, Exception):
                self._watcher.cancel()
            self._watcher = None
