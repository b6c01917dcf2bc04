"""The builder: :class:`StateGraph` collects nodes and edges; ``compile()`` validates them and
returns the runnable :class:`~agentgraph_nb.graph.compiled.CompiledGraph`."""

from __future__ import annotations

import inspect  # dataclasses imports it anyway
import itertools
import math
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast, overload

from agentgraph_nb.constants import END, RESERVED, START
from agentgraph_nb.errors import GraphValidationError, did_you_mean
from agentgraph_nb.types import CachePolicy, RetryPolicy

if TYPE_CHECKING:
    from typing_extensions import Self

    from agentgraph_nb.checkpoint.base import BaseCheckpointer
    from agentgraph_nb.graph._loops import LoopSpec
    from agentgraph_nb.graph.compiled import CompiledGraph

__all__ = ["StateGraph"]



def _is_compiled(fn: Any) -> bool:
    """Whether ``fn`` is a compiled graph (without importing the compiled module here)."""
    return type(fn).__name__ == "CompiledGraph" or (hasattr(fn, "plan") and hasattr(fn, "builder") and hasattr(fn, "invoke"))


def target_name(fn: Any) -> str:
    """``module:qualname`` of a callable, for exports."""
    mod = getattr(fn, "__module__", None) or type(fn).__module__
    qn = getattr(fn, "__qualname__", None) or type(fn).__qualname__
    return f"{mod}:{qn}"


@dataclass
class NodeSpec:
    """A node as declared (before compile)."""

    name: str
    fn: Callable[..., Any]
    retry: RetryPolicy | None = None
    timeout: float | None = None
    destinations: tuple[str, ...] | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    input_schema: Any = None  # the node's view of the state (a schema class), or None: the whole state
    input_view: Any = None  # input_schema, read (a StateSchema that filters the state to its keys)
    compensate: Callable[..., Any] | None = None  # the saga step's undo (add_node(..., compensate=fn))
    cache_policy: Any = None  # a CachePolicy: its results are cached (see graph/_cache.py)
    resources: dict[str, Any] | None = None  # where an executor places it (add_node(..., resources=))


@dataclass
class BranchSpec:
    """A conditional edge: ``router(state)`` picks the next node(s)."""

    source: str
    router: Callable[..., Any]
    targets: tuple[str, ...] | None
    path_map: dict[Hashable, str] | None


def _hints_of(fn: Any) -> dict[str, Any]:
    """The type hints of a callable (of its ``__call__`` for other callable objects), leaving out
    those that cannot be resolved (string annotations naming a class local to a function)."""
    import typing

    target = fn if (inspect.isfunction(fn) or inspect.ismethod(fn)) else getattr(type(fn), "__call__", None)  # noqa: B004
    if target is None or not getattr(target, "__annotations__", None):
        return {}  # most nodes (lambdas, unannotated functions): no get_type_hints cost
    try:
        return typing.get_type_hints(target)
    except Exception:  # one unresolvable hint (a class local to a function): read the others
        pass
    out: dict[str, Any] = {}
    ns = getattr(target, "__globals__", None) or {}
    for k, v in (getattr(target, "__annotations__", None) or {}).items():
        try:
            out[k] = eval(v, ns) if isinstance(v, str) else v  # the function's own annotation, as get_type_hints does
        except Exception:
            continue
    return out


def _literal_names(tp: Any) -> tuple[str, ...] | None:
    """The names of ``Literal["a", "b"]`` (inside ``Optional``/``Union`` and ``list[...]`` too), or
    None when ``tp`` holds no string Literal."""
    import typing

    found: list[str] = []

    def visit(t: Any) -> None:
        origin = typing.get_origin(t)
        if origin is typing.Literal:
            found.extend(a for a in typing.get_args(t) if isinstance(a, str))
        elif origin is not None:
            for a in typing.get_args(t):
                visit(a)

    visit(tp)
    return tuple(dict.fromkeys(found)) or None


def command_destinations(fn: Any, hints: dict[str, Any] | None = None) -> tuple[str, ...] | None:
    """The nodes a node's return annotation says its ``Command`` may go to:
    ``-> Command[Literal["a", "b"]]`` gives ``("a", "b")`` (as LangGraph reads it); None without one."""
    ret = (_hints_of(fn) if hints is None else hints).get("return")
    if ret is None:
        return None
    import typing

    from agentgraph_nb.types import Command

    found: list[str] = []

    def visit(t: Any) -> None:
        origin = typing.get_origin(t)
        if origin is Command:
            found.extend(_literal_names(typing.get_args(t)[0]) or ())
        elif origin is not None:
            for a in typing.get_args(t):
                visit(a)

    visit(ret)
    return tuple(dict.fromkeys(found)) or None


def _state_class_of(fn: Any, state_cls: Any, hints: dict[str, Any]) -> Any:
    """The schema class a node's first parameter is annotated with, when it is a TypedDict,
    dataclass or pydantic model other than the graph's state (LangGraph gives such a node that
    view of the state); None otherwise."""
    if not hints:
        return None
    import dataclasses

    import typing_extensions

    try:
        params = [p for p in inspect.signature(fn).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        return None
    if not params:
        return None
    tp = hints.get(params[0].name)
    if tp is None or tp is state_cls or not isinstance(tp, type):
        return None
    if (tp.__module__, tp.__qualname__) == (getattr(state_cls, "__module__", None), getattr(state_cls, "__qualname__", None)):
        return None  # the state class as an earlier notebook cell defined it
    if typing_extensions.is_typeddict(tp) or dataclasses.is_dataclass(tp) or (
        isinstance(getattr(tp, "model_fields", None), dict) and hasattr(tp, "model_construct")
    ):
        return tp
    return None


def _node_list(label: str, names: Sequence[str] | str | None) -> tuple[str, ...]:
    """``interrupt_before``/``interrupt_after`` as a tuple: one name, several, or none (``None``,
    which LangGraph code passes)."""
    if names is None:
        return ()
    if isinstance(names, str):
        return (names,)
    try:
        out = tuple(names)
    except TypeError:
        raise GraphValidationError(
            f"{label} must be a node name, a list of node names, \"*\" or None, got {type(names).__name__} {names!r}"
        ) from None
    for n in out:
        if not isinstance(n, str):
            raise GraphValidationError(f"{label}: node names are strings, got {type(n).__name__} {n!r}")
    return out


def _weights_text(weights: Mapping[str, float]) -> str:
    """``{'b': 1e+308, 'c': 1e+308}``, shortened for long lists."""
    items = list(weights.items())
    shown = ", ".join(f"{t!r}: {w:g}" for t, w in items[:6])
    return "{" + shown + (f", ... ({len(items)} in all)" if len(items) > 6 else "") + "}"


class StateGraph:
    """Builds a graph of nodes over a shared state.

    Args:
        schema: a TypedDict, dataclass or pydantic model. Keys annotated
            ``Annotated[T, reducer]`` merge parallel writes with the reducer. Or
            ``Annotated[T, reducer]`` itself: the whole state is one reduced value.
        name: the graph's name, used in displays and exports.
        input_schema: the keys a run's input may set (default: the state's). Its keys that the
            state lacks become state keys too, as in LangGraph.
        output_schema: the keys ``invoke`` returns and ``stream(mode="values")`` shows
            (default: all). Its keys that the state lacks become state keys too.
        version: the version of the state's shape (1 by default). Checkpoints record it (those
            written under version 1 carry nothing, as before versions existed).
        migrations: ``{k: upgrade}`` for each older version ``k``: ``upgrade(values)`` takes the
            state's values (a dict) as they were under version ``k`` and returns them as they
            are under ``k + 1``. A checkpoint written under an older version loads upgraded,
            one step after another (``get_state``, history, resume); its writes are replayed
            through today's reducers, keys the state no longer has kept as written for the
            migration to rename or drop. A missing step, a failing one, or a checkpoint of a
            newer version is a :class:`~agentgraph_nb.errors.StateMigrationError` naming the
            versions, the thread and the checkpoint.

    Example:
        >>> g = StateGraph(State, name="research")
        >>> g.add_node("plan", plan).add_edge(START, "plan").add_edge("plan", END)
        >>> app = g.compile()
        >>> app.invoke({"question": "why?"})
        >>> StateGraph(State, input_schema=Question, output_schema=Answer)  # invoke returns Answer's keys
        >>> StateGraph(StateV2, version=2, migrations={1: lambda v: {**v, "tags": [v.pop("tag")]}})
    """

    def __init__(self, schema: Any = dict, *, name: str | None = None, input_schema: Any = None,
                 output_schema: Any = None, version: int = 1,
                 migrations: Mapping[int, Callable[[dict[str, Any]], dict[str, Any]]] | None = None,
                 context_schema: Any = None) -> None:
        from agentgraph_nb.state._schema import read_schema

        if type(version) is not int or version < 1:
            raise GraphValidationError(f"version={version!r}: the state version is an int >= 1")
        self.version = version
        self.migrations: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {}
        for k, fn in (migrations or {}).items():
            if type(k) is not int or not 1 <= k < version:
                raise GraphValidationError(
                    f"migrations={{{k!r}: ...}}: each key is the version a migration upgrades from, "
                    f"an int from 1 to {version - 1} (version={version})")
            if not callable(fn):
                raise GraphValidationError(
                    f"migrations[{k}] is {type(fn).__name__}, not a function upgrading the values of version "
                    f"{k} to version {k + 1}")
            self.migrations[k] = fn

        # the class of invoke(..., context=...) values, which nodes read as runtime.context
        self.context_schema = context_schema
        self.schema = schema
        self.state = read_schema(schema)
        self.input_schema = input_schema
        self.output_schema = output_schema
        self.input_state = self._side_schema(input_schema, "input_schema")
        self.output_state = self._side_schema(output_schema, "output_schema")
        self.name = name or getattr(schema, "__name__", "graph")
        self.nodes: dict[str, NodeSpec] = {}
        self.edges: list[tuple[str, str]] = []
        self.joins: list[tuple[tuple[str, ...], str]] = []
        self.branches: list[BranchSpec] = []
        self.weighted: list[tuple[str, dict[str, float]]] = []
        self.loops: dict[str, LoopSpec] = {}  # for-each and while nodes (see graph/_loops.py)
        # add_error_edge: (node, handler, exception types), in the order added
        self.error_edges: list[tuple[str, str, tuple[type[BaseException], ...]]] = []
        # add_transaction: name -> its nodes, a chain in order
        self.transactions: dict[str, tuple[str, ...]] = {}

    def _side_schema(self, cls: Any, role: str) -> Any:
        """Read another schema of the graph (input, output, a node's input) and add its keys to
        the state's; None for None (or the state's own class)."""
        if cls is None or cls is self.schema:
            return None
        from agentgraph_nb.state._schema import read_schema

        side = read_schema(cls)
        if side.kind in ("dict", "root") or self.state.kind in ("dict", "root"):
            raise GraphValidationError(
                f"{role}={getattr(cls, '__name__', cls)!r}: input and output schemas need a state schema with "
                f"keys (a TypedDict, dataclass or pydantic model) on both sides; the state is {self.state.name}"
            )
        self.state.extend(side, role)
        side.own_keys = side.key_set  # a view: filters the state down to its keys
        return side

    # -- nodes ------------------------------------------------------------------------------------
    def add_node(
        self,
        node: str | Callable[..., Any],
        fn: Callable[..., Any] | str | None = None,
        *,
        retry: RetryPolicy | None = None,
        timeout: float | None = None,
        destinations: Sequence[str] | None = None,
        metadata: Mapping[str, Any] | None = None,
        input_schema: Any = None,
        compensate: Callable[..., Any] | None = None,
        cache: CachePolicy | bool | None = None,
        cache_policy: CachePolicy | None = None,
        resources: Mapping[str, Any] | None = None,
    ) -> Self:
        """Add a node: a sync or async callable taking the state and returning an update dict,
        ``None`` or a :class:`~agentgraph_nb.Command`; or a compiled graph, which runs as a
        subgraph (the keys the two schemas share flow in and out; its checkpoints live under the
        namespace ``node`` of the parent's thread; see the README's "Subgraphs").

        Args:
            node: the node's name, or the callable itself (named after ``__name__``; a compiled
                graph after its name).
            fn: the callable (or compiled graph), when ``node`` is a name; or an import path
                ``"package.module:function"``, located now and imported when the graph first
                runs (``add_node("pkg.mod:fetch")`` alone names the node ``fetch``).
            retry: how to retry it when it fails (default: no retry).
            timeout: seconds after which an attempt fails with ``NodeTimeoutError``.
            destinations: nodes it may send to with ``Command(goto=...)`` (for drawing and checks).
                Default: what its return annotation says, ``-> Command[Literal["a", "b"]]``.
            metadata: free-form data kept with the node (shown in exports).
            input_schema: the node's view of the state: it receives only these keys, as this
                class (keys the state lacks become state keys). Default: the class its first
                parameter is annotated with, when that is another TypedDict, dataclass or
                pydantic model (as in LangGraph); else the whole state.
            compensate: makes the node a step of a saga: ``compensate(state)`` undoes its side
                effect (a refund for a charge) when the run later fails for good. The
                compensations of the nodes that completed on the thread since its last finished
                run run newest first, once each, durably (see the README's "Sagas").
            cache: a :class:`~agentgraph_nb.CachePolicy` (or True for the default one): a run
                whose input to this node was seen before skips it and applies the saved result
                (``compile(cache=...)`` says where results live; default: in memory).
            cache_policy: the same, under LangGraph's name.
            resources: what the node needs of a machine when it runs on a cluster
                (``invoke(..., executor="ray")``): ``{"num_cpus": 2, "num_gpus": 1, "memory":
                2**30, "resources": {"custom": 1}}`` (Ray's names; memory in bytes). Ignored when
                the graph runs in this process.

        Raises:
            GraphValidationError: a bad name or option; a subgraph that shares no state key
                with this graph, or that contains this graph (naming both graphs).

        Example:
            >>> def triage(state: State) -> Command[Literal["answer", "escalate"]]: ...
            >>> g.add_node("triage", triage)          # drawn with edges to answer and escalate
            >>> g.add_node("research", research_app)  # a compiled graph: a subgraph
        """
        if fn is None and isinstance(node, str) and ":" in node:  # add_node("pkg.mod:fn"): named fn
            fn, node = node, node.rpartition(":")[2].rpartition(".")[2]
        if isinstance(fn, str):  # "package.module:function", imported on first run
            from agentgraph_nb.graph._lazy_node import LazyNode

            if not isinstance(node, str) or not node:
                raise GraphValidationError(f"node names must be non-empty strings, got {node!r}")
            fn = LazyNode(node, fn)
        if fn is None:
            if isinstance(node, str):
                raise GraphValidationError(f"add_node({node!r}): missing the callable to run")
            fn = node
            node = getattr(fn, "__name__", None) or type(fn).__name__
            if _is_compiled(fn):
                node = cast(Any, fn).name  # add_node(team_app): the graph's name
        if not isinstance(node, str) or not node:
            raise GraphValidationError(f"node names must be non-empty strings, got {node!r}")
        if node in RESERVED:
            raise GraphValidationError(f"{node!r} is a reserved name (START/END); choose another node name")
        if node in self.nodes:
            raise GraphValidationError(f"node {node!r} is already in graph {self.name!r}; node names must be unique")
        if not callable(fn) and not _is_compiled(fn):
            raise GraphValidationError(
                f"node {node!r}: expected a function or callable object, got {type(fn).__name__} {fn!r}"
            )
        if retry is not None and not isinstance(retry, RetryPolicy):
            raise GraphValidationError(f"node {node!r}: retry= must be a RetryPolicy, got {retry!r}")
        if timeout is not None and (
            not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or not timeout > 0 or math.isinf(timeout)
        ):
            raise GraphValidationError(f"node {node!r}: timeout= must be a positive number of seconds, got {timeout!r}")
        if _is_compiled(fn):  # a graph as a node (see graph/_subgraph.py)
            if input_schema is not None:
                raise GraphValidationError(
                    f"node {node!r}: a subgraph receives the keys its schema shares with graph {self.name!r}; "
                    "input_schema= does not apply to it"
                )
            from agentgraph_nb.graph._subgraph import make_subgraph_node

            fn = cast("Callable[..., Any]", make_subgraph_node(self, node, cast(Any, fn)))
        hints = _hints_of(fn)  # {} for an unannotated callable, at no cost
        if destinations is None:
            destinations = command_destinations(fn, hints)
        elif isinstance(destinations, str) or not all(isinstance(d, str) for d in destinations):
            raise GraphValidationError(
                f"node {node!r}: destinations= must be a list of node names, got {destinations!r}"
            )
        if input_schema is None and self.state.kind not in ("dict", "root"):
            input_schema = _state_class_of(fn, self.schema, hints)
        if compensate is not None and not callable(compensate):
            raise GraphValidationError(
                f"node {node!r}: compensate= must be a function undoing the node's effect, got "
                f"{type(compensate).__name__} {compensate!r}"
            )
        view = self._side_schema(input_schema, f"node {node!r}: input_schema")
        policy = None
        if cache is not None or cache_policy is not None:
            from agentgraph_nb.graph._cache import cache_policy_of

            policy = cache_policy_of(node, cache, cache_policy)
        res = None
        if resources is not None:
            from agentgraph_nb.distributed._resources import check_resources

            res = check_resources(node, resources)
        self.nodes[node] = NodeSpec(
            node, fn, retry, float(timeout) if timeout is not None else None,
            tuple(destinations) if destinations is not None else None, dict(metadata or {}),
            input_schema if view is not None else None, view, compensate, policy, res,
        )
        return self

    def add_sequence(self, nodes: Sequence[Callable[..., Any] | tuple[str, Callable[..., Any]]]) -> Self:
        """Add nodes and chain them with edges, in order (LangGraph's ``add_sequence``). Each item
        is a callable (named after ``__name__``) or a ``(name, callable)`` pair. Add the edge from
        ``START`` (or any other node) to the first one yourself.

        Example:
            >>> g.add_sequence([plan, ("search", search_web), write]).add_edge(START, "plan")
        """
        if isinstance(nodes, (str, bytes)) or not isinstance(nodes, Sequence):
            raise GraphValidationError(
                f"add_sequence() takes a list of nodes (callables or (name, callable) pairs), got {type(nodes).__name__}"
            )
        if not nodes:
            raise GraphValidationError("add_sequence([]): a sequence needs at least one node")
        names: list[str] = []
        for i, item in enumerate(nodes):
            if isinstance(item, tuple):
                if len(item) != 2 or not isinstance(item[0], str):
                    raise GraphValidationError(
                        f"add_sequence(): item {i} is {item!r}; give a callable or a (name, callable) pair"
                    )
                name, fn = item
            elif callable(item):
                fn = item
                name = getattr(fn, "__name__", None) or type(fn).__name__
            else:
                raise GraphValidationError(
                    f"add_sequence(): item {i} is {type(item).__name__} {item!r}; give a callable or a (name, callable) pair"
                )
            if name in names:
                raise GraphValidationError(
                    f"add_sequence(): node {name!r} appears twice in the sequence; node names must be unique"
                )
            self.add_node(name, fn)
            names.append(name)
        for a, b in itertools.pairwise(names):
            self.add_edge(a, b)
        return self

    def add_foreach(
        self,
        name: str,
        fn: Callable[..., Any],
        *,
        over: str,
        into: str,
        max_concurrency: int = 4,
        retry: RetryPolicy | None = None,
        on_error: str = "raise",
        errors_into: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> Self:
        """Add a for-each node: it runs ``fn(item)`` for every item of the list in state key
        ``over`` and writes the results, in input order, to ``into`` (one update: through
        ``into``'s reducer when it has one, so ``Annotated[list, operator.add]`` appends them;
        otherwise it replaces the list). Edges to and from it are drawn as for any node.

        ``fn`` is sync or async and receives only the item; put what it needs from the state
        (an index, a setting) into the items. Sync items run on threads, async ones as tasks, at
        most ``max_concurrency`` at once. Each item is an execution of its own in the events and
        the Timeline, named ``"name[3]"``. In a run with a ``thread_id`` and a checkpointer each
        item's result is saved as it finishes, so resuming (after a crash, a failed item or an
        ``interrupt()`` in an item) runs only the items not finished.

        Args:
            name: the node's name.
            fn: the function run per item: ``fn(item) -> result``.
            over: the state key holding the list (a list or tuple at run time, else
                :class:`~agentgraph_nb.ForEachInputError`).
            into: the state key the list of results is written to.
            max_concurrency: items running at once (>= 1; 1 runs them one after another).
            retry: a :class:`RetryPolicy` applied to each item on its own (not to the loop).
            on_error: what an item that failed for good (after its retries) does:
                ``"raise"`` (default) fails the node with the item's own exception, which gets a
                note and an ``agentgraph_item`` attribute naming the item's index (the other items
                are stopped; nothing is written); ``"skip"`` leaves it out of the results;
                ``"collect"`` puts an :class:`~agentgraph_nb.ItemError` at its position.
            errors_into: a state key that receives the list of :class:`~agentgraph_nb.ItemError`
                of the run (``"skip"``/``"collect"``; an empty list when none failed).
            metadata: free-form data kept with the node.

        Raises:
            GraphValidationError: a key not in the state schema, ``max_concurrency < 1``, an
                unknown ``on_error``, naming the node.

        Example:
            >>> g.add_foreach("fetch_all", fetch, over="urls", into="pages", max_concurrency=8,
            ...               retry=RetryPolicy(max_attempts=3), on_error="collect")
        """
        from agentgraph_nb.graph._loops import (
            ForEachNode,
            LoopSpec,
            check_callable,
            validate_foreach,
        )

        self._check_loop_name(name)
        check_callable(fn, "the item function", name)
        over, into, max_concurrency, on_error, errors_into = validate_foreach(
            self, name, over, into, max_concurrency, on_error, errors_into, retry)
        node = ForEachNode(name, fn, over, into, max_concurrency, retry, on_error, errors_into)
        # the retry policy is kept for exports; it applies per item (the engine gets none, see _graph_def)
        self.add_node(name, node, retry=retry, metadata=metadata)
        self.loops[name] = LoopSpec("foreach", name, fn, over=over, into=into, max_concurrency=max_concurrency,
                                    on_error=on_error, errors_into=errors_into)
        return self

    def add_while(
        self,
        name: str,
        body: Callable[..., Any],
        *,
        condition: Callable[..., Any],
        max_iterations: int = 50,
        retry: RetryPolicy | None = None,
        timeout: float | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> Self:
        """Add a while loop: while ``condition(state)`` is true, run ``body(state)`` (a node
        function, sync or async, returning an update) and check again; then leave through the
        edges drawn from ``name`` (static or conditional, as for any node).

        Each iteration is a superstep of its own (a checkpoint, a Timeline bar, a Debugger
        step); leaving takes one more, short superstep that checks the condition and runs no
        body. With the condition false at entry the body never runs. The iterations done so
        far are counted in state key ``"<name>.iteration"`` (0 outside the loop), so a resumed
        run continues counting.

        Args:
            name: the loop's node name.
            body: the node function run once per iteration.
            condition: ``condition(state) -> bool``, a plain (sync) function of the state.
            max_iterations: the most iterations one entry into the loop may run (>= 1); one
                more with the condition still true is a :class:`~agentgraph_nb.LoopLimitError`
                naming the loop and the limit, and nothing after the loop runs.
            retry: a :class:`RetryPolicy` for each iteration.
            timeout: seconds an iteration may take.
            metadata: free-form data kept with the node.

        Raises:
            GraphValidationError: ``max_iterations < 1``, a condition that is not callable,
                a state that is one value (no keys to count in).

        Example:
            >>> g.add_while("refine", improve, condition=lambda s: s["score"] < 0.9, max_iterations=10)
        """
        from agentgraph_nb.graph._loops import (
            LoopSpec,
            WhileNode,
            add_loop_key,
            check_callable,
            positive_int,
        )

        self._check_loop_name(name)
        check_callable(body, "the body", name)
        check_callable(condition, "condition=", name)
        max_iterations = positive_int(max_iterations, "max_iterations", name)
        if self.state.kind == "root":
            raise GraphValidationError(
                f"while loop {name!r}: a loop needs a state with keys; the state of graph {self.name!r} is one value")
        self.add_node(name, WhileNode(name, body, condition, max_iterations), retry=retry, timeout=timeout,
                      metadata=metadata)
        add_loop_key(self, name)
        self.loops[name] = LoopSpec("while", name, body, condition=condition, max_iterations=max_iterations)
        return self

    def _check_loop_name(self, name: Any) -> None:
        if not isinstance(name, str) or not name:
            raise GraphValidationError(f"node names must be non-empty strings, got {name!r}")

    @overload
    def node(self, fn: Callable[..., Any], /) -> Callable[..., Any]: ...
    @overload
    def node(
        self, name: str | None = None, /, *, retry: RetryPolicy | None = None, timeout: float | None = None,
        destinations: Sequence[str] | None = None,
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]: ...

    def node(self, name: Any = None, /, **options: Any) -> Any:
        """Decorator form of :meth:`add_node`: ``@g.node`` or ``@g.node("name", retry=...)``.

        Example:
            >>> @g.node(retry=RetryPolicy(max_attempts=3))
            ... def search(state): ...
        """
        if callable(name) and not isinstance(name, str):
            self.add_node(name)
            return name

        def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
            self.add_node(name or fn.__name__, fn, **options)
            return fn

        return deco

    # -- edges ------------------------------------------------------------------------------------
    def add_edge(self, source: str | Sequence[str], target: str) -> Self:
        """Add an edge. Several edges from one node run their targets in parallel; a list of
        sources makes a join: ``add_edge(["a", "b"], "c")`` runs ``c`` once both have run."""
        if isinstance(source, str):
            self._check_name(source, "source")
            self._check_name(target, "target")
            self.edges.append((source, target))
        else:
            sources = tuple(source)
            if not sources:
                raise GraphValidationError(f"add_edge([], {target!r}): a join needs at least one source")
            for s in sources:
                self._check_name(s, "source")
            self._check_name(target, "target")
            if len(sources) == 1:
                self.edges.append((sources[0], target))
            else:
                self.joins.append((sources, target))
        return self

    def add_conditional_edges(
        self,
        source: str,
        router: Callable[..., Any],
        targets: Sequence[str] | Mapping[Hashable, str] | None = None,
    ) -> Self:
        """Route from ``source`` by calling ``router(state)`` after it runs.

        The router returns a node name, a list of names (run in parallel), :class:`Send`
        objects (dynamic fan-out), or ``END``. ``targets`` declares what it may return (a list
        of node names, or a mapping from the router's return values to node names); without it,
        the router's return annotation ``-> Literal["a", "b"]`` declares them, and without
        either any node is allowed and checked when the router returns.
        """
        self._check_name(source, "source")
        if not callable(router):
            raise GraphValidationError(f"add_conditional_edges({source!r}, ...): router {router!r} is not callable")
        path_map: dict[Hashable, str] | None = None
        tgt: tuple[str, ...] | None = None
        if isinstance(targets, Mapping):
            path_map = dict(targets)
            tgt = tuple(dict.fromkeys(path_map.values()))
        elif targets is not None:
            if isinstance(targets, str):
                targets = [targets]
            tgt = tuple(targets)
        else:  # LangGraph reads a router's `-> Literal["a", "b"]` as its declared targets
            tgt = _literal_names(_hints_of(router).get("return"))
        self.branches.append(BranchSpec(source, router, tgt, path_map))
        return self

    def add_weighted_edges(self, source: str, weights: Mapping[str, float]) -> Self:
        """After ``source``, run one of the targets picked at random with these weights.

        Picks come from the run's random generator: ``invoke(..., seed=7)`` is reproducible.

        Example:
            >>> g.add_weighted_edges("explore", {"a": 0.7, "b": 0.3})
        """
        self._check_name(source, "source")
        if not isinstance(weights, Mapping) or not weights:
            raise GraphValidationError(f"add_weighted_edges({source!r}, ...): weights must be a non-empty dict of node -> weight")
        clean: dict[str, float] = {}
        for t, w in weights.items():
            self._check_name(t, "target")
            if isinstance(w, bool) or not isinstance(w, (int, float)) or not w >= 0:
                raise GraphValidationError(
                    f"add_weighted_edges({source!r}): weight of {t!r} must be a finite number >= 0, got {w!r}"
                )
            try:
                clean[t] = float(w)
            except OverflowError:  # an int too large for a float
                clean[t] = math.inf
            if not math.isfinite(clean[t]):
                raise GraphValidationError(
                    f"add_weighted_edges({source!r}): weight of {t!r} must be a finite number >= 0, got {w!r}"
                )
        total = sum(clean.values())
        if not math.isfinite(total):
            raise GraphValidationError(
                f"add_weighted_edges({source!r}): the weights {_weights_text(clean)} add up to more than the largest "
                "float; scale them down (only their ratios matter, e.g. 0.7 and 0.3)"
            )
        if total <= 0:
            raise GraphValidationError(
                f"add_weighted_edges({source!r}): the weights {_weights_text(clean)} add up to 0; "
                "give at least one target a positive weight"
            )
        self.weighted.append((source, clean))
        return self

    def add_error_edge(
        self, node: str, handler: str,
        on: type[BaseException] | Sequence[type[BaseException]] = Exception,
    ) -> Self:
        """When ``node`` fails for good (after its retries) with one of the ``on`` exceptions,
        continue at ``handler`` instead of failing the run (try/except inside the graph).

        The failed node writes nothing and its own edges are not taken; ``handler`` runs in
        the next superstep (beside the failed node's siblings' successors) and reads the
        failure, a :class:`~agentgraph_nb.CaughtError` (``node``, ``error_type``, ``message``,
        ``attempt``, ``step``, ``error``), as ``state["__error__"]`` when its state is a dict,
        or from :func:`~agentgraph_nb.caught_error` with any state. A failure the edge does not
        catch fails the run as before. A handler that fails itself raises
        :class:`~agentgraph_nb.ErrorHandlerError` naming both nodes. Drawn as a dashed red edge.

        Example:
            >>> g.add_error_edge("fetch", "fallback", on=(ConnectionError, TimeoutError))
        """
        self._check_name(node, "source")
        self._check_name(handler, "target")
        types = (on,) if isinstance(on, type) else tuple(on) if isinstance(on, (tuple, list)) else (on,)
        bad = [t for t in types if not (isinstance(t, type) and issubclass(t, BaseException))]
        if bad or not types:
            raise GraphValidationError(
                f"add_error_edge({node!r}, {handler!r}): on= takes exception classes (e.g. "
                f"on=(ConnectionError, TimeoutError)), got {bad[0] if bad else on!r}"
            )
        if any(n == node for n, _, _ in self.error_edges):
            raise GraphValidationError(
                f"add_error_edge({node!r}, {handler!r}): node {node!r} already has an error edge; a node has "
                "at most one (give one handler several exception types with on=(...))"
            )
        self.error_edges.append((node, handler, types))
        return self

    def add_transaction(self, name: str, nodes: Sequence[str]) -> Self:
        """Make ``nodes``, a chain (each has an edge to the next, in this order), one
        transaction: if one of them fails for good, the run's state goes back to what it was
        before the first one ran, as if none had (its checkpoint is saved, and the thread's
        next task is the first node again: ``invoke(None, thread_id=...)`` re-runs the whole
        group). The group's compensations (``add_node(..., compensate=)``) run as for any
        failed run. While it runs, its nodes see each other's writes (so does anything running
        beside it); a failure an error edge catches does not roll it back.

        Example:
            >>> g.add_transaction("checkout", ["reserve", "charge", "ship"])

        Raises:
            GraphValidationError: an empty group, a node named twice or already in another
                transaction, a name already used (unknown nodes and a group that is not a chain
                are reported by ``compile()``).
        """
        if not isinstance(name, str) or not name:
            raise GraphValidationError(f"add_transaction({name!r}, ...): the name must be a non-empty string")
        if name in self.transactions:
            raise GraphValidationError(f"add_transaction({name!r}, ...): graph {self.name!r} already has a "
                                       "transaction of that name")
        if isinstance(nodes, str) or not isinstance(nodes, Sequence) or not nodes:
            raise GraphValidationError(
                f"add_transaction({name!r}, {nodes!r}): give the group's nodes as a non-empty list, in order")
        group = tuple(nodes)
        for n in group:
            self._check_name(n, "node of a transaction")
            if group.count(n) > 1:
                raise GraphValidationError(f"add_transaction({name!r}): node {n!r} appears twice in the group")
            for other, members in self.transactions.items():
                if n in members:
                    raise GraphValidationError(
                        f"add_transaction({name!r}): node {n!r} is already in transaction {other!r}; a node "
                        "belongs to one transaction at most")
        self.transactions[name] = group
        return self

    def set_entry_point(self, node: str) -> Self:
        """Same as ``add_edge(START, node)``."""
        return self.add_edge(START, node)

    def set_finish_point(self, node: str) -> Self:
        """Same as ``add_edge(node, END)``."""
        return self.add_edge(node, END)

    def _check_name(self, name: Any, role: str) -> None:
        if not isinstance(name, str) or not name:
            raise GraphValidationError(f"edge {role} must be a node name (str), got {name!r}")

    # -- compile ----------------------------------------------------------------------------------
    def validate(self) -> list[str]:
        """Check the graph; raise :class:`GraphValidationError` for definite mistakes and return
        the warnings (unreachable nodes, nodes with no way to END)."""
        from agentgraph_nb.graph._validate import validate

        return validate(self)

    def compile(
        self,
        checkpointer: BaseCheckpointer | str | None = "memory",
        *,
        interrupt_before: Sequence[str] | str | None = None,
        interrupt_after: Sequence[str] | str | None = None,
        name: str | None = None,
        step_timeout: float | None = None,
        serializer: Any = None,
        cache: Any = None,
        resources: Mapping[str, Any] | None = None,
    ) -> CompiledGraph:
        """Validate and freeze the graph into a runnable :class:`CompiledGraph`.

        Args:
            checkpointer: where checkpoints go: ``"memory"`` (default), ``"sqlite:///path.db"``,
                ``"postgresql://..."``, ``"redis://..."``, a store object, or ``None`` for no
                checkpoints at all. Runs are checkpointed only when they have a ``thread_id``.
            interrupt_before: nodes to pause before (``"*"`` for all; ``None`` or ``()`` for none).
            interrupt_after: nodes to pause after (``"*"`` for all; ``None`` or ``()`` for none).
            name: overrides the graph's name.
            step_timeout: seconds a superstep may take (``StepTimeoutError`` past it); also
                settable later, ``app.step_timeout = 30``, as in LangGraph.
            serializer: the :class:`~agentgraph_nb.checkpoint.serde.Serializer` of a store given
                by URL or path, e.g. ``Serializer(compression="zstd", keys={"k1": key},
                active_key="k1")`` for a state compressed and encrypted at rest (a store object
                takes its own: ``SqliteCheckpointer(path, serializer=...)``).
            cache: where the results of nodes with a ``CachePolicy`` live: ``"memory"``,
                ``"sqlite:///cache.db"``, ``"redis://host:6379/0"`` or a cache object (see
                :mod:`agentgraph_nb.cache`). Default: in memory when some node has a policy;
                ``False`` turns caching off.
            resources: long-lived objects nodes share, ``{"http": factory or Resource(factory,
                close=...)}``: opened on first use (``runtime.resources["http"]`` or
                ``get_resource("http")``), shared by all runs, closed by ``app.close()`` /
                ``await app.aclose()`` (see :mod:`agentgraph_nb.runtime`).

        Raises:
            GraphValidationError: unknown nodes in edges, undeclared router targets, no entry;
                a ``serializer`` with the in-memory store, a store object or ``None``.
            NodeImportError: a node given as ``"module:function"`` cannot be imported.
        """
        import warnings

        from agentgraph_nb.errors import GraphValidationWarning
        from agentgraph_nb.graph.compiled import CompiledGraph

        for w in self.validate():
            warnings.warn(w, GraphValidationWarning, stacklevel=2)
        for spec in self.nodes.values():  # nodes given as "module:function": imported now (NodeImportError)
            if type(spec.fn).__name__ == "LazyNode":
                cast(Any, spec.fn).resolve()
        interrupt_before = _node_list("interrupt_before", interrupt_before)
        interrupt_after = _node_list("interrupt_after", interrupt_after)
        for label, names in (("interrupt_before", interrupt_before), ("interrupt_after", interrupt_after)):
            for n in names:
                if isinstance(n, str) and "|" in n:  # a breakpoint inside a subgraph
                    from agentgraph_nb.graph._subgraph import check_breakpoint_path

                    check_breakpoint_path(self, n, label, GraphValidationError)
                elif n != "*" and n not in self.nodes:
                    raise GraphValidationError(
                        f"{label}: unknown node {n!r}.{did_you_mean(n, self.nodes)}"
                    )
        return CompiledGraph(
            self,
            checkpointer=checkpointer,
            interrupt_before=interrupt_before,
            interrupt_after=interrupt_after,
            name=name,
            step_timeout=step_timeout,
            serializer=serializer,
            cache=cache,
            resources=resources,
        )

    # -- export -----------------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        """The graph as a JSON-able dict (format ``agentgraph_nb/graph`` v1)."""
        from agentgraph_nb.export.json import graph_to_json

        return graph_to_json(self)

    @classmethod
    def from_json(
        cls,
        data: Mapping[str, Any] | str,
        *,
        schema: Any = None,
        namespace: Mapping[str, Any] | None = None,
        allow_modules: Sequence[str] = (),
        migrations: Mapping[int, Callable[[dict[str, Any]], dict[str, Any]]] | None = None,
    ) -> StateGraph:
        """Rebuild a builder from :meth:`to_json` output (a dict or its JSON text).

        A graph file is data, and loading one runs nothing the caller did not allow. Each node's
        (and router's) callable is looked up in ``namespace`` under the node's name, then the
        name a notebook cell bound it to, then its function's qualified name (exact keys only);
        failing that, it is imported from its ``module:qualname`` target **only** when that
        module is in ``allow_modules`` (or inside one of those packages). Anything else is a
        :class:`GraphValidationError` naming the node and its target, and nothing is imported.

        The file keeps the state's ``version`` and names its ``migrations`` (``to_json`` writes
        them for a graph past version 1); each migration is found as a node's callable is, or
        given with ``migrations=``, so checkpoints written under older versions load upgraded in
        the rebuilt graph too. A migration that cannot be found is a
        :class:`~agentgraph_nb.errors.StateMigrationError` naming the versions.

        Args:
            data: the :meth:`to_json` dict or JSON text.
            schema: the state schema (default: ``namespace[<schema name>]``, else ``dict``).
            namespace: name -> callable (and schema) to resolve from, e.g. ``globals()``.
            allow_modules: modules (or packages) the file's targets may be imported from.
            migrations: ``{k: upgrade}`` steps to use instead of (or where the file cannot name)
                the file's; e.g. for lambdas, which have no importable name.

        Example:
            >>> g = StateGraph.from_json(text, schema=State, namespace={"plan": plan, "route": route})
            >>> g = StateGraph.from_json(text, schema=State, allow_modules=["myapp.nodes"])
        """
        from agentgraph_nb.export.json import graph_from_json

        return graph_from_json(cls, data, schema=schema, namespace=namespace, allow_modules=allow_modules,
                               migrations=migrations)

    def __repr__(self) -> str:
        return f"StateGraph({self.name!r}: {len(self.nodes)} nodes)"
