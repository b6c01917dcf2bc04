"""The ``agentgraph`` command: validate, run, export, inspect, profile and bench graphs.

Extra ``cli`` (click)::

    pip install "agentgraph_nb[cli]"
    agentgraph --help
    agentgraph validate myapp.graphs:research
    agentgraph run research.agentgraph '{"question": "q"}' --thread t1 --checkpointer sqlite:///runs.db

``python -m agentgraph_nb`` is the same command. Graphs are named as ``module:attr`` (a
``StateGraph``, a compiled graph, or a function returning one) or a ``.agentgraph`` file in the
cell language, whose functions come from the modules on its ``# uses:`` line or ``--module``
(see :mod:`agentgraph_nb.cli._load`).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (0 ok, 1 the graph or run failed, 2 bad usage).

    Without click installed it prints the ``pip install`` line and returns 2.
    """
    try:
        import click  # noqa: F401
    except ModuleNotFoundError:
        print(
            "agentgraph: the command line needs click, which is not installed. "
            'Install it with: pip install "agentgraph_nb[cli]"',
            file=sys.stderr,
        )
        return 2
    from agentgraph_nb.cli._app import cli

    try:
        cli.main(args=list(argv) if argv is not None else None, prog_name="agentgraph", standalone_mode=True)
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
