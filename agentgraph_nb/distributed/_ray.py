"""The Ray executor: every node execution of a run becomes a Ray task (``executor="ray"``).

The driver keeps the engine (the superstep loop, retries, timeouts, reducers, routing, interrupts,
checkpoints, events): a worker only calls the node's function (see ``_worker.py``). So a run
under Ray merges, retries, pauses and checkpoints exactly as it does locally, and the parallel
branches of a step run as parallel Ray tasks, on whichever machines have room for them.

- A node's function that pickles small (under 64 KiB: a module-level function, a small closure)
  travels inline with each task, which costs less than the worker fetching it from the object
  store every time; a larger one is put in the object store once per executor (``ray.put``).
- Large input values (``big_value`` bytes or more: bytes, str, arrays) go as separate
  object-store arguments, put once and shared by the steps and branches that read them.
- A worker process or a machine that dies mid-node: Ray runs the task again elsewhere
  (``max_retries`` system failures); the run goes on.
- Subgraph nodes, for-each and while loops run on the driver (their own nodes go to the
  cluster); so do nodes listed in ``local=`` and nodes taking a ``runtime`` (their resources
  live in the driver's process).
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from agentgraph_nb._lazy import requires_extra
from agentgraph_nb.distributed._resources import ray_options
from agentgraph_nb.engine import EMPTY_SLOT as _EMPTY
from agentgraph_nb.errors import (
    ClusterUnreachableError,
    GraphInterrupt,
    InvalidInputError,
    PlacementError,
    UnpicklableStateError,
)

if TYPE_CHECKING:
    from agentgraph_nb.engine import PNode, Run

__all__ = ["RayExecutor", "default_executor", "resolve_executor"]

logger = logging.getLogger("agentgraph_nb.distributed")

_BIG = 1 << 20  # input values at least this large travel as object-store arguments
_INLINE_FN = 64 << 10  # node functions that pickle smaller than this travel inline with each task


def _ray() -> Any:
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    with requires_extra('executor="ray"'):
        import ray
    return ray


class RayExecutor:
    """Runs node executions as Ray tasks. Pass it (or ``"ray"``) as ``executor=`` to
    ``invoke``/``ainvoke``/``stream``/``batch``.

    Args:
        address: the cluster to join (``"127.0.0.1:6379"``, ``"auto"``, ``"ray://host:10001"``);
            default: the one ``ray.init`` already joined in this process, else ``RAY_ADDRESS``,
            else a new local cluster (``ray.init()``).
        max_retries: times Ray runs a task again when its worker process or machine dies
            (system failures; a node's own exceptions go to its ``RetryPolicy``).
        placement_timeout: seconds to wait for a machine offering what a node's ``resources=``
            ask for before raising :class:`~agentgraph_nb.PlacementError` (instead of a hang).
        connect_timeout: seconds to try reaching ``address`` before
            :class:`~agentgraph_nb.ClusterUnreachableError`.
        local: names of nodes that always run on the driver.
        default_resources: what a node without ``resources=`` asks for (Ray's default: 1 CPU).
        big_value: input values of at least this many bytes go through the object store as
            arguments of their own (put once, shared).
        init_kwargs: more keyword arguments for ``ray.init`` when this executor starts Ray.

    Attributes:
        tasks: node executions submitted so far; ``in_flight``: those not back yet;
            ``workers``: finished executions per worker (``"host:pid"`` ->
            ``{"host", "node_id", "ip", "done", "busy"}``, busy in seconds; see :meth:`worker_frame`).
    """

    def __init__(
        self,
        address: str | None = None,
        *,
        max_retries: int = 3,
        placement_timeout: float = 30.0,
        connect_timeout: float = 15.0,
        local: Iterable[str] = (),
        default_resources: dict[str, Any] | None = None,
        big_value: int = _BIG,
        init_kwargs: dict[str, Any] | None = None,
    ) -> None:
        if isinstance(local, str):
            local = (local,)
        self.address = address
        self.max_retries = int(max_retries)
        self.placement_timeout = float(placement_timeout)
        self.connect_timeout = float(connect_timeout)
        self.local = frozenset(local)
        self.default_resources = dict(default_resources or {})
        self.big_value = int(big_value)
        self.init_kwargs = dict(init_kwargs or {})
        self._lock = threading.Lock()
        self._started = False
        self._remote: Any = None
        self._fns: dict[int, tuple[Any, Any]] = {}  # id(fn) -> (fn, itself when small, else its object ref)
        self._opts: dict[int, Any] = {}  # id(node) -> (node, remote function with its options)
        self._feasible: set[tuple[Any, ...]] = set()
        self._big: dict[int, tuple[Any, Any]] = {}  # id(value) -> (value, ref): large inputs put once
        self.tasks = 0
        self.in_flight = 0
        self.workers: dict[str, dict[str, Any]] = {}  # "host:pid" -> {"host", "node_id", "ip", "done", "busy"}
        self._listeners: list[Callable[[str, dict[str, Any]], Any]] = []
        # watch(): where executions run now (see _live.py)
        self._starts: Any = None
        self._live_name: str | None = None
        self._flying: dict[str, tuple[str, str]] = {}  # Ray task id -> (run id, node), while watched
        self._placed: dict[str, dict[str, Any]] = {}  # Ray task id -> where it started

    def __repr__(self) -> str:
        return f"RayExecutor(address={self.address!r}, tasks={self.tasks})"

    # -- the cluster ------------------------------------------------------------------------------
    def start(self) -> RayExecutor:
        """Join (or start) the cluster now; runs do it on their first node otherwise."""
        if self._started:
            return self
        with self._lock:
            if self._started:
                return self
            ray = _ray()
            if not ray.is_initialized():
                address = self.address or os.environ.get("RAY_ADDRESS") or None
                if address and address not in ("auto", "local") and not address.startswith("ray://"):
                    _reachable(address, self.connect_timeout)
                t = time.perf_counter()
                kwargs = {"logging_level": logging.WARNING, "log_to_driver": True, **self.init_kwargs}
                try:
                    ray.init(address=address, **kwargs)
                except (ConnectionError, TimeoutError) as exc:
                    raise ClusterUnreachableError(
                        f"could not join the Ray cluster at {address!r} (tried for {time.perf_counter() - t:.1f} s): "
                        f"{exc}") from exc
            from agentgraph_nb.distributed._worker import run_node

            self._remote = ray.remote(run_node)
            self._started = True
        return self

    def nodes(self) -> list[dict[str, Any]]:
        """The alive machines of the cluster: ``{"node_id", "ip", "resources"}`` each."""
        ray = _ray()
        self.start()
        return [{"node_id": n["NodeID"], "ip": n.get("NodeManagerAddress", ""), "resources": n.get("Resources", {})}
                for n in ray.nodes() if n.get("Alive")]

    # -- the engine's hook (engine/_loop.py: Run.task_exec) ---------------------------------------
    def _runs_here(self, node: PNode) -> bool:
        fn = node.fn
        if node.name in self.local or fn is None:
            return True
        from agentgraph_nb.graph._loops import ForEachNode, WhileNode
        from agentgraph_nb.graph._subgraph import SubgraphNode

        if isinstance(fn, (SubgraphNode, ForEachNode, WhileNode)):
            return True
        return bool(getattr(fn, "takes_runtime", False))

    def sync_fn(self, run: Run, node: PNode, index: int) -> Callable[[Any], Any]:
        """The callable that runs one execution of ``node`` on the cluster and waits for it."""
        if self._runs_here(node):
            return node.fn  # type: ignore[return-value]
        ray = _ray()

        wait = node.timeout + 5.0 if node.timeout is not None else None

        attempt = 0  # one call per attempt (the engine retries by calling again)

        def call(inp: Any) -> Any:
            nonlocal attempt
            attempt += 1
            ref = self._submit(run, node, index, inp)
            try:
                out = ray.get(ref, timeout=wait)  # a node with a timeout: the engine gave up already
            except ray.exceptions.RayTaskError as exc:
                raise self._failed(run, node, index, attempt, _cause(exc)) from None
            except ray.exceptions.GetTimeoutError:
                ray.cancel(ref, force=True)
                raise
            finally:
                self._done(ref)
            return self._finish(run, node, index, attempt, out)

        return call

    def async_fn(self, run: Run, node: PNode, index: int) -> tuple[Callable[[Any], Any], bool]:
        """``(callable, is_async)``: an awaitable execution on the cluster, or the node's own function."""
        if self._runs_here(node):
            return node.fn, node.is_async  # type: ignore[return-value]
        ray = _ray()

        attempt = 0

        async def call(inp: Any) -> Any:
            nonlocal attempt
            attempt += 1
            ref = self._submit(run, node, index, inp)
            try:
                out = await ref
            except ray.exceptions.RayTaskError as exc:
                raise self._failed(run, node, index, attempt, _cause(exc)) from None
            except BaseException:  # cancelled (a timeout, a failed sibling): stop the task too
                ray.cancel(ref, force=True)
                raise
            finally:
                self._done(ref)
            return self._finish(run, node, index, attempt, out)

        return call, True

    # -- one execution ----------------------------------------------------------------------------
    def _options(self, node: PNode) -> Any:
        got = self._opts.get(id(node))
        if got is not None and got[0] is node:
            return got[1]
        res = node.resources if node.resources is not None else self.default_resources
        opts = ray_options(res)
        self._check_placement(node, opts)
        remote = self._remote.options(max_retries=self.max_retries, retry_exceptions=False,
                                      name=f"agentgraph_nb:{node.name}", **opts)
        self._opts[id(node)] = (node, remote)
        return remote

    def _check_placement(self, node: PNode, opts: dict[str, Any]) -> None:
        """Raise :class:`PlacementError` when no alive machine offers what ``node`` asks for,
        after waiting ``placement_timeout`` seconds for one to join."""
        need = {"CPU": opts.get("num_cpus", 1), "GPU": opts.get("num_gpus", 0),
                "memory": opts.get("memory", 0), **opts.get("resources", {})}
        need = {k: v for k, v in need.items() if v}
        key = tuple(sorted(need.items()))
        if not need or key in self._feasible:
            return
        t0 = time.monotonic()
        while True:
            machines = self.nodes()
            if any(all(m["resources"].get(k, 0) >= v for k, v in need.items()) for m in machines):
                self._feasible.add(key)
                return
            waited = time.monotonic() - t0
            if waited >= self.placement_timeout:
                have = "; ".join(
                    f"{m['ip'] or m['node_id'][:8]}: " + ", ".join(
                        f"{k}={_fmt(v)}" for k, v in sorted(m["resources"].items())
                        if k in need or k in ("CPU", "GPU", "memory"))
                    for m in machines) or "no machine"
                asked = ", ".join(f"{k}={_fmt(v)}" for k, v in need.items())
                raise PlacementError(
                    f"node {node.name!r} asks for {asked}, which no machine of the Ray cluster offers "
                    f"(waited {waited:.1f} s for one to join; placement_timeout={self.placement_timeout:g}). "
                    f"Machines: {have}", node=node.name)
            time.sleep(min(0.5, self.placement_timeout))

    def _submit(self, run: Run, node: PNode, index: int, inp: Any) -> Any:
        from agentgraph_nb.distributed._worker import TaskContext

        self.start()
        remote = self._options(node)
        fn_ref = self._fn_ref(node.fn)
        big_keys: tuple[str, ...] = ()
        big_refs: list[Any] = []
        if type(inp) is dict and self.big_value:
            small = None
            for k, v in inp.items():
                if _size(v) >= self.big_value:
                    if small is None:
                        small = dict(inp)
                    del small[k]
                    big_keys += (k,)
                    big_refs.append(self._big_ref(v))
            if small is not None:
                inp = small
        carrier = _trace_carrier()
        from agentgraph_nb.engine import stream_sink_var as _sink

        sink = _sink.get()
        live = self._live_name
        ctx = TaskContext(run, node.name, index, carrier, bool(sink is not None and sink.custom), big_keys, live)
        try:
            ref = remote.remote(fn_ref, inp, ctx, *big_refs)
        except Exception as exc:
            bad = _unpicklable(inp)
            if bad is not None:
                path, err = bad
                raise UnpicklableStateError(
                    f"node {node.name!r}: the value at {path} of its input cannot be sent to a Ray worker "
                    f"({type(err).__name__}: {err}). Keep such objects out of the state (e.g. "
                    f"get_resource(), or a local= node)", node=node.name, path=path) from exc
            raise
        with self._lock:
            self.tasks += 1
            self.in_flight += 1
            if live is not None:
                self._flying[ref.task_id().hex()] = (run.run_id, node.name)
        return ref

    def _done(self, ref: Any) -> None:
        with self._lock:
            self.in_flight -= 1
            if self._flying:
                task_id = ref.task_id().hex()
                if self._flying.pop(task_id, None) is not None:
                    self._placed.pop(task_id, None)

    def _fn_ref(self, fn: Any) -> Any:
        """What a task gets as ``fn``: the function itself when it pickles small (inline in the
        task: no object-store fetch per task, ~0.7 ms less per node on a local cluster), else an
        object ref put once."""
        got = self._fns.get(id(fn))
        if got is not None and got[0] is fn:
            return got[1]
        ray = _ray()
        try:
            small = len(ray.cloudpickle.dumps(fn)) < _INLINE_FN
        except Exception:  # ray.put raises the same error, with Ray's own explanation
            small = False
        ref = fn if small else ray.put(fn)
        self._fns[id(fn)] = (fn, ref)
        return ref

    def _big_ref(self, value: Any) -> Any:
        got = self._big.get(id(value))
        if got is not None and got[0] is value:
            return got[1]
        ref = _ray().put(value)
        with self._lock:
            if len(self._big) >= 64:  # keep the newest ones
                self._big.pop(next(iter(self._big)))
            self._big[id(value)] = (value, ref)
        return ref

    def _finish(self, run: Run, node: PNode, index: int, attempt: int, out: tuple[Any, ...]) -> Any:
        kind, value, where, started, ended, custom = out
        self._ran(run, node, index, attempt, where, started, ended)
        if custom:
            from agentgraph_nb.engine import stream_sink_var as _sink

            sink = _sink.get()
            if sink is not None:
                for mode, item in custom:
                    sink.emit(mode, item)
        if kind == "error":
            raise value
        if kind == "raise":
            if isinstance(value, GraphInterrupt):
                if run.asked_at is _EMPTY:
                    run.asked_at = {}
                for intr in value.interrupts:
                    run.asked_at[intr.id] = index
            raise value
        return value

    def _failed(self, run: Run, node: PNode, index: int, attempt: int, exc: BaseException) -> BaseException:
        """A node's exception from its worker: where and when it ran there is said as for a
        success (``node_worker``, before the engine's ``node_retry``/``node_error``)."""
        ran = getattr(exc, "_agentgraph_ran", None)
        if type(ran) is tuple and len(ran) == 3:
            try:
                del exc._agentgraph_ran  # type: ignore[attr-defined]
            except AttributeError:
                pass
            self._ran(run, node, index, attempt, *ran)
        return exc

    def _ran(self, run: Run, node: PNode, index: int, attempt: int, where: dict[str, Any], started: float,
             ended: float) -> None:
        with self._lock:
            w = self.workers.get(where["worker"])
            if w is None:
                w = self.workers[where["worker"]] = {"host": where["host"], "node_id": where["node_id"],
                                                      "ip": where.get("ip", ""), "done": 0, "busy": 0.0}
            w["done"] += 1
            w["busy"] += ended - started
        if run.emit is not None:
            step = run.step + 1
            run.emit("node_worker", step, node.name, ended - started, attempt, f"{step}:{index}", dict(where))

    # -- what runs where now (a live view's data) ---------------------------------------------------
    @property
    def watching(self) -> bool:
        """Whether workers report the start of each execution (see :meth:`watch`)."""
        return self._live_name is not None

    def watch(self) -> RayExecutor:
        """Have each node execution report when it starts and where, so that :meth:`worker_stats`
        can say which worker runs what *now* (the Dashboard's worker panel calls this). Costs a
        list append per execution on the worker, and one message per worker at most every
        0.1 s; executions shorter than that may never show as running. Returns ``self``."""
        if self._starts is None:
            from agentgraph_nb.distributed._live import Starts

            self.start()
            with self._lock:
                if self._starts is None:
                    import uuid

                    self._starts = Starts(_ray(), f"agentgraph_nb-starts-{uuid.uuid4().hex[:12]}")
                    self._live_name = self._starts.name
        return self

    def unwatch(self) -> None:
        """Stop the start reports (and forget what runs where)."""
        with self._lock:
            starts, self._starts, self._live_name = self._starts, None, None
            self._flying.clear()
            self._placed.clear()
        if starts is not None:
            starts.close()

    def worker_stats(self) -> tuple[list[dict[str, Any]], int]:
        """Per worker (``"host:pid"``), in the order first seen: ``{"worker", "host", "node_id",
        "ip", "done", "busy_s", "nodes_in_flight", "runs_in_flight"}``; and how many executions
        are in flight with no worker known yet (queued for a free CPU, or just started).

        ``done`` and ``busy_s`` count executions whose result came back; the in-flight counts
        need :meth:`watch` (else they are 0 and every execution in flight counts as unplaced).
        Never waits for the cluster."""
        starts = self._starts
        new = starts.poll() if starts is not None else {}
        with self._lock:
            flying, placed = self._flying, self._placed
            for task_id, where in new.items():
                if task_id in flying:
                    placed[task_id] = where
            nodes: dict[str, int] = {}
            runs: dict[str, set[str]] = {}
            seen: dict[str, dict[str, Any]] = {}
            for task_id, where in placed.items():
                w = str(where.get("worker"))
                nodes[w] = nodes.get(w, 0) + 1
                runs.setdefault(w, set()).add(flying[task_id][0])
                seen.setdefault(w, where)
            rows = []
            for w, v in self.workers.items():
                rows.append({"worker": w, "host": v["host"], "node_id": v["node_id"], "ip": v.get("ip", ""),
                             "done": v["done"], "busy_s": v["busy"], "nodes_in_flight": nodes.get(w, 0),
                             "runs_in_flight": len(runs.get(w, ()))})
            for w, where in seen.items():
                if w not in self.workers:  # started its first execution, none back yet
                    rows.append({"worker": w, "host": where.get("host", ""), "node_id": where.get("node_id", ""),
                                 "ip": where.get("ip", ""), "done": 0, "busy_s": 0.0, "nodes_in_flight": nodes[w],
                                 "runs_in_flight": len(runs[w])})
            unplaced = max(self.in_flight - len(placed), 0)
        return rows, unplaced

    def worker_frame(self) -> Any:
        """Node executions per worker as a pandas DataFrame: ``worker`` (``"host:pid"``), ``host``,
        ``node_id`` (the Ray node's, first 12 characters), ``done`` and ``busy_s`` (executions
        back and their seconds on the worker), ``nodes_in_flight`` and ``runs_in_flight`` (what it
        runs now; needs :meth:`watch`, else 0)."""
        import pandas as pd

        rows, _ = self.worker_stats()
        cols = ["worker", "host", "node_id", "done", "busy_s", "nodes_in_flight", "runs_in_flight"]
        return pd.DataFrame([{**r, "node_id": r["node_id"][:12], "busy_s": round(r["busy_s"], 6)} for r in rows],
                            columns=cols)


def _fmt(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def _size(v: Any) -> int:
    t = type(v)
    if t is bytes or t is str or t is bytearray:
        return len(v)
    nbytes = getattr(v, "nbytes", None)  # numpy arrays
    return nbytes if type(nbytes) is int else 0


def _cause(exc: Any) -> BaseException:
    """A node's own exception out of Ray's wrapper (its type is what retries and error edges test)."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, BaseException):
        if sys.version_info >= (3, 11):
            cause.add_note(f"(raised in a Ray worker: pid {getattr(exc, 'pid', '?')}, {getattr(exc, 'ip', '?')})")
        return cause
    return exc  # type: ignore[no-any-return]


def _unpicklable(value: Any, path: str = "state", depth: int = 0) -> tuple[str, BaseException] | None:
    """The first part of ``value`` that cannot be pickled, as ``(path, error)``, or None."""
    from ray import cloudpickle

    try:
        cloudpickle.dumps(value)
        return None
    except Exception as err:
        if depth > 20:
            return path, err
        items: Iterable[tuple[str, Any]] = ()
        if isinstance(value, dict):
            items = ((f"{path}[{k!r}]", v) for k, v in value.items())
        elif isinstance(value, (list, tuple)):
            items = ((f"{path}[{i}]", v) for i, v in enumerate(value))
        elif hasattr(value, "__dict__"):
            items = ((f"{path}.{k}", v) for k, v in vars(value).items())
        for p, v in items:
            found = _unpicklable(v, p, depth + 1)
            if found is not None:
                return found
        return path, err


def _reachable(address: str, timeout: float) -> None:
    """Fail fast, naming the address, when nothing listens at ``host:port``."""
    host, _, port = address.rpartition(":")
    if not port.isdigit():
        return
    t = time.perf_counter()
    deadline = t + timeout
    while True:
        try:
            socket.create_connection((host or "127.0.0.1", int(port)), timeout=min(2.0, timeout)).close()
            return
        except OSError as exc:
            if time.perf_counter() >= deadline:
                raise ClusterUnreachableError(
                    f"could not reach the Ray cluster at {address!r} (tried for {time.perf_counter() - t:.1f} s: "
                    f"{exc}). Start it with `ray start --head --port {port}` or give another address") from exc
            time.sleep(0.25)


def _trace_carrier() -> dict[str, str] | None:
    """The current OpenTelemetry context (the node's span when instrumented) as headers; None
    (at no cost) unless OpenTelemetry is in use in this process."""
    if "opentelemetry.propagate" not in sys.modules and "opentelemetry.trace" not in sys.modules:
        return None
    from opentelemetry import trace
    from opentelemetry.propagate import inject

    if not trace.get_current_span().get_span_context().is_valid:
        return None
    carrier: dict[str, str] = {}
    inject(carrier)
    return carrier


_DEFAULT: RayExecutor | None = None


def default_executor() -> RayExecutor:
    """The process's ``executor="ray"``: one :class:`RayExecutor` joining ``RAY_ADDRESS`` (or the
    cluster ``ray.init`` joined)."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = RayExecutor()
    return _DEFAULT


def resolve_executor(executor: Any) -> Any:
    """``executor=`` of a run: ``"ray"``, a :class:`RayExecutor` (or anything with ``sync_fn`` and
    ``async_fn``), or ``"local"``/None for this process."""
    if executor is None or executor == "local":
        return None
    if executor == "ray":
        return default_executor().start()
    if hasattr(executor, "sync_fn") and hasattr(executor, "async_fn"):
        start = getattr(executor, "start", None)
        return start() if callable(start) else executor
    raise InvalidInputError(f"executor= must be 'ray', 'local' or a RayExecutor, got {executor!r}")
