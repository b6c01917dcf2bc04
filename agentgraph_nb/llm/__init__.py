"""Chat models (extra ``llm``): the :class:`ChatModel` protocol and :class:`OpenAIChat`, for any
OpenAI-compatible server (OpenAI, vLLM, llama.cpp's server, Ollama, TGI, LM Studio).

Messages are plain dicts in the OpenAI chat format (``role``, ``content``, ``tool_calls``,
``tool_call_id``, ``name``) plus an ``id``. A model's ``invoke`` returns one assistant message;
its token usage rides on it as ``"usage"`` (``prompt_tokens``, ``completion_tokens``,
``total_tokens``; stripped with ``id`` before messages are sent anywhere) and, inside a graph
node, is accounted to the node: an ``llm_end`` event and the ``tokens_in``, ``tokens_out`` and
``cost`` columns of ``app.metrics.to_pandas()``. Prices are yours to set (:func:`set_prices` or
``OpenAIChat(price=...)``); none ship.

A model call inside a node streams its tokens to ``app.stream(..., mode="messages")`` as
``(chunk, metadata)`` pairs, even when the node calls ``invoke``: the chunk is
``{"role": "assistant", "content": piece, "id": message_id}`` (with ``"tool_call_chunks"`` while
the model writes tool calls), the metadata names ``node``, ``step``, ``run_id``, ``thread_id``
and ``model`` (plus LangGraph's ``langgraph_node``/``langgraph_step``).

Example:
    >>> from agentgraph_nb.llm import OpenAIChat
    >>> model = OpenAIChat("llama3.2", base_url="http://127.0.0.1:11434/v1")   # Ollama
    >>> model.invoke("hi")                                           # doctest: +SKIP
    {'role': 'assistant', 'content': 'Hello!', 'id': 'chatcmpl-...', 'usage': {...}}

``import agentgraph_nb.llm`` does not import ``openai``; ``OpenAIChat`` does (missing, it is a
:class:`~agentgraph_nb.errors.MissingDependencyError` naming ``pip install "agentgraph_nb[llm]"``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from agentgraph_nb.llm._base import (
    ChatModel,
    get_prices,
    set_prices,
    to_messages,
    tool_schema,
)

if TYPE_CHECKING:
    from agentgraph_nb.llm._anthropic import AnthropicChat
    from agentgraph_nb.llm._openai import OpenAIChat
    from agentgraph_nb.llm._structured import StructuredModel

__all__ = ["AnthropicChat", "ChatModel", "OpenAIChat", "StructuredModel", "get_prices", "set_prices", "to_messages", "tool_schema"]


def __getattr__(name: str) -> Any:
    if name == "StructuredModel":
        from agentgraph_nb.llm._structured import StructuredModel

        return StructuredModel
    if name == "OpenAIChat":
        from agentgraph_nb._lazy import requires_extra

        with requires_extra(f"agentgraph_nb.llm.{name}"):
            from agentgraph_nb.llm import _openai

        value = getattr(_openai, name)
        globals()[name] = value
        return value
    if name == "AnthropicChat":
        from agentgraph_nb._lazy import requires_extra

        with requires_extra(f"agentgraph_nb.llm.{name}"):
            from agentgraph_nb.llm import _anthropic

        globals()[name] = _anthropic.AnthropicChat
        return _anthropic.AnthropicChat
    raise AttributeError(f"module 'agentgraph_nb.llm' has no attribute {name!r}")
