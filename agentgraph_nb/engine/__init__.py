"""The superstep engine: the compiled plan, the pure algorithm, the loop and its drivers."""

__all__: list[str] = []
