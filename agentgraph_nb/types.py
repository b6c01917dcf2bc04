"""Public value types: routing (:class:`Send`, :class:`Command`), :class:`RetryPolicy`,
:class:`StateSnapshot`, :class:`Interrupt`, :class:`NodeFailure` (where a run failed) and the run
:class:`Event`.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, Literal, TypeVar

__all__ = [
    "EVENT_KINDS",
    "CachePolicy",
    "CaughtError",
    "Command",
    "Event",
    "EventKind",
    "Interrupt",
    "NodeFailure",
    "Overwrite",
    "RetryPolicy",
    "Send",
    "SnapshotTask",
    "StateSnapshot",
    "default_retry_on",
    "retry_after",
]


class Send:
    """Run ``node`` once with ``arg`` as its input (instead of the state) in the next superstep.

    Return a list of these from a router for dynamic fan-out (map-reduce); the results merge back
    through the reducers in the order the ``Send`` objects were emitted.

    Example:
        >>> def fan_out(state):
        ...     return [Send("summarize", {"doc": d}) for d in state["docs"]]
    """

    __slots__ = ("arg", "node")

    def __init__(self, node: str, arg: Any) -> None:
        self.node = node
        self.arg = arg

    def __repr__(self) -> str:
        return f"Send(node={self.node!r}, arg={self.arg!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Send) and other.node == self.node and other.arg == self.arg

    def __hash__(self) -> int:
        return hash(self.node)


N = TypeVar("N")


@dataclass(frozen=True)
class Command(Generic[N]):
    """Returned by a node to update the state *and* choose what runs next; passed to
    ``invoke`` to resume an interrupted thread.

    Generic over the names it may go to, as in LangGraph: a node annotated
    ``-> Command[Literal["a", "b"]]`` is drawn (and checked for reachability) with edges to
    ``a`` and ``b``, as if added with ``destinations=("a", "b")``.

    Attributes:
        update: a partial state update, as a node would return it.
        goto: a node name, a :class:`Send`, or a sequence of them, to run next
            (in addition to the node's static edges). In a ``Command`` passed to ``invoke``
            on a paused thread, they run in the pending superstep, next to the nodes waiting there.
        resume: the answer to a pending :func:`~agentgraph_nb.interrupt` (input to ``invoke``),
            or a mapping of interrupt id to answer when several are pending.
        graph: ``None`` (this graph) or ``Command.PARENT``: returned by a node of a subgraph, the
            update and ``goto`` apply to the parent graph, as the subgraph node's own result
            (a handoff: ``Command(goto="agent_b", graph=Command.PARENT)``).

    Example:
        >>> def review(state) -> Command[Literal["publish", "revise"]]:
        ...     return Command(update={"ok": True}, goto="publish")
    """

    update: Mapping[str, Any] | Any = None
    goto: str | Send | Sequence[str | Send] = ()
    resume: Any = None
    graph: str | None = None

    PARENT: ClassVar[str] = "__parent__"


@dataclass(frozen=True)
class Overwrite:
    """Wrap a value in an update to *replace* a key's value instead of merging it through the
    key's reducer: ``return {"notes": Overwrite([])}`` empties a list that ``operator.add``
    otherwise appends to. Works in ``update_state`` too (e.g. to edit a reducer key in a fork).
    """

    value: Any


def _http_status(exc: BaseException) -> int | None:
    """The HTTP status an error carries, duck-typed so that no client library is imported:
    ``exc.status_code`` (openai, anthropic) or ``exc.response.status_code`` (httpx, requests)."""
    for get in (lambda: exc.status_code, lambda: exc.response.status_code):  # type: ignore[attr-defined]
        try:
            status = get()
        except Exception:  # absent, or a property that raises (httpx's .request/.response)
            continue
        if isinstance(status, int) and not isinstance(status, bool) and 100 <= status <= 599:
            return status
    return None


# Transient network errors of client libraries that are not the builtin ConnectionError or
# TimeoutError (requests' are OSErrors, which are otherwise not retried), by class name
_NETWORK_ERROR_NAMES = ("ConnectionError", "Timeout", "TimeoutError", "TimeoutException")

# Mistakes in the code, not in the weather: retrying cannot help
_NEVER_RETRIED = (
    OSError,
    ValueError,
    TypeError,
    LookupError,
    RuntimeError,
    ArithmeticError,
    AttributeError,
    NameError,
    ImportError,
    SyntaxError,
    AssertionError,
    StopIteration,
    StopAsyncIteration,
)


def default_retry_on(exc: BaseException) -> bool:
    """The default retry rule: retry what looks transient, never a programming error.

    Retried: HTTP errors with status 429 or 5xx, ``ConnectionError``, ``TimeoutError``, the
    connection and timeout errors of HTTP clients (``requests.ConnectionError``,
    ``requests.Timeout``, ``httpx.TimeoutException``, ...) and any exception not listed below.
    Not retried: HTTP errors with any other status (401, 404, ...), ``ValueError``,
    ``TypeError``, ``LookupError``, ``RuntimeError``, ``ArithmeticError``, ``AttributeError``,
    ``NameError``, ``ImportError``, ``SyntaxError``, ``AssertionError``, ``StopIteration``,
    other ``OSError`` subclasses, and anything that is not an ``Exception`` (interrupts, cancellation,
    ``KeyboardInterrupt``).

    HTTP errors are recognised without importing any client: an error with an int
    ``status_code`` (openai, anthropic) or ``response.status_code`` (httpx, requests).
    """
    if not isinstance(exc, Exception):  # CancelledError, KeyboardInterrupt, GraphInterrupt
        return False
    status = _http_status(exc)
    if status is not None:
        return status == 429 or status >= 500
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return True
    if any(c.__name__.endswith(_NETWORK_ERROR_NAMES) for c in type(exc).__mro__):
        return True
    return not isinstance(exc, _NEVER_RETRIED)


def retry_after(exc: BaseException) -> float | None:
    """Seconds a server asked to wait before retrying (``Retry-After`` as seconds or an HTTP
    date, or ``retry-after-ms``), from ``exc.response.headers`` or ``exc.headers``; else None."""
    for get in (lambda: exc.response.headers, lambda: exc.headers):  # type: ignore[attr-defined]
        try:
            headers = get()
            if headers is None or not hasattr(headers, "get"):
                continue
            ms = _header(headers, "retry-after-ms")
            if ms is not None:
                return max(0.0, float(ms) / 1000)
            value = _header(headers, "retry-after")
        except Exception:
            continue
        if value is None:
            continue
        value = str(value).strip()
        seconds: float | None
        try:
            seconds = float(value)
        except ValueError:
            seconds = _seconds_until(value)
        if seconds is not None and math.isfinite(seconds):
            return max(0.0, seconds)
    return None


def _header(headers: Any, name: str) -> Any:
    """A header by case-insensitive name (httpx and requests headers are; a plain dict is not)."""
    value = headers.get(name)
    if value is None and isinstance(headers, Mapping):
        for k, v in headers.items():
            if isinstance(k, str) and k.lower() == name:
                return v
    return value


def _seconds_until(http_date: str) -> float | None:
    import email.utils
    import time

    try:
        when = email.utils.parsedate_to_datetime(http_date)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # an HTTP date is always GMT
        import datetime

        when = when.replace(tzinfo=datetime.timezone.utc)
    return when.timestamp() - time.time()


@dataclass(frozen=True)
class CachePolicy:
    """Cache a node's result: a run whose input to the node was seen before skips the node and
    applies the saved result (its update and its ``Command(goto=...)``) as if it had run.

    Give it to ``add_node(..., cache=CachePolicy(...))`` (LangGraph's ``cache_policy=`` works too)
    and choose where results live with ``compile(cache="memory" | "sqlite:///c.db" |
    "redis://host:6379/0")``.

    Attributes:
        ttl: seconds a saved result stays valid; None (default) keeps it until
            ``app.clear_cache()``.
        key_func: ``key_func(input) -> key`` for the node's input (the state, or its
            ``input_schema`` view, or a ``Send`` payload). The key must be something the
            checkpoint serializer can store (str, bytes, numbers, tuples, lists, dicts...);
            default: the input itself. Keys are namespaced by graph, node and the node's code,
            so editing the function starts afresh.

    Example:
        >>> g.add_node("search", search, cache=CachePolicy(ttl=60, key_func=lambda s: s["query"]))
    """

    ttl: float | None = None
    key_func: Callable[[Any], Any] | None = None

    def __post_init__(self) -> None:
        ttl = self.ttl
        if ttl is not None and (isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or not ttl > 0):
            raise ValueError(f"CachePolicy.ttl must be a positive number of seconds or None, got {ttl!r}")
        if self.key_func is not None and not callable(self.key_func):
            raise ValueError(f"CachePolicy.key_func must be callable, got {self.key_func!r}")


@dataclass(frozen=True)
class RetryPolicy:
    """How a failing node is retried, with exponential backoff.

    The wait before retry ``n`` (0-based) is
    ``min(initial_interval * backoff_factor ** n, max_interval)``, plus up to half of that again
    at random when ``jitter`` is on (from the run's seeded random generator). When the error
    carries an HTTP ``Retry-After`` (429 and 503 responses often do), the wait is what the
    server asked, capped by ``max_interval`` (raise it to honour longer ones).

    By default (:func:`default_retry_on`) transient failures are retried: connection errors,
    timeouts, HTTP 429 and 5xx (recognised by ``status_code`` or ``response.status_code``, so
    httpx, requests, openai and anthropic errors all count); other HTTP 4xx and programming
    errors never are.

    Attributes:
        max_attempts: attempts in all, the first included (1 = never retry).
        initial_interval: seconds before the first retry.
        backoff_factor: multiplier per further retry.
        max_interval: cap on any one wait, in seconds.
        jitter: add random spread to each wait so many runs do not retry in lockstep.
        retry_on: an exception type, a tuple of them, or a predicate ``exc -> bool``.

    Example:
        >>> RetryPolicy(max_attempts=5, initial_interval=0.1, retry_on=ConnectionError)
        RetryPolicy(max_attempts=5, initial_interval=0.1, ...)
    """

    max_attempts: int = 3
    initial_interval: float = 0.5
    backoff_factor: float = 2.0
    max_interval: float = 128.0
    jitter: bool = True
    retry_on: type[BaseException] | tuple[type[BaseException], ...] | Callable[[BaseException], bool] = (
        default_retry_on
    )

    def __post_init__(self) -> None:
        if not isinstance(self.max_attempts, int) or self.max_attempts < 1:
            raise ValueError(f"RetryPolicy.max_attempts must be an int >= 1, got {self.max_attempts!r}")
        for name in ("initial_interval", "max_interval"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or v < 0:
                raise ValueError(f"RetryPolicy.{name} must be a number >= 0, got {v!r}")
        if not isinstance(self.backoff_factor, (int, float)) or self.backoff_factor < 1:
            raise ValueError(f"RetryPolicy.backoff_factor must be >= 1, got {self.backoff_factor!r}")

    def __repr__(self) -> str:
        return (
            f"RetryPolicy(max_attempts={self.max_attempts}, initial_interval={self.initial_interval}, ...)"
        )

    def should_retry(self, exc: BaseException) -> bool:
        """Whether ``exc`` is worth another attempt under this policy."""
        r = self.retry_on
        if isinstance(r, type) or isinstance(r, tuple):
            return isinstance(exc, r)  # type: ignore[arg-type]
        return bool(r(exc))

    def interval(self, retry_index: int, rng: random.Random | None = None, exc: BaseException | None = None) -> float:
        """Seconds to wait before retry number ``retry_index`` (0-based) after ``exc``.

        When ``exc`` carries a server's ``Retry-After`` (see :func:`retry_after`), that is the
        wait, without jitter, capped by ``max_interval``; otherwise the exponential backoff.
        """
        if exc is not None:
            asked = retry_after(exc)
            if asked is not None:
                return min(asked, self.max_interval)
        wait = min(self.initial_interval * self.backoff_factor**retry_index, self.max_interval)
        if self.jitter and wait > 0:
            wait += (rng or random).uniform(0, 0.5 * wait)
        return wait


@dataclass(frozen=True)
class Interrupt:
    """A pending pause: what a node asked the human, and the id to answer it by.

    Attributes:
        value: the payload passed to :func:`~agentgraph_nb.interrupt` (or, for
            ``interrupt_before``/``interrupt_after``, a short description).
        id: stable id; answer several at once with ``Command(resume={id: value})``.
        node: the node that paused.
        when: ``"during"`` (``interrupt()`` in the node), ``"before"`` or ``"after"``.
        path: for an interrupt raised inside a subgraph, the nodes from this graph's node down to
            the one that asked, e.g. ``("team", "approve")`` (``node`` is then ``"team"``); ``()``
            for one of this graph's own nodes.
    """

    value: Any
    id: str
    node: str = ""
    when: Literal["during", "before", "after"] = "during"
    path: tuple[str, ...] = ()


@dataclass(frozen=True)
class NodeFailure:
    """Where a run failed: attached to the node's own exception, which reaches the caller with its
    own type (``except RuntimeError`` works, as in LangGraph). Read it with
    :func:`~agentgraph_nb.node_failure`.

    Attributes:
        node: the node that raised (or after which routing raised; ``"__start__"`` for the
            routers of ``START``).
        step: the superstep.
        attempt: how many attempts were made (1 = no retry).
        graph: the name of the graph.
        thread_id: the run's thread, or ``None``.
        during: ``"node"`` (the node's function raised) or ``"routing"`` (a router of its
            conditional edges raised).
        path: for a failure inside a subgraph, the nodes from this graph's node down to the one
            that raised, e.g. ``("team", "researcher", "search")``; ``()`` for this graph's own node.

    Example:
        >>> try:                                         # doctest: +SKIP
        ...     app.invoke({"topic": "x"}, thread_id="t1")
        ... except ConnectionError as err:
        ...     where = node_failure(err)                # NodeFailure(node='search', step=2, ...)
        ...     app.get_state("t1").next                 # ('search',): fix, then invoke(None, ...)
    """

    node: str
    step: int
    attempt: int = 1
    graph: str = ""
    thread_id: str | None = None
    during: Literal["node", "routing"] = "node"
    # the node's function (a short traceback points at its code); never compared nor pickled
    _fn: Any = field(default=None, repr=False, compare=False)
    path: tuple[str, ...] = ()

    def __reduce__(self) -> Any:  # exceptions carrying it stay picklable (batch in process pools)
        return (NodeFailure, (self.node, self.step, self.attempt, self.graph, self.thread_id, self.during, None,
                              self.path))

    @property
    def where(self) -> str:
        """The full path of the node that failed, ``"team > researcher > search"`` (or its name)."""
        return " > ".join(self.path) if self.path else self.node

    def describe(self) -> str:
        """The failure in words, e.g. ``"node 'search' of graph 'research' failed at step 2 (attempt 3)"``."""
        routing = self.during == "routing"
        if routing:
            what = "routing from START" if self.node == "__start__" else f"routing after node {self.node!r}"
        else:
            what = f"node {self.where!r}"
        of = f" of graph {self.graph!r}" if self.graph else ""
        extra = [] if routing else [f"attempt {self.attempt}"]
        if self.thread_id is not None:
            extra.append(f"thread {self.thread_id!r}")
        return f"{what}{of} failed at step {self.step}" + (f" ({', '.join(extra)})" if extra else "")


@dataclass(frozen=True)
class SnapshotTask:
    """One task of a checkpoint's next superstep (LangGraph's ``PregelTask``).

    Attributes:
        id: ``"<step>:<index>"``, the ``task_id`` of the :class:`Event` objects of its execution
            (``step`` is the superstep that runs it, the checkpoint's step + 1).
        name: the node it runs.
        path: ``("pull", name)`` for a task an edge or router started, ``("push", index)`` for
            one a :class:`Send` started (LangGraph: ``__pregel_pull`` / ``__pregel_push``).
        error: ``"<ExceptionType>: message"`` of the node's failure, when the step failed on it
            (at the thread's newest checkpoint; resuming runs it again); else None.
        interrupts: the interrupts pending on it.
        state: the :class:`StateSnapshot` of the subgraph it runs (``get_state(..., subgraphs=True)``,
            for a task of a subgraph node that has started); else None.
        result: what it wrote: in :meth:`get_state_history`, every task's update (read from
            the next checkpoint of its branch); at the newest checkpoint, the updates of the
            tasks that finished before the step failed or paused; None when not known (a task
            still to run, or ``get_state`` of an older checkpoint).
        caught: for the handler of an error edge, the :class:`CaughtError` it handles; else None.
    """

    id: str
    name: str
    path: tuple[Any, ...]
    error: str | None = None
    interrupts: tuple[Interrupt, ...] = ()
    state: Any = None
    result: Any = None
    caught: Any = None


@dataclass(frozen=True)
class StateSnapshot:
    """The state of a thread at one checkpoint.

    Attributes:
        values: the state values. At the thread's newest checkpoint, when a superstep did not
            complete (a node failed or paused, the process died), the results its finished
            nodes saved are shown applied, as LangGraph shows them; the stored checkpoint is
            the one before the step, and resuming merges them with the rest.
        next: names of the nodes that run next: the nodes of an incomplete superstep that
            still have to run (finished ones are in ``pending_writes``). Empty only when
            nothing is left to run.
        step: the superstep that produced this checkpoint (0 = the input of a new thread;
            a later run's input checkpoint takes the next number). LangGraph numbers the same
            checkpoints alike on a new thread, and adds one before them (step -1, source
            "input", next ``("__start__",)``) that we do not store: see the README.
        checkpoint_id: this checkpoint's id (pass it to ``invoke``/``update_state`` to fork).
        parent_id: the checkpoint before it, or None for the first.
        created_at: ISO-8601 wall-clock time of creation (UTC).
        writes: the updates merged at this step, as ``{node: update}`` (lists of updates
            for nodes that ran several times, e.g. through ``Send``).
        interrupts: pending interrupts, if the thread is paused.
        thread_id: the thread.
        metadata: source (``input``, ``loop``, ``update``, ``fork``), run id, and so on.
        pending_writes: updates of the nodes of an incomplete superstep that already
            completed (their step failed or paused on another node); shown applied in
            ``values``, merged for good when the step is resumed.
        tasks: the tasks of the next superstep, every one of ``next`` and those already
            finished, with their errors, interrupts and results (see :class:`SnapshotTask`).
    """

    values: dict[str, Any]
    next: tuple[str, ...]
    step: int
    checkpoint_id: str | None
    parent_id: str | None
    created_at: str | None
    writes: dict[str, Any]
    interrupts: tuple[Interrupt, ...]
    thread_id: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    pending_writes: dict[str, Any] = field(default_factory=dict)
    tasks: tuple[SnapshotTask, ...] = ()


@dataclass(frozen=True)
class CaughtError:
    """A node's failure that an error edge caught (``add_error_edge``): what its handler reads.

    A handler whose state is a dict finds it under ``state["__error__"]``; any handler can call
    :func:`~agentgraph_nb.caught_error` (None outside a handler run). It is stored with the
    checkpoint that routes to the handler, so a handler resumed in another process reads it
    too (without ``error``, the exception object itself, which is kept only in memory).

    Attributes:
        node: the node that failed (its path, ``"team > search"``, for a subgraph's node).
        error_type: the exception's class name, e.g. ``"ConnectionError"``.
        message: ``str(exception)``.
        attempt: how many attempts were made (1 = no retry).
        step: the superstep in which it failed.
        error: the exception itself, or None after a resume in another process.

    Example:
        >>> def fallback(state):
        ...     err = state["__error__"]                 # or caught_error()
        ...     return {"answer": f"{err.node} failed: {err.message}"}
    """

    node: str
    error_type: str
    message: str
    attempt: int = 1
    step: int = 0
    error: BaseException | None = field(default=None, compare=False, repr=False)

    def describe(self) -> str:
        """``"node 'fetch' failed at step 2 (attempt 3): ConnectionError: refused"``."""
        return f"node {self.node!r} failed at step {self.step} (attempt {self.attempt}): {self.error_type}: {self.message}"


EventKind = Literal[
    "run_start",
    "step_start",
    "node_start",
    "node_end",
    "node_error",
    "node_retry",
    "state_update",
    "checkpoint",
    "interrupt",
    "run_end",
    "llm_end",
    "llm_token",
    "error_caught",
    "compensate",
    "rollback",
    "cache_hit",
    "node_worker",
]
EVENT_KINDS: tuple[str, ...] = EventKind.__args__  # type: ignore[attr-defined]


class Event:
    """One thing that happened during a run. Listeners and ``stream(mode="events")`` get these.

    Attributes:
        kind: what happened (see ``EVENT_KINDS``).
        run_id: the run (one ``invoke``/``stream`` call).
        thread_id: the thread, or None for a run without one.
        step: the superstep (0 = the input).
        node: the node, for node events; "" otherwise.
        ts: ``time.perf_counter()`` when it happened (monotonic, seconds).
        duration: seconds, for ``node_end``/``node_error``/``node_retry``/``run_end``; else 0.
        attempt: the attempt number (1-based), for node events.
        task_id: identifies one execution of a node within a step.
        data: the update (``node_end``/``state_update``), the error (``node_error``,
            ``node_retry``), the checkpoint id (``checkpoint``), interrupts (``interrupt``),
            the node's input (``node_start``), the graph's name and seed (``run_start``; for a
            subgraph's run also ``parent_run_id`` and ``parent_task_id``, the execution of the
            parent's node that runs it), the final values (``run_end``), or a chat-model
            call's figures (``llm_end``: ``model``, ``tokens_in``, ``tokens_out``, ``cost``,
            ``latency``, ``base_url``), or one streamed chunk of a chat model's answer
            (``llm_token``: the chunk message, ``{"role": "assistant", "content": piece, "id":
            ..., "tool_call_chunks"?: [...]}``; sent only to listeners that ask for tokens with
            a true ``llm_tokens`` attribute, as GraphView and Debugger do); for
            ``error_caught`` (``node``: the node that failed) ``{"error": CaughtError,
            "handler": name}``; for ``compensate`` (one per compensation run after a failed
            saga, ``node`` the step it undoes) ``{"fn": name, "ok": bool, "error": str | None}``;
            for ``rollback`` (a transaction's writes discarded, ``node`` the one that failed)
            ``{"transaction": name, "error": str}``; for ``node_worker`` (a node execution that
            ran on a Ray worker, sent when its result is back, before ``node_end``; ``duration``
            the seconds it ran there) ``{"worker": "host:pid", "host", "pid", "node_id", "ip"}``.
        namespace: ``""`` for the graph's own nodes; for an event of a subgraph run inside it,
            the subgraph's namespace (``"team"``, ``"team|inner"``, ``"team:2"`` for the third
            task of a step that sends to it with ``Send``); ``thread_id`` is then the parent's thread.
    """

    __slots__ = ("attempt", "data", "duration", "kind", "namespace", "node", "run_id", "step", "task_id",
                 "thread_id", "ts")

    # a plain slotted class: runs with listeners build many of these, and a frozen dataclass's
    # __init__ costs several times more
    def __init__(
        self,
        kind: str,
        run_id: str,
        thread_id: str | None,
        step: int,
        node: str = "",
        ts: float = 0.0,
        duration: float = 0.0,
        attempt: int = 0,
        task_id: str = "",
        data: Any = None,
        namespace: str = "",
    ) -> None:
        self.kind = kind
        self.run_id = run_id
        self.thread_id = thread_id
        self.step = step
        self.node = node
        self.ts = ts
        self.duration = duration
        self.attempt = attempt
        self.task_id = task_id
        self.data = data
        self.namespace = namespace

    def _fields(self) -> tuple[Any, ...]:
        return (self.kind, self.run_id, self.thread_id, self.step, self.node, self.ts, self.duration,
                self.attempt, self.task_id, self.data, self.namespace)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Event) and self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash(self._fields()[:9])

    def __repr__(self) -> str:
        return (
            f"Event(kind={self.kind!r}, run_id={self.run_id!r}, thread_id={self.thread_id!r}, step={self.step}, "
            f"node={self.node!r}, ts={self.ts!r}, duration={self.duration!r}, attempt={self.attempt}, "
            f"task_id={self.task_id!r}, data={self.data!r}"
            + (f", namespace={self.namespace!r})" if self.namespace else ")")
        )
