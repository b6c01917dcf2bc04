"""Facts about callables that both the builder and the engine need (kept out of either, so
neither imports the other for them)."""

from __future__ import annotations

import inspect
from typing import Any

__all__ = ["is_async_callable"]

def is_async_callable(fn: Any) -> bool:
    """True for ``async def`` functions and objects whose ``__call__`` is one (or that say so
    through an ``is_async`` attribute, like the notebook's hot-reload proxies)."""
    code = getattr(fn, "__code__", None)
    if code is not None and type(fn).__name__ == "function":
        return bool(code.co_flags & 0x80)  # CO_COROUTINE: what inspect checks, without the cost
    flag = getattr(type(fn), "is_async", None)
    if isinstance(flag, property) or flag is not None:
        try:
            return bool(fn.is_async)
        except Exception:
            return False
    if inspect.iscoroutinefunction(fn):
        return True
    call = getattr(fn, "__call__", None)  # noqa: B004
    return call is not None and inspect.iscoroutinefunction(call)
