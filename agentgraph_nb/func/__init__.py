"""The functional API: ``@entrypoint`` and ``@task``, LangGraph's names for a workflow written as
plain Python (loops, ``if``, ``try``) instead of a graph.

Example:
    >>> from agentgraph_nb import entrypoint, task
    >>> @task
    ... def double(x: int) -> int:
    ...     return 2 * x
    >>> @entrypoint(checkpointer="memory")
    ... def workflow(numbers: list[int]) -> list[int]:
    ...     futures = [double(n) for n in numbers]   # started at once, run side by side
    ...     return [f.result() for f in futures]
    >>> workflow.invoke([1, 2, 3], thread_id="t1")
    [2, 4, 6]

How it is built (on the graph engine, no second engine):

* An entrypoint is a one-node graph, ``START -> <name> -> END``, over a dict state with three
  keys: ``input`` (what ``invoke`` got), ``output`` (what the function returned) and
  ``previous`` (what it saved for the next call on the thread, ``entrypoint.final(save=...)``).
  ``invoke``, ``stream``, ``get_state`` ... of the :class:`Entrypoint` show the output, as
  LangGraph's do; ``app.graph`` is the graph underneath (the Debugger and GraphView use it).
* Calling a task starts it at once (sync tasks on a thread of their own, async ones as asyncio
  tasks) and returns a :class:`TaskFuture`. Each call gets a key from the order of calls in the
  body (``"0:fetch"``, ``"1:fetch"``, nested ``"1:fetch/0:parse"``); a finished task's result is
  saved at once as a pending write (node ``"__task__"``) of the checkpoint the entrypoint's step
  started from. When the body runs again, after an ``interrupt()`` was answered or after a
  failure (``invoke(None, thread_id=...)``), a call whose key has a saved result returns it
  without running the task. So the body must call its tasks in the same order each time (the
  rule LangGraph states for the same reason).
* ``interrupt()`` inside a task pauses the whole entrypoint; its id comes from the task call's
  key, so the answer reaches that call when the body runs again.
* Task executions are events like node executions (``node_start``/``node_end``, node = the task's
  name, ``task_id`` = ``"<step>:<call key>"``): the Timeline draws their bars, the
  GraphView draws the tasks that ran beside the entrypoint, ``stream(mode="updates")`` yields
  ``{task_name: result}`` as each finishes.
"""

from agentgraph_nb.func._entrypoint import Entrypoint, entrypoint
from agentgraph_nb.func._task import TASK_WRITE, TaskFunction, TaskFuture, task

__all__ = ["TASK_WRITE", "Entrypoint", "TaskFunction", "TaskFuture", "entrypoint", "task"]
