"""Record and replay of chat-model calls (and HTTP nodes' requests):
``agentgraph_nb.testing.cassette(path)``.

A cassette is a JSONL file, one model call a line: ``{"request": ..., "response": ...}``, where
the request is the body sent to the server (model, messages, tools, parameters; never the API
key or headers, never whether it streamed) and the response is what came back (the completion,
or every streamed chunk). Replaying serves each call the recorded response of an equal request
not yet used (so parallel nodes may call in any order); a call with no equal recording is a
:class:`~agentgraph_nb.errors.CassetteMismatchError` with a diff against the closest one.
"""

from __future__ import annotations

import contextvars
import difflib
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from agentgraph_nb.errors import CassetteMismatchError

__all__ = ["Cassette", "active_cassette", "cassette"]

_active: contextvars.ContextVar[Cassette | None] = contextvars.ContextVar("agentgraph_nb_cassette", default=None)


def active_cassette() -> Cassette | None:
    """The cassette of the innermost ``with cassette(...)`` around this code, or ``None``."""
    return _active.get()


def _key(request: dict[str, Any]) -> str:
    return json.dumps(request, sort_keys=True, ensure_ascii=False, default=str)


class Cassette:
    """One cassette file, recording or replaying (see :func:`cassette`).

    Attributes:
        path: the JSONL file.
        mode: ``"record"`` or ``"replay"`` (``"auto"`` resolved).
        calls: how many calls were recorded or replayed so far.
    """

    def __init__(self, path: str | Path, mode: Literal["auto", "record", "replay"] = "auto") -> None:
        if mode not in ("auto", "record", "replay"):
            raise ValueError(f"cassette mode must be 'auto', 'record' or 'replay', got {mode!r}")
        self.path = Path(path)
        exists = self.path.exists() and self.path.stat().st_size > 0
        if mode == "auto":
            mode = "replay" if exists else "record"
        if mode == "replay" and not exists:
            raise FileNotFoundError(f"cassette {str(self.path)!r} does not exist (nothing to replay); "
                                    "record it first with mode='record' or 'auto'")
        self.mode: Literal["record", "replay"] = mode
        self.calls = 0
        self._lock = threading.Lock()
        self._entries: list[dict[str, Any]] = []
        self._keys: list[str] = []
        self._used: list[bool] = []
        if mode == "replay":
            with self.path.open(encoding="utf-8") as f:
                for n, line in enumerate(f, 1):
                    if not line.strip():
                        continue
                    try:
                        e = json.loads(line)
                        self._keys.append(_key(e["request"]))
                    except (ValueError, KeyError, TypeError) as exc:
                        raise CassetteMismatchError(f"cassette {str(self.path)!r} line {n} is not a recorded "
                                                    f"call: {exc}", path=str(self.path), index=n - 1) from exc
                    self._entries.append(e)
                    self._used.append(False)
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text("", encoding="utf-8")

    @property
    def replaying(self) -> bool:
        return self.mode == "replay"

    def take(self, request: dict[str, Any], model: str = "", *, what: str = "") -> dict[str, Any]:
        """The recorded response to ``request`` (replay); each recording is used once.
        ``what`` names the call in errors (default: ``model <model>``)."""
        what = what or f"model {model!r}"
        key = _key(request)
        with self._lock:
            for i, k in enumerate(self._keys):
                if not self._used[i] and k == key:
                    self._used[i] = True
                    self.calls += 1
                    return self._entries[i]["response"]  # type: ignore[no-any-return]
            left = [i for i, u in enumerate(self._used) if not u]
        where = f"cassette {str(self.path)!r}"
        if not left:
            raise CassetteMismatchError(
                f"{where} has no recorded call left for this request of {what} (all {len(self._entries)} "
                f"recorded calls were replayed). The run makes more calls than when it was recorded: re-record it "
                f"(delete the file, or cassette(..., mode='record')).\nNew request:\n"
                + json.dumps(request, indent=1, sort_keys=True, ensure_ascii=False, default=str)[:4000],
                path=str(self.path), index=len(self._entries),
            )
        best = max(left, key=lambda i: difflib.SequenceMatcher(None, self._keys[i], key).quick_ratio())
        old = json.dumps(self._entries[best]["request"], indent=1, sort_keys=True, ensure_ascii=False,
                         default=str).splitlines()
        new = json.dumps(request, indent=1, sort_keys=True, ensure_ascii=False, default=str).splitlines()
        diff = "\n".join(difflib.unified_diff(old, new, f"recorded call {best}", "new request", lineterm="", n=2))
        raise CassetteMismatchError(
            f"{where}: a call of {what} does not match any recorded call. The closest is call {best} "
            f"(0-based); the difference:\n{diff}\nRe-record the cassette (delete the file, or "
            "cassette(..., mode='record')) if the change is intended.",
            path=str(self.path), index=best,
        )

    def add(self, request: dict[str, Any], response: dict[str, Any]) -> None:
        """Record one call (appended to the file at once)."""
        line = json.dumps({"request": request, "response": response}, ensure_ascii=False, default=str)
        with self._lock:
            with self.path.open("a", encoding="utf-8") as f:
                f.write(line + "\n")
            self.calls += 1

    def unused(self) -> int:
        """Recorded calls not replayed (so far)."""
        return self._used.count(False)

    def __repr__(self) -> str:
        return f"Cassette({str(self.path)!r}, mode={self.mode!r}, calls={self.calls})"


@contextmanager
def cassette(path: str | Path, mode: Literal["auto", "record", "replay"] = "auto") -> Iterator[Cassette]:
    """Record every chat-model call (and HTTP node request) made inside the block to ``path``
    (JSONL), or replay them.

    ``mode="auto"`` (the default) replays when the file exists and records when it does not;
    ``"record"`` always records (overwriting), ``"replay"`` always replays (no network: a call
    with no equal recording raises :class:`~agentgraph_nb.errors.CassetteMismatchError` showing
    the difference). Streamed calls are recorded chunk by chunk and replay as streams, so
    ``stream(mode="messages")`` works on a replay too. Calls in nodes, in threads and tasks the
    block starts all count.

    Example:
        >>> from agentgraph_nb.testing import cassette
        >>> with cassette("calls.jsonl"):                              # doctest: +SKIP
        ...     app.invoke({"messages": [{"role": "user", "content": "hi"}]})
    """
    cas = Cassette(path, mode)
    token = _active.set(cas)
    try:
        yield cas
    finally:
        _active.reset(token)
