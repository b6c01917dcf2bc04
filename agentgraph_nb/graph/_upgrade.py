"""Saved results of a paused or failed step written under an older state version, brought to the
graph's version.

A step that paused (an ``interrupt()``) or failed keeps the results of its finished tasks as
pending writes of its base checkpoint; resuming merges them at the end of the step. Written under
state version ``k``, such an update names the keys and shapes of version ``k``, and merging it
into the state of a newer version would be wrong (an unknown key, or a value of the old shape).
Migrations take whole states, not updates, so each saved update is migrated through the state it
makes: ``migrate(base + update)`` against ``migrate(base)``, per key:

- a key without a reducer takes the migrated value (as the update set it);
- a key with a reducer takes a delta that the reducer, applied to the migrated base, turns into the
  migrated value: the tail of a list the update appended to, the difference of a number, or the
  migrated value itself; each candidate is checked by running the reducer, so nothing is guessed;
- a key that no delta can express (a reducer that cannot be inverted so, or a key the migration
  drops only because of the update) is a :class:`~agentgraph_nb.errors.StateMigrationError` naming
  the thread, the checkpoint, the node, the key and the versions: nothing is merged unmigrated.

The converted updates are merged as any step's results are (in task order, with the results of the
tasks that run again), so the step's outcome is the one the old graph would have had, migrated.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from agentgraph_nb.checkpoint.base import PendingWrite
from agentgraph_nb.engine import ERROR_WRITE, INTERRUPT_WRITE, RESUME_WRITE, apply_writes
from agentgraph_nb.errors import StateMigrationError

if TYPE_CHECKING:
    from agentgraph_nb.checkpoint.base import CheckpointRecord
    from agentgraph_nb.graph.compiled import CompiledGraph

__all__ = ["upgrade_pending"]

_NOT_STATE = frozenset({INTERRUPT_WRITE, RESUME_WRITE, ERROR_WRITE})
_MISSING: Any = object()


def upgrade_pending(app: CompiledGraph, thread_id: str, rec: CheckpointRecord,
                    writes: list[PendingWrite]) -> list[PendingWrite]:
    """``writes`` (pending writes of ``rec``, a checkpoint of an older state version) with each
    finished task's update converted to the graph's state version; interrupts, answers and
    failure marks as they are."""
    raw = app._load_raw(thread_id, rec.checkpoint_id)
    if raw is None:  # pragma: no cover - the caller has just loaded it
        return writes
    _, base_old, ver = raw
    target = app.state_version
    base = app._migrate(base_old, ver, target, thread_id, rec)
    out = []
    for pw in writes:
        if pw.node in _NOT_STATE or pw.task_index < 0 or not isinstance(pw.update, dict) or not pw.update:
            out.append(pw)
            continue
        out.append(PendingWrite(pw.task_index, pw.node, _convert(app, thread_id, rec, ver, base_old, base, pw),
                                pw.goto))
    return out


def _convert(app: CompiledGraph, thread_id: str, rec: CheckpointRecord, ver: Any, base_old: dict[str, Any],
             base: dict[str, Any], pw: PendingWrite) -> dict[str, Any]:
    target = app.state_version
    merged = apply_writes(app._replay_schema(), base_old, [(pw.node, pw.update)], check=False)
    new = app._migrate(merged, ver, target, thread_id, rec)
    reducers = app.schema.reducers
    update: dict[str, Any] = {}

    def refuse(key: str, why: str) -> StateMigrationError:
        return StateMigrationError(
            f"checkpoint {rec.checkpoint_id!r} of thread {thread_id!r} was written under state version {ver} "
            f"and keeps the saved result of node {pw.node!r} (task {pw.task_index}) of its unfinished step; "
            f"migrated to version {target}, its key {key!r} {why}, so that result cannot be carried into "
            f"version {target}. Finish the step with the graph of version {ver}, or run the step afresh "
            f"from a copy: update_state({thread_id!r}, None, as_node='__copy__') (the node runs again) "
            f"(store: {app.checkpointer!r})",
            thread_id=thread_id, checkpoint_id=rec.checkpoint_id, stored_version=ver, graph_version=target)

    for k in base:
        if k not in new:
            raise refuse(k, "is dropped by the migration only when the node's update is applied")
    for k, v in new.items():
        old = base.get(k, _MISSING)
        if old is not _MISSING and _same(old, v):
            continue
        if reducers.get(k) is None:
            update[k] = v
            continue
        for cand in _candidates(old, v):
            try:
                got = apply_writes(app.schema, base, [(pw.node, {k: cand})], check=False).get(k, _MISSING)
            except Exception:  # a candidate the reducer rejects is not the one
                continue
            if _same(got, v):
                update[k] = cand
                break
        else:
            raise refuse(k, f"holds {_short(v)} where the migrated state before the step holds {_short(old)}, and "
                            "no update merged by the key's reducer turns one into the other")
    return update


def _candidates(old: Any, new: Any) -> list[Any]:
    """Updates that may take a reducer key from ``old`` to ``new`` (each checked by the caller)."""
    if old is _MISSING:
        return [new]
    out: list[Any] = []
    if isinstance(old, list) and isinstance(new, list) and len(new) >= len(old) and _same(new[:len(old)], old):
        out.append(new[len(old):])
    if (type(old) in (int, float) and type(new) in (int, float)):
        out.append(new - old)
    out.append(new)
    return out


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except Exception:
        return a is b


def _short(v: Any) -> str:
    r = "(nothing)" if v is _MISSING else repr(v)
    return r if len(r) <= 60 else r[:57] + "..."
