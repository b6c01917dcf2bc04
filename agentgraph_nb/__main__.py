"""``python -m agentgraph_nb``: the ``agentgraph`` command line."""

import sys

from agentgraph_nb.cli import main

__all__: list[str] = []

sys.exit(main())
