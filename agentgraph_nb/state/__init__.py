"""State schemas (TypedDict, dataclass, pydantic) and reducers."""

from agentgraph_nb.state._schema import StateSchema, read_schema

__all__ = ["StateSchema", "read_schema"]
