"""Import heavy standard modules (asyncio, concurrent.futures) on first use, keeping
``import agentgraph_nb`` fast for scripts that never need them."""

from __future__ import annotations

import importlib
import sys
from typing import Any

__all__ = ["LazyModule"]


class LazyModule:
    """Stands in for a module in another module's globals until first attribute access, then
    replaces itself there with the real module (so later accesses cost nothing extra)."""

    def __init__(self, name: str, owner: str, alias: str) -> None:
        self._name = name
        self._owner = owner
        self._alias = alias

    def __getattr__(self, attr: str) -> Any:
        mod = importlib.import_module(self._name)
        owner = sys.modules.get(self._owner)
        if owner is not None:
            setattr(owner, self._alias, mod)
        return getattr(mod, attr)
