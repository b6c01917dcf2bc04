"""Observing runs: the event bus, metrics and (lazily) pandas frames."""

__all__: list[str] = []
