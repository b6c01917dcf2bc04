"""Which run a GraphView shows.

A view attached to an app hears every run of it: the user's own runs, a Debugger's steps on
another thread, a batch. It keeps one picture (node statuses and details) per thread, or per
run for runs without a thread, and shows one of them: the latest run started ("follow"), or the
thread or run it is pinned to. So a view at the top of a notebook says which run it shows and,
pinned, keeps showing it while a Debugger further down steps through another thread.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

__all__ = ["Picture", "RunPictures"]

#: Pictures kept (the least recently started go first; the shown and pinned ones stay).
_LIMIT = 16
#: Runs offered in the view's "pin to" menu.
_MENU = 8


def key_of(thread_id: str | None, run_id: str) -> str:
    """``"thread:<id>"`` for a run on a thread, else ``"run:<id>"``."""
    return f"thread:{thread_id}" if thread_id else f"run:{run_id}"


def _name(key: str) -> str:
    kind, _, ident = key.partition(":")
    if kind == "run":
        return f"run {ident[:8]}"
    return f"{kind} {ident}" if ident else "this view"


class Picture:
    """What one thread (or run) looks like in the view: statuses and details by node."""

    __slots__ = ("active", "details", "key", "outcome", "run_id", "status", "step")

    def __init__(self, key: str) -> None:
        self.key = key
        self.status: dict[str, str] = {}
        self.details: dict[str, dict[str, str]] = {}
        self.active: set[str] = set()
        self.run_id = ""
        self.step = 0
        #: "" (no run seen), "running", "completed", "interrupted" or "failed".
        self.outcome = ""

    def copy_from(self, other: Picture) -> None:
        self.status = dict(other.status)
        self.details = dict(other.details)

    @property
    def state(self) -> str:
        """The run's state in the words the view shows: running, ended, paused, failed."""
        if self.active:
            return "running"
        return {"completed": "ended", "interrupted": "paused", "failed": "failed"}.get(
            self.outcome, ""
        )

    def label(self) -> str:
        """E.g. ``"thread t1 · running (step 2)"``, ``"run 1a2b3c4d · failed at step 3"``.

        A run that completed says "run ended", not "finished": a Debugger's Step is a run
        that completes after one superstep, with more of the graph left to run."""
        name = _name(self.key)
        if not self.key:
            return ""
        state = self.state
        if state == "running":
            return f"{name} \u00b7 running (step {self.step})"
        if state == "ended":
            return f"{name} \u00b7 run ended at step {self.step}"
        if state:
            return f"{name} \u00b7 {state} at step {self.step}"
        return f"{name} \u00b7 no run yet"

    def describe(self, pinned: bool) -> dict[str, Any]:
        kind, _, ident = self.key.partition(":")
        return {
            "key": self.key,
            "thread_id": ident if kind == "thread" else None,
            "run_id": self.run_id or (ident if kind == "run" else ""),
            "state": self.state,
            "step": self.step,
            "pinned": pinned,
            "label": self.label(),
        }


class RunPictures:
    """The pictures of a view and which one it shows (callers hold the view's lock)."""

    def __init__(self, limit: int = _LIMIT) -> None:
        self.limit = limit
        self.pictures: OrderedDict[str, Picture] = OrderedDict()
        self.shown: str | None = None
        self.pin: str | None = None
        #: The key of the run started last (what an unpinned view goes back to).
        self.latest: str | None = None

    def current(self) -> Picture | None:
        return self.pictures.get(self.shown) if self.shown is not None else None

    def shown_picture(self) -> Picture:
        """The picture shown, made (empty, key "") when there is none: statuses set by hand
        (a Debugger, the user) belong to it."""
        pic = self.current()
        if pic is None:
            pic = self._make("")
            self.shown = ""
        return pic

    def _make(self, key: str) -> Picture:
        pic = Picture(key)
        self.pictures[key] = pic
        self._evict()
        return pic

    def _evict(self) -> None:
        while len(self.pictures) > self.limit:
            for k, p in self.pictures.items():
                if k not in (self.shown, self.pin, self.latest) and not p.active:
                    del self.pictures[k]
                    break
            else:
                return

    def for_event(self, thread_id: str | None, run_id: str, starting: bool) -> tuple[Picture, bool]:
        """The picture an event of this run updates, made if new, and whether it is new. A new
        picture continues from the one shown when it appears without a run start (a view
        attached mid-run), so nothing drawn is lost; the caller decides for a run start."""
        key = key_of(thread_id, run_id)
        pic = self.pictures.get(key)
        if pic is not None:
            if starting:
                self.pictures.move_to_end(key)
            return pic, False
        pic = self._make(key)
        if not starting:
            shown = self.current()
            if shown is not None:
                pic.copy_from(shown)
        return pic, True

    def wants(self, pic: Picture, starting: bool) -> bool:
        """Whether an event of ``pic``'s run makes the view show it: always when pinned to it;
        unpinned, when its run starts or when the run shown is over (or nothing is shown)."""
        if self.pin is not None:
            return pic.key == self.pin
        if starting:
            return True
        shown = self.current()
        return shown is None or shown is pic or not shown.active

    def show(self, key: str | None) -> Picture | None:
        self.shown = key
        if key is None:
            return None
        pic = self.pictures.get(key)
        if pic is None:
            pic = self._make(key)
        return pic

    def set_pin(self, key: str | None) -> None:
        """Pin to a thread or run key (None: follow the latest run again)."""
        self.pin = key
        if key is not None:
            self.show(key)
        elif self.latest is not None and self.latest in self.pictures:
            self.shown = self.latest

    def menu(self) -> list[dict[str, str]]:
        """The runs the view can be pinned to, most recent first."""
        keys = [k for k in reversed(self.pictures) if k]
        return [{"key": k, "label": _name(k)} for k in keys[:_MENU]]

    def clear(self) -> None:
        self.pictures.clear()
        self.shown = self.pin if self.pin is not None else None
        self.latest = None
        if self.pin is not None:
            self._make(self.pin)
