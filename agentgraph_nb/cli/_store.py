"""``agentgraph inspect``: a checkpoint store's threads, and a thread's history and state, as
tables or JSON."""

from __future__ import annotations

from typing import Any

import click

from agentgraph_nb.cli._load import load_graph
from agentgraph_nb.cli._output import dumps, short, table
from agentgraph_nb.errors import InvalidInputError

__all__ = ["show_history", "show_threads"]


def show_threads(store: Any, as_json: bool) -> None:
    from agentgraph_nb.checkpoint.inspect import thread_rows

    rows = thread_rows(store)  # the rows of inspect_store(url) in a notebook
    if as_json:
        click.echo(dumps(rows, indent=2))
        return
    if not rows:
        click.echo("no threads")
        return
    click.echo(table(
        [(r["thread"], r["checkpoints"], r["step"], r["updated"],
          (", ".join(r["next"]) or "(done)") + (" (interrupted)" if r["interrupted"] else ""),
          "-" if r["bytes"] is None else r["bytes"]) for r in rows],
        ["thread", "checkpoints", "step", "updated", "next", "bytes"], right=(1, 2, 5),
    ))


def show_history(
    store: Any, url: str, thread: str, limit: int, graph: str | None, as_json: bool, checkpoint: str | None = None
) -> None:
    """Print a thread's history (newest first) and its state at its newest checkpoint, or at
    ``checkpoint``."""
    recs = list(store.list(thread, limit=limit))
    if not recs:
        threads = store.list_threads()
        from agentgraph_nb.errors import did_you_mean

        raise InvalidInputError(f"{url} has no thread {thread!r}.{did_you_mean(thread, threads)} Threads: {', '.join(threads[:10]) or 'none'}")
    if checkpoint is not None and store.get(thread, checkpoint) is None:
        from agentgraph_nb.errors import did_you_mean

        ids = [r.checkpoint_id for r in store.list(thread)]
        raise InvalidInputError(f"thread {thread!r} has no checkpoint {checkpoint!r}.{did_you_mean(checkpoint, ids)}")
    if graph is not None:
        app = load_graph(graph, checkpointer=url).app
        values = app.get_state(thread, checkpoint_id=checkpoint).values
    else:
        from agentgraph_nb.engine import apply_writes
        from agentgraph_nb.state._schema import read_schema

        chain = store.get_chain(thread, checkpoint)
        values = dict(chain[0].values or {})
        schema = read_schema(dict)
        for rec in chain[1:]:
            values = apply_writes(schema, values, [(w[0], w[1]) for w in rec.writes], check=False)
    hist = [
        {
            "checkpoint": r.checkpoint_id,
            "step": r.step,
            "source": r.metadata.get("source", ""),
            "created": r.created_at,
            "writes": [w[0] for w in r.writes],
            "next": [n[0] for n in r.next],
            "interrupts": [i.get("value") for i in r.interrupts],
        }
        for r in recs
    ]
    if as_json:
        click.echo(dumps({"thread": thread, "history": hist, "checkpoint": checkpoint or recs[0].checkpoint_id, "state": values}, indent=2))
        return
    click.echo(f"thread {thread!r}: history, newest first")
    click.echo(table(
        [(h["checkpoint"], h["step"], h["source"], h["created"], ", ".join(h["writes"]), ", ".join(h["next"]) or "(done)")
         for h in hist],
        ["checkpoint", "step", "source", "created", "writes", "next"], right=(1,),
    ))
    pending = recs[0].interrupts
    if pending:
        click.echo(f"\npaused: {len(pending)} interrupt(s): " + "; ".join(short(i.get("value")) for i in pending))
    at = f" at checkpoint {checkpoint}" if checkpoint else ""
    click.echo(f"\nstate{at}{'' if graph else ' (writes replayed without the graph reducers; pass --graph for them)'}")
    click.echo(table([(k, type(v).__name__, short(v)) for k, v in values.items()], ["key", "type", "value"]))
