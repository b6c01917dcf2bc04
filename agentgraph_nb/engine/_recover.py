"""What happens when a node fails for good: error edges and sagas.

**Error edges** (``StateGraph.add_error_edge(node, handler, on=...)``): when ``node`` has used
up its retries and its exception is one of ``on``, its task does not fail the run: it ends with
no write and a :class:`_Divert` as its ``goto``, which routing turns into a task of ``handler``
(and nothing else: the node's own edges are not taken). The handler's task carries the
:class:`~agentgraph_nb.CaughtError` as its argument, so the checkpoint of the step that failed
records it in its ``next`` and a handler resumed in another process reads it too.

**Sagas** (``add_node(..., compensate=fn)``): when a run fails for good, the compensations of
the nodes that completed on the thread since its last finished checkpoint (without a thread:
in this run) run in reverse completion order, once each. Progress is recorded as pending writes
``"__compensate__"`` of the thread's newest checkpoint (a start mark, then one per compensation
done), so a process that dies while compensating leaves a thread that the next
``invoke``/``stream`` on it finishes compensating; the end is a checkpoint with no next task
(source ``"compensate"``), so the thread is finished and resuming it runs nothing.

The engine calls in here only on failures (and for handler tasks), so graphs without these
features pay nothing on their hot path.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from types import CoroutineType
from typing import TYPE_CHECKING, Any

from agentgraph_nb.checkpoint.base import PendingWrite
from agentgraph_nb.errors import (
    CheckpointConflictError,
    CompensationError,
    ErrorHandlerError,
    NodeError,
)
from agentgraph_nb.types import CaughtError, NodeFailure, Send

if TYPE_CHECKING:
    from agentgraph_nb.engine._loop import Run
    from agentgraph_nb.engine._plan import NodeDef, Plan, PNode

__all__ = [
    "COMPENSATE_WRITE",
    "NodeRecovery",
    "caught_error",
    "compensate_failed",
    "diverted_task",
    "handler_input",
    "note_completed",
    "on_failure",
    "resume_compensation",
    "saga_progress",
    "setup_recovery",
]

logger = logging.getLogger("agentgraph_nb")

COMPENSATE_WRITE = "__compensate__"  # pending-write node name of a saga's compensation records
ERROR_KEY = "__error__"  # where a handler with a dict state finds the CaughtError


class NodeRecovery:
    """What a node does on a final failure: its error edge (``on`` types, handler), its
    compensation; ``is_handler`` for the handler of an error edge."""

    __slots__ = ("compensate", "handler", "is_handler", "on", "tx")

    def __init__(self) -> None:
        self.on: tuple[type[BaseException], ...] = ()
        self.handler: PNode | None = None
        self.compensate: Any = None
        self.is_handler = False
        self.tx: tuple[str, int, PNode] | None = None  # transaction name, position, its first node


class _Divert(Send):
    """The ``goto`` of a failed task whose error an error edge caught: run ``handler`` instead
    of the node's edges. Saved (a parallel step's pending write) as a plain ``Send``."""

    __slots__ = ()


def setup_recovery(plan: Plan, defs: Sequence[NodeDef]) -> bool:
    """Give the plan's nodes their :class:`NodeRecovery`; True when a failed run has something
    to do (a compensation, or a transaction to roll back)."""
    compensating = False
    firsts: dict[str, PNode] = {}
    for n, d in zip(plan.nodes, defs):
        tx = getattr(d, "transaction", None)
        if tx is not None and tx[1] == 0:
            firsts[tx[0]] = n
    for n, d in zip(plan.nodes, defs):
        catch = getattr(d, "catch", None)
        comp = getattr(d, "compensate", None)
        tx = getattr(d, "transaction", None)
        if tx is not None:
            rec = n.recover = n.recover or NodeRecovery()
            rec.tx = (tx[0], tx[1], firsts[tx[0]])
            compensating = True
        if catch is None and comp is None:
            continue
        rec = n.recover = n.recover or NodeRecovery()
        if catch is not None:
            rec.on = catch[0]
            handler = plan.by_name[catch[1]]
            rec.handler = handler
            hrec = handler.recover = handler.recover or NodeRecovery()
            hrec.is_handler = True
        if comp is not None:
            rec.compensate = comp
            compensating = True
    return compensating


# -- error edges ------------------------------------------------------------------------------------
def _handled(run: Run, index: int) -> CaughtError | None:
    """The error the task at ``index`` of the running step handles, if it is a handler's task."""
    tasks = run.tasks
    if type(index) is int and 0 <= index < len(tasks):
        arg = tasks[index][1]
        if type(arg) is CaughtError:
            return arg
    return None


def on_failure(run: Run, node: PNode, step: int, attempt: int, index: int, exc: BaseException,
               err: BaseException) -> tuple[Any, Any] | None:
    """A node with a :class:`NodeRecovery` failed for good (``err``: what would be raised).
    Return the task's diverted result when an error edge catches it; raise
    :class:`ErrorHandlerError` when the node was handling another's failure; else None."""
    rec: NodeRecovery = node.recover
    if rec.handler is not None and isinstance(exc, rec.on):
        failure = getattr(exc, "agentgraph_failure", None)
        where = failure.where if isinstance(failure, NodeFailure) and failure.path else node.name
        info = CaughtError(where, type(exc).__name__, str(exc), attempt, step, exc)
        node.stats.caught += 1
        logger.warning("node %r failed (%s: %s); its error edge continues at %r", node.name, info.error_type,
                       info.message, rec.handler.name, extra=run._log_extra(step, node.name))
        if run.emit is not None:
            run.emit("error_caught", step, node.name, 0.0, attempt, f"{step}:{index}",
                     {"error": info, "handler": rec.handler.name})
        return None, _Divert(rec.handler.name, info)
    handled = _handled(run, index) if rec.is_handler else None
    if handled is not None:
        if handled.error is not None and exc.__context__ is None and exc is not handled.error:
            exc.__context__ = handled.error
        raise ErrorHandlerError(
            f"error handler {node.name!r} failed at step {step} while handling the failure of node "
            f"{handled.node!r} ({handled.error_type}: {handled.message}): {type(exc).__name__}: {exc}",
            node=node.name, step=step, attempt=attempt, failed_node=handled.node, original=handled,
        ) from exc
    return None


def diverted_task(run: Run, goto: Any) -> tuple[Any, Any] | None:
    """The handler task a failed task's ``goto`` diverts to (also as restored from a pending
    write: ``[Send(handler, CaughtError)]``), or None for an ordinary goto."""
    if type(goto) is _Divert:
        return run.plan.by_name[goto.node], goto.arg
    if type(goto) is list and len(goto) == 1 and isinstance(goto[0], Send) and type(goto[0].arg) is CaughtError:
        return run.plan.by_name[goto[0].node], goto[0].arg
    return None


def handler_input(node: PNode, values: dict[str, Any], caught: CaughtError) -> Any:
    """A handler's input: its view of the state, with ``"__error__"`` when that is a dict."""
    inp = node.make_input(values)
    if type(inp) is dict:
        return {**inp, ERROR_KEY: caught}
    return inp


def caught_error() -> CaughtError | None:
    """The failure the running node handles as the handler of an error edge, or None (outside
    a handler, or outside a run).

    Example:
        >>> def fallback(state):
        ...     err = caught_error()       # CaughtError(node='fetch', error_type='ConnectionError', ...)
        ...     return {"answer": "cached", "note": err.message}
    """
    from agentgraph_nb.engine._loop import _find_scratch

    scratch = _find_scratch(2)
    if scratch is None:
        return None
    return _handled(scratch.run, scratch.index)


# -- sagas ------------------------------------------------------------------------------------------
def note_completed(run: Run, node: PNode, step: int, index: int) -> None:
    """A node with a :class:`NodeRecovery` completed: remember it when it has a compensation
    (runs without a thread), and the state before a transaction's first node."""
    rec: NodeRecovery = node.recover
    if rec.compensate is not None:
        if run.saga_done is None:
            run.saga_done = []
        run.saga_done.append((node.name, f"{step}:{index}"))
    if rec.tx is not None and rec.tx[1] == 0:
        if run.tx_base is None:
            run.tx_base = {}
        run.tx_base[rec.tx[0]] = run.values  # the step's base: run.values moves on at its commit


async def rollback(run: Run, exc: BaseException) -> None:
    """The run failed with ``exc``: when the node that failed is inside a transaction, put the
    state back to before the transaction's first node and save that (next: the first node)."""
    where = _where(exc, run)
    name = str(where.get("node") or "").split(" > ")[0]
    node = run.plan.by_name.get(name)
    if node is None or node.recover is None or node.recover.tx is None:
        return
    tx, pos, first = node.recover.tx
    base = (run.tx_base or {}).get(tx)
    if base is None and pos > 0 and run.store is not None and run.thread_id is not None:
        base = _base_from_history(run, first.name)
    if base is None:  # the group's first node failed: it wrote nothing, nothing to undo
        return
    run.values = base
    run.tasks = [first.task]
    run.barriers = {}
    logger.warning("transaction %r failed at node %r: its writes are discarded", tx, name,
                   extra=run._log_extra(run.step, name))
    if run.emit is not None:
        run.emit("rollback", run.step, name, data={"transaction": tx, "error": f"{type(exc).__name__}: {exc}"})
    if run.store is not None and run.thread_id is not None:
        run.since_snapshot = 1 << 30  # the values are not the parent's plus writes: store them whole
        await run.asave([], "rollback", {"transaction": tx, "error": f"{type(exc).__name__}: {exc}"})
        await run.aflush()


def _base_from_history(run: Run, first: str) -> dict[str, Any] | None:
    """The state of the newest checkpoint whose next step runs ``first`` (a transaction's start),
    replayed from the store (a transaction that began in another process)."""
    from agentgraph_nb.engine._algo import apply_writes

    store = run.store
    assert store is not None
    want = run.checkpoint_id
    for rec in store.list(run.thread_id):  # type: ignore[arg-type]
        if rec.checkpoint_id != want:
            continue
        if any(t[0] == first for t in rec.next) and rec.checkpoint_id != run.checkpoint_id:
            chain = store.get_chain(run.thread_id, rec.checkpoint_id)  # type: ignore[arg-type]
            values = chain[0].values or {}
            for c in chain[1:]:
                values = apply_writes(run.schema, values, [(w[0], w[1]) for w in c.writes], check=False)
            return values
        want = rec.parent_id
        if want is None:
            break
    return None


def saga_progress(writes: Sequence[PendingWrite]) -> dict[str, Any] | None:
    """A checkpoint's compensation records: ``{"start": {...}, "done": {key: record}}``, or None
    when no compensation started there."""
    start: dict[str, Any] | None = None
    done: dict[str, Any] = {}
    for pw in writes:
        if pw.node == COMPENSATE_WRITE:
            if "start" in pw.update:
                start = pw.update
            else:
                done[pw.update["key"]] = pw.update
    return None if start is None else {"start": start, "done": done}


def _completed_from_history(run: Run) -> list[tuple[str, str]]:
    """``[(node, key), ...]`` of the thread's completions since its last finished checkpoint,
    oldest first: the nodes each checkpoint's step wrote, then the finished tasks of the
    failed step (pending writes of the newest checkpoint)."""
    store = run.store
    assert store is not None
    want = run.checkpoint_id
    steps: list[list[tuple[str, str]]] = []
    head = True
    for rec in store.list(run.thread_id):  # type: ignore[arg-type]
        if rec.checkpoint_id != want:
            continue  # a branch of the thread this run's history does not go through
        if head:
            head = False
            failed = {pw.task_index for pw in rec.pending_writes if pw.node == "__error__"}
            pend = [(pw.node, f"{rec.step + 1}:{pw.task_index}") for pw in rec.pending_writes
                    if pw.task_index >= 0 and pw.task_index not in failed and not pw.node.startswith("__")]
            steps.append(list(dict.fromkeys(pend)))
        elif not rec.next:
            break  # a finished checkpoint: the steps before it belong to an earlier run
        steps.append([(w[0], f"{rec.step}:{i}") for i, w in enumerate(rec.writes) if not str(w[0]).startswith("__")])
        want = rec.parent_id
        if want is None:
            break
    out: list[tuple[str, str]] = []
    for s in reversed(steps):
        out.extend(s)
    return out


async def compensate_failed(run: Run, exc: Exception) -> BaseException:
    """The run failed with ``exc``: run the compensations of its completed steps in reverse
    and return what the caller raises (``exc`` with a note, or a :class:`CompensationError`)."""
    if getattr(exc, "agentgraph_compensated", None) is run or isinstance(exc, CheckpointConflictError):
        return exc
    try:
        await rollback(run, exc)
    except Exception as store_exc:
        logger.error("could not roll back a transaction: %s", store_exc, extra=run._log_extra(run.step))
    if not any(n.recover is not None and n.recover.compensate is not None for n in run.plan.nodes):
        return exc  # transactions only: nothing to compensate
    try:
        if run.store is not None and run.thread_id is not None:
            await run.aflush()
            done = _completed_from_history(run)
            start = {"start": True, "error": f"{type(exc).__name__}: {exc}", **_where(exc, run)}
            await run.asave_pending([PendingWrite(-1, COMPENSATE_WRITE, start, [])])
        else:
            done = list(run.saga_done or ())
    except Exception as store_exc:  # the store is broken: compensate what this run knows of
        logger.error("could not record the start of compensating: %s", store_exc, extra=run._log_extra(run.step))
        done = list(run.saga_done or ())
    return await _compensate(run, exc, done, {})


def _where(exc: BaseException, run: Run) -> dict[str, Any]:
    failure = getattr(exc, "agentgraph_failure", None)
    if failure is not None:
        return {"node": failure.where, "step": failure.step, "attempt": failure.attempt}
    if isinstance(exc, NodeError):
        return {"node": exc.node, "step": exc.step, "attempt": exc.attempt}
    return {"node": "", "step": run.step + 1, "attempt": 1}


async def resume_compensation(run: Run) -> None:
    """Finish the compensations a process that died while compensating left (see
    :func:`saga_progress`), then raise the recorded failure."""
    progress = run.saga_resume
    assert progress is not None
    run.saga_resume = None
    start = progress["start"]
    done = _completed_from_history(run)
    exc = NodeError(
        f"node {start.get('node') or '?'!r} failed at step {start.get('step')} ({start.get('error')}); "
        "this run finished the saga's compensations that a stopped process had begun",
        node=start.get("node") or "", step=int(start.get("step") or 0), attempt=int(start.get("attempt") or 1),
    )
    raise await _compensate(run, exc, done, progress["done"])


async def _compensate(run: Run, exc: Exception, done: list[tuple[str, str]],
                      already: dict[str, Any]) -> BaseException:
    by_name = run.plan.by_name
    ok: list[str] = []
    failed: list[tuple[str, str]] = []
    for rec in already.values():  # compensations a stopped process finished: count them as they went
        if rec.get("ok"):
            ok.append(rec["node"])
        else:
            failed.append((rec["node"], rec.get("error") or ""))
    durable = run.store is not None and run.thread_id is not None
    for name, key in reversed(done):
        node = by_name.get(name)
        if node is None or node.recover is None or node.recover.compensate is None or key in already:
            continue
        fn = node.recover.compensate
        fname = getattr(fn, "__name__", None) or type(fn).__name__
        t = time.perf_counter()
        error: str | None = None
        try:
            out = fn(node.make_input(run.values))
            if isinstance(out, CoroutineType):
                out = await _await(run, out)
        except Exception as cexc:
            error = f"{type(cexc).__name__}: {cexc}"
            logger.error("compensation %r of node %r failed: %s", fname, name, error,
                         extra=run._log_extra(run.step, name))
        dt = time.perf_counter() - t
        node.stats.compensations += 1
        if error is None:
            ok.append(name)
        else:
            failed.append((name, error))
        if run.emit is not None:
            run.emit("compensate", run.step, name, dt, 1, key, {"fn": fname, "ok": error is None, "error": error})
        if durable:
            try:
                await run.asave_pending([PendingWrite(-1, COMPENSATE_WRITE,
                                                      {"key": key, "node": name, "ok": error is None, "error": error},
                                                      [])])
            except Exception as store_exc:
                logger.error("could not record compensation %r: %s", fname, store_exc)
    if durable:
        try:  # the saga is over: a finished checkpoint (resuming the thread runs nothing)
            run.tasks = []
            await run.asave([], "compensate", {"error": f"{type(exc).__name__}: {exc}", "compensated": ok,
                                               "compensation_failed": [list(f) for f in failed]})
            await run.aflush()
        except Exception as store_exc:
            logger.error("could not record the end of compensating: %s", store_exc)
    out_exc: BaseException = exc
    if failed:
        text = "; ".join(f"{n!r}: {e}" for n, e in failed)
        out_exc = CompensationError(
            f"graph {run.plan.name!r} failed ({type(exc).__name__}: {exc}) and {len(failed)} of its "
            f"{len(failed) + len(ok)} compensation(s) failed too: {text}. The others ran"
            + (f" ({', '.join(map(repr, ok))})" if ok else "")
            + (f"; thread {run.thread_id!r}" if run.thread_id else ""),
            failed=failed, compensated=ok, thread_id=run.thread_id,
        )
        out_exc.__cause__ = exc
    elif ok:
        _note(exc, f"the saga's compensations ran (newest first): {', '.join(map(repr, ok))}")
    try:
        out_exc.agentgraph_compensated = run  # type: ignore[attr-defined]
        exc.agentgraph_compensated = run  # type: ignore[attr-defined]
    except Exception:
        pass
    return out_exc


async def _await(run: Run, coro: Any) -> Any:
    """An async compensation's result: awaited, or (a sync run, no event loop) run on a thread."""
    if not run.sync:
        return await coro
    import asyncio

    from agentgraph_nb.engine._loop import _thread_pool

    return _thread_pool().submit(asyncio.run, coro).result()


def _note(exc: BaseException, text: str) -> None:
    try:
        exc.add_note(text)  # type: ignore[attr-defined]
    except AttributeError:  # 3.10
        try:
            exc.__notes__ = [*getattr(exc, "__notes__", []), text]  # type: ignore[attr-defined]
        except Exception:
            pass
    except Exception:
        pass
