"""Typed errors. Every message says what went wrong, where, and what to do.

All of them derive from :class:`AgentGraphError`, so ``except AgentGraphError`` catches
anything the engine raises on its own behalf.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from agentgraph_nb.types import NodeFailure

__all__ = [
    "AgentGraphError",
    "AgentGraphWarning",
    "CacheError",
    "CacheKeyError",
    "CassetteMismatchError",
    "CheckpointConflictError",
    "CheckpointError",
    "ClusterUnreachableError",
    "CompensationError",
    "ErrorHandlerError",
    "ExecutorError",
    "ForEachInputError",
    "GraphInterrupt",
    "GraphRecursionError",
    "GraphValidationError",
    "GraphValidationWarning",
    "HttpConnectError",
    "HttpError",
    "HttpStatusError",
    "HttpTimeoutError",
    "InvalidInputError",
    "InvalidUpdateError",
    "KeyValueConnectError",
    "KeyValueError",
    "LoopConditionError",
    "LoopError",
    "LoopLimitError",
    "MessageDecodeError",
    "MissingDependencyError",
    "ModelError",
    "ModelResponseError",
    "NodeError",
    "NodeImportError",
    "NodeResourceError",
    "NodeTimeoutError",
    "NodeValueError",
    "ParentCommand",
    "PathEscapeError",
    "PlacementError",
    "QueueConnectError",
    "QueueError",
    "ResourceError",
    "SqlError",
    "StateMigrationError",
    "StepTimeoutError",
    "StructuredOutputError",
    "TaskCallError",
    "ToolArgumentsError",
    "ToolError",
    "TriggerError",
    "UnknownMessageError",
    "UnknownNamespaceError",
    "UnknownToolError",
    "UnpicklableStateError",
    "node_failure",
]


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """Return ``" Did you mean 'x'?"`` for the closest choice, or ``""``."""
    import difflib

    close = difflib.get_close_matches(str(name), [str(c) for c in choices], n=1, cutoff=0.6)
    return f" Did you mean {close[0]!r}?" if close else ""


class AgentGraphError(Exception):
    """Base class of every error agentgraph_nb raises on its own behalf."""

    # The failing node's function, set by the engine when a run fails, so that a short
    # traceback can point at the node's code (e.g. the ``return`` of a bad update) even when
    # none of its frames is in the traceback. Never pickled.
    _node_fn: Any = None

    def __reduce__(self) -> Any:
        # private attributes (the node's function, IPython's ``_render_traceback_``) may not
        # pickle; the error's own fields do
        state = {k: v for k, v in self.__dict__.items() if not k.startswith("_")}
        return (type(self), self.args, state or None)


class GraphValidationError(AgentGraphError, ValueError):
    """The graph definition has a definite mistake (unknown node, duplicate name, ...)."""


class InvalidInputError(AgentGraphError, ValueError):
    """A call's arguments cannot be used (e.g. nothing to resume on a thread)."""


class InvalidUpdateError(AgentGraphError, ValueError):
    """A node's update cannot be applied: not a dict, unknown key, or conflicting parallel writes.

    Attributes:
        node: the node whose update was rejected (the first one, for conflicts).
        key: the state key involved, when there is one.
        step: the superstep, when raised by a run.
    """

    def __init__(self, message: str, *, node: str | None = None, key: str | None = None, step: int | None = None) -> None:
        super().__init__(message)
        self.node = node
        self.key = key
        self.step = step

    def __str__(self) -> str:
        msg = super().__str__()
        return msg if self.step is None else f"{msg} (at step {self.step})"


def node_failure(exc: BaseException | None) -> NodeFailure | None:
    """Where the run that raised ``exc`` failed: which node, at which step, after how many attempts.

    A node's own exception reaches the caller with its own type (as in LangGraph), carrying a
    :class:`~agentgraph_nb.types.NodeFailure` (and a note saying the same, which tracebacks
    print). This finds it on ``exc`` or on the exceptions ``exc`` was raised from (so it still
    works after ``raise MyError(...) from err``). For agentgraph_nb's own errors that name a node
    (:class:`NodeTimeoutError`, :class:`InvalidUpdateError` of a node's update) it describes them
    too. ``None`` when nothing names a node (a bad input, an error from outside a run).

    Example:
        >>> try:                                        # doctest: +SKIP
        ...     app.invoke({"q": "x"}, thread_id="t1")
        ... except ValueError as err:
        ...     print(node_failure(err))                # NodeFailure(node='parse', step=1, attempt=1, ...)
    """
    seen: set[int] = set()
    cur = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        found = cur.__dict__.get("agentgraph_failure") if hasattr(cur, "__dict__") else None
        if isinstance(found, NodeFailure):
            return found
        node, step = getattr(cur, "node", None), getattr(cur, "step", None)
        if isinstance(cur, AgentGraphError) and isinstance(node, str) and not node.startswith("__") and isinstance(step, int):
            return NodeFailure(node, step, getattr(cur, "attempt", 1), _fn=cur._node_fn)
        cur = cur.__cause__ if cur.__cause__ is not None else cur.__context__
    return None


class NodeError(AgentGraphError):
    """A node failed after its retries, in a way its own exception cannot carry: a timeout
    (:class:`NodeTimeoutError`), or an exception that refuses new attributes (rare: the engine
    re-raises a node's own exception, with a :class:`~agentgraph_nb.types.NodeFailure` attached,
    whenever it can). Chained (``raise ... from``) to the original exception.

    Attributes:
        node: the node's name.
        step: the superstep in which it failed.
        attempt: how many attempts were made (1 = no retry).
    """

    def __init__(self, message: str, *, node: str, step: int, attempt: int) -> None:
        super().__init__(message)
        self.node = node
        self.step = step
        self.attempt = attempt

    def __reduce__(self) -> Any:  # keep picklable across processes (batch in pools)
        return (_rebuild, (type(self), str(self), self.node, self.step, self.attempt))


def _rebuild(cls: type[NodeError], msg: str, node: str, step: int, attempt: int) -> NodeError:
    return cls(msg, node=node, step=step, attempt=attempt)


class ErrorHandlerError(NodeError):
    """The handler of an error edge (``add_error_edge``) failed while handling another node's
    failure. Chained (``__cause__``) to the handler's own exception, whose ``__context__`` is
    the original failure (when this process saw it).

    Attributes:
        node: the handler.
        failed_node: the node whose failure it was handling.
        original: the :class:`~agentgraph_nb.CaughtError` it was handling.
    """

    def __init__(self, message: str, *, node: str, step: int, attempt: int, failed_node: str = "",
                 original: Any = None) -> None:
        super().__init__(message, node=node, step=step, attempt=attempt)
        self.failed_node = failed_node
        self.original = original


class CompensationError(AgentGraphError):
    """A saga failed and some of its compensations (``add_node(..., compensate=fn)``) failed
    too. The remaining compensations still ran; chained (``__cause__``) to the run's original
    failure.

    Attributes:
        failed: ``[(node, "ExcType: message"), ...]``, the compensations that raised, in the
            order they ran.
        compensated: the nodes whose compensation succeeded, in the order they ran.
        thread_id: the run's thread, or None.
    """

    def __init__(self, message: str, *, failed: list[tuple[str, str]], compensated: list[str],
                 thread_id: str | None = None) -> None:
        super().__init__(message)
        self.failed = failed
        self.compensated = compensated
        self.thread_id = thread_id


class NodeTimeoutError(NodeError, TimeoutError):
    """A node ran longer than its ``timeout=`` (sync and async nodes alike).

    A sync node that times out cannot be killed: its thread is abandoned and its result ignored.
    """


class StepTimeoutError(AgentGraphError, TimeoutError):
    """A superstep ran longer than the graph's ``step_timeout`` (LangGraph raises a plain
    ``TimeoutError``; this is one).

    The step does not complete: async nodes still running are cancelled, sync ones cannot be
    killed (their threads are abandoned and their results ignored). The thread's last checkpoint
    is the one before the step, with the results of the nodes that finished in time saved, so
    ``invoke(None, thread_id=...)`` runs the step's other nodes again.

    Attributes:
        step: the superstep that timed out.
        nodes: the nodes of that step.
        timeout: the limit, in seconds.
    """

    def __init__(self, message: str, *, step: int, nodes: tuple[str, ...], timeout: float) -> None:
        super().__init__(message)
        self.step = step
        self.nodes = nodes
        self.timeout = timeout

    def __reduce__(self) -> Any:  # keep picklable across processes (batch in pools)
        return (_rebuild_step_timeout, (str(self), self.step, self.nodes, self.timeout))


def _rebuild_step_timeout(msg: str, step: int, nodes: tuple[str, ...], timeout: float) -> StepTimeoutError:
    return StepTimeoutError(msg, step=step, nodes=nodes, timeout=timeout)


class MissingDependencyError(AgentGraphError, ModuleNotFoundError):
    """An optional dependency is not installed; the message names the ``pip install`` to run.

    A :class:`ModuleNotFoundError` (so ``except ImportError`` still works).

    Attributes:
        name: the missing module (as for any ``ModuleNotFoundError``).
        extra: the agentgraph_nb extra that installs it, e.g. ``"notebook"``.
    """

    def __init__(self, modules: str | Iterable[str], extra: str, feature: str = "") -> None:
        mods = [modules] if isinstance(modules, str) else list(modules)
        what = feature or "agentgraph_nb's notebook front"
        names = ", ".join(mods)
        verb = "is" if len(mods) == 1 else "are"
        super().__init__(
            f"{what} needs {names}, which {verb} not installed. "
            f'Install it with: pip install "agentgraph_nb[{extra}]"',
            name=mods[0],
        )
        self.modules = tuple(mods)
        self.extra = extra
        self.feature = feature

    def __reduce__(self) -> Any:
        return (type(self), (self.modules, self.extra, self.feature))


class UnknownMessageError(AgentGraphError, ValueError):
    """``RemoveMessage(id)`` names a message that is not in the list.

    Attributes:
        id: the message id that was not found.
    """

    def __init__(self, message: str, *, id: str) -> None:
        super().__init__(message)
        self.id = id

    def __reduce__(self) -> Any:
        return (_rebuild_kw, (type(self), str(self), {"id": self.id}))


class ToolError(AgentGraphError):
    """A tool call failed: the tool raised, its arguments were wrong, or it does not exist.

    :class:`~agentgraph_nb.tools.ToolNode` turns these into an error ``tool`` message back to the
    model; with ``handle_errors=False`` it raises them (chained to the tool's own exception), and
    the run fails with a :class:`NodeError` naming the node.

    Attributes:
        tool: the tool's name (as the model called it).
        tool_call_id: the id of the model's tool call, when there is one.
        node: the graph node that ran the call, when known.
    """

    def __init__(
        self, message: str, *, tool: str | None = None, tool_call_id: str | None = None, node: str | None = None
    ) -> None:
        super().__init__(message)
        self.tool = tool
        self.tool_call_id = tool_call_id
        self.node = node

    def __reduce__(self) -> Any:
        return (_rebuild_kw, (type(self), str(self), {"tool": self.tool, "tool_call_id": self.tool_call_id, "node": self.node}))


class ToolArgumentsError(ToolError, ValueError):
    """A tool was called with arguments that do not fit its schema (or that are not JSON)."""


class UnknownToolError(ToolError, LookupError):
    """The model called a tool that is not among the tools offered."""


def _rebuild_kw(cls: type[Exception], msg: str, kw: dict[str, Any]) -> Exception:
    return cls(msg, **kw)


class TaskCallError(AgentGraphError, RuntimeError):
    """A ``@task`` was called where it cannot run: outside a running ``@entrypoint``.

    Attributes:
        task: the task's name.
    """

    def __init__(self, message: str, *, task: str) -> None:
        super().__init__(message)
        self.task = task

    def __reduce__(self) -> Any:
        return (_rebuild_kw, (type(self), str(self), {"task": self.task}))


class GraphRecursionError(AgentGraphError, RecursionError):
    """The run reached ``recursion_limit`` supersteps without finishing."""


class LoopError(AgentGraphError):
    """A for-each or while loop cannot go on (see ``add_foreach`` / ``add_while``).

    Attributes:
        node: the loop's node.
    """

    def __init__(self, message: str, *, node: str) -> None:
        super().__init__(message)
        self.node = node


class LoopLimitError(LoopError, RecursionError):
    """A while loop ran ``max_iterations`` times and its condition still holds (like
    :class:`GraphRecursionError` for ``recursion_limit``); nothing after the loop ran.

    Attributes:
        node: the loop.
        limit: its ``max_iterations``.
    """

    def __init__(self, message: str, *, node: str, limit: int) -> None:
        super().__init__(message, node=node)
        self.limit = limit


class LoopConditionError(LoopError, ValueError):
    """A while loop's condition raised (the original error is the ``__cause__``) or returned
    something that is neither true nor false."""


class ForEachInputError(LoopError, TypeError):
    """A for-each node's ``over`` key does not hold a list at run time.

    Attributes:
        node: the for-each node.
        key: the ``over`` key.
        found: the type found there (``"nothing"`` when the key has no value).
    """

    def __init__(self, message: str, *, node: str, key: str, found: str) -> None:
        super().__init__(message, node=node)
        self.key = key
        self.found = found


class CheckpointError(AgentGraphError):
    """A checkpoint store cannot be read or written (corrupt, locked, full, newer schema, ...)."""


class CheckpointConflictError(CheckpointError):
    """Another writer wrote the thread since this one last saw it; this write stored nothing.

    A run (or ``update_state``) remembers which checkpoint was the thread's newest when it loaded
    the thread, and after each of its own writes; a write finding another newest checkpoint is
    refused, so two writers never fork a thread silently. The winner's history is intact, and
    every checkpoint the loser wrote before is still stored (its last one is ``expected``).

    Attributes:
        thread_id: the thread.
        expected: the checkpoint the writer expected to be the thread's newest (``None``: it
            expected a thread without checkpoints).
        actual: the thread's newest checkpoint found instead (``None``: none).
        checkpoint_id: the checkpoint that was not stored, when known.
        store: the store, as text (its ``repr``).

    Example:
        >>> try:
        ...     app.invoke(None, thread_id="t1")
        ... except CheckpointConflictError as e:
        ...     app.get_state("t1")  # the other writer's state: decide, then run again
    """

    def __init__(
        self,
        message: str | None = None,
        *,
        thread_id: str,
        expected: str | None,
        actual: str | None,
        checkpoint_id: str | None = None,
        store: str = "",
    ) -> None:
        self.thread_id = thread_id
        self.expected = expected
        self.actual = actual
        self.checkpoint_id = checkpoint_id
        self.store = store
        if message is None:
            what = f"checkpoint {checkpoint_id!r}" if checkpoint_id is not None else "a checkpoint"
            where = f" in {store}" if store else ""
            saw = (
                f"the thread's newest checkpoint to be {expected!r}" if expected is not None
                else "the thread to have no checkpoint yet"
            )
            found = f"it is {actual!r}" if actual is not None else "it has none"
            kept = (
                f" This writer's earlier checkpoints are kept ({expected!r} is its last one)."
                if expected is not None else ""
            )
            message = (
                f"cannot store {what} of thread {thread_id!r}{where}: another run or update_state "
                f"wrote the thread meanwhile. This writer expected {saw}, but {found}. Nothing was "
                f"stored and the other writer's history is intact.{kept} Run one writer per thread "
                f"at a time: look at get_state({thread_id!r}), then run again (invoke(None, "
                f"thread_id=...) continues from the newest checkpoint; checkpoint_id= forks from "
                "any other)."
            )
        super().__init__(message)

    def __reduce__(self) -> Any:  # keep picklable across processes (batch in pools)
        return (
            _rebuild_conflict,
            (str(self), self.thread_id, self.expected, self.actual, self.checkpoint_id, self.store),
        )


def _rebuild_conflict(
    msg: str, thread_id: str, expected: str | None, actual: str | None, checkpoint_id: str | None, store: str
) -> CheckpointConflictError:
    return CheckpointConflictError(
        msg, thread_id=thread_id, expected=expected, actual=actual, checkpoint_id=checkpoint_id, store=store
    )


class NodeResourceError(AgentGraphError):
    """A node of the node library (:mod:`agentgraph_nb.nodes`) could not use its resource: a URL,
    a database, a file, a state key.

    Attributes:
        node: the node's name (the graph's name for it while a graph runs, else what the factory
            was called with, e.g. ``"http_get"``).
        resource: what it was using: the URL, the database URL (password hidden), the path, the key.
    """

    def __init__(self, message: str, *, node: str, resource: str, **fields: Any) -> None:
        super().__init__(message)
        self.node = node
        self.resource = resource
        for k, v in fields.items():
            setattr(self, k, v)

    def __reduce__(self) -> Any:
        fields = {k: v for k, v in self.__dict__.items() if not k.startswith("_") and k not in ("node", "resource")}
        return (_rebuild_resource, (type(self), str(self), self.node, self.resource, fields))


def _rebuild_resource(
    cls: type[NodeResourceError], msg: str, node: str, resource: str, fields: dict[str, Any]
) -> NodeResourceError:
    return cls(msg, node=node, resource=resource, **fields)


class HttpError(NodeResourceError):
    """An HTTP node's request failed: the host cannot be reached, the request timed out, or the
    response cannot be read. Connection failures are also a :class:`ConnectionError` and
    timeouts a :class:`TimeoutError` (see :class:`HttpStatusError` for error statuses), so
    ``RetryPolicy()`` retries both.

    Attributes:
        url: the URL requested (``resource`` too).
        method: the HTTP method.
    """


class HttpConnectError(HttpError, ConnectionError):
    """An HTTP node could not connect (refused, unknown host, reset)."""


class HttpTimeoutError(HttpError, TimeoutError):
    """An HTTP node's request took longer than its ``timeout``."""


class HttpStatusError(HttpError):
    """An HTTP node got an error status (4xx, 5xx).

    It carries ``status_code`` and the response ``headers``, so :class:`RetryPolicy` retries 429
    and 5xx (waiting what ``Retry-After`` asks) and never other 4xx.

    Attributes:
        status_code: the response status.
        headers: the response headers (a dict, lower-case names).
        body: the start of the response body (at most 1,000 characters), for the message.
    """


class SqlError(NodeResourceError):
    """A SQL node's statement failed; in a transaction, everything it wrote was rolled back.

    Attributes:
        database: the database URL, password hidden (``resource`` too).
        statement: the SQL text (state values are bound parameters, never part of it).
    """


class PathEscapeError(NodeResourceError, PermissionError):
    """A file node's path leads outside its ``base_dir`` (``..``, an absolute path, a symlink).

    Attributes:
        path: the path as the node was asked for it (``resource`` too).
        base_dir: the directory the node is confined to.
    """


class NodeValueError(NodeResourceError, ValueError):
    """A node of the node library got a value it cannot use: a state key missing or of the wrong
    type, malformed JSON, a failed validation, a template or expression error. ``resource`` (and
    ``key``) names the state key, the file or the URL involved.
    """


class KeyValueError(NodeResourceError):
    """A key/value node (:mod:`agentgraph_nb.nodes.nosql`, Redis) failed: the server cannot be
    reached (then also a :class:`ConnectionError`, so ``RetryPolicy()`` retries it), the
    credentials are refused, or the command failed (a key holding another type).

    Attributes:
        url: the server URL, password hidden (``resource`` too).
        key: the key the node used.
    """


class KeyValueConnectError(KeyValueError, ConnectionError):
    """A key/value node could not reach its server (refused, unknown host, timeout)."""


class QueueError(NodeResourceError):
    """A queue node or trigger (:mod:`agentgraph_nb.nodes`: Redis streams, RabbitMQ, Kafka) could
    not use its broker: refused credentials, a missing queue, a failed publish.

    Attributes:
        queue: the stream, queue or topic (``resource`` too).
        url: the broker URL, password hidden.
        message_id: the message involved, if any.
    """


class QueueConnectError(QueueError, ConnectionError):
    """A queue node or trigger could not reach its broker (refused, unknown host, timeout)."""


class MessageDecodeError(QueueError, ValueError):
    """A message's body cannot be decoded (not JSON, not UTF-8): it names the node, the queue and
    the message id. A trigger does not start a run for it; it acknowledges it (or moves it to the
    dead-letter queue when one is set), so one bad message does not block the others."""


class TriggerError(AgentGraphError):
    """A trigger (a queue consumer, a file watcher, a webhook receiver) cannot start: its source is
    unusable (a missing directory, a port in use), or it was started twice."""


class GraphInterrupt(BaseException):
    """Raised by :func:`agentgraph_nb.interrupt` to pause a node; the engine catches it.

    It derives from ``BaseException`` so that a node's ``except Exception`` does not swallow it.
    """

    def __init__(self, interrupts: tuple[Any, ...]) -> None:
        super().__init__(interrupts)
        self.interrupts = interrupts


class ParentCommand(BaseException):
    """Raised by the engine when a node of a subgraph returns ``Command(graph=Command.PARENT)``:
    it leaves the subgraph's run and becomes the result of the subgraph's node in the parent.
    A ``BaseException`` (as :class:`GraphInterrupt`) so that no ``except Exception`` retries it.
    """

    def __init__(self, node: str, command: Any) -> None:
        super().__init__(node, command)
        self.node = node
        self.command = command


class UnknownNamespaceError(InvalidInputError):
    """A ``namespace=`` that names no subgraph of the graph, or one the thread has not run."""


class CacheError(AgentGraphError):
    """A node cache cannot be used: an unknown ``compile(cache=...)`` URL scheme, a cache store
    that cannot be reached, or a bad ``CachePolicy``.

    Attributes:
        node: the node involved, or None for the cache as a whole.
    """

    def __init__(self, message: str, *, node: str | None = None) -> None:
        super().__init__(message)
        self.node = node

    def __reduce__(self) -> Any:
        return (_rebuild_cache_error, (type(self), str(self), self.node))


def _rebuild_cache_error(cls: type[CacheError], msg: str, node: str | None) -> CacheError:
    return cls(msg, node=node)


class CacheKeyError(CacheError, ValueError):
    """A cached node's key cannot be made: its ``key_func`` raised, or returned (or the node's
    input holds) something the serializer cannot pack. Raised before the node runs, naming it."""


class ResourceError(AgentGraphError, LookupError):
    """A graph's resource (``compile(resources={...})``) cannot be had: an unknown name, a bad
    declaration, or a factory that raised (chained).

    Attributes:
        resource: the resource's name.
    """

    def __init__(self, message: str, *, resource: str = "") -> None:
        super().__init__(message)
        self.resource = resource


class NodeImportError(GraphValidationError, ImportError):
    """A node given as ``"package.module:function"`` cannot be loaded: a malformed path, a module
    that does not exist or fails to import, or a missing attribute.

    Attributes:
        node: the node's name.
        target: the import path as given.
    """

    def __init__(self, message: str, *, node: str = "", target: str = "") -> None:
        super().__init__(message)
        self.node = node
        self.target = target


class AgentGraphWarning(UserWarning):
    """Base class of agentgraph_nb's warnings."""


class GraphValidationWarning(AgentGraphWarning):
    """A likely mistake in a graph: an unreachable node, no way to END, ..."""


class ModelError(AgentGraphError):
    """A chat model call failed: the server refused it (HTTP status), could not be reached, or
    did not answer in time, after the model's own retries.

    ``status_code`` and ``headers`` are the server's (``None`` when it was not reached), so
    :class:`~agentgraph_nb.RetryPolicy`'s default rule treats this error as it treats the HTTP
    error behind it (429 and 5xx retried, other 4xx not).

    Attributes:
        model: the model name sent to the server.
        base_url: the server's address.
        status_code: the HTTP status, or ``None``.
        node: the graph node that made the call ("" outside a run).
        attempts: how many calls were made.
    """

    def __init__(self, message: str, *, model: str = "", base_url: str = "", status_code: int | None = None,
                 node: str = "", attempts: int = 1, headers: Any = None) -> None:
        super().__init__(message)
        self.model = model
        self.base_url = base_url
        self.status_code = status_code
        self.node = node
        self.attempts = attempts
        self.headers = headers

    def __reduce__(self) -> Any:
        return (_rebuild_model_error, (type(self), str(self), self.model, self.base_url, self.status_code,
                                       self.node, self.attempts))


def _rebuild_model_error(cls: type[ModelError], msg: str, model: str, base_url: str, status: int | None,
                         node: str, attempts: int) -> ModelError:
    return cls(msg, model=model, base_url=base_url, status_code=status, node=node, attempts=attempts)


class ModelResponseError(ModelError, ValueError):
    """The model answered, but the answer cannot be used (tool-call arguments that are not
    JSON, even after one repair attempt). Never retried by the default policy (a ``ValueError``).

    Attributes:
        raw: the offending text.
    """

    raw: str = ""


class StructuredOutputError(ModelResponseError):
    """``with_structured_output(Schema)``: the model's answer does not fit ``Schema``, even after
    one repair attempt. The message lists pydantic's complaints; ``raw`` is the last answer.

    Attributes:
        schema: the name of the expected schema.
        errors: pydantic's error list for the last answer.
    """

    schema: str = ""
    errors: list[Any] = []


class CassetteMismatchError(AgentGraphError):
    """A replayed model call does not match the recorded one: the message shows a diff of the
    recorded and the new request. Re-record (delete the file or ``mode="record"``) when the
    change is intended.

    Attributes:
        path: the cassette file.
        index: the position of the call in the cassette (0-based).
    """

    def __init__(self, message: str, *, path: str = "", index: int = -1) -> None:
        super().__init__(message)
        self.path = path
        self.index = index

    def __reduce__(self) -> Any:
        return (type(self), (str(self),), {"path": self.path, "index": self.index})


class StateMigrationError(CheckpointError):
    """A checkpoint's state was written under a version of the graph's state that this graph
    cannot bring to its own: a newer version, or an older one with a migration step missing (or
    failing). ``StateGraph(State, version=N, migrations={1: upgrade_v1, ...})``.

    Attributes:
        thread_id: the thread.
        checkpoint_id: the checkpoint being loaded.
        stored_version: the state version the checkpoint was written under.
        graph_version: the graph's state version.
    """

    def __init__(self, message: str, *, thread_id: str | None = None, checkpoint_id: str | None = None,
                 stored_version: int | None = None, graph_version: int | None = None) -> None:
        super().__init__(message)
        self.thread_id = thread_id
        self.checkpoint_id = checkpoint_id
        self.stored_version = stored_version
        self.graph_version = graph_version

    def __reduce__(self) -> Any:  # keep picklable across processes
        return (_rebuild_kw, (type(self), str(self), {
            "thread_id": self.thread_id, "checkpoint_id": self.checkpoint_id,
            "stored_version": self.stored_version, "graph_version": self.graph_version}))


class ExecutorError(AgentGraphError):
    """An executor beyond this process (``executor="ray"``) cannot run a node: the cluster is not
    reachable, no machine offers what the node asks for, or its input cannot be sent there.

    Attributes:
        node: the node, when one is concerned ("" otherwise).
    """

    def __init__(self, message: str, *, node: str = "") -> None:
        super().__init__(message)
        self.node = node


class ClusterUnreachableError(ExecutorError, ConnectionError):
    """The Ray cluster at the given address could not be joined (names the address and how long
    it was tried); nothing of the run was started."""


class PlacementError(ExecutorError):
    """A node asks for resources (``add_node(..., resources=...)``) that no machine of the cluster
    offers, checked for ``placement_timeout`` seconds (the message names the node, what it asks
    for and what the machines have) instead of waiting forever."""


class UnpicklableStateError(ExecutorError, TypeError):
    """A node's input cannot be sent to another process: the message names the node and the path
    of the value inside its input (``state['docs'][2].handle``) and why.

    Attributes:
        path: the value's path, e.g. ``"state['docs'][2]"``.
    """

    def __init__(self, message: str, *, node: str = "", path: str = "") -> None:
        super().__init__(message, node=node)
        self.path = path
