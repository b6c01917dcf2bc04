"""Exports of a graph: JSON (and back), DOT, Mermaid, the %%agentgraph DSL, static SVG."""

__all__: list[str] = []
